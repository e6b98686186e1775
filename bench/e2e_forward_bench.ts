/**
 * End-to-end IPv4 and IPv6 forwarding benchmark (root only): two host
 * namespaces h1 (192.0.2.2/24, 2001:db8:1::2/64) and h2 (198.51.100.2/24,
 * 2001:db8:2::2/64) with a router between them — tapir (`main.ts run`,
 * offloads on; and again with `offload = false` on both interfaces), and a
 * kernel router namespace (ip_forward=1 and net.ipv6.conf.all.forwarding=1,
 * two veth pairs) — all set up in the same run and measured in interleaved
 * rounds. `--family 4|6|both` (default both) picks the families measured;
 * IPv6 addresses are only configured when IPv6 is measured (dual stack), and
 * measuring starts once no IPv6 address is tentative (DAD done) on tapir and
 * in every kernel namespace.
 *
 * Per family, setup and round:
 * - RTT: mean of `ping [-6] -c 50 -i 0.01` h1 → h2, and of `ping -c 5 -i 1`
 *   (the idle path a plain ping sees);
 * - TCP: `iperf3 -t S` and `iperf3 -P 2 -t S`, h1 → h2 (received rate);
 * - UDP, 64-byte payload: the FFI `sendmmsg` flood of bench/_netbench.ts in
 *   h1 (AF_INET or AF_INET6), unpaced (the highest load one sender offers),
 *   then paced at each of `--udp-rates` (the received rate of the fastest
 *   run with < 1 % loss is the "lossless" rate); h2
 *   holds the port open and the packets received at h2 are its interface's
 *   rx counter delta. Offered pps = sent / send time.
 *
 * Before round 1 every setup gets the same warm-up (`--warmup N` flood
 * pings per family, default 20000; see warmUp in bench/_netbench.ts).
 *
 * It prints, per family, a markdown table (best of the rounds, the spread, and the
 * ratios tapir / kernel against the goals: ≥ 0.5 of the kernel's 64-byte
 * pps and TCP throughput with offloads, RTT ≤ 4× the kernel's) and the
 * JSON; `--out FILE` also writes the JSON to FILE.
 *
 * `--baseline DIR` adds a fourth setup, "tapir-base": the tapir of another
 * checkout (DIR/main.ts, offloads on; e.g. a `git worktree` of the old main),
 * measured in the same interleaved rounds, and a table of the paired ratios
 * this tapir / baseline per round — how a restructure is held to "no figure
 * more than 5 % worse".
 *
 *     deno task bench:e2e [--family 4|6|both] [--baseline DIR] [--seconds 5] [--rounds 2] [--udp-rates 50000,...,400000] [--udp-seconds 3] [--warmup 20000] [--out FILE] [--only tapir-on,kernel]
 *
 * Every namespace is `tpf-bench-<pid>-*`, deleted at the end (also on
 * failure, SIGINT or SIGTERM); every command has a timeout; DAD waits are
 * bounded to 15 s; the flood is bounded in count and
 * time; all traffic stays between these namespaces (documentation ranges).
 *
 * @module
 */
import {
  moveTapToNs,
  type Netns,
  run,
  startTapir,
  type Tapir,
  type Topology,
  waitFor,
} from "../tests/e2e/harness.ts";
import {
  benchHeader,
  benchMeta,
  type FloodRun,
  fmt,
  iperfTcpGbps,
  losslessPps,
  type PacedRun,
  pacedSweep,
  pingRttMs,
  requireRoot,
  sleep,
  type Spread,
  spread,
  udpFlood,
  veth,
  warmUp,
  withBenchTopology,
} from "./_netbench.ts";

/** One round's figures of one setup. */
export interface ForwardSample {
  rttMs: number;
  /** Mean RTT of `ping -c 5 -i 1`: the idle path a user's plain ping sees. */
  rttIdleMs: number;
  tcpGbps: number;
  tcpP2Gbps: number;
  /** Unpaced flood: offered (sent / send time) and received at h2's interface. */
  floodSentPps: number;
  floodRecvPps: number;
  floodLossPct: number;
  /** The flood paced at each rate of --udp-rates: offered, received, loss. */
  paced: PacedRun[];
  /** The received rate of the fastest paced run with < 1 % loss (0: none). */
  losslessPps: number;
}

