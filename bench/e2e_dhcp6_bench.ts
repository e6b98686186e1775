/**
 * End-to-end DHCPv6 server benchmark (root only): ISC `perfdhcp -6` runs
 * 4-way exchanges (SOLICIT, ADVERTISE, REQUEST, REPLY; one IA_NA each, sent
 * from its interface's link-local address to ff02::1:2, as clients on the
 * link do, not as a relay) against tapir's `[interface.dhcp6]` server and
 * against Kea's `kea-dhcp6` (memfile leases) configured for the same pool
 * and lifetimes, in the same run, interleaved rounds. tapir runs on a TAP
 * (its far end in the client namespace), Kea on a veth pair; both keep
 * their lease files in the same directory on the same disk.
 *
 * The jobs differ in one way a user should know: tapir syncs its lease
 * journal to disk (`fdatasync`, one per burst of REPLYs) before the REPLYs
 * leave; Kea's memfile writes each lease but never syncs it. Both survive a
 * `kill -9`; only tapir's granted leases also survive a power cut.
 *
 * Before the rounds each server must complete exchanges at a low rate
 * (`perfdhcp -6 -l IF -r 10 -R 10 -p 3`) while tcpdump captures the client
 * side; when one completes none, the capture and tapir's DHCPv6 counters
 * are printed and the run fails.
 *
 * Per round and server: `perfdhcp -6 -l IF -r RATE -R CLIENTS -p SECONDS`;
 * the figure is perfdhcp's "Rate" (completed 4-way exchanges per second)
 * and the share of REQUESTs that got no REPLY; beside them, where replies
 * and requests were lost (perfdhcp's socket buffer; the TAP's queue into
 * tapir, Kea's socket buffer). It prints a markdown table
 * (best of the rounds, and the ratio tapir / Kea against the goal ≥ 1.0)
 * and the JSON (with tapir's `tapir_dhcp6_server_*` counters); `--out
 * FILE` writes the JSON to FILE.
 *
 *     deno task bench:dhcp6 [--rate 20000] [--clients 200] [--seconds 5] [--rounds 2] [--out FILE]
 *
 * Namespaces are `tpd6-bench-<pid>-*`, deleted at the end (also on
 * failure, SIGINT or SIGTERM); Kea, tapir and tcpdump are stopped by PID;
 * perfdhcp is bounded by `-p` and a timeout; addresses are the servers'
 * 2001:db8:1::1/64 and the pool 2001:db8:1::1000-ffff (the clients have
 * only their link-local addresses).
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
  sleep,
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

type Options = ReturnType<typeof parseArgs>;

/** What one perfdhcp -6 run reports. */
export interface Perfdhcp6Run {
  /** Completed 4-way exchanges per second. */
  rate: number;
  solicitsSent: number;
  advertisesReceived: number;
  requestsSent: number;
  repliesReceived: number;
  /** Replies the client's kernel dropped because perfdhcp's socket buffer was full. */
  clientRcvbufErrors?: number;
  /** Client messages lost before the server read them (see {@link Side}). */
  serverInboundDrops?: number;
}

/** The Udp6RcvbufErrors counter of a namespace (/proc/net/snmp6). */
async function udp6RcvbufErrors(ns: Netns): Promise<number> {
  const r = await ns.exec(["cat", "/proc/net/snmp6"], { timeoutMs: 5000 });
  const m = /^Udp6RcvbufErrors\s+(\d+)/m.exec(r.stdout);
  return m ? Number(m[1]) : NaN;
}

/** Read perfdhcp -6's report: the rate line and the SOLICIT-ADVERTISE and REQUEST-REPLY statistics. */
export function parsePerfdhcp6(out: string): Perfdhcp6Run {
  const rate = /^Rate: ([\d.]+) 4-way exchanges\/second/m.exec(out);
  const stat = (name: string) =>
    new RegExp(
      `Statistics for: ${name}\\*+\\s*sent packets: (\\d+)\\s*received packets: (\\d+)`,
      "m",
    )
      .exec(out);
  const sa = stat("SOLICIT-ADVERTISE"), rr = stat("REQUEST-REPLY");
  if (rate === null || sa === null || rr === null) {
    throw new Error(`perfdhcp printed no report:\n${out}`);
  }
  return {
    rate: Number(rate[1]),
    solicitsSent: Number(sa[1]),
    advertisesReceived: Number(sa[2]),
    requestsSent: Number(rr[1]),
    repliesReceived: Number(rr[2]),
  };
}

