/**
 * The firewall's input: rules (matches and a target), chains and tables,
 * as pure data. `config/rule.ts` parses iptables rule strings into these
 * and `config/` validates whole tables; the firewall compiles them.
 *
 * @module
 */
import type { IpAddress, IpCidr } from "../wire/ip_address.ts";

/** A match that `!` may invert. */
export interface Negatable<T> {
  value: T;
  invert: boolean;
}

/** An inclusive port range; a single port has `min === max`. */
export interface PortRange {
  min: number;
  max: number;
}

/** `-i`/`-o`: an interface name, or a name prefix when written with a trailing `+`. */
export interface InterfaceMatch {
  name: string;
  /** True for `eth+`: matches every interface whose name starts with `name`. */
  prefix: boolean;
}

/** `--icmp-type`/`--icmpv6-type`: a type, and a code unless any code matches. */
export interface IcmpTypeMatch {
  type: number;
  code?: number;
}

/** Connection tracking states (`-m conntrack --ctstate`, `-m state --state`). */
export type CtState = "NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED" | "SNAT" | "DNAT";

/** `-m limit`: a token bucket. */
export interface LimitMatch {
  /** Average matches per `unit`. */
  count: number;
  unit: "second" | "minute" | "hour" | "day";
  /** Average matches per second (count / unit). */
  perSecond: number;
  burst: number;
}

/** `-m recent` (xt_recent): a named list of recently seen addresses. */
export interface RecentMatch {
  /** The list (`--name`, default "DEFAULT"); rules naming the same list share it. */
  name: string;
  /** `--set` adds the address, `--rcheck` tests it, `--update` tests and stamps it, `--remove` drops it. */
  mode: "set" | "rcheck" | "update" | "remove";
  /** `--seconds`: only stamps this recent count (0: any). */
  seconds: number;
  /** `--reap`: forget the list's oldest entry when it is older than `seconds`. */
  reap: boolean;
  /** `--hitcount`: at least this many stamps (0: one). */
  hitcount: number;
  /** `--rttl`: the TTL must also be the one recorded. */
  rttl: boolean;
  /** `--rsource` (default) or `--rdest`: which address the list holds. */
  side: "src" | "dst";
  /** `--mask`: the address is masked first (default: all ones). */
  mask?: IpAddress;
  invert: boolean;
}

/** `-m addrtype` type bits (xt_addrtype XT_ADDRTYPE_*). */
export const ADDRTYPE_BITS: Readonly<Record<string, number>> = {
  UNSPEC: 1,
  UNICAST: 2,
  LOCAL: 4,
  BROADCAST: 8,
  ANYCAST: 16,
  MULTICAST: 32,
  BLACKHOLE: 64,
  UNREACHABLE: 128,
  PROHIBIT: 256,
  THROW: 512,
  NAT: 1024,
  XRESOLVE: 2048,
};

/** `-m addrtype`: the kind of route each address has (its {@link ADDRTYPE_BITS}, any of). */
export interface AddrTypeMatch {
  src?: Negatable<number>;
  dst?: Negatable<number>;
  /** `--limit-iface-in`/`-out`: LOCAL means an address of that interface only. */
  limitIn: boolean;
  limitOut: boolean;
}

/** `-m iprange --src-range`/`--dst-range A-B` (inclusive). */
export interface IpRangeMatch {
  src?: Negatable<{ from: IpAddress; to: IpAddress }>;
  dst?: Negatable<{ from: IpAddress; to: IpAddress }>;
}

/** `-m connlimit`: connections of the packet's source (or destination) network. */
export interface ConnlimitMatch {
  /** `--connlimit-above N` matches above N; `--connlimit-upto N` at N or fewer. */
  limit: number;
  above: boolean;
  /** `--connlimit-mask` prefix length (default: the full address). */
  prefixLen?: number;
  /** `--connlimit-saddr` (default) or `--connlimit-daddr`. */
  side: "src" | "dst";
}

/** `-m hashlimit`: a token bucket per key (addresses, ports) of a named table. */
export interface HashlimitMatch {
  name: string;
  /** Rate as written and per second. */
  count: number;
  unit: "second" | "minute" | "hour" | "day";
  perSecond: number;
  burst: number;
  /** `--hashlimit-above`: match when over the rate (else `--hashlimit-upto`: while under it). */
  above: boolean;
  /** `--hashlimit-mode`: what the key is made of (none: one bucket). */
  mode: ("srcip" | "dstip" | "srcport" | "dstport")[];
  /** `--hashlimit-srcmask`/`-dstmask` prefix lengths (default: full). */
  srcMask?: number;
  dstMask?: number;
  /** `--hashlimit-htable-expire`: an idle bucket goes after this many ms (default 10000). */
  expireMs: number;
  /** `--hashlimit-htable-max`: most buckets (default 65536). */
  max: number;
}

