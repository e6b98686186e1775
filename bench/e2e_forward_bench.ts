/**
 * End-to-end IPv4 forwarding benchmark (root only): two host namespaces
 * h1 (192.0.2.2/24) and h2 (198.51.100.2/24) with a router between them —
 * tapir (`main.ts run`, offloads on; and again with `offload = false` on
 * both interfaces), and a kernel router namespace (ip_forward=1, two veth
 * pairs) — all set up in the same run and measured in interleaved rounds.
 *
 * Per setup and round:
 * - RTT: mean of `ping -c 50 -i 0.01` h1 → h2;
 * - TCP: `iperf3 -t S` and `iperf3 -P 2 -t S`, h1 → h2 (received rate);
 * - UDP, 64-byte payload: the FFI `sendmmsg` flood of bench/_netbench.ts in
 *   h1, unpaced (the highest load one sender offers), then paced at each of
 *   `--udp-rates` (the highest with < 1 % loss is the "lossless" rate); h2
 *   holds the port open and the packets received at h2 are its interface's
 *   rx counter delta. Offered pps = sent / send time.
 *
 * It prints a markdown table (best of the rounds, the spread, and the
 * ratios tapir / kernel against the goals: ≥ 0.5 of the kernel's 64-byte
 * pps and TCP throughput with offloads, RTT ≤ 4× the kernel's) and the
 * JSON; `--out FILE` also writes the JSON to FILE.
 *
 *     deno task bench:e2e [--seconds 5] [--rounds 2] [--udp-rates 50000,...,400000] [--udp-seconds 3] [--out FILE] [--only tapir-on,kernel]
 *
 * Every namespace is `tpf-bench-<pid>-*`, deleted at the end (also on
 * failure); every command has a timeout; the flood is bounded in count and
 * time; all traffic stays between these namespaces (documentation ranges).
 *
 * @module
 */
import {
  moveTapToNs,
  type Netns,
  REPO,
  run,
  startTapir,
  type Tapir,
  type Topology,
  withTopology,
} from "../tests/e2e/harness.ts";
import {
  cpuModel,
  type FloodResult,
  fmt,
  pingAvgMs,
  sleep,
  type Spread,
  spread,
} from "./_netbench.ts";

/** One round's figures of one setup. */
export interface ForwardSample {
  rttMs: number;
  tcpGbps: number;
  tcpP2Gbps: number;
  /** Unpaced flood: offered (sent / send time) and received at h2's interface. */
  floodSentPps: number;
  floodRecvPps: number;
  floodLossPct: number;
  /** The flood paced at each rate of --udp-rates: offered, received, loss. */
  paced: { rate: number; sentPps: number; recvPps: number; lossPct: number }[];
  /** The highest paced rate forwarded with < 1 % loss (0: none). */
  losslessPps: number;
}

/** A router under test between h1 and h2. */
interface Setup {
  key: string;
  label: string;
  h1: Netns;
  h2: Netns;
  /** h2's interface towards the router. */
  h2Dev: string;
  tapir?: Tapir;
  samples: ForwardSample[];
}

const H1_ADDR = "192.0.2.2";
const H2_ADDR = "198.51.100.2";
const UDP_PORT = 9000;

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  return {
    seconds: Number(opt("--seconds", "5")),
    rounds: Number(opt("--rounds", "2")),
    udpRates: opt("--udp-rates", "50000,100000,150000,200000,300000,400000").split(",").map(Number),
    /** Seconds of each paced UDP run. */
    udpSeconds: Number(opt("--udp-seconds", "3")),
    floodCount: Number(opt("--flood-count", "5000000")),
    out: opt("--out", ""),
    only: opt("--only", "tapir-on,tapir-off,kernel").split(","),
  };
}

type Opts = ReturnType<typeof parseArgs>;

function tapirConfig(tag: string, lanTap: string, wanTap: string, offload: boolean): string {
  const off = offload ? "" : "offload = false\n";
  return `
[router]
hostname = "bench-${tag}"
forwarding = true

[[interface]]
name = "lan0"
tap = "${lanTap}"
addresses = ["192.0.2.1/24"]
${off}
[[interface]]
name = "wan0"
tap = "${wanTap}"
addresses = ["198.51.100.1/24"]
${off}`;
}

