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
  HashlimitMatch,
  IcmpTypeMatch,
  InterfaceMatch,
  LimitMatch,
  Negatable,
  PortRange,
  RecentMatch,
  RejectReason,
  Rule,
  StatefulMatchName,
  Target,
} from "../stack/firewall/rule_types.ts";
import { ADDRTYPE_BITS } from "../stack/firewall/rule_types.ts";

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
  table?: "filter" | "nat" | "raw" | "mangle";
  /** Chain name (builtins lower case). */
  chain?: string;
  /** Whether `chain` is a builtin chain. */
  builtin?: boolean;
  /** The table's family scope: 0 = shared. */
  family?: 0 | 4 | 6;
  /** Only matches are allowed (no `-j`). */
  matchOnly?: boolean;
  /**
   * The named sets `-m set --match-set` may name (`[firewall.sets]`): a
   * set of one family makes the rule that family's. Absent: names are not
   * checked.
   */
  sets?: ReadonlyMap<string, { family: 0 | 4 | 6 }>;
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
  "NETMAP",
  "SNPT",
  "DNPT",
  "CONNMARK",
  "DSCP",
  "TOS",
  "TTL",
  "HL",
  "CT",
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
  "TPROXY",
  "CLASSIFY",
  "HMARK",
  "TEE",
  "TRACE",
  "AUDIT",
  "CHECKSUM",
  "CONNSECMARK",
  "SECMARK",
  "IDLETIMER",
  "LED",
  "SET",
  "SYNPROXY",
  "ECN",
  "NPTV6",
  "MASQUERADE6",
];

/**
 * iptables targets and match modules that have no meaning in tapir, each
 * with the reason, so a rule set written for the kernel says why it cannot
 * load rather than only that it cannot.
 */
export const MEANINGLESS_TARGETS: Readonly<Record<string, string>> = {
  NFQUEUE: "tapir has no netlink queue to hand packets to a userspace program",
  QUEUE: "tapir has no netlink queue to hand packets to a userspace program",
  TPROXY: "tapir has no transparent (IP_TRANSPARENT) sockets to hand a packet to",
  ULOG: "ULOG is gone from Linux since 3.17 and tapir has no netlink log; use -j LOG",
  NFLOG: "tapir has no netlink log group to send packets to; use -j LOG",
};

/** See {@link MEANINGLESS_TARGETS}. */
export const MEANINGLESS_MODULES: Readonly<Record<string, string>> = {
  physdev: "tapir has no bridges: a packet's device is its -i/-o interface",
  helper:
    "tapir has no connection tracking helpers (FTP, SIP, ...), so no connection is ever RELATED through one",
  owner:
    "tapir does not know the process or user behind a packet (its sockets belong to the stack itself)",
  socket: "tapir's firewall does not look up sockets (there is no TPROXY to use them)",
  cgroup: "tapir's packets belong to no cgroup (its sockets belong to the stack itself)",
};

/** Options each target takes. */
const TARGET_OPTIONS: Record<string, string[]> = {
  REJECT: ["--reject-with"],
  LOG: ["--log-prefix", "--log-level"],
  MARK: ["--set-mark", "--set-xmark", "--and-mark", "--or-mark", "--xor-mark"],
  CONNMARK: [
    "--set-mark",
    "--set-xmark",
    "--and-mark",
    "--or-mark",
    "--xor-mark",
    "--save-mark",
    "--restore-mark",
    "--mask",
    "--nfmask",
    "--ctmask",
  ],
  DSCP: ["--set-dscp", "--set-dscp-class"],
  TOS: ["--set-tos", "--and-tos", "--or-tos", "--xor-tos"],
  TTL: ["--ttl-set", "--ttl-dec", "--ttl-inc"],
  HL: ["--hl-set", "--hl-dec", "--hl-inc"],
  CT: [
    "--notrack",
    "--zone",
    "--helper",
    "--ctevents",
    "--expevents",
    "--timeout",
    "--zone-orig",
    "--zone-reply",
  ],
  // `--to` is the unique prefix iptables also takes for --to-source/-destination/-ports.
  SNAT: ["--to-source", "--to"],
  DNAT: ["--to-destination", "--to"],
  MASQUERADE: ["--to-ports", "--to"],
  REDIRECT: ["--to-ports", "--to"],
  NETMAP: ["--to"],
  SNPT: ["--src-pfx", "--dst-pfx"],
  DNPT: ["--src-pfx", "--dst-pfx"],
  TCPMSS: ["--clamp-mss-to-pmtu", "--set-mss"],
};
const ALL_TARGET_OPTIONS = new Set(Object.values(TARGET_OPTIONS).flat());
/** Target options that take no value. */
const FLAG_OPTIONS = new Set(["--clamp-mss-to-pmtu", "--save-mark", "--restore-mark", "--notrack"]);

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
  "set",
  "recent",
  "addrtype",
  "iprange",
  "connlimit",
  "hashlimit",
  "statistic",
  "pkttype",
  "mac",
  "length",
  "connmark",
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
  "--mark": "mark/connmark",
  "--match-set": "set",
  "--set": "recent",
  "--rcheck": "recent",
  "--update": "recent",
  "--remove": "recent",
  "--seconds": "recent",
  "--reap": "recent",
  "--hitcount": "recent",
  "--rttl": "recent",
  "--name": "recent",
  "--rsource": "recent",
  "--rdest": "recent",
  "--mask": "recent",
  "--src-type": "addrtype",
  "--dst-type": "addrtype",
  "--limit-iface-in": "addrtype",
  "--limit-iface-out": "addrtype",
  "--src-range": "iprange",
  "--dst-range": "iprange",
  "--connlimit-above": "connlimit",
  "--connlimit-upto": "connlimit",
  "--connlimit-mask": "connlimit",
  "--connlimit-saddr": "connlimit",
  "--connlimit-daddr": "connlimit",
  "--hashlimit": "hashlimit",
  "--hashlimit-upto": "hashlimit",
  "--hashlimit-above": "hashlimit",
  "--hashlimit-burst": "hashlimit",
  "--hashlimit-mode": "hashlimit",
  "--hashlimit-srcmask": "hashlimit",
  "--hashlimit-dstmask": "hashlimit",
  "--hashlimit-name": "hashlimit",
  "--hashlimit-htable-size": "hashlimit",
  "--hashlimit-htable-max": "hashlimit",
  "--hashlimit-htable-expire": "hashlimit",
  "--hashlimit-htable-gcinterval": "hashlimit",
  "--mode": "statistic",
  "--probability": "statistic",
  "--every": "statistic",
  "--packet": "statistic",
  "--pkt-type": "pkttype",
  "--mac-source": "mac",
  "--length": "length",
};

