/**
 * The flood table (issue #16, root only): the same bounded floods against
 * tapir as a router and against a Linux kernel router namespace, in the
 * same topology and the same run, with pings through the router during each
 * flood and tapir's memory before, at its peak and after.
 *
 *   h1 br0 (192.0.2.2/24, 2001:db8:1::2/64) ─┬─ router lan ── router wan ─┬─ h2 br0 (198.51.100.2/24, 2001:db8:2::2/64)
 *   attacker al (192.0.2.3, 2001:db8:1::3) ──┘                            └── attacker aw
 *
 * h1 and h2 each hold a bridge joining the router's link (tapir's TAP, or
 * the kernel router's veth) and a veth of the attacker namespace, so the
 * flood comes from another neighbour on the measured host's own link, as
 * on a LAN. Each router gets its own four namespaces; tapir's wan0 has
 * `accept_ra = true` (the kernel's wan veth `accept_ra = 2`) for the RA
 * flood, and before the new-flow flood both get `-o wan -j MASQUERADE`
 * (tapir by `tapir reload`, the kernel by iptables), so no earlier flood
 * pays for conntrack.
 *
 * The floods, each bounded by `--seconds` (default 15) and `--count`
 * packets (default 6,000,000; the attacker's tx counter is watched and the
 * generator killed by PID at the cap):
 *
 * | key | what | generator |
 * |---|---|---|
 * | arp-random | ARP requests for the router from random MACs and addresses of the /24 | bench/_floodgen.py (scapy) |
 * | arp-gratuitous | gratuitous ARP for random addresses of the /24 | _floodgen.py |
 * | ns-random | neighbour solicitations from random sources | thc-ipv6 `flood_solicitate6` |
 * | na-flood | unsolicited neighbour advertisements | thc-ipv6 `flood_advertise6` |
 * | frag4 | IPv4 first fragments that never complete, random IDs | _floodgen.py |
 * | frag6 | IPv6 first fragments that never complete, random IDs | _floodgen.py |
 * | udp-unresolved | UDP to random hosts of the WAN /24 that never answer ARP | _floodgen.py |
 * | ra-flood | RAs with ~25 prefixes and routes each, on the WAN | thc-ipv6 `flood_router26` |
 * | nat-flows | UDP with random ports through MASQUERADE: a new flow each | _floodgen.py |
 *
 * Per flood and router: `ping -i 0.05` h1 → h2 (the flood's family) for
 * the flood (from 1 s after it starts until 1 s before its time is up, or
 * until the count cap ends it: then ping gets SIGINT): loss and RTT (avg,
 * max); tapir's RSS (VmRSS, sampled every 100 ms) just
 * before, the peak during and after, and `--after` seconds (default 10;
 * the issue asks for 30) after the flood; the tapir counters that moved
 * (all in the JSON lines, the top 8 in the table). After the RA flood
 * radvd starts on h2 (intervals 3–4 s) and the time until the router lists
 * it as a default router is measured (goal: within two intervals), with
 * the RAs that reached tapir meanwhile.
 *
 *     deno task bench:floods [--seconds 15] [--count 6000000] [--pps 0] [--after 10] [--only arp-random,...] [--warmup 20000] [--out FILE]
 *                            [--routers tapir,kernel] [--perf DIR]
 *
 * `--routers tapir` measures tapir alone (the table then has no kernel
 * column to hold it to: for quick before/after runs of one fix). `--perf
 * DIR` runs tapir with `--perf-basic-prof` (V8 writes /tmp/perf-PID.map)
 * and records it with `perf record -g` during each flood, into
 * `DIR/<flood>.data` with text reports beside it: the hottest symbols
 * (`DIR/<flood>.txt`) and their callers (`DIR/<flood>.graph.txt`): where
 * tapir's time goes under each flood; and tapir's memory map at the
 * "after" point (`DIR/<flood>.smaps`): where the memory that stayed is.
 *
 * Every namespace is `tpfl-bench-<pid>-*`, deleted at the end (also on
 * failure, SIGINT or SIGTERM); every address is in a documentation range;
 * every generator is bounded in count and time and killed by PID.
 *
 * @module
 */
import {
  bridge,
  enslave,
  moveTapToNs,
  type Netns,
  REPO,
  run,
  spawn,
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
  fmt,
  median,
  requireRoot,
  sleep,
  warmUp,
  withBenchTopology,
} from "./_netbench.ts";

/** Addresses on the two links (documentation ranges). */
const NET = {
  4: { h1: "192.0.2.2", r1: "192.0.2.1", a: "192.0.2.3", r2: "198.51.100.1", h2: "198.51.100.2" },
  6: {
    h1: "2001:db8:1::2",
    r1: "2001:db8:1::1",
    a: "2001:db8:1::3",
    r2: "2001:db8:2::1",
    h2: "2001:db8:2::2",
  },
} as const;

type Family = 4 | 6;

/** One flood of the table. */
interface FloodDef {
  key: string;
  label: string;
  /** The family pinged through the router during it. */
  family: Family;
  /** The attacker's interface it is sent from. */
  side: "lan" | "wan";
  /** The generator, shown in the table. */
  tool: string;
  /** The command run in the attacker namespace. */
  cmd(s: Setup, o: Opts): string[];
  /** Needs MASQUERADE on the routers first. */
  nat?: boolean;
  /** Measure afterwards how long a real router's RAs take to be learned. */
  raLearn?: boolean;
}