async function tapirSetup(topo: Topology, key: string, offload: boolean): Promise<Setup> {
  const tag = offload ? "o" : "n";
  const id = String(Deno.pid % 100000);
  const lanTap = `tpf${tag}${id}l`, wanTap = `tpf${tag}${id}w`;
  const r = await topo.netns(`${tag}r`);
  const h1 = await topo.netns(`${tag}h1`);
  const h2 = await topo.netns(`${tag}h2`);
  const tapir = await startTapir({
    config: tapirConfig(tag, lanTap, wanTap, offload),
    ns: r,
    topo,
    extraArgs: ["--log-level", "warning"],
  });
  await moveTapToNs(lanTap, r, h1, { address: `${H1_ADDR}/24` });
  await moveTapToNs(wanTap, r, h2, { address: `${H2_ADDR}/24` });
  await h1.ip("route", "add", "default", "via", "192.0.2.1");
  await h2.ip("route", "add", "default", "via", "198.51.100.1");
  return {
    key,
    label: `tapir, offloads ${offload ? "on" : "off"}`,
    h1,
    h2,
    h2Dev: wanTap,
    tapir,
    samples: [],
  };
}

async function veth(a: Netns, aDev: string, aAddr: string, b: Netns, bDev: string, bAddr: string) {
  await run([
    "ip",
    "link",
    "add",
    aDev,
    "netns",
    a.name,
    "type",
    "veth",
    "peer",
    "name",
    bDev,
    "netns",
    b.name,
  ]);
  await a.ip("addr", "add", aAddr, "dev", aDev);
  await b.ip("addr", "add", bAddr, "dev", bDev);
  await a.ip("link", "set", aDev, "up");
  await b.ip("link", "set", bDev, "up");
}

async function kernelSetup(topo: Topology): Promise<Setup> {
  const id = String(Deno.pid % 100000);
  const r = await topo.netns("kr");
  const h1 = await topo.netns("kh1");
  const h2 = await topo.netns("kh2");
  await veth(h1, `tpfk${id}a`, `${H1_ADDR}/24`, r, `tpfk${id}b`, "192.0.2.1/24");
  await veth(r, `tpfk${id}c`, "198.51.100.1/24", h2, `tpfk${id}d`, `${H2_ADDR}/24`);
  await r.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await h1.ip("route", "add", "default", "via", "192.0.2.1");
  await h2.ip("route", "add", "default", "via", "198.51.100.1");
  return {
    key: "kernel",
    label: "kernel router namespace",
    h1,
    h2,
    h2Dev: `tpfk${id}d`,
    samples: [],
  };
}

/** One UDP flood h1 → h2; received = h2's interface rx delta. */
async function udpFlood(
  s: Setup,
  o: Opts,
  pps: number,
  seconds: number,
): Promise<{ sent: number; recv: number; loss: number }> {
  const deno = Deno.execPath();
  const script = `${REPO}/bench/_netbench.ts`;
  const sink = s.h2.spawn([
    deno,
    "run",
    "--allow-ffi",
    script,
    "recv",
    H2_ADDR,
    String(UDP_PORT),
    "--sink",
    "--seconds",
    String(o.seconds + 15),
  ]);
  try {
    await sleep(300);
    const before = (await s.h2.linkStats(s.h2Dev)).rx_packets;
    const r = await s.h1.exec([
      deno,
      "run",
      "--allow-ffi",
      script,
      "send",
      H2_ADDR,
      String(UDP_PORT),
      "--seconds",
      String(seconds),
      "--count",
      String(o.floodCount),
      "--pps",
      String(pps),
    ], { timeoutMs: (seconds + 20) * 1000 });
    const sent = JSON.parse(r.stdout.trim().split("\n").pop()!) as FloodResult;
    await sleep(300); // let the router's queues drain
    const after = (await s.h2.linkStats(s.h2Dev)).rx_packets;
    const got = Math.min(after - before, sent.packets);
    return {
      sent: sent.pps,
      recv: got / sent.seconds,
      loss: sent.packets > 0 ? 100 * (1 - got / sent.packets) : NaN,
    };
  } finally {
    sink.kill("SIGTERM");
    await sink.wait(3000);
  }
}