/** `-m statistic`: random (`--probability`) or every nth packet (`--every`, `--packet`). */
export type StatisticMatch =
  | { mode: "random"; probability: number; invert: boolean }
  | { mode: "nth"; every: number; packet: number; invert: boolean };

/** `-m pkttype --pkt-type`: the link-layer destination's kind. */
export type PacketType = "unicast" | "broadcast" | "multicast";

/** The stateful matches of a rule, in the order written (each keeps state when tested). */
export type StatefulMatchName = "recent" | "connlimit" | "hashlimit" | "statistic";

/** Why REJECT rejects, family-neutral; the ICMP(v6) type/code follows from the packet's family. */
export type RejectReason =
  | "port-unreachable"
  | "net-unreachable"
  | "host-unreachable"
  | "proto-unreachable"
  | "net-prohibited"
  | "host-prohibited"
  | "admin-prohibited"
  | "tcp-reset"
  | "no-route"
  | "addr-unreachable";

/** What a matching rule does. */
export type Target =
  | { kind: "ACCEPT" }
  | { kind: "DROP" }
  | { kind: "RETURN" }
  | { kind: "NOTRACK" }
  | { kind: "REJECT"; reason: RejectReason }
  | { kind: "LOG"; prefix: string; level: number }
  | { kind: "JUMP"; chain: string }
  | { kind: "MARK"; value: number; mask: number }
  | { kind: "SNAT"; address: IpAddress; ports?: PortRange }
  | { kind: "DNAT"; address: IpAddress; ports?: PortRange }
  | { kind: "MASQUERADE"; ports?: PortRange }
  | { kind: "REDIRECT"; ports?: PortRange }
  | { kind: "TCPMSS"; mss: number | "pmtu" }
  /** NAT of a whole prefix, host bits kept (source in postrouting/input, destination in prerouting/output). */
  | { kind: "NETMAP"; to: IpCidr }
  /** NPTv6 (RFC 6296): `SNPT` translates the source, `DNPT` the destination, from `from` to `to`. */
  | { kind: "SNPT" | "DNPT"; from: IpCidr; to: IpCidr }
  /**
   * The connection's mark: `set` ctmark = (ctmark & ~ctMask) ^ value;
   * `save` ctmark = (ctmark & ~ctMask) ^ (mark & nfMask); `restore`
   * mark = (mark & ~nfMask) ^ (ctmark & ctMask) (xt_CONNMARK v2).
   */
  | {
    kind: "CONNMARK";
    mode: "set" | "save" | "restore";
    value: number;
    ctMask: number;
    nfMask: number;
  }
  /** The DSCP bits of the IPv4 TOS / IPv6 Traffic Class (ECN kept). */
  | { kind: "DSCP"; dscp: number }
  /** The IPv4 TOS / IPv6 Traffic Class: tos = (tos & ~mask) ^ value. */
  | { kind: "TOS"; value: number; mask: number }
  /** IPv4 TTL (`TTL`) or IPv6 Hop Limit (`HL`): set, decrement or increment (clamped to 0..255). */
  | { kind: "TTL" | "HL"; op: "set" | "dec" | "inc"; value: number };

/** A parsed rule. Absent matches match everything. */
export interface Rule {
  /** The rule as written. */
  text: string;
  /** 4 or 6 when the rule only applies to that family; 0 for both. */
  family: 0 | 4 | 6;
  source?: Negatable<IpCidr>;
  destination?: Negatable<IpCidr>;
  inInterface?: Negatable<InterfaceMatch>;
  outInterface?: Negatable<InterfaceMatch>;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6); absent for "all". */
  protocol?: Negatable<number>;
  sourcePorts?: Negatable<PortRange[]>;
  destinationPorts?: Negatable<PortRange[]>;
  /** `-m multiport --ports`: source or destination port. */
  ports?: Negatable<PortRange[]>;
  /** `--tcp-flags MASK COMP` (flags & mask === comp); `--syn` is FIN,SYN,RST,ACK SYN. */
  tcpFlags?: Negatable<{ mask: number; comp: number }>;
  icmpType?: Negatable<IcmpTypeMatch>;
  ctState?: Negatable<CtState[]>;
  limit?: LimitMatch;
  mark?: Negatable<{ value: number; mask: number }>;
  /** `-f`/`--fragment`: IPv4 fragments after the first. */
  fragment?: { invert: boolean };
  /** `-m iprange`. */
  ipRange?: IpRangeMatch;
  /** `-m addrtype`. */
  addrType?: AddrTypeMatch;
  /** `-m pkttype --pkt-type`. */
  pktType?: Negatable<PacketType>;
  /** `-m mac --mac-source` (6 bytes). */
  macSource?: Negatable<Uint8Array>;
  /** `-m length --length N[:M]`: the IP datagram's length. */
  length?: Negatable<PortRange>;
  /** `-m connmark --mark V[/M]`: the connection's mark. */
  connmark?: Negatable<{ value: number; mask: number }>;
  recent?: RecentMatch;
  connlimit?: ConnlimitMatch & { invert: boolean };
  hashlimit?: HashlimitMatch;
  statistic?: StatisticMatch;
  /** The stateful matches present, in the order written. */
  stateful?: StatefulMatchName[];
  /** `-m set --match-set NAME FLAGS`, each of which must hold (the firewall resolves the names). */
  matchSets?: SetMatch[];
  comment?: string;
  /** Absent only in a match-only rule (firewall.trace). */
  target?: Target;
}

