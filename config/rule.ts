/**
 * Firewall rule strings: the iptables subset tapir accepts, parsed into a
 * typed {@link Rule}. Anything outside the subset is an error naming the
 * token, never silently ignored.
 *
 * @module
 */
import {
  AddressParseError,
  type IpAddress,
  type IpCidr,
  parseCidr,
  parseIpAddress,
} from "../stack/wire/mod.ts";

import type {
  CtState,
  IcmpTypeMatch,
  InterfaceMatch,
  LimitMatch,
  Negatable,
  PortRange,
  RejectReason,
  Rule,
  Target,
} from "../stack/firewall/rule_types.ts";

export type {
  CtState,
  IcmpTypeMatch,
  InterfaceMatch,
  LimitMatch,
  Negatable,
  PortRange,
  RejectReason,
  Rule,
  Target,
};

/** Where a rule sits; used for the table/chain/family checks. */
export interface RuleContext {
  table?: "filter" | "nat" | "raw";
  /** Chain name (builtins lower case). */
  chain?: string;
  /** Whether `chain` is a builtin chain. */
  builtin?: boolean;
  /** The table's family scope: 0 = shared. */
  family?: 0 | 4 | 6;
  /** Only matches are allowed (no `-j`). */
  matchOnly?: boolean;
}

/** A rule string that can't be parsed or isn't allowed where it is. */
export class RuleError extends Error {
  /** @param message what is wrong, naming the token */
  constructor(message: string) {
    super(message);
    this.name = "RuleError";
  }
}

const PROTOCOLS: Record<string, number> = {
  tcp: 6,
  udp: 17,
  icmp: 1,
  icmpv6: 58,
  "ipv6-icmp": 58,
};

/** TCP flag bits as iptables names them. */
export const TCP_FLAGS: Record<string, number> = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ALL: 0x3f,
  NONE: 0,
};

/** ICMP type names as `iptables -p icmp -h` lists them: [type, code?]. */
export const ICMP_TYPES: Record<string, [number, number?]> = {
  "echo-reply": [0],
  pong: [0],
  "destination-unreachable": [3],
  "network-unreachable": [3, 0],
  "host-unreachable": [3, 1],
  "protocol-unreachable": [3, 2],
  "port-unreachable": [3, 3],
  "fragmentation-needed": [3, 4],
  "source-route-failed": [3, 5],
  "network-unknown": [3, 6],
  "host-unknown": [3, 7],
  "network-prohibited": [3, 9],
  "host-prohibited": [3, 10],
  "TOS-network-unreachable": [3, 11],
  "TOS-host-unreachable": [3, 12],
  "communication-prohibited": [3, 13],
  "host-precedence-violation": [3, 14],
  "precedence-cutoff": [3, 15],
  "source-quench": [4],
  redirect: [5],
  "network-redirect": [5, 0],
  "host-redirect": [5, 1],
  "TOS-network-redirect": [5, 2],
  "TOS-host-redirect": [5, 3],
  "echo-request": [8],
  ping: [8],
  "router-advertisement": [9],
  "router-solicitation": [10],
  "time-exceeded": [11],
  "ttl-exceeded": [11],
  "ttl-zero-during-transit": [11, 0],
  "ttl-zero-during-reassembly": [11, 1],
  "parameter-problem": [12],
  "ip-header-bad": [12, 0],
  "required-option-missing": [12, 1],
  "timestamp-request": [13],
  "timestamp-reply": [14],
  "address-mask-request": [17],
  "address-mask-reply": [18],
};

/** ICMPv6 type names as `ip6tables -p icmpv6 -h` lists them: [type, code?]. */
export const ICMPV6_TYPES: Record<string, [number, number?]> = {
  "destination-unreachable": [1],
  "no-route": [1, 0],
  "communication-prohibited": [1, 1],
  "beyond-scope": [1, 2],
  "address-unreachable": [1, 3],
  "port-unreachable": [1, 4],
  "failed-policy": [1, 5],
  "reject-route": [1, 6],
  "packet-too-big": [2],
  "time-exceeded": [3],
  "ttl-exceeded": [3],
  "ttl-zero-during-transit": [3, 0],
  "ttl-zero-during-reassembly": [3, 1],
  "parameter-problem": [4],
  "bad-header": [4, 0],
  "unknown-header-type": [4, 1],
  "unknown-option": [4, 2],
  "echo-request": [128],
  ping: [128],
  "echo-reply": [129],
  pong: [129],
  "router-solicitation": [133],
  "router-advertisement": [134],
  "neighbour-solicitation": [135],
  "neighbor-solicitation": [135],
  "neighbour-advertisement": [136],
  "neighbor-advertisement": [136],
  redirect: [137],
};

