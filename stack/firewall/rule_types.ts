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
  | { kind: "TCPMSS"; mss: number | "pmtu" };

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
  comment?: string;
  /** Absent only in a match-only rule (firewall.trace). */
  target?: Target;
}

/** The three tables. */
export type FirewallTableName = "filter" | "nat" | "raw";

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
}

/** Everything the firewall is built from (shape of config's `FirewallConfig`). */
export interface FirewallSpec {
  /** Match-only rule; matching packets are traced. */
  trace?: Rule;
  conntrack: { max: number };
  /** Tables for both families. */
  shared: FirewallFamilyTablesSpec;
  ipv4: FirewallFamilyTablesSpec;
  ipv6: FirewallFamilyTablesSpec;
}