/** A router under test between h1 and h2. */
export interface Setup {
  key: string;
  label: string;
  h1: Netns;
  h2: Netns;
  /** h2's interface towards the router. */
  h2Dev: string;
  tapir?: Tapir;
  /** Every namespace of the setup (for the DAD wait). */
  namespaces: Netns[];
  /** The kernel router's namespace and its LAN (h1) and WAN (h2) side devices. */
  kernelRouter?: { ns: Netns; lan: string; wan: string };
  /** One list of rounds per address family. */
  samples: Record<Family, ForwardSample[]>;
}

/** An address family measured. */
export type Family = 4 | 6;

/** Addresses of h1, h2 and the router's two sides, per family. */
export const NET = {
  4: { h1: "192.0.2.2", r1: "192.0.2.1", r2: "198.51.100.1", h2: "198.51.100.2", len: 24 },
  6: {
    h1: "2001:db8:1::2",
    r1: "2001:db8:1::1",
    r2: "2001:db8:2::1",
    h2: "2001:db8:2::2",
    len: 64,
  },
} as const;
const H1_ADDR = NET[4].h1;
const H2_ADDR = NET[4].h2;
const UDP_PORT = 9000;

/** `-6` for the IPv6 variants of ping and iperf3, nothing for IPv4 (unchanged commands). */
function famFlag(fam: Family): string[] {
  return fam === 6 ? ["-6"] : [];
}

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  const family = opt("--family", "both");
  if (!["4", "6", "both"].includes(family)) throw new Error(`--family 4|6|both, not ${family}`);
  return {
    families: (family === "both" ? [4, 6] : [Number(family)]) as Family[],
    seconds: Number(opt("--seconds", "5")),
    rounds: Number(opt("--rounds", "2")),
    udpRates: opt("--udp-rates", "50000,100000,150000,200000,300000,400000").split(",").map(Number),
    /** Seconds of each paced UDP run. */
    udpSeconds: Number(opt("--udp-seconds", "3")),
    floodCount: Number(opt("--flood-count", "5000000")),
    /** Flood pings per setup and family before round 1 (0: only 3 pings to resolve neighbours). */
    warmup: Number(opt("--warmup", "20000")),
    out: opt("--out", ""),
    only: opt("--only", "tapir-on,tapir-off,kernel").split(","),
    /** Another checkout whose tapir is measured alongside as "tapir-base" (offloads on). */
    baseline: opt("--baseline", ""),
  };
}

type Opts = ReturnType<typeof parseArgs>;

function tapirConfig(
  tag: string,
  lanTap: string,
  wanTap: string,
  offload: boolean,
  v6: boolean,
): string {
  const off = offload ? "" : "offload = false\n";
  const lan = v6 ? `"192.0.2.1/24", "${NET[6].r1}/64"` : `"192.0.2.1/24"`;
  const wan = v6 ? `"198.51.100.1/24", "${NET[6].r2}/64"` : `"198.51.100.1/24"`;
  return `
[router]
hostname = "bench-${tag}"
forwarding = true

[[interface]]
name = "lan0"
tap = "${lanTap}"
addresses = [${lan}]
${off}
[[interface]]
name = "wan0"
tap = "${wanTap}"
addresses = [${wan}]
${off}`;
}

/** `tapir show addresses --json` of a running tapir: per NIC, its IPv6 addresses ("a/len [state]"). */
async function tapirAddresses(tapir: Tapir): Promise<Record<string, { ipv6?: string[] }>> {
  const r = await run([
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    `${tapir.repo}/main.ts`,
    "show",
    "addresses",
    "--control",
    tapir.controlPath,
    "--json",
  ], { timeoutMs: 10_000 });
  return JSON.parse(r.stdout);
}

/**
 * Wait (≤ 15 s) until no IPv6 address is tentative: tapir's own (its DAD,
 * RFC 4862 §5.4: ≤ 1 s delay + 1 s per probe) and the kernel's in every
 * namespace of the setup (hosts' globals are added `nodad`; link-locals and
 * the kernel router's are not).
 */
