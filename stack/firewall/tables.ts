/**
 * Compiled tables and chains for one family, and the iptables-save-like
 * dump with counters.
 *
 * A family's table joins the shared scope (`[firewall.filter]`, rules that
 * apply to this family) and the family's own (`[firewall.ipv4.filter]`):
 * a builtin chain runs the shared rules, then the family's; its policy is
 * DROP when either scope's chain says DROP. User chains stay in their
 * scope (a jump resolves in the scope of the rule that makes it); a
 * family chain whose name a shared one already has is shown as
 * `NAME-v4` (`NAME-v6`) in the dump.
 *
 * Each chain of 8 rules or more gets a {@link ChainIndex} (compile.ts):
 * the walk then tests only the rules that can match a packet, in order.
 * Rules naming `-m set` hold the firewall's sets themselves, so a change
 * to a set is seen by the next packet without recompiling.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { CompiledRule, TargetKind } from "./match.ts";
import type { FirewallTableName, FirewallTableSpec } from "./rule_types.ts";
import { ChainIndex, type CompileOptions, DEFAULT_COMPILE } from "./compile.ts";
import { type IpSet, resolveSets } from "./sets.ts";

/** Verdicts of a chain walk. */
export const Verdict = { ACCEPT: 0, DROP: 1, CONTINUE: 2 } as const;

/** A chain ready to run. */
export class CompiledChain {
  readonly rules: CompiledRule[] = [];
  /**
   * The chain's index (compile.ts), made when the table is compiled; null
   * for a chain short enough to walk rule by rule.
   */
  index: ChainIndex | null = null;
  /** Packets and bytes that met the policy (builtin chains). */
  policyPackets = 0;
  policyBytes = 0;

  /**
   * @param name as iptables shows it (builtins upper case)
   * @param policy `Verdict.ACCEPT` or `Verdict.DROP`
   */
  constructor(readonly name: string, readonly builtin: boolean, public policy: number) {}
}

/** What a table is compiled with besides its rules. */
export interface CompileTableOptions {
  /** The firewall's named sets, for `-m set` (a rule naming another set is an error). */
  sets?: ReadonlyMap<string, IpSet>;
  /** Which chains get an index. */
  compile?: CompileOptions;
}

/** One table of one family: builtin chains by lower-case hook name, plus user chains. */
export class CompiledTable {
  /** Builtin chains by hook (`input`, `forward`, ...). */
  readonly builtins: Map<string, CompiledChain> = new Map();
  /** Every user chain, in definition order. */
  readonly userChains: CompiledChain[] = [];
  /** @param name the table's name */
  constructor(readonly name: FirewallTableName) {}

  /** The builtin chain of `hook` when it has rules or a DROP policy, else null. */
  active(hook: string): CompiledChain | null {
    const c = this.builtins.get(hook);
    return c !== undefined && (c.rules.length > 0 || c.policy === Verdict.DROP) ? c : null;
  }

  /** Every rule, in every chain. */
  *rules(): IterableIterator<CompiledRule> {
    for (const c of this.builtins.values()) yield* c.rules;
    for (const c of this.userChains) yield* c.rules;
  }
}

/**
 * Compile one family's view of a table from its shared and family scopes
 * (rules of the other family are left out), and index each chain long
 * enough to gain from it (see compile.ts).
 *
 * @throws Error on a jump to an undefined chain or a set that does not exist
 *   (config validation rules both out)
 */
export function compileTable(
  name: FirewallTableName,
  scopes: FirewallTableSpec[],
  clock: Clock,
  family: 4 | 6 = 4,
  opts: CompileTableOptions = {},
): CompiledTable {
  const sets = opts.sets ?? new Map<string, IpSet>();
  const t = new CompiledTable(name);
  const taken = new Set<string>();
  const perScope: Map<string, CompiledChain>[] = [];
  for (const spec of scopes) {
    const user = new Map<string, CompiledChain>();
    for (const c of spec.chains.values()) {
      if (c.builtin) {
        let b = t.builtins.get(c.name);
        if (b === undefined) {
          b = new CompiledChain(c.name.toUpperCase(), true, Verdict.ACCEPT);
          t.builtins.set(c.name, b);
        }
        if (c.policy === "drop") b.policy = Verdict.DROP;
      } else {
        let shown = c.name;
        if (taken.has(shown)) shown = `${c.name}-v${family}`;
        taken.add(shown);
        const u = new CompiledChain(shown, false, Verdict.ACCEPT);
        user.set(c.name, u);
        t.userChains.push(u);
      }
    }
    perScope.push(user);
  }
  scopes.forEach((spec, i) => {
    const user = perScope[i]!;
    for (const c of spec.chains.values()) {
      const into = c.builtin ? t.builtins.get(c.name)! : user.get(c.name)!;
      for (const r of c.rules) {
        if (r.family !== 0 && r.family !== family) continue;
        const cr = new CompiledRule(r, clock);
        if (cr.kind === TargetKind.JUMP && r.target?.kind === "JUMP") {
          const to = user.get(r.target.chain);
          if (to === undefined) throw new Error(`jump to undefined chain "${r.target.chain}"`);
          cr.jump = to;
        }
        if (r.matchSets !== undefined && r.matchSets.length > 0) {
          cr.sets = resolveSets(r.matchSets, sets);
        }
        into.rules.push(cr);
      }
    }
  });
  const from = (opts.compile ?? DEFAULT_COMPILE).indexFrom;
  for (const c of [...t.builtins.values(), ...t.userChains]) {
    c.index = c.rules.length >= from ? new ChainIndex(c.rules.map((r) => r.rule), family) : null;
  }
  return t;
}

function ruleText(chain: string, r: CompiledRule): string {
  return `[${r.packets}:${r.bytes}] -A ${chain} ${r.rule.text}`;
}

/** iptables-save -c style text of the tables, in raw, nat, filter order (ip6tables-save for 6). */
export function dumpTables(tables: CompiledTable[], family: 4 | 6 = 4): string {
  const out: string[] = [`# Generated by tapir (IPv${family})`];
  for (const t of tables) {
    out.push(`*${t.name}`);
    for (const c of t.builtins.values()) {
      out.push(
        `:${c.name} ${
          c.policy === Verdict.DROP ? "DROP" : "ACCEPT"
        } [${c.policyPackets}:${c.policyBytes}]`,
      );
    }
    for (const c of t.userChains) out.push(`:${c.name} - [0:0]`);
    for (const c of t.builtins.values()) for (const r of c.rules) out.push(ruleText(c.name, r));
    for (const c of t.userChains) for (const r of c.rules) out.push(ruleText(c.name, r));
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}
