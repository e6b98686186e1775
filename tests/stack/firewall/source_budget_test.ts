import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { SourceBudget } from "../../../stack/firewall/source_budget.ts";
import { ManualClock, SeededRandom } from "../../../stack/mod.ts";
import { parseIpv4, parseIpv6 } from "../../../stack/wire/mod.ts";
import { triangle, watch } from "../../topology/_topology.ts";
import { hostLab6 } from "../../topology/_topology6.ts";
import { ADDR6 } from "../../topology/_packets6.ts";
import { firewallFrom } from "./_fw.ts";
import { run } from "./_packets.ts";

const A = 0xc000020a, B = 0xc000020b;

Deno.test("SourceBudget: a burst, then the rate; each source its own bucket; rate 0 is no budget", () => {
  const clock = new ManualClock();
  const b = new SourceBudget(clock, 1000, 3);
  assert.deepEqual([b.take(A, 0), b.take(A, 0), b.take(A, 0), b.take(A, 0)], [
    true,
    true,
    true,
    false,
  ]);
  assert.ok(b.take(B, 0), "another source is not charged for A");
  clock.advance(1);
  assert.deepEqual([b.take(A, 0), b.take(A, 0)], [true, false], "one token a millisecond");
  clock.advance(60_000);
  let n = 0;
  while (b.take(A, 0)) n++;
  assert.equal(n, 3, "refilled to the burst, no more");
  // The key's second word tells IPv6 /64s apart.
  assert.ok(b.take(A, 1));
  b.configure(0, 1);
  for (let i = 0; i < 10_000; i++) assert.ok(b.take(A, 0));
});

Deno.test("SourceBudget: a flood of forged sources never lowers a known source's budget", () => {
  const clock = new ManualClock();
  const b = new SourceBudget(clock, 10, 5, 64);
  for (let i = 0; i < 3; i++) assert.ok(b.take(A, 0));
  const r = new SeededRandom(7);
  let passed = 0;
  for (let i = 0; i < 10_000; i++) if (b.take(r.uint32(), 0)) passed++;
  assert.equal(passed, 10_000, "each forged source is new, with a full bucket");
  // A kept its 2 tokens, or was pushed out and starts with 5: never fewer than 2.
  assert.ok(b.take(A, 0) && b.take(A, 0));
});

/** Conntrack with a budget of `rate` new connections a second per source, burst `burst`. */
const budgetToml = (rate: number, burst: number) => `
[firewall]
conntrack = { max = 65536, per_source_rate = ${rate}, per_source_burst = ${burst} }
[firewall.filter]
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -o wan0 -j ACCEPT",
] }
`;

Deno.test("per-source budget (IPv4): new flows beyond it are dropped with one counter each; known flows, other sources and the router's own traffic pass", () => {
  const t = triangle();
  const fw = firewallFrom(t.r, budgetToml(100, 200));
  t.h1.ipv4.addAddress(t.h1nic, parseIpv4("192.0.2.11"), 24);
  const got = new Set<number>();
  t.h2.udp.bind(9, (d) => got.add(d.srcPort));
  const h2 = parseIpv4("198.51.100.10"), payload = new Uint8Array(8);
  const send = (srcPort: number, src?: number) => {
    t.h1.udp.send(srcPort, h2, 9, payload, src === undefined ? {} : { src });
    t.clock.advance(0);
  };
  // Resolve ARP first (one flow: 199 tokens left, and 10 ms give one back),
  // then 299 more in the same millisecond.
  send(1000);
  t.clock.advance(10);
  got.clear();
  const w = watch(t.r);
  for (let p = 1001; p < 1300; p++) send(p);
  assert.equal(got.size, 200, "the burst of 200 passed");
  assert.equal(fw.conntrack.stats.sourceBudgetDropped, 99);
  const d = w();
  assert.equal(d["ipv4.firewallDropped"], 99, "each drop is one IP-layer drop");
  assert.equal(
    fw.conntrack.size,
    201,
    "nothing was made for a dropped packet (201: flow 1000 too)",
  );
  assert.equal(fw.conntrack.stats.invalid, 0, "not counted as INVALID too");
  // A flow the table knows is not new: it passes with the budget spent.
  got.clear();
  send(1000);
  assert.ok(got.has(1000));
  // Another address on the LAN has its own budget.
  send(2000, parseIpv4("192.0.2.11"));
  assert.ok(got.has(2000));
  // The router's own new flows are not charged (OUTPUT is not PREROUTING).
  let fromR = 0;
  t.h2.udp.bind(10, () => fromR++);
  for (let p = 3000; p < 3300; p++) t.r.udp.send(p, h2, 10, payload);
  t.clock.advance(0);
  assert.equal(fromR, 300);
  // A second later, 100 more tokens.
  t.clock.advance(1000);
  got.clear();
  for (let p = 4000; p < 4300; p++) send(p);
  assert.equal(got.size, 100);
  assert.equal(fw.conntrack.stats.sourceBudgetDropped, 299);
});