const REJECT_WITH: Record<string, [RejectReason, 0 | 4 | 6]> = {
  "icmp-net-unreachable": ["net-unreachable", 4],
  "icmp-host-unreachable": ["host-unreachable", 4],
  "icmp-port-unreachable": ["port-unreachable", 4],
  "icmp-proto-unreachable": ["proto-unreachable", 4],
  "icmp-net-prohibited": ["net-prohibited", 4],
  "icmp-host-prohibited": ["host-prohibited", 4],
  "icmp-admin-prohibited": ["admin-prohibited", 4],
  "tcp-reset": ["tcp-reset", 0],
  "icmp6-no-route": ["no-route", 6],
  "icmp6-adm-prohibited": ["admin-prohibited", 6],
  "icmp6-addr-unreachable": ["addr-unreachable", 6],
  "icmp6-port-unreachable": ["port-unreachable", 6],
};

const LOG_LEVELS: Record<string, number> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  error: 3,
  err: 3,
  warning: 4,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

const CT_STATES: CtState[] = [
  "NEW",
  "ESTABLISHED",
  "RELATED",
  "INVALID",
  "UNTRACKED",
  "SNAT",
  "DNAT",
];

/** Built-in target names (anything else after `-j` names a user chain). */
export const BUILTIN_TARGETS: readonly string[] = [
  "ACCEPT",
  "DROP",
  "RETURN",
  "NOTRACK",
  "REJECT",
  "LOG",
  "MARK",
  "SNAT",
  "DNAT",
  "MASQUERADE",
  "REDIRECT",
  "TCPMSS",
];

/** iptables commands that name a chain, which a rule string in TOML must not carry. */
const CHAIN_COMMANDS: readonly string[] = [
  "-A",
  "--append",
  "-I",
  "--insert",
  "-D",
  "--delete",
  "-R",
  "--replace",
];

/**
 * iptables/ip6tables targets tapir does not implement: named as such, not
 * taken for a jump to a user chain of that name.
 */
export const UNSUPPORTED_TARGETS: readonly string[] = [
  "NFQUEUE",
  "QUEUE",
  "NFLOG",
  "ULOG",
  "CT",
  "TPROXY",
  "CONNMARK",
  "CLASSIFY",
  "DSCP",
  "TOS",
  "TTL",
  "HL",
  "HMARK",
  "TEE",
  "TRACE",
  "AUDIT",
  "CHECKSUM",
  "CONNSECMARK",
  "SECMARK",
  "IDLETIMER",
  "LED",
  "NETMAP",
  "SET",
  "SYNPROXY",
  "ECN",
  "NPTV6",
  "SNPT",
  "DNPT",
  "MASQUERADE6",
];

/** Options each target takes. */
const TARGET_OPTIONS: Record<string, string[]> = {
  REJECT: ["--reject-with"],
  LOG: ["--log-prefix", "--log-level"],
  MARK: ["--set-mark"],
  SNAT: ["--to-source"],
  DNAT: ["--to-destination"],
  MASQUERADE: ["--to-ports"],
  REDIRECT: ["--to-ports"],
  TCPMSS: ["--clamp-mss-to-pmtu", "--set-mss"],
};
const ALL_TARGET_OPTIONS = new Set(Object.values(TARGET_OPTIONS).flat());
/** Target options that take no value. */
const FLAG_OPTIONS = new Set(["--clamp-mss-to-pmtu"]);

const MODULES = new Set([
  "multiport",
  "conntrack",
  "state",
  "limit",
  "comment",
  "mark",
  "tcp",
  "udp",
  "icmp",
  "icmp6",
]);

