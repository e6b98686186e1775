/**
 * The firewall at scale, end to end over TAP (root only; issue #15's "what
 * it must show"): the topology of bench/e2e_forward_bench.ts — host
 * namespaces h1 and h2 with tapir (offloads on) between them, and a kernel
 * router namespace beside it — measured in one run with these rule sets in
 * the router's forward chain (policy DROP; the same rules in tapir's shared
 * `[firewall.filter]` and, for the kernel, through iptables-restore and
 * ip6tables-restore):
 *
 * | config  | forward chain                                                                         |
 * | ------- | ------------------------------------------------------------------------------------- |
 * | plain   | tapir: no `[firewall]` at all (a second tapir); kernel: no rules, policy ACCEPT       |
 * | nat100  | conntrack + MASQUERADE on wan0 (both families) + 100 rules: 98 `-p tcp --dport` DROP, ESTABLISHED, lan0 → wan0 (bench/firewall_bench.ts's) |
 * | 0       | ESTABLISHED,RELATED ACCEPT, `-i lan0 -o wan0 -j ACCEPT`                                |
 * | 1k, 10k, 100k | N rules of bench/_firewall_rules.ts's `scaleRules` (addresses, prefixes and ports of both families, interfaces) in front of those two |
 * | set1M   | one `-m set --match-set big src -j DROP` over a hash:ip set of 1M IPv4 addresses in front (tapir: `[firewall.sets.big]` entries; kernel: ipset) — IPv4 only |
 *
 * None of the rules matches the measured flows. Tapir moves from config to
 * config by `tapir reload` (the control socket's `reload`, timed), the
 * kernel by `nft flush ruleset` (nft backend; the legacy backend restores
 * empty tables instead) and iptables-restore (timed). Per config, family
 * and router: the median RTT of `ping -c 100 -i 0.01` (the mean too, in
 * the JSON and the goal lines), iperf3 TCP Gbit/s
 * (`-t S`) and the received rate of the unpaced 64-byte UDP flood of
 * bench/_netbench.ts (`--flood-seconds`), all h1 → h2. Rounds go over every
 * config in order; the figures are the best of the rounds, and each ratio
 * to a reference (0 rules; for nat100, plain) is taken within a round
 * (median [min–max] over the rounds), so that a change in the machine's
 * background load between rounds does not show as a cost.
 *
 * The RTT goal is judged on a paired RTT instead of those single series:
 * per config, family and round, `--rtt-series` series of `ping -c 100 -i
 * 0.01` alternate between the config's tapir and a second tapir that holds
 * the reference (a third tapir keeping 0 rules; for nat100 the one without
 * a firewall), with both tapirs pinned to one CPU and ping to another
 * (`--rtt-pin`), and the ratio of the medians of all replies is the
 * figure. The reference tapir first carries the same iperf3 and flood as
 * the config's (a tapir that has just forwarded traffic answers faster than
 * one that sat idle). The 0-rule config is paired with its twin too, which
 * shows the estimate's own noise in every run.
 *
 * Before the rounds, the load time: `tapir run` from spawn until its TAPs
 * and control socket are up (the firewall compiled before either), with 0
 * and with 100k rules, `--load-runs` times each, in throwaway namespaces.
 * After 100k is measured, one more timed reload with one of the 100k rules
 * changed (what an edit costs).
 *
 * Goals (#15): 1k/10k/100k and set1M give ≥ 0.8 of the 0-rule pps and TCP
 * and an RTT ≤ 1.25 × (0.8 of the speed) of 0 rules; nat100 ≥ 0.8 of plain
 * (costs ≤ 20 %); load and reload of 100k rules < 2 s.
 *
 *     deno task bench:firewall [--family 4|6|both] [--rounds 2] [--seconds 3] [--flood-seconds 2] [--warmup 10000] [--configs plain,nat100,0,1k,10k,100k,set1M] [--iptables nft|legacy] [--load-runs 3] [--rtt-series 8] [--rtt-pin auto|off|T:P] [--out FILE]
 *
 * Every namespace is `tpw-bench-<pid>-*`, deleted at the end (also on
 * failure, SIGINT or SIGTERM); every command has a timeout; the flood is
 * bounded in count and time; all traffic stays between these namespaces
 * (documentation ranges; the rules name 10.0.0.0/8 and fd00::/8).
 *
 * @module
 */
import { queryControl } from "../cmd/control.ts";
import { run, startTapir, type Topology } from "../tests/e2e/harness.ts";
import {
  type Family,
  kernelSetup,
  NET,
  type Setup,
  tapirSetup,
  waitDad,
} from "./e2e_forward_bench.ts";
import { scaleRules } from "./_firewall_rules.ts";
import {
  benchHeader,
  benchMeta,
  fmt,
  iperfTcpGbps,
  median,
  pingRttSamplesMs,
  pingRttStatsMs,
  requireRoot,
  sleep,
  type Spread,
  spread,
  udpFlood,
  warmUp,
  withBenchTopology,
} from "./_netbench.ts";
import { formatIpv4 } from "../stack/wire/mod.ts";

