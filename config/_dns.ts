/**
 * `[dns]`: the DNS forwarder (keys as dnsmasq names them where it can:
 * `interfaces`, `servers`, `cache_size`, `local`, `hosts`), and the
 * defaults it sets on the interfaces it serves: their DHCPv4 and DHCPv6
 * servers and Router Advertisements name tapir's own address as the DNS
 * server unless the config names others.
 *
 * @module
 */
import type { DnsForwarderSettings } from "../stack/mod.ts";
import { formatIpAddress, type IpAddress, ipv6IsLinkLocalUnicast } from "../stack/wire/mod.ts";
import {
  addressAt,
  arr,
  at,
  bool,
  type Ctx,
  describe,
  didYouMean,
  duration,
  idx,
  isTable,
  optInt,
  readTable,
} from "./_check.ts";
import type { InterfaceConfig } from "./types.ts";

/** `[dns]` as validated. */
export interface DnsConfig {
  enabled: boolean;
  /** The interfaces it serves port 53 on. */
  interfaces: string[];
  /** True when `servers` was given (otherwise the WAN leases' DNS servers are the upstreams). */
  serversGiven: boolean;
  settings: Omit<DnsForwarderSettings, "servers"> & { servers: IpAddress[] };
}

const DNS_KEYS = [
  "enabled",
  "interfaces",
  "servers",
  "cache_size",
  "local",
  "hosts",
  "timeout",
  "rate_limit",
  "local_ttl",
  "tcp_idle_timeout",
  "tcp_clients",
] as const;

const S = 1000;
const DOMAIN =
  /^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$/;

/** Validate `[dns]` against the interfaces; disabled when absent. */
export function validateDns(
  ctx: Ctx,
  raw: unknown,
  path: string,
  interfaces: InterfaceConfig[],
): DnsConfig {
  const t = raw === undefined ? undefined : readTable(ctx, raw, path, DNS_KEYS);
  const tt = t ?? {};
  const enabled = t !== undefined && bool(ctx, tt, "enabled", path, true);
  const names: string[] = [];
  arr(ctx, tt, "interfaces", path).forEach((v, i) => {
    const p = idx(at(path, "interfaces"), i);
    if (typeof v !== "string") {
      return ctx.err(p, `expected an interface name, found ${describe(v)}`);
    }
    if (!interfaces.some((f) => f.name === v)) {
      return ctx.err(p, `no interface "${v}"${didYouMean(v, interfaces.map((f) => f.name))}`);
    }
    if (names.includes(v)) return ctx.err(p, `"${v}" is named twice`);
    names.push(v);
  });
  if (enabled && tt.interfaces === undefined) {
    ctx.err(
      at(path, "interfaces"),
      `"interfaces" is required: the LAN interfaces to answer on (e.g. ["lan0"])`,
    );
  }
  const servers: IpAddress[] = [];
  arr(ctx, tt, "servers", path).forEach((v, i) => {
    const p = idx(at(path, "servers"), i);
    const a = addressAt(ctx, v, p);
    if (a === undefined) return;
    if (a.family === 6 && ipv6IsLinkLocalUnicast(a.address as Uint8Array)) {
      return ctx.err(
        p,
        `${
          formatIpAddress(a)
        }: a link-local upstream needs an interface, which [dns] cannot name yet`,
      );
    }
    servers.push(a);
  });
  const local: string[] = [];
  arr(ctx, tt, "local", path).forEach((v, i) => {
    const p = idx(at(path, "local"), i);
    if (typeof v !== "string" || !DOMAIN.test(v)) return ctx.err(p, `bad domain ${describe(v)}`);
    local.push(v.toLowerCase().replace(/\.$/, ""));
  });
  const hosts: DnsForwarderSettings["hosts"] = [];
  if (tt.hosts !== undefined) {
    const hp = at(path, "hosts");
    if (!isTable(tt.hosts)) {
      ctx.err(hp, `expected a table of name = address or [addresses], found ${describe(tt.hosts)}`);
    } else {
      for (const [name, v] of Object.entries(tt.hosts)) {
        const p = at(hp, name);
        if (!DOMAIN.test(name)) {
          ctx.err(p, `bad host name "${name}"`);
          continue;
        }
        const list = typeof v === "string" ? [v] : Array.isArray(v) ? v : null;
        if (list === null || list.length === 0) {
          ctx.err(p, `expected an address or a list of addresses, found ${describe(v)}`);
          continue;
        }
        const addresses: IpAddress[] = [];
        list.forEach((x, i) => {
          const a = addressAt(ctx, x, typeof v === "string" ? p : idx(p, i));
          if (a) addresses.push(a);
        });
        hosts.push({ name: name.toLowerCase().replace(/\.$/, ""), addresses });
      }
    }
  }
  return {
    enabled,
    interfaces: names,
    serversGiven: tt.servers !== undefined,
    settings: {
      servers,
      cacheSize: optInt(ctx, tt, "cache_size", path, 0, 1_000_000) ?? 150,
      hosts,
      local,
      localTtl: Math.floor(duration(ctx, tt, "local_ttl", path, 0, 0, 86_400 * S) / S),
      maxNegativeTtl: 10_800,
      timeoutMs: duration(ctx, tt, "timeout", path, 2 * S, 100, 30 * S),
      deadAfter: 3,
      retryDownMs: 30_000,
      rateLimit: optInt(ctx, tt, "rate_limit", path, 0, 1_000_000) ?? 0,
      rateBurst: 100,
      // RFC 7766 §6.2.3: a server closes idle connections after a timeout of "a few seconds".
      tcpIdleMs: duration(ctx, tt, "tcp_idle_timeout", path, 10 * S, 1 * S, 600 * S),
      maxTcpClients: optInt(ctx, tt, "tcp_clients", path, 1, 10_000) ?? 20,
    },
  };
}

/**
 * Point the served interfaces' clients at tapir: DHCPv4 and DHCPv6
 * servers and RAs (RDNSS, RFC 8106) without DNS servers of their own get
 * the interface's first address of that family (IPv6: a global one).
 */
export function applyDnsDefaults(dns: DnsConfig, interfaces: InterfaceConfig[]): void {
  if (!dns.enabled) return;
  for (const name of dns.interfaces) {
    const f = interfaces.find((x) => x.name === name);
    if (f === undefined) continue;
    const v4 = f.addresses.find((a) => a.family === 4);
    const v6 = f.addresses.find((a) =>
      a.family === 6 && !ipv6IsLinkLocalUnicast(a.address as Uint8Array)
    );
    if (f.dhcp.enabled && f.dhcp.settings.dnsServers.length === 0 && v4 !== undefined) {
      f.dhcp.settings.dnsServers = [v4.address as number];
    }
    if (f.dhcp6.enabled && f.dhcp6.settings.dnsServers.length === 0 && v6 !== undefined) {
      f.dhcp6.settings.dnsServers = [(v6.address as Uint8Array).slice()];
    }
    if (f.ra.enabled && f.ra.rdnss.length === 0 && v6 !== undefined) {
      f.ra.rdnss = [{
        addresses: [(v6.address as Uint8Array).slice()],
        lifetime: 3 * f.ra.maxInterval,
      }];
    }
  }
}
