/**
 * In-process TCP measurements between two tapir stacks on a memory link
 * (tests/stack/transport/_tcp_lab.ts: a 192.0.2.1 ↔ b 192.0.2.2, default
 * TCP settings, a {@link ManualClock}), shared by bench/tcp_bench.ts
 * (`deno bench`) and bench/e2e_tcp_bench.ts, which runs this file as a
 * script in a fresh process and reads the JSON line it prints:
 *
 *     deno run --allow-read --v8-flags=--expose-gc bench/_tcp_mem.ts bulk [--bytes 67108864] [--rounds 5] [--offloads on|off] [--family 4|6]
 *     deno run --allow-read --v8-flags=--expose-gc bench/_tcp_mem.ts idle [--conns 10000]
 *     deno run --allow-read --v8-flags=--expose-gc bench/_tcp_mem.ts accept [--conns 20000] [--parallel 64]
 *
 * - `bulk`: a writes `--bytes` (writes of up to 256 KiB) to b, which reads
 *   them (256 KiB reads) and checks a sample of the bytes; wall-clock Gbit/s of each round
 *   (connect to the reader's EOF), after one unmeasured warm-up round.
 * - `idle`: `--conns` connections a → b, established and accepted (both
 *   ends held as `TapirTcpConn`s, nothing sent); `Deno.memoryUsage()
 *   .heapUsed` after `gc()` before and after, per connection (both ends)
 *   and per end.
 * - `accept`: `--conns` short connections a → b, `--parallel` at a time:
 *   connect, b accepts and closes, a reads the EOF and closes; accepted/s.
 *
 * Time on the manual clock moves only when nothing else can happen (see
 * {@link pump}), so the figures are the stacks' own CPU cost: the link has
 * no delay and the virtual RTT is 0.
 *
 * @module
 */
import { pattern, tcpLab } from "../tests/stack/transport/_tcp_lab.ts";
import type { ManualClock, TapirTcpConn } from "../stack/mod.ts";
import { cpuUsage } from "node:process";

/** What {@link pump} did. */
export interface PumpStats {
  /** `clock.advance(0)` calls: frames or timers were due now. */
  turns: number;
  /** Jumps of the clock to the next timer when nothing else was runnable. */
  idleJumps: number;
}

/**
 * Drive `clock` until `isDone()`: let pending microtasks run (a few
 * `await`s), fire whatever is due now (memory-link deliveries are timers at
 * `now`), and only when nothing is due and a macrotask turn changed nothing
 * either, jump to the next timer (a delayed ACK, an RTO). Faster than
 * tests' `drive`, which advances 1 ms per step whatever is pending.
 *
 * @param clock the lab's clock
 * @param isDone polled after every turn
 * @param maxVirtualMs give up (throw) when virtual time moved this far
 * @returns how many turns and idle jumps it took
 * @throws Error when no timer is left and `isDone()` is still false, or after `maxVirtualMs`
 */
export async function pump(
  clock: ManualClock,
  isDone: () => boolean,
  maxVirtualMs = 600_000,
): Promise<PumpStats> {
  const start = clock.now();
  const st: PumpStats = { turns: 0, idleJumps: 0 };
  while (!isDone()) {
    for (let i = 0; i < 4; i++) await null;
    const next = clock.nextDeadline();
    if (next !== undefined && next <= clock.now()) {
      clock.advance(0);
      st.turns++;
      continue;
    }
    // Nothing due: let every microtask (and promise chain) settle first.
    await new Promise((r) => setTimeout(r, 0));
    if (isDone()) break;
    const due = clock.nextDeadline();
    if (due === undefined) throw new Error("pump: nothing left to run and not done");
    if (due - start > maxVirtualMs) throw new Error(`pump: not done after ${maxVirtualMs} ms`);
    clock.advance(Math.max(0, due - clock.now()));
    if (due > clock.now() - 1e-9 && due > start) st.idleJumps++;
  }
  return st;
}

/** One bulk transfer. */
export interface BulkRun {
  bytes: number;
  seconds: number;
  gbps: number;
  /** CPU seconds (user + system) the process took; bytes per CPU second is robust to a loaded machine. */
  cpuSeconds: number;
  /** Gbit per CPU second. */
  gbpsPerCpu: number;
  /** Virtual ms the transfer took (0 when no timer had to fire). */
  virtualMs: number;
  pump: PumpStats;
  /** Sender's retransmitted segments (no loss on the link: should be 0). */
  retransmits: number;
  /** Segments (super-frames with offloads) the sender sent. */
  segmentsSent: number;
}

const CHUNK = 256 * 1024;

/**
 * One transfer of `bytes` from a to b over a fresh lab.
 *
 * @param bytes how much
 * @param offloads memory link with GSO super-frames and partial checksums
 * @param family 4 (192.0.2.2) or 6 (2001:db8::2)
 * @returns the measurement
 * @throws Error when a byte arrives wrong or the count differs
 */
