/**
 * tapir's own `ping` and `traceroute`, for IPv4 and IPv6, as a library API
 * on a {@link Stack}: they send echo requests (or UDP probes), and report
 * replies and ICMP errors with round-trip times measured on the stack's
 * clock, so they run the same on a manual clock in the virtual lab. Lines
 * read the way iputils' ping and traceroute print them.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Random } from "../random.ts";
import type { BufferPool } from "../wire/packet_buffer.ts";
import type { Udp } from "../transport/udp.ts";

/** What ping, traceroute and the UDP probe need of a stack (its public layers). */
export interface ProbeHost {
  readonly clock: Clock;
  readonly random: Random;
  readonly pool: BufferPool;
  readonly ipv4: Ipv4;
  readonly ipv6: Ipv6;
  readonly udp: Udp;
  nicByName(name: string): Nic | undefined;
}
import type { Nic } from "../nic.ts";
import type { Timer } from "../clock.ts";
import type { Icmpv4Event } from "../ipv4/icmp.ts";
import type { Icmpv6Event } from "../ipv6/icmp.ts";
import { Ipv4 } from "../ipv4/ipv4.ts";
import { Ipv6 } from "../ipv6/ipv6.ts";
import { IpProtocol, writeIpv4Header } from "../wire/ipv4.ts";
import { Icmpv4Type } from "../wire/icmpv4.ts";
import { Icmpv6Type } from "../wire/icmpv6.ts";
import { internetChecksum } from "../wire/checksum.ts";
import {
  formatIpv4,
  formatIpv6,
  ipv6IsLinkLocalUnicast,
  ipv6IsMulticast,
} from "../wire/ip_address.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";

/** Where a probe goes: an IPv4 address (number) or an IPv6 address (16 bytes). */
export type ProbeTarget = number | Uint8Array;

/** Options of {@link ping}. */
export interface PingOptions {
  /** Destination address. */
  dst: ProbeTarget;
  /** The NIC to send from (needed for IPv6 link-local and multicast destinations: `fe80::1%eth0`). */
  nic?: string;
  /** Echo requests to send (default 3). */
  count?: number;
  /** Payload bytes after the 8-byte ICMP header (default 56, as ping). */
  size?: number;
  /** TTL / hop limit of the requests (default 64). */
  ttl?: number;
  /** IPv4: set DF, like `ping -M do` (default false). IPv6 never fragments on the way anyway. */
  dontFragment?: boolean;
  /** Milliseconds between requests (default 1000). */
  intervalMs?: number;
  /** Milliseconds to wait for the last reply (default 2000). */
  timeoutMs?: number;
}

/** One echo reply. */
export interface PingReply {
  seq: number;
  /** The replying address, as text. */
  from: string;
  ttl: number;
  /** ICMP bytes received (header + payload), as ping prints. */
  bytes: number;
  rttMs: number;
}

/** One ICMP error about a request. */
export interface PingError {
  seq: number;
  from: string;
  type: number;
  code: number;
  /** Next-hop MTU of a fragmentation-needed error / MTU of a Packet Too Big. */
  mtu: number;
}

/** What {@link ping} found. */
export interface PingResult {
  dst: string;
  family: 4 | 6;
  sent: number;
  received: number;
  replies: PingReply[];
  errors: PingError[];
}

/** A reply or error, in family-neutral form. */
interface EchoEvent {
  reply: boolean;
  ident: number;
  seq: number;
  from: string;
  ttl: number;
  bytes: number;
  type: number;
  code: number;
  mtu: number;
  /** For errors: the quoted packet was ours to `dst` (with the given protocol). */
  quotedDstMatches: boolean;
  quotedProtocol: number;
  quotedSrcPort: number;
  quotedDstPort: number;
}

/** The text iputils' ping prints for an ICMPv4 error. */
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