const SERVER = "2001:db8:1::1";
const POOL_FIRST = "2001:db8:1::1000";
const POOL_LAST = "2001:db8:1::ffff";
/** Seconds; tapir's T1 / T2 are 0.5 / 0.8 of the preferred lifetime, Kea is given the same. */
const PREFERRED = 3600;
const VALID = 7200;
const METRICS = "127.0.0.1:9436";

/**
 * One server under test: the client namespace, the interface perfdhcp sends
 * from, and a counter of client messages lost before the server read them
 * (tapir: frames the client's kernel dropped at the TAP's queue; Kea: its
 * socket's receive buffer overflows).
 */
interface Side {
  c: Netns;
  dev: string;
  inboundDrops: () => Promise<number>;
}

/** The tx dropped counter of `dev` in `ns` (`ip -s -j link`). */
async function txDropped(ns: Netns, dev: string): Promise<number> {
  const r = await ns.ip("-s", "-j", "link", "show", "dev", dev);
  return Number(JSON.parse(r.stdout)[0].stats64.tx.dropped);
}

function perfdhcpArgs(dev: string, rate: number, clients: number, seconds: number): string[] {
  return ["perfdhcp", "-6", "-l", dev, "-r", String(rate), "-R", String(clients)]
    .concat(["-p", String(seconds)]);
}

async function perfdhcp(side: Side, o: Options): Promise<Perfdhcp6Run> {
  const r = await side.c.exec(perfdhcpArgs(side.dev, o.rate, o.clients, o.seconds), {
    check: false,
    timeoutMs: (o.seconds + 30) * 1000,
  });
  return parsePerfdhcp6(r.stdout + r.stderr);
}

/** No DAD in `ns` (link-local addresses usable at once, as `nodad` for the global ones). */
async function noDad(ns: Netns): Promise<void> {
  for (const k of ["all", "default"]) {
    await ns.exec(["sysctl", "-q", "-w", `net.ipv6.conf.${k}.accept_dad=0`], { timeoutMs: 5000 });
  }
}

async function setUpTapir(
  topo: Topology,
  dir: string,
): Promise<{ side: Side; s: Netns; tapir: Tapir }> {
  const s = await topo.netns("tapir");
  const c = await topo.netns("tapir-c");
  await noDad(c);
  const tap = `td6b${Deno.pid % 100000}`;
  const tapir = await startTapir({
    ns: s,
    topo,
    config: `[router]\nhostname = "bench-dhcp6"\n[metrics]\nlisten = "${METRICS}"\n` +
      `[[interface]]\nname = "lan0"\ntap = "${tap}"\naddresses = ["${SERVER}/64"]\n` +
      `[interface.dhcp6]\npools = ["${POOL_FIRST}-${POOL_LAST}"]\n` +
      `preferred_lifetime = "${PREFERRED}s"\nvalid_lifetime = "${VALID}s"\n` +
      `lease_file = "${dir}/tapir.dhcp6.leases"\n`,
  });
  // No global address on the client side: perfdhcp sends from the link-local one, as clients do.
  await moveTapToNs(tap, s, c);
  return { side: { c, dev: tap, inboundDrops: () => txDropped(c, tap) }, s, tapir };
}