export async function bulkOnce(
  bytes: number,
  offloads = true,
  family: 4 | 6 = 4,
): Promise<BulkRun> {
  const lab = tcpLab({ offloads });
  const { clock, a, b } = lab;
  try {
    const l = b.listen({ hostname: family === 4 ? "0.0.0.0" : "::", port: 5001 });
    // The stream is one 256 KiB pseudo-random block repeated; the reader
    // checks the first and last byte of every read and every 509th byte
    // against the block at that stream offset (every byte would cost more
    // than the transfer), so a lost, doubled or misplaced range shows.
    const block = pattern(CHUNK);
    let got = 0, bad = -1, readerDone = false, writerDone = false;
    let failure: unknown = null;
    const reader = (async () => {
      const c = await l.accept();
      const buf = new Uint8Array(CHUNK);
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        for (let i = 0; i < n; i += 509) {
          if (buf[i] !== block[(got + i) & (CHUNK - 1)]) bad = got + i;
        }
        if (buf[n - 1] !== block[(got + n - 1) & (CHUNK - 1)]) bad = got + n - 1;
        got += n;
      }
      c.close();
    })().catch((e) => failure = e).finally(() => readerDone = true);
    const t0 = performance.now();
    const c0 = cpuUsage();
    const v0 = clock.now();
    let conn: TapirTcpConn | null = null;
    const writer = (async () => {
      conn = await a.connect({ hostname: family === 4 ? "192.0.2.2" : "2001:db8::2", port: 5001 });
      let sent = 0;
      while (sent < bytes) {
        const at = sent & (CHUNK - 1);
        sent += await conn.write(block.subarray(at, Math.min(CHUNK, at + bytes - sent)));
      }
      await conn.closeWrite();
    })().catch((e) => failure = e).finally(() => writerDone = true);
    const ps = await pump(clock, () => readerDone && writerDone);
    const seconds = (performance.now() - t0) / 1000;
    const cu = cpuUsage(c0);
    const cpuSeconds = (cu.user + cu.system) / 1e6;
    await reader;
    await writer;
    if (failure !== null) throw failure;
    if (bad >= 0) throw new Error(`bulk: byte ${bad} arrived wrong`);
    if (got !== bytes) throw new Error(`bulk: ${got} bytes arrived, ${bytes} sent`);
    const info = (conn as TapirTcpConn | null)!.info();
    (conn as TapirTcpConn | null)!.close();
    l.close();
    return {
      bytes,
      seconds,
      gbps: bytes * 8 / seconds / 1e9,
      cpuSeconds,
      gbpsPerCpu: bytes * 8 / cpuSeconds / 1e9,
      virtualMs: clock.now() - v0,
      pump: ps,
      retransmits: info.retransmits,
      segmentsSent: info.segmentsSent,
    };
  } finally {
    lab.close();
  }
}

/** `gc()` when the process runs with `--v8-flags=--expose-gc`. */
function collect(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return false;
  gc();
  gc();
  return true;
}

/** What {@link idleHeap} measured. */
export interface IdleHeap {
  conns: number;
  heapBefore: number;
  heapAfter: number;
  /** (after − before) / conns: both ends of a connection, with their socket objects. */
  bytesPerConnection: number;
  /** bytesPerConnection / 2. */
  bytesPerEnd: number;
  /** false when gc() was not exposed (the figures then include garbage). */
  gcExposed: boolean;
  /** Established connections counted on a's side at the end. */
  established: number;
}

/**
 * Open `conns` idle connections a → b (batches of 256 connects; b accepts
 * each) and measure the heap they hold.
 *
 * @param conns how many connections
 * @returns heap used before and after (after gc), per connection and per end
 */
