/**
 * The memory budget of each table at its default limit (issue #16): a
 * router on memory links (tests/topology's routerLab, manual clock) has one
 * table filled to its default limit at a time, and the V8 heap after a full
 * GC is compared with the heap before. Run it with a GC the script can call:
 *
 *     deno run --v8-flags=--expose-gc --allow-read --allow-run bench/memory_budget.ts
 *
 * Tables:
 * - conntrack: 65,536 UDP flows (the default `[firewall] conntrack.max`)
 *   through MASQUERADE, one entry and one NAT binding each;
 * - neighbour queues: 64 packets of 1,000 bytes to each of 200 WAN hosts
 *   that never answer ARP (bounded by 212,992 bytes per entry and 4 MiB per
 *   cache, Linux's unres_qlen_bytes);
 * - neighbour entries: ARP requests from 1,024 sources (the default
 *   maxEntries, Linux's gc_thresh3) on a /16 LAN;
 * - reassembly: IPv4 first fragments of 1,000 bytes that never complete,
 *   until `ipv4.reassembly_memory` (4 MiB) holds them;
 * - the buffer pool: what it holds after all of it (it keeps a floor of 64
 *   free buffers and lets go of the rest every 10 s).
 *
 * It prints one markdown table and the JSON of the figures.
 *
 * @module
 */
import { HEADROOM, PacketBuffer } from "../stack/wire/packet_buffer.ts";
import type { Nic, Stack } from "../stack/mod.ts";
import type { ManualClock } from "../stack/clock.ts";
import { ADDR, routerLab } from "../tests/topology/_topology.ts";
import { buildLab } from "../tests/topology/_lab.ts";
import { arp, ipv4, PROTO, udp } from "../tests/topology/_packets.ts";
import { firewallFrom } from "../tests/stack/firewall/_fw.ts";

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * Bytes in use after full collections: the V8 heap plus memory outside it
 * (ArrayBuffer backing stores: pool buffers and queued copies live there).
 */
