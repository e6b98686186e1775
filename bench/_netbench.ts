/**
 * Shared helpers of the end-to-end benchmarks (bench/e2e_link_bench.ts,
 * bench/e2e_forward_bench.ts): ping, iperf3 and a bounded 64-byte UDP flood
 * between two namespaces, and statistics over repeated samples.
 *
 * Run as a script it is the flood itself, sending or counting 64-byte UDP
 * datagrams through synchronous FFI calls into libc (`sendmmsg` /
 * `recvmmsg`, 64 datagrams a call), which offers several times the load a
 * single iperf3 UDP stream can (~40k pps on 2 vCPUs). The address picks the
 * family: dotted IPv4 (AF_INET) or IPv6 with colons (AF_INET6):
 *
 *     deno run --allow-ffi bench/_netbench.ts send DST_IP PORT --seconds 5 --count 3000000 [--pps N] [--payload 64]
 *     deno run --allow-ffi bench/_netbench.ts recv BIND_IP PORT --seconds 12 [--idle-ms 1500] [--sink]
 *
 * Both print one JSON line (`{packets, seconds, pps}`) and stop by
 * themselves: the sender after `--count` datagrams or `--seconds`, the
 * receiver `--idle-ms` after the last datagram or at `--seconds` (with
 * `--sink` it only holds the port open, reading nothing, for `--seconds`).
 * Addresses must be the benchmark's own namespaces' (documentation ranges:
 * 192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32).
 *
 * @module
 */
import { type Netns, run, type Topology, withTopology } from "../tests/e2e/harness.ts";
import { parseIpv6 } from "../stack/wire/ip_address.ts";

/** One run of {@link udpFlood}. */
export interface FloodRun {
  /** Offered datagrams/s (sent / send time). */
  sent: number;
  /** Datagrams/s received on the receiver's interface (its rx counter delta / send time). */
  recv: number;
  /** Per cent of the sent datagrams that did not arrive. */
  loss: number;
  /**
   * CPU time (user + system) process `cpuPid` spent per datagram received,
   * µs, over the flood and its drain; NaN without `cpuPid`. Unlike `recv`,
   * it does not depend on how much of the 2 vCPUs the router got beside the
   * sender.
   */
  cpuUsPerPacket: number;
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ; 100 on Linux). */
const USER_HZ = 100;

/**
 * User and system CPU seconds of process `pid` so far (/proc/PID/stat
 * utime, stime), read by `cat`: Deno lets only `--allow-all` read another
 * process's /proc files, and the benches grant `--allow-run`.
 */
export async function cpuSeconds(pid: number): Promise<{ user: number; sys: number }> {
  const s = (await run(["cat", `/proc/${pid}/stat`], { timeoutMs: 5000 })).stdout;
  // The fields after "(comm)": state is field 3, utime 14, stime 15.
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / USER_HZ, sys: Number(f[12]) / USER_HZ };
}

/** {@link cpuSeconds}, user and system together; NaN without a pid or when it is gone. */
function cpuTotal(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Promise.resolve(NaN);
  return cpuSeconds(pid).then((t) => t.user + t.sys, () => NaN);
}

/** Options of {@link udpFlood}. */
export interface FloodOptions {
  /** Destination address (in `receiver`); dotted IPv4 or IPv6. */
  dst: string;
  /** UDP port the receiver holds open. */
  port: number;
  /** Paced rate in datagrams/s; 0 floods unpaced. */
  pps: number;
  /** Longest send time. */
  seconds: number;
  /** Most datagrams sent. */
  count: number;
  /** A process (the router) whose CPU time per datagram to measure. */
  cpuPid?: number;
}

/**
 * One bounded 64-byte UDP flood from `sender` to `opts.dst` in `receiver`,
 * with this file's FFI `sendmmsg` sender. The receiver holds the port open
 * without reading (no port unreachable, no CPU taken from the path under
 * test); what arrived is the rx packet counter delta of `receiverDev`.
 */
