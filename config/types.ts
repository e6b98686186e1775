/**
 * The typed, validated configuration: what {@link parseConfig} returns.
 * Durations are milliseconds, addresses are the `stack/wire` forms, and
 * every key with a default is filled in.
 *
 * @module
 */
import type { DhcpClientConfig, DhcpConfig } from "./_dhcp.ts";
import type { Dhcp6ClientConfig, Dhcp6Config } from "./_dhcp6.ts";
import type { DnsConfig } from "./_dns.ts";
import type { TcpSettings } from "../stack/transport/tcp/connection.ts";
import type { IpAddress, IpCidr, Ipv6Cidr } from "../stack/wire/mod.ts";
import type { LinkFaults } from "../link/mod.ts";
import type { LabServiceType } from "../stack/apps/lab_services.ts";
import type { RaAdvertPrefix, RaAdvertSettings } from "../stack/mod.ts";
import type {
  FirewallChainSpec,
  FirewallFamilyTablesSpec,
  FirewallSpec,
  FirewallTableName,
  FirewallTableSpec,
} from "../stack/firewall/mod.ts";

/** Whether each family forwards (or any other per-family flag). */
export interface FamilyFlags {
  ipv4: boolean;
  ipv6: boolean;
}

/** `[router.icmp]`: ICMP error rate limiting (token bucket). */
export interface IcmpConfig {
  /** Tokens added per second (Linux `icmp_msgs_per_sec`). */
  rateLimit: number;
  /** Bucket size (Linux `icmp_msgs_burst`). */
  burst: number;
}

/** `[router.neighbor]`: ARP/NDP cache settings (RFC 4861 §10 constants). */
export interface NeighborConfig {
  maxEntries: number;
  /** ms; BASE_REACHABLE_TIME. */
  baseReachableTime: number;
  /** ms; RETRANS_TIMER. */
  retransTime: number;
  /** MAX_UNICAST_SOLICIT / MAX_MULTICAST_SOLICIT. */
  probes: number;
  /** ms; DELAY_FIRST_PROBE_TIME. */
  delayFirstProbe: number;
  /** Packets queued per unresolved neighbor. */
  queueLen: number;
  /** ms; a stale unused entry older than this may be collected. */
  gcStaleTime: number;
}

/** `[router.ipv4]`. */
export interface Ipv4Config {
  /** Bytes of fragments held for reassembly (Linux `ipfrag_high_thresh`). */
  reassemblyMemory: number;
  /** ms (Linux `ipfrag_time`). */
  reassemblyTimeout: number;
  sendRedirects: boolean;
  defaultTtl: number;
}

/** `[router.ipv6]`. */
export interface Ipv6Config {
  reassemblyMemory: number;
  /** ms (RFC 8200 §4.5: 60 s). */
  reassemblyTimeout: number;
  sendRedirects: boolean;
  defaultHopLimit: number;
  /** DupAddrDetectTransmits (RFC 4862 §5.1). */
  dadTransmits: number;
  /** ms; RetransTimer for NS (RFC 4861 §10). */
  retransTimer: number;
  /** How interface identifiers are formed for SLAAC and link-local addresses. */
  addrGenMode: "eui64" | "stable-privacy";
  /** RFC 7217 secret key (16 bytes); set when `addrGenMode` is `"stable-privacy"`. */
  stableSecret?: Uint8Array;
  maxRouters: number;
  maxPrefixes: number;
  maxAddresses: number;
}

/** `[router]`. */
export interface RouterConfig {
  hostname: string;
  /** Default forwarding for interfaces that don't override it. */
  forwarding: FamilyFlags;
  icmp: IcmpConfig;
  neighbor: NeighborConfig;
  ipv4: Ipv4Config;
  ipv6: Ipv6Config;
}

/** A static (PERMANENT) neighbor entry. */
export interface StaticNeighborConfig {
  address: IpAddress;
  mac: Uint8Array;
}

/**
 * A Prefix Information option (RFC 4861 §4.6.2): the stack's
 * {@link RaAdvertPrefix} with a typed IPv6 prefix. Lifetimes in ms,
 * `Infinity` for "infinity".
 */
export type RaPrefixConfig = Omit<RaAdvertPrefix, "prefix"> & { prefix: Ipv6Cidr };

/**
 * A prefix of `[interface.ra]` taken from a delegation: the `subnet`-th /64
 * of the prefix the DHCPv6 client of interface `from` holds (RFC 7084 L-2),
 * advertised with the delegation's lifetimes while it lasts.
 */
