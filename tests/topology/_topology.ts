/**
 * In-memory topologies for stack tests: hosts and routers on MemoryLinks,
 * driven by a ManualClock.
 */
import assert from "node:assert/strict";
import { ManualClock, SeededRandom, Stack } from "../../stack/mod.ts";
import type { Ipv4Route, Nic, StackOptions } from "../../stack/mod.ts";
import { MemoryLink } from "../../link/mod.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import { buildLab, hostsOf, type Hub, type RawHost } from "./_lab.ts";

export { Hub, HubPort, type HubPortStats, RawHost, rawMac, type TappedFrame } from "./_lab.ts";

/** h1 (192.0.2.10) — r (192.0.2.1 | 198.51.100.1) — h2 (198.51.100.10). */
export interface Triangle {
  clock: ManualClock;
  h1: Stack;
  r: Stack;
  h2: Stack;
  h1nic: Nic;
  h2nic: Nic;
  rLan: Nic;
  rWan: Nic;
}

/** Build the two-subnet topology; `wanMtu` sets the router–h2 link MTU. */
export function triangle(opts: { wanMtu?: number } = {}): Triangle {
  const clock = new ManualClock();
  const [a1, a2] = MemoryLink.pair({ clock, names: ["h1:eth0", "r:lan0"] });
  const [b1, b2] = MemoryLink.pair({
    clock,
    mtu: opts.wanMtu ?? 1500,
    names: ["r:wan0", "h2:eth0"],
  });
  const h1 = new Stack({ clock, random: new SeededRandom(1), hostname: "h1" });
  const r = new Stack({ clock, random: new SeededRandom(2), hostname: "r" });
  const h2 = new Stack({ clock, random: new SeededRandom(3), hostname: "h2" });
  const h1nic = h1.addNic(a1, { name: "eth0" });
  const rLan = r.addNic(a2, { name: "lan0", forwardingV4: true });
  const rWan = r.addNic(b1, { name: "wan0", forwardingV4: true, mtu: opts.wanMtu ?? 1500 });
  const h2nic = h2.addNic(b2, { name: "eth0", mtu: opts.wanMtu ?? 1500 });
  h1.ipv4.addAddress(h1nic, parseIpv4("192.0.2.10"), 24);
  r.ipv4.addAddress(rLan, parseIpv4("192.0.2.1"), 24);
  r.ipv4.addAddress(rWan, parseIpv4("198.51.100.1"), 24);
  h2.ipv4.addAddress(h2nic, parseIpv4("198.51.100.10"), 24);
  for (const [s, gw] of [[h1, "192.0.2.1"], [h2, "198.51.100.1"]] as const) {
    s.ipv4.routes.add({
      prefix: 0,
      prefixLen: 0,
      type: "unicast",
      nicId: 1,
      gateway: parseIpv4(gw),
      metric: 0,
      source: "static",
    });
  }
  clock.advance(0);
  return { clock, h1, r, h2, h1nic, h2nic, rLan, rWan };
}

/** Advance the clock in steps until `p` settles (bounded by `maxMs`). */
export async function settle<T>(clock: ManualClock, p: Promise<T>, maxMs = 120_000): Promise<T> {
  let done = false;
  p.then(() => done = true, () => done = true);
  for (let t = 0; t < maxMs && !done; t += 50) {
    for (let i = 0; i < 5; i++) await Promise.resolve();
    if (done) break;
    clock.advance(50);
  }
  return await p;
}

// ------------------------------------------------------------ labs

/** Addresses of the labs. */
export const ADDR = {
  a: "192.0.2.10",
  rLan: "192.0.2.1",
  rWan: "198.51.100.1",
  b: "198.51.100.10",
} as const;

/** raw a (192.0.2.10) — lan hub — r — wan hub — raw b (198.51.100.10). */
export interface RouterLab {
  clock: ManualClock;
  r: Stack;
  rLan: Nic;
  rWan: Nic;
  lan: Hub;
  wan: Hub;
  a: RawHost;
  b: RawHost;
}