function heap(): number {
  if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
  for (let i = 0; i < 3; i++) gc();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

const pkt = new PacketBuffer(HEADROOM + 1600 + 64);

/** Deliver one Ethernet frame (dst = the NIC's MAC, src 02:00:00:00:00:0a) to `nic`. */
function deliver(nic: Nic, etherType: number, payload: Uint8Array, dst = nic.mac): void {
  const f = pkt.data;
  f.set(dst, HEADROOM);
  f.set([0x02, 0, 0, 0, 0, 0x0a], HEADROOM + 6);
  f[HEADROOM + 12] = etherType >> 8;
  f[HEADROOM + 13] = etherType & 0xff;
  f.set(payload, HEADROOM + 14);
  pkt.setFrame(HEADROOM, 14 + payload.length);
  nic.deliverFrame(pkt);
}

/**
 * Run the hubs' queues and forget what they logged and what the raw hosts
 * received (the lab's records, not tapir's).
 */
function flush(
  clock: ManualClock,
  lab: {
    lan: { log: unknown[] };
    wan: { log: unknown[] };
    a?: { received: unknown[] } | null;
    b?: { received: unknown[] } | null;
  },
) {
  clock.advance(0);
  lab.lan.log.length = 0;
  lab.wan.log.length = 0;
  if (lab.a) lab.a.received.length = 0;
  if (lab.b) lab.b.received.length = 0;
}

/** One row of the budget. */
interface Row {
  table: string;
  limit: string;
  entries: number;
  heapBytes: number;
  /** What the stack's own accounting says it holds (bytes), when it keeps one. */
  accounted?: number;
}

function conntrack(): Row {
  const lab = routerLab();
  // One source opens every flow at once: no per-source budget here.
  firewallFrom(
    lab.r,
    `[firewall]\nconntrack = { per_source_rate = 0 }\n` +
      `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
  );
  const n = 65_536;
  const before = heap();
  for (let i = 0; i < n; i++) {
    const sport = 1024 + (i & 0x3fff), dport = 1 + (i >> 14);
    deliver(
      lab.rLan,
      0x0800,
      ipv4({
        src: ADDR.a,
        dst: ADDR.b,
        protocol: PROTO.UDP,
        payload: udp(ADDR.a, ADDR.b, sport, dport, 8),
      }),
    );
    if ((i & 255) === 255) flush(lab.clock, lab);
  }
  flush(lab.clock, lab);
  const after = heap();
  const entries = counter(lab.r, "conntrack.ipv4.inserted");
  return { table: "conntrack + NAT", limit: "65,536 entries", entries, heapBytes: after - before };
}

function neighborQueues(): Row {
  const lab = routerLab();
  const before = heap();
  for (let h = 0; h < 200; h++) {
    const dst = `198.51.100.${20 + h}`;
    for (let k = 0; k < 64; k++) {
      deliver(
        lab.rLan,
        0x0800,
        ipv4({ src: ADDR.a, dst, protocol: PROTO.UDP, payload: udp(ADDR.a, dst, 4000, 9, 1000) }),
      );
    }
    flush(lab.clock, lab);
  }
  const after = heap();
  const held = lab.r.ipv4.nicState(lab.rWan)!.neighbors.entries().reduce((n, e) => n + e.queued, 0);
  return {
    table: "neighbour queues (one cache)",
    limit: "212,992 B per entry, 4 MiB per cache",
    entries: held,
    heapBytes: after - before,
    accounted: held * (14 + 20 + 8 + 1000),
  };
}

function neighborEntries(): Row {
  const l = buildLab({ family: 4, addrs: { ...ADDR, prefixLen: 16 }, raw: true });
  const before = heap();
  const mac = new Uint8Array([0x02, 0, 0, 0, 0, 0]);
  const bcast = new Uint8Array(6).fill(0xff);
  for (let i = 0; i < 1024; i++) {
    mac[4] = i >> 8;
    mac[5] = i & 0xff;
    const src = `192.0.${10 + (i >> 8)}.${1 + (i & 0xff) % 254}`;
    deliver(l.rLan, 0x0806, arp(1, mac, src, new Uint8Array(6), ADDR.rLan), bcast);
    if ((i & 63) === 63) flush(l.clock, l);
  }
  flush(l.clock, l);
  const after = heap();
  return {
    table: "neighbour entries (one cache)",
    limit: "1,024 entries (gc_thresh3)",
    entries: counter(l.r, "neighbors.lan0.arp.entriesCreated"),
    heapBytes: after - before,
  };
}

function reassembly(): Row {
  const lab = routerLab();
  const before = heap();
  for (let i = 0; i < 6000; i++) {
    deliver(
      lab.rLan,
      0x0800,
      ipv4({
        src: ADDR.a,
        dst: ADDR.rLan,
        protocol: PROTO.UDP,
        payload: udp(ADDR.a, ADDR.rLan, 4000, 9, 992),
        mf: true,
        id: i,
      }),
    );
    if ((i & 255) === 255) flush(lab.clock, lab);
  }
  flush(lab.clock, lab);
  const after = heap();
  return {
    table: "IPv4 reassembly",
    limit: "4 MiB (reassembly_memory)",
    entries: counter(lab.r, "reassembly.ipv4.fragmentsReceived") -
      counter(lab.r, "reassembly.ipv4.evictedForMemory") -
      counter(lab.r, "reassembly.ipv4.memoryLimitDropped"),
    heapBytes: after - before,
    accounted: counter(lab.r, "reassembly.ipv4.memoryInUse"),
  };
}

/** A counter of {@link Stack.snapshotStats} by dotted path (0 when absent). */
function counter(s: Stack, path: string): number {
  let x: unknown = s.snapshotStats();
  for (const k of path.split(".")) x = (x as Record<string, unknown> | undefined)?.[k];
  return typeof x === "number" ? x : 0;
}

const TABLES: Record<string, () => Row> = {
  conntrack,
  neighborQueues,
  neighborEntries,
  reassembly,
};

/** Each table in a process of its own, so that no table's garbage is counted in another's. */
async function main(): Promise<void> {
  const only = Deno.args[0];
  if (only !== undefined) {
    console.log(JSON.stringify(TABLES[only]!()));
    return;
  }
  const rows: Row[] = [];
  for (const name of Object.keys(TABLES)) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--v8-flags=--expose-gc", "--allow-read", import.meta.filename!, name],
      stderr: "inherit",
    }).output();
    if (out.code !== 0) throw new Error(`${name} failed`);
    rows.push(JSON.parse(new TextDecoder().decode(out.stdout)));
  }
  const pool = routerLab().r.pool;
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  console.log(
    "| table | default limit | entries held | memory | per entry | the stack's own accounting |\n" +
      "|---|---|---|---|---|---|\n" +
      rows.map((r) =>
        `| ${r.table} | ${r.limit} | ${r.entries} | ${mib(r.heapBytes)} | ${
          r.entries > 0 ? Math.round(r.heapBytes / r.entries) : "—"
        } B | ${r.accounted !== undefined ? mib(r.accounted) : "—"} |`
      ).join("\n") +
      `\n| buffer pool | ${pool.limit} buffers of ${pool.size} B | floor 64 free | ${
        mib(64 * pool.size)
      } idle, ${mib(pool.limit * pool.size)} at the limit | ${pool.size} B | — |`,
  );
  console.log(JSON.stringify(rows));
}

if (import.meta.main) await main();
