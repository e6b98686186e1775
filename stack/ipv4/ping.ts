/**
 * tapir's own `ping` and `traceroute` over IPv4, as a library API on a
 * {@link Stack}: they send echo requests or UDP probes, and report replies
 * and ICMP errors with round-trip times measured on the stack's clock (so
 * they run the same on a manual clock in the virtual lab).
 *
 * @module
 */
import type { Stack } from "../stack.ts";
import type { Icmpv4Event } from "./icmp.ts";
import { IpProtocol, writeIpv4Header } from "../wire/ipv4.ts";
import { Icmpv4Type } from "../wire/icmpv4.ts";
import { internetChecksum } from "../wire/checksum.ts";
import { formatIpv4 } from "../wire/ip_address.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";
import type { Timer } from "../clock.ts";
import { Ipv4 } from "./ipv4.ts";

/** Options of {@link ping}. */
export interface PingOptions {
  /** Destination address. */
  dst: number;
  /** Echo requests to send (default 3). */
  count?: number;
  /** Payload bytes after the 8-byte ICMP header (default 56, as ping). */
  size?: number;
  /** TTL of the requests (default 64). */
  ttl?: number;
  /** Set DF, like `ping -M do` (default false). */
  dontFragment?: boolean;
  /** Milliseconds between requests (default 1000). */
  intervalMs?: number;
  /** Milliseconds to wait for the last reply (default 2000). */
  timeoutMs?: number;
}

/** One echo reply. */
export interface PingReply {
  seq: number;
  from: number;
  ttl: number;
  /** ICMP bytes received (header + payload), as ping prints. */
  bytes: number;
  rttMs: number;
}

/** One ICMP error about a request. */
export interface PingError {
  seq: number;
  from: number;
  type: number;
  code: number;
  /** Next-hop MTU of a fragmentation-needed error. */
  mtu: number;
}

/** What {@link ping} found. */
export interface PingResult {
  dst: number;
  sent: number;
  received: number;
  replies: PingReply[];
  errors: PingError[];
}

/** The text iputils' ping prints for an ICMP error. */
export function describeIcmpv4Error(type: number, code: number, mtu = 0): string {
  if (type === Icmpv4Type.DEST_UNREACHABLE) {
    switch (code) {
      case 0:
        return "Destination Net Unreachable";
      case 1:
        return "Destination Host Unreachable";
      case 2:
        return "Destination Protocol Unreachable";
      case 3:
        return "Destination Port Unreachable";
      case 4:
        return `Frag needed and DF set (mtu = ${mtu})`;
      case 5:
        return "Source Route Failed";
      case 9:
      case 10:
        return "Destination Net Prohibited";
      case 13:
        return "Packet filtered";
      default:
        return `Dest Unreachable, Bad Code: ${code}`;
    }
  }
  if (type === Icmpv4Type.TIME_EXCEEDED) {
    return code === 0 ? "Time to live exceeded" : "Frag reassembly time exceeded";
  }
  if (type === Icmpv4Type.PARAMETER_PROBLEM) return "Parameter problem";
  if (type === Icmpv4Type.REDIRECT) return "Redirect";
  return `ICMP type ${type} code ${code}`;
}

/** Build and send one echo request. */
function sendEcho(
  stack: Stack,
  dst: number,
  ident: number,
  seq: number,
  size: number,
  ttl: number,
  df: boolean,
): boolean {
  const b = stack.pool.get();
  if (b === null) return false;
  try {
    const off = Ipv4.BUILD_OFFSET;
    writeIpv4Header(b, off, {
      src: 0,
      dst,
      protocol: IpProtocol.ICMP,
      payloadLen: 8 + size,
      ttl,
      id: stack.ipv4.nextId(),
      dontFragment: df,
    });
    const m = off + 20;
    const v = b.view;
    v.setUint8(m, Icmpv4Type.ECHO_REQUEST);
    v.setUint8(m + 1, 0);
    v.setUint16(m + 2, 0);
    v.setUint16(m + 4, ident);
    v.setUint16(m + 6, seq);
    for (let i = 0; i < size; i++) b.data[m + 8 + i] = (i + 8) & 0xff;
    v.setUint16(m + 2, internetChecksum(b.data, m, 8 + size));
    b.start = off - ETHERNET_HEADER_LEN;
    b.end = m + 8 + size;
    return stack.ipv4.output(b, off);
  } finally {
    stack.pool.put(b);
  }
}