/** Options of {@link routerLab}. */
export interface RouterLabOptions {
  lanMtu?: number;
  wanMtu?: number;
  lanOffloads?: boolean;
  /** Forwarding on r's LAN NIC (default true). */
  lanForwarding?: boolean;
  /** ICMP redirects on r's LAN NIC (default true). */
  sendRedirects?: boolean;
  /** More options for r's Stack. */
  stack?: Omit<StackOptions, "clock" | "random" | "hostname">;
  /** Skip the ARP warm-up (r learns a and b only when it needs them). */
  cold?: boolean;
}

/**
 * A router between two hubs with a raw host on each. After it returns, r
 * knows a's and b's MACs (each sent an ARP request for r), unless `cold`.
 */
export function routerLab(opts: RouterLabOptions = {}): RouterLab {
  const l = buildLab({ family: 4, addrs: { ...ADDR, prefixLen: 24 }, raw: true, ...opts });
  return {
    clock: l.clock,
    r: l.r,
    rLan: l.rLan,
    rWan: l.rWan,
    lan: l.lan,
    wan: l.wan,
    a: l.a!,
    b: l.b!,
  };
}

/** h1 (192.0.2.10) — lan hub — r — wan hub — h2 (198.51.100.10), all stacks. */
export interface HostLab {
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

/** Like {@link triangle}, but over hubs that record every frame. */
export function hostLab(opts: { lanMtu?: number; wanMtu?: number } = {}): HostLab {
  const l = buildLab({ family: 4, addrs: { ...ADDR, prefixLen: 24 }, raw: false, ...opts });
  return hostsOf(l);
}

/** Add `prefix/len` via `gateway` (null: on-link) out of `nic` to `s`. */
export function addRoute(
  s: Stack,
  nic: Nic | null,
  cidr: string,
  gateway: string | null,
  type: Ipv4Route["type"] = "unicast",
  metric = 0,
): void {
  const [p, l] = cidr.split("/");
  s.ipv4.routes.add({
    prefix: parseIpv4(p!),
    prefixLen: Number(l),
    type,
    nicId: nic?.id ?? 0,
    gateway: gateway === null ? null : parseIpv4(gateway),
    metric,
    source: "static",
  });
}

/** A default route via `gateway`. */
export function defaultRoute(s: Stack, nic: Nic, gateway: string): void {
  addRoute(s, nic, "0.0.0.0/0", gateway);
}

// ------------------------------------------------------------ counters

/** Every counter of `s` as a flat record: `ipv4.forwarding.ttlExceeded`, `nic.lan0.framesSent`, `neigh.wan0.packetsQueued`, `neigh6.wan0.packetsQueued`. */
export function counters(s: Stack): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (prefix: string, o: object) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "number") out[prefix + k] = v;
      else if (v !== null && typeof v === "object") walk(`${prefix}${k}.`, v);
    }
  };
  walk("", s.stats);
  for (const n of s.nics.values()) {
    walk(`nic.${n.name}.`, n.stats);
    const st = s.ipv4.nicState(n);
    if (st !== undefined) walk(`neigh.${n.name}.`, st.neighbors.stats);
    const st6 = s.ipv6.nicState(n);
    if (st6 !== undefined) walk(`neigh6.${n.name}.`, st6.neighbors.stats);
  }
  return out;
}

/** The names of every counter a {@link watch} delta was taken over (not enumerable). */
const KNOWN = Symbol("known counters");

/** Start watching `s`: the returned function gives the counters that changed since (name → delta). */
export function watch(s: Stack): () => Record<string, number> {
  const before = counters(s);
  return () => {
    const after = counters(s);
    const d: Record<string, number> = {};
    for (const [k, v] of Object.entries(after)) {
      const x = v - (before[k] ?? 0);
      if (x !== 0) d[k] = x;
    }
    Object.defineProperty(d, KNOWN, { value: new Set(Object.keys(after)) });
    return d;
  };
}

/** Assert that each counter in `expected` changed by exactly that much (0 = unchanged). */
export function assertDelta(
  delta: Record<string, number>,
  expected: Record<string, number>,
  msg = "",
): void {
  const known = (delta as { [KNOWN]?: Set<string> })[KNOWN];
  for (const [k, v] of Object.entries(expected)) {
    // A name that is no counter would always read 0: a stale test, not a pass.
    if (known !== undefined) assert.ok(known.has(k), `${msg} ${k} is not a counter`);
    assert.equal(delta[k] ?? 0, v, `${msg} counter ${k} (changed: ${JSON.stringify(delta)})`);
  }
}
