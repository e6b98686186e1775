/**
 * The virtual lab: several full stacks, each built from its node's config,
 * joined by in-memory links (with the faults of each link's
 * `[lab.link.faults]`, seeded so a run repeats), running the probes a lab
 * file lists and checking each probe's expectation. On a manual clock a 60-second
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
import {
  type LabService,
  type LabServiceOptions,
  startLabService,
  tcpProbe,
  transferProbe,
  type TransferResult,
} from "../stack/apps/lab_services.ts";
import {
  formatIpAddress,
  formatIpv6,
  type IpAddress,
  ipv6Equal,
  ipv6Masked,
} from "../stack/wire/mod.ts";
import {
  DEFAULT_FAULT_QUEUE_FRAMES,
  type LinkFaults,
  type MemoryEndpoint,
  MemoryLink,
} from "../link/mod.ts";
import { Dhcpv4Client, Dhcpv6Client, type LinkEndpoint } from "../stack/mod.ts";
import { buildStack } from "./build.ts";
import type { LabConfig, LabServiceConfig, ProbeConfig } from "./types.ts";

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
  /** Each node's `[[lab.node.service]]`s, in file order (closed with the node; their stats stay). */
  services: Map<string, LabService[]>;
  /** The ends of each `[[lab.link]]`, in file order (`a`, `b`): their stats count the faults each end's frames met. */
  links: [MemoryEndpoint, MemoryEndpoint][];
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
  const links: [MemoryEndpoint, MemoryEndpoint][] = [];
  for (const l of lab.links) {
    const [a, b] = MemoryLink.pair({
      clock,
      mtu: l.mtu,
      delayMs: l.delay,
      names: [`${l.a.node}:${l.a.interface}`, `${l.b.node}:${l.b.interface}`],
      faults: l.faults,
      // Frames a fault delays or queues hold buffers: room for two full
      // rate-limit queues besides the usual frames in flight.
      poolLimit: 1024 + queueRoom(l.faults.aToB) + queueRoom(l.faults.bToA),
    });
    ends.set(`${l.a.node}:${l.a.interface}`, a);
    ends.set(`${l.b.node}:${l.b.interface}`, b);
    links.push([a, b]);
  }
  const stacks = new Map<string, Stack>();
  const services = new Map<string, LabService[]>();
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
    try {
      services.set(node.name, node.services.map((sc, i) => startService(stack, node.name, sc, i)));
    } catch (e) {
      for (const s of stacks.values()) s.close();
      throw e;
    }
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
      let next = clock.nextDeadline();
      if (next === undefined || next - start > lab.duration) {
        // Before giving up, let every queued callback run (a long await chain
        // may still be on its way to scheduling the next timer).
        await new Promise<void>((r) => setTimeout(r, 0));
        if (pending === 0) break;
        next = clock.nextDeadline();
        if (next === undefined || next - start > lab.duration) break;
      }
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
  return { outcomes, passed: outcomes.length - failed, failed, elapsedMs, stacks, services, links };
}

/** Start one `[[lab.node.service]]` on its node's stack, as a stack service (closed with the stack). */
function startService(stack: Stack, node: string, sc: LabServiceConfig, i: number): LabService {
  const o: LabServiceOptions = {
    type: sc.type,
    port: sc.port,
    ...(sc.address !== null ? { hostname: formatIpAddress(sc.address) } : {}),
    udp: sc.udp,
    ...(sc.bytes !== undefined ? { bytes: sc.bytes } : {}),
    ...(sc.type === "http"
      ? { body: sc.body !== undefined ? new TextEncoder().encode(sc.body) : sc.bodyBytes }
      : {}),
  };
  let sv: LabService;
  try {
    sv = startLabService(stack, o);
  } catch (e) {
    throw new Error(
      `lab node ${node}: service[${i}] (${sc.type} on port ${sc.port}) did not start: ${
        (e as Error).message
      }`,
    );
  }
  stack.services.set(`lab-service[${i}]:${sc.type}:${sc.port}`, sv);
  return sv;
}