/** Module whose options each match option is; `-p` loads tcp/udp/icmp/icmp6. */
const MODULE_OF: Record<string, string> = {
  "--sport": "tcp/udp",
  "--source-port": "tcp/udp",
  "--dport": "tcp/udp",
  "--destination-port": "tcp/udp",
  "--tcp-flags": "tcp",
  "--syn": "tcp",
  "--icmp-type": "icmp",
  "--icmpv6-type": "icmp6",
  "--sports": "multiport",
  "--source-ports": "multiport",
  "--dports": "multiport",
  "--destination-ports": "multiport",
  "--ports": "multiport",
  "--ctstate": "conntrack",
  "--state": "state",
  "--limit": "limit",
  "--limit-burst": "limit",
  "--comment": "comment",
  "--mark": "mark",
};

/**
 * Split a rule into words the way a shell would: whitespace separates,
 * `"..."` and `'...'` group, and `\` escapes inside double quotes or
 * outside quotes.
 */
export function tokenizeRule(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let has = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (has) out.push(cur);
      cur = "";
      has = false;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw new RuleError(`unterminated quote starting at "${text.slice(i)}"`);
      cur += text.slice(i + 1, end);
      has = true;
      i = end;
    } else if (c === '"') {
      has = true;
      let j = i + 1;
      for (;; j++) {
        if (j >= text.length) {
          throw new RuleError(`unterminated quote starting at "${text.slice(i)}"`);
        }
        const d = text[j]!;
        if (d === "\\" && j + 1 < text.length) cur += text[++j];
        else if (d === '"') break;
        else cur += d;
      }
      i = j;
    } else if (c === "\\" && i + 1 < text.length) {
      cur += text[++i];
      has = true;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

function parseNumber(text: string, what: string, min: number, max: number): number {
  let n = NaN;
  if (/^[0-9]+$/.test(text)) n = Number(text);
  else if (/^0x[0-9a-fA-F]+$/.test(text)) n = parseInt(text.slice(2), 16);
  if (!Number.isInteger(n)) throw new RuleError(`${what} "${text}" is not a number`);
  if (n < min || n > max) {
    throw new RuleError(`${what} "${text}" is out of range (${min} to ${max})`);
  }
  return n;
}

function parsePort(text: string): number {
  if (!/^[0-9]+$/.test(text)) {
    throw new RuleError(`port "${text}" is not a number (service names are not supported)`);
  }
  return parseNumber(text, "port", 0, 65535);
}

/** `N`, `N:M`, `:M`, `N:` (or with `-` when `dash`). */
function parsePortRange(text: string, sep = ":"): PortRange {
  const i = text.indexOf(sep);
  if (i === -1) {
    const p = parsePort(text);
    return { min: p, max: p };
  }
  const a = text.slice(0, i), b = text.slice(i + 1);
  const min = a === "" ? 0 : parsePort(a);
  const max = b === "" ? 65535 : parsePort(b);
  if (min > max) throw new RuleError(`port range "${text}" runs backwards`);
  return { min, max };
}

function parseMarkValue(text: string): { value: number; mask: number } {
  const [v, m, extra] = text.split("/");
  if (extra !== undefined || v === undefined) throw new RuleError(`bad mark "${text}"`);
  return {
    value: parseNumber(v, "mark", 0, 0xffffffff),
    mask: m === undefined ? 0xffffffff : parseNumber(m, "mark mask", 0, 0xffffffff),
  };
}

function parseAddrOrCidr(text: string): IpCidr {
  if (text.includes(",")) throw new RuleError(`address lists ("${text}") are not supported`);
  try {
    if (text.includes("/")) return parseCidr(text, false);
    const a = parseIpAddress(text);
    return a.family === 4
      ? { family: 4, address: a.address, prefixLen: 32 }
      : { family: 6, address: a.address, prefixLen: 128 };
  } catch (e) {
    if (e instanceof AddressParseError) throw new RuleError(e.message);
    throw e;
  }
}

function parseInterface(text: string): InterfaceMatch {
  const prefix = text.endsWith("+");
  const name = prefix ? text.slice(0, -1) : text;
  if (!/^[A-Za-z0-9_.-]{0,15}$/.test(name) || (!prefix && name === "")) {
    throw new RuleError(`bad interface name "${text}"`);
  }
  return { name, prefix };
}

/** `ADDR`, `ADDR:P`, `ADDR:P-P`, `[V6]`, `[V6]:P-P`. */
function parseNatTo(text: string, what: string): { address: IpAddress; ports?: PortRange } {
  let addr = text;
  let ports: string | undefined;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end === -1) throw new RuleError(`${what} "${text}" has no closing "]"`);
    addr = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        throw new RuleError(`${what} "${text}": expected ":PORT" after "]"`);
      }
      ports = rest.slice(1);
    }
  } else if (text.includes(":") && text.indexOf(":") === text.lastIndexOf(":")) {
    addr = text.slice(0, text.indexOf(":"));
    ports = text.slice(text.indexOf(":") + 1);
  }
  if (/[-/]/.test(addr)) {
    throw new RuleError(`${what} "${text}": address ranges and prefixes are not supported`);
  }
  let address: IpAddress;
  try {
    address = parseIpAddress(addr);
  } catch (e) {
    if (e instanceof AddressParseError) throw new RuleError(e.message);
    throw e;
  }
  return ports === undefined ? { address } : { address, ports: parsePortRange(ports, "-") };
}