export interface RaDelegatedConfig {
  from: string;
  /** Key path of `from`, for errors found across interfaces. */
  fromPath: string;
  subnet: number;
  onLink: boolean;
  autonomous: boolean;
}

/** A Recursive DNS Server option (RFC 8106 §5.1); lifetime in ms or `Infinity`. */
export type RaRdnssConfig = RaAdvertSettings["rdnss"][number];

/** A DNS Search List option (RFC 8106 §5.2); lifetime in ms or `Infinity`. */
export type RaDnsslConfig = RaAdvertSettings["dnssl"][number];

/** A Route Information option (RFC 4191 §2.3); lifetime in ms or `Infinity`. */
export type RaRouteConfig = Omit<RaAdvertSettings["routes"][number], "prefix"> & {
  prefix: Ipv6Cidr;
};

/**
 * `[interface.ra]`: Router Advertisements this interface sends (RFC 4861
 * §6.2.1): the stack's {@link RaAdvertSettings} (times in ms) plus
 * `enabled`, with typed prefixes.
 */
export type RaConfig = Omit<RaAdvertSettings, "prefixes" | "routes"> & {
  enabled: boolean;
  prefixes: RaPrefixConfig[];
  /** `{ from = "wan0", subnet = N }`: /64s of prefixes delegated to another interface. */
  delegated: RaDelegatedConfig[];
  routes: RaRouteConfig[];
};

/** One `[[interface]]`. */
export interface InterfaceConfig {
  name: string;
  /** TAP device name (defaults to `name`). */
  tap: string;
  mac?: Uint8Array;
  mtu: number;
  /** Addresses with their prefix length; host bits kept. */
  addresses: IpCidr[];
  /** Effective forwarding: the interface's override over `router.forwarding`. */
  forwarding: FamilyFlags;
  acceptRa: boolean;
  offload: boolean;
  /** pcap file to write this interface's frames to. */
  capture?: string;
  /** Effective ICMP redirect sending: the interface's override over router.ipv4/ipv6. */
  sendRedirects: FamilyFlags;
  /** Bring the device up. */
  up: boolean;
  neighbors: StaticNeighborConfig[];
  ra: RaConfig;
  /** `[interface.dhcp]`: the DHCPv4 server of this interface. */
  dhcp: DhcpConfig;
  /** `[interface.dhcp6]`: the DHCPv6 server of this interface. */
  dhcp6: Dhcp6Config;
  /** `addresses = ["dhcp"]` (with `[interface.dhcp_client]`): the DHCPv4 client, or null. */
  dhcpClient: DhcpClientConfig | null;
  /** `[interface.dhcp6_client]`: the DHCPv6 client (IA_NA, IA_PD), or null. */
  dhcp6Client: Dhcp6ClientConfig | null;
}

/** Kinds of route (as `ip route` types). */
export type RouteType = "unicast" | "blackhole" | "unreachable" | "prohibit";

/** One `[[route]]`. */
export interface RouteConfig {
  to: IpCidr;
  via?: IpAddress;
  dev?: string;
  metric: number;
  type: RouteType;
}

/** The three tables (the firewall's own type). */
export type TableName = FirewallTableName;

/** A chain: builtin chains have a policy; user chains don't (the firewall's own type). */
export type ChainConfig = FirewallChainSpec;

/**
 * One table of one family scope (family 0 = the shared `[firewall.filter]`
 * tables); builtin chains are always present. The firewall's own type.
 */
export type TableConfig = FirewallTableSpec;

/** The tables of one family scope. */
export type FamilyTables = FirewallFamilyTablesSpec;

/** `[firewall]`: the firewall's own spec (`shared`, `ipv4`, `ipv6`; NAT66 is never defined). */
export type FirewallConfig = FirewallSpec;

/** A validated configuration file. */
export interface Config {
  router: RouterConfig;
  interfaces: InterfaceConfig[];
  routes: RouteConfig[];
  firewall: FirewallConfig;
  metrics: MetricsConfig;
  /** `[dns]`: the DNS forwarder. */
  dns: DnsConfig;
  /** `[tcp]`: TCP settings (Linux's defaults for absent keys). */
  tcp: TcpSettings;
}

/** `[metrics]`: Prometheus text exposition on the host's own network (not tapir's stack). */
export interface MetricsConfig {
  /** Address and port `tapir run` serves `/metrics` on; absent: no metrics listener. */
  listen?: { hostname: string; port: number };
}

/** `a`/`b` of a lab link. */
export interface LinkEnd {
  node: string;
  interface: string;
}