/** Buffers a direction's rate-limit queue may hold (0 without a rate limit). */
function queueRoom(f: LinkFaults | null): number {
  if (f === null || f.rateBitsPerSecond === undefined) return 0;
  return Math.min(f.queueFrames ?? DEFAULT_FAULT_QUEUE_FRAMES, 100_000);
}

/**
 * Let promise callbacks run between timers: enough turns for the await
 * chains of the socket APIs (a TCP read that wakes, returns, and lets its
 * caller write) to reach their next wait.
 */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 32; i++) await Promise.resolve();
}

/**
 * A lease probe: wait (up to `timeout` of lab time, looking every 100 ms)
 * for the node's DHCP client on the interface to hold a lease, then check
 * it against the expectations.
 */
async function leaseProbe(
  stack: Stack,
  p: ProbeConfig,
  lines: string[],
): Promise<string> {
  const l = p.lease!;
  const key = l.family === 4 ? `dhcp4-client:${l.iface}` : `dhcp6-client:${l.iface}`;
  const read = ():
    | { address: IpAddress | null; prefix: string | null; dns: IpAddress[] }
    | null => {
    const sv = stack.services.get(key);
    if (sv instanceof Dhcpv4Client && sv.lease !== null) {
      const x = sv.lease;
      return {
        address: { family: 4, address: x.address },
        prefix: null,
        dns: x.dnsServers.map((a) => ({ family: 4, address: a })),
      };
    }
    if (sv instanceof Dhcpv6Client && sv.lease !== null && sv.state !== "declined") {
      const x = sv.lease;
      return {
        address: x.address === null ? null : { family: 6, address: x.address.address },
        prefix: x.prefix === null ? null : `${formatIpv6(x.prefix.prefix)}/${x.prefix.prefixLen}`,
        dns: x.dnsServers.map((a) => ({ family: 6, address: a })),
      };
    }
    return null;
  };
  const deadline = stack.clock.now() + p.timeout;
  let got = read();
  while (got === null && stack.clock.now() < deadline) {
    await new Promise<void>((r) => stack.clock.schedule(100, r));
    got = read();
  }
  if (got === null) return `no lease on ${l.iface} within ${p.timeout / 1000} s`;
  lines.push(
    [
      `lease on ${l.iface}:`,
      got.address !== null ? `address ${formatIpAddress(got.address)}` : "no address",
      ...(got.prefix !== null ? [`prefix ${got.prefix}`] : []),
      ...(got.dns.length > 0 ? [`dns ${got.dns.map(formatIpAddress).join(",")}`] : []),
    ].join(" "),
  );
  const cmp = (a: IpAddress, b: IpAddress) => {
    if (a.family === 4) return (a.address as number) - (b.address as number);
    const x = a.address as Uint8Array, y = b.address as Uint8Array;
    for (let i = 0; i < 16; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  };
  const r = l.expectAddressIn;
  if (r !== undefined) {
    const a = got.address;
    if (a === null || cmp(a, r.first) < 0 || cmp(a, r.last) > 0) {
      return `expected an address in ${formatIpAddress(r.first)}-${formatIpAddress(r.last)}, got ${
        a === null ? "none" : formatIpAddress(a)
      }`;
    }
  }
  const pin = l.expectPrefixIn;
  if (pin !== undefined) {
    const sv = stack.services.get(key) as Dhcpv6Client;
    const px = sv.prefix;
    const inside = px !== null && px.prefixLen >= pin.prefixLen &&
      ipv6Equal(ipv6Masked(px.prefix, pin.prefixLen), ipv6Masked(pin.address, pin.prefixLen));
    if (!inside) {
      return `expected a delegated prefix inside ${formatIpv6(pin.address)}/${pin.prefixLen}, got ${
        got.prefix ?? "none"
      }`;
    }
  }
  for (const d of l.expectDns) {
    if (!got.dns.some((x) => x.family === d.family && cmp(x, d) === 0)) {
      return `expected DNS server ${formatIpAddress(d)} in the lease`;
    }
  }
  return "";
}

async function runProbe(stack: Stack, p: ProbeConfig): Promise<ProbeOutcome> {
  const lines: string[] = [];
  const out = (passed: boolean, reason = ""): ProbeOutcome => ({ probe: p, lines, passed, reason });
  if (p.kind === "lease") {
    const why = await leaseProbe(stack, p, lines);
    return out(why === "", why);
  }
  if (p.kind === "tcp" || p.kind === "transfer") return await streamProbe(stack, p, lines);
  const dst = p.target!.address;
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
  const why = judgeTrace(p, formatIpAddress(p.target!), hops);
  return out(why === "", why);
}

/** A tcp or transfer probe: run it on the node's stack, then judge it. */
async function streamProbe(stack: Stack, p: ProbeConfig, lines: string[]): Promise<ProbeOutcome> {
  const o = {
    hostname: formatIpAddress(p.target!),
    port: p.port!,
    ...(p.zone !== undefined ? { interface: p.zone } : {}),
    timeoutMs: p.timeout,
  };
  const onLine = (l: string) => lines.push(l);
  let why: string;
  if (p.kind === "tcp") {
    const r = await tcpProbe(stack, o, onLine);
    why = r.outcome === p.expect
      ? ""
      : `expected ${p.expect}, saw ${r.outcome}${r.error !== "" ? ` (${r.error})` : ""}`;
  } else {
    const t = p.transfer!;
    const r = await transferProbe(stack, {
      ...o,
      service: t.service,
      ...(t.bytes !== undefined ? { bytes: t.bytes } : {}),
    }, onLine);
    why = judgeTransfer(p, r);
  }
  return { probe: p, lines, passed: why === "", reason: why };
}

/**
 * A transfer's expectation: how it ended, then (for "complete") the bytes
 * and their integrity: echo got back what it sent (the pattern), discard's
 * peer acknowledged every byte and closed, chargen and http bodies are the
 * pattern (or have `expect_sha256`), http's status and Content-Length.
 */
function judgeTransfer(p: ProbeConfig, r: TransferResult): string {
  const t = p.transfer!;
  if (r.outcome !== p.expect) {
    return `expected ${p.expect}, saw ${r.outcome}${r.error !== "" ? ` (${r.error})` : ""}`;
  }
  if (p.expect !== "complete") return "";
  if (t.service === "http") {
    if (r.status !== t.expectStatus) {
      return `expected HTTP status ${t.expectStatus}, saw ${r.status}`;
    }
    if (r.contentLength === -1) return `the response has no Content-Length`;
    if (r.received !== r.contentLength) {
      return `Content-Length ${r.contentLength}, but ${r.received} body bytes arrived`;
    }
  }
  if (t.expectBytes !== undefined && r.received !== t.expectBytes) {
    return `expected ${t.expectBytes} bytes back, received ${r.received}`;
  }
  if (t.service === "echo" || t.service === "discard") {
    if (r.acked !== r.sent) return `${r.sent} bytes sent, only ${r.acked} acknowledged`;
    if (!r.eof) return `the service did not close its side after ours`;
  }
  if (t.service === "http" && !r.eof) return `the server did not close after "Connection: close"`;
  if (t.expectSha256 !== undefined) {
    return r.sha256 === t.expectSha256
      ? ""
      : `expected sha256 ${t.expectSha256}, received ${r.sha256}`;
  }
  if (t.service !== "discard" && r.patternMismatchAt !== -1) {
    return `the received bytes differ from the ${
      t.service === "echo" ? "bytes sent" : "chargen pattern"
    } at offset ${r.patternMismatchAt}`;
  }
  return "";
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
