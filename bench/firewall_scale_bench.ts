/**
 * The firewall at scale: UDP forwarding through a router on memory links
 * (h1 → r → h2, IPv4 and IPv6) with 0, 1k, 10k and 100k rules of
 * addresses, ports and interfaces (both families) in front of the
 * ESTABLISHED rule; one `-m set` rule over a set of 10 and of 1M
 * addresses; and the time to load (parse, validate) and compile 100k
 * rules. The flow matches none of the rules, so each packet pays for
 * finding that out — one index lookup per field with the compiled chains,
 * where the linear walk tested every rule.
 *
 * `deno bench -A bench/firewall_scale_bench.ts` (under the e2e lock, as
 * every benchmark on the shared machines)
 *
 * @module
 */
import { parseConfig } from "../config/mod.ts";
import { Firewall } from "../stack/firewall/mod.ts";
import { parseIpv4, parseIpv6 } from "../stack/wire/mod.ts";
import { ping } from "../stack/mod.ts";
import type { Stack } from "../stack/mod.ts";
import { settle, triangle } from "../tests/topology/_topology.ts";
import { hostLab6 } from "../tests/topology/_topology6.ts";
import { scaleRules } from "./_firewall_rules.ts";

/** `[firewall]` TOML: `rules` in front of the ESTABLISHED rule and the LAN → WAN rule. */
function toml(rules: string[], sets = ""): string {
  const all = [
    ...rules,
    "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    "-i lan0 -o wan0 -j ACCEPT",
  ];
  return `${sets}
[firewall.filter]
forward = { policy = "drop", rules = [
${all.map((r) => JSON.stringify(r)).join(",\n")}
] }
`;
}

/** A flow h1 → h2 of 64-byte UDP datagrams through r; `send(n)` forwards n of them. */
async function flow4(config: string | null, linear = false) {
  const t = triangle();
  if (config !== null) {
    const fw = new Firewall(t.r, parseConfig(config).firewall, { linear });
    fw.install();
    t.r.firewall = fw;
  }
  await settle(t.clock, ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 1 }, () => {}));
  return udpFlow(t.h1, t.h2, parseIpv4("198.51.100.10"), t.clock);
}

async function flow6(config: string | null, linear = false) {
  const t = hostLab6();
  if (config !== null) {
    const fw = new Firewall(t.r, parseConfig(config).firewall, { linear });
    fw.install();
    t.r.firewall = fw;
  }
  const dst = parseIpv6("2001:db8:2::10");
  await settle(t.clock, ping(t.h1, { dst, count: 1 }, () => {}));
  return udpFlow(t.h1, t.h2, dst, t.clock);
}

function udpFlow(
  h1: Stack,
  h2: Stack,
  dst: number | Uint8Array,
  clock: { advance(ms: number): void },
) {
  let received = 0;
  h2.udp.bind(9, () => received++);
  const sock = h1.udp.bind(40000, () => {});
  const payload = new Uint8Array(64);
  const send = (n: number) => {
    for (let i = 0; i < n; i++) sock.send(dst, 9, payload);
    clock.advance(0);
  };
  send(4);
  if (received !== 4) throw new Error(`setup broken: ${received} of 4 delivered`);
  return { send, received: () => received };
}

const SIZES = [0, 1000, 10_000, 100_000];
const rulesOf = new Map(SIZES.map((n) => [n, scaleRules(n)]));

// Load and compile 100k rules, before anything else holds memory (as a
// tapir starting up): parse and validate the TOML, compile both families'
// tables, then reload the same text (parse, compile, carry counters).
{
  const text = toml(rulesOf.get(100_000)!);
  const runs: number[][] = [];
  let summary = "";
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    const cfg = parseConfig(text);
    const t1 = performance.now();
    const fw = new Firewall(triangle().r, cfg.firewall);
    const t2 = performance.now();
    fw.reconfigure(parseConfig(text).firewall);
    const t3 = performance.now();
    runs.push([t1 - t0, t2 - t1, t2 - t0, t3 - t2]);
    const s = fw.filter.builtins.get("forward")!.index!.summary;
    summary = `IPv4 chain ${s.rules} rules: ${s.bySource} by source, ${s.byDestination} by ` +
      `destination, ${s.byPort} by port, ${s.byInterface} by interface, ${s.always} always`;
  }
  const ms = (i: number) => runs.map((r) => `${r[i]!.toFixed(0)}`).join(" / ");
  console.log(
    `100k rules (3 runs): parse+validate ${ms(0)} ms, compile ${ms(1)} ms, ` +
      `load total ${ms(2)} ms, reload ${ms(3)} ms; ${summary}`,
  );
}

type Flow = Awaited<ReturnType<typeof udpFlow>>;

/**
 * Packets per second of each flow, measured in interleaved rounds (so
 * machine load and garbage collection fall on all of them alike): the
 * median of `rounds` rounds of `iters` × 64 packets.
 */