/** The text iputils' ping prints for an ICMPv6 error. */
export function describeIcmpv6Error(type: number, code: number, mtu = 0): string {
  switch (type) {
    case Icmpv6Type.DEST_UNREACHABLE:
      return [
        "Destination unreachable: No route",
        "Destination unreachable: Administratively prohibited",
        "Destination unreachable: Beyond scope",
        "Destination unreachable: Address unreachable",
        "Destination unreachable: Port unreachable",
        "Destination unreachable: Source address failed ingress/egress policy",
        "Destination unreachable: Reject route to destination",
      ][code] ?? `Destination unreachable: Unknown code ${code}`;
    case Icmpv6Type.PACKET_TOO_BIG:
      return `Packet too big: mtu=${mtu}`;
    case Icmpv6Type.TIME_EXCEEDED:
      return code === 0 ? "Time exceeded: Hop limit" : "Time exceeded: Defragmentation failure";
    case Icmpv6Type.PARAMETER_PROBLEM:
      return `Parameter problem: code ${code}`;
    default:
      return `ICMPv6 type ${type} code ${code}`;
  }
}

/** The family-specific half of ping and traceroute. */
interface Family {
  v: 4 | 6;
  dstText: string;
  /** IP + ICMP header bytes, for the "56(84) bytes" line. */
  overhead: number;
  sendEcho(ident: number, seq: number, size: number, ttl: number, df: boolean): boolean;
  /** Send a UDP datagram (traceroute's probes, {@link udpProbe}). */
  sendUdp(srcPort: number, dstPort: number, ttl: number): boolean;
  listen(fn: (e: EchoEvent) => void): () => void;
  describe(type: number, code: number, mtu: number): string;
  isUnreachable(type: number): boolean;
}

function family(stack: ProbeHost, dst: ProbeTarget, nicName?: string): Family {
  const nic: Nic | undefined = nicName === undefined ? undefined : stack.nicByName(nicName);
  if (nicName !== undefined && nic === undefined) throw new Error(`no interface "${nicName}"`);
  if (typeof dst === "number") return family4(stack, dst);
  return family6(stack, dst, nic);
}

function family4(stack: ProbeHost, dst: number): Family {
  return {
    v: 4,
    dstText: formatIpv4(dst),
    overhead: 28,
    sendEcho(ident, seq, size, ttl, df) {
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
    },
    sendUdp(srcPort, dstPort, ttl) {
      return stack.udp.send(srcPort, dst, dstPort, new Uint8Array(32), { ttl });
    },
    listen(fn) {
      const l = (e: Icmpv4Event) => {
        const reply = e.type === Icmpv4Type.ECHO_REPLY;
        if (reply && e.from !== dst) return;
        fn({
          reply,
          ident: e.ident,
          seq: e.seq,
          from: formatIpv4(e.from),
          ttl: e.ttl,
          bytes: e.length,
          type: e.type,
          code: e.code,
          mtu: e.mtu,
          quotedDstMatches: e.quotedDst === dst,
          quotedProtocol: e.quotedProtocol,
          quotedSrcPort: e.quotedSrcPort,
          quotedDstPort: e.quotedDstPort,
        });
      };
      stack.ipv4.icmp.listeners.add(l);
      return () => stack.ipv4.icmp.listeners.delete(l);
    },
    describe: describeIcmpv4Error,
    isUnreachable: (t) => t === Icmpv4Type.DEST_UNREACHABLE,
  };
}

