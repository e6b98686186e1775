/**
 * End-to-end benchmark of tapir's TCP (root only), every figure beside the
 * Linux kernel's measured in the same run, interleaved round by round:
 *
 *   tapir:   tapir 192.0.2.1 (ns t) ── TAP, offloads on ── 192.0.2.2 kernel peer (ns p)
 *   kernel:  kernel 192.0.2.1 (ns a) ── veth pair ──────── 192.0.2.2 kernel peer (ns b)
 *
 * (and for the loss runs, the routed pair of 3.)
 *
 * The kernel peer runs the same program in both (bench/_tcp_peer.py, on
 * Linux's sockets) and takes the measurement; the other end is tapir
 * (bench/_tcp_tapir.ts: a program on tapir's stack on the TAP, started
 * afresh for each run, so its TAP is made and moved into ns p each time) or
 * the kernel (the same Python program, or for accepts the same Deno
 * program on `Deno.listen`).
 *
 * 1. Bulk throughput between two tapir stacks in one process on a memory
 *    link with offloads (bench/_tcp_mem.ts `bulk`: `--mem-bytes` a → b,
 *    wall-clock Gbit/s, best and median of `--mem-rounds` after a warm-up,
 *    in a fresh process) against kernel ↔ kernel over the veth pair:
 *    `iperf3 -t SECONDS`, a → b (goal ≥ 5 Gbit/s).
 * 2. kernel → tapir and tapir → kernel: `--bytes` in one connection; the
 *    kernel peer's Gbit/s (the sender from connect to the receiver's EOF,
 *    the receiver from accept to EOF), against kernel → kernel and kernel
 *    → kernel the other way over the veth pair (goal ≥ 0.5 each way).
 *    Again with examples/tcp_tool.ts on tapir's side (`--only example`,
 *    when the example exists): the same stack under an application that
 *    generates its stream and hashes every byte with SHA-256.
 * 3. The same with `--loss-bytes` under 1 % random loss each way on a
 *    kernel hop: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM is
 *    not set), and a drop in the sender's own OUTPUT chain or qdisc is
 *    reported back to its TCP as a local drop, not lost on the wire, so
 *    both setups gain a kernel router namespace whose FORWARD chain drops
 *    1 % of the TCP packets either way (`-m statistic --mode random`; a
 *    packet may be a GSO super-frame):
 *
 *      tapir 192.0.2.1 ── TAP ── 192.0.2.254 router 198.51.100.1 ── veth ── 198.51.100.2 peer
 *      kernel 192.0.2.1 ── veth ── 192.0.2.254 router 198.51.100.1 ── veth ── 198.51.100.2 peer
 *
 *    (goal ≥ 0.5).
 * 4. Connections accepted per second: `_tcp_peer.py connrate` in the peer
 *    namespace keeps `--parallel` connections in flight for
 *    `--conn-seconds` (connect; the server accepts and closes; the client
 *    reads the EOF and closes), against tapir's `accept` and the kernel's
 *    (the same Deno program on `Deno.listen`; and a Python accept loop
 *    shown beside it) (goal ≥ 5,000/s). And the memory of `--idle-conns`
 *    idle connections: tapir's JS heap (`_tcp_mem.ts idle`: both ends in one
 *    process, `heapUsed` after gc()) against the kernel's slab memory for
 *    as many loopback connections (`_tcp_peer.py idle`), per connection
 *    (both ends) (goal ≤ 4 KiB).
 *
 * Congestion control: the kernel endpoints run `--cc NAME` (default
 * `cubic`, tapir's own default, RFC 9438), set per socket
 * (TCP_CONGESTION in bench/_tcp_peer.py, `iperf3 -C`) at both ends of
 * kernel ↔ kernel and at the kernel end of kernel ↔ tapir; a namespace
 * takes the host's default otherwise (often `bbr`, which loses far less
 * throughput to random loss than any loss-based control, so (3) would
 * compare CUBIC with BBR). `--cc default` leaves the namespaces' default.
 * The setup checks NAME against `net.ipv4.tcp_available_congestion_control`
 * inside a namespace, and the header line names what the connections
 * actually ran (getsockopt TCP_CONGESTION) beside the namespace default.
 * (The accept rates of (4) and the Deno.listen server are not affected.)
 *
 * It prints a markdown table (best of the rounds, the worst in
 * parentheses, × kernel = best / kernel's best, and the paired per-round
 * median ratio), each round's samples and the JSON; `--out FILE` writes the
 * JSON to FILE.
 *
 *     deno task bench:tcp [--rounds 3] [--bytes 1073741824] [--loss-bytes 268435456]
 *       [--seconds 5] [--conn-seconds 5] [--parallel 32] [--idle-conns 10000]
 *       [--mem-bytes 67108864] [--mem-rounds 5] [--only mem,flow,example,loss,accept,idle]
 *       [--cc cubic|reno|bbr|default] [--cpu-prof DIR] [--out FILE]
 *
 * `--cpu-prof DIR` runs every tapir-side program under `deno run
 * --cpu-prof` (one V8 CPU profile per run in DIR).
 *
 * Namespaces are `tptcp-bench-<pid>-*`, deleted at the end (also on
 * failure, SIGINT or SIGTERM); every process is stopped by PID and every
 * run is bounded (`--timeout` of the programs, the harness's timeouts);
 * all traffic stays between these namespaces on 192.0.2.0/24 and
 * 198.51.100.0/24; the only
 * sysctls set are the client namespaces' `net.ipv4.ip_local_port_range`
 * and the router namespaces' `net.ipv4.ip_forward`.
 *
 * @module
 */