async function setUpKea(topo: Topology, dir: string): Promise<Side> {
  const s = await topo.netns("kea");
  const c = await topo.netns("kea-c");
  await noDad(s);
  await noDad(c);
  await veth(s, "kea0", [`${SERVER}/64`], c, "kea1", []);
  const conf = `${dir}/kea-dhcp6.conf`;
  Deno.writeTextFileSync(
    conf,
    JSON.stringify({
      Dhcp6: {
        "interfaces-config": { interfaces: ["kea0"] },
        "data-directory": dir,
        "lease-database": { type: "memfile", persist: true, name: `${dir}/kea-leases6.csv` },
        "preferred-lifetime": PREFERRED,
        "valid-lifetime": VALID,
        "renew-timer": PREFERRED * 0.5,
        "rebind-timer": PREFERRED * 0.8,
        subnet6: [{
          id: 1,
          subnet: "2001:db8:1::/64",
          interface: "kea0",
          "rapid-commit": false,
          pools: [{ pool: `${POOL_FIRST} - ${POOL_LAST}` }],
        }],
        loggers: [{
          name: "kea-dhcp6",
          output_options: [{ output: `${dir}/kea.log` }],
          severity: "WARN",
        }],
      },
    }),
  );
  s.spawn(["kea-dhcp6", "-c", conf], { KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir });
  return { c, dev: "kea1", inboundDrops: () => udp6RcvbufErrors(s) };
}

/**
 * Wait (at most 20 s) until a server answers one exchange, ten a second for
 * one second per try; a server that never does is left to {@link probe},
 * which says why.
 */
async function waitAnswers(who: string, side: Side): Promise<void> {
  await waitFor(`${who} to answer`, async () => {
    const r = await side.c.exec(perfdhcpArgs(side.dev, 10, 1, 1), {
      check: false,
      timeoutMs: 10_000,
    });
    return /REQUEST-REPLY\*+\s*sent packets: \d+\s*received packets: [1-9]/.test(r.stdout);
  }, 20_000).catch(() => {});
}

