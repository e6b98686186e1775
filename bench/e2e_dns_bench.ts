/**
 * End-to-end benchmark of tapir's caching DNS forwarder (`[dns]`, root
 * only): `dnsperf` asks tapir, and dnsmasq doing the same job, for names
 * they hold in their caches, in the same run, interleaved rounds. Both
 * forwarders have the same cache size and the same upstream: one dnsmasq,
 * authoritative for bench.test (`--local=/bench.test/`, a `host-record`
 * with an A and an AAAA record for each of `--names` names, TTL 1 h):
 *
 *   tapir-c 192.0.2.2 ── TAP ── 192.0.2.1 tapir 198.51.100.1 ── TAP ── 198.51.100.53 ┐
 *           2001:db8:53:1::2         2001:db8:53:1::1                                   up (dnsmasq)
 *   dnsmasq-c 192.0.2.2 ── veth ── 192.0.2.1 dnsmasq 198.51.100.129 ── veth ── 198.51.100.153 ┘
 *           2001:db8:53:1::2         2001:db8:53:1::1
 *
 * The clients ask over IPv4 and over IPv6 (`--family 4`, `6` or `both`,
 * the default): the same forwarders, the same cache (filled once), each
 * family measured in the same rounds. The upstream is asked over IPv4.
 *
 * tapir: `[dns] interfaces = ["lan0"], servers = ["198.51.100.53"],
 * cache_size = C`; dnsmasq: `--no-resolv --no-hosts --server=198.51.100.153
 * --cache-size=C --listen-address=192.0.2.1 --listen-address=2001:db8:53:1::1
 * --bind-interfaces`.
 *
 * Before the rounds each forwarder's cache is filled (`dnsperf -n 1`: once
 * through the query file, every query a miss forwarded upstream) and the
 * forwarder warmed up over each family (`dnsperf -l WARM`, unmeasured:
 * tapir's code is optimised by V8 as it runs). Per round, family and
 * forwarder:
 *
 *     dnsperf -s SERVER -d queries.txt -l SECONDS -c CLIENTS -q OUTSTANDING -Q MAXQPS -t TIMEOUT
 *
 * The figure is dnsperf's "Queries per second" (all of them cache hits: the
 * upstream's count of queries answered is read before and after each run
 * and shown); beside it, the share of queries lost, the answers that were
 * not NOERROR, the mean latency, the forwarder process's CPU time per
 * query (user and system, /proc/PID/stat, all its threads; the kernel's
 * work on the client side of a TAP write counts as tapir's system time),
 * and where queries or answers were dropped (the client's socket buffer;
 * tapir: the TAP's queue into tapir, dnsmasq: its socket buffer). It prints a
 * markdown table per family (best of the rounds, the ratio tapir / dnsmasq
 * against the goal ≥ 1.0), each round, and the JSON
 * (with tapir's `show dns` counters and dnsmasq's SIGUSR1 statistics);
 * `--out FILE` writes the JSON to FILE.
 *
 *     deno task bench:dns [--seconds 10] [--rounds 3] [--family 4|6|both] [--clients 10]
 *       [--outstanding 100] [--max-qps 1000000] [--timeout 2] [--names 1000]
 *       [--cache-size 10000] [--warm 3] [--leases N] [--cpu-prof DIR] [--out FILE]
 *
 * `-q OUTSTANDING` bounds dnsperf's queries in flight, so by default the
 * load is closed-loop (the next query leaves when an answer came) and the
 * figure is the forwarder's capacity; `--max-qps R --outstanding 5000`
 * offers a rate instead (open loop: an overloaded forwarder loses queries).
 * `--leases N` (at most 240) also serves DHCPv4 on the LAN with N bound
 * leases that carry hostnames, as a home gateway does: both forwarders
 * answer those names themselves and look at them before their caches.
 *
 * `--cpu-prof DIR` runs tapir under `deno run --cpu-prof` (a V8 CPU profile
 * of the whole run in DIR, written when tapir stops).
 *
 * Namespaces are `tpdns-bench-<pid>-*`, deleted at the end (also on failure,
 * SIGINT or SIGTERM); tapir and the dnsmasqs are stopped by PID; dnsperf is
 * bounded by `-l` / `-n` and a timeout; addresses are 192.0.2.0/24,
 * 198.51.100.0/24 and, in the answers, 203.0.113.0/24 and 2001:db8:53::/64.
 *
 * @module
 */
