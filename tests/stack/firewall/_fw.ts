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

/** A TCP segment (20-byte header, or 24 with an MSS option when `mss` is set). */
export function tcp(
  s: PacketSpec & { sport: number; dport: number; flags: number; mss?: number },
): PacketBuffer {
  const b = new PacketBuffer();
  const hl = s.mss === undefined ? 20 : 24;
  const len = hl + (s.payload ?? 0);
  ipHeader(b, s, 6, len);
  const t = IP_OFF + 20, v = b.view;
  v.setUint16(t, s.sport);
  v.setUint16(t + 2, s.dport);
  v.setUint32(t + 4, 1000);
  v.setUint32(t + 8, (s.flags & 0x10) ? 2000 : 0);
  b.data[t + 12] = (hl / 4) << 4;
  b.data[t + 13] = s.flags;
  v.setUint16(t + 14, 65535);
  if (s.mss !== undefined) {
    b.data[t + 20] = 2;
    b.data[t + 21] = 4;
    v.setUint16(t + 22, s.mss);
  }
  fillL4(b);
  return b;
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
