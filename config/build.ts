/**
 * Turns a validated {@link Config} into a running {@link Stack}: NICs on the
 * links the caller opens, addresses, static neighbors and routes.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import {
  type Clock,
  DelegatedLan,
  type DelegatedPart,
  Dhcpv4Client,
  Dhcpv4Server,
  Dhcpv6Client,
  Dhcpv6Server,
  DnsForwarder,
  isLeaseHostname,
  type LeaseRecord,
  type LeaseStore,
  type LinkEndpoint,
  MemoryLeaseStore,
  type Nic,
  type Random,
  Stack,
} from "../stack/mod.ts";
import { Firewall } from "../stack/firewall/mod.ts";
import {
  type IpAddress,
  ipv4CidrContains,
  ipv4Mask,
  ipv6CidrContains,
  ipv6Masked,
  macFromName,
  parseIpv4,
  parseIpv6,
} from "../stack/wire/mod.ts";
import {
  addressFromInterfaceId,
  linkLocalFromMac,
  stablePrivacyInterfaceId,
} from "../stack/mod.ts";
import type { Config, DnsConfig, InterfaceConfig } from "./types.ts";

/** Options of {@link buildStack}. */
export interface BuildOptions {
  clock?: Clock;
  random?: Random;
  /** Open (or make) the link of one interface. */
  openLink: (iface: InterfaceConfig) => LinkEndpoint;
  /** Where services keep state and read wall time (default: in memory, the stack's clock). */
  services?: ServiceOptions;
}

/** What the services of an interface (its DHCP server) need from the program that runs them. */
export interface ServiceOptions {
  /** The lease store at a DHCP server's `lease_file` (`tapir run`: that file); default in memory. */
  leaseStore?: (leaseFile: string) => LeaseStore;
  /** Wall-clock ms for lease times (`tapir run`: `Date.now`); default the stack's clock. */
  wallClock?: () => number;
}

/** A service of the config could not start (its lease file cannot be opened, its port is taken). */
export class ServiceError extends Error {
  override name = "ServiceError";
}