import {
  moveTapToNs,
  type Netns,
  REPO,
  run,
  type Spawned,
  startTapir,
  type Tapir,
  TAPIR_PERMS,
  type Topology,
  waitFor,
} from "../tests/e2e/harness.ts";
import { hasTool } from "../tests/tools.ts";
import {
  benchHeader,
  benchMeta,
  cpuSeconds,
  fmt,
  requireRoot,
  type Spread,
  spread,
  veth,
  withBenchTopology,
} from "./_netbench.ts";

/** Most `--leases`: the pool 192.0.2.10-192.0.2.249. */
const LEASES_MAX = 240;

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  return {
    seconds: Number(opt("--seconds", "10")),
    rounds: Number(opt("--rounds", "3")),
    clients: Number(opt("--clients", "10")),
    outstanding: Number(opt("--outstanding", "100")),
    maxQps: Number(opt("--max-qps", "1000000")),
    timeout: Number(opt("--timeout", "2")),
    names: Number(opt("--names", "1000")),
    cacheSize: Number(opt("--cache-size", "10000")),
    warm: Number(opt("--warm", "3")),
    leases: Math.min(LEASES_MAX, Number(opt("--leases", "0"))),
    families: (opt("--family", "both") === "both" ? [4, 6] : [Number(opt("--family", "4"))]) as (
      | 4
      | 6
    )[],
    cpuProf: opt("--cpu-prof", ""),
    out: opt("--out", ""),
  };
}

type Options = ReturnType<typeof parseArgs>;
type Who = "tapir" | "dnsmasq";

/** What one dnsperf run reports. */
export interface DnsperfRun {
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  /** Response code → count ("NOERROR": n, "SERVFAIL": m, ...). */
  rcodes: Record<string, number>;
  /** Mean latency, ms. */
  latencyMs: number;
  latencyMaxMs: number;
  runSeconds: number;
  /** Answers the client's kernel dropped because dnsperf's socket buffers were full. */
  clientRcvbufErrors?: number;
  /** Queries lost before the forwarder read them (see {@link Side}). */
  serverInboundDrops?: number;
  /** Queries the upstream answered during the run (0: every answer came from the cache). */
  upstreamAnswered?: number;
  /** What the forwarder says it did during the run (tapir: `show dns`; dnsmasq: SIGUSR1). */
  forwarder?: Record<string, number>;
  /** CPU time the forwarder's process took during the run, µs per completed query. */
  cpuUserUsPerQuery?: number;
  cpuSysUsPerQuery?: number;
}