/** `-m addrtype` type names (iptables -m addrtype -h). */
const ADDRTYPE_NAMES = Object.keys(ADDRTYPE_BITS);

/** DSCP class names (libxt_dscp_helper): CS0-7, AF11-43, EF, BE. */
const DSCP_CLASSES: Record<string, number> = {
  CS0: 0x00,
  CS1: 0x08,
  CS2: 0x10,
  CS3: 0x18,
  CS4: 0x20,
  CS5: 0x28,
  CS6: 0x30,
  CS7: 0x38,
  BE: 0x00,
  AF11: 0x0a,
  AF12: 0x0c,
  AF13: 0x0e,
  AF21: 0x12,
  AF22: 0x14,
  AF23: 0x16,
  AF31: 0x1a,
  AF32: 0x1c,
  AF33: 0x1e,
  AF41: 0x22,
  AF42: 0x24,
  AF43: 0x26,
  EF: 0x2e,
};

/** TOS names (libxt_TOS, RFC 1349), each set under the mask 0x3f. */
const TOS_NAMES: Record<string, number> = {
  "minimize-delay": 0x10,
  "maximize-throughput": 0x08,
  "maximize-reliability": 0x04,
  "minimize-cost": 0x02,
  "normal-service": 0x00,
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
    const slash = text.indexOf("/");
    if (slash !== -1 && text.slice(slash + 1).includes(".")) {
      // iptables' netmask form: 192.0.2.0/255.255.255.0.
      const mask = parseIpAddress(text.slice(slash + 1));
      if (mask.family !== 4) throw new RuleError(`bad netmask in "${text}"`);
      const m = mask.address >>> 0;
      const len = 32 - Math.log2(((~m) >>> 0) + 1);
      if (!Number.isInteger(len)) {
        throw new RuleError(`netmask of "${text}" is not contiguous (write a prefix length)`);
      }
      return parseCidr(`${text.slice(0, slash)}/${len}`, false);
    }
    if (slash !== -1) return parseCidr(text, false);
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
  // iptables' "any" is type 255 with any code (the kernel's icmp_type_code_match).
  if (!v6 && text.toLowerCase() === "any") return { type: 255 };
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
  /** Which of `-m mark` and `-m connmark` was loaded last (its `--mark`). */
  let markModule: "mark" | "connmark" | undefined;
  let statMode: "random" | "nth" | undefined;
  let statProbability: Negatable<number> | undefined;
  let statEvery: Negatable<number> | undefined;
  let statPacket: number | undefined;
  const recent = (): RecentMatch =>
    rule.recent ??= {
      name: "DEFAULT",
      mode: undefined as unknown as RecentMatch["mode"],
      seconds: 0,
      reap: false,
      hitcount: 0,
      rttl: false,
      side: "src",
      invert: false,
    };
  const connlimit = (): NonNullable<Rule["connlimit"]> =>
    rule.connlimit ??= { limit: -1, above: true, side: "src", invert: false };
  const hashlimit = (): HashlimitMatch =>
    rule.hashlimit ??= {
      name: "",
      count: 0,
      unit: "second",
      perSecond: 0,
      burst: 5,
      above: false,
      mode: [],
      expireMs: 10_000,
      max: 65536,
    };
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
    // After -j, an option the target takes is the target's (CONNMARK's --mask, not recent's).
    if (
      targetName !== undefined && ALL_TARGET_OPTIONS.has(tok) &&
      !(tok in MODULE_OF && !(TARGET_OPTIONS[targetName] ?? []).includes(tok))
    ) {
      noInvert(tok);
      if (targetOpts.has(tok)) throw new RuleError(`option "${tok}" given twice`);
      targetOpts.set(tok, FLAG_OPTIONS.has(tok) ? "" : next(tok));
      continue;
    }
    const needModule = MODULE_OF[tok];
    if (needModule !== undefined) {
      const ok = needModule === "mark/connmark"
        ? markModule !== undefined
        : needModule === "tcp/udp"
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
          : needModule === "mark/connmark"
          ? `"-m mark" or "-m connmark"`
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
        if (v === "0/0") {
          // Any address of either family: no match at all.
          if (invert) throw new RuleError(`"! ${tok} 0/0" would match nothing`);
          break;
        }
        const cidr = parseAddrOrCidr(v);
        hints.push({ family: cidr.family, token: `${tok} ${v}` });
        const m = { value: cidr, invert };
        if (src) rule.source = m;
        else rule.destination = m;
        break;
      }
      case "-f":
      case "--fragment":
        // IPv4 only: ip6tables has -m frag instead.
        once("-f", tok);
        rule.fragment = { invert };
        hints.push({ family: 4, token: tok });
        break;
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
        once(markModule!, tok);
        const m = { value: parseMarkValue(next(tok)), invert };
        if (markModule === "connmark") rule.connmark = m;
        else rule.mark = m;
        break;
      }
      case "--set":
      case "--rcheck":
      case "--update":
      case "--remove": {
        once("recent-mode", tok);
        recent().mode = tok.slice(2) as RecentMatch["mode"];
        recent().invert = invert;
        break;
      }
      case "--seconds":
      case "--hitcount": {
        noInvert(tok);
        once(tok, tok);
        const n = parseNumber(
          next(tok),
          tok,
          tok === "--seconds" ? 1 : 1,
          tok === "--seconds" ? 0xffffffff : 255,
        );
        if (tok === "--seconds") recent().seconds = n;
        else recent().hitcount = n;
        break;
      }
      case "--reap":
      case "--rttl":
        noInvert(tok);
        once(tok, tok);
        if (tok === "--reap") recent().reap = true;
        else recent().rttl = true;
        break;
      case "--name": {
        noInvert(tok);
        once(tok, tok);
        const v = next(tok);
        if (!/^[A-Za-z0-9_.:-]{1,199}$/.test(v)) throw new RuleError(`bad --name "${v}"`);
        recent().name = v;
        break;
      }
      case "--rsource":
      case "--rdest":
        noInvert(tok);
        once("recent-side", tok);
        recent().side = tok === "--rdest" ? "dst" : "src";
        break;
      case "--mask": {
        noInvert(tok);
        once(tok, tok);
        const v = next(tok);
        const a = parseAddress(v, "--mask");
        hints.push({ family: a.family, token: `--mask ${v}` });
        recent().mask = a;
        break;
      }
      case "--src-type":
      case "--dst-type": {
        once(tok, tok);
        const v = next(tok);
        let bits = 0;
        for (const name of v.split(",")) {
          const b = ADDRTYPE_BITS[name.toUpperCase()];
          if (b === undefined) {
            throw new RuleError(
              `unknown address type "${name}" (use ${ADDRTYPE_NAMES.join(", ")})`,
            );
          }
          bits |= b;
        }
        const a = rule.addrType ??= { limitIn: false, limitOut: false };
        if (tok === "--src-type") a.src = { value: bits, invert };
        else a.dst = { value: bits, invert };
        break;
      }
      case "--limit-iface-in":
      case "--limit-iface-out": {
        noInvert(tok);
        once("limit-iface", tok);
        const a = rule.addrType ??= { limitIn: false, limitOut: false };
        if (tok === "--limit-iface-in") a.limitIn = true;
        else a.limitOut = true;
        break;
      }
      case "--src-range":
      case "--dst-range": {
        once(tok, tok);
        const v = next(tok);
        const dash = v.indexOf("-");
        if (dash === -1) throw new RuleError(`${tok} "${v}" is not a range FROM-TO`);
        const from = parseAddress(v.slice(0, dash), tok), to = parseAddress(v.slice(dash + 1), tok);
        if (from.family !== to.family) throw new RuleError(`${tok} "${v}" mixes IPv4 and IPv6`);
        if (compareAddress(from, to) > 0) throw new RuleError(`${tok} "${v}" runs backwards`);
        hints.push({ family: from.family, token: `${tok} ${v}` });
        const r = rule.ipRange ??= {};
        const m = { value: { from, to }, invert };
        if (tok === "--src-range") r.src = m;
        else r.dst = m;
        break;
      }
      case "--connlimit-above":
      case "--connlimit-upto": {
        once("connlimit", tok);
        const n = parseNumber(next(tok), tok, 0, 0xffffffff);
        const c = connlimit();
        c.limit = n;
        c.above = tok === "--connlimit-above";
        c.invert = invert;
        break;
      }
      case "--connlimit-mask": {
        noInvert(tok);
        once(tok, tok);
        connlimit().prefixLen = parseNumber(next(tok), tok, 0, 128);
        break;
      }
      case "--connlimit-saddr":
      case "--connlimit-daddr":
        noInvert(tok);
        once("connlimit-side", tok);
        connlimit().side = tok === "--connlimit-daddr" ? "dst" : "src";
        break;
      case "--hashlimit":
      case "--hashlimit-upto":
      case "--hashlimit-above": {
        noInvert(tok);
        once("hashlimit-rate", tok);
        const v = next(tok);
        if (/[bB]\//.test(v) || /^[0-9]+[kmg]?b/i.test(v)) {
          throw new RuleError(
            `hashlimit in bytes ("${v}") is not supported (use packets: N/second)`,
          );
        }
        const l = parseLimit(v);
        const h = hashlimit();
        h.count = l.count;
        h.unit = l.unit;
        h.perSecond = l.perSecond;
        h.above = tok === "--hashlimit-above";
        break;
      }
      case "--hashlimit-burst": {
        noInvert(tok);
        once(tok, tok);
        hashlimit().burst = parseNumber(next(tok), tok, 1, 10000);
        break;
      }
      case "--hashlimit-mode": {
        noInvert(tok);
        once(tok, tok);
        const v = next(tok);
        const parts = v.split(",");
        for (const m of parts) {
          if (!["srcip", "dstip", "srcport", "dstport"].includes(m)) {
            throw new RuleError(`bad --hashlimit-mode "${m}" (use srcip, dstip, srcport, dstport)`);
          }
        }
        hashlimit().mode = parts as HashlimitMatch["mode"];
        break;
      }
      case "--hashlimit-srcmask":
      case "--hashlimit-dstmask": {
        noInvert(tok);
        once(tok, tok);
        const n = parseNumber(next(tok), tok, 0, 128);
        if (tok === "--hashlimit-srcmask") hashlimit().srcMask = n;
        else hashlimit().dstMask = n;
        break;
      }
      case "--hashlimit-name": {
        noInvert(tok);
        once(tok, tok);
        const v = next(tok);
        if (!/^[A-Za-z0-9_.:-]{1,31}$/.test(v)) throw new RuleError(`bad --hashlimit-name "${v}"`);
        hashlimit().name = v;
        break;
      }
      case "--hashlimit-htable-expire":
      case "--hashlimit-htable-max":
      case "--hashlimit-htable-size":
      case "--hashlimit-htable-gcinterval": {
        noInvert(tok);
        once(tok, tok);
        const n = parseNumber(next(tok), tok, 1, 0xffffffff);
        if (tok === "--hashlimit-htable-expire") hashlimit().expireMs = n;
        else if (tok === "--hashlimit-htable-max") hashlimit().max = n;
        // The size and gc interval shape the kernel's table only.
        break;
      }
      case "--mode": {
        noInvert(tok);
        once(tok, tok);
        const v = next(tok);
        if (v !== "random" && v !== "nth") {
          throw new RuleError(`bad --mode "${v}" (use random or nth)`);
        }
        statMode = v;
        break;
      }
      case "--probability": {
        once(tok, tok);
        const v = next(tok);
        const n = Number(v);
        if (!/^[0-9.]+$/.test(v) || !(n >= 0 && n <= 1)) {
          throw new RuleError(`--probability "${v}" is not a number from 0 to 1`);
        }
        statProbability = { value: n, invert };
        break;
      }
      case "--every": {
        once(tok, tok);
        statEvery = { value: parseNumber(next(tok), tok, 1, 0xffffffff), invert };
        break;
      }
      case "--packet": {
        noInvert(tok);
        once(tok, tok);
        statPacket = parseNumber(next(tok), tok, 0, 0xffffffff);
        break;
      }
      case "--pkt-type": {
        once(tok, tok);
        const v = next(tok).toLowerCase();
        const t = v === "host" ? "unicast" : v;
        if (t !== "unicast" && t !== "broadcast" && t !== "multicast") {
          throw new RuleError(`bad --pkt-type "${v}" (use unicast, broadcast or multicast)`);
        }
        rule.pktType = { value: t, invert };
        break;
      }
      case "--mac-source": {
        once(tok, tok);
        const v = next(tok);
        if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(v)) {
          throw new RuleError(`bad --mac-source "${v}" (use XX:XX:XX:XX:XX:XX)`);
        }
        rule.macSource = { value: Uint8Array.from(v.split(":"), (x) => parseInt(x, 16)), invert };
        break;
      }
      case "--length": {
        once(tok, tok);
        const v = next(tok);
        const m = /^([0-9]+)(?::([0-9]+))?$/.exec(v);
        if (m === null) throw new RuleError(`bad --length "${v}" (use N or N:M)`);
        const min = parseNumber(m[1]!, "--length", 0, 65535);
        const max = m[2] === undefined ? min : parseNumber(m[2], "--length", 0, 65535);
        if (min > max) throw new RuleError(`--length "${v}" runs backwards`);
        rule.length = { value: { min, max }, invert };
        break;
      }
      case "--match-set": {
        // xt_set: NAME, then one src/dst flag per dimension of the set.
        const name = next(tok);
        const flags = toks[i++];
        if (flags === undefined || flags.startsWith("-")) {
          throw new RuleError(
            `option "--match-set" needs NAME and FLAGS (e.g. "src" or "src,dst")`,
          );
        }
        const dirs = flags.split(",");
        if (dirs.length > 6 || dirs.some((d) => d !== "src" && d !== "dst")) {
          throw new RuleError(
            `bad --match-set flags "${flags}" (one "src" or "dst" per dimension, e.g. "src,dst")`,
          );
        }
        const set = ctx.sets?.get(name);
        if (ctx.sets !== undefined && set === undefined) {
          const names = [...ctx.sets.keys()];
          throw new RuleError(
            `no set named "${name}" (${
              names.length === 0
                ? "define it in [firewall.sets." + name + "]"
                : `the sets: ${names.join(", ")}`
            })`,
          );
        }
        if (set !== undefined && set.family !== 0) {
          hints.push({ family: set.family, token: `--match-set ${name}` });
        }
        (rule.matchSets ??= []).push({ name, dirs: dirs as ("src" | "dst")[], invert });
        break;
      }
      case "-m":
      case "--match": {
        noInvert(tok);
        const v = next(tok);
        const why = MEANINGLESS_MODULES[v];
        if (why !== undefined) {
          throw new RuleError(`match module "${v}" has no meaning in tapir: ${why}`);
        }
        if (!MODULES.has(v)) {
          throw new RuleError(`unsupported match module "${v}" (use ${[...MODULES].join(", ")})`);
        }
        modules.add(v);
        if (v === "mark" || v === "connmark") markModule = v;
        if (
          STATEFUL_MODULES.includes(v) && !(rule.stateful ?? []).includes(v as StatefulMatchName)
        ) {
          (rule.stateful ??= []).push(v as StatefulMatchName);
        }
        break;
      }
      case "-j":
      case "--jump": {
        noInvert(tok);
        if (ctx.matchOnly) throw new RuleError(`a match-only rule takes no target ("${tok}")`);
        once("-j", tok);
        targetName = next(tok);
        const why = MEANINGLESS_TARGETS[targetName.toUpperCase()];
        if (why !== undefined) {
          throw new RuleError(`target "${targetName}" has no meaning in tapir: ${why}`);
        }
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
  checkModules(rule, modules, hints, { statMode, statProbability, statEvery, statPacket });

  // Protocol-dependent checks.
  const proto = rule.protocol && !rule.protocol.invert ? rule.protocol.value : undefined;
  if (rule.icmpType && rule.icmpType.value && proto !== 1 && proto !== 58) {
    throw new RuleError(`"--icmp-type" needs "-p icmp"`);
  }

  if (targetName !== undefined) {
    rule.target = buildTarget(targetName, targetOpts, proto, hints);
  } else if (targetOpts.size > 0) {
    throw new RuleError(`option "${[...targetOpts.keys()][0]}" needs a target (-j)`);
  }
  // No target: as in iptables, the rule counts what it matches and the
  // walk goes on (an accounting rule).

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

/** The match modules that keep state from packet to packet. */
const STATEFUL_MODULES: readonly string[] = ["recent", "connlimit", "hashlimit", "statistic"];

/** An address (no prefix) for a match option. */
function parseAddress(text: string, opt: string): IpAddress {
  try {
    return parseIpAddress(text);
  } catch (e) {
    if (e instanceof AddressParseError) throw new RuleError(`${opt}: ${e.message}`);
    throw e;
  }
}

/** Two addresses of one family compared as unsigned numbers. */
function compareAddress(a: IpAddress, b: IpAddress): number {
  if (a.family === 4 && b.family === 4) return (a.address >>> 0) - (b.address >>> 0);
  const x = a.address as Uint8Array, y = b.address as Uint8Array;
  for (let i = 0; i < 16; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/**
 * What each loaded match module needs once the whole rule is read (the
 * checks libxt_* make in their final_check), and the family its options
 * imply.
 */
function checkModules(
  rule: Rule,
  modules: Set<string>,
  hints: FamilyHint[],
  st: {
    statMode?: "random" | "nth";
    statProbability?: Negatable<number>;
    statEvery?: Negatable<number>;
    statPacket?: number;
  },
): void {
  const need = (mod: string, present: unknown, what: string) => {
    if (modules.has(mod) && present === undefined) throw new RuleError(`"-m ${mod}" needs ${what}`);
  };
  need("recent", rule.recent?.mode, `one of "--set", "--rcheck", "--update", "--remove"`);
  need("iprange", rule.ipRange, `"--src-range" or "--dst-range"`);
  need("pkttype", rule.pktType, `"--pkt-type"`);
  need("mac", rule.macSource, `"--mac-source"`);
  need("length", rule.length, `"--length"`);
  need("connmark", rule.connmark, `"--mark"`);
  need("addrtype", rule.addrType, `"--src-type" or "--dst-type"`);
  need("statistic", st.statMode, `"--mode random" or "--mode nth"`);
  const r = rule.recent;
  if (r !== undefined) {
    if (r.mode === undefined) {
      throw new RuleError(`"-m recent" needs one of "--set", "--rcheck", "--update", "--remove"`);
    }
    const checking = r.mode === "rcheck" || r.mode === "update";
    if (!checking && (r.seconds !== 0 || r.hitcount !== 0 || r.reap || r.rttl)) {
      throw new RuleError(
        `"--seconds", "--hitcount", "--reap" and "--rttl" go with "--rcheck" or "--update" (not "--${r.mode}")`,
      );
    }
    if (r.reap && r.seconds === 0) throw new RuleError(`"--reap" needs "--seconds"`);
  }
  const a = rule.addrType;
  if (a !== undefined) {
    if (a.src === undefined && a.dst === undefined) {
      throw new RuleError(`"-m addrtype" needs "--src-type" or "--dst-type"`);
    }
    if (a.limitIn && a.limitOut) {
      throw new RuleError(`"--limit-iface-in" and "--limit-iface-out" cannot both be used`);
    }
  }
  const c = rule.connlimit;
  if (c !== undefined) {
    if (c.limit < 0) {
      throw new RuleError(`"-m connlimit" needs "--connlimit-above" or "--connlimit-upto"`);
    }
    if (c.prefixLen !== undefined && c.prefixLen > 32) {
      hints.push({ family: 6, token: `--connlimit-mask ${c.prefixLen}` });
    }
  } else if (modules.has("connlimit")) {
    throw new RuleError(`"-m connlimit" needs "--connlimit-above" or "--connlimit-upto"`);
  }
  const h = rule.hashlimit;
  if (h !== undefined || modules.has("hashlimit")) {
    if (h === undefined || h.perSecond === 0) {
      throw new RuleError(`"-m hashlimit" needs "--hashlimit-upto" or "--hashlimit-above"`);
    }
    if (h.name === "") throw new RuleError(`"-m hashlimit" needs "--hashlimit-name"`);
    for (const [m, n] of [["srcmask", h.srcMask], ["dstmask", h.dstMask]] as const) {
      if (n !== undefined && n > 32) hints.push({ family: 6, token: `--hashlimit-${m} ${n}` });
    }
  }
  if (st.statMode === "random") {
    if (st.statProbability === undefined) {
      throw new RuleError(`"--mode random" needs "--probability"`);
    }
    if (st.statEvery !== undefined || st.statPacket !== undefined) {
      throw new RuleError(`"--every" and "--packet" go with "--mode nth"`);
    }
    rule.statistic = {
      mode: "random",
      probability: st.statProbability.value,
      invert: st.statProbability.invert,
    };
  } else if (st.statMode === "nth") {
    if (st.statEvery === undefined) throw new RuleError(`"--mode nth" needs "--every"`);
    if (st.statProbability !== undefined) {
      throw new RuleError(`"--probability" goes with "--mode random"`);
    }
    const packet = st.statPacket ?? 0;
    if (packet >= st.statEvery.value) {
      throw new RuleError(`"--packet" must be below "--every" (${st.statEvery.value})`);
    }
    rule.statistic = {
      mode: "nth",
      every: st.statEvery.value,
      packet,
      invert: st.statEvery.invert,
    };
  } else if (st.statProbability !== undefined || st.statEvery !== undefined) {
    throw new RuleError(`"-m statistic" needs "--mode random" or "--mode nth"`);
  }
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
      // libxt_MARK: every form is mark = (mark & ~mask) ^ value.
      const x = markOp(name, opts, [
        "--set-mark",
        "--set-xmark",
        "--and-mark",
        "--or-mark",
        "--xor-mark",
      ]);
      return { kind: "MARK", value: x.value, mask: x.mask };
    }
    case "CONNMARK": {
      const save = opts.has("--save-mark"), restore = opts.has("--restore-mark");
      const masks = ["--mask", "--nfmask", "--ctmask"].filter((o) => opts.has(o));
      const setForms = ["--set-mark", "--set-xmark", "--and-mark", "--or-mark", "--xor-mark"];
      const sets = setForms.filter((o) => opts.has(o));
      if ((save ? 1 : 0) + (restore ? 1 : 0) + sets.length !== 1) {
        throw new RuleError(
          `target CONNMARK needs exactly one of "--set-mark", "--set-xmark", "--and-mark", ` +
            `"--or-mark", "--xor-mark", "--save-mark", "--restore-mark"`,
        );
      }
      if (!save && !restore) {
        if (masks.length > 0) {
          throw new RuleError(`"${masks[0]}" goes with "--save-mark" or "--restore-mark"`);
        }
        const x = markOp(name, opts, setForms);
        return {
          kind: "CONNMARK",
          mode: "set",
          value: x.value,
          ctMask: x.mask,
          nfMask: 0xffffffff,
        };
      }
      const num = (o: string) => parseNumber(opts.get(o)!, o, 0, 0xffffffff);
      const both = opts.has("--mask") ? num("--mask") : 0xffffffff;
      return {
        kind: "CONNMARK",
        mode: save ? "save" : "restore",
        value: 0,
        ctMask: opts.has("--ctmask") ? num("--ctmask") : both,
        nfMask: opts.has("--nfmask") ? num("--nfmask") : both,
      };
    }
    case "DSCP": {
      const v = opts.get("--set-dscp"), c = opts.get("--set-dscp-class");
      if ((v === undefined) === (c === undefined)) {
        throw new RuleError(
          `target DSCP needs exactly one of "--set-dscp N" and "--set-dscp-class NAME"`,
        );
      }
      if (v !== undefined) return { kind: "DSCP", dscp: parseNumber(v, "--set-dscp", 0, 0x3f) };
      const d = DSCP_CLASSES[c!.toUpperCase()];
      if (d === undefined) {
        throw new RuleError(
          `unknown DSCP class "${c}" (use ${Object.keys(DSCP_CLASSES).join(", ")})`,
        );
      }
      return { kind: "DSCP", dscp: d };
    }
    case "TOS": {
      const forms = ["--set-tos", "--and-tos", "--or-tos", "--xor-tos"].filter((o) => opts.has(o));
      if (forms.length !== 1) {
        throw new RuleError(
          `target TOS needs exactly one of "--set-tos", "--and-tos", "--or-tos", "--xor-tos"`,
        );
      }
      const o = forms[0]!, v = opts.get(o)!;
      if (o === "--set-tos") {
        const named = TOS_NAMES[v.toLowerCase()];
        if (named !== undefined) return { kind: "TOS", value: named, mask: 0x3f };
        const [a, m, extra] = v.split("/");
        if (extra !== undefined || a === undefined) throw new RuleError(`bad --set-tos "${v}"`);
        const mask = m === undefined ? 0xff : parseNumber(m, "TOS mask", 0, 0xff);
        // The value's bits outside the mask are ignored, as libxt_TOS does.
        return { kind: "TOS", value: parseNumber(a, "--set-tos", 0, 0xff) & mask, mask };
      }
      const bits = parseNumber(v, o, 0, 0xff);
      if (o === "--and-tos") return { kind: "TOS", value: 0, mask: ~bits & 0xff };
      if (o === "--or-tos") return { kind: "TOS", value: bits, mask: bits };
      return { kind: "TOS", value: bits, mask: 0 };
    }
    case "TTL":
    case "HL": {
      const p = name === "TTL" ? "ttl" : "hl";
      const forms = ["set", "dec", "inc"].filter((o) => opts.has(`--${p}-${o}`));
      if (forms.length !== 1) {
        throw new RuleError(
          `target ${name} needs exactly one of "--${p}-set", "--${p}-dec", "--${p}-inc"`,
        );
      }
      const op = forms[0] as "set" | "dec" | "inc";
      const value = parseNumber(
        opts.get(`--${p}-${op}`)!,
        `--${p}-${op}`,
        op === "set" ? 0 : 1,
        255,
      );
      // TTL is IPv4's field, HL (Hop Limit) IPv6's.
      hints.push({ family: name === "TTL" ? 4 : 6, token: `-j ${name}` });
      return { kind: name, op, value };
    }
    case "CT": {
      // xt_CT: tapir has no zones, helpers, event masks or timeout policies.
      const other = [...opts.keys()].find((o) => o !== "--notrack");
      if (other !== undefined) {
        throw new RuleError(
          `CT "${other}" has no meaning in tapir (no conntrack zones, helpers, events or timeout policies); only "--notrack" is`,
        );
      }
      if (!opts.has("--notrack")) throw new RuleError(`target CT needs "--notrack"`);
      return { kind: "NOTRACK" };
    }
    case "SNAT":
    case "DNAT": {
      const long = name === "SNAT" ? "--to-source" : "--to-destination";
      if (opts.has(long) && opts.has("--to")) {
        throw new RuleError(`"--to" is "${long}": give it once`);
      }
      const opt = opts.has("--to") ? "--to" : long;
      const v = opts.get(opt);
      if (v === undefined) throw new RuleError(`target ${name} needs "${long} ADDRESS"`);
      const to = parseNatTo(v, opt);
      if (to.ports) needPorts(opt);
      hints.push({ family: to.address.family, token: `${opt} ${v}` });
      return { kind: name, ...to };
    }
    case "MASQUERADE":
    case "REDIRECT": {
      if (opts.has("--to-ports") && opts.has("--to")) {
        throw new RuleError(`"--to" is "--to-ports": give it once`);
      }
      const v = opts.get("--to-ports") ?? opts.get("--to");
      if (v === undefined) return { kind: name };
      needPorts("--to-ports");
      return { kind: name, ports: parsePortRange(v, "-") };
    }
    case "NETMAP": {
      const v = opts.get("--to");
      if (v === undefined) throw new RuleError(`target NETMAP needs "--to ADDRESS/LEN"`);
      const to = parseAddrOrCidr(v);
      hints.push({ family: to.family, token: `--to ${v}` });
      return { kind: "NETMAP", to };
    }
    case "SNPT":
    case "DNPT": {
      // ip6t_NPT: both prefixes, at most /64, host bits zero.
      const pfx = (opt: string): IpCidr => {
        const v = opts.get(opt);
        if (v === undefined) {
          throw new RuleError(`target ${name} needs "--src-pfx PREFIX/LEN --dst-pfx PREFIX/LEN"`);
        }
        const c = parseAddrOrCidr(v);
        if (c.family !== 6) throw new RuleError(`${opt} "${v}" is not an IPv6 prefix`);
        if (c.prefixLen > 64) throw new RuleError(`${opt} "${v}" is longer than /64 (RFC 6296)`);
        return c;
      };
      const from = pfx("--src-pfx"), to = pfx("--dst-pfx");
      hints.push({ family: 6, token: `-j ${name}` });
      return { kind: name, from, to };
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
/**
 * MARK's and CONNMARK's value forms (libxt_MARK / libxt_CONNMARK), each
 * as x = (x & ~mask) ^ value: `--set-xmark V[/M]`, `--set-mark V[/M]`
 * (mask M | V), `--and-mark B`, `--or-mark B`, `--xor-mark B`.
 */
function markOp(
  name: string,
  opts: Map<string, string>,
  forms: string[],
): { value: number; mask: number } {
  const given = forms.filter((o) => opts.has(o));
  if (given.length !== 1) {
    throw new RuleError(
      `target ${name} needs exactly one of ${forms.map((f) => `"${f}"`).join(", ")}`,
    );
  }
  const o = given[0]!, v = opts.get(o)!;
  if (o === "--set-xmark" || o === "--set-mark") {
    const m = parseMarkValue(v);
    return o === "--set-xmark" ? m : { value: m.value, mask: (m.mask | m.value) >>> 0 };
  }
  const bits = parseNumber(v, o, 0, 0xffffffff);
  if (o === "--and-mark") return { value: 0, mask: ~bits >>> 0 };
  if (o === "--or-mark") return { value: bits, mask: bits };
  return { value: bits, mask: 0 };
}

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
    case "NETMAP":
      only(["nat"], undefined, "only in the nat table");
      break;
    case "SNPT":
      only(["mangle"], ["postrouting", "input"], "only in mangle postrouting or input");
      break;
    case "DNPT":
      only(["mangle"], ["prerouting", "output"], "only in mangle prerouting or output");
      break;
    case "NOTRACK":
      only(["raw"], undefined, "only in the raw table");
      break;
    case "DSCP":
    case "TOS":
    case "TTL":
    case "HL":
      only(["mangle"], undefined, "only in the mangle table");
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
        ["filter", "nat", "raw", "mangle"],
        ["forward", "output", "postrouting"],
        "only in forward, output or postrouting",
      );
      break;
  }
  if (builtin && rule.macSource && !["prerouting", "input", "forward"].includes(chain)) {
    throw new RuleError(
      `"--mac-source" cannot be used in the ${chain} chain (only prerouting, input and forward see a received frame)`,
    );
  }
  const a = rule.addrType;
  if (builtin && a?.limitIn && !["prerouting", "input", "forward"].includes(chain)) {
    throw new RuleError(`"--limit-iface-in" cannot be used in the ${chain} chain`);
  }
  if (builtin && a?.limitOut && !["output", "forward", "postrouting"].includes(chain)) {
    throw new RuleError(`"--limit-iface-out" cannot be used in the ${chain} chain`);
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
