/**
 * The virtual lab: several full stacks, each built from its node's config,
 * joined by in-memory links, running the probes a lab file lists and
 * checking each probe's expectation. On a manual clock a 60-second
 * scenario runs in well under a second.
 *
 * @module
 */
import {
  type Clock,
  ManualClock,
  ping,
  type PingResult,
  SeededRandom,
  type Stack,
  SystemClock,
  traceroute,
  type TracerouteHop,
  udpProbe,
} from "../stack/mod.ts";
import { describeIcmpv4Error, describeIcmpv6Error } from "../stack/apps/ping.ts";
import { formatIpAddress } from "../stack/wire/mod.ts";
import { MemoryLink } from "../link/mod.ts";
import type { LinkEndpoint } from "../stack/mod.ts";
import { buildStack } from "./build.ts";
import type { LabConfig, ProbeConfig } from "./types.ts";

/** The outcome of one probe. */
export interface ProbeOutcome {
  probe: ProbeConfig;
  /** Lines as ping/traceroute would print them. */
  lines: string[];
  passed: boolean;
  /** Why it failed (empty when it passed). */
  reason: string;
}

/** Options of {@link runLab}. */
export interface RunLabOptions {
  /** Run on a manual clock, jumping from timer to timer (default true). */
  virtualTime?: boolean;
  /** Called with each probe's outcome as it finishes. */
  onOutcome?: (o: ProbeOutcome) => void;
}

/** What {@link runLab} returns. */
export interface LabResult {
  outcomes: ProbeOutcome[];
  passed: number;
  failed: number;
  /** Clock milliseconds the scenario took. */
  elapsedMs: number;
  stacks: Map<string, Stack>;
}

/**
 * Build every node, link them, run every probe, check expectations.
 *
 * @example
 * ```ts
 * import { parseLabConfig } from "./mod.ts";
 * import { runLab } from "./lab_runner.ts";
 * const lab = parseLabConfig(`
 * [[lab.node]]
 * name = "a"
 * [[lab.node.interface]]
 * name = "eth0"
 * addresses = ["192.0.2.1/24"]
 * [[lab.node]]
 * name = "b"
 * [[lab.node.interface]]
 * name = "eth0"
 * addresses = ["192.0.2.2/24"]
 * [[lab.link]]
 * a = "a:eth0"
 * b = "b:eth0"
 * [[lab.probe]]
 * from = "a"
 * ping = "192.0.2.2"
 * `);
 * const r = await runLab(lab);
 * console.assert(r.failed === 0);
 * ```
 */
export async function runLab(lab: LabConfig, opts: RunLabOptions = {}): Promise<LabResult> {
  const virtual = opts.virtualTime ?? true;
  const clock: Clock = virtual ? new ManualClock() : new SystemClock();
  const ends = new Map<string, LinkEndpoint>();
  for (const l of lab.links) {
    const [a, b] = MemoryLink.pair({
      clock,
      mtu: l.mtu,
      delayMs: l.delay,
      names: [`${l.a.node}:${l.a.interface}`, `${l.b.node}:${l.b.interface}`],
    });
    ends.set(`${l.a.node}:${l.a.interface}`, a);
    ends.set(`${l.b.node}:${l.b.interface}`, b);
  }
  const stacks = new Map<string, Stack>();
  let seed = 1;
  for (const node of lab.nodes) {
    const { stack } = buildStack(node.config, {
      clock,
      random: virtual ? new SeededRandom(seed++) : undefined,
      openLink: (iface) =>
        ends.get(`${node.name}:${iface.name}`) ??
          // An interface on no link: a wire to nowhere.
          MemoryLink.pair({
            clock,
            mtu: iface.mtu,
            names: [`${node.name}:${iface.name}`, "nowhere"],
          })[0],
    });
    stacks.set(node.name, stack);
  }
  const start = clock.now();
  const outcomes: ProbeOutcome[] = [];
  const running: Promise<void>[] = [];
  let pending = lab.probes.length;
  for (const probe of lab.probes) {
    const stack = stacks.get(probe.from)!;
    const started = new Promise<void>((resolve) => {
      clock.schedule(probe.at, () => {
        runProbe(stack, probe).then((o) => {
          outcomes.push(o);
          opts.onOutcome?.(o);
          pending--;
          resolve();
        });
      });
    });
    running.push(started);
  }
  if (clock instanceof ManualClock) {
    // Jump from deadline to deadline, letting promise callbacks run between.
    while (pending > 0) {
      await flushMicrotasks();
      if (pending === 0) break;
      const next = clock.nextDeadline();
      if (next === undefined || next - start > lab.duration) break;
      clock.advance(Math.max(0, next - clock.now()));
    }
    await flushMicrotasks();
  } else {
    await Promise.race([
      Promise.all(running),
      new Promise<void>((r) => setTimeout(r, lab.duration)),
    ]);
  }
  for (const p of lab.probes) {
    if (!outcomes.some((o) => o.probe === p)) {
      const o: ProbeOutcome = {
        probe: p,
        lines: [],
        passed: false,
        reason: `did not finish within the lab duration (${lab.duration} ms)`,
      };
      outcomes.push(o);
      opts.onOutcome?.(o);
    }
  }
  const elapsedMs = clock.now() - start;
  for (const s of stacks.values()) s.close();
  const failed = outcomes.filter((o) => !o.passed).length;
  return { outcomes, passed: outcomes.length - failed, failed, elapsedMs, stacks };
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 8; i++) await Promise.resolve();
}