function family6(stack: ProbeHost, dst: Uint8Array, nic: Nic | undefined): Family {
  const pinned = ipv6IsLinkLocalUnicast(dst) || ipv6IsMulticast(dst) ? nic : undefined;
  if ((ipv6IsLinkLocalUnicast(dst) || ipv6IsMulticast(dst)) && nic === undefined) {
    throw new Error(`${formatIpv6(dst)} is link-scoped: name the interface (ADDRESS%IFACE)`);
  }
  const same = (a: Uint8Array, off: number) => {
    for (let i = 0; i < 16; i++) if (a[off + i] !== dst[i]) return false;
    return true;
  };
  return {
    v: 6,
    dstText: formatIpv6(dst) + (pinned !== undefined ? `%${pinned.name}` : ""),
    overhead: 48,
    sendEcho(ident, seq, size, ttl) {
      const b = stack.pool.get();
      if (b === null) return false;
      try {
        const off = Ipv6.buildHeader(b, {
          src: null,
          dst,
          nextHeader: 58,
          payloadLen: 8 + size,
          hopLimit: ttl,
        });
        const m = off + 40;
        const v = b.view;
        v.setUint8(m, Icmpv6Type.ECHO_REQUEST);
        v.setUint8(m + 1, 0);
        v.setUint16(m + 2, 0);
        v.setUint16(m + 4, ident);
        v.setUint16(m + 6, seq);
        for (let i = 0; i < size; i++) b.data[m + 8 + i] = (i + 8) & 0xff;
        // The checksum needs the source: output() chooses it and fills the checksum in.
        return stack.ipv6.output(b, off, { nic: pinned });
      } finally {
        stack.pool.put(b);
      }
    },
    listen(fn) {
      const l = (e: Icmpv6Event) => {
        const reply = e.type === Icmpv6Type.ECHO_REPLY;
        if (reply && !same(e.buffer.data, e.srcOffset)) return;
        fn({
          reply,
          ident: e.ident,
          seq: e.seq,
          from: formatIpv6(e.buffer.data, e.srcOffset),
          ttl: e.hopLimit,
          bytes: e.length,
          type: e.type,
          code: e.code,
          mtu: e.mtu,
          quotedDstMatches: e.quotedDstOffset >= 0 && same(e.buffer.data, e.quotedDstOffset),
          quotedProtocol: e.quotedNextHeader === 58 ? IpProtocol.ICMP : e.quotedNextHeader,
          quotedSrcPort: e.quotedSrcPort,
          quotedDstPort: e.quotedDstPort,
        });
      };
      stack.ipv6.icmp.listeners.add(l);
      return () => stack.ipv6.icmp.listeners.delete(l);
    },
    sendUdp(srcPort, dstPort, ttl) {
      return stack.udp.send(srcPort, dst, dstPort, new Uint8Array(32), {
        ttl,
        ...(pinned !== undefined ? { nic: pinned } : {}),
      });
    },
    describe: describeIcmpv6Error,
    isUnreachable: (t) => t === Icmpv6Type.DEST_UNREACHABLE,
  };
}

/**
 * Ping `opts.dst` from `stack`. `onLine` receives each line iputils' ping
 * would print. Resolves when every request was answered or timed out.
 *
 * @example
 * ```ts
 * import { ManualClock, ping, Stack } from "../mod.ts";
 * const clock = new ManualClock();
 * const s = new Stack({ clock });
 * const done = ping(s, { dst: 0x7f000001, count: 1 });
 * for (let i = 0; i < 10; i++) clock.advance(500);
 * console.assert((await done).received === 1);
 * ```
 */