import {
  moveTapToNs,
  type Netns,
  REPO,
  run,
  type Spawned,
  type Topology,
  waitFor,
} from "../tests/e2e/harness.ts";
import {
  benchHeader,
  benchMeta,
  fmt,
  iperfTcpGbps,
  requireRoot,
  type Spread,
  spread,
  veth,
  withBenchTopology,
} from "./_netbench.ts";

const TAPIR_ADDR = "192.0.2.1";
const PEER_ADDR = "192.0.2.2";
/** The loss runs' router (tapir's side, the WAN side) and peer. */
const ROUTER_LAN = "192.0.2.254";
const ROUTER_WAN = "198.51.100.1";
const FAR_PEER = "198.51.100.2";
const PY = "/usr/bin/python3";
const PEER = `${REPO}/bench/_tcp_peer.py`;
const TAPIR_TOOL = `${REPO}/bench/_tcp_tapir.ts`;
const EXAMPLE_TOOL = `${REPO}/examples/tcp_tool.ts`;
const MEM = `${REPO}/bench/_tcp_mem.ts`;
/** What the tapir-side program needs: the TAP (FFI), its config (read), and nothing else. */
const TAPIR_PERMS = ["--allow-ffi", "--allow-read", "--allow-env"];
const PORT = 5001;

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  return {
    rounds: Number(opt("--rounds", "3")),
    bytes: Number(opt("--bytes", String(1 << 30))),
    lossBytes: Number(opt("--loss-bytes", String(256 << 20))),
    lossPct: Number(opt("--loss", "1")),
    seconds: Number(opt("--seconds", "5")),
    connSeconds: Number(opt("--conn-seconds", "5")),
    parallel: Number(opt("--parallel", "32")),
    idleConns: Number(opt("--idle-conns", "10000")),
    memBytes: Number(opt("--mem-bytes", String(64 << 20))),
    memRounds: Number(opt("--mem-rounds", "5")),
    /** Seconds any one transfer may take. */
    timeout: Number(opt("--timeout", "120")),
    /** Run tapir's side under `deno run --cpu-prof`, profiles in this directory. */
    cpuProf: opt("--cpu-prof", ""),
    only: opt("--only", "mem,flow,example,loss,accept,idle").split(","),
    /** The kernel endpoints' congestion control; "default": the namespace's (the host's) default. */
    cc: opt("--cc", "cubic"),
    out: opt("--out", ""),
  };
}

type Opts = ReturnType<typeof parseArgs>;

/** One round's figures; NaN where a run failed (its error is logged). */
interface Round {
  memGbps: number;
  memMedianGbps: number;
  kernelIperfGbps: number;
  toTapirGbps: number;
  fromTapirGbps: number;
  /** The same with examples/tcp_tool.ts on tapir's side (it hashes every byte). */
  exToTapirGbps: number;
  exFromTapirGbps: number;
  kernelToGbps: number;
  kernelFromGbps: number;
  lossToTapirGbps: number;
  lossFromTapirGbps: number;
  lossKernelToGbps: number;
  lossKernelFromGbps: number;
  tapirAcceptsPerS: number;
  kernelAcceptsPerS: number;
  kernelPyAcceptsPerS: number;
  /** Everything the programs printed, for the JSON. */
  raw: Record<string, unknown>;
}

/** Where a run's peer is: the direct pair, or behind the lossy router. */
interface Path {
  /** Where tapir's TAP goes, and its address there. */
  tapNs: Netns;
  tapAddr: string;
  /** The kernel peer: its namespace and address. */
  peer: Netns;
  peerAddr: string;
  /** The kernel pair of the same shape: tapir's role, the peer. */
  a: Netns;
  b: Netns;
}