async function runProbe(stack: Stack, p: ProbeConfig): Promise<ProbeOutcome> {
  const lines: string[] = [];
  const out = (passed: boolean, reason = ""): ProbeOutcome => ({ probe: p, lines, passed, reason });
  const dst = p.target.address;
  if (p.kind === "udp") {
    const r = await udpProbe(stack, {
      dst,
      port: p.port!,
      nic: p.zone,
      count: p.count,
      intervalMs: p.interval,
      timeoutMs: p.timeout,
    }, (l) => lines.push(l));
    const why = judgePing(p, r);
    return out(why === "", why);
  }
  if (p.kind === "ping") {
    const r = await ping(stack, {
      dst,
      nic: p.zone,
      count: p.count,
      size: p.size,
      dontFragment: p.dontFragment,
      intervalMs: p.interval,
      timeoutMs: p.timeout,
    }, (l) => lines.push(l));
    const why = judgePing(p, r);
    return out(why === "", why);
  }
  const hops = await traceroute(
    stack,
    { dst, nic: p.zone, maxHops: p.maxHops, timeoutMs: p.timeout },
    (l) => lines.push(l),
  );
  const why = judgeTrace(p, formatIpAddress(p.target), hops);
  return out(why === "", why);
}

/** ICMPv4 and ICMPv6 (type, code) for each expectation. */
const EXPECT: Record<string, { v4: [number, number[]]; v6: [number, number[]] }> = {
  "net-unreachable": { v4: [3, [0]], v6: [1, [0]] },
  "host-unreachable": { v4: [3, [1]], v6: [1, [3]] },
  "port-unreachable": { v4: [3, [3]], v6: [1, [4]] },
  "admin-prohibited": { v4: [3, [9, 10, 13]], v6: [1, [1]] },
  "frag-needed": { v4: [3, [4]], v6: [2, [0]] },
  "time-exceeded": { v4: [11, [0, 1]], v6: [3, [0, 1]] },
};

function judgePing(p: ProbeConfig, r: PingResult): string {
  const describe = r.family === 4 ? describeIcmpv4Error : describeIcmpv6Error;
  const errs = r.errors.map((e) => `${describe(e.type, e.code, e.mtu)} from ${e.from}`);
  const seen = r.received > 0
    ? `${r.received}/${r.sent} replies`
    : errs.length > 0
    ? errs[0]!
    : "no answer";
  if (p.expectFrom !== undefined && p.expect !== "reachable" && p.expect !== "timeout") {
    const want = formatIpAddress(p.expectFrom);
    if (!r.errors.some((e) => e.from === want)) {
      return `expected the error from ${want}, saw ${seen}`;
    }
  }
  switch (p.expect) {
    case "reachable":
      return r.received > 0 && r.errors.length === 0 ? "" : `expected replies, saw ${seen}`;
    case "unreachable":
      return r.received === 0 ? "" : `expected no replies, saw ${seen}`;
    case "timeout":
      return r.received === 0 && r.errors.length === 0 ? "" : `expected silence, saw ${seen}`;
    default: {
      const [type, codes] = r.family === 4 ? EXPECT[p.expect]!.v4 : EXPECT[p.expect]!.v6;
      const hit = r.errors.find((e) => e.type === type && codes.includes(e.code));
      if (hit === undefined) {
        return `expected ${describe(type, codes[0]!, p.expectMtu ?? 0)}, saw ${seen}`;
      }
      if (p.expect === "frag-needed" && p.expectMtu !== undefined && hit.mtu !== p.expectMtu) {
        return `expected mtu ${p.expectMtu}, saw mtu ${hit.mtu}`;
      }
      return r.received === 0 ? "" : `expected no replies, saw ${seen}`;
    }
  }
}

function judgeTrace(p: ProbeConfig, dst: string, hops: TracerouteHop[]): string {
  const path = hops.map((h) => h.from[0] ?? "*");
  if (p.expectPath !== undefined) {
    const want = p.expectPath.map((x) => x === "*" ? "*" : formatIpAddress(x));
    if (want.join(" ") !== path.join(" ")) {
      return `expected path ${want.join(" → ")}, saw ${path.join(" → ")}`;
    }
  }
  const reached = hops.at(-1)?.from[0] === dst;
  if (p.expect === "reachable" && !reached) {
    return `expected to reach ${dst}, saw ${path.join(" → ")}`;
  }
  if (p.expect !== "reachable" && reached) return `expected not to reach ${dst}`;
  return "";
}