/** One `[[lab.link]]`: a wire between two node interfaces. */
export interface LabLinkConfig {
  a: LinkEnd;
  b: LinkEnd;
  /** The link MTU (defaults to the smaller of the two interface MTUs). */
  mtu: number;
  /** One-way delay, ms. */
  delay: number;
  /** `[lab.link.faults]`: faults on the frames `a` sends (`aToB`) and `b` sends (`bToA`); null: none. */
  faults: { aToB: LinkFaults | null; bToA: LinkFaults | null };
}

/** Outcomes a probe can expect. */
export type ProbeExpect =
  | "reachable"
  | "unreachable"
  | "net-unreachable"
  | "host-unreachable"
  | "port-unreachable"
  | "admin-prohibited"
  | "frag-needed"
  | "time-exceeded"
  | "timeout"
  | "bound"
  | "connected"
  | "refused"
  | "reset"
  | "complete";

/** What a `lease` probe checks: the DHCP client of interface `iface` of the probe's node. */
export interface LeaseProbeConfig {
  iface: string;
  family: 4 | 6;
  /** The leased address must lie here (an inclusive range), when given. */
  expectAddressIn?: { first: IpAddress; last: IpAddress };
  /** IPv6: the delegated prefix must lie inside this prefix, when given. */
  expectPrefixIn?: { address: Uint8Array; prefixLen: number };
  /** DNS servers the lease must carry. */
  expectDns: IpAddress[];
}

/** What a `transfer` probe moves and checks. */
export interface TransferProbeConfig {
  /** How the probe talks to the service (default: by the port: 7, 9, 19, 80). */
  service: LabServiceType;
  /** echo, discard: bytes to send; chargen: the most bytes to read (absent: until the service closes). */
  bytes?: number;
  /** Bytes that must come back (echo: `bytes`; discard: 0; chargen: `bytes`; http: the body). */
  expectBytes?: number;
  /** SHA-256 (hex, lower case) the received bytes must have (http: the body); otherwise the pattern is checked. */
  expectSha256?: string;
  /** http: the status the response must carry (default 200). */
  expectStatus: number;
}

/** One `[[lab.probe]]`. */
export interface ProbeConfig {
  from: string;
  /** Virtual start time, ms. */
  at: number;
  kind: "ping" | "traceroute" | "udp" | "lease" | "tcp" | "transfer";
  /** For `udp`, `tcp` and `transfer` probes: the destination port. */
  port?: number;
  /** What ping, traceroute, udp, tcp and transfer probes aim at (a lease probe has none). */
  target?: IpAddress;
  /** A `lease` probe's checks. */
  lease?: LeaseProbeConfig;
  /** A `transfer` probe's service, sizes and checks. */
  transfer?: TransferProbeConfig;
  /** Interface name after `%` of a link-local target. */
  zone?: string;
  count: number;
  /** Ping payload bytes. */
  size: number;
  dontFragment: boolean;
  /** ms between pings. */
  interval: number;
  maxHops: number;
  /** ms to wait for each reply. */
  timeout: number;
  expect: ProbeExpect;
  expectMtu?: number;
  /** Traceroute hops; `"*"` for a silent hop. */
  expectPath?: (IpAddress | "*")[];
  expectFrom?: IpAddress;
}

/** One `[[lab.node.service]]`: a service the node runs on its own stack. */
export interface LabServiceConfig {
  type: LabServiceType;
  port: number;
  /** Listen address; null: every address of both families. */
  address: IpAddress | null;
  /** echo, discard: serve UDP on the port too. */
  udp: boolean;
  /** chargen: bytes per connection before the FIN (absent: until the client closes). */
  bytes?: number;
  /** http: the body text (absent: `bodyBytes` of the chargen pattern). */
  body?: string;
  /** http: length of the pattern body when `body` is absent (default 1024). */
  bodyBytes: number;
}

/** One `[[lab.node]]`: a name and a configuration validated like a file's. */
export interface LabNodeConfig {
  name: string;
  config: Config;
  /** `[[lab.node.service]]`: services on the node's own stack, started with the lab. */
  services: LabServiceConfig[];
}

/** A validated lab file (`tapir lab FILE`). */
export interface LabConfig {
  description: string;
  /** Cap on the virtual run length, ms. */
  duration: number;
  nodes: LabNodeConfig[];
  links: LabLinkConfig[];
  probes: ProbeConfig[];
}

export type { Dhcp6ClientConfig, Dhcp6Config, DhcpClientConfig, DhcpConfig, DnsConfig };