/** The setups' namespaces and devices. */
interface Bench {
  topo: Topology;
  o: Opts;
  /** tapir's namespace (its TAP is made here, then moved to the path's `tapNs`). */
  t: Netns;
  direct: Path;
  lossy: Path;
  tap: string;
  config: string;
  /** A counter for the go-files of tapir's connect runs. */
  runs: number;
  /** `--cc NAME` for bench/_tcp_peer.py, or nothing (the namespace default). */
  ccArgs: string[];
}

/** A router namespace that forwards and drops `lossPct` % of the TCP packets it forwards. */
async function lossyRouter(ns: Netns, lossPct: number): Promise<void> {
  await ns.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await ns.exec([
    "iptables",
    "-A",
    "FORWARD",
    "-p",
    "tcp",
    "-m",
    "statistic",
    "--mode",
    "random",
    "--probability",
    String(lossPct / 100),
    "-j",
    "DROP",
  ]);
}

/** A namespace's congestion control: its default and what it has (`sysctl` inside `ns`). */
async function congestionControl(ns: Netns): Promise<{ default: string; available: string[] }> {
  const r = await ns.exec([
    "sysctl",
    "-n",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.tcp_available_congestion_control",
  ]);
  const [def = "", avail = ""] = r.stdout.trim().split("\n");
  return { default: def.trim(), available: avail.trim().split(/\s+/) };
}

/** Every `cc` a kernel peer reported in `raw` (what its connections ran), sorted. */
function ccsRun(raw: unknown, seen = new Set<string>()): string[] {
  if (raw !== null && typeof raw === "object") {
    for (const [k, v] of Object.entries(raw)) {
      if (k === "cc" && typeof v === "string") seen.add(v);
      else ccsRun(v, seen);
    }
  }
  return [...seen].sort();
}

async function setUp(topo: Topology, o: Opts): Promise<Bench> {
  const id = String(Deno.pid % 100000);
  const t = await topo.netns("t");
  // The direct pair of the kernel, and tapir's direct peer.
  const p = await topo.netns("p");
  const a = await topo.netns("a");
  const b = await topo.netns("b");
  await veth(a, `tptk${id}a`, [`${TAPIR_ADDR}/24`], b, `tptk${id}b`, [`${PEER_ADDR}/24`]);
  // The lossy paths: tapir's router q and far peer p2; the kernel's a2 ── q2 ── b2.
  const q = await topo.netns("q");
  const p2 = await topo.netns("p2");
  await veth(q, `tptq${id}w`, [`${ROUTER_WAN}/24`], p2, `tptq${id}p`, [`${FAR_PEER}/24`]);
  await p2.ip("route", "add", "192.0.2.0/24", "via", ROUTER_WAN);
  await lossyRouter(q, o.lossPct);
  const a2 = await topo.netns("a2");
  const q2 = await topo.netns("q2");
  const b2 = await topo.netns("b2");
  await veth(a2, `tptr${id}a`, [`${TAPIR_ADDR}/24`], q2, `tptr${id}l`, [`${ROUTER_LAN}/24`]);
  await veth(q2, `tptr${id}w`, [`${ROUTER_WAN}/24`], b2, `tptr${id}b`, [`${FAR_PEER}/24`]);
  await a2.ip("route", "add", "198.51.100.0/24", "via", ROUTER_LAN);
  await b2.ip("route", "add", "192.0.2.0/24", "via", ROUTER_WAN);
  await lossyRouter(q2, o.lossPct);
  const bench: Bench = {
    topo,
    o,
    t,
    direct: { tapNs: p, tapAddr: PEER_ADDR, peer: p, peerAddr: PEER_ADDR, a, b },
    lossy: { tapNs: q, tapAddr: ROUTER_LAN, peer: p2, peerAddr: FAR_PEER, a: a2, b: b2 },
    tap: `tptt${id}`,
    config: `${topo.tempDir()}/tapir.toml`,
    runs: 0,
    ccArgs: o.cc === "default" ? [] : ["--cc", o.cc],
  };
  Deno.writeTextFileSync(
    bench.config,
    `[router]\nhostname = "bench-tcp"\n\n[[interface]]\nname = "eth0"\ntap = "${bench.tap}"\n` +
      `addresses = ["${TAPIR_ADDR}/24"]\n\n[[route]]\nto = "198.51.100.0/24"\nvia = "${ROUTER_LAN}"\n`,
  );
  // Many short connections from one client: the whole port range (this namespace only).
  for (const ns of [p, b]) {
    await ns.exec(["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"]);
  }
  return bench;
}