export async function udpFlood(
  sender: Netns,
  receiver: Netns,
  receiverDev: string,
  opts: FloodOptions,
): Promise<FloodRun> {
  const deno = Deno.execPath();
  const script = new URL("./_netbench.ts", import.meta.url).pathname;
  const port = String(opts.port);
  const sink = receiver.spawn([
    deno,
    "run",
    "--allow-ffi",
    script,
    "recv",
    opts.dst,
    port,
    "--sink",
    "--seconds",
    String(opts.seconds + 15),
  ]);
  try {
    await sleep(300);
    const before = (await receiver.linkStats(receiverDev)).rx_packets;
    const cpu0 = await cpuTotal(opts.cpuPid);
    const r = await sender.exec([
      deno,
      "run",
      "--allow-ffi",
      script,
      "send",
      opts.dst,
      port,
      "--seconds",
      String(opts.seconds),
      "--count",
      String(opts.count),
      "--pps",
      String(opts.pps),
    ], { timeoutMs: (opts.seconds + 20) * 1000 });
    const sent = JSON.parse(r.stdout.trim().split("\n").pop()!) as FloodResult;
    await sleep(300); // let the queues on the way drain
    const cpu1 = await cpuTotal(opts.cpuPid);
    const after = (await receiver.linkStats(receiverDev)).rx_packets;
    const got = Math.min(after - before, sent.packets);
    return {
      sent: sent.pps,
      recv: got / sent.seconds,
      loss: sent.packets > 0 ? 100 * (1 - got / sent.packets) : NaN,
      cpuUsPerPacket: got > 0 ? ((cpu1 - cpu0) * 1e6) / got : NaN,
    };
  } finally {
    sink.kill("SIGTERM");
    await sink.wait(3000);
  }
}

/** One paced run of a sweep: the rate asked for and what came of it. */
export interface PacedRun {
  rate: number;
  sentPps: number;
  recvPps: number;
  lossPct: number;
}

/**
 * `flood` paced at each of `rates` for `seconds`, in order: what was asked
 * for, offered, received and lost.
 */
export async function pacedSweep(
  flood: (pps: number, seconds: number) => Promise<FloodRun>,
  rates: readonly number[],
  seconds: number,
): Promise<PacedRun[]> {
  const out: PacedRun[] = [];
  for (const rate of rates) {
    const x = await flood(rate, seconds);
    out.push({ rate, sentPps: x.sent, recvPps: x.recv, lossPct: x.loss });
  }
  return out;
}

/**
 * {@link withTopology} for a benchmark: its namespaces are also deleted
 * when SIGINT or SIGTERM ends the run (Ctrl-C, `timeout`), where
 * withTopology's `finally` would not run; the process then exits 130/143.
 */
export async function withBenchTopology(
  prefix: string,
  fn: (topo: Topology) => Promise<void>,
): Promise<void> {
  await withTopology(prefix, async (topo) => {
    const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) => {
      const h = () => {
        console.error(`${sig}: deleting the benchmark's namespaces`);
        topo.cleanup().finally(() => Deno.exit(sig === "SIGINT" ? 130 : 143));
      };
      Deno.addSignalListener(sig, h);
      return [sig, h] as const;
    });
    try {
      await fn(topo);
    } finally {
      for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    }
  });
}

/**
 * The lossless rate of a paced sweep: the received rate of the fastest run
 * that lost < 1 %. The received rate, not the rate asked for: a sender that
 * cannot keep up offers less than it was asked to (0: no run was lossless).
 */
export function losslessPps(paced: readonly PacedRun[]): number {
  let best = 0;
  for (const p of paced) if (p.lossPct < 1 && p.recvPps > best) best = p.recvPps;
  return best;
}

/**
 * The mean RTT of `ping [-6] -c COUNT -i INTERVAL` from `client` to `dst`, in
 * ms: by default 50 pings 10 ms apart; `ping -i 1 -c 5` is what a user's
 * plain `ping` sees (an idle path woken once a second).
 */
export async function pingRttMs(
  client: Netns,
  dst: string,
  count = 50,
  intervalS = 0.01,
): Promise<number> {
  const six = dst.includes(":") ? ["-6"] : [];
  const r = await client.exec(
    ["ping", ...six, "-n", "-c", String(count), "-i", String(intervalS), "-w", "15", dst],
    { check: false, timeoutMs: 20_000 },
  );
  return pingAvgMs(r.stdout);
}

/**
 * Every RTT of `ping [-6] -c COUNT -i INTERVAL` from `client` to `dst`, in
 * ms and in reply order, from ping's per-reply `time=` lines (empty when
 * none came back); with `cpu`, ping runs pinned to that CPU (`taskset -c`).
 */