function parseTcpFlagList(text: string): number {
  let v = 0;
  for (const f of text.split(",")) {
    const bit = TCP_FLAGS[f.toUpperCase()];
    if (bit === undefined) {
      throw new RuleError(`unknown TCP flag "${f}" (use ${Object.keys(TCP_FLAGS).join(", ")})`);
    }
    v |= bit;
  }
  return v;
}

function parseIcmpType(text: string, v6: boolean): IcmpTypeMatch {
  const m = /^([0-9]+)(?:\/([0-9]+))?$/.exec(text);
  if (m) {
    const type = parseNumber(m[1]!, "ICMP type", 0, 255);
    return m[2] === undefined ? { type } : { type, code: parseNumber(m[2], "ICMP code", 0, 255) };
  }
  const table = v6 ? ICMPV6_TYPES : ICMP_TYPES;
  const hit = table[text] ??
    Object.entries(table).find(([k]) => k.toLowerCase() === text.toLowerCase())?.[1];
  if (!hit) {
    const other = v6 ? ICMP_TYPES[text] : ICMPV6_TYPES[text];
    throw new RuleError(
      `unknown ${v6 ? "ICMPv6" : "ICMP"} type "${text}"` +
        (other ? ` (it is an ${v6 ? "ICMP" : "ICMPv6"} type name)` : ""),
    );
  }
  return hit[1] === undefined ? { type: hit[0] } : { type: hit[0], code: hit[1] };
}

function parseLimit(text: string): LimitMatch {
  const m = /^([0-9]+)(?:\/([a-z]+))?$/.exec(text);
  if (!m) throw new RuleError(`bad --limit "${text}" (use N/second, N/minute, N/hour or N/day)`);
  const count = Number(m[1]);
  if (count < 1) throw new RuleError(`--limit "${text}" must be at least 1`);
  const u = m[2] ?? "second";
  const unit = (["second", "minute", "hour", "day"] as const).find((w) => w.startsWith(u));
  if (!unit) throw new RuleError(`bad --limit unit "${u}" (use second, minute, hour or day)`);
  const per = { second: 1, minute: 60, hour: 3600, day: 86400 }[unit];
  return { count, unit, perSecond: count / per, burst: 5 };
}

interface FamilyHint {
  family: 4 | 6;
  token: string;
}

/**
 * Parse one rule string.
 *
 * @param text e.g. `"-i lan0 -p tcp --dport 22 -j ACCEPT"`
 * @param ctx where the rule sits, for the table/chain/family checks
 * @returns the rule; a `-j NAME` that is no builtin target is a `JUMP` the caller checks
 * @throws RuleError naming the offending token
 * @example
 * ```ts
 * import { parseRule } from "./rule.ts";
 * const r = parseRule("-p tcp --dport 22 -j ACCEPT");
 * console.assert(r.destinationPorts?.value[0]?.min === 22 && r.target?.kind === "ACCEPT");
 * ```
 */