/** tapir's `tapir_dhcp6_server_*` counters (from its metrics endpoint), by metric name. */
async function tapirDhcp6Counters(s: Netns): Promise<Record<string, number>> {
  const r = await s.exec(["curl", "-sS", "--max-time", "5", `http://${METRICS}/metrics`], {
    check: false,
    timeoutMs: 10_000,
  });
  const out: Record<string, number> = {};
  for (const line of r.stdout.split("\n")) {
    const m = /^(tapir_dhcp6_(?:server_\w+|leases)(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/**
 * The low-rate check: `perfdhcp -6 -l IF -r 10 -R 10 -p 3` with tcpdump on
 * the client side. Throws, printing the capture (and `extra`), when no
 * exchange completes.
 */
async function probe(
  who: string,
  side: Side,
  dir: string,
  extra: () => Promise<string>,
): Promise<Perfdhcp6Run> {
  const pcap = `${dir}/probe-${who}.pcap`;
  const dump = side.c.spawn(
    ["tcpdump", "-i", side.dev, "-nn", "-U", "-c", "2000", "-w", pcap, "ip6"],
  );
  await sleep(500);
  let r: Perfdhcp6Run;
  let text = "";
  try {
    const p = await side.c.exec(perfdhcpArgs(side.dev, 10, 10, 3), {
      check: false,
      timeoutMs: 30_000,
    });
    text = p.stdout + p.stderr;
    r = parsePerfdhcp6(text);
  } catch (e) {
    r = { rate: 0, solicitsSent: 0, advertisesReceived: 0, requestsSent: 0, repliesReceived: 0 };
    text += `\n${e instanceof Error ? e.message : e}`;
  } finally {
    await sleep(300);
    dump.kill("SIGTERM");
    await dump.wait(3000);
  }
  console.error(
    `probe ${who}: ${r.advertisesReceived}/${r.solicitsSent} ADVERTISE, ` +
      `${r.repliesReceived}/${r.requestsSent} REPLY, ${fmt(r.rate, 1)} exchanges/s`,
  );
  if (r.repliesReceived > 0) return r;
  const decoded = await side.c.exec(["tcpdump", "-r", pcap, "-nn", "-v", "-c", "60"], {
    check: false,
    timeoutMs: 10_000,
  });
  throw new Error(
    `${who} completed no DHCPv6 exchange at 10/s.\nperfdhcp:\n${text}\n` +
      `capture on ${side.dev} (client side):\n${decoded.stdout}${decoded.stderr}\n${await extra()}`,
  );
}

async function main(): Promise<number> {
  requireRoot("bench/e2e_dhcp6_bench.ts");
  for (const tool of ["perfdhcp", "kea-dhcp6", "tcpdump", "curl"]) {
    if (!hasTool(tool)) {
      console.error(`${tool} is missing (apt-get install kea-admin kea-dhcp6-server tcpdump curl)`);
      return Deno.args.includes("--if-root") ? 0 : 1;
    }
  }
  const o = parseArgs(Deno.args);
  const loadStart = Deno.loadavg();
  const samples: Record<"tapir" | "kea", Perfdhcp6Run[]> = { tapir: [], kea: [] };
  const probes: Record<string, Perfdhcp6Run> = {};
  let counters: Record<string, number> = {};
  await withBenchTopology("tpd6-bench", async (topo) => {
    const dir = topo.tempDir();
    const t = await setUpTapir(topo, dir);
    const sides = { tapir: t.side, kea: await setUpKea(topo, dir) };
    await waitAnswers("tapir", sides.tapir);
    await waitAnswers("Kea", sides.kea);
    probes.tapir = await probe(
      "tapir",
      sides.tapir,
      dir,
      async () =>
        `tapir's DHCPv6 counters: ${JSON.stringify(await tapirDhcp6Counters(t.s))}\n` +
        `tapir's neighbors: ${
          JSON.stringify((await t.tapir.stats() as unknown as Record<string, unknown>).neighbors)
        }`,
    );
    probes.kea = await probe("kea", sides.kea, dir, async () => {
      try {
        return `kea.log:\n${await Deno.readTextFile(`${dir}/kea.log`)}`;
      } catch {
        return "no kea.log";
      }
    });
    for (let round = 0; round < o.rounds; round++) {
      for (const who of ["tapir", "kea"] as const) {
        const before = await udp6RcvbufErrors(sides[who].c);
        const inBefore = await sides[who].inboundDrops();
        const r = await perfdhcp(sides[who], o);
        r.clientRcvbufErrors = (await udp6RcvbufErrors(sides[who].c)) - before;
        r.serverInboundDrops = (await sides[who].inboundDrops()) - inBefore;
        samples[who].push(r);
        console.error(
          `round ${round + 1} ${who}: ${fmt(r.rate, 0)} exchanges/s, ` +
            `${r.repliesReceived}/${r.requestsSent} REPLY`,
        );
      }
    }
    counters = await tapirDhcp6Counters(t.s);
  });
  const meta = await benchMeta(loadStart);
  const best: Record<string, Spread> = {
    tapir: spread(samples.tapir.map((r) => r.rate)),
    kea: spread(samples.kea.map((r) => r.rate)),
  };
  const lost = (rs: Perfdhcp6Run[]) =>
    Math.max(...rs.map((r) => 100 * (1 - r.repliesReceived / Math.max(1, r.requestsSent))));
  const ratio = best.tapir!.best / best.kea!.best;
  console.log(benchHeader(
    meta,
    `perfdhcp -6 -r ${o.rate} -R ${o.clients} -p ${o.seconds}, ${o.rounds} rounds`,
  ));
  console.log("");
  console.log(
    "| server | 4-way exchanges/s (best, worst) | REQUESTs without REPLY (worst) | replies dropped by the client's socket buffer (worst) | client messages dropped before the server read them (worst) |",
  );
  console.log("|---|---|---|---|---|");
  for (const who of ["tapir", "kea"] as const) {
    console.log(
      `| ${who === "tapir" ? "tapir (journal fdatasync'd)" : "Kea memfile (no sync)"} | ${
        fmt(best[who]!.best, 0)
      } (${fmt(best[who]!.worst, 0)}) | ${fmt(lost(samples[who]), 2)} % | ${
        Math.max(...samples[who].map((r) => r.clientRcvbufErrors ?? 0))
      } | ${Math.max(...samples[who].map((r) => r.serverInboundDrops ?? 0))} |`,
    );
  }
  console.log(`| tapir / Kea | ${fmt(ratio)} (goal ≥ 1.0) | | | |`);
  const json = { meta, options: o, probes, samples, ratio, tapirDhcp6Counters: counters };
  console.log(JSON.stringify(json));
  if (o.out !== "") Deno.writeTextFileSync(o.out, JSON.stringify(json, null, 2));
  return 0;
}

if (import.meta.main) Deno.exit(await main());