/** The last line of `out` that parses as a JSON object. */
function lastJson(out: string): Record<string, unknown> | null {
  for (const line of out.trim().split("\n").reverse()) {
    try {
      const j = JSON.parse(line);
      if (j !== null && typeof j === "object") return j;
    } catch { /* not JSON */ }
  }
  return null;
}

/** Wait until `ns` has a TCP listener on `port`. */
function listening(ns: Netns, port: number): Promise<void> {
  return waitFor(`a listener on port ${port} in ${ns.name}`, async () => {
    const r = await ns.exec(["ss", "-Hltn", `sport = :${port}`], { check: false });
    return r.stdout.trim() !== "";
  }, 10_000);
}

/** Wait until `addr` answers a ping from `ns` (neighbours resolved, the stack up). */
function answers(ns: Netns, addr: string): Promise<void> {
  return waitFor(`${addr} to answer from ${ns.name}`, async () => {
    const r = await ns.exec(["ping", "-n", "-c", "1", "-W", "1", addr], {
      check: false,
      timeoutMs: 5000,
    });
    return r.code === 0;
  }, 15_000);
}

/**
 * One run with tapir: start `_tcp_tapir.ts CONFIG ...args` in ns t, move
 * its TAP into the path's namespace (its address there, up), wait until
 * tapir answers the peer's ping, then run `peer`; returns what both
 * printed. With `tapirConnects`, tapir waits for the go-file, made once
 * `peerListens` has the peer's listener up. `stopAfterPeer`: SIGTERM
 * tapir once the peer is done (a server that runs until told).
 */
async function withTapir(
  s: Bench,
  path: Path,
  argv: (go: string) => string[],
  peer: () => Promise<Record<string, unknown> | null>,
  tapirConnects?: { peerListens: () => Spawned },
  stopAfterPeer = false,
): Promise<{ tapir: Record<string, unknown> | null; peer: Record<string, unknown> | null }> {
  const go = `${s.topo.tempDir()}/go-${s.runs++}`;
  const prof = s.o.cpuProf === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${s.o.cpuProf}`];
  const cmd = [Deno.execPath(), "run", ...prof, ...TAPIR_PERMS, ...argv(go)];
  const proc = s.t.spawn(cmd);
  let listener: Spawned | null = null;
  try {
    await waitFor(`TAP ${s.tap} in ${s.t.name}`, () => s.t.hasLink(s.tap), 15_000);
    await moveTapToNs(s.tap, s.t, path.tapNs, { address: `${path.tapAddr}/24` });
    // The peer's listener first: examples/tcp_tool.ts dials after a fixed --wait-ms.
    if (tapirConnects) listener = tapirConnects.peerListens();
    await answers(path.peer, TAPIR_ADDR);
    let peerOut: Record<string, unknown> | null;
    if (listener !== null) {
      await listening(path.peer, PORT);
      Deno.writeTextFileSync(go, "");
      const r = await listener.wait((s.o.timeout + 10) * 1000);
      peerOut = lastJson(r.stdout);
      if (peerOut === null) console.error(`peer: ${r.stdout}${r.stderr}`);
    } else {
      peerOut = await peer();
    }
    if (stopAfterPeer) proc.kill("SIGTERM");
    const r = await proc.wait((s.o.timeout + 10) * 1000);
    const tapirOut = lastJson(r.stdout);
    if (tapirOut === null || r.code !== 0) {
      console.error(`tapir side (${cmd.slice(-8).join(" ")}): ${r.stdout}${r.stderr}`);
    }
    return { tapir: tapirOut, peer: peerOut };
  } finally {
    proc.kill("SIGKILL");
    listener?.kill("SIGKILL");
    await proc.wait(3000).catch(() => {});
  }
}

/** `_tcp_peer.py ARGS` in `ns` to completion: its JSON line (null on failure, logged). */
async function peerRun(
  ns: Netns,
  args: string[],
  timeoutS: number,
): Promise<Record<string, unknown> | null> {
  const r = await ns.exec([PY, PEER, ...args, "--timeout", String(timeoutS)], {
    check: false,
    timeoutMs: (timeoutS + 15) * 1000,
  });
  const j = lastJson(r.stdout);
  if (j === null || r.code !== 0) {
    console.error(`_tcp_peer.py ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  }
  return j;
}

/**
 * A transfer over the path's kernel pair, shaped as tapir's runs: in
 * tapir's role `a` listens and sinks (`aMode` "sink", the peer sends) or
 * `b` listens and sinks while `a` connects and sends ("source"); returns
 * the peer's (b's) JSON line.
 */