function measure(flows: Map<string, Flow>, rounds: number, iters: (name: string) => number) {
  const pps = new Map<string, number[]>([...flows.keys()].map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, f] of flows) {
      const n = iters(name);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f.send(64);
      pps.get(name)!.push((n * 64) / ((performance.now() - t0) / 1000));
    }
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
  return new Map([...pps].map(([k, v]) => [k, median(v)]));
}

function table(title: string, pps: Map<string, number>, base: string): void {
  const b = pps.get(base)!;
  console.log(`\n${title}\n| flow | packets/s | × ${base} |\n| --- | ---: | ---: |`);
  for (const [k, v] of pps) {
    console.log(`| ${k} | ${Math.round(v).toLocaleString("en")} | ${(v / b).toFixed(2)} |`);
  }
}

for (const [fam, make] of [["IPv4", flow4], ["IPv6", flow6]] as const) {
  const flows = new Map<number, Flow>();
  for (const n of SIZES) flows.set(n, await make(toml(rulesOf.get(n)!)));
  const named = new Map([...flows].map(([n, f]) => [`${n} rules`, f]));
  // The linear walk (every rule tested, as before compiled chains) for comparison.
  for (const n of [1000, 10_000]) {
    named.set(`${n} rules, linear walk`, await make(toml(rulesOf.get(n)!), true));
  }
  table(
    `${fam} forwarding, UDP 64 B, rules in front of ESTABLISHED (median of 15 interleaved rounds)`,
    measure(named, 15, (k) => k.includes("linear") ? (k.startsWith("10000") ? 2 : 20) : 100),
    "0 rules",
  );
  for (const n of SIZES) {
    const f = flows.get(n)!;
    Deno.bench(
      `forward ${fam} UDP, ${n} rules before ESTABLISHED (64 packets)`,
      { group: `rules ${fam}`, baseline: n === 0 },
      () => f.send(64),
    );
  }
}

/** A hash:ip set of `n` addresses (none of them the flow's) matched by one rule. */
function setConfig(): string {
  return toml(
    ["-m set --match-set big src -j DROP"],
    `[firewall.sets.big]\ntype = "hash:ip"\nfamily = 4\nmax_entries = 2000000\n`,
  );
}

async function setFlow(n: number) {
  const t = triangle();
  const fw = new Firewall(t.r, parseConfig(setConfig()).firewall);
  const set = fw.sets.get("big")!;
  for (let i = 0; i < n; i++) {
    set.add({ address: { family: 4, address: (0x0a000000 + i * 3) >>> 0, prefixLen: 32 } });
  }
  fw.install();
  t.r.firewall = fw;
  await settle(t.clock, ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 1 }, () => {}));
  return { fw, ...udpFlow(t.h1, t.h2, parseIpv4("198.51.100.10"), t.clock) };
}

const set10 = await setFlow(10);
const set1m = await setFlow(1_000_000);
table(
  "IPv4 forwarding, one -m set rule in front of ESTABLISHED (median of 15 interleaved rounds)",
  measure(new Map([["set of 10", set10], ["set of 1M", set1m]]), 15, () => 100),
  "set of 10",
);
Deno.bench("forward IPv4 UDP, -m set over 10 addresses (64 packets)", {
  group: "set",
  baseline: true,
}, () => set10.send(64));
Deno.bench(
  "forward IPv4 UDP, -m set over 1M addresses (64 packets)",
  { group: "set" },
  () => set1m.send(64),
);

// The flows above hit one slot of the set again and again (it stays in
// the cache); this is the set lookup itself over 4096 different addresses
// (mostly cache misses for a 1M set), members and not.
const probes = Uint32Array.from(
  { length: 4096 },
  (_, i) => (0x0a000000 + ((i * 2654435761) >>> 0) % 3_000_000) >>> 0,
);
const probe = {
  family: 4 as const,
  pkt: null,
  src: 0,
  dst: 0,
  srcOff: 0,
  dstOff: 0,
  proto: 17,
  hasPorts: true,
  sport: 1,
  dport: 2,
  inNic: null,
  outNic: null,
};
function lookups(fw: Firewall): () => number {
  const set = fw.sets.get("big")!;
  return () => {
    let hits = 0;
    for (let i = 0; i < probes.length; i++) {
      probe.src = probes[i]!;
      if (set.test(probe, 1)) hits++;
    }
    return hits;
  };
}
const look10 = lookups(set10.fw), look1m = lookups(set1m.fw);
{
  const time = (f: () => number) => {
    const t0 = performance.now();
    for (let r = 0; r < 200; r++) f();
    return ((performance.now() - t0) * 1e6) / (200 * probes.length);
  };
  time(look10);
  time(look1m);
  console.log(
    `\nset lookup over 4096 different addresses: set of 10 ${time(look10).toFixed(0)} ns, ` +
      `set of 1M ${time(look1m).toFixed(0)} ns (${look1m()} of 4096 members)`,
  );
}
Deno.bench(
  "hash:ip lookup, set of 10 (4096 addresses)",
  { group: "set lookup", baseline: true },
  () => {
    look10();
  },
);
Deno.bench("hash:ip lookup, set of 1M (4096 addresses)", { group: "set lookup" }, () => {
  look1m();
});
