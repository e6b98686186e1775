/**
 * End-to-end benchmark of the TAP link (root only): bench/link_wire.ts as a
 * plain two-TAP wire between two namespaces, offloads on and off, against a
 * kernel veth pair and a kernel router namespace (ip_forward=1, two veth
 * pairs), all set up in the same run and measured in interleaved rounds.
 * Per setup and round: the mean RTT of `ping -c 50 -i 0.01`, iperf3 TCP
 * (`-t S`), and the 64-byte UDP flood of bench/_netbench.ts (FFI
 * `sendmmsg`), unpaced and paced at each of `--udp-rates`, counted on the
 * receiver's interface. Prints a markdown table (best of the rounds, ratios
 * to the kernel router and to the veth pair) and the JSON; `--out FILE` also
 * writes the JSON to FILE.
 *
 *     deno task bench:link [--seconds 5] [--rounds 2] [--udp-rates 50000,...] [--udp-seconds 3] [--warmup 20000] [--out FILE]
 *
 * Every namespace is `tpl-bench-<pid>-*` and is deleted at the end (also on
 * SIGINT or SIGTERM); every command has a timeout and the flood is bounded
 * in count and time.
 *
 * @module
 */
import { type Netns, startLinkWire, type Topology } from "../tests/e2e/harness.ts";
import {
  benchHeader,
  benchMeta,
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

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  return {
    seconds: Number(opt("--seconds", "5")),
    rounds: Number(opt("--rounds", "2")),
    udpRates: opt("--udp-rates", "50000,100000,150000,200000,300000").split(",").map(Number),
    udpSeconds: Number(opt("--udp-seconds", "3")),
    floodCount: Number(opt("--flood-count", "5000000")),
    /** Flood pings per setup before round 1 (0: only 3 pings to resolve neighbours). */
    warmup: Number(opt("--warmup", "20000")),
    out: opt("--out", ""),
  };
}
type Opts = ReturnType<typeof parseArgs>;

/** One round's figures of one setup. */
interface LinkSample {
  rttMs: number;
  tcpGbps: number;
  floodSentPps: number;
  floodRecvPps: number;
  paced: PacedRun[];
  losslessPps: number;
}

/** A path under test from `a` to `dst` in `b`. */
interface Setup {
  key: string;
  label: string;
  a: Netns;
  b: Netns;
  /** b's interface on the path (where arrivals are counted). */
  bDev: string;
  dst: string;
  samples: LinkSample[];
  stop?: () => Promise<unknown>;
}

const UDP_PORT = 9000;

async function setups(topo: Topology): Promise<Setup[]> {
  const out: Setup[] = [];
  for (const offload of [true, false]) {
    const wire = await startLinkWire(topo, { offload, tag: offload ? "o" : "n" });
    out.push({
      key: offload ? "wire-on" : "wire-off",
      label: `tapir TAP wire, offloads ${offload ? "on" : "off"}`,
      a: wire.a,
      b: wire.b,
      bDev: wire.tapB,
      dst: "192.0.2.2",
      samples: [],
      stop: async () => console.error(JSON.stringify((await wire.stop()).stats)),
    });
  }
  const va = await topo.netns("va"), vb = await topo.netns("vb");
  await veth(va, "tplvpa", ["192.0.2.1/24"], vb, "tplvpb", ["192.0.2.2/24"]);
  out.push({
    key: "veth",
    label: "kernel veth pair",
    a: va,
    b: vb,
    bDev: "tplvpb",
    dst: "192.0.2.2",
    samples: [],
  });
  const ra = await topo.netns("ra"), rr = await topo.netns("rr"), rb = await topo.netns("rb");
  await veth(ra, "tplvxa", ["192.0.2.2/24"], rr, "tplvxb", ["192.0.2.1/24"]);
  await veth(rr, "tplvya", ["198.51.100.1/24"], rb, "tplvyb", ["198.51.100.2/24"]);
  await rr.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await ra.ip("route", "add", "default", "via", "192.0.2.1");
  await rb.ip("route", "add", "default", "via", "198.51.100.1");
  out.push({
    key: "router",
    label: "kernel router namespace",
    a: ra,
    b: rb,
    bDev: "tplvyb",
    dst: "198.51.100.2",
    samples: [],
  });
  return out;
}