export function ping(
  stack: ProbeHost,
  opts: PingOptions,
  onLine?: (line: string) => void,
): Promise<PingResult> {
  const f = family(stack, opts.dst, opts.nic);
  const count = opts.count ?? 3;
  const size = opts.size ?? 56;
  const ttl = opts.ttl ?? 64;
  const interval = opts.intervalMs ?? 1000;
  const timeout = opts.timeoutMs ?? 2000;
  const ident = stack.random.uint32() & 0xffff;
  const clock = stack.clock;
  const sentAt = new Map<number, number>();
  const result: PingResult = {
    dst: f.dstText,
    family: f.v,
    sent: 0,
    received: 0,
    replies: [],
    errors: [],
  };
  onLine?.(`PING ${f.dstText} (${f.dstText}) ${size}(${size + f.overhead}) bytes of data.`);
  return new Promise((resolve) => {
    const timers: Timer[] = [];
    let finished = false;
    let unlisten = () => {};
    const finish = () => {
      if (finished) return;
      finished = true;
      unlisten();
      for (const t of timers) t.cancel();
      const loss = result.sent === 0
        ? 0
        : Math.round(100 * (result.sent - result.received) / result.sent);
      onLine?.(`--- ${f.dstText} ping statistics ---`);
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
    unlisten = f.listen((e) => {
      if (e.ident !== ident) return;
      const at = sentAt.get(e.seq);
      if (at === undefined) return;
      if (e.reply) {
        sentAt.delete(e.seq);
        const rtt = clock.now() - at;
        result.received++;
        result.replies.push({ seq: e.seq, from: e.from, ttl: e.ttl, bytes: e.bytes, rttMs: rtt });
        onLine?.(
          `${e.bytes} bytes from ${e.from}: icmp_seq=${e.seq} ttl=${e.ttl} time=${
            rtt.toFixed(3)
          } ms`,
        );
      } else {
        if (e.quotedProtocol !== IpProtocol.ICMP || !e.quotedDstMatches) return;
        sentAt.delete(e.seq);
        result.errors.push({ seq: e.seq, from: e.from, type: e.type, code: e.code, mtu: e.mtu });
        onLine?.(`From ${e.from} icmp_seq=${e.seq} ${f.describe(e.type, e.code, e.mtu)}`);
      }
      if (result.sent === count && sentAt.size === 0) finish();
    });
    for (let i = 0; i < count; i++) {
      timers.push(clock.schedule(i * interval, () => {
        const seq = i + 1;
        sentAt.set(seq, clock.now());
        result.sent++;
        f.sendEcho(ident, seq, size, ttl, opts.dontFragment ?? false);
      }));
    }
    timers.push(clock.schedule((count - 1) * interval + timeout, finish));
  });
}

/** Options of {@link traceroute}. */
export interface TracerouteOptions {
  dst: ProbeTarget;
  /** Interface for link-scoped IPv6 destinations. */
  nic?: string;
  /** Highest TTL to try (default 30). */
  maxHops?: number;
  /** Probes per hop (default 1; traceroute's default is 3). */
  probes?: number;
  /** Milliseconds to wait for each probe (default 2000). */
  timeoutMs?: number;
  /**
   * "udp" (ports from 33434, IPv4's default) or "icmp" (echo requests, like
   * `traceroute -I`; IPv6's default).
   */
  method?: "udp" | "icmp";
}

/** One hop of a traceroute: who answered each probe (null for `*`). */
export interface TracerouteHop {
  ttl: number;
  from: (string | null)[];
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
  stack: ProbeHost,
  opts: TracerouteOptions,
  onLine?: (line: string) => void,
): Promise<TracerouteHop[]> {
  const f = family(stack, opts.dst, opts.nic);
  const maxHops = opts.maxHops ?? 30;
  const probes = opts.probes ?? 1;
  const timeout = opts.timeoutMs ?? 2000;
  const method = opts.method ?? (f.v === 4 ? "udp" : "icmp");
  const clock = stack.clock;
  const ident = stack.random.uint32() & 0xffff;
  onLine?.(`traceroute to ${f.dstText} (${f.dstText}), ${maxHops} hops max`);
  const hops: TracerouteHop[] = [];
  const sock = method === "udp" ? stack.udp.bind(0, () => {}) : null;
  let seq = 0;
  return new Promise((resolve) => {
    let current:
      | { seq: number; at: number; timer: Timer; hop: TracerouteHop; probe: number }
      | null = null;
    let done = false;
    let unlisten = () => {};
    const finish = () => {
      unlisten();
      sock?.close();
      resolve(hops);
    };
    const nextProbe = (hop: TracerouteHop, probe: number) => {
      if (probe === probes) {
        const line = hop.from.map((a, i) =>
          a === null ? "*" : `${a}  ${hop.rttMs[i]!.toFixed(3)} ms`
        ).join("  ");
        onLine?.(`${String(hop.ttl).padStart(2)}  ${line}`);
        if (done || hop.ttl >= maxHops) return finish();
        return startHop(hop.ttl + 1);
      }
      seq++;
      const s = seq;
      const at = clock.now();
      if (method === "udp") f.sendUdp(sock!.port, 33434 + s, hop.ttl);
      else f.sendEcho(ident, s, 32, hop.ttl, false);
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
    unlisten = f.listen((e) => {
      const c = current;
      if (c === null) return;
      const matches = method === "udp"
        ? !e.reply && e.quotedProtocol === IpProtocol.UDP && e.quotedDstMatches &&
          e.quotedSrcPort === sock!.port && e.quotedDstPort === 33434 + c.seq
        : e.ident === ident && e.seq === c.seq && (e.reply || e.quotedDstMatches);
      if (!matches) return;
      c.timer.cancel();
      current = null;
      c.hop.from.push(e.from);
      c.hop.rttMs.push(clock.now() - c.at);
      c.hop.type = e.type;
      c.hop.code = e.code;
      // The destination answered, or an unreachable error ends the trace (traceroute's !N/!H/!X).
      if (e.reply || f.isUnreachable(e.type)) done = true;
      nextProbe(c.hop, c.probe + 1);
    });
    startHop(1);
  });
}

/** Options of {@link udpProbe}. */
export interface UdpProbeOptions {
  dst: ProbeTarget;
  /** Destination port. */
  port: number;
  /** Interface for link-scoped IPv6 destinations. */
  nic?: string;
  /** Datagrams to send (default 3). */
  count?: number;
  intervalMs?: number;
  timeoutMs?: number;
}

/**
 * Send UDP datagrams to `dst:port` and collect the ICMP errors that come
 * back about them: Port Unreachable (nothing listens: the host is there),
 * Administratively Prohibited (a firewall REJECT), or nothing (dropped, or
 * something listened and did not answer). Replies are not waited for.
 * Shaped like {@link PingResult}, with `received` always 0.
 */
export function udpProbe(
  stack: ProbeHost,
  opts: UdpProbeOptions,
  onLine?: (line: string) => void,
): Promise<PingResult> {
  const f = family(stack, opts.dst, opts.nic);
  const count = opts.count ?? 3;
  const interval = opts.intervalMs ?? 1000;
  const timeout = opts.timeoutMs ?? 2000;
  const clock = stack.clock;
  const sock = stack.udp.bind(0, () => {});
  const result: PingResult = {
    dst: f.dstText,
    family: f.v,
    sent: 0,
    received: 0,
    replies: [],
    errors: [],
  };
  onLine?.(`UDP ${f.dstText} port ${opts.port}: ${count} datagrams`);
  return new Promise((resolve) => {
    const timers: Timer[] = [];
    const unlisten = f.listen((e) => {
      if (e.reply || e.quotedProtocol !== IpProtocol.UDP || !e.quotedDstMatches) return;
      if (e.quotedSrcPort !== sock.port || e.quotedDstPort !== opts.port) return;
      result.errors.push({
        seq: result.errors.length + 1,
        from: e.from,
        type: e.type,
        code: e.code,
        mtu: e.mtu,
      });
      onLine?.(`From ${e.from}: ${f.describe(e.type, e.code, e.mtu)}`);
    });
    for (let i = 0; i < count; i++) {
      timers.push(clock.schedule(i * interval, () => {
        result.sent++;
        f.sendUdp(sock.port, opts.port, 64);
      }));
    }
    timers.push(clock.schedule((count - 1) * interval + timeout, () => {
      unlisten();
      sock.close();
      onLine?.(
        `${result.sent} sent, ${result.errors.length} ICMP errors${
          result.errors.length === 0 ? " (silence)" : ""
        }`,
      );
      resolve(result);
    }));
  });
}