Deno.test("per-source budget (IPv6): one /64 shares one budget", () => {
  const t = hostLab6();
  const fw = firewallFrom(t.r, budgetToml(10, 20));
  t.h1.ipv6.addAddress(t.h1nic, parseIpv6("2001:db8:1::11"), 64);
  t.clock.advance(3000);
  const got = new Set<number>();
  t.h2.udp.bind(9, (d) => got.add(d.srcPort));
  const h2 = parseIpv6(ADDR6.b), payload = new Uint8Array(8);
  const send = (srcPort: number, src?: Uint8Array) => {
    t.h1.udp.send(srcPort, h2, 9, payload, src === undefined ? {} : { src });
    t.clock.advance(0);
  };
  send(1000);
  t.clock.advance(10);
  for (let p = 1001; p < 1020; p++) send(p);
  assert.equal(got.size, 20);
  got.clear();
  send(2000, parseIpv6("2001:db8:1::11"));
  assert.equal(got.size, 0, "the other address of the same /64 is charged to it");
  assert.equal(fw.conntrack6.stats.sourceBudgetDropped, 1);
  assert.equal(fw.conntrack.stats.sourceBudgetDropped, 0, "the IPv4 table is not charged");
});

Deno.test("per-source budget (IPv6): link-local sources are told apart by their interface identifier", () => {
  const t = hostLab6();
  const fw = firewallFrom(t.r, budgetToml(1, 2));
  const to = (src: string, sport: number) =>
    run(fw, t, {
      family: 6,
      src,
      dst: "fe80::1",
      proto: 17,
      sport,
      dport: 547,
      flags: 0,
      icmpType: -1,
      icmpCode: -1,
      path: "in",
    })[0];
  assert.deepEqual([to("fe80::a", 1), to("fe80::a", 2), to("fe80::a", 3)], [true, true, false]);
  assert.ok(to("fe80::b", 1), "another host of the link has its own budget");
  assert.equal(fw.conntrack6.stats.sourceBudgetDropped, 1);
});

Deno.test("per-source budget: per_source_rate = 0 turns it off; a reload changes it, the buckets stay", () => {
  const t = triangle();
  const fw = firewallFrom(t.r, budgetToml(0, 1));
  let got = 0;
  t.h2.udp.bind(9, () => got++);
  const h2 = parseIpv4("198.51.100.10"), payload = new Uint8Array(8);
  t.h1.udp.send(999, h2, 9, payload);
  t.clock.advance(10);
  got = 0;
  for (let p = 1000; p < 21_000; p++) {
    t.h1.udp.send(p, h2, 9, payload);
    if (p % 256 === 0) t.clock.advance(0);
  }
  t.clock.advance(0);
  assert.equal(got, 20_000);
  assert.equal(fw.conntrack.stats.sourceBudgetDropped, 0);
  assert.deepEqual(fw.reconfigure(parseConfig(budgetToml(5, 5)).firewall), []);
  got = 0;
  for (let p = 30_000; p < 30_010; p++) t.h1.udp.send(p, h2, 9, payload);
  t.clock.advance(0);
  assert.equal(got, 5);
  assert.equal(fw.conntrack.stats.sourceBudgetDropped, 5);
});

Deno.test("config: conntrack.per_source_rate and per_source_burst, their defaults and their errors", () => {
  const def = parseConfig("[firewall]\n").firewall.conntrack;
  assert.equal(def.perSourceRate, 5000);
  assert.equal(def.perSourceBurst, 10_000);
  const set = parseConfig("[firewall]\nconntrack = { per_source_rate = 300 }\n").firewall.conntrack;
  assert.deepEqual([set.perSourceRate, set.perSourceBurst], [300, 600]);
  assert.throws(
    () =>
      parseConfig(
        "[firewall]\nconntrack = { per_source_rate = -1, per_source_burst = 0 }\n",
      ),
    (e: Error) =>
      /firewall\.conntrack\.per_source_rate.*out of range/.test(e.message) &&
      /firewall\.conntrack\.per_source_burst.*out of range/.test(e.message),
  );
});
