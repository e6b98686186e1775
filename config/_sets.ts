/**
 * `[firewall.sets.NAME]`: named sets for `-m set --match-set` rules, as
 * ipset defines them.
 *
 * ```toml
 * [firewall.sets.banned]
 * type = "hash:ip"          # hash:ip | hash:net | hash:ip,port | hash:net,iface
 * family = 4                # 4 or 6; absent (or "both"): both families
 * timeout = "1h"            # for entries added without one; absent: entries stay
 * max_entries = 65536       # the most entries (ipset's maxelem)
 * entries = ["192.0.2.7", { entry = "198.51.100.9", timeout = "10m" }]
 * ```
 *
 * @module
 */
import {
  type FirewallSetEntry,
  type FirewallSetSpec,
  type FirewallSetType,
  formatSetEntry,
  parseSetEntry,
  SET_DEFAULT_MAX,
  SET_TYPES,
  SetError,
} from "../stack/firewall/mod.ts";
import {
  at,
  type Ctx,
  describeShort,
  didYouMean,
  idx,
  int,
  isTable,
  optDuration,
  readTable,
  reqStr,
  type Tbl,
} from "./_check.ts";

/** A set's name: what ipset allows, minus spaces (it is a TOML key and a `tapir set` argument). */
export const SET_NAME: RegExp = /^[A-Za-z0-9_.-]{1,31}$/;

/** The most entries a set may be given room for. */
const MAX_ENTRIES = 16_777_216;

/** Validate `[firewall.sets]`: each set's definition and entries; every error recorded. */
export function validateSets(ctx: Ctx, raw: unknown, path: string): Map<string, FirewallSetSpec> {
  const out = new Map<string, FirewallSetSpec>();
  if (raw === undefined) return out;
  if (!isTable(raw)) {
    ctx.err(path, `expected a table of sets ([firewall.sets.NAME]), found ${describeShort(raw)}`);
    return out;
  }
  for (const [name, v] of Object.entries(raw)) {
    const sp = at(path, name);
    if (!SET_NAME.test(name)) {
      ctx.err(sp, `bad set name "${name}" (1 to 31 letters, digits, "_", "." or "-")`);
      continue;
    }
    const t = readTable(ctx, v, sp, ["type", "family", "timeout", "max_entries", "entries"]);
    if (!t) continue;
    const spec = validateSet(ctx, t, sp, name);
    if (spec !== undefined) out.set(name, spec);
  }
  return out;
}

function validateSet(ctx: Ctx, t: Tbl, path: string, name: string): FirewallSetSpec | undefined {
  const typeText = reqStr(ctx, t, "type", path);
  let type: FirewallSetType | undefined;
  if (typeText !== undefined) {
    type = SET_TYPES.find((x) => x === typeText);
    if (type === undefined) {
      ctx.err(
        at(path, "type"),
        `unknown set type "${typeText}" (use ${SET_TYPES.join(", ")})${
          didYouMean(typeText, SET_TYPES)
        }`,
      );
    }
  }
  let family: 0 | 4 | 6 = 0;
  const f = t.family;
  if (f === 4 || f === 6) family = f;
  else if (f !== undefined && f !== "both") {
    ctx.err(at(path, "family"), `expected 4, 6 or "both", found ${describeShort(f)}`);
  }
  const timeout = optDuration(ctx, t, "timeout", path, 0, 2_147_483_000) ?? 0;
  const maxEntries = int(ctx, t, "max_entries", path, SET_DEFAULT_MAX, 1, MAX_ENTRIES);
  const entries: FirewallSetEntry[] = [];
  const list = t.entries;
  const ep = at(path, "entries");
  if (list !== undefined && !Array.isArray(list)) {
    ctx.err(ep, `expected an array of entries, found ${describeShort(list)}`);
  }
  const seen = new Set<string>();
  (Array.isArray(list) ? list : []).forEach((e, i) => {
    const p = idx(ep, i);
    let text: string | undefined;
    let entryTimeout: number | undefined;
    if (typeof e === "string") text = e;
    else if (isTable(e)) {
      const et = readTable(ctx, e, p, ["entry", "timeout"]);
      if (!et) return;
      text = reqStr(ctx, et, "entry", p);
      entryTimeout = optDuration(ctx, et, "timeout", p, 0, 2_147_483_000);
    } else {
      ctx.err(p, `expected an entry string or { entry, timeout }, found ${describeShort(e)}`);
      return;
    }
    if (text === undefined || type === undefined) return;
    try {
      const entry = parseSetEntry(type, family, text);
      if (entryTimeout !== undefined) entry.timeout = entryTimeout;
      entries.push(entry);
      const key = formatSetEntry(type, entry);
      if (seen.has(key)) ctx.err(p, `entry "${text}" is given twice`);
      seen.add(key);
    } catch (err) {
      if (!(err instanceof SetError)) throw err;
      ctx.err(p, err.message);
    }
  });
  if (entries.length > maxEntries) {
    ctx.err(ep, `${entries.length} entries do not fit in max_entries = ${maxEntries}`);
  }
  if (type === undefined) return undefined;
  return { name, type, family, timeout, maxEntries, entries };
}