const GEN = `${REPO}/bench/_floodgen.py`;

/** `_floodgen.py MODE` from the attacker's LAN veth to the router's LAN MAC. */
function gen(mode: string, extra: string[]) {
  return (s: Setup, o: Opts) => [
    "/usr/bin/python3",
    GEN,
    mode,
    s.aLan,
    s.routerLanMac,
    "--seconds",
    String(o.seconds),
    "--count",
    String(o.count),
    "--pps",
    String(o.pps),
    ...extra,
  ];
}

const FLOODS: FloodDef[] = [
  {
    key: "arp-random",
    label: "ARP requests, random sources",
    family: 4,
    side: "lan",
    tool: "scapy",
    cmd: gen("arp-random", ["--net", "192.0.2.0/24", "--target", NET[4].r1]),
  },
  {
    key: "arp-gratuitous",
    label: "gratuitous ARP, random addresses",
    family: 4,
    side: "lan",
    tool: "scapy",
    cmd: gen("arp-gratuitous", ["--net", "192.0.2.0/24"]),
  },
  {
    key: "ns-random",
    label: "NS, random sources",
    family: 6,
    side: "lan",
    tool: "flood_solicitate6",
    cmd: (s) => ["atk6-flood_solicitate6", s.aLan, NET[6].r1],
  },
  {
    key: "na-flood",
    label: "unsolicited NA",
    family: 6,
    side: "lan",
    tool: "flood_advertise6",
    cmd: (s) => ["atk6-flood_advertise6", s.aLan],
  },
  {
    key: "frag4",
    label: "IPv4 incomplete fragments",
    family: 4,
    side: "lan",
    tool: "scapy",
    cmd: gen("frag4", ["--src", NET[4].a, "--dst", NET[4].r1]),
  },
  {
    key: "frag6",
    label: "IPv6 incomplete fragments",
    family: 6,
    side: "lan",
    tool: "scapy",
    cmd: gen("frag6", ["--src", NET[6].a, "--dst", NET[6].r1]),
  },
  {
    key: "udp-unresolved",
    label: "UDP to an unresolvable /24",
    family: 4,
    side: "lan",
    tool: "scapy",
    cmd: gen("udp-unresolved", ["--src", NET[4].a, "--net", "198.51.100.0/24"]),
  },
  {
    key: "ra-flood",
    label: "RA flood (WAN, accept_ra)",
    family: 6,
    side: "wan",
    tool: "flood_router26",
    cmd: (s) => ["atk6-flood_router26", s.aWan],
    raLearn: true,
  },
  {
    key: "nat-flows",
    label: "new UDP flows through MASQUERADE",
    family: 4,
    side: "lan",
    tool: "scapy",
    cmd: gen("udp-flows", ["--src", NET[4].a, "--dst", NET[4].h2]),
    nat: true,
  },
];

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  const only = opt("--only", FLOODS.map((f) => f.key).join(",")).split(",");
  for (const k of only) {
    if (!FLOODS.some((f) => f.key === k)) throw new Error(`--only: no flood ${k}`);
  }
  return {
    /** Longest flood, in seconds. */
    seconds: Number(opt("--seconds", "15")),
    /** Most packets of one flood (the attacker's tx counter). */
    count: Number(opt("--count", "6000000")),
    /** Paced rate of the scapy floods (0: as fast as the generator goes). */
    pps: Number(opt("--pps", "0")),
    /** Seconds after a flood before tapir's RSS is read as "after". */
    after: Number(opt("--after", "10")),
    /** Flood pings per router and family before the first flood. */
    warmup: Number(opt("--warmup", "20000")),
    /** Interval of the pings through the router. */
    pingInterval: 0.05,
    floods: FLOODS.filter((f) => only.includes(f.key)),
    out: opt("--out", ""),
    /** Which routers run: tapir, the kernel, or both (default). */
    routers: opt("--routers", "tapir,kernel").split(","),
    /** Directory for a `perf record` of tapir per flood ("" : none). */
    perf: opt("--perf", ""),
  };
}

type Opts = ReturnType<typeof parseArgs>;

/** A router under test with its hosts and its attacker. */
interface Setup {
  key: "tapir" | "kernel";
  label: string;
  r: Netns;
  h1: Netns;
  h2: Netns;
  a: Netns;
  /** The attacker's veths into h1's and h2's bridges. */
  aLan: string;
  aWan: string;
  /** The router's MAC on the LAN (the scapy floods' destination). */
  routerLanMac: string;
  /** The kernel router's WAN veth (for its RA check). */
  rWan: string;
  tapir?: Tapir;
}

function tapirConfig(lanTap: string, wanTap: string, nat: boolean): string {
  return `
[router]
hostname = "floods"
forwarding = true

[[interface]]
name = "lan0"
tap = "${lanTap}"
addresses = ["${NET[4].r1}/24", "${NET[6].r1}/64"]

[[interface]]
name = "wan0"
tap = "${wanTap}"
accept_ra = true
addresses = ["${NET[4].r2}/24", "${NET[6].r2}/64"]
${nat ? '\n[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n' : ""}`;
}

/** `tapir ARGS --control SOCK` of a running tapir (show, reload). */
async function tapirCli(tapir: Tapir, args: string[]): Promise<string> {
  const r = await run([
    Deno.execPath(),
    "run",
    ...TAPIR_PERMS,
    `${tapir.repo}/main.ts`,
    ...args,
    "--control",
    tapir.controlPath,
  ], { timeoutMs: 15_000 });
  return r.stdout;
}