/**
 * Ping `opts.dst` from `stack`. `onLine` receives each line iputils' ping
 * would print. Resolves when every request was answered or timed out.
 *
 * @example
 * ```ts
 * import { Stack, ManualClock, ping } from "../mod.ts";
 * const clock = new ManualClock();
 * const s = new Stack({ clock });
 * const done = ping(s, { dst: 0x7f000001, count: 1 });
 * for (let i = 0; i < 10; i++) clock.advance(500);
 * console.assert((await done).received === 1);
 * ```
 */
export function ping(
  stack: Stack,
  opts: PingOptions,
  onLine?: (line: string) => void,
): Promise<PingResult> {
  const count = opts.count ?? 3;
  const size = opts.size ?? 56;
  const ttl = opts.ttl ?? 64;
  const interval = opts.intervalMs ?? 1000;
  const timeout = opts.timeoutMs ?? 2000;
  const ident = stack.random.uint32() & 0xffff;
  const clock = stack.clock;
  const sentAt = new Map<number, number>();
  const result: PingResult = { dst: opts.dst, sent: 0, received: 0, replies: [], errors: [] };
  const dstText = formatIpv4(opts.dst);
  onLine?.(`PING ${dstText} (${dstText}) ${size}(${size + 28}) bytes of data.`);
  return new Promise((resolve) => {
    const timers: Timer[] = [];
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      stack.ipv4.icmp.listeners.delete(listener);
      for (const t of timers) t.cancel();
      const loss = result.sent === 0
        ? 0
        : Math.round(100 * (result.sent - result.received) / result.sent);
      onLine?.(`--- ${dstText} ping statistics ---`);
      onLine?.(
        `${result.sent} packets transmitted, ${result.received} received${
          result.errors.length > 0 ? `, +${result.errors.length} errors` : ""
        }, ${loss}% packet loss`,
      );
      if (result.replies.length > 0) {
        const r = result.replies.map((x) => x.rttMs);
        const avg = r.reduce((a, b) => a + b, 0) / r.length;
        onLine?.(
          `rtt min/avg/max = ${Math.min(...r).toFixed(3)}/${avg.toFixed(3)}/${
            Math.max(...r).toFixed(3)
          } ms`,
        );
      }
      resolve(result);
    };
    const listener = (e: Icmpv4Event) => {
      if (e.ident !== ident) return;
      const at = sentAt.get(e.seq);
      if (at === undefined) return;
      if (e.type === Icmpv4Type.ECHO_REPLY) {
        if (e.from !== opts.dst) return;
        sentAt.delete(e.seq);
        const rtt = clock.now() - at;
        result.received++;
        result.replies.push({ seq: e.seq, from: e.from, ttl: e.ttl, bytes: e.length, rttMs: rtt });
        onLine?.(
          `${e.length} bytes from ${formatIpv4(e.from)}: icmp_seq=${e.seq} ttl=${e.ttl} time=${
            rtt.toFixed(3)
          } ms`,
        );
      } else {
        if (e.quotedProtocol !== IpProtocol.ICMP || e.quotedDst !== opts.dst) return;
        sentAt.delete(e.seq);
        result.errors.push({ seq: e.seq, from: e.from, type: e.type, code: e.code, mtu: e.mtu });
        onLine?.(
          `From ${formatIpv4(e.from)} icmp_seq=${e.seq} ${
            describeIcmpv4Error(e.type, e.code, e.mtu)
          }`,
        );
      }
      if (result.sent === count && sentAt.size === 0) finish();
    };
    stack.ipv4.icmp.listeners.add(listener);
    for (let i = 0; i < count; i++) {
      timers.push(clock.schedule(i * interval, () => {
        const seq = i + 1;
        sentAt.set(seq, clock.now());
        result.sent++;
        sendEcho(stack, opts.dst, ident, seq, size, ttl, opts.dontFragment ?? false);
      }));
    }
    timers.push(clock.schedule((count - 1) * interval + timeout, finish));
  });
}