/** One measurement of one router, config and family. */
export interface FirewallSample {
  /** Median RTT of `ping -c 100 -i 0.01`, ms. */
  rttMs: number;
  /** Their mean, ms. */
  rttMeanMs: number;
  /** iperf3 TCP, received Gbit/s. */
  tcpGbps: number;
  /** Unpaced 64 B UDP flood: datagrams/s received at h2's interface. */
  pps: number;
  /** Per cent of the flood that did not arrive. */
  lossPct: number;
  /** tapir's CPU time per datagram of the flood, µs (NaN for the kernel router). */
  cpuUsPerPacket: number;
}

/** A rule set as both routers get it. */
interface FirewallConfig {
  key: string;
  label: string;
  families: Family[];
  /** Measured on the tapir without a firewall instead of the reloaded one. */
  plain?: boolean;
  /** tapir's `[firewall...]` TOML (appended to the interfaces). */
  toml: () => string;
  /** The kernel's rules: iptables-restore input per family. */
  kernel: (fam: Family, lan: string, wan: string) => string;
  /** Entries of the kernel's ipset `big` (hash:ip, inet) the rules need. */
  ipset?: number;
}

const UDP_PORT = 9000;
const SET_SIZE = 1_000_000;
const CONFIG_KEYS = ["plain", "nat100", "0", "1k", "10k", "100k", "set1M"];

function parseArgs(args: string[]) {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  const family = opt("--family", "both");
  if (!["4", "6", "both"].includes(family)) throw new Error(`--family 4|6|both, not ${family}`);
  const iptables = opt("--iptables", "nft");
  if (iptables !== "nft" && iptables !== "legacy") {
    throw new Error(`--iptables nft|legacy, not ${iptables}`);
  }
  const configs = opt("--configs", CONFIG_KEYS.join(",")).split(",");
  for (const c of configs) {
    if (!CONFIG_KEYS.includes(c)) throw new Error(`--configs: no config ${c}`);
  }
  return {
    families: (family === "both" ? [4, 6] : [Number(family)]) as Family[],
    rounds: Number(opt("--rounds", "2")),
    seconds: Number(opt("--seconds", "3")),
    floodSeconds: Number(opt("--flood-seconds", "2")),
    floodCount: Number(opt("--flood-count", "3000000")),
    warmup: Number(opt("--warmup", "10000")),
    loadRuns: Number(opt("--load-runs", "3")),
    rttSeries: Number(opt("--rtt-series", "8")),
    rttPin: parsePin(opt("--rtt-pin", "auto")),
    configs,
    iptables: iptables as "nft" | "legacy",
    out: opt("--out", ""),
  };
}

type Opts = ReturnType<typeof parseArgs>;

/**
 * `--rtt-pin`: "auto" (tapir on the last CPU, ping on CPU 0, when there are
 * two or more), "off", or `TAPIR_CPU:PING_CPU`.
 */
function parsePin(v: string): { tapir: number; ping: number } | undefined {
  if (v === "off") return undefined;
  if (v === "auto") {
    const n = navigator.hardwareConcurrency;
    return n >= 2 ? { tapir: n - 1, ping: 0 } : undefined;
  }
  const m = v.match(/^(\d+):(\d+)$/);
  if (m === null) throw new Error(`--rtt-pin auto|off|TAPIR_CPU:PING_CPU, not ${v}`);
  return { tapir: Number(m[1]), ping: Number(m[2]) };
}

// ------------------------------------------------------------- the rule sets

const ESTABLISHED = "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT";
const LAN_TO_WAN = "-i lan0 -o wan0 -j ACCEPT";

/** tapir's shared forward chain: `rules`, then ESTABLISHED and LAN → WAN, policy drop. */
function chainToml(rules: readonly string[], extra = ""): string {
  const all = [...rules, ESTABLISHED, LAN_TO_WAN];
  return `${extra}
[firewall.filter]
forward = { policy = "drop", rules = [
${all.map((r) => JSON.stringify(r)).join(",\n")}
] }
`;
}

/** bench/firewall_bench.ts's 100 rules: 98 that the flows' protocols pass early, then the two. */
const NAT_RULES = Array.from({ length: 98 }, (_, i) => `-p tcp --dport ${1000 + i} -j DROP`);

/** True when `rule` names an address of family `fam`'s opposite (so it is not that family's). */
function otherFamily(rule: string, fam: Family): boolean {
  const addrs = [...rule.matchAll(/(?:^|\s)-[sd]\s+(\S+)/g)].map((m) => m[1]!);
  return addrs.some((a) => a.includes(":") !== (fam === 6));
}