/** Read dnsperf's "Statistics:" report. */
export function parseDnsperf(out: string): DnsperfRun {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  const qps = num(/^\s*Queries per second:\s+([\d.]+)/m);
  const sent = num(/^\s*Queries sent:\s+(\d+)/m);
  if (!Number.isFinite(qps) || !Number.isFinite(sent)) {
    throw new Error(`dnsperf printed no report:\n${out.slice(-3000)}`);
  }
  const rcodes: Record<string, number> = {};
  const rc = /^\s*Response codes:\s+(.*)$/m.exec(out);
  for (const m of (rc?.[1] ?? "").matchAll(/([A-Z]+|\d+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);
  const lat = /^\s*Average Latency \(s\):\s+([\d.]+) \(min [\d.]+, max ([\d.]+)\)/m.exec(out);
  return {
    qps,
    sent,
    completed: num(/^\s*Queries completed:\s+(\d+)/m),
    lost: num(/^\s*Queries lost:\s+(\d+)/m),
    rcodes,
    latencyMs: lat ? Number(lat[1]) * 1000 : NaN,
    latencyMaxMs: lat ? Number(lat[2]) * 1000 : NaN,
    runSeconds: num(/^\s*Run time \(s\):\s+([\d.]+)/m),
  };
}

const SERVER = "192.0.2.1";
const CLIENT = "192.0.2.2";
const SERVER6 = "2001:db8:53:1::1";
const CLIENT6 = "2001:db8:53:1::2";
/** The forwarder's address a client of `family` asks. */
const serverOf = (family: 4 | 6) => family === 4 ? SERVER : SERVER6;
const TAPIR_WAN = "198.51.100.1";
const UPSTREAM_FOR_TAPIR = "198.51.100.53";
const DNSMASQ_WAN = "198.51.100.129";
const UPSTREAM_FOR_DNSMASQ = "198.51.100.153";
const ZONE = "bench.test";
/** TTL of the upstream's records (`local-ttl`), seconds: nothing expires during a run. */
const TTL = 3600;

/** The lease of DHCP client `i` (`--leases`): address, MAC, hostname. */
function lease(i: number): { address: string; mac: string; hostname: string } {
  return {
    address: `192.0.2.${10 + i}`,
    mac: `02:00:5e:10:00:${(i & 255).toString(16).padStart(2, "0")}`,
    hostname: `client${i}`,
  };
}

/**
 * `--leases N`: both forwarders also serve DHCPv4 on the LAN and start
 * with N bound leases that carry hostnames (each answers those names, as
 * dnsmasq answers its DHCP clients'): tapir from its lease journal, dnsmasq
 * from its lease file. The benchmark's queries are for other names.
 */
function writeLeases(dir: string, n: number): void {
  const expires = Date.now() + 24 * 3600_000;
  const tapir: string[] = [], dnsmasq: string[] = [];
  for (let i = 0; i < n; i++) {
    const l = lease(i);
    tapir.push(JSON.stringify({
      address: l.address,
      mac: l.mac,
      clientId: null,
      hostname: l.hostname,
      expires,
      state: "bound",
    }));
    dnsmasq.push(`${Math.floor(expires / 1000)} ${l.mac} ${l.address} ${l.hostname} *`);
  }
  Deno.writeTextFileSync(`${dir}/tapir.leases`, tapir.map((x) => x + "\n").join(""));
  Deno.writeTextFileSync(`${dir}/dnsmasq.leases`, dnsmasq.map((x) => x + "\n").join(""));
}

/** The name of host `i` of the test zone. */
function hostName(i: number): string {
  return `h${i}.${ZONE}`;
}

/** One forwarder under test: the client namespace and its counters. */
interface Side {
  c: Netns;
  /** Queries lost before the forwarder read them (tapir: TAP queue drops; dnsmasq: socket buffer). */
  inboundDrops: () => Promise<number>;
  /** The forwarder's own counters now. */
  counters: () => Promise<Record<string, number>>;
  /** The forwarder's process (all its threads). */
  pid: number;
}

/** A Udp counter of a namespace (/proc/net/snmp). */
async function udpCounter(ns: Netns, name: string): Promise<number> {
  const r = await ns.exec(["cat", "/proc/net/snmp"], { timeoutMs: 5000 });
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("Udp: "));
  const names = lines[0]!.split(/\s+/), values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf(name)]);
}

/** The tx dropped counter of `dev` in `ns` (`ip -s -j link`). */
async function txDropped(ns: Netns, dev: string): Promise<number> {
  const r = await ns.ip("-s", "-j", "link", "show", "dev", dev);
  return Number(JSON.parse(r.stdout)[0].stats64.tx.dropped);
}

/**
 * dnsmasq's statistics (SIGUSR1 writes them to its log): the counters of
 * the dump after the signal, e.g. `queries forwarded`, `queries answered
 * locally`, `cache insertions`.
 */
