/**
 * End-to-end DHCPv4 server benchmark (root only): ISC `perfdhcp` runs
 * 4-way exchanges (DISCOVER, OFFER, REQUEST, ACK; acting as a relay agent
 * on the LAN, as perfdhcp does) against tapir's server and against Kea's
 * `kea-dhcp4` (memfile leases) configured for the same pool, in the same
 * run, interleaved rounds. tapir runs on a TAP (its far end in the client
 * namespace), Kea on a veth pair; both keep their lease files in the same
 * directory on the same disk.
 *
 * The jobs differ in one way a user should know: tapir syncs its lease
 * journal to disk (`fdatasync`, one per burst of ACKs) before the ACKs
 * leave; Kea's memfile writes each lease but never syncs it. Both survive a
 * `kill -9`; only tapir's ACKed leases also survive a power cut.
 *
 * Per round and server: `perfdhcp -4 -r RATE -R CLIENTS -p SECONDS`; the
 * figure is perfdhcp's "Rate" (completed 4-way exchanges per second) and
 * the share of REQUESTs that got no ACK. It prints a markdown table (best
 * of the rounds, and the ratio tapir / Kea against the goal ≥ 1.0) and the
 * JSON; `--out FILE` writes the JSON to FILE.
 *
 *     deno task bench:dhcp [--rate 20000] [--clients 200] [--seconds 5] [--rounds 2] [--out FILE]
 *
 * Namespaces are `tpd-bench-<pid>-*`, deleted at the end (also on failure,
 * SIGINT or SIGTERM); Kea and tapir are stopped by PID; perfdhcp is
 * bounded by `-p` and a timeout; addresses are 192.0.2.0/24.
 *
 * @module
 */
import {
  moveTapToNs,
  type Netns,
  startTapir,
  type Tapir,
  type Topology,
  waitFor,
} from "../tests/e2e/harness.ts";
import { hasTool } from "../tests/tools.ts";
import {
  benchHeader,
  benchMeta,
  fmt,
  requireRoot,
  type Spread,
  spread,
  veth,
  withBenchTopology,
} from "./_netbench.ts";

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  return {
    rate: Number(opt("--rate", "20000")),
    clients: Number(opt("--clients", "200")),
    seconds: Number(opt("--seconds", "5")),
    rounds: Number(opt("--rounds", "2")),
    out: opt("--out", ""),
  };
}

/** What one perfdhcp run reports. */
export interface PerfdhcpRun {
  /** Completed 4-way exchanges per second. */
  rate: number;
  requestsSent: number;
  acksReceived: number;
  /** Replies the client's kernel dropped because perfdhcp's socket buffer was full. */
  clientRcvbufErrors?: number;
}

/** The Udp RcvbufErrors counter of a namespace (/proc/net/snmp). */
async function udpRcvbufErrors(ns: Netns): Promise<number> {
  const r = await ns.exec(["cat", "/proc/net/snmp"], { timeoutMs: 5000 });
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("Udp: "));
  const names = lines[0]!.split(/\s+/), values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf("RcvbufErrors")]);
}

/** Read perfdhcp's report: the rate line and the REQUEST-ACK statistics. */
export function parsePerfdhcp(out: string): PerfdhcpRun {
  const rate = /^Rate: ([\d.]+) 4-way exchanges\/second/m.exec(out);
  const ra = /Statistics for: REQUEST-ACK\*+\s*sent packets: (\d+)\s*received packets: (\d+)/m
    .exec(out);
  if (rate === null || ra === null) throw new Error(`perfdhcp printed no report:\n${out}`);
  return { rate: Number(rate[1]), requestsSent: Number(ra[1]), acksReceived: Number(ra[2]) };
}

const POOL_FIRST = "192.0.2.10";
const POOL_LAST = "192.0.2.249";

async function perfdhcp(client: Netns, o: ReturnType<typeof parseArgs>): Promise<PerfdhcpRun> {
  const r = await client.exec([
    "perfdhcp",
    "-4",
    "-r",
    String(o.rate),
    "-R",
    String(o.clients),
    "-p",
    String(o.seconds),
    "192.0.2.1",
  ], { check: false, timeoutMs: (o.seconds + 30) * 1000 });
  return parsePerfdhcp(r.stdout + r.stderr);
}

async function setUpTapir(topo: Topology, dir: string): Promise<{ c: Netns; tapir: Tapir }> {
  const s = await topo.netns("tapir");
  const c = await topo.netns("tapir-c");
  const tap = `tdb${Deno.pid % 100000}`;
  const tapir = await startTapir({
    ns: s,
    topo,
    config: `[router]\nhostname = "bench-dhcp"\n[[interface]]\nname = "lan0"\ntap = "${tap}"\n` +
      `addresses = ["192.0.2.1/24"]\n[interface.dhcp]\npools = ["${POOL_FIRST}-${POOL_LAST}"]\n` +
      `lease_time = "1h"\nlease_file = "${dir}/tapir.leases"\n` +
      // Kea probes nothing before an OFFER (its ping-check hook is off by default): the same job.
      `conflict_probe = "0s"\n`,
  });
  await moveTapToNs(tap, s, c, { address: "192.0.2.2/24" });
  return { c, tapir };
}

