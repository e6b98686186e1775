/**
 * End-to-end benchmark of the TAP link (root only): bench/link_wire.ts as a
 * plain two-TAP wire between two namespaces, offloads on and off, against a
 * kernel veth pair and a kernel router namespace (ip_forward=1, two veth
 * pairs), in the same run. iperf3 TCP (-t 5), 64-byte UDP at a bounded
 * rate (received pps and loss), and ping RTT. Prints a markdown table and
 * the JSON; `--out FILE` also writes the JSON to FILE.
 *
 *     deno run -A bench/e2e_link_bench.ts [--seconds 5] [--udp-pps 150000] [--out FILE]
 *
 * Every namespace is `tpl-bench-<pid>-*` and is deleted at the end.
 *
 * @module
 */
import {
  type Netns,
  run,
  startLinkWire,
  type Topology,
  withTopology,
} from "../tests/e2e/harness.ts";
import { type LinkResult, measure as measureLink } from "./_netbench.ts";

const args = Deno.args;
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
};
const SECONDS = Number(opt("--seconds", "5"));
const UDP_PPS = Number(opt("--udp-pps", "150000"));
const OUT = opt("--out", "");

type Result = LinkResult;

function measure(setup: string, client: Netns, server: Netns, dst: string): Promise<Result> {
  return measureLink(setup, client, server, dst, { seconds: SECONDS, udpPps: UDP_PPS });
}

async function veth(topo: Topology, a: Netns, b: Netns, n: string, aAddr: string, bAddr: string) {
  await run([
    "ip",
    "link",
    "add",
    `tplv${n}a`,
    "netns",
    a.name,
    "type",
    "veth",
    "peer",
    "name",
    `tplv${n}b`,
    "netns",
    b.name,
  ]);
  await a.ip("addr", "add", aAddr, "dev", `tplv${n}a`);
  await b.ip("addr", "add", bAddr, "dev", `tplv${n}b`);
  await a.ip("link", "set", `tplv${n}a`, "up");
  await b.ip("link", "set", `tplv${n}b`, "up");
  void topo;
}

async function main(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.error("e2e_link_bench needs root (network namespaces and TAP devices)");
    // `deno task bench` passes --if-root: without root it is a skip, not a failure.
    Deno.exit(Deno.args.includes("--if-root") ? 0 : 1);
  }
  const results: Result[] = [];
  await withTopology("tpl-bench", async (topo) => {
    for (const offload of [true, false]) {
      const wire = await startLinkWire(topo, { offload, tag: offload ? "o" : "n" });
      try {
        results.push(
          await measure(
            `tapir TAP wire, offloads ${offload ? "on" : "off"}`,
            wire.a,
            wire.b,
            "192.0.2.2",
          ),
        );
      } finally {
        const { stats } = await wire.stop();
        console.error(JSON.stringify(stats));
      }
    }
    const va = await topo.netns("va"), vb = await topo.netns("vb");
    await veth(topo, va, vb, "p", "192.0.2.1/24", "192.0.2.2/24");
    results.push(await measure("kernel veth pair", va, vb, "192.0.2.2"));

    const ra = await topo.netns("ra"), rr = await topo.netns("rr"), rb = await topo.netns("rb");
    await veth(topo, ra, rr, "x", "192.0.2.2/24", "192.0.2.1/24");
    await veth(topo, rr, rb, "y", "198.51.100.1/24", "198.51.100.2/24");
    await rr.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await ra.ip("route", "add", "default", "via", "192.0.2.1");
    await rb.ip("route", "add", "default", "via", "198.51.100.1");
    results.push(await measure("kernel router namespace", ra, rb, "198.51.100.2"));
  });

  const router = results.find((r) => r.setup.startsWith("kernel router"))!;
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const meta = {
    date: new Date().toISOString(),
    nproc: navigator.hardwareConcurrency,
    cpu,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    seconds: SECONDS,
    udpOfferedPps: UDP_PPS,
  };
  const f = (n: number, d = 2) => Number.isFinite(n) ? n.toFixed(d) : "—";
  const lines = [
    `${meta.date}, ${meta.nproc} CPUs (${cpu}), Linux ${meta.kernel}, Deno ${meta.deno}; ` +
    `iperf3 -t ${SECONDS}; UDP 64 B offered at ${UDP_PPS} pps`,
    "",
    "| setup | TCP Gbit/s | × router | UDP 64 B recv pps | × router | UDP loss % | RTT ms |",
    "|---|---|---|---|---|---|---|",
    ...results.map((r) =>
      `| ${r.setup} | ${f(r.tcpGbps)} | ${f(r.tcpGbps / router.tcpGbps)} | ${
        f(r.udpRecvPps, 0)
      } | ${f(r.udpRecvPps / router.udpRecvPps)} | ${f(r.udpLossPct, 1)} | ${f(r.rttMs, 3)} |`
    ),
  ];
  console.log(lines.join("\n"));
  const json = JSON.stringify({ meta, results }, null, 2);
  console.log(json);
  if (OUT) Deno.writeTextFileSync(OUT, json + "\n");
}

// Only when run directly: `deno bench bench/` loads every *_bench.ts file.
if (import.meta.main) await main();