async function dnsmasqCounters(p: Spawned, log: string): Promise<Record<string, number>> {
  const read = () => {
    try {
      return Deno.readTextFileSync(log);
    } catch {
      return "";
    }
  };
  const before = read().length;
  p.kill("SIGUSR1");
  let text = "";
  await waitFor("dnsmasq's SIGUSR1 statistics", () => {
    text = read().slice(before);
    return /queries forwarded \d+, queries answered locally \d+/.test(text);
  }, 5000);
  const out: Record<string, number> = {};
  const fa = /queries forwarded (\d+), queries answered locally (\d+)/.exec(text)!;
  out.forwarded = Number(fa[1]);
  out.answeredLocally = Number(fa[2]);
  const ins = /cache size \d+, (\d+)\/(\d+) cache insertions re-used/.exec(text);
  if (ins) {
    out.insertionsReused = Number(ins[1]);
    out.cacheInsertions = Number(ins[2]);
  }
  const auth = /queries for authoritative zones (\d+)/.exec(text);
  if (auth) out.authoritative = Number(auth[1]);
  return out;
}

/** tapir's `show dns --json`: its forwarder's counters. */
async function tapirDns(t: Tapir): Promise<Record<string, number>> {
  const r = await run([
    Deno.execPath(),
    "run",
    ...TAPIR_PERMS,
    `${t.repo}/main.ts`,
    "show",
    "dns",
    "--control",
    t.controlPath,
    "--json",
  ], { timeoutMs: 15_000 });
  const j = JSON.parse(r.stdout) as { cache: { entries: number }; stats: Record<string, number> };
  return { cacheEntries: j.cache.entries, ...j.stats };
}

/** The upstream: dnsmasq authoritative for the test zone on two addresses (one per forwarder). */
async function startUpstream(
  up: Netns,
  dir: string,
  names: number,
): Promise<{ p: Spawned; log: string }> {
  const log = `${dir}/upstream.log`;
  const conf = [
    "no-resolv",
    "no-hosts",
    "port=53",
    `listen-address=${UPSTREAM_FOR_TAPIR}`,
    `listen-address=${UPSTREAM_FOR_DNSMASQ}`,
    "bind-interfaces",
    `local=/${ZONE}/`,
    `local-ttl=${TTL}`,
    `log-facility=${log}`,
    `pid-file=${dir}/upstream.pid`,
  ];
  for (let i = 0; i < names; i++) {
    const lo = (i % 250) + 1;
    conf.push(`host-record=${hostName(i)},203.0.113.${lo},2001:db8:53::${i.toString(16)}`);
  }
  Deno.writeTextFileSync(`${dir}/upstream.conf`, conf.join("\n") + "\n");
  const p = up.spawn(["dnsmasq", "--no-daemon", `--conf-file=${dir}/upstream.conf`]);
  await waitFor("the upstream dnsmasq to start", () => {
    try {
      return Deno.readTextFileSync(log).includes("using only locally-known addresses");
    } catch {
      return false;
    }
  }, 10_000);
  return { p, log };
}

/** tapir on two TAPs: lan0 (to the client namespace), wan0 (to the upstream's). */
async function setUpTapir(
  topo: Topology,
  up: Netns,
  dir: string,
  o: Options,
): Promise<{ side: Side; tapir: Tapir }> {
  const s = await topo.netns("tapir");
  const c = await topo.netns("tapir-c");
  const id = Deno.pid % 100000;
  const lan = `tdnl${id}`, wan = `tdnw${id}`;
  const config = `[router]\nhostname = "bench-dns"\n` +
    `[[interface]]\nname = "lan0"\ntap = "${lan}"\naddresses = ["${SERVER}/24", "${SERVER6}/64"]\n` +
    (o.leases > 0
      ? `[interface.dhcp]\npools = ["192.0.2.10-192.0.2.249"]\nlease_time = "24h"\n` +
        `lease_file = "${dir}/tapir.leases"\n`
      : "") +
    `[[interface]]\nname = "wan0"\ntap = "${wan}"\naddresses = ["${TAPIR_WAN}/25"]\n` +
    `[dns]\ninterfaces = ["lan0"]\nservers = ["${UPSTREAM_FOR_TAPIR}"]\n` +
    `cache_size = ${o.cacheSize}\n`;
  const tapir = o.cpuProf === ""
    ? await startTapir({ ns: s, topo, config, extraArgs: ["--log-level", "warning"] })
    : await startProfiledTapir(topo, s, config, o.cpuProf);
  await moveTapToNs(lan, s, c, { address: [`${CLIENT}/24`, `${CLIENT6}/64`] });
  await moveTapToNs(wan, s, up, { address: `${UPSTREAM_FOR_TAPIR}/25` });
  return {
    side: {
      c,
      inboundDrops: () => txDropped(c, lan),
      counters: () => tapirDns(tapir),
      pid: tapir.pid,
    },
    tapir,
  };
}