export function parseRule(text: string, ctx: RuleContext = {}): Rule {
  const toks = tokenizeRule(text);
  const rule: Rule = { text, family: 0 };
  const modules = new Set<string>();
  const seen = new Set<string>();
  const hints: FamilyHint[] = [];
  const targetOpts = new Map<string, string>();
  let targetName: string | undefined;
  let protoName: string | undefined;
  let invert = false;
  let i = 0;

  const next = (opt: string): string => {
    const v = toks[i++];
    if (v === undefined) throw new RuleError(`option "${opt}" needs a value`);
    if (v === "!") {
      if (invert) throw new RuleError(`"!" given twice for "${opt}"`);
      invert = true;
      return next(opt);
    }
    return v;
  };
  const once = (key: string, opt: string): void => {
    if (seen.has(key)) throw new RuleError(`option "${opt}" given twice`);
    seen.add(key);
  };
  const noInvert = (opt: string): void => {
    if (invert) throw new RuleError(`"!" cannot be used with "${opt}"`);
  };

  const first = toks[0];
  if (first !== undefined && CHAIN_COMMANDS.includes(first)) {
    const chain = toks[1] ?? "CHAIN";
    // `-I CHAIN 3 ...` carries a position too.
    const rest = toks.slice(/^\d+$/.test(toks[2] ?? "") ? 3 : 2).join(" ");
    throw new RuleError(
      `a rule does not name its chain: the chain is the TOML key (write ` +
        `${chain.toLowerCase()} = { rules = ["${rest}"] } instead of "${first} ${chain} ...")`,
    );
  }
  while (i < toks.length) {
    const tok = toks[i++]!;
    if (tok === "!") {
      if (invert) throw new RuleError(`"!" given twice`);
      invert = true;
      continue;
    }
    if (!tok.startsWith("-")) throw new RuleError(`unexpected "${tok}"`);
    const needModule = MODULE_OF[tok];
    if (needModule !== undefined) {
      const ok = needModule === "tcp/udp"
        ? protoName === "tcp" || protoName === "udp" || modules.has("tcp") || modules.has("udp")
        : needModule === "tcp" || needModule === "icmp" || needModule === "icmp6"
        ? modules.has(needModule) ||
          protoName === (needModule === "icmp6" ? "icmpv6" : needModule) ||
          (needModule === "icmp6" && protoName === "ipv6-icmp")
        : modules.has(needModule);
      if (!ok) {
        const how = needModule === "tcp/udp"
          ? `"-p tcp" or "-p udp"`
          : needModule === "tcp"
          ? `"-p tcp"`
          : needModule === "icmp"
          ? `"-p icmp"`
          : needModule === "icmp6"
          ? `"-p icmpv6"`
          : `"-m ${needModule}"`;
        throw new RuleError(`option "${tok}" needs ${how} before it`);
      }
    }
    switch (tok) {
      case "-s":
      case "--source":
      case "--src":
      case "-d":
      case "--destination":
      case "--dst": {
        const src = tok === "-s" || tok === "--source" || tok === "--src";
        once(src ? "-s" : "-d", tok);
        const v = next(tok);
        const cidr = parseAddrOrCidr(v);
        hints.push({ family: cidr.family, token: `${tok} ${v}` });
        const m = { value: cidr, invert };
        if (src) rule.source = m;
        else rule.destination = m;
        break;
      }
      case "-i":
      case "--in-interface":
      case "-o":
      case "--out-interface": {
        const inn = tok === "-i" || tok === "--in-interface";
        once(inn ? "-i" : "-o", tok);
        const v = next(tok);
        const m = { value: parseInterface(v), invert };
        if (inn) rule.inInterface = m;
        else rule.outInterface = m;
        break;
      }
      case "-p":
      case "--protocol": {
        once("-p", tok);
        const v = next(tok).toLowerCase();
        if (v === "all" || v === "0") {
          if (invert) throw new RuleError(`"! -p ${v}" would match nothing`);
          protoName = "all";
          break;
        }
        let n = PROTOCOLS[v];
        if (n === undefined) {
          if (/^[0-9]+$/.test(v)) n = parseNumber(v, "protocol", 0, 255);
          else {throw new RuleError(
              `unknown protocol "${v}" (use tcp, udp, icmp, icmpv6, all or a number)`,
            );}
        }
        protoName = v;
        rule.protocol = { value: n, invert };
        if (n === 1) hints.push({ family: 4, token: `${tok} ${v}` });
        if (n === 58) hints.push({ family: 6, token: `${tok} ${v}` });
        break;
      }
      case "--sport":
      case "--source-port":
      case "--dport":
      case "--destination-port": {
        const src = tok === "--sport" || tok === "--source-port";
        once(src ? "sport" : "dport", tok);
        if (protocolInverted(rule)) {
          throw new RuleError(`option "${tok}" needs a positive "-p tcp" or "-p udp"`);
        }
        const m = { value: [parsePortRange(next(tok))], invert };
        if (src) rule.sourcePorts = m;
        else rule.destinationPorts = m;
        break;
      }
      case "--sports":
      case "--source-ports":
      case "--dports":
      case "--destination-ports":
      case "--ports": {
        const which = tok === "--ports" ? "ports" : tok.startsWith("--s") ? "sport" : "dport";
        once(which, tok);
        if (rule.protocol?.value !== 6 && rule.protocol?.value !== 17 || rule.protocol.invert) {
          throw new RuleError(`option "${tok}" needs "-p tcp" or "-p udp" before it`);
        }
        const list = next(tok).split(",");
        if (list.some((p) => p === "")) throw new RuleError(`empty port in "${tok}" list`);
        const ranges = list.map((p) => parsePortRange(p));
        const weight = ranges.reduce((n, r) => n + (r.min === r.max ? 1 : 2), 0);
        if (weight > 15) {
          throw new RuleError(`too many ports in "${tok}" (at most 15, a range counts as 2)`);
        }
        const m = { value: ranges, invert };
        if (which === "ports") rule.ports = m;
        else if (which === "sport") rule.sourcePorts = m;
        else rule.destinationPorts = m;
        break;
      }
      case "--tcp-flags": {
        once("tcp-flags", tok);
        const mask = parseTcpFlagList(next(tok));
        const compText = toks[i++];
        if (compText === undefined) throw new RuleError(`option "--tcp-flags" needs MASK and COMP`);
        const comp = parseTcpFlagList(compText);
        rule.tcpFlags = { value: { mask, comp }, invert };
        break;
      }
      case "--syn":
        once("tcp-flags", tok);
        rule.tcpFlags = { value: { mask: 0x17, comp: 0x02 }, invert };
        break;
      case "--icmp-type":
      case "--icmpv6-type": {
        once("icmp-type", tok);
        const v6 = tok === "--icmpv6-type";
        const v = next(tok);
        rule.icmpType = { value: parseIcmpType(v, v6), invert };
        hints.push({ family: v6 ? 6 : 4, token: `${tok} ${v}` });
        break;
      }
      case "--ctstate":
      case "--state": {
        once("ctstate", tok);
        const v = next(tok);
        const states: CtState[] = [];
        for (const s of v.split(",")) {
          const st = s.toUpperCase() as CtState;
          if (!CT_STATES.includes(st) || (tok === "--state" && (st === "SNAT" || st === "DNAT"))) {
            throw new RuleError(
              `unknown state "${s}" in "${tok}" (use ${
                CT_STATES.filter((x) => tok === "--ctstate" || (x !== "SNAT" && x !== "DNAT")).join(
                  ",",
                )
              })`,
            );
          }
          if (!states.includes(st)) states.push(st);
        }
        rule.ctState = { value: states, invert };
        break;
      }
      case "--limit": {
        noInvert(tok);
        once("limit", tok);
        const burst = rule.limit?.burst ?? 5;
        rule.limit = { ...parseLimit(next(tok)), burst };
        break;
      }
      case "--limit-burst": {
        noInvert(tok);
        once("limit-burst", tok);
        const burst = parseNumber(next(tok), "--limit-burst", 1, 10000);
        rule.limit = { ...(rule.limit ?? parseLimit("3/hour")), burst };
        break;
      }
      case "--comment": {
        noInvert(tok);
        once("comment", tok);
        const v = next(tok);
        if (v.length > 256) throw new RuleError(`comment is longer than 256 characters`);
        rule.comment = v;
        break;
      }
      case "--mark": {
        once("mark", tok);
        rule.mark = { value: parseMarkValue(next(tok)), invert };
        break;
      }
      case "-m":
      case "--match": {
        noInvert(tok);
        const v = next(tok);
        if (!MODULES.has(v)) {
          throw new RuleError(`unsupported match module "${v}" (use ${[...MODULES].join(", ")})`);
        }
        modules.add(v);
        break;
      }
      case "-j":
      case "--jump": {
        noInvert(tok);
        if (ctx.matchOnly) throw new RuleError(`a match-only rule takes no target ("${tok}")`);
        once("-j", tok);
        targetName = next(tok);
        if (UNSUPPORTED_TARGETS.includes(targetName.toUpperCase())) {
          throw new RuleError(
            `unsupported target "${targetName}" (tapir's targets: ${BUILTIN_TARGETS.join(", ")}, ` +
              `or a user chain of this table)`,
          );
        }
        break;
      }
      case "-g":
      case "--goto":
        throw new RuleError(`unsupported option "${tok}" (goto is not supported; use -j)`);
      default: {
        if (ALL_TARGET_OPTIONS.has(tok)) {
          noInvert(tok);
          if (targetOpts.has(tok)) throw new RuleError(`option "${tok}" given twice`);
          targetOpts.set(tok, FLAG_OPTIONS.has(tok) ? "" : next(tok));
          break;
        }
        throw new RuleError(`unsupported option "${tok}"`);
      }
    }
    invert = false;
  }
  if (invert) throw new RuleError(`"!" at the end of the rule negates nothing`);

  // Protocol-dependent checks.
  const proto = rule.protocol && !rule.protocol.invert ? rule.protocol.value : undefined;
  if (rule.icmpType && rule.icmpType.value && proto !== 1 && proto !== 58) {
    throw new RuleError(`"--icmp-type" needs "-p icmp"`);
  }

  if (targetName !== undefined) {
    rule.target = buildTarget(targetName, targetOpts, proto, hints);
  } else if (targetOpts.size > 0) {
    throw new RuleError(`option "${[...targetOpts.keys()][0]}" needs a target (-j)`);
  } else if (!ctx.matchOnly && ctx.table !== undefined) {
    throw new RuleError(`rule has no target (add "-j ACCEPT", "-j DROP", ...)`);
  }

  // Family: what the rule names must agree with itself and with the table.
  const v4 = hints.find((h) => h.family === 4);
  const v6 = hints.find((h) => h.family === 6);
  if (v4 && v6) {
    throw new RuleError(`rule mixes IPv4 ("${v4.token}") and IPv6 ("${v6.token}")`);
  }
  const hint = v4 ?? v6;
  if (hint && ctx.family !== undefined && ctx.family !== 0 && ctx.family !== hint.family) {
    throw new RuleError(
      `"${hint.token}" is IPv${hint.family} but this is an ipv${ctx.family} table`,
    );
  }
  rule.family = hint?.family ?? (ctx.family ?? 0);

  checkPlacement(rule, ctx);
  return rule;
}