/**
 * iptables-restore input for family `fam`: the filter table with `rules`
 * (those of the family; tapir's interface names lan0/wan0 become the
 * kernel router's devices), FORWARD `policy`, and a nat table with
 * MASQUERADE on the WAN when `masquerade`.
 */
function kernelRules(
  fam: Family,
  lan: string,
  wan: string,
  rules: readonly string[],
  policy: "DROP" | "ACCEPT",
  masquerade = false,
): string {
  const dev = (r: string) => r.replace(/\blan0\b/g, lan).replace(/\bwan0\b/g, wan);
  const lines = [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    `:FORWARD ${policy} [0:0]`,
    ":OUTPUT ACCEPT [0:0]",
    ...rules.filter((r) => !otherFamily(r, fam)).map((r) => `-A FORWARD ${dev(r)}`),
    "COMMIT",
  ];
  if (masquerade) {
    lines.push(
      "*nat",
      ":PREROUTING ACCEPT [0:0]",
      ":INPUT ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ":POSTROUTING ACCEPT [0:0]",
      `-A POSTROUTING -o ${wan} -j MASQUERADE`,
      "COMMIT",
    );
  }
  return lines.join("\n") + "\n";
}

/** The set's members: 10.0.0.0 + 3·i (none of them h1's address). */
function setMember(i: number): string {
  return formatIpv4((0x0a000000 + i * 3) >>> 0);
}

function scaleConfig(key: string, n: number): FirewallConfig {
  const rules = scaleRules(n);
  return {
    key,
    label: `${n} rules`,
    families: [4, 6],
    toml: () => chainToml(rules),
    kernel: (fam, lan, wan) =>
      kernelRules(fam, lan, wan, [...rules, ESTABLISHED, LAN_TO_WAN], "DROP"),
  };
}