/**
 * `deno run --cpu-prof --cpu-prof-dir DIR main.ts run CONFIG` in `ns`, as
 * {@link startTapir} starts it but for the profiler; stopped by SIGTERM
 * (when V8 writes the profile).
 */
async function startProfiledTapir(
  topo: Topology,
  ns: Netns,
  config: string,
  profDir: string,
): Promise<Tapir> {
  const dir = topo.tempDir();
  const configPath = `${dir}/tapir.toml`, controlPath = `${dir}/control.sock`;
  Deno.writeTextFileSync(configPath, config);
  Deno.mkdirSync(profDir, { recursive: true });
  const proc = ns.spawn([
    Deno.execPath(),
    "run",
    "--cpu-prof",
    `--cpu-prof-dir=${profDir}`,
    ...TAPIR_PERMS,
    `${REPO}/main.ts`,
    "run",
    configPath,
    "--control",
    controlPath,
    "--log-level",
    "warning",
  ]);
  const taps = [...config.matchAll(/^\s*tap\s*=\s*"([^"]+)"/gm)].map((m) => m[1]!);
  await waitFor(`TAPs ${taps.join(", ")}`, async () => {
    for (const t of taps) if (!(await ns.hasLink(t))) return false;
    return true;
  }, 15_000);
  return {
    pid: proc.pid,
    configPath,
    controlPath,
    captureDir: undefined,
    repo: REPO,
    async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 15_000) {
      const t0 = performance.now();
      proc.kill(signal);
      const r = await proc.wait(timeoutMs);
      return { code: r.code, signal: r.signal, ms: performance.now() - t0, stderr: r.stderr };
    },
    stats: () => Promise.reject(new Error("no stats of a profiled tapir")),
  };
}

/** dnsmasq as the forwarder, in its own namespace on veths to the client and the upstream. */
async function setUpDnsmasq(
  topo: Topology,
  up: Netns,
  dir: string,
  o: Options,
): Promise<Side> {
  const s = await topo.netns("dnsmasq");
  const c = await topo.netns("dnsmasq-c");
  await veth(s, "dm0", [`${SERVER}/24`, `${SERVER6}/64`], c, "dm1", [
    `${CLIENT}/24`,
    `${CLIENT6}/64`,
  ]);
  await veth(s, "dmw0", [`${DNSMASQ_WAN}/25`], up, "upd0", [`${UPSTREAM_FOR_DNSMASQ}/25`]);
  const log = `${dir}/dnsmasq.log`;
  const p = s.spawn([
    "dnsmasq",
    "--no-daemon",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    `--server=${UPSTREAM_FOR_DNSMASQ}`,
    `--cache-size=${o.cacheSize}`,
    `--listen-address=${SERVER}`,
    `--listen-address=${SERVER6}`,
    "--bind-interfaces",
    `--log-facility=${log}`,
    `--pid-file=${dir}/dnsmasq.pid`,
    ...(o.leases > 0
      ? ["--dhcp-range=192.0.2.10,192.0.2.249,24h", `--dhcp-leasefile=${dir}/dnsmasq.leases`]
      : []),
  ]);
  await waitFor("the forwarding dnsmasq to start", () => {
    try {
      return Deno.readTextFileSync(log).includes(`using nameserver ${UPSTREAM_FOR_DNSMASQ}`);
    } catch {
      return false;
    }
  }, 10_000);
  return {
    c,
    inboundDrops: () => udpCounter(s, "RcvbufErrors"),
    counters: () => dnsmasqCounters(p, log),
    pid: p.pid,
  };
}