async function measureRound(s: Setup, o: Opts): Promise<LinkSample> {
  const rttMs = await pingRttMs(s.a, s.dst);
  const srv = s.b.spawn(["iperf3", "-s", "-B", s.dst]);
  let tcpGbps = NaN;
  try {
    await sleep(400);
    tcpGbps = await iperfTcpGbps(s.a, s.dst, o.seconds);
  } finally {
    srv.kill("SIGTERM");
    await srv.wait(3000);
  }
  const flood = (pps: number, seconds: number) =>
    udpFlood(s.a, s.b, s.bDev, { dst: s.dst, port: UDP_PORT, pps, seconds, count: o.floodCount });
  const f = await flood(0, o.seconds);
  const paced = await pacedSweep(flood, o.udpRates, o.udpSeconds);
  return {
    rttMs,
    tcpGbps,
    floodSentPps: f.sent,
    floodRecvPps: f.recv,
    paced,
    losslessPps: losslessPps(paced),
  };
}

type Field = Exclude<keyof LinkSample, "paced">;

function table(all: Setup[], o: Opts): string {
  const sum = (s: Setup, k: Field, lower = false): Spread =>
    spread(s.samples.map((x) => x[k]), lower);
  const router = all.find((s) => s.key === "router")!;
  const veth = all.find((s) => s.key === "veth")!;
  const cell = (sp: Spread, d: number) =>
    sp.samples.length > 1 ? `${fmt(sp.best, d)} (${fmt(sp.worst, d)})` : fmt(sp.best, d);
  const lines = [
    `Best of ${o.rounds} round(s), worst in parentheses; ratios are best / best.`,
    "",
    "| setup | TCP Gbit/s | × router | × veth | 64 B flood recv pps | × router | × veth | " +
    "lossless pps | × router | RTT ms | × router |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const s of all) {
    const tcp = sum(s, "tcpGbps"), fl = sum(s, "floodRecvPps"), ll = sum(s, "losslessPps");
    const rtt = sum(s, "rttMs", true);
    const r = (x: Spread, k: Field, base: Setup, lower = false) =>
      fmt(x.best / sum(base, k, lower).best);
    lines.push(
      `| ${s.label} | ${cell(tcp, 2)} | ${r(tcp, "tcpGbps", router)} | ${
        r(tcp, "tcpGbps", veth)
      } | ${cell(fl, 0)} | ${r(fl, "floodRecvPps", router)} | ${r(fl, "floodRecvPps", veth)} | ${
        cell(ll, 0)
      } | ${r(ll, "losslessPps", router)} | ${cell(rtt, 3)} | ${r(rtt, "rttMs", router, true)} |`,
    );
  }
  lines.push(
    "",
    "Paced 64 B UDP: received pps (loss %), best round.",
    "",
    `| setup | ${o.udpRates.map((r) => `${r} pps`).join(" | ")} |`,
    `|---|${o.udpRates.map(() => "---").join("|")}|`,
  );
  for (const s of all) {
    const cells = o.udpRates.map((_, i) => {
      const runs = s.samples.map((x) => x.paced[i]!).filter((p) => p !== undefined);
      const best = runs.reduce((a, b) => (b.recvPps > a.recvPps ? b : a), runs[0]!);
      return best === undefined ? "—" : `${fmt(best.recvPps, 0)} (${fmt(best.lossPct, 1)})`;
    });
    lines.push(`| ${s.label} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  requireRoot("e2e_link_bench");
  const o = parseArgs(Deno.args);
  let all: Setup[] = [];
  const loadStart = Deno.loadavg();
  await withBenchTopology("tpl-bench", async (topo) => {
    all = await setups(topo);
    for (const s of all) await warmUp(s.a, s.dst, o.warmup);
    for (let round = 0; round < o.rounds; round++) {
      for (const s of all) {
        const t0 = performance.now();
        const x = await measureRound(s, o);
        s.samples.push(x);
        console.error(
          `round ${round + 1} ${s.label} (${((performance.now() - t0) / 1000).toFixed(1)} s): ` +
            JSON.stringify(x),
        );
      }
    }
    for (const s of all) await s.stop?.();
  });
  const meta = {
    ...(await benchMeta(loadStart)),
    seconds: o.seconds,
    rounds: o.rounds,
    warmupFloodPings: o.warmup,
    pacedRates: o.udpRates,
    pacedSeconds: o.udpSeconds,
  };
  console.log(benchHeader(meta, `iperf3 -t ${o.seconds}; UDP 64 B payload\n`));
  console.log(table(all, o));
  const json = JSON.stringify(
    { meta, results: all.map((s) => ({ setup: s.key, label: s.label, samples: s.samples })) },
    null,
    2,
  );
  console.log(json);
  if (o.out) Deno.writeTextFileSync(o.out, json + "\n");
}

// Only when run directly: `deno bench bench/` loads every *_bench.ts file.
if (import.meta.main) await main();