export async function waitDad(s: Setup): Promise<void> {
  if (s.tapir !== undefined) {
    const tapir = s.tapir;
    await waitFor(`tapir's IPv6 addresses to pass DAD (${s.label})`, async () => {
      const a = await tapirAddresses(tapir);
      const all = Object.values(a).flatMap((n) => n.ipv6 ?? []);
      return all.length > 0 && all.every((x) => !x.includes("tentative"));
    }, 15_000);
  }
  for (const ns of s.namespaces) {
    await waitFor(`IPv6 DAD in ${ns.name}`, async () => {
      const r = await ns.exec(["ip", "-6", "addr", "show", "tentative"], {
        check: false,
        timeoutMs: 5000,
      });
      return r.code === 0 && r.stdout.trim() === "";
    }, 15_000);
  }
}

/**
 * tapir (`main.ts run`, of `repo` or this checkout) routing between two new
 * host namespaces; `opts.tag` (≤ 3 characters) names its namespaces and
 * TAPs, `opts.label` the setup in tables.
 */
export async function tapirSetup(
  topo: Topology,
  key: string,
  offload: boolean,
  v6: boolean,
  repo?: string,
  opts: { tag?: string; label?: string } = {},
): Promise<Setup> {
  const tag = opts.tag ?? (repo !== undefined ? "b" : offload ? "o" : "n");
  const id = String(Deno.pid % 100000);
  const lanTap = `tpf${tag}${id}l`, wanTap = `tpf${tag}${id}w`;
  const r = await topo.netns(`${tag}r`);
  const h1 = await topo.netns(`${tag}h1`);
  const h2 = await topo.netns(`${tag}h2`);
  const tapir = await startTapir({
    config: tapirConfig(tag, lanTap, wanTap, offload, v6),
    ns: r,
    topo,
    extraArgs: ["--log-level", "warning"],
    repo,
  });
  // moveTapToNs adds IPv6 addresses with `nodad`.
  const h1Addrs = [`${H1_ADDR}/24`, ...(v6 ? [`${NET[6].h1}/64`] : [])];
  const h2Addrs = [`${H2_ADDR}/24`, ...(v6 ? [`${NET[6].h2}/64`] : [])];
  await moveTapToNs(lanTap, r, h1, { address: h1Addrs });
  await moveTapToNs(wanTap, r, h2, { address: h2Addrs });
  await h1.ip("route", "add", "default", "via", "192.0.2.1");
  await h2.ip("route", "add", "default", "via", "198.51.100.1");
  if (v6) {
    await h1.ip("-6", "route", "add", "default", "via", NET[6].r1);
    await h2.ip("-6", "route", "add", "default", "via", NET[6].r2);
  }
  return {
    key,
    label: opts.label ??
      (repo !== undefined
        ? `tapir baseline (${repo}), offloads on`
        : `tapir, offloads ${offload ? "on" : "off"}`),
    h1,
    h2,
    h2Dev: wanTap,
    tapir,
    namespaces: [r, h1, h2],
    samples: { 4: [], 6: [] },
  };
}

/** A kernel router namespace (two veth pairs, forwarding on) between two new host namespaces. */
export async function kernelSetup(topo: Topology, v6: boolean): Promise<Setup> {
  const id = String(Deno.pid % 100000);
  const r = await topo.netns("kr");
  const h1 = await topo.netns("kh1");
  const h2 = await topo.netns("kh2");
  const six = (x: string) => v6 ? [`${x}/64`] : [];
  if (v6) {
    // Before the veths exist, so that they are created forwarding (a router
    // neither autoconfigures from RAs nor sends Router Solicitations).
    await r.exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
  }
  await veth(h1, `tpfk${id}a`, [`${H1_ADDR}/24`, ...six(NET[6].h1)], r, `tpfk${id}b`, [
    "192.0.2.1/24",
    ...six(NET[6].r1),
  ]);
  await veth(r, `tpfk${id}c`, ["198.51.100.1/24", ...six(NET[6].r2)], h2, `tpfk${id}d`, [
    `${H2_ADDR}/24`,
    ...six(NET[6].h2),
  ]);
  await r.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await h1.ip("route", "add", "default", "via", "192.0.2.1");
  await h2.ip("route", "add", "default", "via", "198.51.100.1");
  if (v6) {
    await h1.ip("-6", "route", "add", "default", "via", NET[6].r1);
    await h2.ip("-6", "route", "add", "default", "via", NET[6].r2);
  }
  return {
    key: "kernel",
    label: "kernel router namespace",
    h1,
    h2,
    h2Dev: `tpfk${id}d`,
    namespaces: [r, h1, h2],
    kernelRouter: { ns: r, lan: `tpfk${id}b`, wan: `tpfk${id}c` },
    samples: { 4: [], 6: [] },
  };
}