/** h1, h2 and the attacker around a router namespace whose LAN and WAN devices are in h1 and h2. */
async function hostsAndAttacker(
  topo: Topology,
  tag: string,
  r: Netns,
): Promise<{ h1: Netns; h2: Netns; a: Netns; aLan: string; aWan: string }> {
  const id = String(Deno.pid % 100000);
  const h1 = await topo.netns(`${tag}h1`);
  const h2 = await topo.netns(`${tag}h2`);
  const a = await topo.netns(`${tag}a`);
  // The hosts neither learn from the RA flood nor solicit routers; h2
  // forwards so that radvd runs there for the RA check.
  for (const h of [h1, h2]) {
    await h.exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    await h.exec(["sysctl", "-qw", "net.ipv6.conf.default.accept_ra=0"]);
  }
  await bridge(h1, [`${NET[4].h1}/24`, `${NET[6].h1}/64`]);
  await bridge(h2, [`${NET[4].h2}/24`, `${NET[6].h2}/64`]);
  // h2's kernel enters the source of every RA it receives in its ND table,
  // accept_ra off or not (ndisc_router_discovery). After flood_router26
  // that table is at its gc_thresh3 (1,024 entries) and h2 at times cannot
  // make an entry it needs: radvd's first RAs after the flood were
  // discarded (h2's Ip6OutNoRoutes +2, the RA check 11.6–12.1 s). h2 is
  // the router radvd runs on and takes no RAs: its firewall drops them
  // before they make entries, so the RA check times the router under
  // test, not h2.
  await h2.exec([
    "ip6tables",
    "-w",
    "-A",
    "INPUT",
    "-p",
    "ipv6-icmp",
    "--icmpv6-type",
    "router-advertisement",
    "-j",
    "DROP",
  ]);
  const aLan = `tpfl${tag}${id}al`, aWan = `tpfl${tag}${id}aw`;
  for (
    const [h, dev, peer] of [[h1, aLan, `tpfl${tag}${id}pl`], [
      h2,
      aWan,
      `tpfl${tag}${id}pw`,
    ]] as const
  ) {
    await run(["ip", "link", "add", dev, "netns", a.name, "type", "veth", "peer", "name", peer]
      .concat(["netns", h.name]));
    await enslave(h, peer);
    await a.ip("link", "set", dev, "up");
  }
  await a.ip("addr", "add", `${NET[4].a}/24`, "dev", aLan);
  await a.ip("addr", "add", `${NET[6].a}/64`, "dev", aLan, "nodad");
  await a.ip("route", "add", "default", "via", NET[4].r1);
  await h1.ip("route", "add", "default", "via", NET[4].r1);
  await h1.ip("-6", "route", "add", "default", "via", NET[6].r1);
  await h2.ip("route", "add", "default", "via", NET[4].r2);
  await h2.ip("-6", "route", "add", "default", "via", NET[6].r2);
  void r;
  return { h1, h2, a, aLan, aWan };
}

async function tapirSetup(topo: Topology, o: Opts): Promise<Setup> {
  const id = String(Deno.pid % 100000);
  const lanTap = `tpfl${id}l`, wanTap = `tpfl${id}w`;
  const r = await topo.netns("tr");
  // V8 writes /tmp/perf-PID.map, so that perf names tapir's JIT code.
  if (o.perf) Deno.env.set("DENO_V8_FLAGS", "--perf-basic-prof");
  const tapir = await startTapir({
    config: tapirConfig(lanTap, wanTap, false),
    ns: r,
    topo,
    extraArgs: ["--log-level", "error"],
  }).finally(() => Deno.env.delete("DENO_V8_FLAGS"));
  const x = await hostsAndAttacker(topo, "t", r);
  await moveTapToNs(lanTap, r, x.h1, { up: false });
  await moveTapToNs(wanTap, r, x.h2, { up: false });
  await enslave(x.h1, lanTap);
  await enslave(x.h2, wanTap);
  return { key: "tapir", label: "tapir", r, ...x, routerLanMac: "", rWan: "", tapir };
}

