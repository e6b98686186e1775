/**
 * In-memory topologies for stack tests: hosts and routers on MemoryLinks,
 * driven by a ManualClock.
 */
import { ManualClock, SeededRandom, Stack } from "../../stack/mod.ts";
import type { Nic } from "../../stack/mod.ts";
import { MemoryLink } from "../../link/mod.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";

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