export async function idleHeap(conns: number): Promise<IdleHeap> {
  const lab = tcpLab({ offloads: true });
  const { clock, a, b } = lab;
  try {
    const l = b.listen({ port: 5002 });
    const clients: TapirTcpConn[] = [];
    const servers: TapirTcpConn[] = [];
    // Warm every path once (and let lazily made tables exist) before the baseline.
    {
      const w: TapirTcpConn[] = [];
      const p = Promise.all([
        a.connect({ hostname: "192.0.2.2", port: 5002 }).then((c) => w.push(c)),
        l.accept().then((c) => w.push(c)),
      ]);
      await pump(clock, () => w.length === 2);
      await p;
      for (const c of w) c.close();
      await pump(clock, () => clock.nextDeadline() === undefined || true);
    }
    let accepted = 0;
    let acceptLoopDone = false;
    const acceptLoop = (async () => {
      while (accepted < conns) {
        servers.push(await l.accept());
        accepted++;
      }
    })().finally(() => acceptLoopDone = true);
    collect();
    const heapBefore = Deno.memoryUsage().heapUsed;
    for (let i = 0; i < conns; i += 256) {
      const batch: Promise<number>[] = [];
      for (let j = i; j < Math.min(conns, i + 256); j++) {
        batch.push(a.connect({ hostname: "192.0.2.2", port: 5002 }).then((c) => clients.push(c)));
      }
      let settled = false;
      const all = Promise.all(batch).finally(() => settled = true);
      await pump(clock, () => settled);
      await all;
    }
    await pump(clock, () => acceptLoopDone);
    await acceptLoop;
    // Let delayed ACKs and any pending timers of the handshakes run out.
    clock.advance(1000);
    for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 0));
    const gcExposed = collect();
    const heapAfter = Deno.memoryUsage().heapUsed;
    const established = clients.filter((c) => c.info().state === "ESTAB").length;
    const out: IdleHeap = {
      conns,
      heapBefore,
      heapAfter,
      bytesPerConnection: (heapAfter - heapBefore) / conns,
      bytesPerEnd: (heapAfter - heapBefore) / conns / 2,
      gcExposed,
      established,
    };
    // Keep both lists alive until after the measurement.
    if (servers.length !== conns || clients.length !== conns) {
      throw new Error(`idle: ${clients.length} connected, ${servers.length} accepted of ${conns}`);
    }
    for (const c of clients) c.close();
    for (const c of servers) c.close();
    l.close();
    return out;
  } finally {
    lab.close();
  }
}

/** What {@link acceptRate} measured. */
export interface AcceptRun {
  conns: number;
  parallel: number;
  seconds: number;
  acceptsPerSecond: number;
  virtualMs: number;
}

/**
 * `conns` short connections a → b, `parallel` at a time: a connects, b
 * accepts and closes, a reads the EOF and closes.
 *
 * @param conns how many connections in all
 * @param parallel how many a keeps open at once
 * @returns wall-clock accepted connections per second
 */
export async function acceptRate(conns: number, parallel = 64): Promise<AcceptRun> {
  const lab = tcpLab({ offloads: true });
  const { clock, a, b } = lab;
  try {
    const l = b.listen({ port: 5003 });
    let accepted = 0, finished = 0, started = 0;
    let failure: unknown = null;
    const server = (async () => {
      while (accepted < conns) {
        const c = await l.accept();
        accepted++;
        c.close();
      }
    })().catch((e) => failure = e);
    const buf = new Uint8Array(16);
    const one = async (): Promise<void> => {
      while (started < conns) {
        started++;
        const c = await a.connect({ hostname: "192.0.2.2", port: 5003 });
        while ((await c.read(buf)) !== null) { /* until the server's FIN */ }
        c.close();
        finished++;
      }
    };
    const t0 = performance.now();
    const v0 = clock.now();
    const clients = Promise.all(Array.from({ length: parallel }, one)).catch((e) => failure = e);
    await pump(clock, () => failure !== null || (finished >= conns && accepted >= conns));
    const seconds = (performance.now() - t0) / 1000;
    if (failure !== null) throw failure;
    await clients;
    await server;
    l.close();
    return {
      conns,
      parallel,
      seconds,
      acceptsPerSecond: accepted / seconds,
      virtualMs: clock.now() - v0,
    };
  } finally {
    lab.close();
  }
}

function opt(args: string[], name: string, def: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
}

async function main(args: string[]): Promise<void> {
  const mode = args[0];
  if (mode === "bulk") {
    const bytes = Number(opt(args, "--bytes", String(64 << 20)));
    const rounds = Number(opt(args, "--rounds", "5"));
    const offloads = opt(args, "--offloads", "on") === "on";
    const family = Number(opt(args, "--family", "4")) as 4 | 6;
    await bulkOnce(Math.min(bytes, 16 << 20), offloads, family); // warm-up
    const runs: BulkRun[] = [];
    for (let i = 0; i < rounds; i++) runs.push(await bulkOnce(bytes, offloads, family));
    const g = runs.map((r) => r.gbps).sort((x, y) => x - y);
    const gc = runs.map((r) => r.gbpsPerCpu).sort((x, y) => x - y);
    console.log(JSON.stringify({
      mode,
      offloads,
      family,
      bytes,
      bestGbps: g[g.length - 1],
      medianGbps: g[g.length >> 1],
      medianGbpsPerCpu: gc[gc.length >> 1],
      runs,
    }));
  } else if (mode === "idle") {
    console.log(
      JSON.stringify({ mode, ...(await idleHeap(Number(opt(args, "--conns", "10000")))) }),
    );
  } else if (mode === "accept") {
    const conns = Number(opt(args, "--conns", "20000"));
    const parallel = Number(opt(args, "--parallel", "64"));
    await acceptRate(2000, parallel); // warm-up
    console.log(JSON.stringify({ mode, ...(await acceptRate(conns, parallel)) }));
  } else {
    console.error("usage: _tcp_mem.ts bulk|idle|accept [options] (see the module doc)");
    Deno.exit(2);
  }
}

if (import.meta.main) await main(Deno.args);