export async function pingRttSamplesMs(
  client: Netns,
  dst: string,
  count = 100,
  intervalS = 0.01,
  cpu?: number,
): Promise<number[]> {
  const six = dst.includes(":") ? ["-6"] : [];
  const pin = cpu === undefined ? [] : ["taskset", "-c", String(cpu)];
  const r = await client.exec(
    [...pin, "ping", ...six, "-n", "-c", String(count), "-i", String(intervalS), "-w", "15", dst],
    { check: false, timeoutMs: 20_000 },
  );
  return [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const t = [...xs].sort((a, b) => a - b);
  const h = t.length >> 1;
  return t.length % 2 === 1 ? t[h]! : (t[h - 1]! + t[h]!) / 2;
}

/**
 * Median and mean RTT of `ping [-6] -c COUNT -i INTERVAL` from `client` to
 * `dst`, in ms (NaN when no reply came back): the median is not moved by
 * the odd slow reply (a garbage collection pause) that moves the mean.
 */
export async function pingRttStatsMs(
  client: Netns,
  dst: string,
  count = 100,
  intervalS = 0.01,
): Promise<{ median: number; mean: number }> {
  const t = await pingRttSamplesMs(client, dst, count, intervalS);
  if (t.length === 0) return { median: NaN, mean: NaN };
  return { median: median(t), mean: t.reduce((a, b) => a + b, 0) / t.length };
}

/**
 * A veth pair `aDev` (in `a`) ↔ `bDev` (in `b`) with these addresses, both
 * ends up; IPv6 addresses are added `nodad` so they are usable at once.
 */
export async function veth(
  a: Netns,
  aDev: string,
  aAddr: readonly string[],
  b: Netns,
  bDev: string,
  bAddr: readonly string[],
): Promise<void> {
  await run(["ip", "link", "add", aDev, "netns", a.name, "type", "veth", "peer", "name", bDev]
    .concat(["netns", b.name]));
  const nodad = (x: string) => x.includes(":") ? ["nodad"] : [];
  for (const x of aAddr) await a.ip("addr", "add", x, "dev", aDev, ...nodad(x));
  for (const x of bAddr) await b.ip("addr", "add", x, "dev", bDev, ...nodad(x));
  await a.ip("link", "set", aDev, "up");
  await b.ip("link", "set", bDev, "up");
}

/**
 * Resolve neighbours and warm the path up: 3 ordinary pings, then (when
 * `count` > 0) a `ping -f -c COUNT` flood from `client` to `dst`, bounded to
 * 30 s. A freshly started tapir runs its forwarding path in unoptimized
 * code for its first few thousand packets (50–95 µs each at first, under 1
 * µs after ~20 000 on memory links), so measuring without this would time
 * V8's tiering rather than the router. Every setup gets the same warm-up.
 */
export async function warmUp(client: Netns, dst: string, count: number): Promise<void> {
  const six = dst.includes(":") ? ["-6"] : [];
  await client.exec(["ping", ...six, "-n", "-c", "3", "-i", "0.2", "-W", "2", dst], {
    check: false,
    timeoutMs: 10_000,
  });
  if (count <= 0) return;
  await client.exec(["ping", ...six, "-n", "-q", "-f", "-c", String(count), "-w", "30", dst], {
    check: false,
    timeoutMs: 40_000,
  });
}

/**
 * iperf3 TCP from `client` to the server `dst` (already listening), received
 * Gbit/s (NaN on failure); `extra`: more client flags (`-C cubic`).
 */
export async function iperfTcpGbps(
  client: Netns,
  dst: string,
  seconds: number,
  parallel = 1,
  extra: string[] = [],
): Promise<number> {
  const six = dst.includes(":") ? ["-6"] : [];
  const r = await client.exec(
    ["iperf3", ...six, "-c", dst, "-t", String(seconds), "-P", String(parallel), ...extra, "-J"],
    { timeoutMs: (seconds + 25) * 1000, check: false },
  );
  try {
    return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
  } catch {
    console.error(`iperf3 -P ${parallel} to ${dst} failed: ${r.stdout.slice(0, 500)}${r.stderr}`);
    return NaN;
  }
}

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The mean of ping's `rtt min/avg/max/mdev` line, in ms (NaN when absent). */
export function pingAvgMs(out: string): number {
  const m = out.match(/= [\d.]+\/([\d.]+)\//);
  return m ? Number(m[1]) : NaN;
}

/** Best, worst and all samples of one figure. */
export interface Spread {
  best: number;
  worst: number;
  samples: number[];
}

/**
 * Best and worst of `samples` (NaN ignored); "best" is the largest, or the
 * smallest when `lowerIsBetter` (RTT).
 */
export function spread(samples: number[], lowerIsBetter = false): Spread {
  const ok = samples.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { best: NaN, worst: NaN, samples };
  const hi = Math.max(...ok), lo = Math.min(...ok);
  return lowerIsBetter ? { best: lo, worst: hi, samples } : { best: hi, worst: lo, samples };
}

/** `n` with `d` decimals, or "—" when not finite. */
export function fmt(n: number, d = 2): string {
  return Number.isFinite(n) ? n.toFixed(d) : "—";
}

/** A CPU description for a benchmark's header: lscpu's "Model name", else /proc/cpuinfo's. */
export async function cpuModel(): Promise<string> {
  try {
    const out = await new Deno.Command("lscpu", { stdout: "piped", stderr: "null" }).output();
    const m = new TextDecoder().decode(out.stdout).match(/Model name:\s*(.*)/);
    if (m) return m[1]!.trim();
  } catch { /* no lscpu */ }
  try {
    return (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  } catch {
    return "?";
  }
}

/**
 * Exit unless root: a benchmark of namespaces and TAPs needs it. With
 * `--if-root` (as `deno task bench` passes) that is a skip, exit 0.
 */
export function requireRoot(name: string): void {
  if (Deno.uid() === 0) return;
  console.error(`${name} needs root (network namespaces and TAP devices)`);
  Deno.exit(Deno.args.includes("--if-root") ? 0 : 1);
}

/** Where and when a benchmark ran. */
export interface BenchMeta {
  date: string;
  nproc: number;
  cpu: string;
  kernel: string;
  deno: string;
  /** 1-, 5- and 15-minute load averages before and after the run (other work on the machine). */
  loadavg: { start: number[]; end: number[] };
}

/** {@link BenchMeta} now, for a run that started at load `loadStart` (`Deno.loadavg()`). */
export async function benchMeta(loadStart: number[]): Promise<BenchMeta> {
  return {
    date: new Date().toISOString(),
    nproc: navigator.hardwareConcurrency,
    cpu: await cpuModel(),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    loadavg: { start: loadStart, end: Deno.loadavg() },
  };
}

/** The first line of a benchmark's report: machine, versions, load, then `detail`. */
export function benchHeader(m: BenchMeta, detail: string): string {
  return `${m.date}, ${m.nproc} CPUs (${m.cpu}), Linux ${m.kernel}, Deno ${m.deno}, ` +
    `load average ${m.loadavg.start[0]} → ${m.loadavg.end[0]}; ${detail}`;
}

/** What the flood script prints. */
export interface FloodResult {
  /** Datagrams sent (send) or received (recv). */
  packets: number;
  /** Seconds between the first and the last datagram. */
  seconds: number;
  /** packets / seconds. */
  pps: number;
  /** recv only: batches (recvmmsg calls that returned datagrams). */
  batches?: number;
  /** recv only: ms from start to the first and the last datagram. */
  firstMs?: number;
  lastMs?: number;
}

// ---------------------------------------------------------------- the flood

const FLOOD_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_SNDBUF = 7;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const ENOBUFS = 105;
const POLLIN = 1;
/** sizeof(struct mmsghdr) on 64-bit Linux: msghdr (56) + msg_len (4) + padding. */
const MMSGHDR = 64;
const IOVEC = 16;
const BATCH = 64;

function sockaddrIn(ip: string, port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`bad IPv4 address ${ip}`);
  }
  b.set(parts, 4);
  return b;
}

/**
 * struct sockaddr_in6 (28 bytes): family (host order), port (network order),
 * flowinfo 0, the 16-byte address, scope id 0 (global addresses only).
 */
function sockaddrIn6(ip: string, port: number): Uint8Array {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  b.set(parseIpv6(ip), 8);
  return b;
}

/** An mmsghdr array whose message i points to iovec i, which points to buf + i * stride. */
function mmsgVector(buf: Uint8Array<ArrayBuffer>, stride: number, len: number) {
  const msgs = new Uint8Array(MMSGHDR * BATCH);
  const iovs = new Uint8Array(IOVEC * BATCH);
  const mv = new DataView(msgs.buffer), iv = new DataView(iovs.buffer);
  const bufPtr = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf));
  const iovPtr = Deno.UnsafePointer.value(Deno.UnsafePointer.of(iovs));
  for (let i = 0; i < BATCH; i++) {
    iv.setBigUint64(i * IOVEC, BigInt(bufPtr) + BigInt(i * stride), true);
    iv.setBigUint64(i * IOVEC + 8, BigInt(len), true);
    // msg_name NULL, msg_namelen 0 (connected or unbound use), msg_iov, msg_iovlen 1.
    mv.setBigUint64(i * MMSGHDR + 16, BigInt(iovPtr) + BigInt(i * IOVEC), true);
    mv.setBigUint64(i * MMSGHDR + 24, 1n, true);
  }
  return { msgs, iovs };
}