function protocolInverted(rule: Rule): boolean {
  return rule.protocol?.invert === true;
}

function buildTarget(
  name: string,
  opts: Map<string, string>,
  proto: number | undefined,
  hints: FamilyHint[],
): Target {
  const allowed = TARGET_OPTIONS[name] ?? [];
  for (const k of opts.keys()) {
    if (!allowed.includes(k)) {
      throw new RuleError(
        `option "${k}" is not valid with target ${
          BUILTIN_TARGETS.includes(name) ? name : `"${name}"`
        }`,
      );
    }
  }
  const needPorts = (opt: string): void => {
    if (proto !== 6 && proto !== 17) throw new RuleError(`"${opt}" needs "-p tcp" or "-p udp"`);
  };
  switch (name) {
    case "ACCEPT":
    case "DROP":
    case "RETURN":
    case "NOTRACK":
      return { kind: name };
    case "REJECT": {
      const w = opts.get("--reject-with");
      if (w === undefined) return { kind: "REJECT", reason: "port-unreachable" };
      const hit = REJECT_WITH[w];
      if (!hit) {
        throw new RuleError(
          `unknown --reject-with "${w}" (use ${Object.keys(REJECT_WITH).join(", ")})`,
        );
      }
      if (hit[0] === "tcp-reset" && proto !== 6) {
        throw new RuleError(`"--reject-with tcp-reset" needs "-p tcp"`);
      }
      if (hit[1] !== 0) hints.push({ family: hit[1], token: `--reject-with ${w}` });
      return { kind: "REJECT", reason: hit[0] };
    }
    case "LOG": {
      const prefix = opts.get("--log-prefix") ?? "";
      if (prefix.length > 29) throw new RuleError(`--log-prefix is longer than 29 characters`);
      const lv = opts.get("--log-level");
      let level = 4;
      if (lv !== undefined) {
        const named = LOG_LEVELS[lv.toLowerCase()];
        level = named ?? parseNumber(lv, "--log-level", 0, 7);
      }
      return { kind: "LOG", prefix, level };
    }
    case "MARK": {
      const v = opts.get("--set-mark");
      if (v === undefined) throw new RuleError(`target MARK needs "--set-mark VALUE[/MASK]"`);
      return { kind: "MARK", ...parseMarkValue(v) };
    }
    case "SNAT":
    case "DNAT": {
      const opt = name === "SNAT" ? "--to-source" : "--to-destination";
      const v = opts.get(opt);
      if (v === undefined) throw new RuleError(`target ${name} needs "${opt} ADDRESS"`);
      const to = parseNatTo(v, opt);
      if (to.ports) needPorts(opt);
      hints.push({ family: to.address.family, token: `${opt} ${v}` });
      return { kind: name, ...to };
    }
    case "MASQUERADE":
    case "REDIRECT": {
      const v = opts.get("--to-ports");
      if (v === undefined) return { kind: name };
      needPorts("--to-ports");
      return { kind: name, ports: parsePortRange(v, "-") };
    }
    case "TCPMSS": {
      if (proto !== 6) throw new RuleError(`target TCPMSS needs "-p tcp"`);
      const clamp = opts.has("--clamp-mss-to-pmtu");
      const set = opts.get("--set-mss");
      if (clamp === (set !== undefined)) {
        throw new RuleError(
          `target TCPMSS needs exactly one of "--clamp-mss-to-pmtu" and "--set-mss N"`,
        );
      }
      return {
        kind: "TCPMSS",
        mss: set === undefined ? "pmtu" : parseNumber(set, "--set-mss", 1, 65495),
      };
    }
  }
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,28}$/.test(name)) throw new RuleError(`bad target "${name}"`);
  return { kind: "JUMP", chain: name };
}