/** `dig @SERVER NAME A +short` from the client side, until it answers (at most 20 s). */
async function waitAnswers(
  who: string,
  side: Side,
  name: string,
  want: string,
  server = SERVER,
): Promise<void> {
  let last = "";
  await waitFor(`${who} to answer ${name} at ${server}`, async () => {
    const r = await side.c.exec(
      ["dig", `@${server}`, "+time=1", "+tries=1", "+short", name, "A"],
      { check: false, timeoutMs: 5000 },
    );
    last = r.stdout + r.stderr;
    return r.stdout.trim() === want;
  }, 20_000).catch((e) => {
    throw new Error(`${e instanceof Error ? e.message : e}; dig said: ${last}`);
  });
}

function dnsperfArgs(o: Options, server: string, file: string, bound: string[]): string[] {
  return [
    "dnsperf",
    "-s",
    server,
    "-d",
    file,
    ...bound,
    "-c",
    String(o.clients),
    "-q",
    String(o.outstanding),
    "-Q",
    String(o.maxQps),
    "-t",
    String(o.timeout),
  ];
}

/** One dnsperf run from `side` to `server` with the counters around it. */
async function dnsperf(
  side: Side,
  upstream: () => Promise<Record<string, number>>,
  o: Options,
  server: string,
  file: string,
  bound: string[],
  boundSeconds: number,
): Promise<DnsperfRun> {
  const rcvBefore = await udpCounter(side.c, "RcvbufErrors");
  const inBefore = await side.inboundDrops();
  const upBefore = await upstream();
  const fBefore = await side.counters();
  const cpuBefore = await cpuSeconds(side.pid);
  const r = await side.c.exec(dnsperfArgs(o, server, file, bound), {
    check: false,
    timeoutMs: (boundSeconds + o.timeout + 30) * 1000,
  });
  const cpuAfter = await cpuSeconds(side.pid);
  const run = parseDnsperf(r.stdout + r.stderr);
  const perQuery = (s: number) => 1e6 * s / Math.max(1, run.completed);
  run.cpuUserUsPerQuery = perQuery(cpuAfter.user - cpuBefore.user);
  run.cpuSysUsPerQuery = perQuery(cpuAfter.sys - cpuBefore.sys);
  run.clientRcvbufErrors = (await udpCounter(side.c, "RcvbufErrors")) - rcvBefore;
  run.serverInboundDrops = (await side.inboundDrops()) - inBefore;
  const upAfter = await upstream();
  run.upstreamAnswered = (upAfter.answeredLocally ?? 0) - (upBefore.answeredLocally ?? 0);
  const fAfter = await side.counters();
  run.forwarder = {};
  for (const [k, v] of Object.entries(fAfter)) {
    run.forwarder[k] = k === "cacheEntries" ? v : v - (fBefore[k] ?? 0);
  }
  return run;
}

/** The median of `xs` (NaN when empty). */
function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const nonNoerror = (r: DnsperfRun) =>
  Object.entries(r.rcodes).reduce((n, [k, v]) => k === "NOERROR" ? n : n + v, 0);

/** The samples of one family: each forwarder's rounds. */
type FamilySamples = Record<Who, DnsperfRun[]>;