async function iperfTcp(s: Setup, o: Opts, parallel: number): Promise<number> {
  const r = await s.h1.exec(
    ["iperf3", "-c", H2_ADDR, "-t", String(o.seconds), "-P", String(parallel), "-J"],
    { timeoutMs: (o.seconds + 25) * 1000, check: false },
  );
  try {
    return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
  } catch {
    console.error(
      `iperf3 -P ${parallel} failed on ${s.label}: ${r.stdout.slice(0, 500)}${r.stderr}`,
    );
    return NaN;
  }
}

async function measureRound(s: Setup, o: Opts): Promise<ForwardSample> {
  const ping = await s.h1.exec(["ping", "-n", "-c", "50", "-i", "0.01", "-w", "10", H2_ADDR], {
    check: false,
    timeoutMs: 15_000,
  });
  const rttMs = pingAvgMs(ping.stdout);
  const srv = s.h2.spawn(["iperf3", "-s", "-B", H2_ADDR]);
  let tcpGbps = NaN, tcpP2Gbps = NaN;
  try {
    await sleep(400);
    tcpGbps = await iperfTcp(s, o, 1);
    tcpP2Gbps = await iperfTcp(s, o, 2);
  } finally {
    srv.kill("SIGTERM");
    await srv.wait(3000);
  }
  const flood = await udpFlood(s, o, 0, o.seconds);
  const paced = [];
  for (const rate of o.udpRates) {
    const x = await udpFlood(s, o, rate, o.udpSeconds);
    paced.push({ rate, sentPps: x.sent, recvPps: x.recv, lossPct: x.loss });
  }
  const ok = paced.filter((p) => p.lossPct < 1).map((p) => p.rate);
  return {
    rttMs,
    tcpGbps,
    tcpP2Gbps,
    floodSentPps: flood.sent,
    floodRecvPps: flood.recv,
    floodLossPct: flood.loss,
    paced,
    losslessPps: ok.length ? Math.max(...ok) : 0,
  };
}

type Scalar = Exclude<keyof ForwardSample, "paced">;
const FIELDS: { key: Scalar; lower?: boolean }[] = [
  { key: "rttMs", lower: true },
  { key: "tcpGbps" },
  { key: "tcpP2Gbps" },
  { key: "floodSentPps" },
  { key: "floodRecvPps" },
  { key: "floodLossPct", lower: true },
  { key: "losslessPps" },
];

function summarize(s: Setup): Record<string, Spread> {
  const out: Record<string, Spread> = {};
  for (const f of FIELDS) out[f.key] = spread(s.samples.map((x) => x[f.key]), f.lower);
  const rates = s.samples[0]?.paced.map((p) => p.rate) ?? [];
  rates.forEach((rate, i) => {
    out[`paced${rate}RecvPps`] = spread(s.samples.map((x) => x.paced[i]?.recvPps ?? NaN));
    out[`paced${rate}LossPct`] = spread(s.samples.map((x) => x.paced[i]?.lossPct ?? NaN), true);
  });
  return out;
}