async function kernelSetup(topo: Topology): Promise<Setup> {
  const id = String(Deno.pid % 100000);
  const r = await topo.netns("kr");
  // Before the veths exist, so that they are created forwarding.
  await r.exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
  await r.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  const x = await hostsAndAttacker(topo, "k", r);
  const rLan = `tpflk${id}rl`, rWan = `tpflk${id}rw`;
  for (
    const [h, dev, peer, addrs] of [
      [x.h1, rLan, `tpflk${id}hl`, [`${NET[4].r1}/24`, `${NET[6].r1}/64`]],
      [x.h2, rWan, `tpflk${id}hw`, [`${NET[4].r2}/24`, `${NET[6].r2}/64`]],
    ] as const
  ) {
    await run(["ip", "link", "add", dev, "netns", r.name, "type", "veth", "peer", "name", peer]
      .concat(["netns", h.name]));
    for (const a of addrs) {
      await r.ip("addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : []));
    }
    await r.ip("link", "set", dev, "up");
    await enslave(h, peer);
  }
  // A forwarding interface learns from RAs only with accept_ra = 2 (as tapir's wan0 accept_ra).
  await r.exec(["sysctl", "-qw", `net.ipv6.conf.${rWan}.accept_ra=2`]);
  return { key: "kernel", label: "Linux kernel", r, ...x, routerLanMac: "", rWan };
}

/** Wait (≤ 15 s) until no IPv6 address is tentative in any namespace of `s`, nor in tapir. */
async function waitDad(s: Setup): Promise<void> {
  if (s.tapir !== undefined) {
    const tapir = s.tapir;
    await waitFor("tapir's IPv6 addresses to pass DAD", async () => {
      const a = JSON.parse(await tapirCli(tapir, ["show", "addresses", "--json"])) as Record<
        string,
        { ipv6?: string[] }
      >;
      const all = Object.values(a).flatMap((n) => n.ipv6 ?? []);
      return all.length > 0 && all.every((x) => !x.includes("tentative"));
    }, 15_000);
  }
  for (const ns of [s.r, s.h1, s.h2, s.a]) {
    await waitFor(`IPv6 DAD in ${ns.name}`, async () => {
      const r = await ns.exec(["ip", "-6", "addr", "show", "tentative"], { check: false });
      return r.code === 0 && r.stdout.trim() === "";
    }, 15_000);
  }
}

/** The router's LAN MAC as the attacker resolves it (one ping, then its neighbour table). */
async function resolveRouterMac(s: Setup): Promise<string> {
  await s.a.exec(["ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", NET[4].r1], { check: false });
  const r = await s.a.exec(["ip", "-j", "neigh", "show", NET[4].r1, "dev", s.aLan]);
  const mac = (JSON.parse(r.stdout) as { lladdr?: string }[])[0]?.lladdr;
  if (mac === undefined) throw new Error(`${s.label}: the attacker did not resolve ${NET[4].r1}`);
  return mac;
}

/**
 * The PID of the deno process that runs tapir: `pid` itself or the first of
 * its descendants whose command line runs main.ts (`ip netns exec` may
 * fork). Through ps: Deno lets only --allow-all read /proc.
 */
async function denoPid(pid: number): Promise<number> {
  const r = await run(["ps", "-e", "-o", "pid=,ppid=,args="]);
  const rows = r.stdout.trim().split("\n").map((l) => {
    const [p, pp, ...args] = l.trim().split(/\s+/);
    return { pid: Number(p), ppid: Number(pp), args };
  });
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (rows.some((x) => x.pid === p && x.args.some((a) => a.endsWith("/main.ts")))) return p;
    queue.push(...rows.filter((x) => x.ppid === p).map((x) => x.pid));
  }
  throw new Error(`no deno process under ${pid}`);
}

/** VmRSS values (MB) in the text of /proc/PID/status reads. */
function rssValues(text: string): number[] {
  return [...text.matchAll(/VmRSS:\s+(\d+) kB/g)].map((m) => Number(m[1]) / 1024);
}

/** VmRSS of `pid` in MB (NaN for no PID or once gone). */
async function rssMb(pid: number): Promise<number> {
  if (pid < 0) return NaN;
  const r = await run(["cat", `/proc/${pid}/status`], { check: false });
  return rssValues(r.stdout)[0] ?? NaN;
}

/**
 * CPU time of `pid` (all its threads) and of its main thread, in clock
 * ticks (USER_HZ, 100 a second), and the main thread's involuntary context
 * switches: how busy tapir is under a flood and how often another task took
 * its CPU from it (null for no PID or once gone).
 */