function flood(s: Setup, o: Opts, fam: Family, pps: number, seconds: number): Promise<FloodRun> {
  return udpFlood(s.h1, s.h2, s.h2Dev, {
    dst: NET[fam].h2,
    port: UDP_PORT,
    pps,
    seconds,
    count: o.floodCount,
  });
}

async function measureRound(s: Setup, o: Opts, fam: Family): Promise<ForwardSample> {
  const dst = NET[fam].h2;
  const rttMs = await pingRttMs(s.h1, dst);
  const rttIdleMs = await pingRttMs(s.h1, dst, 5, 1);
  const srv = s.h2.spawn(["iperf3", ...famFlag(fam), "-s", "-B", dst]);
  let tcpGbps = NaN, tcpP2Gbps = NaN;
  try {
    await sleep(400);
    tcpGbps = await iperfTcpGbps(s.h1, dst, o.seconds, 1);
    tcpP2Gbps = await iperfTcpGbps(s.h1, dst, o.seconds, 2);
  } finally {
    srv.kill("SIGTERM");
    await srv.wait(3000);
  }
  const f = await flood(s, o, fam, 0, o.seconds);
  const paced = await pacedSweep((pps, t) => flood(s, o, fam, pps, t), o.udpRates, o.udpSeconds);
  return {
    rttMs,
    rttIdleMs,
    tcpGbps,
    tcpP2Gbps,
    floodSentPps: f.sent,
    floodRecvPps: f.recv,
    floodLossPct: f.loss,
    paced,
    losslessPps: losslessPps(paced),
  };
}

type Scalar = Exclude<keyof ForwardSample, "paced">;
const FIELDS: { key: Scalar; lower?: boolean }[] = [
  { key: "rttMs", lower: true },
  { key: "rttIdleMs", lower: true },
  { key: "tcpGbps" },
  { key: "tcpP2Gbps" },
  { key: "floodSentPps" },
  { key: "floodRecvPps" },
  { key: "floodLossPct", lower: true },
  { key: "losslessPps" },
];

function summarize(s: Setup, fam: Family): Record<string, Spread> {
  const samples = s.samples[fam];
  const out: Record<string, Spread> = {};
  for (const f of FIELDS) out[f.key] = spread(samples.map((x) => x[f.key]), f.lower);
  const rates = samples[0]?.paced.map((p) => p.rate) ?? [];
  rates.forEach((rate, i) => {
    out[`paced${rate}RecvPps`] = spread(samples.map((x) => x.paced[i]?.recvPps ?? NaN));
    out[`paced${rate}LossPct`] = spread(samples.map((x) => x.paced[i]?.lossPct ?? NaN), true);
  });
  return out;
}

const PAIRED: [Scalar, string][] = [
  ["floodRecvPps", "flood recv pps"],
  ["losslessPps", "lossless pps"],
  ["tcpGbps", "TCP"],
  ["tcpP2Gbps", "TCP -P 2"],
  ["rttMs", "RTT"],
  ["rttIdleMs", "RTT -i 1"],
];

