/**
 * Helpers for firewall tests: a firewall from TOML `[firewall]` text, and
 * hand-built IPv4 packets (TCP, UDP, ICMP) with valid checksums.
 */
import { parseConfig } from "../../../config/mod.ts";
import { Firewall } from "../../../stack/firewall/mod.ts";
import type { Nic, Stack } from "../../../stack/mod.ts";
import {
  finishChecksum,
  internetChecksum,
  ipv4PseudoHeaderSum,
  onesSum,
} from "../../../stack/wire/checksum.ts";
import { HEADROOM, PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { parseIpv4 } from "../../../stack/wire/mod.ts";
import { checksum6 } from "../../topology/_packets6.ts";

/** Where test packets' IP headers start. */
export const IP_OFF = HEADROOM + 14;

/** Parse `[firewall]` TOML, build the firewall on `stack` and install it. */
export function firewallFrom(stack: Stack, toml: string): Firewall {
  const cfg = parseConfig(toml);
  const fw = new Firewall(stack, cfg.firewall);
  fw.install();
  stack.firewall = fw;
  return fw;
}

/** Dotted quad → number. */
export const ip = parseIpv4;

/** Fields of a test packet. */
export interface PacketSpec {
  src: string;
  dst: string;
  ttl?: number;
  /** Bytes of payload after the L4 header. */
  payload?: number;
}

function ipHeader(b: PacketBuffer, s: PacketSpec, proto: number, l4Len: number): void {
  const v = b.view;
  b.data[IP_OFF] = 0x45;
  b.data[IP_OFF + 1] = 0;
  v.setUint16(IP_OFF + 2, 20 + l4Len);
  v.setUint16(IP_OFF + 4, 0x1234);
  v.setUint16(IP_OFF + 6, 0x4000);
  b.data[IP_OFF + 8] = s.ttl ?? 64;
  b.data[IP_OFF + 9] = proto;
  v.setUint16(IP_OFF + 10, 0);
  v.setUint32(IP_OFF + 12, ip(s.src));
  v.setUint32(IP_OFF + 16, ip(s.dst));
  v.setUint16(IP_OFF + 10, internetChecksum(b.data, IP_OFF, 20));
  b.start = IP_OFF - 14;
  b.end = IP_OFF + 20 + l4Len;
  b.networkOffset = IP_OFF;
}

/** Fields of a test TCP segment. */
export interface TcpSpec extends PacketSpec {
  sport: number;
  dport: number;
  flags: number;
  /** An MSS option. */
  mss?: number;
  /** Default 1000. */
  seq?: number;
  /** Default 2000 with ACK, else 0. */
  ack?: number;
  /** The window field (default 65535). */
  win?: number;
  /** More option bytes after the MSS (padded with NOPs to a multiple of 4). */
  options?: number[];
}

/** A TCP segment (20-byte header, plus an MSS option when `mss` is set and `options`). */
export function tcp(s: TcpSpec): PacketBuffer {
  const b = new PacketBuffer();
  const opts = [
    ...(s.mss === undefined ? [] : [2, 4, s.mss >> 8, s.mss & 0xff]),
    ...(s.options ?? []),
  ];
  while (opts.length % 4 !== 0) opts.push(1);
  const hl = 20 + opts.length;
  const len = hl + (s.payload ?? 0);
  ipHeader(b, s, 6, len);
  const t = IP_OFF + 20, v = b.view;
  v.setUint16(t, s.sport);
  v.setUint16(t + 2, s.dport);
  v.setUint32(t + 4, s.seq ?? 1000);
  v.setUint32(t + 8, s.ack ?? ((s.flags & 0x10) ? 2000 : 0));
  b.data[t + 12] = (hl / 4) << 4;
  b.data[t + 13] = s.flags;
  v.setUint16(t + 14, s.win ?? 65535);
  b.data.set(opts, t + 20);
  fillL4(b);
  return b;
}

/** TCP option bytes: Window Scale (RFC 7323 §2.2). */
export const WSCALE = (shift: number): number[] => [1, 3, 3, shift];
/** TCP option bytes: SACK-Permitted (RFC 2018 §2). */
export const SACK_PERM = [1, 1, 4, 2];

/**
 * Both ends of one TCP connection through a router's hooks, keeping
 * their sequence numbers: each segment carries the sender's next
 * sequence number and acknowledges everything the other end sent.
 */
export class TcpFlow {
  /** Next sequence number of the client (0) and the server (1). */
  readonly next: [number, number] = [1000, 50_000];

  /**
   * @param fw the router's firewall
   * @param ends client and server address, port and NIC on the router
   */
  constructor(
    readonly fw: Firewall,
    readonly ends: [
      { addr: string; port: number; nic: Nic },
      { addr: string; port: number; nic: Nic },
    ],
  ) {}

  /** The segment `dir` would send now (the flow does not advance). */
  segment(
    dir: 0 | 1,
    flags: number,
    o: { payload?: number; win?: number; seq?: number; ack?: number; options?: number[] } = {},
  ): PacketBuffer {
    const me = this.ends[dir]!, peer = this.ends[dir === 0 ? 1 : 0]!;
    return tcp({
      src: me.addr,
      dst: peer.addr,
      sport: me.port,
      dport: peer.port,
      flags,
      seq: o.seq ?? this.next[dir],
      ack: o.ack ?? ((flags & 0x10) !== 0 ? this.next[dir === 0 ? 1 : 0] : 0),
      win: o.win,
      payload: o.payload,
      options: o.options,
    });
  }

  /**
   * Send a segment from `dir` through the router: true when it passes.
   * A segment that passes at the sender's next sequence number (no `seq`
   * given) advances it; a dropped one never reached the peer.
   */
  send(
    dir: 0 | 1,
    flags: number,
    o: { payload?: number; win?: number; seq?: number; ack?: number; options?: number[] } = {},
  ): boolean {
    const b = this.segment(dir, flags, o);
    const ok = forwardThrough(this.fw, b, this.ends[dir]!.nic, this.ends[dir === 0 ? 1 : 0]!.nic);
    if (ok && o.seq === undefined) {
      this.next[dir] =
        (this.next[dir] + (o.payload ?? 0) + (flags & 0x02 ? 1 : 0) + (flags & 0x01)) >>>
        0;
    }
    return ok;
  }
}

/** A UDP datagram. */
export function udp(
  s: PacketSpec & { sport: number; dport: number },
  into?: PacketBuffer,
): PacketBuffer {
  const b = into ?? new PacketBuffer();
  const len = 8 + (s.payload ?? 4);
  ipHeader(b, s, 17, len);
  const u = IP_OFF + 20, v = b.view;
  v.setUint16(u, s.sport);
  v.setUint16(u + 2, s.dport);
  v.setUint16(u + 4, len);
  for (let i = 8; i < len; i++) b.data[u + i] = i;
  fillL4(b);
  return b;
}

/** An ICMP echo request (type 8) or reply (type 0), or another query type. */
export function icmpEcho(
  s: PacketSpec & { type?: number; id: number; seq?: number },
): PacketBuffer {
  const b = new PacketBuffer();
  ipHeader(b, s, 1, 16);
  const m = IP_OFF + 20, v = b.view;
  b.data[m] = s.type ?? 8;
  b.data[m + 1] = 0;
  v.setUint16(m + 4, s.id);
  v.setUint16(m + 6, s.seq ?? 1);
  fillL4(b);
  return b;
}

/** An ICMP error (`type`/`code`) from `src` to `dst` quoting `orig`'s first 28 bytes or more. */
export function icmpError(
  s: PacketSpec & { type: number; code: number },
  orig: PacketBuffer,
  quote = 28,
): PacketBuffer {
  const b = new PacketBuffer();
  ipHeader(b, s, 1, 8 + quote);
  const m = IP_OFF + 20;
  b.data[m] = s.type;
  b.data[m + 1] = s.code;
  b.data.set(orig.data.subarray(orig.networkOffset, orig.networkOffset + quote), m + 8);
  fillL4(b);
  return b;
}

/** (Re)compute the L4 checksum of a test packet. */
export function fillL4(b: PacketBuffer): void {
  const v = b.view, d = b.data;
  const proto = d[IP_OFF + 9]!;
  const l4 = IP_OFF + 20, len = b.end - l4;
  if (proto === 1) {
    v.setUint16(l4 + 2, 0);
    v.setUint16(l4 + 2, internetChecksum(d, l4, len));
    return;
  }
  const at = l4 + (proto === 6 ? 16 : 6);
  v.setUint16(at, 0);
  const c = finishChecksum(
    onesSum(
      d,
      l4,
      len,
      ipv4PseudoHeaderSum(v.getUint32(IP_OFF + 12), v.getUint32(IP_OFF + 16), proto, len),
    ),
  );
  v.setUint16(at, proto === 17 && c === 0 ? 0xffff : c);
}

/** True when the IP header and L4 checksums of a packet (at `off`) are valid. */
export function checksumsOk(b: PacketBuffer, off = IP_OFF): boolean {
  const d = b.data, v = b.view;
  const hl = (d[off]! & 0x0f) * 4;
  if (internetChecksum(d, off, hl) !== 0) return false;
  const proto = d[off + 9]!;
  const l4 = off + hl, len = v.getUint16(off + 2) - hl;
  if (proto === 1) return internetChecksum(d, l4, len) === 0;
  if (proto === 17 && v.getUint16(l4 + 6) === 0) return true;
  const sum = onesSum(
    d,
    l4,
    len,
    ipv4PseudoHeaderSum(v.getUint32(off + 12), v.getUint32(off + 16), proto, len),
  );
  return finishChecksum(sum) === 0;
}

/** The 4-tuple of a packet as text: `src:sport>dst:dport` (ICMP: id as both ports). */
export function tuple(b: PacketBuffer, off = IP_OFF): string {
  const v = b.view, d = b.data;
  const f = (n: number) => `${n >>> 24}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const l4 = off + (d[off]! & 0x0f) * 4;
  const proto = d[off + 9]!;
  const sp = proto === 1 ? v.getUint16(l4 + 4) : v.getUint16(l4);
  const dp = proto === 1 ? v.getUint16(l4 + 4) : v.getUint16(l4 + 2);
  return `${f(v.getUint32(off + 12))}:${sp}>${f(v.getUint32(off + 16))}:${dp}`;
}

/** Pass a packet through a router's hooks as a forwarded packet: true when it survives. */
export function forwardThrough(fw: Firewall, b: PacketBuffer, inNic: Nic, outNic: Nic): boolean {
  return fw.prerouting(b, IP_OFF, inNic, null) && fw.forward(b, IP_OFF, inNic, outNic) &&
    fw.postrouting(b, IP_OFF, null, outNic);
}

/** TCP flag bits. */
export const F = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 } as const;

/** A TCP segment (20-byte header, `payload` bytes of data) with a valid checksum over IPv6. */
export function tcp6(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  flags: number,
  o: { seq?: number; ack?: number; payload?: number } = {},
): Uint8Array {
  const b = new Uint8Array(20 + (o.payload ?? 0));
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint32(4, o.seq ?? 1000);
  v.setUint32(8, o.ack ?? 0);
  b[12] = 5 << 4;
  b[13] = flags;
  v.setUint16(14, 65535);
  for (let i = 20; i < b.length; i++) b[i] = i & 0xff;
  v.setUint16(16, checksum6(src, dst, 6, b));
  return b;
}