/** The four tables. */
export type FirewallTableName = "filter" | "nat" | "raw" | "mangle";

/** A chain: builtin chains have a policy; user chains don't (their policy is unused). */
export interface FirewallChainSpec {
  name: string;
  builtin: boolean;
  policy: "accept" | "drop";
  rules: Rule[];
}

/** One table of one family scope (shape of config's `TableConfig`). */
export interface FirewallTableSpec {
  table: FirewallTableName;
  /** 0 = shared by both families. */
  family: 0 | 4 | 6;
  /** True when the configuration defines this table. */
  defined: boolean;
  /** Chains by name; builtin names are lower case. */
  chains: Map<string, FirewallChainSpec>;
}

/** The tables of one family scope. */
export interface FirewallFamilyTablesSpec {
  filter: FirewallTableSpec;
  nat: FirewallTableSpec;
  raw: FirewallTableSpec;
  mangle: FirewallTableSpec;
}

/** Everything the firewall is built from (shape of config's `FirewallConfig`). */
export interface FirewallSpec {
  /** Match-only rule; matching packets are traced. */
  trace?: Rule;
  conntrack: {
    max: number;
    /** Out-of-window TCP segments are not INVALID (`nf_conntrack_tcp_be_liberal`); default false. */
    tcpBeLiberal?: boolean;
    /** New connections a second each source (IPv6: /64) may start from outside (0: no limit); default conntrack.ts CT_PER_SOURCE_RATE. */
    perSourceRate?: number;
    /** The bucket depth of that budget; default twice the rate. */
    perSourceBurst?: number;
  };
  /** Named sets by name (`[firewall.sets.NAME]`); absent: none. */
  sets?: Map<string, FirewallSetSpec>;
  /** Tables for both families. */
  shared: FirewallFamilyTablesSpec;
  ipv4: FirewallFamilyTablesSpec;
  ipv6: FirewallFamilyTablesSpec;
}

/**
 * `-m set --match-set NAME src|dst[,src|dst]`: the packet's side for each
 * of the set's dimensions in order (ipset's flags). A dimension past the
 * list takes the destination side and flags past the set's dimensions are
 * ignored, as the kernel's xt_set does.
 */
export interface SetMatch {
  name: string;
  dirs: ("src" | "dst")[];
  invert: boolean;
}

/** The kinds of named set, by ipset's names. */
export type FirewallSetType = "hash:ip" | "hash:net" | "hash:ip,port" | "hash:net,iface";

/** One member of a named set. */
export interface FirewallSetEntry {
  /** The address (hash:ip types: a full-length prefix) or network (hash:net types, host bits zero). */
  address: IpCidr;
  /** hash:ip,port: the IP protocol (6 or 17) and port. */
  proto?: number;
  port?: number;
  /** hash:net,iface: the interface name. */
  iface?: string;
  /** How long the entry lives, in ms: absent for the set's timeout, 0 for ever. */
  timeout?: number;
}

/** `[firewall.sets.NAME]`: a named set's definition and its entries from the config. */
export interface FirewallSetSpec {
  name: string;
  type: FirewallSetType;
  /** 4 or 6: that family's addresses only; 0: both. */
  family: 0 | 4 | 6;
  /** The timeout of an entry added without one, in ms; 0: entries stay until deleted. */
  timeout: number;
  /** The most entries the set holds (ipset's maxelem). */
  maxEntries: number;
  entries: FirewallSetEntry[];
}
