/**
 * The firewall: iptables-like tables and chains, connection tracking and
 * NAT for IPv4, run at the IPv4 and IPv6 layers' netfilter-style hooks
 * (IPv6: filter and raw with connection tracking, no NAT).
 *
 * @module
 */
export { type ConnectionInfo, Firewall, type FirewallStats } from "./firewall.ts";
export {
  Conn,
  Conntrack,
  type ConntrackStats,
  CT_TIMEOUTS,
  CtDir,
  CtStatus,
  CtTuple,
  TCP_CT_STATE_NAMES,
  TcpCtState,
} from "./conntrack.ts";
export { CompiledRule, CtBit, PacketInfo, TargetKind } from "./match.ts";
export { CompiledChain, CompiledTable, compileTable, dumpTables, Verdict } from "./tables.ts";
export {
  ICMPV6_QUERY_REPLY,
  icmpv6Untracked,
  Ipv6AddressIds,
  REJECT6_CODES,
} from "./ipv6_track.ts";
export { hasPorts, Manip, manipIpv4, natIcmpError, natPacket, setupNat } from "./nat.ts";
export type * from "./rule_types.ts";