function floodMain(args: string[]): FloodResult {
  const [mode, ip, portS] = args;
  const opt = (name: string, def: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : def;
  };
  if ((mode !== "send" && mode !== "recv") || ip === undefined || portS === undefined) {
    throw new Error("usage: _netbench.ts send|recv IP PORT [--seconds S] [--count N] [--pps R]");
  }
  const lib = Deno.dlopen("libc.so.6", FLOOD_SYMBOLS);
  const sym = lib.symbols;
  const errnoPtr = sym.__errno_location()!;
  const errno = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(errnoPtr, 4));
  const seconds = opt("--seconds", 5);
  const v6 = ip.includes(":");
  const fd = sym.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) throw new Error(`socket: errno ${errno[0]}`);
  const addr = v6 ? sockaddrIn6(ip, Number(portS)) : sockaddrIn(ip, Number(portS));
  const bufSize = new Uint8Array(new Int32Array([4 << 20]).buffer);
  try {
    if (mode === "send") {
      sym.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, bufSize, 4);
      if (sym.connect(fd, addr, addr.length) < 0) throw new Error(`connect: errno ${errno[0]}`);
      const count = opt("--count", 3_000_000);
      const pps = opt("--pps", 0);
      const payload = opt("--payload", 64);
      const buf = new Uint8Array(payload * BATCH);
      for (let i = 0; i < buf.length; i++) buf[i] = i & 0xff;
      const { msgs } = mmsgVector(buf, payload, payload);
      const idle = new Uint8Array(8);
      const t0 = performance.now();
      const until = t0 + seconds * 1000;
      let sent = 0;
      while (sent < count) {
        const now = performance.now();
        if (now > until) break;
        if (pps > 0 && sent > pps * (now - t0) / 1000) {
          // Ahead of the pace: sleep 1 ms (bursts of ≤ 1 ms worth, no busy wait).
          sym.poll(idle, 0n, 1);
          continue;
        }
        const n = Math.min(BATCH, count - sent);
        const r = sym.sendmmsg(fd, msgs, n, 0);
        if (r > 0) sent += r;
        else if (r < 0 && errno[0] !== EAGAIN && errno[0] !== ENOBUFS) {
          throw new Error(`sendmmsg: errno ${errno[0]}`);
        }
      }
      const secs = (performance.now() - t0) / 1000;
      return { packets: sent, seconds: secs, pps: sent / secs };
    }
    sym.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, bufSize, 4);
    if (sym.bind(fd, addr, addr.length) < 0) throw new Error(`bind: errno ${errno[0]}`);
    if (args.includes("--sink")) {
      // Hold the port open (no ICMP port unreachable) without reading: the
      // benchmark counts arrivals on the interface, and a reader would take
      // CPU from the forwarder under test.
      const t = performance.now();
      const pfd0 = new Uint8Array(8);
      while (performance.now() - t < seconds * 1000) sym.poll(pfd0, 0n, 200);
      return { packets: 0, seconds: 0, pps: 0 };
    }
    const idleMs = opt("--idle-ms", 1500);
    const buf = new Uint8Array(2048 * BATCH);
    const { msgs } = mmsgVector(buf, 2048, 2048);
    const pfd = new Uint8Array(8);
    const pv = new DataView(pfd.buffer);
    pv.setInt32(0, fd, true);
    pv.setInt16(4, POLLIN, true);
    const tStart = performance.now();
    let first = 0, last = 0, got = 0, batches = 0;
    for (;;) {
      const r = sym.recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, null);
      const now = performance.now();
      if (r > 0) {
        if (got === 0) first = now;
        got += r;
        batches++;
        last = now;
        if (now - tStart > seconds * 1000) break;
        continue;
      }
      if (now - tStart > seconds * 1000) break;
      if (got > 0 && now - last > idleMs) break;
      sym.poll(pfd, 1n, 100);
    }
    const secs = got > 1 ? (last - first) / 1000 : 0;
    return {
      packets: got,
      seconds: secs,
      pps: secs > 0 ? got / secs : 0,
      batches,
      firstMs: first - tStart,
      lastMs: last - tStart,
    };
  } finally {
    sym.close(fd);
    lib.close();
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(floodMain(Deno.args)));
}