/** Paired ratios `s` / `ref` of the same round: median [min–max] over the rounds. */
function pairedTable(s: Setup, ref: Setup, fam: Family, refName: string): string {
  const cells = PAIRED.map(([key]) => {
    const rs = s.samples[fam].map((x, i) => x[key] / (ref.samples[fam][i]?.[key] ?? NaN))
      .filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (rs.length === 0) return "—";
    // An even count takes the mean of the two middle ratios.
    const h = rs.length >> 1;
    const median = rs.length % 2 === 1 ? rs[h]! : (rs[h - 1]! + rs[h]!) / 2;
    return `${fmt(median)} [${fmt(rs[0]!)}–${fmt(rs[rs.length - 1]!)}]`;
  });
  return [
    `Paired ratios ${s.label} / ${refName}, same round: median [min–max].`,
    "",
    `| setup | ${PAIRED.map((k) => k[1]).join(" | ")} |`,
    `|---|${PAIRED.map(() => "---").join("|")}|`,
    `| ${s.label} | ${cells.join(" | ")} |`,
  ].join("\n");
}

function table(setups: Setup[], o: Opts, fam: Family): string {
  const sums = new Map(setups.map((s) => [s.key, summarize(s, fam)]));
  const k = sums.get("kernel");
  const cell = (sp: Spread, d: number) =>
    sp.samples.length > 1 ? `${fmt(sp.best, d)} (${fmt(sp.worst, d)})` : fmt(sp.best, d);
  const ratio = (a: Spread, b: Spread | undefined) => b === undefined ? "—" : fmt(a.best / b.best);
  const lines = [
    `IPv${fam}, h1 ${NET[fam].h1} → h2 ${NET[fam].h2}.`,
    "",
    `Best of ${o.rounds} round(s), worst in parentheses; × kernel = best / kernel's best.`,
    "",
    "| setup | 64 B flood offered pps | recv pps at h2 | × kernel | loss % | " +
    "lossless pps (received, paced runs) | × kernel | TCP Gbit/s | × kernel | TCP -P 2 Gbit/s | " +
    "× kernel | RTT ms (-i 0.01) | × kernel | RTT ms (-i 1) | × kernel |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const s of setups) {
    const m = sums.get(s.key)!;
    lines.push(
      `| ${s.label} | ${cell(m.floodSentPps!, 0)} | ${cell(m.floodRecvPps!, 0)} | ${
        ratio(m.floodRecvPps!, k?.floodRecvPps)
      } | ${cell(m.floodLossPct!, 1)} | ${cell(m.losslessPps!, 0)} | ${
        ratio(m.losslessPps!, k?.losslessPps)
      } | ${cell(m.tcpGbps!, 2)} | ${ratio(m.tcpGbps!, k?.tcpGbps)} | ${cell(m.tcpP2Gbps!, 2)} | ${
        ratio(m.tcpP2Gbps!, k?.tcpP2Gbps)
      } | ${cell(m.rttMs!, 3)} | ${ratio(m.rttMs!, k?.rttMs)} | ${cell(m.rttIdleMs!, 3)} | ${
        ratio(m.rttIdleMs!, k?.rttIdleMs)
      } |`,
    );
  }
  lines.push(
    "",
    "Paced 64 B UDP (offered with sleeps between ≤ 1 ms bursts): received pps at h2 (loss %), best round.",
    "",
    `| setup | ${o.udpRates.map((r) => `${r} pps`).join(" | ")} |`,
    `|---|${o.udpRates.map(() => "---").join("|")}|`,
  );
  for (const s of setups) {
    const m = sums.get(s.key)!;
    lines.push(
      `| ${s.label} | ${
        o.udpRates.map((r) =>
          `${fmt(m[`paced${r}RecvPps`]?.best ?? NaN, 0)} (${
            fmt(m[`paced${r}LossPct`]?.best ?? NaN, 1)
          })`
        ).join(" | ")
      } |`,
    );
  }
  const kernel = setups.find((s) => s.key === "kernel");
  const base = setups.find((s) => s.key === "tapir-base");
  const cur = setups.find((s) => s.key === "tapir-on");
  if (base !== undefined && cur !== undefined) {
    lines.push("", pairedTable(cur, base, fam, "baseline"));
  }
  if (kernel !== undefined) {
    // Ratios within one round (tapir and the kernel measured minutes apart
    // under the same background load): median [min–max] over the rounds.
    for (const s of setups) {
      if (s !== kernel) lines.push("", pairedTable(s, kernel, fam, "kernel"));
    }
  }
  const on = sums.get("tapir-on");
  if (on !== undefined && k !== undefined) {
    const pps = Math.max(
      on.floodRecvPps!.best / k.floodRecvPps!.best,
      on.losslessPps!.best / k.losslessPps!.best,
    );
    const tcp = on.tcpGbps!.best / k.tcpGbps!.best;
    const rtt = on.rttMs!.best / k.rttMs!.best;
    lines.push(
      "",
      `Goals (IPv${fam}, tapir, offloads on): 64 B pps ≥ 0.5× kernel: ${fmt(pps)} ${
        pps >= 0.5 ? "met" : "NOT met"
      }; ` +
        `TCP ≥ 0.5× kernel: ${fmt(tcp)} ${tcp >= 0.5 ? "met" : "NOT met"}; ` +
        `RTT ≤ 4× kernel: ${fmt(rtt)} ${rtt <= 4 ? "met" : "NOT met"}.`,
    );
  }
  return lines.join("\n");
}