function configs(): Map<string, FirewallConfig> {
  const setRule = "-m set --match-set big src -j DROP";
  const all: FirewallConfig[] = [
    {
      key: "plain",
      label: "plain forwarding (no firewall)",
      families: [4, 6],
      plain: true,
      toml: () => "",
      kernel: (fam, lan, wan) => kernelRules(fam, lan, wan, [], "ACCEPT"),
    },
    {
      key: "nat100",
      label: "conntrack + MASQUERADE + 100 rules",
      families: [4, 6],
      toml: () =>
        chainToml(
          NAT_RULES,
          `[firewall.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
        ),
      kernel: (fam, lan, wan) =>
        kernelRules(fam, lan, wan, [...NAT_RULES, ESTABLISHED, LAN_TO_WAN], "DROP", true),
    },
    scaleConfig("0", 0),
    scaleConfig("1k", 1000),
    scaleConfig("10k", 10_000),
    scaleConfig("100k", 100_000),
    {
      key: "set1M",
      label: "-m set over 1M addresses",
      families: [4],
      toml: () => {
        const entries: string[] = [];
        for (let i = 0; i < SET_SIZE; i++) entries.push(`"${setMember(i)}"`);
        return chainToml(
          [setRule],
          `[firewall.sets.big]\ntype = "hash:ip"\nfamily = 4\nmax_entries = ${2 * SET_SIZE}\n` +
            `entries = [${entries.join(",")}]\n`,
        );
      },
      kernel: (fam, lan, wan) =>
        kernelRules(
          fam,
          lan,
          wan,
          [...(fam === 4 ? [setRule] : []), ESTABLISHED, LAN_TO_WAN],
          "DROP",
        ),
      ipset: SET_SIZE,
    },
  ];
  return new Map(all.map((c) => [c.key, c]));
}

// ------------------------------------------------------------ applying them

/** Reject after `ms` unless `p` settled. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Write the interfaces' TOML plus `firewall` to tapir's config file and
 * reload; the ms from the request to the answer (the file read, parsed,
 * validated, compiled and swapped in).
 */
async function reloadTapir(s: Setup, base: string, firewall: string): Promise<number> {
  const t = s.tapir!;
  Deno.writeTextFileSync(t.configPath, base + "\n" + firewall);
  const t0 = performance.now();
  const a = await within(queryControl(t.controlPath, "reload"), 120_000, "tapir reload") as {
    ok: boolean;
    errors?: string[];
    applied?: string[];
  };
  const ms = performance.now() - t0;
  if (!a.ok) throw new Error(`tapir reload rejected: ${(a.errors ?? []).slice(0, 5).join("; ")}`);
  if (!(a.applied ?? []).some((l) => l.startsWith("firewall"))) {
    throw new Error(`tapir reload did not change the firewall: ${JSON.stringify(a)}`);
  }
  return ms;
}

/** The kernel router's rules for `c`; the ms iptables-restore and ip6tables-restore took. */
async function applyKernel(s: Setup, c: FirewallConfig, o: Opts): Promise<number> {
  const k = s.kernelRouter!;
  if (o.iptables === "nft") {
    // Every table gone (nat too, so plain and the scale configs carry no NAT hooks).
    await k.ns.exec(["nft", "flush", "ruleset"], { timeoutMs: 60_000 });
  }
  if (c.ipset !== undefined) await fillIpset(s, c.ipset);
  const tool = (fam: Family) =>
    `${fam === 6 ? "ip6" : "ip"}tables-${o.iptables === "nft" ? "nft-" : "legacy-"}restore`;
  const t0 = performance.now();
  for (const fam of [4, 6] as Family[]) {
    let text = c.kernel(fam, k.lan, k.wan);
    if (o.iptables === "legacy" && !text.includes("*nat")) {
      // The legacy nat table cannot be removed once made: empty it.
      text += "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
        ":POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
    }
    await k.ns.exec([tool(fam)], { stdin: text, timeoutMs: 300_000 });
  }
  return performance.now() - t0;
}

/** Make the kernel router's ipset `big` (hash:ip, inet) hold `n` members, once. */
async function fillIpset(s: Setup, n: number): Promise<void> {
  const ns = s.kernelRouter!.ns;
  const have = await ns.exec(["ipset", "list", "-t", "big"], { check: false });
  const m = have.stdout.match(/Number of entries: (\d+)/);
  if (m && Number(m[1]) === n) return;
  const lines = [`create big hash:ip family inet hashsize 1048576 maxelem ${2 * n}`];
  for (let i = 0; i < n; i++) lines.push(`add big ${setMember(i)}`);
  await ns.exec(["ipset", "restore", "-exist"], {
    stdin: lines.join("\n") + "\n",
    timeoutMs: 300_000,
  });
}

/** tapir's resident memory in MiB (VmRSS of its PID), NaN when unreadable. */
async function rssMiB(s: Setup): Promise<number> {
  // ps rather than /proc/PID/status, which Deno reads only with --allow-all.
  const r = await run(["ps", "-o", "rss=", "-p", String(s.tapir!.pid)], { check: false });
  return r.code === 0 ? Number(r.stdout.trim()) / 1024 : NaN;
}

// --------------------------------------------------------------- measuring

async function measure(s: Setup, o: Opts, fam: Family): Promise<FirewallSample> {
  const dst = NET[fam].h2;
  const rtt = await pingRttStatsMs(s.h1, dst);
  const srv = s.h2.spawn(["iperf3", ...(fam === 6 ? ["-6"] : []), "-s", "-B", dst]);
  let tcpGbps = NaN;
  try {
    await sleep(400);
    tcpGbps = await iperfTcpGbps(s.h1, dst, o.seconds, 1);
  } finally {
    srv.kill("SIGTERM");
    await srv.wait(3000);
  }
  const f = await udpFlood(s.h1, s.h2, s.h2Dev, {
    dst,
    port: UDP_PORT,
    pps: 0,
    seconds: o.floodSeconds,
    count: o.floodCount,
    cpuPid: s.tapir?.pid,
  });
  return {
    rttMs: rtt.median,
    rttMeanMs: rtt.mean,
    tcpGbps,
    pps: f.recv,
    lossPct: f.loss,
    cpuUsPerPacket: f.cpuUsPerPacket,
  };
}

/** One paired RTT measurement: a config's tapir against its reference's, interleaved. */
export interface PairedRtt {
  /** Median of every reply of the config's tapir, ms. */
  tapirMs: number;
  /** Median of every reply of the reference tapir, ms. */
  refMs: number;
  /** The reference tapir's own measurement just before (the traffic it carried first). */
  ref?: FirewallSample;
}

/** Run `f` with every thread of the processes `pids` on `cpu`, then give back their masks. */
async function pinned<T>(pids: number[], cpu: number, f: () => Promise<T>): Promise<T> {
  const masks: string[] = [];
  try {
    for (const pid of pids) {
      const r = await run(["taskset", "-p", String(pid)]);
      masks.push(r.stdout.trim().split(/\s+/).at(-1)!);
      await run(["taskset", "-a", "-p", "-c", String(cpu), String(pid)]);
    }
    return await f();
  } finally {
    for (const [i, mask] of masks.entries()) {
      await run(["taskset", "-a", "-p", mask, String(pids[i])], { check: false });
    }
  }
}

/**
 * The RTT of `s`'s tapir against `ref`'s tapir (a second process holding
 * the reference config), in `o.rttSeries` series of `ping -c 100 -i 0.01`
 * each, alternating which goes first, with both tapirs on one CPU and ping
 * on another (`--rtt-pin`): the medians of all replies of each. On an
 * unchanged tapir the median of one series moves by up to 1.4× from series
 * to series, mostly with where the scheduler puts tapir and ping; pinned
 * and interleaved, two identical tapirs came out 0.95–1.08 of each other
 * in the runs so far (README).
 */
async function pairedRtt(s: Setup, ref: Setup, o: Opts, fam: Family): Promise<PairedRtt> {
  const dst = NET[fam].h2;
  const go = async () => {
    const mine: number[] = [], theirs: number[] = [];
    for (let i = 0; i < o.rttSeries; i++) {
      const order = i % 2 === 0
        ? [[s, mine], [ref, theirs]] as const
        : [[ref, theirs], [s, mine]] as const;
      for (const [x, into] of order) {
        into.push(...await pingRttSamplesMs(x.h1, dst, 100, 0.01, o.rttPin?.ping));
      }
    }
    return { tapirMs: median(mine), refMs: median(theirs) };
  };
  return o.rttPin === undefined
    ? await go()
    : await pinned([s.tapir!.pid, ref.tapir!.pid], o.rttPin.tapir, go);
}

/** `[router]` and `[[interface]]` of a tapir with one TAP pair (the load-time runs). */
function loadConfig(lan: string, wan: string, firewall: string): string {
  return `[router]
hostname = "bench-load"
forwarding = true

[[interface]]
name = "lan0"
tap = "${lan}"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "wan0"
tap = "${wan}"
addresses = ["198.51.100.1/24"]
${firewall}`;
}

/**
 * ms from spawning `tapir run` until its TAPs and control socket are up
 * (startTapir's wait, which polls every 50 ms), for 0 and 100k rules,
 * interleaved, in namespaces of their own.
 */
async function loadTimes(topo: Topology, o: Opts): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = { "0": [], "100k": [] };
  const text = { "0": chainToml([]), "100k": chainToml(scaleRules(100_000)) };
  const id = String(Deno.pid % 100000);
  for (let k = 0; k < o.loadRuns; k++) {
    for (const key of ["0", "100k"] as const) {
      const tag = `${key === "0" ? "z" : "h"}${k}`;
      const ns = await topo.netns(`ld${tag}`);
      const lan = `tpwl${tag}${id}a`, wan = `tpwl${tag}${id}b`;
      const t0 = performance.now();
      const t = await startTapir({
        config: loadConfig(lan, wan, text[key]),
        ns,
        topo,
        extraArgs: ["--log-level", "warning"],
        startTimeoutMs: 60_000,
      });
      out[key]!.push(performance.now() - t0);
      await t.stop("SIGTERM");
    }
  }
  return out;
}

/** Everything one run measured. */
interface Results {
  /** config → family → router ("tapir" | "kernel") → rounds. */
  samples: Record<string, Record<string, Record<string, FirewallSample[]>>>;
  /** config → ms of each tapir reload to it (per round). */
  tapirReloadMs: Record<string, number[]>;
  /** config → ms of the kernel's iptables-restore + ip6tables-restore (per round). */
  kernelLoadMs: Record<string, number[]>;
  /** A reload of 100k rules with one of them changed, per round. */
  reload100kEditMs: number[];
  /** tapir's RSS (MiB) after reloading to each config, per round. */
  tapirRssMiB: Record<string, number[]>;
  /** config → family → the paired RTT of each round (not for plain). */
  pairedRtt: Record<string, Record<string, PairedRtt[]>>;
  loadMs: Record<string, number[]>;
}

async function runBench(topo: Topology, o: Opts, r: Results): Promise<void> {
  const all = configs();
  const list = o.configs.map((k) => all.get(k)!);
  const v6 = o.families.includes(6);
  r.loadMs = await loadTimes(topo, o);
  console.error(`load times (ms): ${JSON.stringify(r.loadMs)}`);
  const plain = list.some((c) => c.plain || c.key === "nat100")
    ? await tapirSetup(topo, "tapir-plain", true, v6, undefined, {
      tag: "wp",
      label: "tapir, no firewall",
    })
    : undefined;
  const fw = await tapirSetup(topo, "tapir", true, v6, undefined, { tag: "wf", label: "tapir" });
  const base = Deno.readTextFileSync(fw.tapir!.configPath);
  // The paired RTT's reference for the rule configs: a second tapir that keeps 0 rules.
  const zero = list.some((c) => refOf(c.key) === "0")
    ? await tapirSetup(topo, "tapir-0", true, v6, undefined, { tag: "wz", label: "tapir, 0 rules" })
    : undefined;
  if (zero !== undefined) {
    await reloadTapir(zero, Deno.readTextFileSync(zero.tapir!.configPath), all.get("0")!.toml());
  }
  const kernel = await kernelSetup(topo, v6);
  const setups = [plain, fw, zero, kernel].filter((s) => s !== undefined);
  if (v6) { for (const s of setups) await waitDad(s); }
  // The first rule set everywhere, then the same warm-up for every path.
  let current = all.get("0")!.toml();
  await reloadTapir(fw, base, current);
  await applyKernel(kernel, all.get("0")!, o);
  for (const fam of o.families) {
    for (const s of setups) await warmUp(s.h1, NET[fam].h2, o.warmup);
  }
  for (let round = 0; round < o.rounds; round++) {
    for (const c of list) {
      // Plain runs on its own tapir: with one other config, fw keeps it from round to round.
      const toml = c.plain ? current : c.toml();
      if (toml !== current) {
        current = toml;
        const ms = await reloadTapir(fw, base, current);
        (r.tapirReloadMs[c.key] ??= []).push(ms);
        (r.tapirRssMiB[c.key] ??= []).push(await rssMiB(fw));
      }
      const kms = await applyKernel(kernel, c, o);
      (r.kernelLoadMs[c.key] ??= []).push(kms);
      console.error(
        `round ${round + 1} ${c.key}: tapir reload ${
          fmt(r.tapirReloadMs[c.key]?.at(-1) ?? NaN, 0)
        } ms, kernel restore ${fmt(kms, 0)} ms`,
      );
      await sleep(500);
      for (const fam of c.families.filter((f) => o.families.includes(f))) {
        for (const [who, s] of [["tapir", c.plain ? plain! : fw], ["kernel", kernel]] as const) {
          const t0 = performance.now();
          const x = await measure(s, o, fam);
          ((r.samples[c.key] ??= {})[fam] ??= {})[who] ??= [];
          r.samples[c.key]![fam]![who]!.push(x);
          console.error(
            `round ${round + 1} ${c.key} IPv${fam} ${who} (${
              ((performance.now() - t0) / 1000).toFixed(1)
            } s): ${JSON.stringify(x)}`,
          );
        }
        const ref = c.plain ? undefined : refOf(c.key) === "0" ? zero : plain;
        if (ref !== undefined) {
          // The reference gets the same traffic first: a tapir that has just forwarded
          // floods answers pings faster than one that sat idle (scratch A/A runs: 0.92–1.14).
          const x = await measure(ref, o, fam);
          console.error(`round ${round + 1} ${c.key} IPv${fam} reference: ${JSON.stringify(x)}`);
          const p = { ...await pairedRtt(fw, ref, o, fam), ref: x };
          ((r.pairedRtt[c.key] ??= {})[fam] ??= []).push(p);
          console.error(`round ${round + 1} ${c.key} IPv${fam} paired RTT: ${JSON.stringify(p)}`);
        }
      }
      if (c.key === "100k") {
        // Edit one rule and reload: the whole chain is compiled again.
        const rules = scaleRules(100_000);
        rules[50_000] = "-s 10.255.255.254 -j DROP";
        r.reload100kEditMs.push(await reloadTapir(fw, base, chainToml(rules)));
      }
    }
  }
  for (const s of setups) if (s.tapir !== undefined) await s.tapir.stop("SIGTERM");
}

// --------------------------------------------------------------- reporting

type Field = keyof FirewallSample;

function best(r: Results, cfg: string, fam: Family, who: string, f: Field): Spread {
  const xs = r.samples[cfg]?.[fam]?.[who]?.map((x) => x[f]) ?? [];
  return spread(
    xs,
    f === "rttMs" || f === "rttMeanMs" || f === "lossPct" || f === "cpuUsPerPacket",
  );
}

/**
 * `cfg` against `ref` measured in the same round (minutes apart, under
 * the same background load; for RTT: RTT / ref RTT), per round, sorted.
 */
function pairedRatios(
  r: Results,
  cfg: string,
  ref: string,
  fam: Family,
  who: string,
  f: Field,
): number[] {
  const a = r.samples[cfg]?.[fam]?.[who] ?? [], b = r.samples[ref]?.[fam]?.[who] ?? [];
  return a.map((x, i) => x[f] / (b[i]?.[f] ?? NaN)).filter((x) => Number.isFinite(x))
    .sort((x, y) => x - y);
}

/** The median of {@link pairedRatios} (NaN without a pair). */
function ratio(r: Results, cfg: string, ref: string, fam: Family, who: string, f: Field): number {
  return median(pairedRatios(r, cfg, ref, fam, who, f));
}

/** The median of sorted ratios and, with several, their range: `0.95 [0.90–0.99]`. */
function medianRange(rs: readonly number[]): string {
  const m = fmt(median(rs));
  return rs.length > 1 ? `${m} [${fmt(rs[0]!)}–${fmt(rs.at(-1)!)}]` : m;
}

/** {@link medianRange} of {@link pairedRatios}. */
function ratioCell(
  r: Results,
  cfg: string,
  ref: string,
  fam: Family,
  who: string,
  f: Field,
): string {
  return medianRange(pairedRatios(r, cfg, ref, fam, who, f));
}

/** The reference a config is held against: plain for nat100, 0 rules for the rest. */
function refOf(cfg: string): string {
  return cfg === "nat100" ? "plain" : "0";
}

function table(r: Results, o: Opts, fam: Family): string {
  const list = o.configs.filter((c) => r.samples[c]?.[fam] !== undefined);
  const all = configs();
  const cell = (sp: Spread, d: number) =>
    sp.samples.length > 1 ? `${fmt(sp.best, d)} (${fmt(sp.worst, d)})` : fmt(sp.best, d);
  const lines = [
    `IPv${fam}, h1 ${NET[fam].h1} → h2 ${NET[fam].h2}; best of ${o.rounds} round(s), worst in ` +
    `parentheses; × = the ratio to the reference (0 rules; for nat100: plain) measured in the ` +
    `same round, median [min–max] over the rounds. ` +
    `RTT × is RTT / reference RTT; the RTT goal (≤ 1.25, i.e. ≥ 0.8 of its speed) is judged ` +
    `on the paired RTT below.`,
    "",
    "| config | tapir pps | × | tapir TCP Gbit/s | × | tapir RTT ms (median) | × | " +
    "tapir CPU µs/packet | × | " +
    "kernel pps | × | kernel TCP Gbit/s | × | kernel RTT ms (median) | × |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const c of list) {
    const ref = refOf(c);
    const x = (who: string, f: Field) =>
      c === ref || (c === "plain") ? "1.00" : ratioCell(r, c, ref, fam, who, f);
    const cols = ["tapir", "kernel"].flatMap((who) => [
      cell(best(r, c, fam, who, "pps"), 0),
      x(who, "pps"),
      cell(best(r, c, fam, who, "tcpGbps"), 2),
      x(who, "tcpGbps"),
      cell(best(r, c, fam, who, "rttMs"), 3),
      x(who, "rttMs"),
      ...(who === "tapir"
        ? [cell(best(r, c, fam, who, "cpuUsPerPacket"), 2), x(who, "cpuUsPerPacket")]
        : []),
    ]);
    lines.push(`| ${all.get(c)!.label} | ${cols.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** The paired RTT ratios of `cfg` (tapir / reference tapir), one per round, sorted. */
function pairedRatiosOf(r: Results, cfg: string, fam: Family): number[] {
  return (r.pairedRtt[cfg]?.[fam] ?? []).map((p) => p.tapirMs / p.refMs)
    .filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
}

/** The paired RTT: per config and family, both tapirs' medians and their ratio. */
function pairedTable(r: Results, o: Opts): string {
  const pin = o.rttPin === undefined
    ? "unpinned"
    : `tapirs on CPU ${o.rttPin.tapir}, ping on CPU ${o.rttPin.ping}`;
  const lines = [
    `Paired RTT: ${o.rttSeries} series of \`ping -c 100 -i 0.01\` each to the config's tapir ` +
    `and to a second tapir holding the reference (0 rules, or for nat100 the tapir without a ` +
    `firewall), alternating, ${pin}; ms are the medians of all replies (per round, ` +
    `\`config / reference\`), × their ratio, median [min–max] over the rounds. The 0-rule row ` +
    `sets two identical tapirs against each other: the estimate's own noise.`,
    "",
    "| config | family | tapir ms / reference ms | × |",
    "|---|---|---|---|",
  ];
  for (const c of o.configs) {
    for (const fam of o.families) {
      const ps = r.pairedRtt[c]?.[fam];
      if (ps === undefined) continue;
      const ms = ps.map((p) => `${fmt(p.tapirMs, 3)} / ${fmt(p.refMs, 3)}`).join(", ");
      const x = medianRange(pairedRatiosOf(r, c, fam));
      lines.push(`| ${configs().get(c)!.label} | IPv${fam} | ${ms} | ${x} |`);
    }
  }
  return lines.join("\n");
}

/** The goal verdicts of #15, one line each. */
function goals(r: Results, o: Opts): string[] {
  const out: string[] = [];
  const verdict = (ok: boolean) => ok ? "met" : "NOT met";
  for (const fam of o.families) {
    const aa = pairedRatiosOf(r, "0", fam);
    if (aa.length > 0) {
      out.push(
        `IPv${fam} 0 rules vs a second tapir with 0 rules (the paired RTT's noise): ${
          medianRange(aa)
        }`,
      );
    }
    for (const c of ["1k", "10k", "100k", "set1M", "nat100"]) {
      if (r.samples[c]?.[fam] === undefined || r.samples[refOf(c)]?.[fam] === undefined) continue;
      const pps = ratio(r, c, refOf(c), fam, "tapir", "pps");
      const tcp = ratio(r, c, refOf(c), fam, "tapir", "tcpGbps");
      const rtt = median(pairedRatiosOf(r, c, fam));
      const single = ratio(r, c, refOf(c), fam, "tapir", "rttMs");
      const mean = ratio(r, c, refOf(c), fam, "tapir", "rttMeanMs");
      const cpu = ratio(r, c, refOf(c), fam, "tapir", "cpuUsPerPacket");
      // The kernel router pays for the same rules too: its own RTT ratio, for scale.
      const kRtt = ratio(r, c, refOf(c), fam, "kernel", "rttMs");
      const ok = pps >= 0.8 && tcp >= 0.8 && rtt <= 1.25;
      out.push(
        `IPv${fam} ${configs().get(c)!.label} vs ${refOf(c) === "0" ? "0 rules" : "plain"}: ` +
          `pps ${fmt(pps)}, TCP ${fmt(tcp)}, paired RTT ${fmt(rtt)} ` +
          `(one series each, minutes apart: median ${fmt(single)}, mean ${fmt(mean)}) ` +
          `(≥ 0.8, ≥ 0.8, ≤ 1.25): ${verdict(ok)} (the kernel router's RTT ${fmt(kRtt)}); ` +
          `CPU per flood packet ${fmt(cpu)}× ` +
          `(≤ 1.25: ≥ 0.8 of the reference's packets per CPU second): ${verdict(cpu <= 1.25)}`,
      );
    }
  }
  const max = (xs: number[] | undefined) => xs && xs.length > 0 ? Math.max(...xs) : NaN;
  const load = max(r.loadMs["100k"]);
  out.push(
    `load: tapir start to ready with 100k rules ${
      r.loadMs["100k"]!.map((x) => fmt(x, 0)).join(" / ")
    } ms (0 rules: ${r.loadMs["0"]!.map((x) => fmt(x, 0)).join(" / ")} ms), worst < 2000: ${
      verdict(load < 2000)
    }`,
  );
  const reloads = [...(r.tapirReloadMs["100k"] ?? []), ...r.reload100kEditMs];
  if (reloads.length > 0) {
    out.push(
      `reload to 100k rules (from 10k) ${
        (r.tapirReloadMs["100k"] ?? []).map((x) => fmt(x, 0)).join(" / ")
      } ms, 100k with one rule changed ${
        r.reload100kEditMs.map((x) => fmt(x, 0)).join(" / ")
      } ms, worst < 2000: ${verdict(max(reloads) < 2000)}`,
    );
  }
  return out;
}

/** Reload and restore times and tapir's RSS per config. */
function loadTable(r: Results, o: Opts): string {
  const lines = [
    `Moving to each config: tapir reload (ms, request to answer), kernel ` +
    `${o.iptables === "nft" ? "iptables-nft" : "iptables-legacy"}-restore + ip6tables (ms), ` +
    `tapir RSS after the reload (MiB); per round.`,
    "",
    "| config | tapir reload ms | kernel restore ms | tapir RSS MiB |",
    "|---|---|---|---|",
  ];
  for (const c of o.configs) {
    const j = (xs: number[] | undefined, d = 0) => xs ? xs.map((x) => fmt(x, d)).join(" / ") : "—";
    lines.push(
      `| ${configs().get(c)!.label} | ${j(r.tapirReloadMs[c])} | ${j(r.kernelLoadMs[c])} | ${
        j(r.tapirRssMiB[c])
      } |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  requireRoot("e2e_firewall_bench");
  const tools = ["ip", "ping", "iperf3", "nft", `iptables-${o.iptables}-restore`, "taskset"];
  if (o.configs.includes("set1M")) tools.push("ipset");
  for (const tool of tools) {
    const r = await run(["sh", "-c", `command -v ${tool}`], { check: false });
    if (r.code !== 0) {
      console.error(`e2e_firewall_bench needs ${tool}`);
      Deno.exit(1);
    }
  }
  const r: Results = {
    samples: {},
    tapirReloadMs: {},
    kernelLoadMs: {},
    reload100kEditMs: [],
    tapirRssMiB: {},
    pairedRtt: {},
    loadMs: {},
  };
  const loadStart = Deno.loadavg();
  await withBenchTopology("tpw-bench", (topo) => runBench(topo, o, r));
  const meta = {
    ...(await benchMeta(loadStart)),
    families: o.families,
    rounds: o.rounds,
    iperfSeconds: o.seconds,
    floodSeconds: o.floodSeconds,
    warmupFloodPings: o.warmup,
    kernelBackend: `iptables-${o.iptables}`,
    configs: o.configs,
    rttSeries: o.rttSeries,
    rttPin: o.rttPin ?? "off",
  };
  console.log(benchHeader(
    meta,
    `iperf3 -t ${o.seconds}; UDP 64 B unpaced flood ${o.floodSeconds} s; kernel rules by ` +
      `iptables-${o.iptables}-restore (set: ipset)\n`,
  ));
  for (const fam of o.families) console.log(table(r, o, fam) + "\n");
  console.log(pairedTable(r, o) + "\n");
  console.log(loadTable(r, o) + "\n");
  console.log(goals(r, o).map((l) => `- ${l}`).join("\n") + "\n");
  const json = JSON.stringify({ meta, ...r }, null, 2);
  if (o.out) Deno.writeTextFileSync(o.out, json + "\n");
  else console.log(json);
}

if (import.meta.main) await main();
