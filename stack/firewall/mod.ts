/**
 * The firewall: iptables-like tables and chains (raw, mangle, nat,
 * filter), connection tracking with TCP window tracking, NAT for IPv4 and
 * IPv6 (NAT66) and NPTv6, run at the IPv4 and IPv6 layers'
 * netfilter-style hooks.
 *
 * @module
 */
export {
  type ConnectionInfo,
  Firewall,
  type FirewallOptions,
  type FirewallStats,
} from "./firewall.ts";
export {
  carrySets,
  formatSetEntry,
  IpSet,
  matchSets,
  parseSetEntry,
  resolveSets,
  SET_DEFAULT_MAX,
  SET_DIMENSIONS,
  SET_TYPES,
  type SetEntryInfo,
  SetError,
  type SetProbe,
  SetRef,
} from "./sets.ts";
export { ChainIndex, type CompileOptions, DEFAULT_COMPILE, type IndexSummary } from "./compile.ts";
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
  TcpSegment,
  TcpTrack,
  TcpWindow,
} from "./conntrack.ts";
export { type EditedPacket, type EditTarget, isEditTarget, PacketEditor } from "./mangle.ts";
export { CompiledRule, CtBit, PacketInfo, TargetKind } from "./match.ts";
export {
  CompiledChain,
  CompiledTable,
  compileTable,
  type CompileTableOptions,
  dumpTables,
  Verdict,
} from "./tables.ts";
export {
  ICMPV6_QUERY_REPLY,
  icmpv6Untracked,
  Ipv6AddressIds,
  REJECT6_CODES,
} from "./ipv6_track.ts";
export {
  hasPorts,
  Manip,
  manipIpv4,
  manipIpv6,
  natIcmpError,
  natIcmpError6,
  natPacket,
  natPacket6,
  Npt,
  setupNat,
} from "./nat.ts";
export type * from "./rule_types.ts";