/** Set up the routers in `topo`, wait for DAD, measure every round, collect tapir's counters. */
async function runBench(
  topo: Topology,
  o: Opts,
  setups: Setup[],
  tapirStats: Record<string, unknown>,
): Promise<void> {
  const v6 = o.families.includes(6);
  if (o.only.includes("tapir-on")) setups.push(await tapirSetup(topo, "tapir-on", true, v6));
  if (o.only.includes("tapir-off")) setups.push(await tapirSetup(topo, "tapir-off", false, v6));
  if (o.baseline !== "") {
    setups.push(await tapirSetup(topo, "tapir-base", true, v6, Deno.realPathSync(o.baseline)));
  }
  if (o.only.includes("kernel")) setups.push(await kernelSetup(topo, v6));
  if (v6) { for (const s of setups) await waitDad(s); }
  // Resolve neighbours everywhere and warm every path up before measuring.
  for (const fam of o.families) {
    for (const s of setups) await warmUp(s.h1, NET[fam].h2, o.warmup);
  }
  for (let round = 0; round < o.rounds; round++) {
    for (const fam of o.families) {
      for (const s of setups) {
        const t0 = performance.now();
        const x = await measureRound(s, o, fam);
        s.samples[fam].push(x);
        console.error(
          `round ${round + 1} IPv${fam} ${s.label} (${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s): ` + JSON.stringify(x),
        );
      }
    }
  }
  for (const s of setups) {
    if (s.tapir === undefined) continue;
    try {
      tapirStats[s.key] = await s.tapir.stats();
    } catch (e) {
      tapirStats[s.key] = String(e);
    }
    await s.tapir.stop("SIGTERM");
  }
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  requireRoot("e2e_forward_bench");
  for (const tool of ["ip", "ping", "iperf3"]) {
    const r = await run(["sh", "-c", `command -v ${tool}`], { check: false });
    if (r.code !== 0) {
      console.error(`e2e_forward_bench needs ${tool}`);
      Deno.exit(1);
    }
  }
  const setups: Setup[] = [];
  const tapirStats: Record<string, unknown> = {};
  const loadStart = Deno.loadavg();
  await withBenchTopology("tpf-bench", (topo) => runBench(topo, o, setups, tapirStats));
  const meta = {
    ...(await benchMeta(loadStart)),
    families: o.families,
    seconds: o.seconds,
    rounds: o.rounds,
    warmupFloodPings: o.warmup,
    udpPayloadBytes: 64,
    pacedRates: o.udpRates,
    pacedSeconds: o.udpSeconds,
    floodCount: o.floodCount,
  };
  console.log(benchHeader(meta, `iperf3 -t ${o.seconds}; UDP 64 B payload\n`));
  for (const fam of o.families) console.log(table(setups, o, fam) + "\n");
  const json = JSON.stringify(
    {
      meta,
      results: o.families.flatMap((fam) =>
        setups.map((s) => ({
          family: fam,
          setup: s.key,
          label: s.label,
          summary: summarize(s, fam),
          samples: s.samples[fam],
        }))
      ),
      tapirStats,
    },
    null,
    2,
  );
  console.log(json);
  if (o.out) Deno.writeTextFileSync(o.out, json + "\n");
}

if (import.meta.main) await main();