async function kernelPair(
  s: Bench,
  path: Path,
  aMode: "sink" | "source",
  bytes: number,
): Promise<Record<string, unknown> | null> {
  const o = s.o;
  const t = String(o.timeout);
  if (aMode === "sink") {
    const srv = path.a.spawn([
      PY,
      PEER,
      "sink",
      "--listen",
      TAPIR_ADDR,
      String(PORT),
      "--timeout",
      t,
      ...s.ccArgs,
    ]);
    try {
      await listening(path.a, PORT);
      const j = await peerRun(path.b, [
        "source",
        "--connect",
        TAPIR_ADDR,
        String(PORT),
        "--bytes",
        String(bytes),
        ...s.ccArgs,
      ], o.timeout);
      await srv.wait((o.timeout + 10) * 1000);
      return j;
    } finally {
      srv.kill("SIGKILL");
    }
  }
  const srv = path.b.spawn([
    PY,
    PEER,
    "sink",
    "--listen",
    path.peerAddr,
    String(PORT),
    "--timeout",
    t,
    ...s.ccArgs,
  ]);
  try {
    await listening(path.b, PORT);
    await peerRun(path.a, [
      "source",
      "--connect",
      path.peerAddr,
      String(PORT),
      "--bytes",
      String(bytes),
      ...s.ccArgs,
    ], o.timeout);
    const r = await srv.wait((o.timeout + 10) * 1000);
    const j = lastJson(r.stdout);
    if (j === null) console.error(`kernel peer sink: ${r.stdout}${r.stderr}`);
    return j;
  } finally {
    srv.kill("SIGKILL");
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const num = (j: Record<string, unknown> | null, k: string) =>
  j !== null && typeof j[k] === "number" ? j[k] as number : NaN;

/** The program on tapir's side: bench/_tcp_tapir.ts, or examples/tcp_tool.ts (it hashes with SHA-256). */
type Tool = "bench" | "example";

/**
 * kernel → tapir (tapir listens and sinks, the peer connects and sends)
 * and tapir → kernel (the peer listens and sinks, tapir connects and sends).
 */
async function tapirFlows(s: Bench, path: Path, bytes: number, tool: Tool = "bench") {
  const o = s.o;
  const t = String(o.timeout);
  const sinkArgv = (): string[] =>
    tool === "bench"
      ? [TAPIR_TOOL, s.config, "sink", "listen", TAPIR_ADDR, String(PORT), "--timeout", t]
      : [EXAMPLE_TOOL, s.config, "listen", String(PORT), "--sink"];
  const sourceArgv = (go: string): string[] =>
    tool === "bench"
      ? [
        TAPIR_TOOL,
        s.config,
        "source",
        "connect",
        path.peerAddr,
        String(PORT),
        String(bytes),
        "--timeout",
        t,
        "--go",
        go,
      ]
      : [
        EXAMPLE_TOOL,
        s.config,
        "connect",
        path.peerAddr,
        String(PORT),
        "--source",
        String(bytes),
        "--wait-ms",
        "3000",
      ];
  const to = await withTapir(
    s,
    path,
    sinkArgv,
    () =>
      peerRun(path.peer, [
        "source",
        "--connect",
        TAPIR_ADDR,
        String(PORT),
        "--bytes",
        String(bytes),
        ...s.ccArgs,
      ], o.timeout),
  );
  const from = await withTapir(
    s,
    path,
    sourceArgv,
    () => Promise.resolve(null),
    {
      peerListens: () =>
        path.peer.spawn([
          PY,
          PEER,
          "sink",
          "--listen",
          path.peerAddr,
          String(PORT),
          "--timeout",
          t,
          ...s.ccArgs,
        ]),
    },
  );
  return { to, from };
}

/** The same two transfers over the path's kernel pair. */
async function kernelFlows(s: Bench, path: Path, bytes: number) {
  const to = await kernelPair(s, path, "sink", bytes);
  const from = await kernelPair(s, path, "source", bytes);
  return { to, from };
}

/** The connection-rate client in `ns` against `addr`; its JSON line. */
function connrate(s: Bench, ns: Netns, addr: string) {
  return peerRun(ns, [
    "connrate",
    "--connect",
    addr,
    String(PORT),
    "--seconds",
    String(s.o.connSeconds),
    "--parallel",
    String(s.o.parallel),
  ], s.o.connSeconds + 30);
}

/** `server` in the direct kernel pair's a, the connection-rate client in b. */
async function kernelAccepts(s: Bench, server: string[]) {
  const { a, b } = s.direct;
  const srv = a.spawn(server);
  try {
    await listening(a, PORT);
    const client = await connrate(s, b, TAPIR_ADDR);
    srv.kill("SIGTERM");
    const r = await srv.wait(10_000);
    return { client, server: lastJson(r.stdout) };
  } finally {
    srv.kill("SIGKILL");
  }
}

/** `_tcp_mem.ts ARGS` in a fresh process: its JSON line. */
async function memRun(args: string[], timeoutS: number): Promise<Record<string, unknown> | null> {
  const r = await run([
    Deno.execPath(),
    "run",
    "--allow-read",
    "--v8-flags=--expose-gc",
    MEM,
    ...args,
  ], { check: false, timeoutMs: timeoutS * 1000 });
  const j = lastJson(r.stdout);
  if (j === null || r.code !== 0) {
    console.error(`_tcp_mem.ts ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  }
  return j;
}

async function measureRound(s: Bench): Promise<Round> {
  const o = s.o;
  const has = (k: string) => o.only.includes(k);
  const raw: Record<string, unknown> = {};
  const r: Round = {
    memGbps: NaN,
    memMedianGbps: NaN,
    kernelIperfGbps: NaN,
    toTapirGbps: NaN,
    fromTapirGbps: NaN,
    exToTapirGbps: NaN,
    exFromTapirGbps: NaN,
    kernelToGbps: NaN,
    kernelFromGbps: NaN,
    lossToTapirGbps: NaN,
    lossFromTapirGbps: NaN,
    lossKernelToGbps: NaN,
    lossKernelFromGbps: NaN,
    tapirAcceptsPerS: NaN,
    kernelAcceptsPerS: NaN,
    kernelPyAcceptsPerS: NaN,
    raw,
  };
  if (has("mem")) {
    const m = await memRun(
      ["bulk", "--bytes", String(o.memBytes), "--rounds", String(o.memRounds)],
      300,
    );
    raw.mem = m;
    r.memGbps = num(m, "bestGbps");
    r.memMedianGbps = num(m, "medianGbps");
    const { a, b } = s.direct;
    const srv = b.spawn(["iperf3", "-s", "-1", "-B", PEER_ADDR]);
    try {
      await listening(b, 5201);
      const cc = o.cc === "default" ? [] : ["-C", o.cc];
      r.kernelIperfGbps = await iperfTcpGbps(a, PEER_ADDR, o.seconds, 1, cc);
      await srv.wait(5000);
    } finally {
      srv.kill("SIGKILL");
    }
  }
  if (has("flow")) {
    const t = await tapirFlows(s, s.direct, o.bytes);
    const k = await kernelFlows(s, s.direct, o.bytes);
    raw.flow = { tapir: t, kernel: k };
    // The peer's figure: the sender's (kernel → X) and the receiver's (X → kernel).
    r.toTapirGbps = num(t.to.peer, "gbps");
    r.fromTapirGbps = num(t.from.peer, "gbps");
    r.kernelToGbps = num(k.to, "gbps");
    r.kernelFromGbps = num(k.from, "gbps");
  }
  if (has("example") && exists(EXAMPLE_TOOL)) {
    const e = await tapirFlows(s, s.direct, o.bytes, "example");
    raw.example = e;
    r.exToTapirGbps = num(e.to.peer, "gbps");
    r.exFromTapirGbps = num(e.from.peer, "gbps");
  }
  if (has("loss")) {
    const t = await tapirFlows(s, s.lossy, o.lossBytes);
    const k = await kernelFlows(s, s.lossy, o.lossBytes);
    raw.loss = { tapir: t, kernel: k };
    r.lossToTapirGbps = num(t.to.peer, "gbps");
    r.lossFromTapirGbps = num(t.from.peer, "gbps");
    r.lossKernelToGbps = num(k.to, "gbps");
    r.lossKernelFromGbps = num(k.from, "gbps");
  }
  if (has("accept")) {
    const t = await withTapir(
      s,
      s.direct,
      () => [
        TAPIR_TOOL,
        s.config,
        "accept",
        TAPIR_ADDR,
        String(PORT),
        "--timeout",
        String(o.timeout),
      ],
      () => connrate(s, s.direct.peer, TAPIR_ADDR),
      undefined,
      true,
    );
    raw.accept = { tapir: t };
    r.tapirAcceptsPerS = num(t.peer, "cps");
    const kd = await kernelAccepts(s, [
      Deno.execPath(),
      "run",
      "--allow-net",
      TAPIR_TOOL,
      "--kernel",
      "accept",
      TAPIR_ADDR,
      String(PORT),
      "--timeout",
      String(o.connSeconds + 30),
    ]);
    const kp = await kernelAccepts(s, [
      PY,
      PEER,
      "accept",
      "--listen",
      TAPIR_ADDR,
      String(PORT),
      "--timeout",
      String(o.connSeconds + 30),
    ]);
    (raw.accept as Record<string, unknown>).kernelDeno = kd;
    (raw.accept as Record<string, unknown>).kernelPython = kp;
    r.kernelAcceptsPerS = num(kd.client, "cps");
    r.kernelPyAcceptsPerS = num(kp.client, "cps");
  }
  return r;
}

/** Heap per idle connection (tapir) and slab per idle connection (kernel), once. */
async function idleMemory(s: Bench) {
  const tapir = await memRun(["idle", "--conns", String(s.o.idleConns)], 300);
  const kernel = await peerRun(s.direct.a, ["idle", "--conns", String(s.o.idleConns)], 120);
  return { tapir, kernel };
}

type Key = Exclude<keyof Round, "raw">;

/** Rows of the table: the tapir figure, the kernel's, the goal. */
const ROWS: {
  name: string;
  tapir: Key;
  kernel: Key;
  unit: string;
  goal: string;
  ok: (t: number, k: number) => boolean;
}[] = [
  {
    name:
      "(1) bulk, two tapir stacks in one process (memory link, offloads) vs kernel ↔ kernel veth (iperf3)",
    tapir: "memGbps",
    kernel: "kernelIperfGbps",
    unit: "Gbit/s",
    goal: "≥ 5 Gbit/s",
    ok: (t) => t >= 5,
  },
  {
    name: "(2) kernel → tapir (TAP, offloads) vs kernel → kernel (veth)",
    tapir: "toTapirGbps",
    kernel: "kernelToGbps",
    unit: "Gbit/s",
    goal: "≥ 0.5 × kernel",
    ok: (t, k) => t / k >= 0.5,
  },
  {
    name: "(2) tapir → kernel (TAP, offloads) vs kernel → kernel (veth)",
    tapir: "fromTapirGbps",
    kernel: "kernelFromGbps",
    unit: "Gbit/s",
    goal: "≥ 0.5 × kernel",
    ok: (t, k) => t / k >= 0.5,
  },
  {
    name: "(2) kernel → tapir with examples/tcp_tool.ts (SHA-256 of every byte)",
    tapir: "exToTapirGbps",
    kernel: "kernelToGbps",
    unit: "Gbit/s",
    goal: "≥ 0.5 × kernel",
    ok: (t, k) => t / k >= 0.5,
  },
  {
    name: "(2) tapir → kernel with examples/tcp_tool.ts (SHA-256 of every byte)",
    tapir: "exFromTapirGbps",
    kernel: "kernelFromGbps",
    unit: "Gbit/s",
    goal: "≥ 0.5 × kernel",
    ok: (t, k) => t / k >= 0.5,
  },
  {
    name: "(3) kernel → tapir, 1 % loss vs kernel → kernel, 1 % loss",
    tapir: "lossToTapirGbps",
    kernel: "lossKernelToGbps",
    unit: "Gbit/s",
    goal: "≥ 0.5 × kernel",
    ok: (t, k) => t / k >= 0.5,
  },
  {
    name: "(3) tapir → kernel, 1 % loss vs kernel → kernel, 1 % loss",
    tapir: "lossFromTapirGbps",
    kernel: "lossKernelFromGbps",
    unit: "Gbit/s",
    goal: "≥ 0.5 × kernel",
    ok: (t, k) => t / k >= 0.5,
  },
  {
    name: "(4) connections accepted/s from a kernel client: tapir vs kernel (Deno.listen)",
    tapir: "tapirAcceptsPerS",
    kernel: "kernelAcceptsPerS",
    unit: "conn/s",
    goal: "≥ 5,000/s",
    ok: (t) => t >= 5000,
  },
  {
    name: "(4) the same: tapir vs kernel (Python accept loop)",
    tapir: "tapirAcceptsPerS",
    kernel: "kernelPyAcceptsPerS",
    unit: "conn/s",
    goal: "≥ 5,000/s",
    ok: (t) => t >= 5000,
  },
];

/** Paired ratios tapir / kernel of the same round: median [min–max]. */
function paired(rounds: Round[], t: Key, k: Key): string {
  const rs = rounds.map((x) => x[t] / x[k]).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (rs.length === 0) return "—";
  const h = rs.length >> 1;
  const median = rs.length % 2 === 1 ? rs[h]! : (rs[h - 1]! + rs[h]!) / 2;
  return `${fmt(median)} [${fmt(rs[0]!)}–${fmt(rs[rs.length - 1]!)}]`;
}

function table(rounds: Round[], idle: Awaited<ReturnType<typeof idleMemory>> | null): string {
  const cell = (sp: Spread, d: number) =>
    sp.samples.length > 1 ? `${fmt(sp.best, d)} (${fmt(sp.worst, d)})` : fmt(sp.best, d);
  const lines = [
    `Best of ${rounds.length} round(s), worst in parentheses; × kernel = best / kernel's best; ` +
    "paired = tapir / kernel within each round, median [min–max].",
    "",
    "| figure | unit | tapir | kernel | × kernel | paired | goal | met |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const row of ROWS) {
    const t = spread(rounds.map((x) => x[row.tapir]));
    const k = spread(rounds.map((x) => x[row.kernel]));
    const d = row.unit === "conn/s" ? 0 : 2;
    const ok = Number.isFinite(t.best) && row.ok(t.best, k.best);
    lines.push(
      `| ${row.name} | ${row.unit} | ${cell(t, d)} | ${cell(k, d)} | ${fmt(t.best / k.best)} | ${
        paired(rounds, row.tapir, row.kernel)
      } | ${row.goal} | ${Number.isFinite(t.best) ? (ok ? "met" : "NOT met") : "—"} |`,
    );
  }
  const med = spread(rounds.map((x) => x.memMedianGbps));
  if (Number.isFinite(med.best)) {
    lines.push(
      "",
      `(1) median of each round's in-process runs: ${cell(med, 2)} Gbit/s.`,
    );
  }
  if (idle !== null) {
    const t = num(idle.tapir, "bytesPerConnection");
    const k = num(idle.kernel, "bytesPerConnection");
    lines.push(
      "",
      `(4) memory per idle connection, ${num(idle.tapir, "conns")} connections, both ends: ` +
        `tapir ${fmt(t, 0)} B of JS heap (${fmt(num(idle.tapir, "bytesPerEnd"), 0)} B per end), ` +
        `kernel ${fmt(k, 0)} B of slab; × kernel ${fmt(t / k)}; goal ≤ 4096 B: ${
          t <= 4096 ? "met" : "NOT met"
        }.`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  requireRoot("e2e_tcp_bench");
  for (const tool of ["ip", "ss", "ping", "iperf3", "iptables", PY]) {
    const r = await run(["sh", "-c", `command -v ${tool}`], { check: false });
    if (r.code !== 0) {
      console.error(`e2e_tcp_bench needs ${tool}`);
      Deno.exit(1);
    }
  }
  const rounds: Round[] = [];
  let idle: Awaited<ReturnType<typeof idleMemory>> | null = null;
  let nsCc: Awaited<ReturnType<typeof congestionControl>> | null = null;
  const loadStart = Deno.loadavg();
  await withBenchTopology("tptcp-bench", async (topo) => {
    const s = await setUp(topo, o);
    nsCc = await congestionControl(s.direct.a);
    if (o.cc !== "default" && !nsCc.available.includes(o.cc)) {
      throw new Error(
        `--cc ${o.cc}: not in the namespace's net.ipv4.tcp_available_congestion_control ` +
          `(${nsCc.available.join(" ")}); --cc default runs ${nsCc.default}`,
      );
    }
    for (let i = 0; i < o.rounds; i++) {
      const t0 = performance.now();
      const r = await measureRound(s);
      rounds.push(r);
      const { raw: _, ...figures } = r;
      console.error(
        `round ${i + 1} (${((performance.now() - t0) / 1000).toFixed(1)} s): ${
          JSON.stringify(figures)
        }`,
      );
    }
    if (o.only.includes("idle")) idle = await idleMemory(s);
  });
  const meta = {
    ...(await benchMeta(loadStart)),
    rounds: o.rounds,
    bytes: o.bytes,
    lossBytes: o.lossBytes,
    lossPct: o.lossPct,
    iperfSeconds: o.seconds,
    connSeconds: o.connSeconds,
    parallel: o.parallel,
    idleConns: o.idleConns,
    memBytes: o.memBytes,
    memRounds: o.memRounds,
    cc: o.cc,
    ccRun: ccsRun(rounds.map((r) => r.raw)),
    ccNamespaceDefault: (nsCc as { default: string } | null)?.default ?? "",
  };
  const ccRun = meta.ccRun.length > 0 ? meta.ccRun.join("+") : "?";
  console.log(
    benchHeader(
      meta,
      `${o.bytes} B per transfer (${o.lossBytes} B under ${o.lossPct} % loss); ` +
        `in-process ${o.memBytes} B × ${o.memRounds}; kernel congestion control ${ccRun} ` +
        (o.cc === "default"
          ? `(the namespace default)`
          : `(per socket, --cc ${o.cc}; namespace default ${meta.ccNamespaceDefault})`) +
        `, tapir cubic\n`,
    ),
  );
  console.log(table(rounds, idle) + "\n");
  const json = JSON.stringify({ meta, rounds, idle }, null, 2);
  console.log(json);
  if (o.out) Deno.writeTextFileSync(o.out, json + "\n");
}

if (import.meta.main) await main();