async function setUpKea(topo: Topology, dir: string): Promise<Netns> {
  const s = await topo.netns("kea");
  const c = await topo.netns("kea-c");
  await veth(s, "kea0", ["192.0.2.1/24"], c, "kea1", ["192.0.2.2/24"]);
  const conf = `${dir}/kea-dhcp4.conf`;
  Deno.writeTextFileSync(
    conf,
    JSON.stringify({
      Dhcp4: {
        "interfaces-config": { interfaces: ["kea0"] },
        "lease-database": { type: "memfile", persist: true, name: `${dir}/kea-leases4.csv` },
        "valid-lifetime": 3600,
        subnet4: [{
          id: 1,
          subnet: "192.0.2.0/24",
          pools: [{ pool: `${POOL_FIRST} - ${POOL_LAST}` }],
        }],
        loggers: [{
          name: "kea-dhcp4",
          output_options: [{ output: `${dir}/kea.log` }],
          severity: "WARN",
        }],
      },
    }),
  );
  s.spawn(["kea-dhcp4", "-c", conf], { KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir });
  // Ready once it answers one exchange.
  await waitFor("Kea to answer", async () => {
    // Ten exchanges a second for one second (perfdhcp -n 1 exits before the
    // OFFER can arrive).
    const r = await c.exec(["perfdhcp", "-4", "-r", "10", "-p", "1", "-R", "1", "192.0.2.1"], {
      check: false,
      timeoutMs: 10_000,
    });
    return /received packets: [1-9]/.test(r.stdout);
  }, 20_000);
  return c;
}

async function main(): Promise<number> {
  requireRoot("bench/e2e_dhcp_bench.ts");
  for (const tool of ["perfdhcp", "kea-dhcp4"]) {
    if (!hasTool(tool)) {
      console.error(`${tool} is missing (apt-get install kea-admin kea-dhcp4-server)`);
      return Deno.args.includes("--if-root") ? 0 : 1;
    }
  }
  const o = parseArgs(Deno.args);
  const loadStart = Deno.loadavg();
  const samples: Record<"tapir" | "kea", PerfdhcpRun[]> = { tapir: [], kea: [] };
  let serverStats: unknown = null;
  await withBenchTopology("tpd-bench", async (topo) => {
    const dir = topo.tempDir();
    const t = await setUpTapir(topo, dir);
    const clients = { tapir: t.c, kea: await setUpKea(topo, dir) };
    for (let round = 0; round < o.rounds; round++) {
      for (const who of ["tapir", "kea"] as const) {
        const before = await udpRcvbufErrors(clients[who]);
        const r = await perfdhcp(clients[who], o);
        r.clientRcvbufErrors = (await udpRcvbufErrors(clients[who])) - before;
        samples[who].push(r);
        console.error(`round ${round + 1} ${who}: ${fmt(r.rate, 0)} exchanges/s`);
      }
    }
    serverStats = await t.tapir.stats();
  });
  const meta = await benchMeta(loadStart);
  const best: Record<string, Spread> = {
    tapir: spread(samples.tapir.map((r) => r.rate)),
    kea: spread(samples.kea.map((r) => r.rate)),
  };
  const lost = (rs: PerfdhcpRun[]) =>
    Math.max(...rs.map((r) => 100 * (1 - r.acksReceived / Math.max(1, r.requestsSent))));
  const ratio = best.tapir!.best / best.kea!.best;
  console.log(benchHeader(
    meta,
    `perfdhcp -r ${o.rate} -R ${o.clients} -p ${o.seconds}, ${o.rounds} rounds`,
  ));
  console.log("");
  console.log(
    "| server | 4-way exchanges/s (best, worst) | REQUESTs without ACK (worst) | replies dropped by the client's socket buffer (worst) |",
  );
  console.log("|---|---|---|---|");
  for (const who of ["tapir", "kea"] as const) {
    console.log(
      `| ${who === "tapir" ? "tapir (journal fdatasync'd)" : "Kea memfile (no sync)"} | ${
        fmt(best[who]!.best, 0)
      } (${fmt(best[who]!.worst, 0)}) | ${fmt(lost(samples[who]), 2)} % | ${
        Math.max(...samples[who].map((r) => r.clientRcvbufErrors ?? 0))
      } |`,
    );
  }
  console.log(`| tapir / Kea | ${fmt(ratio)} (goal ≥ 1.0) | | |`);
  const json = { meta, options: o, samples, ratio, tapirStats: serverStats };
  console.log(JSON.stringify(json));
  if (o.out !== "") Deno.writeTextFileSync(o.out, JSON.stringify(json, null, 2));
  return 0;
}

if (import.meta.main) Deno.exit(await main());