/** Which targets and interface matches a table/chain allows (as iptables enforces). */
function checkPlacement(rule: Rule, ctx: RuleContext): void {
  const { table, chain } = ctx;
  if (table === undefined || chain === undefined) return;
  const builtin = ctx.builtin ?? true;
  const kind = rule.target?.kind;
  const here = builtin ? `the ${table} ${chain} chain` : `the ${table} table`;
  const only = (tables: string[], chains: string[] | undefined, label: string): void => {
    const okTable = tables.includes(table);
    const okChain = !builtin || chains === undefined || chains.includes(chain);
    if (!okTable || !okChain) {
      throw new RuleError(`target ${kind} is not allowed in ${here} (${label})`);
    }
  };
  switch (kind) {
    case "SNAT":
    case "MASQUERADE":
      only(["nat"], ["postrouting", "input"], "only in nat postrouting or input");
      break;
    case "DNAT":
    case "REDIRECT":
      only(["nat"], ["prerouting", "output"], "only in nat prerouting or output");
      break;
    case "NOTRACK":
      only(["raw"], undefined, "only in the raw table");
      break;
    case "REJECT":
      only(["filter"], undefined, "only in the filter table");
      break;
    case "DROP":
      if (table === "nat") {
        throw new RuleError(
          `target DROP is not allowed in the nat table (filter in [firewall.filter])`,
        );
      }
      break;
    case "TCPMSS":
      only(
        ["filter", "nat", "raw"],
        ["forward", "output", "postrouting"],
        "only in forward, output or postrouting",
      );
      break;
  }
  if (builtin && rule.inInterface && (chain === "output" || chain === "postrouting")) {
    throw new RuleError(
      `"-i" cannot be used in the ${chain} chain (packets there have no input interface)`,
    );
  }
  if (builtin && rule.outInterface && (chain === "prerouting" || chain === "input")) {
    throw new RuleError(
      `"-o" cannot be used in the ${chain} chain (packets there have no output interface yet)`,
    );
  }
}