async function procCpu(pid: number): Promise<{ all: number; main: number; nvcsw: number } | null> {
  if (pid < 0) return null;
  const r = await run(
    [
      "cat",
      `/proc/${pid}/stat`,
      `/proc/${pid}/task/${pid}/stat`,
      `/proc/${pid}/task/${pid}/status`,
    ],
    { check: false },
  );
  // utime and stime are fields 14 and 15; the command name (field 2) may hold spaces.
  const ticks = (line: string | undefined) => {
    const f = (line ?? "").slice((line ?? "").lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  };
  const lines = r.stdout.split("\n");
  const nv = r.stdout.match(/nonvoluntary_ctxt_switches:\s+(\d+)/);
  const all = ticks(lines[0]);
  const main = ticks(lines[1]);
  if (!Number.isFinite(all) || !Number.isFinite(main) || nv === null) return null;
  return { all, main, nvcsw: Number(nv[1]) };
}

/**
 * A process that reads `pid`'s VmRSS every 100 ms until stopped; `stop()`
 * returns the largest value it saw (NaN without a PID).
 */
function rssSampler(pid: number): { stop(): Promise<number> } {
  if (pid < 0) return { stop: () => Promise.resolve(NaN) };
  const p = spawn([
    "sh",
    "-c",
    `while grep VmRSS /proc/${pid}/status; do sleep 0.1; done`,
  ]);
  return {
    async stop() {
      p.kill("SIGTERM");
      const r = await p.wait(3000);
      return Math.max(...rssValues(r.stdout));
    },
  };
}

/**
 * Ping's summary: loss % and RTT avg/max in ms (NaN when nothing came
 * back), and the median and 90th percentile of the replies' times, which
 * tell a few slow replies (a pause) from every reply being slower.
 */
interface PingResult {
  sent: number;
  lossPct: number;
  avgMs: number;
  maxMs: number;
  medianMs: number;
  p90Ms: number;
}

function parsePing(out: string): PingResult {
  const c = out.match(/(\d+) packets transmitted, (\d+) received/);
  const rtt = out.match(/= [\d.]+\/([\d.]+)\/([\d.]+)\//);
  const sent = c ? Number(c[1]) : 0;
  const got = c ? Number(c[2]) : 0;
  const t = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  return {
    sent,
    lossPct: sent > 0 ? 100 * (1 - got / sent) : NaN,
    avgMs: rtt ? Number(rtt[1]) : NaN,
    maxMs: rtt ? Number(rtt[2]) : NaN,
    medianMs: median(t),
    p90Ms: t.length > 0 ? t[Math.min(t.length - 1, Math.floor(t.length * 0.9))]! : NaN,
  };
}

/**
 * `ping [-6] -i INTERVAL` h1 → h2 for about `seconds`, or until `until`
 * settles first (then it is stopped with SIGINT, and prints its summary:
 * the pings still in flight count as lost).
 */
async function pingThrough(
  s: Setup,
  fam: Family,
  seconds: number,
  o: Opts,
  until?: Promise<unknown>,
): Promise<PingResult> {
  const count = Math.max(1, Math.round(seconds / o.pingInterval));
  const p = s.h1.spawn([
    "ping",
    ...(fam === 6 ? ["-6"] : []),
    "-n",
    "-i",
    String(o.pingInterval),
    "-c",
    String(count),
    "-w",
    String(Math.ceil(seconds) + 3),
    NET[fam].h2,
  ]);
  const done = p.wait((seconds + 10) * 1000);
  until?.then(() => p.kill("SIGINT"));
  return parsePing((await done).stdout);
}

/** Every number of a `show stats --json` answer, by dotted path. */
function flatten(x: unknown, path: string, out: Map<string, number>): Map<string, number> {
  if (typeof x === "number") out.set(path, x);
  else if (x !== null && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) flatten(v, path === "" ? k : `${path}.${k}`, out);
  }
  return out;
}

/**
 * The counters that moved between two snapshots, most first, leaving out
 * the per-NIC and per-link frame and byte counts every flood moves.
 */
function deltas(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  const d: [string, number][] = [];
  for (const [k, v] of after) {
    if (k.startsWith("nics.") || k.startsWith("links.")) continue;
    const dv = v - (before.get(k) ?? 0);
    if (dv > 0) d.push([k, dv]);
  }
  return d.sort((a, b) => b[1] - a[1]);
}

async function tapirCounters(s: Setup): Promise<Map<string, number>> {
  if (s.tapir === undefined) return new Map();
  try {
    return flatten(await s.tapir.stats(), "", new Map());
  } catch {
    return new Map();
  }
}

/** What one flood did to one router. */
interface FloodSample {
  flood: string;
  router: string;
  /** Packets the attacker's interface sent, and per second. */
  packets: number;
  pps: number;
  ping: PingResult;
  /**
   * tapir only, while ping ran: CPU of the whole process and of its main
   * thread (% of one CPU) and the main thread's involuntary context switches.
   */
  cpu?: { allPct: number; mainPct: number; involuntarySwitches: number };
  /** How long ping (and the CPU reading) ran, in s. */
  pingSeconds?: number;
  /** tapir only: VmRSS in MB. */
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
  /** After the RA flood: ms until a real router's RAs were learned (NaN: not within the wait). */
  raLearnedMs?: number;
  /** tapir only: RAs it received while the RA check waited (radvd's, one every 3–4 s). */
  raReceived?: number;
  /** tapir only: every counter that moved, most first (the table shows the top 8). */
  counters?: [string, number][];
}

/**
 * Start `cmd` in the attacker namespace and stop it (SIGKILL by PID) after
 * `o.seconds` or once the attacker's `dev` has sent `o.count` packets.
 */
async function runGenerator(
  s: Setup,
  dev: string,
  cmd: string[],
  o: Opts,
): Promise<{ packets: number; seconds: number; proc: Spawned }> {
  const before = (await s.a.linkStats(dev)).tx_packets;
  const t0 = performance.now();
  const proc = s.a.spawn(cmd);
  let exited = false;
  const done = proc.wait((o.seconds + 10) * 1000).then((r) => {
    exited = true;
    return r;
  });
  let packets = 0;
  while (!exited && performance.now() - t0 < o.seconds * 1000) {
    await sleep(250);
    packets = (await s.a.linkStats(dev)).tx_packets - before;
    if (packets >= o.count) break;
  }
  proc.kill("SIGKILL");
  const r = await done;
  const seconds = (performance.now() - t0) / 1000;
  packets = (await s.a.linkStats(dev)).tx_packets - before;
  if (r.code !== 0 && r.signal === null) {
    console.error(`${cmd[0]} exited with ${r.code}: ${r.stderr.slice(0, 400)}`);
  }
  return { packets, seconds, proc };
}

/** h2's link-local on br0 (radvd's source). */
async function linkLocal(ns: Netns, dev: string): Promise<string> {
  const r = await ns.exec(["ip", "-j", "-6", "addr", "show", "dev", dev]);
  const j = JSON.parse(r.stdout) as { addr_info: { local: string; scope: string }[] }[];
  const a = j.flatMap((x) => x.addr_info).find((x) => x.scope === "link")?.local;
  if (a === undefined) throw new Error(`no link-local on ${dev} in ${ns.name}`);
  return a;
}

/** The IPv6 and ICMPv6 counters of `ns`'s kernel (/proc/net/snmp6). */
async function snmp6(ns: Netns): Promise<Map<string, number>> {
  const r = await ns.exec(["cat", "/proc/net/snmp6"], { check: false });
  const m = new Map<string, number>();
  for (const line of r.stdout.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k !== undefined && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/**
 * Start radvd on h2's bridge (intervals 3–4 s) and time how long the router
 * takes to list it as a default router, waiting at most three intervals.
 */
async function raLearnMs(s: Setup, topo: Topology): Promise<number> {
  const dir = topo.tempDir();
  Deno.writeTextFileSync(
    `${dir}/radvd.conf`,
    `interface br0 {
  AdvSendAdvert on;
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 4;
  AdvDefaultLifetime 1800;
  prefix 2001:db8:2::/64 { AdvOnLink on; AdvAutonomous off; };
};
`,
  );
  const ll = await linkLocal(s.h2, "br0");
  const snmpBefore = await snmp6(s.h2);
  const t0 = performance.now();
  const radvd = s.h2.spawn([
    "radvd",
    "-n",
    "-C",
    `${dir}/radvd.conf`,
    "-p",
    `${dir}/radvd.pid`,
    "-m",
    "stderr",
  ]);
  try {
    await waitFor("the router to learn radvd's RAs", async () => {
      if (s.tapir !== undefined) {
        const ra = JSON.parse(await tapirCli(s.tapir, ["show", "ra", "--json"])) as {
          interfaces: Record<string, { routers?: { address?: string }[] }>;
        };
        return (ra.interfaces.wan0?.routers ?? []).some((x) => x.address === ll);
      }
      const r = await s.r.exec(["ip", "-6", "route", "show", "default"], { check: false });
      return r.stdout.includes(`via ${ll} `);
    }, 12_000);
    return performance.now() - t0;
  } catch {
    return NaN;
  } finally {
    radvd.kill("SIGKILL"); // no final RA: what was learned stays for the next router
    const out = await radvd.wait(3000);
    // When it was slow: did h2 send the RAs (its kernel's counters), and
    // what did radvd say (sendmsg errors)?
    if (performance.now() - t0 > 8000) {
      const after = await snmp6(s.h2);
      const moved = [...after].filter(([k, v]) =>
        v !== snmpBefore.get(k) && /RouterAdv|OutNoRoutes|OutDiscards/.test(k)
      );
      console.error(
        `slow RA check: h2's ${
          moved.map(([k, v]) => `${k} +${v - (snmpBefore.get(k) ?? 0)}`).join(", ") ||
          "counters did not move"
        }; radvd: ${out.stderr.trim()}`,
      );
    }
  }
}

/**
 * `perf record -g` of `pid` for `seconds` into `DIR/<key>.data`; `stop()`
 * ends it (SIGINT, by PID) and writes the hottest symbols to `DIR/<key>.txt`.
 */
function perfRecord(o: Opts, key: string, pid: number): { stop(): Promise<void> } {
  if (!o.perf || pid < 0) return { stop: () => Promise.resolve() };
  Deno.mkdirSync(o.perf, { recursive: true });
  const data = `${o.perf}/${key}.data`;
  const p = spawn([
    "perf",
    "record",
    "-q",
    "-g",
    "-F",
    "499",
    "-p",
    String(pid),
    "-o",
    data,
    "--",
    "sleep",
    String(o.seconds + 5),
  ]);
  return {
    async stop() {
      p.kill("SIGINT");
      await p.wait(15_000);
      const r = await run([
        "perf",
        "report",
        "-i",
        data,
        "--no-children",
        "--percent-limit",
        "0.5",
        "--stdio",
        "-g",
        "none",
      ], { check: false, timeoutMs: 120_000 });
      Deno.writeTextFileSync(`${o.perf}/${key}.txt`, r.stdout);
      // Who calls the hottest symbols (the JIT map exists only while tapir runs).
      const g = await run([
        "perf",
        "report",
        "-i",
        data,
        "--no-children",
        "--percent-limit",
        "2",
        "--stdio",
        "-g",
        "caller,0.5,callee,function,percent",
      ], { check: false, timeoutMs: 120_000 });
      Deno.writeTextFileSync(`${o.perf}/${key}.graph.txt`, g.stdout);
    },
  };
}

async function oneFlood(s: Setup, f: FloodDef, o: Opts, topo: Topology): Promise<FloodSample> {
  const pid = s.tapir === undefined ? -1 : await denoPid(s.tapir.pid);
  const countersBefore = await tapirCounters(s);
  const rssBefore = await rssMb(pid);
  const sampler = rssSampler(pid);
  let stopped = false;
  try {
    const dev = f.side === "lan" ? s.aLan : s.aWan;
    const genP = runGenerator(s, dev, f.cmd(s, o), o);
    await sleep(1000);
    const perf = perfRecord(o, f.key, pid);
    const cpu0 = await procCpu(pid);
    const t0 = performance.now();
    const ping = await pingThrough(s, f.family, Math.max(1, o.seconds - 2), o, genP);
    const cpu1 = await procCpu(pid);
    const pingSeconds = (performance.now() - t0) / 1000;
    const wallTicks = pingSeconds * 100;
    await perf.stop();
    const g = await genP;
    const rssPeak = Math.max(rssBefore, await sampler.stop());
    stopped = true;
    const raBefore = f.raLearn ? await tapirCounters(s) : undefined;
    const raLearnedMs = f.raLearn ? await raLearnMs(s, topo) : undefined;
    // How many RAs reached tapir meanwhile (radvd sends one every 3-4 s):
    // tells an RA lost on the way from one tapir did not act on.
    const RA_RX = "stack.ndp.routerAdvertisementsReceived";
    const raReceived = raBefore === undefined || s.tapir === undefined
      ? undefined
      : ((await tapirCounters(s)).get(RA_RX) ?? 0) - (raBefore.get(RA_RX) ?? 0);
    const t = performance.now();
    while (performance.now() - t < o.after * 1000) await sleep(200);
    const rssAfter = await rssMb(pid);
    if (o.perf && pid >= 0) {
      // Where the memory that stayed is: tapir's mappings at the "after" point.
      const m = await run(["cat", `/proc/${pid}/smaps`], { check: false });
      Deno.writeTextFileSync(`${o.perf}/${f.key}.smaps`, m.stdout);
    }
    const counters = s.tapir !== undefined
      ? deltas(countersBefore, await tapirCounters(s))
      : undefined;
    return {
      flood: f.key,
      router: s.key,
      packets: g.packets,
      pps: g.packets / g.seconds,
      ping,
      cpu: cpu0 === null || cpu1 === null ? undefined : {
        allPct: 100 * (cpu1.all - cpu0.all) / wallTicks,
        mainPct: 100 * (cpu1.main - cpu0.main) / wallTicks,
        involuntarySwitches: cpu1.nvcsw - cpu0.nvcsw,
      },
      pingSeconds,
      rssBefore,
      rssPeak,
      rssAfter,
      raLearnedMs,
      raReceived,
      counters,
    };
  } finally {
    if (!stopped) await sampler.stop();
  }
}

/** MASQUERADE on both routers' WAN side: tapir by reload, the kernel by iptables. */
async function enableNat(s: Setup): Promise<void> {
  if (s.tapir !== undefined) {
    const id = String(Deno.pid % 100000);
    Deno.writeTextFileSync(s.tapir.configPath, tapirConfig(`tpfl${id}l`, `tpfl${id}w`, true));
    await tapirCli(s.tapir, ["reload"]);
    return;
  }
  await s.r.exec(["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", s.rWan, "-j", "MASQUERADE"]);
}

function table(samples: FloodSample[], idle: FloodSample[], o: Opts): string {
  const by = (flood: string, router: string) =>
    samples.find((x) => x.flood === flood && x.router === router);
  const rtt = (p: PingResult) => `${fmt(p.avgMs, 2)} / ${fmt(p.maxMs, 0)}`;
  const lines = [
    `Each flood ${o.seconds} s (at most ${o.count} packets), ping -i ${o.pingInterval} h1 → h2 ` +
    `through the router during it; tapir's RSS before, peak, and ${o.after} s after.`,
    "",
    "| flood | generator | pps sent (tapir / kernel run) | ping loss % tapir | kernel | " +
    "RTT avg / max ms tapir | kernel | RTT avg × kernel | goal (loss ≤ kernel + 10, RTT ≤ 4×) | " +
    "tapir RSS MB before / peak / after | after ≤ before + 10 % |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const rows = [
    ...idle.length > 0 ? [{ key: "idle", label: "no flood", tool: "—" }] : [],
    ...o.floods,
  ];
  for (const f of rows) {
    const t = f.key === "idle" ? idle.find((x) => x.router === "tapir") : by(f.key, "tapir");
    const k = f.key === "idle" ? idle.find((x) => x.router === "kernel") : by(f.key, "kernel");
    if (t === undefined && k === undefined) continue;
    // One router alone (--routers): its columns, and no goal to hold it to.
    const none: FloodSample = {
      flood: f.key,
      router: "",
      packets: NaN,
      pps: NaN,
      ping: { sent: 0, lossPct: NaN, avgMs: NaN, maxMs: NaN, medianMs: NaN, p90Ms: NaN },
      rssBefore: NaN,
      rssPeak: NaN,
      rssAfter: NaN,
    };
    const tt = t ?? none, kk = k ?? none;
    const ratio = tt.ping.avgMs / kk.ping.avgMs;
    const lossOk = tt.ping.lossPct <= kk.ping.lossPct + 10;
    // With every kernel ping lost there is no RTT to hold tapir's to: loss alone decides.
    const rttOk = Number.isFinite(kk.ping.avgMs) ? ratio <= 4 : true;
    const goal = t === undefined || k === undefined ? "—" : lossOk && rttOk ? "met" : "NOT met";
    const memOk = tt.rssAfter <= tt.rssBefore * 1.1;
    lines.push(
      `| ${f.label} | ${f.tool} | ${fmt(tt.pps, 0)} / ${fmt(kk.pps, 0)} | ${
        fmt(tt.ping.lossPct, 1)
      } | ${fmt(kk.ping.lossPct, 1)} | ${rtt(tt.ping)} | ${rtt(kk.ping)} | ${
        fmt(ratio, 1)
      } | ${goal} | ${fmt(tt.rssBefore, 0)} / ${fmt(tt.rssPeak, 0)} / ${fmt(tt.rssAfter, 0)} | ${
        f.key === "idle" || t === undefined ? "—" : memOk ? "yes" : "no"
      } |`,
    );
  }
  // Where the average comes from: the typical reply and the slow tenth,
  // and how busy tapir was (a flood tapir cannot keep up with queues every
  // frame behind it; another task taking tapir's CPU stalls the queue).
  lines.push(
    "",
    "RTT median / 90th percentile (ms), and tapir's CPU while ping ran " +
      "(% of one CPU, all threads) with its main thread's involuntary context switches a second:",
    "",
    "| flood | tapir median / p90 | kernel median / p90 | tapir CPU % | preempted /s |",
    "|---|---|---|---|---|",
  );
  const pct = (p: PingResult | undefined) =>
    p === undefined ? "—" : `${fmt(p.medianMs, 2)} / ${fmt(p.p90Ms, 2)}`;
  for (const f of rows) {
    const t = f.key === "idle" ? idle.find((x) => x.router === "tapir") : by(f.key, "tapir");
    const k = f.key === "idle" ? idle.find((x) => x.router === "kernel") : by(f.key, "kernel");
    if (t === undefined && k === undefined) continue;
    const c = t?.cpu;
    lines.push(
      `| ${f.label} | ${pct(t?.ping)} | ${pct(k?.ping)} | ${c ? fmt(c.allPct, 0) : "—"} | ${
        c && t?.pingSeconds ? fmt(c.involuntarySwitches / t.pingSeconds, 0) : "—"
      } |`,
    );
  }
  const ra = samples.filter((x) => x.raLearnedMs !== undefined);
  if (ra.length > 0) {
    lines.push(
      "",
      "After the RA flood, radvd (intervals 3–4 s) on h2: time until the router lists it " +
        "(goal: within two intervals, ≤ 8 s): " +
        ra.map((x) =>
          `${x.router} ${
            Number.isFinite(x.raLearnedMs!) ? `${fmt(x.raLearnedMs! / 1000, 1)} s` : "not in 12 s"
          }${x.raReceived !== undefined ? ` (${x.raReceived} RAs reached it meanwhile)` : ""}`
        ).join(", ") + ".",
    );
  }
  lines.push("", "tapir's counters that moved most during each flood:", "");
  for (const x of samples) {
    if (x.counters === undefined) continue;
    const top = x.counters.slice(0, 8);
    lines.push(`- ${x.flood}: ${top.map(([k, v]) => `${k} +${v}`).join(", ")}`);
  }
  return lines.join("\n");
}

async function runBench(
  topo: Topology,
  o: Opts,
  samples: FloodSample[],
  idle: FloodSample[],
): Promise<void> {
  const setups: Setup[] = [];
  if (o.routers.includes("tapir")) setups.push(await tapirSetup(topo, o));
  if (o.routers.includes("kernel")) setups.push(await kernelSetup(topo));
  for (const s of setups) await waitDad(s);
  for (const s of setups) {
    s.routerLanMac = await resolveRouterMac(s);
    for (const fam of [4, 6] as const) await warmUp(s.h1, NET[fam].h2, o.warmup);
  }
  for (const s of setups) {
    const ping = await pingThrough(s, 4, 5, o);
    const rss = await rssMb(s.tapir === undefined ? -1 : await denoPid(s.tapir.pid));
    idle.push({
      flood: "idle",
      router: s.key,
      packets: 0,
      pps: 0,
      ping,
      rssBefore: rss,
      rssPeak: rss,
      rssAfter: rss,
    });
  }
  let natOn = false;
  for (const f of o.floods) {
    if (f.nat && !natOn) {
      for (const s of setups) await enableNat(s);
      natOn = true;
    }
    for (const s of setups) {
      const t0 = performance.now();
      const x = await oneFlood(s, f, o, topo);
      samples.push(x);
      console.error(
        `${f.key} ${s.label} (${((performance.now() - t0) / 1000).toFixed(1)} s): ` +
          JSON.stringify(x),
      );
    }
  }
  for (const s of setups) {
    if (s.tapir === undefined) continue;
    const pid = o.perf ? await denoPid(s.tapir.pid) : -1;
    await s.tapir.stop("SIGTERM");
    // The JIT symbol map --perf-basic-prof left (the reports are written).
    if (pid >= 0) await Deno.remove(`/tmp/perf-${pid}.map`).catch(() => {});
  }
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  requireRoot("e2e_floods_bench");
  const need = ["ip", "ping", "scapy", "radvd", "iptables", "ip6tables", "atk6-flood_router26"];
  const missing = need.filter((t) => !hasTool(t));
  if (missing.length > 0) {
    console.error(`e2e_floods_bench needs ${missing.join(", ")} (see tests/tools.ts)`);
    Deno.exit(1);
  }
  const samples: FloodSample[] = [];
  const idle: FloodSample[] = [];
  const loadStart = Deno.loadavg();
  await withBenchTopology("tpfl-bench", (topo) => runBench(topo, o, samples, idle));
  const meta = {
    ...(await benchMeta(loadStart)),
    seconds: o.seconds,
    count: o.count,
    pps: o.pps,
    afterSeconds: o.after,
    pingInterval: o.pingInterval,
    warmupFloodPings: o.warmup,
  };
  console.log(benchHeader(meta, `floods of ${o.seconds} s\n`));
  console.log(table(samples, idle, o) + "\n");
  const json = JSON.stringify({ meta, idle, samples }, null, 2);
  console.log(json);
  if (o.out) Deno.writeTextFileSync(o.out, json + "\n");
}

if (import.meta.main) await main();
