/**
 * IPv6 helpers for stack tests: the bytes and readers of `_packets6.ts`,
 * and the IPv6 labs of a router between two hubs, built by `_lab.ts`'s
 * one lab builder with its one raw host (ARP and NS).
 */
import type { ManualClock, Stack } from "../../stack/mod.ts";
import type { Ipv6Route, Nic, StackOptions } from "../../stack/mod.ts";
import { formatIpv6, formatMac, parseIpv6 } from "../../stack/wire/mod.ts";
import { buildLab, hostsOf, type Hub, RawHost } from "./_lab.ts";

/** The raw host of both families (it answers ARP and NS). */
export const RawHost6 = RawHost;
/** The raw host of both families. */
export type RawHost6 = RawHost;

export * from "./_packets6.ts";
import { ADDR6 } from "./_packets6.ts";

// ------------------------------------------------------------ labs

/** An IPv6 route for tests. */
export function route6(
  s: Stack,
  nic: Nic | null,
  cidr: string,
  gateway: string | null,
  type: Ipv6Route["type"] = "unicast",
): void {
  const [p, l] = cidr.split("/");
  s.ipv6.routes.add({
    prefix: parseIpv6(p!),
    prefixLen: Number(l),
    type,
    nicId: nic?.id ?? 0,
    gateway: gateway === null ? null : parseIpv6(gateway),
    metric: 0,
    source: "static",
  });
}

/** raw a — lan hub — r — wan hub — raw b, IPv6. */
export interface RouterLab6 {
  clock: ManualClock;
  r: Stack;
  rLan: Nic;
  rWan: Nic;
  lan: Hub;
  wan: Hub;
  a: RawHost6;
  b: RawHost6;
  /** r's link-local address on lan0 / wan0 (text). */
  rLanLL: string;
  rWanLL: string;
}

/** Options of {@link routerLab6}. */
export interface RouterLab6Options {
  lanMtu?: number;
  wanMtu?: number;
  sendRedirects?: boolean;
  /** Forwarding on r (default true). */
  forwarding?: boolean;
  stack?: Omit<StackOptions, "clock" | "random" | "hostname">;
  /** Skip the NDP warm-up. */
  cold?: boolean;
}

/**
 * r (2001:db8:1::1 on lan0, 2001:db8:2::1 on wan0, forwarding) between two
 * hubs; raw a (2001:db8:1::10, fe80::a) on lan, raw b (2001:db8:2::10,
 * fe80::b) on wan. DAD has finished; unless `cold`, r knows a's and b's
 * MACs (each solicited r with its link-layer address).
 */
export function routerLab6(opts: RouterLab6Options = {}): RouterLab6 {
  const l = buildLab({
    family: 6,
    addrs: { ...ADDR6, prefixLen: 64 },
    raw: true,
    nicMtu: true,
    settleMs: 3000, // DAD: ≤ 1 s delay + 1 probe × 1 s
    lanMtu: opts.lanMtu,
    wanMtu: opts.wanMtu,
    sendRedirects: opts.sendRedirects,
    lanForwarding: opts.forwarding,
    wanForwarding: opts.forwarding,
    stack: opts.stack,
    cold: opts.cold,
  });
  const ll = (n: Nic) => formatIpv6(l.r.ipv6.linkLocalOf(n)!);
  return {
    clock: l.clock,
    r: l.r,
    rLan: l.rLan,
    rWan: l.rWan,
    lan: l.lan,
    wan: l.wan,
    a: l.a!,
    b: l.b!,
    rLanLL: ll(l.rLan),
    rWanLL: ll(l.rWan),
  };
}

/** h1 — lan hub — r — wan hub — h2, all stacks with IPv6. */
export interface HostLab6 {
  clock: ManualClock;
  h1: Stack;
  r: Stack;
  h2: Stack;
  h1nic: Nic;
  h2nic: Nic;
  rLan: Nic;
  rWan: Nic;
  lan: Hub;
  wan: Hub;
}

/** h1 (2001:db8:1::10) — r — h2 (2001:db8:2::10), default routes via r; DAD done. */
export function hostLab6(opts: { lanMtu?: number; wanMtu?: number } = {}): HostLab6 {
  const l = buildLab({
    family: 6,
    addrs: { ...ADDR6, prefixLen: 64 },
    raw: false,
    nicMtu: true,
    settleMs: 3000,
    ...opts,
  });
  return hostsOf(l);
}

/** The IPv6 neighbor cache entry of `key` on `nic` (state name and MAC), or undefined. */
export function neighbor6(
  s: Stack,
  nic: Nic,
  key: string,
): { state: string; mac: string } | undefined {
  const e = s.ipv6.nicState(nic)!.neighbors.entries().find((x) =>
    x.key === formatIpv6(parseIpv6(key))
  );
  if (e === undefined) return undefined;
  return { state: e.state, mac: e.mac === null ? "" : formatMac(e.mac) };
}