/** Options of {@link traceroute}. */
export interface TracerouteOptions {
  dst: number;
  /** Highest TTL to try (default 30). */
  maxHops?: number;
  /** Probes per hop (default 1; traceroute's default is 3). */
  probes?: number;
  /** Milliseconds to wait for each probe (default 2000). */
  timeoutMs?: number;
  /** "udp" (default, ports from 33434) or "icmp" (echo requests, like `traceroute -I`). */
  method?: "udp" | "icmp";
}

/** One hop of a traceroute: who answered each probe (null for `*`). */
export interface TracerouteHop {
  ttl: number;
  from: (number | null)[];
  rttMs: (number | null)[];
  /** The ICMP type/code that answered the last probe, if any. */
  type: number | null;
  code: number | null;
}

/**
 * Trace the path to `opts.dst`, one TTL at a time, ending at the
 * destination (port unreachable or echo reply) or at an unreachable error.
 */
export function traceroute(
  stack: Stack,
  opts: TracerouteOptions,
  onLine?: (line: string) => void,
): Promise<TracerouteHop[]> {
  const maxHops = opts.maxHops ?? 30;
  const probes = opts.probes ?? 1;
  const timeout = opts.timeoutMs ?? 2000;
  const method = opts.method ?? "udp";
  const clock = stack.clock;
  const ident = stack.random.uint32() & 0xffff;
  const dstText = formatIpv4(opts.dst);
  onLine?.(`traceroute to ${dstText} (${dstText}), ${maxHops} hops max`);
  const hops: TracerouteHop[] = [];
  const sock = method === "udp" ? stack.udp.bind(0, () => {}) : null;
  let seq = 0;
  return new Promise((resolve) => {
    let current:
      | { seq: number; at: number; timer: Timer; hop: TracerouteHop; probe: number }
      | null = null;
    let done = false;
    const finish = () => {
      stack.ipv4.icmp.listeners.delete(listener);
      sock?.close();
      resolve(hops);
    };
    const nextProbe = (hop: TracerouteHop, probe: number) => {
      if (probe === probes) {
        const line = hop.from.map((f, i) =>
          f === null ? "*" : `${formatIpv4(f)}  ${hop.rttMs[i]!.toFixed(3)} ms`
        ).join("  ");
        onLine?.(`${String(hop.ttl).padStart(2)}  ${line}`);
        if (done || hop.ttl >= maxHops) return finish();
        return startHop(hop.ttl + 1);
      }
      seq++;
      const s = seq;
      const at = clock.now();
      if (method === "udp") {
        sock!.send(opts.dst, 33434 + s, new Uint8Array(32), { ttl: hop.ttl });
      } else {
        sendEcho(stack, opts.dst, ident, s, 32, hop.ttl, false);
      }
      const timer = clock.schedule(timeout, () => {
        if (current?.seq !== s) return;
        hop.from.push(null);
        hop.rttMs.push(null);
        current = null;
        nextProbe(hop, probe + 1);
      });
      current = { seq: s, at, timer, hop, probe };
    };
    const startHop = (ttl: number) => {
      const hop: TracerouteHop = { ttl, from: [], rttMs: [], type: null, code: null };
      hops.push(hop);
      nextProbe(hop, 0);
    };
    const listener = (e: Icmpv4Event) => {
      const c = current;
      if (c === null) return;
      let matches: boolean;
      if (method === "udp") {
        matches = e.type !== Icmpv4Type.ECHO_REPLY && e.quotedProtocol === IpProtocol.UDP &&
          e.quotedDst === opts.dst && e.quotedSrcPort === sock!.port &&
          e.quotedDstPort === 33434 + c.seq;
      } else {
        matches = e.ident === ident && e.seq === c.seq &&
          (e.type === Icmpv4Type.ECHO_REPLY ? e.from === opts.dst : e.quotedDst === opts.dst);
      }
      if (!matches) return;
      c.timer.cancel();
      current = null;
      c.hop.from.push(e.from);
      c.hop.rttMs.push(clock.now() - c.at);
      c.hop.type = e.type;
      c.hop.code = e.code;
      // The destination answered (port unreachable / echo reply), or an
      // unreachable error ends the trace, as traceroute's !N/!H/!X do.
      if (e.type === Icmpv4Type.ECHO_REPLY || e.type === Icmpv4Type.DEST_UNREACHABLE) done = true;
      nextProbe(c.hop, c.probe + 1);
    };
    stack.ipv4.icmp.listeners.add(listener);
    startHop(1);
  });
}