/** Start, reconfigure or stop the DHCPv4 server of `iface` on `nic` to match its config. */
export function applyDhcp(
  stack: Stack,
  nic: Nic,
  iface: InterfaceConfig,
  services: ServiceOptions = {},
): "started" | "reconfigured" | "stopped" | "unchanged" {
  const key = `dhcp4:${iface.name}`;
  const running = stack.services.get(key);
  if (!iface.dhcp.enabled) {
    if (running === undefined) return "unchanged";
    running.close();
    stack.services.delete(key);
    return "stopped";
  }
  if (running instanceof Dhcpv4Server) {
    running.configure(iface.dhcp.settings);
    return "reconfigured";
  }
  let server: Dhcpv4Server;
  try {
    server = new Dhcpv4Server(stack, nic, iface.dhcp.settings, {
      store: services.leaseStore?.(iface.dhcp.leaseFile) ?? new MemoryLeaseStore(),
      wallClock: services.wallClock ?? (() => stack.clock.now()),
    });
  } catch (e) {
    throw new ServiceError(
      `interface ${iface.name}: the DHCPv4 server cannot start (lease_file ${iface.dhcp.leaseFile}): ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  stack.services.set(key, server);
  return "started";
}

/** Start, reconfigure or stop the DHCPv6 server of `iface` on `nic` to match its config. */
export function applyDhcp6(
  stack: Stack,
  nic: Nic,
  iface: InterfaceConfig,
  services: ServiceOptions = {},
): "started" | "reconfigured" | "stopped" | "unchanged" {
  const key = `dhcp6:${iface.name}`;
  const running = stack.services.get(key);
  if (!iface.dhcp6.enabled) {
    if (running === undefined) return "unchanged";
    running.close();
    stack.services.delete(key);
    return "stopped";
  }
  if (running instanceof Dhcpv6Server) {
    running.configure(iface.dhcp6.settings);
    return "reconfigured";
  }
  let server: Dhcpv6Server;
  try {
    server = new Dhcpv6Server(stack, nic, iface.dhcp6.settings, {
      store: services.leaseStore?.(iface.dhcp6.leaseFile) ?? new MemoryLeaseStore(),
      wallClock: services.wallClock ?? (() => stack.clock.now()),
    });
  } catch (e) {
    throw new ServiceError(
      `interface ${iface.name}: the DHCPv6 server cannot start (lease_file ${iface.dhcp6.leaseFile}): ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  stack.services.set(key, server);
  return "started";
}

/**
 * Start or stop the DHCPv4 client of `iface` on `nic` to match its config
 * (`addresses = ["dhcp"]`); a changed `[interface.dhcp_client]` restarts it
 * (the old lease is released, a new one asked for).
 */
export function applyDhcpClient(
  stack: Stack,
  nic: Nic,
  iface: InterfaceConfig,
): "started" | "restarted" | "stopped" | "unchanged" {
  const key = `dhcp4-client:${iface.name}`;
  const running = stack.services.get(key);
  const c = iface.dhcpClient;
  if (running !== undefined) {
    running.close();
    stack.services.delete(key);
  }
  if (c === null) return running === undefined ? "unchanged" : "stopped";
  const client = new Dhcpv4Client(stack, nic, {
    hostname: c.hostname,
    clientId: c.clientId,
    routeMetric: c.routeMetric,
    probes: c.probes,
  });
  client.onChange = (lease) => {
    if (lease === null) log.info("{iface}: DHCPv4 lease lost", { iface: iface.name });
    else log.info("{what}", { what: client.describe() });
  };
  stack.services.set(key, client);
  return running === undefined ? "started" : "restarted";
}

/**
 * Start or stop the DHCPv6 client of `iface` (`[interface.dhcp6_client]`);
 * a changed table restarts it (what it held is released, then asked for
 * again). Call {@link applyDelegations} after: the LANs that advertise its
 * prefix follow the client.
 */
export function applyDhcp6Client(
  stack: Stack,
  nic: Nic,
  iface: InterfaceConfig,
): "started" | "restarted" | "stopped" | "unchanged" {
  const key = `dhcp6-client:${iface.name}`;
  const running = stack.services.get(key);
  const c = iface.dhcp6Client;
  if (running !== undefined) {
    running.close();
    stack.services.delete(key);
  }
  if (c === null) return running === undefined ? "unchanged" : "stopped";
  const client = new Dhcpv6Client(stack, nic, {
    iaNa: c.iaNa,
    iaPd: c.iaPd,
    prefixHint: c.prefixHint,
    rapidCommit: c.rapidCommit,
  });
  client.onChange = () => log.info("{what}", { what: client.describe() });
  stack.services.set(key, client);
  return running === undefined ? "started" : "restarted";
}

/**
 * Make every LAN's delegated prefixes (`[interface.ra]` prefixes with
 * `from`) follow the DHCPv6 clients now running: the old trackers go, new
 * ones take the current delegations (a reload re-runs this).
 */
export function applyDelegations(
  stack: Stack,
  nics: Map<string, Nic>,
  interfaces: InterfaceConfig[],
): void {
  for (const [key, sv] of [...stack.services]) {
    if (key.startsWith("delegation:")) {
      sv.close();
      stack.services.delete(key);
    }
  }
  for (const lan of interfaces) {
    const nic = nics.get(lan.name);
    if (nic === undefined || lan.ra.delegated.length === 0) continue;
    const parts: DelegatedPart[] = [];
    for (const d of lan.ra.delegated) {
      const client = stack.services.get(`dhcp6-client:${d.from}`);
      if (!(client instanceof Dhcpv6Client)) continue;
      parts.push({ client, subnet: d.subnet, onLink: d.onLink, autonomous: d.autonomous });
    }
    const base = lan.ra.enabled && stack.ipv6.nicState(nic) !== undefined ? lan.ra : null;
    const tracker = new DelegatedLan(stack, nic, parts, base);
    tracker.onLog = (line) => log.info("{line}", { line });
    const dp = lan.dhcp6.enabled ? lan.dhcp6.delegatedPool : null;
    if (dp !== null) {
      // The LAN's DHCPv6 server hands out `delegated_pool` in each /64 of the delegation.
      const renumber = (lan64s: Uint8Array[]) => {
        const srv = stack.services.get(`dhcp6:${lan.name}`);
        if (!(srv instanceof Dhcpv6Server)) return;
        const join = (p: Uint8Array, iid: Uint8Array) => {
          const a = p.slice(0, 16);
          a.set(iid.subarray(8, 16), 8);
          return a;
        };
        srv.configure({
          ...lan.dhcp6.settings,
          pools: [
            ...lan.dhcp6.settings.pools,
            ...lan64s.map((p) => ({ start: join(p, dp.first), end: join(p, dp.last) })),
          ],
        });
      };
      tracker.onChange = renumber;
      renumber(tracker.subnets());
    }
    stack.services.set(`delegation:${lan.name}`, tracker);
  }
}

/**
 * Start, reconfigure or stop the DNS forwarder (`[dns]`). Without
 * `servers` its upstreams are the DNS servers of the WAN leases tapir's
 * DHCPv4 and DHCPv6 clients hold, looked up at each query.
 */
export function applyDns(
  stack: Stack,
  nics: Map<string, Nic>,
  dns: DnsConfig,
): "started" | "reconfigured" | "stopped" | "unchanged" {
  const key = "dns";
  const running = stack.services.get(key);
  if (!dns.enabled) {
    if (running === undefined) return "unchanged";
    running.close();
    stack.services.delete(key);
    return "stopped";
  }
  const served = dns.interfaces.map((n) => nics.get(n)).filter((n) => n !== undefined);
  const fromLeases = (): IpAddress[] => {
    const out: IpAddress[] = [];
    for (const sv of stack.services.values()) {
      if (sv instanceof Dhcpv4Client && sv.lease !== null) {
        for (const a of sv.lease.dnsServers) out.push({ family: 4, address: a });
      }
      if (sv instanceof Dhcpv6Client && sv.lease !== null) {
        for (const a of sv.lease.dnsServers) out.push({ family: 6, address: a });
      }
    }
    return out;
  };
  if (running instanceof DnsForwarder && sameNics(running.nics, served)) {
    running.configure(dns.settings);
    running.upstreamSource = dns.serversGiven ? null : fromLeases;
    running.leaseNames = () => leaseNames(stack);
    return "reconfigured";
  }
  running?.close();
  stack.services.delete(key);
  let fwd: DnsForwarder;
  try {
    fwd = new DnsForwarder(stack, served, dns.settings);
  } catch (e) {
    throw new ServiceError(
      `[dns]: the forwarder cannot start: ${e instanceof Error ? e.message : e}`,
    );
  }
  fwd.upstreamSource = dns.serversGiven ? null : fromLeases;
  fwd.leaseNames = () => leaseNames(stack);
  stack.services.set(key, fwd);
  return running === undefined ? "started" : "reconfigured";
}

/**
 * Bound, unexpired leases that carry a hostname, for the forwarder's lease
 * names: DHCPv4 leases in the server's `domain`, DHCPv6 address leases
 * (IA_NA) in its first `search` domain.
 */
function leaseNames(stack: Stack): { name: string; address: IpAddress; domain: string | null }[] {
  // The same list (the same object, which the forwarder indexes once) until a lease table
  // changes, or every 10 s (leases run out without a change).
  let key = String(Math.floor(stack.clock.now() / 10_000));
  for (const sv of stack.services.values()) {
    if (sv instanceof Dhcpv4Server || sv instanceof Dhcpv6Server) key += `/${sv.version}`;
  }
  const cached = leaseNameCache.get(stack);
  if (cached !== undefined && cached.key === key) return cached.list;
  const out: { name: string; address: IpAddress; domain: string | null }[] = [];
  const add = (
    leases: (LeaseRecord & { expired: boolean })[],
    domain: string | null,
    address: (text: string) => IpAddress,
  ) => {
    for (const l of leases) {
      if (l.hostname === null || l.state !== "bound" || l.expired) continue;
      if (!isLeaseHostname(l.hostname)) continue;
      out.push({ name: l.hostname, address: address(l.address), domain });
    }
  };
  for (const sv of stack.services.values()) {
    if (sv instanceof Dhcpv4Server) {
      add(sv.leases(), sv.settings.domain, (a) => ({ family: 4, address: parseIpv4(a) }));
    } else if (sv instanceof Dhcpv6Server) {
      add(
        sv.leases().filter((l) => l.ia === "na"),
        sv.settings.domains[0] ?? null,
        (a) => ({ family: 6, address: parseIpv6(a) }),
      );
    }
  }
  leaseNameCache.set(stack, { key, list: out });
  return out;
}

const leaseNameCache = new WeakMap<
  Stack,
  { key: string; list: { name: string; address: IpAddress; domain: string | null }[] }
>();

const sameNics = (a: readonly (Nic | null)[], b: readonly Nic[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);

/** A stack built from a config, with its NICs by interface name. */
export interface BuiltStack {
  stack: Stack;
  nics: Map<string, Nic>;
  /** Config parts that validated but that this version does not act on yet. */
  inactive: string[];
}

const log = getLogger(["tapir", "config"]);

/**
 * Build a stack from `config`.
 *
 * @example
 * ```ts
 * import { buildStack } from "./build.ts";
 * import { parseConfig } from "./mod.ts";
 * import { MemoryLink } from "../link/mod.ts";
 * import { ManualClock } from "../stack/mod.ts";
 * const clock = new ManualClock();
 * const cfg = parseConfig('[[interface]]\nname = "eth0"\naddresses = ["192.0.2.1/24"]\n');
 * const [a] = MemoryLink.pair({ clock });
 * const { stack } = buildStack(cfg, { clock, openLink: () => a });
 * console.assert(stack.ipv4.local.size === 1);
 * ```
 */
export function buildStack(config: Config, opts: BuildOptions): BuiltStack {
  const r = config.router;
  const stack = new Stack({
    clock: opts.clock,
    random: opts.random,
    hostname: r.hostname,
    tcp: config.tcp,
    neighbor: {
      baseReachableTimeMs: r.neighbor.baseReachableTime,
      retransTimeMs: r.neighbor.retransTime,
      multicastProbes: r.neighbor.probes,
      unicastProbes: r.neighbor.probes,
      delayFirstProbeMs: r.neighbor.delayFirstProbe,
      queueLen: r.neighbor.queueLen,
      maxEntries: r.neighbor.maxEntries,
      gcStaleTimeMs: r.neighbor.gcStaleTime,
    },
    ipv4: {
      defaultTtl: r.ipv4.defaultTtl,
      reassemblyTimeoutMs: r.ipv4.reassemblyTimeout,
      reassemblyMemory: r.ipv4.reassemblyMemory,
    },
    ipv6: {
      defaultHopLimit: r.ipv6.defaultHopLimit,
      reassemblyTimeoutMs: r.ipv6.reassemblyTimeout,
      reassemblyMemory: r.ipv6.reassemblyMemory,
      dadTransmits: r.ipv6.dadTransmits,
      retransTimerMs: r.ipv6.retransTimer,
    },
    icmpRateLimit: { rate: r.icmp.rateLimit, burst: r.icmp.burst },
  });
  const nics = new Map<string, Nic>();
  const inactive: string[] = [];
  try {
    for (const iface of config.interfaces) {
      nics.set(iface.name, addInterface(stack, r, iface, opts.openLink(iface), inactive));
    }
    for (const iface of config.interfaces) {
      applyDhcp(stack, nics.get(iface.name)!, iface, opts.services);
      applyDhcp6(stack, nics.get(iface.name)!, iface, opts.services);
    }
    addRoutes(stack, nics, config.routes);
    if (hasRules(config)) {
      // IPv4: the shared tables' IPv4 rules and [firewall.ipv4.*]; IPv6:
      // their IPv6 rules and [firewall.ipv6.*] (filter and raw; no NAT).
      const fw = new Firewall(stack, config.firewall);
      fw.install();
      stack.firewall = fw;
    }
    // Clients last: their first DISCOVER passes the firewall's OUTPUT chain.
    for (const iface of config.interfaces) {
      applyDhcpClient(stack, nics.get(iface.name)!, iface);
      applyDhcp6Client(stack, nics.get(iface.name)!, iface);
    }
    applyDelegations(stack, nics, config.interfaces);
    applyDns(stack, nics, config.dns);
  } catch (e) {
    stack.close();
    throw e;
  }
  for (const what of inactive) {
    log.warn("{what} is valid but not acted on yet by this version of tapir", { what });
  }
  return { stack, nics, inactive };
}

/**
 * Add one `[[interface]]` to `stack` on `link`: the NIC, its addresses and
 * static neighbors, its RA sending and accepting. Parts it cannot act on
 * (RA on an MTU below 1280) are appended to `inactive`.
 */
export function addInterface(
  stack: Stack,
  r: Config["router"],
  iface: InterfaceConfig,
  link: LinkEndpoint,
  inactive: string[] = [],
): Nic {
  const mac = iface.mac ?? macFromName(`${r.hostname}/${iface.name}`);
  // IPv6 runs on every interface that can carry it (RFC 8200 §5: MTU ≥ 1280), as on Linux.
  const v6 = iface.mtu >= 1280;
  const nic = stack.addNic(link, {
    name: iface.name,
    mac,
    mtu: iface.mtu,
    forwardingV4: iface.forwarding.ipv4,
    sendRedirects: iface.sendRedirects.ipv4,
    ipv6: v6
      ? {
        forwarding: iface.forwarding.ipv6,
        sendRedirects: iface.sendRedirects.ipv6,
        linkLocal: linkLocalFor(r, iface.name, mac),
      }
      : false,
  });
  for (const a of iface.addresses) {
    if (a.family === 4) stack.ipv4.addAddress(nic, a.address, a.prefixLen);
    else stack.ipv6.addAddress(nic, a.address, a.prefixLen);
  }
  for (const n of iface.neighbors) {
    if (n.address.family === 4) {
      stack.ipv4.nicState(nic)!.neighbors.addStatic(n.address.address, n.mac);
    } else {
      stack.ipv6.nicState(nic)?.neighbors.addStatic(
        stack.ipv6.keys.key(n.address.address),
        n.mac,
      );
    }
  }
  if (v6 && iface.ra.enabled) stack.ra.enableRouter(nic, iface.ra);
  else if (iface.ra.enabled) {
    inactive.push(`interface ${iface.name}: [interface.ra] (mtu < 1280)`);
  }
  if (v6 && iface.acceptRa) {
    // Like Linux accept_ra = 2: RAs are taken even while forwarding.
    stack.ra.enableHost(nic, {
      maxRouters: r.ipv6.maxRouters,
      maxPrefixes: r.ipv6.maxPrefixes,
      maxAddresses: r.ipv6.maxAddresses,
      addrGenMode: r.ipv6.addrGenMode,
      ...(r.ipv6.stableSecret !== undefined ? { stableSecret: r.ipv6.stableSecret } : {}),
    });
  } else if (iface.acceptRa) inactive.push(`interface ${iface.name}: accept_ra (mtu < 1280)`);
  return nic;
}

/** Add `routes` (`[[route]]`) to the stack's tables as static routes. */
export function addRoutes(stack: Stack, nics: Map<string, Nic>, routes: Config["routes"]): void {
  for (const route of routes) {
    if (route.to.family === 6) {
      addIpv6Route(stack, nics, route);
      continue;
    }
    let nicId = 0;
    let gateway: number | null = null;
    if (route.type === "unicast") {
      if (route.dev !== undefined) nicId = nics.get(route.dev)!.id;
      if (route.via !== undefined && route.via.family === 4) {
        gateway = route.via.address;
        if (nicId === 0) nicId = connectedNicFor(stack, gateway);
      }
    }
    stack.ipv4.routes.add({
      prefix: (route.to.address & ipv4Mask(route.to.prefixLen)) >>> 0,
      prefixLen: route.to.prefixLen,
      type: route.type,
      nicId,
      gateway,
      metric: route.metric,
      source: "static",
    });
  }
}

/** RFC 4291 link-local: EUI-64 from the MAC, or RFC 7217 stable-privacy with the configured secret. */
function linkLocalFor(r: Config["router"], name: string, mac: Uint8Array): Uint8Array {
  if (r.ipv6.addrGenMode === "stable-privacy" && r.ipv6.stableSecret !== undefined) {
    const prefix = new Uint8Array(16);
    prefix[0] = 0xfe;
    prefix[1] = 0x80;
    return addressFromInterfaceId(
      prefix,
      stablePrivacyInterfaceId(prefix, name, null, 0, r.ipv6.stableSecret),
    );
  }
  return linkLocalFromMac(mac);
}

function addIpv6Route(stack: Stack, nics: Map<string, Nic>, route: Config["routes"][number]): void {
  if (route.to.family !== 6) return;
  let nicId = 0;
  let gateway: Uint8Array | null = null;
  if (route.type === "unicast") {
    if (route.dev !== undefined) nicId = nics.get(route.dev)!.id;
    if (route.via !== undefined && route.via.family === 6) {
      gateway = route.via.address;
      if (nicId === 0) {
        for (const st of stack.ipv6.nicStates()) {
          if (st.addresses.some((a) => ipv6CidrContains(a, gateway!))) nicId = st.nic.id;
        }
      }
    }
  }
  stack.ipv6.routes.add({
    prefix: ipv6Masked(route.to.address, route.to.prefixLen),
    prefixLen: route.to.prefixLen,
    type: route.type,
    nicId,
    gateway,
    metric: route.metric,
    source: "static",
  });
}

function connectedNicFor(stack: Stack, gateway: number): number {
  for (const nic of stack.nics.values()) {
    const st = stack.ipv4.nicState(nic);
    if (st?.addresses.some((a) => ipv4CidrContains(a, gateway))) return nic.id;
  }
  return 0;
}

/** True when the config's firewall has a rule, a non-ACCEPT policy or a named set. */
export function hasRules(config: Config): boolean {
  const fw = config.firewall;
  // Named sets alone make a firewall too: `tapir set` needs one to change.
  if ((fw.sets?.size ?? 0) > 0) return true;
  for (const fam of [fw.shared, fw.ipv4, fw.ipv6]) {
    for (const t of [fam.filter, fam.nat, fam.raw, fam.mangle]) {
      for (const c of t.chains.values()) {
        if (c.rules.length > 0 || c.policy !== "accept") return true;
      }
    }
  }
  return false;
}
