/**
 * Routing table benchmark: a full-size IPv4 table (1M prefixes, lengths
 * distributed like a BGP table) and IPv6 table (300k prefixes, mostly /48
 * under /32 allocations), load time, lookups per second and memory.
 *
 * `deno bench bench/route_table_bench.ts` runs the `Deno.bench` cases;
 * `deno run --v8-flags=--expose-gc bench/route_table_bench.ts` prints the
 * plain report only (with exact heap numbers when `gc` is exposed).
 *
 * @module
 */

import {
  flowHashV4,
  type Ipv4Route,
  Ipv4RouteTable,
  type Ipv6Route,
  Ipv6RouteTable,
} from "../stack/route_table.ts";
import { SeededRandom } from "../stack/random.ts";

const V4_ROUTES = 1_000_000;
const V6_ROUTES = 300_000;
const QUERIES = 1 << 20;

const rnd = new SeededRandom(2024);

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function mem(): { heap: number; rss: number } {
  gc();
  const m = Deno.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

/** Pick a value from [value, weight] pairs. */
function weighted(table: readonly (readonly [number, number])[]): () => number {
  const total = table.reduce((s, [, w]) => s + w, 0);
  return () => {
    let x = rnd.float() * total;
    for (const [v, w] of table) {
      x -= w;
      if (x < 0) return v;
    }
    return table[table.length - 1]![0];
  };
}

// Roughly the length mix of today's IPv4 BGP table (CIDR report): mostly /24.
const v4Len = weighted([
  [24, 58],
  [23, 10],
  [22, 11],
  [21, 5],
  [20, 5],
  [19, 3],
  [18, 1.5],
  [17, 1],
  [16, 3],
  [15, 0.5],
  [14, 0.5],
  [13, 0.4],
  [12, 0.3],
  [11, 0.2],
  [10, 0.1],
  [9, 0.05],
  [8, 0.05],
]);

// IPv6: /32 allocations, and mostly /48 more-specifics under them.
const v6Len = weighted([
  [48, 50],
  [32, 14],
  [44, 7],
  [40, 6],
  [36, 3],
  [46, 3],
  [47, 2],
  [29, 2],
  [56, 4],
  [64, 4],
  [33, 1],
  [34, 1],
  [38, 1],
  [42, 1],
  [60, 1],
]);

function maskV4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

// ---------------------------------------------------------------- IPv4

const before4 = mem();
const v4 = new Ipv4RouteTable();
const v4Start = performance.now();
let v4Tries = 0;
while (v4.size < V4_ROUTES && v4Tries < 2 * V4_ROUTES) {
  v4Tries++;
  const len = v4Len();
  // Unicast space 1.0.0.0 to 223.255.255.255.
  const a = ((1 + (rnd.uint32() % 223)) << 24 | (rnd.uint32() & 0xffffff)) >>> 0;
  const nh = rnd.uint32() & 15;
  const r: Ipv4Route = {
    prefix: (a & maskV4(len)) >>> 0,
    prefixLen: len,
    type: "unicast",
    nicId: 1 + (nh & 3),
    gateway: 0xc6336400 + nh,
    metric: 0,
    source: "static",
  };
  if (v4.find(r.prefix, len).length === 0) v4.add(r);
}
v4.add({
  prefix: 0,
  prefixLen: 0,
  type: "unicast",
  nicId: 1,
  gateway: 0xc6336401,
  metric: 0,
  source: "static",
});
const v4LoadMs = performance.now() - v4Start;
const after4 = mem();

const dst4 = new Uint32Array(QUERIES);
for (let i = 0; i < QUERIES; i++) dst4[i] = rnd.uint32();
const hash4 = new Uint32Array(QUERIES);
for (let i = 0; i < QUERIES; i++) hash4[i] = flowHashV4(rnd.uint32(), dst4[i]!, 6, 1234, 80);

function lookupsV4(n: number, working = QUERIES): number {
  let sum = 0;
  const m = working - 1;
  for (let i = 0; i < n; i++) {
    const r = v4.lookup(dst4[i & m]!, hash4[i & m]!);
    if (r !== null) sum += r.nicId;
  }
  return sum;
}

// ---------------------------------------------------------------- IPv6

const before6 = mem();
const v6 = new Ipv6RouteTable();
const allocs: Uint8Array[] = [];
for (let i = 0; i < 40_000; i++) {
  const p = new Uint8Array(16);
  const hi = 0x2001 + (rnd.uint32() % 0x0c00); // 2001:: to 2c00::, where the RIRs allocate
  p[0] = hi >>> 8;
  p[1] = hi & 255;
  p[2] = rnd.uint32() & 255;
  p[3] = rnd.uint32() & 255;
  allocs.push(p);
}
const v6Start = performance.now();
let v6Tries = 0;
const scratch = new Uint8Array(16);
while (v6.size < V6_ROUTES && v6Tries < 2 * V6_ROUTES) {
  v6Tries++;
  const len = v6Len();
  const base = allocs[rnd.uint32() % allocs.length]!;
  scratch.set(base);
  for (let i = 3; i < 8; i++) scratch[i] = rnd.uint32() & 255;
  if (len < 32) scratch[3] = 0; // a few shorter aggregates
  const nh = rnd.uint32() & 15;
  const gw = new Uint8Array(16);
  gw[0] = 0xfe;
  gw[1] = 0x80;
  gw[15] = nh;
  const r: Ipv6Route = {
    prefix: scratch,
    prefixLen: len,
    type: "unicast",
    nicId: 1 + (nh & 3),
    gateway: gw,
    metric: 1024,
    source: "static",
  };
  if (v6.find(scratch, len).length === 0) v6.add(r);
}
const v6LoadMs = performance.now() - v6Start;
const after6 = mem();

// Half the destinations fall under stored allocations, half anywhere in 2000::/3.
const dst6 = new Uint8Array(QUERIES * 16);
for (let i = 0; i < QUERIES; i++) {
  const o = i * 16;
  for (let j = 0; j < 16; j++) dst6[o + j] = rnd.uint32() & 255;
  if ((i & 1) === 0) dst6.set(allocs[rnd.uint32() % allocs.length]!.subarray(0, 4), o);
  else dst6[o] = 0x20 | (dst6[o]! & 0x1f);
}

function lookupsV6(n: number, working = QUERIES): number {
  let sum = 0;
  const m = working - 1;
  for (let i = 0; i < n; i++) {
    const r = v6.lookup(dst6, (i & m) * 16, i);
    if (r !== null) sum += r.nicId;
  }
  return sum;
}

// ---------------------------------------------------------------- report

function rate(fn: (n: number) => number, n: number): number {
  fn(n); // warm up
  const t0 = performance.now();
  fn(n);
  return n / ((performance.now() - t0) / 1000);
}

function churn(): number {
  // Withdraw and re-announce 10k /24s while the table is full.
  const saved = v4.routes().filter((r) => r.prefixLen === 24).slice(0, 10_000);
  const t1 = performance.now();
  for (const r of saved) v4.remove(r.prefix, r.prefixLen);
  for (const r of saved) v4.add(r);
  return (2 * saved.length) / ((performance.now() - t1) / 1000);
}

const r4 = rate(lookupsV4, 10_000_000);
const r6 = rate(lookupsV6, 10_000_000);
// Real traffic repeats destinations: 256 of them stay in cache and TLB.
const r4hot = rate((n) => lookupsV4(n, 256), 10_000_000);
const r6hot = rate((n) => lookupsV6(n, 256), 10_000_000);
const updates = churn();
const hitRate4 = (() => {
  let hit = 0;
  for (let i = 0; i < 100_000; i++) if (v4.lookup(dst4[i]!)!.prefixLen > 0) hit++;
  return hit / 100_000;
})();

console.log(`route table report (${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno})
  ipv4: ${v4.size} routes (${v4.prefixCount} prefixes) loaded in ${v4LoadMs.toFixed(0)} ms (${
  (v4.size / v4LoadMs * 1000 / 1e6).toFixed(2)
} M routes/s)
        trie ${mb(v4.trieBytes)} in ${v4.trieChunks} child tables; heap +${
  mb(after4.heap - before4.heap)
}, rss +${mb(after4.rss - before4.rss)}
        lookup ${(r4 / 1e6).toFixed(1)} M/s (${(1e9 / r4).toFixed(1)} ns each, random dst, ${
  (hitRate4 * 100).toFixed(0)
}% more specific than default)
        lookup ${(r4hot / 1e6).toFixed(1)} M/s (${
  (1e9 / r4hot).toFixed(1)
} ns each) over a working set of 256 destinations
        churn: ${(updates / 1e3).toFixed(0)} k updates/s (remove + re-add /24s in a full table)
  ipv6: ${v6.size} routes (${v6.prefixCount} prefixes) loaded in ${v6LoadMs.toFixed(0)} ms (${
  (v6.size / v6LoadMs * 1000 / 1e6).toFixed(2)
} M routes/s)
        trie ${mb(v6.trieBytes)} in ${v6.trieChunks} child tables; heap +${
  mb(after6.heap - before6.heap)
}, rss +${mb(after6.rss - before6.rss)}
        lookup ${(r6 / 1e6).toFixed(1)} M/s (${(1e9 / r6).toFixed(1)} ns each, random dst)
        lookup ${(r6hot / 1e6).toFixed(1)} M/s (${
  (1e9 / r6hot).toFixed(1)
} ns each) over a working set of 256 destinations
  heap numbers are ${
  typeof (globalThis as { gc?: unknown }).gc === "function"
    ? "after gc"
    : "without gc (approximate)"
}`);

Deno.bench({
  name: "Ipv4RouteTable.lookup x1024 (1M routes, 1024 cached destinations)",
  fn: () => {
    lookupsV4(1024);
  },
});
Deno.bench({
  name: "Ipv6RouteTable.lookup x1024 (300k routes, 1024 cached destinations)",
  fn: () => {
    lookupsV6(1024);
  },
});
Deno.bench({
  name: "flowHashV4 x1024",
  fn: () => {
    let h = 0;
    for (let i = 0; i < 1024; i++) h ^= flowHashV4(dst4[i]!, i, 6, 1000, 80);
    if (h === 0.5) console.log(h);
  },
});