async function main(): Promise<number> {
  requireRoot("bench/e2e_dns_bench.ts");
  for (const tool of ["dnsperf", "dnsmasq", "dig"]) {
    if (!hasTool(tool)) {
      console.error(`${tool} is missing (apt-get install dnsperf dnsmasq-base bind9-dnsutils)`);
      return Deno.args.includes("--if-root") ? 0 : 1;
    }
  }
  const o = parseArgs(Deno.args);
  const loadStart = Deno.loadavg();
  const samples: Partial<Record<4 | 6, FamilySamples>> = {};
  for (const f of o.families) samples[f] = { tapir: [], dnsmasq: [] };
  const fill: Partial<Record<Who, DnsperfRun>> = {};
  const warm: Partial<Record<string, DnsperfRun>> = {};
  let tapirStats: unknown = null;
  let profile = "";
  await withBenchTopology("tpdns-bench", async (topo) => {
    const dir = topo.tempDir();
    const file = `${dir}/queries.txt`;
    const lines: string[] = [];
    for (let i = 0; i < o.names; i++) lines.push(`${hostName(i)} A`, `${hostName(i)} AAAA`);
    Deno.writeTextFileSync(file, lines.join("\n") + "\n");
    if (o.leases > 0) writeLeases(dir, o.leases);
    const up = await topo.netns("up");
    const t = await setUpTapir(topo, up, dir, o);
    const sides: Record<Who, Side> = {
      tapir: t.side,
      dnsmasq: await setUpDnsmasq(topo, up, dir, o),
    };
    const upstream = await startUpstream(up, dir, o.names);
    const upCounters = () => dnsmasqCounters(upstream.p, upstream.log);
    for (const who of ["tapir", "dnsmasq"] as const) {
      for (const f of o.families) {
        await waitAnswers(who, sides[who], hostName(0), "203.0.113.1", serverOf(f));
      }
      if (o.leases > 0) {
        const l = lease(o.leases - 1);
        await waitAnswers(`${who} (a DHCP client's name)`, sides[who], l.hostname, l.address);
      }
    }
    for (const who of ["tapir", "dnsmasq"] as const) {
      // Once through the file (over the first family): every name a miss, forwarded and cached.
      const first = serverOf(o.families[0]!);
      fill[who] = await dnsperf(sides[who], upCounters, o, first, file, ["-n", "1"], 60);
      console.error(
        `fill ${who}: ${fill[who]!.completed}/${fill[who]!.sent} answered, ` +
          `${fill[who]!.upstreamAnswered} by the upstream, ${fmt(fill[who]!.qps, 0)} queries/s`,
      );
      if (o.warm > 0) {
        for (const f of o.families) {
          const w = await dnsperf(sides[who], upCounters, o, serverOf(f), file, [
            "-l",
            String(o.warm),
          ], o.warm);
          warm[`${who}/ipv${f}`] = w;
          console.error(`warm-up ${who} IPv${f}: ${fmt(w.qps, 0)} queries/s`);
        }
      }
    }
    for (let round = 0; round < o.rounds; round++) {
      // Alternate who goes first: neither always runs on a machine the other just heated.
      const order: Who[] = round % 2 === 0 ? ["tapir", "dnsmasq"] : ["dnsmasq", "tapir"];
      for (const f of o.families) {
        for (const who of order) {
          const bound = ["-l", String(o.seconds)];
          const r = await dnsperf(sides[who], upCounters, o, serverOf(f), file, bound, o.seconds);
          samples[f]![who].push(r);
          console.error(
            `round ${round + 1} IPv${f} ${who}: ${
              fmt(r.qps, 0)
            } queries/s, ${r.lost}/${r.sent} lost, ` +
              `${nonNoerror(r)} not NOERROR, ${r.upstreamAnswered} reached the upstream`,
          );
        }
      }
    }
    if (o.cpuProf === "") tapirStats = await t.tapir.stats();
    const stopped = await t.tapir.stop("SIGTERM", 20_000);
    if (o.cpuProf !== "") {
      profile = [...Deno.readDirSync(o.cpuProf)].map((e) => `${o.cpuProf}/${e.name}`).join(", ");
      console.error(`tapir exited ${stopped.code}; CPU profile: ${profile}`);
    }
  });
  const meta = await benchMeta(loadStart);
  const label: Record<Who, string> = {
    tapir: "tapir `[dns]` (TAP)",
    dnsmasq: "dnsmasq 2.x (veth)",
  };
  try {
    const v = await run(["dnsmasq", "--version"], { timeoutMs: 5000 });
    label.dnsmasq = `dnsmasq ${/version (\S+)/.exec(v.stdout)?.[1] ?? "?"} (veth)`;
  } catch { /* keep the generic label */ }
  console.log(benchHeader(
    meta,
    `dnsperf -l ${o.seconds} -c ${o.clients} -q ${o.outstanding} -Q ${o.maxQps} -t ${o.timeout}, ` +
      `${2 * o.names} names (A and AAAA) cached, cache_size ${o.cacheSize}, ` +
      `${o.leases} DHCP leases with hostnames, ${o.rounds} rounds, ` +
      `IPv${o.families.join(" and IPv")}`,
  ));
  const ratios: Partial<Record<4 | 6, number>> = {};
  const worst = (rs: DnsperfRun[], f: (r: DnsperfRun) => number) => Math.max(...rs.map(f));
  const lostPct = (r: DnsperfRun) => 100 * r.lost / Math.max(1, r.sent);
  for (const f of o.families) {
    const fs = samples[f]!;
    const best: Record<Who, Spread> = {
      tapir: spread(fs.tapir.map((r) => r.qps)),
      dnsmasq: spread(fs.dnsmasq.map((r) => r.qps)),
    };
    const ratio = best.tapir.best / best.dnsmasq.best;
    ratios[f] = ratio;
    console.log("");
    console.log(`IPv${f} (dnsperf -s ${serverOf(f)}):`);
    console.log("");
    console.log(
      "| forwarder | cached queries/s (best, worst) | lost (worst) | answers not NOERROR (worst) | mean latency ms (best) | forwarder CPU µs/query, user + sys (median) | queries that reached the upstream (worst) | answers dropped by the client's socket buffer (worst) | queries dropped before the forwarder read them (worst) |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const who of ["tapir", "dnsmasq"] as const) {
      const rs = fs[who];
      console.log(
        `| ${label[who]} | ${fmt(best[who].best, 0)} (${fmt(best[who].worst, 0)}) | ${
          fmt(worst(rs, lostPct), 3)
        } % | ${worst(rs, nonNoerror)} | ${fmt(Math.min(...rs.map((r) => r.latencyMs)), 3)} | ${
          fmt(median(rs.map((r) => r.cpuUserUsPerQuery ?? NaN)))
        } + ${fmt(median(rs.map((r) => r.cpuSysUsPerQuery ?? NaN)))} | ${
          worst(rs, (r) => r.upstreamAnswered ?? 0)
        } | ${worst(rs, (r) => r.clientRcvbufErrors ?? 0)} | ${
          worst(rs, (r) => r.serverInboundDrops ?? 0)
        } |`,
      );
    }
    console.log(`| tapir / dnsmasq | ${fmt(ratio)} (goal ≥ 1.0) | | | | | | | |`);
    console.log("");
    console.log("| round | tapir queries/s | dnsmasq queries/s | tapir / dnsmasq |");
    console.log("|---|---|---|---|");
    for (let i = 0; i < o.rounds; i++) {
      const a = fs.tapir[i]?.qps ?? NaN, b = fs.dnsmasq[i]?.qps ?? NaN;
      console.log(`| ${i + 1} | ${fmt(a, 0)} | ${fmt(b, 0)} | ${fmt(a / b)} |`);
    }
  }
  const json = { meta, options: o, fill, warm, samples, ratios, tapirStats, profile };
  console.log(JSON.stringify(json));
  if (o.out !== "") Deno.writeTextFileSync(o.out, JSON.stringify(json, null, 2));
  return 0;
}

if (import.meta.main) Deno.exit(await main());