function table(setups: Setup[], o: Opts): string {
  const sums = new Map(setups.map((s) => [s.key, summarize(s)]));
  const k = sums.get("kernel");
  const cell = (sp: Spread, d: number) =>
    sp.samples.length > 1 ? `${fmt(sp.best, d)} (${fmt(sp.worst, d)})` : fmt(sp.best, d);
  const ratio = (a: Spread, b: Spread | undefined) => b === undefined ? "—" : fmt(a.best / b.best);
  const lines = [
    `Best of ${o.rounds} round(s), worst in parentheses; × kernel = best / kernel's best.`,
    "",
    "| setup | 64 B flood offered pps | recv pps at h2 | × kernel | loss % | " +
    "lossless pps (of the paced rates) | × kernel | TCP Gbit/s | × kernel | TCP -P 2 Gbit/s | " +
    "× kernel | RTT ms | × kernel |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
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
      } | ${cell(m.rttMs!, 3)} | ${ratio(m.rttMs!, k?.rttMs)} |`,
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
  if (kernel !== undefined) {
    // Ratios within one round (tapir and the kernel measured minutes apart
    // under the same background load): median [min–max] over the rounds.
    const keys: [Scalar, string][] = [
      ["floodRecvPps", "flood recv pps"],
      ["losslessPps", "lossless pps"],
      ["tcpGbps", "TCP"],
      ["tcpP2Gbps", "TCP -P 2"],
      ["rttMs", "RTT"],
    ];
    lines.push(
      "",
      "Paired ratios tapir / kernel, same round: median [min–max].",
      "",
      `| setup | ${keys.map((k) => k[1]).join(" | ")} |`,
      `|---|${keys.map(() => "---").join("|")}|`,
    );
    for (const s of setups) {
      if (s === kernel) continue;
      const cells = keys.map(([key]) => {
        const rs = s.samples.map((x, i) => x[key] / (kernel.samples[i]?.[key] ?? NaN))
          .filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
        if (rs.length === 0) return "—";
        return `${fmt(rs[rs.length >> 1]!)} [${fmt(rs[0]!)}–${fmt(rs[rs.length - 1]!)}]`;
      });
      lines.push(`| ${s.label} | ${cells.join(" | ")} |`);
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
      `Goals (tapir, offloads on): 64 B pps ≥ 0.5× kernel: ${fmt(pps)} ${
        pps >= 0.5 ? "met" : "NOT met"
      }; ` +
        `TCP ≥ 0.5× kernel: ${fmt(tcp)} ${tcp >= 0.5 ? "met" : "NOT met"}; ` +
        `RTT ≤ 4× kernel: ${fmt(rtt)} ${rtt <= 4 ? "met" : "NOT met"}.`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  if (Deno.uid() !== 0) {
    console.error("e2e_forward_bench needs root (network namespaces and TAP devices)");
    Deno.exit(1);
  }
  for (const tool of ["ip", "ping", "iperf3"]) {
    const r = await run(["sh", "-c", `command -v ${tool}`], { check: false });
    if (r.code !== 0) {
      console.error(`e2e_forward_bench needs ${tool}`);
      Deno.exit(1);
    }
  }
  const setups: Setup[] = [];
  const tapirStats: Record<string, unknown> = {};
  await withTopology("tpf-bench", async (topo) => {
    if (o.only.includes("tapir-on")) setups.push(await tapirSetup(topo, "tapir-on", true));
    if (o.only.includes("tapir-off")) setups.push(await tapirSetup(topo, "tapir-off", false));
    if (o.only.includes("kernel")) setups.push(await kernelSetup(topo));
    // Resolve neighbours everywhere before measuring.
    for (const s of setups) {
      await s.h1.exec(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", H2_ADDR], { check: false });
    }
    for (let round = 0; round < o.rounds; round++) {
      for (const s of setups) {
        const t0 = performance.now();
        const x = await measureRound(s, o);
        s.samples.push(x);
        console.error(
          `round ${round + 1} ${s.label} (${((performance.now() - t0) / 1000).toFixed(1)} s): ` +
            JSON.stringify(x),
        );
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
  });
  const meta = {
    date: new Date().toISOString(),
    nproc: navigator.hardwareConcurrency,
    cpu: await cpuModel(),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    seconds: o.seconds,
    rounds: o.rounds,
    udpPayloadBytes: 64,
    pacedRates: o.udpRates,
    pacedSeconds: o.udpSeconds,
    floodCount: o.floodCount,
  };
  console.log(
    `${meta.date}, ${meta.nproc} CPUs (${meta.cpu}), Linux ${meta.kernel}, Deno ${meta.deno}; ` +
      `iperf3 -t ${o.seconds}; UDP 64 B payload\n`,
  );
  console.log(table(setups, o));
  const json = JSON.stringify(
    {
      meta,
      results: setups.map((s) => ({
        setup: s.key,
        label: s.label,
        summary: summarize(s),
        samples: s.samples,
      })),
      tapirStats,
    },
    null,
    2,
  );
  console.log(json);
  if (o.out) Deno.writeTextFileSync(o.out, json + "\n");
}

if (import.meta.main) await main();
