/**
 * NAT on connection tracking: rewriting a packet's source or destination
 * with incremental checksums (RFC 1624), choosing a NAT mapping whose
 * reply tuple is unique, and translating the packet quoted inside an ICMP
 * error (so traceroute through NAT shows the hops), in the manner of
 * Linux's nf_nat_core / nf_nat_proto; for IPv4 and, as ip6tables does,
 * IPv6 (NAT66). Also the stateless, checksum-neutral prefix translation
 * of NPTv6 (RFC 6296, ip6tables' SNPT/DNPT).
 *
 * @module
 */
import { checksumUpdate16, checksumUpdate32, internetChecksum } from "../wire/checksum.ts";
import { FRAG_LATER, type PacketBuffer } from "../wire/packet_buffer.ts";
import { Ipv6UpperLayer } from "../wire/ipv6_ext.ts";
import type { Random } from "../random.ts";
import { type Conn, type Conntrack, CtStatus, type CtTuple, TcpCtState } from "./conntrack.ts";

/** Which end of a packet a NAT step rewrites (Linux NF_NAT_MANIP_*). */
export const Manip = { SRC: 0, DST: 1 } as const;

/** ICMP query types and their reply types (the ones conntrack tracks). */
export const ICMP_QUERY_REPLY: Readonly<Record<number, number>> = {
  8: 0,
  0: 8,
  13: 14,
  14: 13,
  15: 16,
  16: 15,
  17: 18,
  18: 17,
};

/** ICMPv6 query types and their reply types (the ones conntrack tracks). */
const ICMPV6_QUERY_REPLY: Readonly<Record<number, number>> = {
  128: 129,
  129: 128,
  139: 140,
  140: 139,
};

/** True for a protocol whose tuple has ports (or an ICMP/ICMPv6 identifier). */
export function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 1 || proto === 58;
}

/**
 * Rewrite the source (`Manip.SRC`) or destination of the IPv4 packet at
 * `ipOff` to `addr` and, when `port >= 0` and the transport header is
 * there, its port (for ICMP queries: the identifier). Checksums are
 * patched incrementally: IPv4 header, TCP/UDP (pseudo header and port; a
 * UDP checksum of 0 stays 0, RFC 768), ICMP (identifier).
 *
 * @param end first byte past the packet (a quoted packet may be cut short)
 * @param partial the L4 checksum field holds a pseudo-header sum to be
 *   completed later (virtio NEEDS_CSUM): only the address part changes it
 */
export function manipIpv4(
  pkt: PacketBuffer,
  ipOff: number,
  end: number,
  manip: number,
  addr: number,
  port: number,
  partial: boolean,
): void {
  const d = pkt.data, v = pkt.view;
  const at = ipOff + (manip === Manip.SRC ? 12 : 16);
  const oldAddr = v.getUint32(at);
  if (oldAddr !== addr) {
    v.setUint32(at, addr);
    v.setUint16(ipOff + 10, checksumUpdate32(v.getUint16(ipOff + 10), oldAddr, addr));
  }
  if ((v.getUint16(ipOff + 6) & 0x1fff) !== 0) return; // a non-first fragment has no L4 header
  const l4 = ipOff + ((d[ipOff]! & 0x0f) << 2);
  const proto = d[ipOff + 9]!;
  if (proto === 6 || proto === 17) {
    const pAt = l4 + (manip === Manip.SRC ? 0 : 2);
    const oldPort = pAt + 2 <= end ? v.getUint16(pAt) : -1;
    const newPort = port >= 0 && oldPort >= 0 ? port : oldPort;
    if (newPort !== oldPort) v.setUint16(pAt, newPort);
    const cAt = l4 + (proto === 6 ? 16 : 6);
    if (cAt + 2 > end) return;
    let c = v.getUint16(cAt);
    if (partial) {
      // The field is an uncomplemented sum: S' = S - old + new.
      c = ~checksumUpdate32(~c & 0xffff, oldAddr, addr) & 0xffff;
    } else {
      if (proto === 17 && c === 0) return; // no checksum (RFC 768)
      c = checksumUpdate32(c, oldAddr, addr);
      if (newPort !== oldPort) c = checksumUpdate16(c, oldPort, newPort);
      if (proto === 17 && c === 0) c = 0xffff;
    }
    v.setUint16(cAt, c);
  } else if (proto === 1 && port >= 0 && l4 + 8 <= end && ICMP_QUERY_REPLY[d[l4]!] !== undefined) {
    const old = v.getUint16(l4 + 4);
    if (old !== port) {
      v.setUint16(l4 + 4, port);
      v.setUint16(l4 + 2, checksumUpdate16(v.getUint16(l4 + 2), old, port));
    }
  }
}

/** A NAT step: rewrite the IPv4 packet at `ipOff`, of `c` in direction `dir`, at a hook doing `manip`. */
export type NatStep = (
  pkt: PacketBuffer,
  ipOff: number,
  c: Conn,
  dir: 0 | 1,
  manip: number,
) => void;

/**
 * Apply `c`'s NAT to a packet going in direction `dir` at a hook doing
 * `manip`: the packet's end is rewritten to look like the inverse of the
 * other direction's tuple (Linux nf_nat_packet).
 */
export const natPacket: NatStep = (pkt, ipOff, c, dir, manip) => {
  const t = dir === 0 ? c.reply : c.orig;
  const partial = (pkt.vnetFlags & 1) !== 0;
  if (manip === Manip.SRC) manipIpv4(pkt, ipOff, pkt.end, manip, t.dst, t.dport, partial);
  else manipIpv4(pkt, ipOff, pkt.end, manip, t.src, t.sport, partial);
};

/** Whether a packet of `c` in `dir` needs the `manip` step (Linux statusbit logic). */
export function needsManip(c: Conn, dir: 0 | 1, manip: number): boolean {
  let bit: number = manip === Manip.SRC ? CtStatus.SRC_NAT : CtStatus.DST_NAT;
  if (dir === 1) bit = bit === CtStatus.SRC_NAT ? CtStatus.DST_NAT : CtStatus.SRC_NAT;
  return (c.status & bit) !== 0;
}

/**
 * Translate an ICMP error that is RELATED to `c` (Linux
 * nf_nat_icmp_reply_translation): the quoted packet gets the opposite
 * manipulation towards the other direction's tuple, the ICMP checksum is
 * recomputed, and the outer header is rewritten like a reply.
 */
export const natIcmpError: NatStep = (pkt, ipOff, c, dir, manip) => {
  if (!needsManip(c, dir, manip)) return;
  const t: CtTuple = dir === 0 ? c.reply : c.orig;
  const l4 = ipOff + ((pkt.data[ipOff]! & 0x0f) << 2);
  const inner = l4 + 8;
  if (inner + 20 > pkt.end) return;
  if (manip === Manip.DST) {
    manipIpv4(pkt, inner, pkt.end, Manip.SRC, t.src, t.sport, false);
  } else {
    manipIpv4(pkt, inner, pkt.end, Manip.DST, t.dst, t.dport, false);
  }
  // The quoted bytes changed: recompute the ICMP checksum (errors are short).
  pkt.view.setUint16(l4 + 2, 0);
  pkt.view.setUint16(l4 + 2, internetChecksum(pkt.data, l4, pkt.end - l4));
  // The outer header looks like the reply to the translated packet.
  if (manip === Manip.DST) manipIpv4(pkt, ipOff, pkt.end, Manip.DST, t.src, -1, false);
  else manipIpv4(pkt, ipOff, pkt.end, Manip.SRC, t.dst, -1, false);
};

/** A port range for NAT (inclusive). */
export interface NatPorts {
  min: number;
  max: number;
}

/** Linux's default source port range for SNAT: keep the port's class. */
function defaultSrcRange(proto: number, port: number): NatPorts {
  if (proto === 1 || proto === 58) return { min: 0, max: 65535 };
  if (port < 512) return { min: 1, max: 511 };
  if (port < 1024) return { min: 600, max: 1023 };
  return { min: 1024, max: 65535 };
}

/**
 * Choose `c`'s NAT mapping for `manip` to `addr` (ports from `ports` or
 * Linux's default range), keeping the reply tuple unique in `ct` (Linux
 * nf_nat_l4proto_unique_tuple). The original port is kept when it is in
 * range and free; otherwise the range is searched from a random offset
 * (all of it up to 512 ports, else 128 tries). In the last
 * {@link HARDER_TRIES} tries a new TCP connection may take the tuple of a
 * source-NATed one that is closing (see {@link takenHarder}).
 *
 * @returns false when no free tuple exists (the caller drops and counts)
 */
export function setupNat(
  ct: Conntrack,
  random: Random,
  c: Conn,
  manip: number,
  addr: number,
  ports: NatPorts | undefined,
): boolean {
  const r = c.reply;
  const o = c.orig;
  const proto = c.proto;
  if (manip === Manip.SRC) r.dst = addr;
  else r.src = addr;
  const free = () => !ct.taken(r.protoKey, r.src, r.dst, r.sport, r.dport, c);
  const icmp = proto === 1 || proto === 58;
  // DNAT of an ICMP query keeps the identifier; ports matter only for TCP/UDP/ICMP.
  if (!hasPorts(proto) || (icmp && manip === Manip.DST)) {
    c.status |= manip === Manip.SRC ? CtStatus.SRC_NAT : CtStatus.DST_NAT;
    return free();
  }
  const cur = manip === Manip.SRC ? o.sport : o.dport;
  const range = ports ??
    (manip === Manip.SRC ? defaultSrcRange(proto, cur) : { min: cur, max: cur });
  const set = (p: number) => {
    if (icmp) r.sport = r.dport = p;
    else if (manip === Manip.SRC) r.dport = p;
    else r.sport = p;
  };
  c.status |= manip === Manip.SRC ? CtStatus.SRC_NAT : CtStatus.DST_NAT;
  if (cur >= range.min && cur <= range.max) {
    set(cur);
    if (free()) return true;
  }
  const size = range.max - range.min + 1;
  const start = Math.floor(random.float() * size);
  const tries = size <= 512 ? size : 128;
  for (let i = 0; i < tries; i++) {
    set(range.min + (start + i) % size);
    if (tries - i > HARDER_TRIES ? free() : !takenHarder(ct, c)) return true;
  }
  return false;
}

/** How many of the last tries may evict a closing connection (Linux NF_NAT_HARDER_THRESH). */
export const HARDER_TRIES = 32;

/**
 * Whether `c`'s reply tuple is taken, when a closing connection may give
 * it up (Linux nf_nat_used_tuple_harder, 6.5): a new TCP connection (SYN
 * sent) takes the reply tuple of an older source-NATed one in TIME_WAIT
 * or CLOSE whose sequence numbers its own have passed, evicting it; so a
 * one-port `--to-ports` range serves the next connection once the last one
 * closed, as the kernel does. Anything else stays taken.
 */
function takenHarder(ct: Conntrack, c: Conn): boolean {
  const r = c.reply;
  const t = ct.lookup(r.protoKey, r.src, r.dst, r.sport, r.dport);
  if (t === null || t.conn === c) return false;
  const old = t.conn;
  if (
    c.proto !== 6 || c.tcpState !== TcpCtState.SYN_SENT || t.dir !== 1 ||
    old.tcpState < TcpCtState.TIME_WAIT || !old.has(CtStatus.SRC_NAT) ||
    c.tcp === null || old.tcp === null ||
    ((c.tcp.seen[0].end - old.tcp.seen[0].end) | 0) <= 0
  ) return true;
  ct.remove(old);
  return false;
}

// ------------------------------------------------------------ IPv6

/**
 * Rewrite the source (`Manip.SRC`) or destination of the IPv6 packet at
 * `ipOff` to the 16 bytes at `addr`, and, when `port >= 0` and the
 * transport header is there, its port (ICMPv6 echo: the identifier).
 * IPv6 has no header checksum; TCP, UDP and ICMPv6 checksums cover the
 * pseudo header (RFC 8200 §8.1) and are patched incrementally (RFC 1624),
 * address and port in one sum. A UDP checksum of 0 is left alone, as Linux
 * does.
 *
 * @param l4 offset of the upper-layer header, or -1 (a later fragment)
 * @param proto the upper-layer protocol
 * @param end first byte past the packet (a quoted packet may be cut short)
 * @param partial the L4 checksum field holds a pseudo-header sum (virtio NEEDS_CSUM)
 */
export function manipIpv6(
  pkt: PacketBuffer,
  ipOff: number,
  l4: number,
  proto: number,
  end: number,
  manip: number,
  addr: Uint8Array,
  port: number,
  partial: boolean,
): void {
  const d = pkt.data;
  const at = ipOff + (manip === Manip.SRC ? 8 : 24);
  // The checksum field's offset and the port's (or identifier's).
  let cAt = -1, pAt = -1;
  if (l4 >= 0) {
    if (proto === 6 || proto === 17) {
      cAt = l4 + (proto === 6 ? 16 : 6);
      pAt = l4 + (manip === Manip.SRC ? 0 : 2);
    } else if (proto === 58) {
      cAt = l4 + 2;
      if (l4 + 8 <= end && ICMPV6_QUERY_REPLY[d[l4]!] !== undefined) pAt = l4 + 4;
    }
  }
  // The address: its old words complemented plus its new ones (RFC 1624
  // eqn. 3), copied as it goes. A loop, not d.set(addr.subarray(…)): 16
  // bytes do not pay for a view and a builtin call.
  let sum = 0;
  for (let i = 0; i < 16; i += 2) {
    const j = at + i, n0 = addr[i]!, n1 = addr[i + 1]!;
    sum += (((d[j]! << 8) | d[j + 1]!) ^ 0xffff) + ((n0 << 8) | n1);
    d[j] = n0;
    d[j + 1] = n1;
  }
  const hasSum = cAt >= 0 && cAt + 2 <= end;
  const c = hasSum ? (d[cAt]! << 8) | d[cAt + 1]! : 0;
  // A pseudo-header sum (partial) covers the addresses, not the ports.
  if (pAt >= 0 && port >= 0 && pAt + 2 <= end) {
    const old = (d[pAt]! << 8) | d[pAt + 1]!;
    if (old !== port) {
      d[pAt] = port >>> 8;
      d[pAt + 1] = port & 0xff;
      if (!partial) sum += (old ^ 0xffff) + port;
    }
  }
  if (!hasSum || (proto === 17 && c === 0 && !partial)) return;
  // partial: the field is a plain ones' complement sum; otherwise its complement.
  let s = partial ? c + sum : (c ^ 0xffff) + sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  let n = partial ? s : s ^ 0xffff;
  if (proto === 17 && n === 0 && !partial) n = 0xffff;
  d[cAt] = n >>> 8;
  d[cAt + 1] = n & 0xff;
}

/** The address of an IPv6 conntrack id (Ipv6AddressIds.address). */
export type Ipv6AddressOf = (id: number) => Uint8Array | undefined;

/**
 * Apply `c`'s NAT to an IPv6 packet going in `dir` at a hook doing `manip`
 * (Linux nf_nat_ipv6_manip_pkt).
 *
 * @param l4 the upper layer's offset, -1 for a later fragment
 */
export function natPacket6(
  pkt: PacketBuffer,
  ipOff: number,
  l4: number,
  proto: number,
  c: Conn,
  dir: 0 | 1,
  manip: number,
  addressOf: Ipv6AddressOf,
): void {
  const t = dir === 0 ? c.reply : c.orig;
  const a = addressOf(manip === Manip.SRC ? t.dst : t.src);
  if (a === undefined) return;
  const port = manip === Manip.SRC ? t.dport : t.sport;
  manipIpv6(pkt, ipOff, l4, proto, pkt.end, manip, a, port, (pkt.vnetFlags & 1) !== 0);
}

const innerWalk = new Ipv6UpperLayer();

/**
 * Translate an ICMPv6 error RELATED to `c` (Linux
 * nf_nat_icmpv6_reply_translation): the quoted packet gets the opposite
 * manipulation, the outer header is rewritten like a reply, and the
 * ICMPv6 checksum (RFC 4443 §2.3: over the pseudo header and the whole
 * message) is computed afresh.
 *
 * @param l4 the outer ICMPv6 header's offset
 */
export function natIcmpError6(
  pkt: PacketBuffer,
  ipOff: number,
  l4: number,
  c: Conn,
  dir: 0 | 1,
  manip: number,
  addressOf: Ipv6AddressOf,
): void {
  if (!needsManip(c, dir, manip)) return;
  const t: CtTuple = dir === 0 ? c.reply : c.orig;
  const inner = l4 + 8;
  const end = pkt.end;
  if (inner + 40 > end) return;
  const u = innerWalk.find(pkt.data, inner, end);
  const il4 = (u.fragment & FRAG_LATER) !== 0 ? -1 : u.offset;
  if (manip === Manip.DST) {
    const a = addressOf(t.src);
    if (a === undefined) return;
    manipIpv6(pkt, inner, il4, u.proto, end, Manip.SRC, a, t.sport, false);
    manipIpv6(pkt, ipOff, -1, 58, end, Manip.DST, a, -1, false);
  } else {
    const a = addressOf(t.dst);
    if (a === undefined) return;
    manipIpv6(pkt, inner, il4, u.proto, end, Manip.DST, a, t.dport, false);
    manipIpv6(pkt, ipOff, -1, 58, end, Manip.SRC, a, -1, false);
  }
  icmpv6Checksum(pkt, ipOff, l4);
}

/** Compute the ICMPv6 checksum of the message at `l4` of the IPv6 packet at `ipOff` afresh. */
function icmpv6Checksum(pkt: PacketBuffer, ipOff: number, l4: number): void {
  const v = pkt.view, d = pkt.data;
  const len = pkt.end - l4;
  v.setUint16(l4 + 2, 0);
  let s = 0;
  for (let i = 8; i < 40; i += 2) s += (d[ipOff + i]! << 8) | d[ipOff + i + 1]!;
  s += (len >>> 16) + (len & 0xffff) + 58;
  for (let i = 0; i + 1 < len; i += 2) s += (d[l4 + i]! << 8) | d[l4 + i + 1]!;
  if ((len & 1) !== 0) s += d[l4 + len - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  v.setUint16(l4 + 2, ~s & 0xffff);
}

/**
 * NPTv6 (RFC 6296): a stateless translation of one IPv6 prefix into
 * another of the same or a different length (≤ 64), checksum-neutral:
 * one 16-bit word of the address below the prefix is adjusted by the
 * ones' complement difference of the prefixes, so the address's sum — and
 * with it every TCP, UDP and ICMPv6 checksum over it — does not change.
 * Follows Linux's ip6t_NPT (the adjustment word is word 3 for prefixes up
 * to /48, RFC 6296 §3.2, else the first word after the prefix that is not
 * 0xFFFF, §3.5).
 *
 * @example
 * ```ts
 * import { Npt } from "./nat.ts";
 * import { parseIpv6, formatIpv6 } from "../wire/ip_address.ts";
 * // RFC 6296 Appendix B: fd01:203:405::/48 <-> 2001:db8:1::/48
 * const npt = new Npt(parseIpv6("fd01:203:405::"), 48, parseIpv6("2001:db8:1::"), 48);
 * const a = parseIpv6("fd01:203:405:1::1234");
 * npt.map(a, 0);
 * console.assert(formatIpv6(a) === "2001:db8:1:d550::1234");
 * ```
 */
export class Npt {
  readonly #to: Uint8Array;
  readonly #len: number;
  /** Ones' complement sum of the source prefix minus that of the destination prefix. */
  readonly adjustment: number;

  /**
   * @param from the prefix addresses are translated from (host bits zero)
   * @param to the prefix they are translated to (host bits zero)
   */
  constructor(from: Uint8Array, fromLen: number, to: Uint8Array, toLen: number) {
    this.#to = to.slice(0, 16);
    this.#len = Math.max(fromLen, toLen);
    let sf = 0, st = 0;
    for (let i = 0; i < 16; i += 2) {
      sf += (from[i]! << 8) | from[i + 1]!;
      st += (to[i]! << 8) | to[i + 1]!;
    }
    let s = sf + (~st >>> 0);
    while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
    this.adjustment = s;
  }

  /**
   * Translate the address at `a[off..]` in place.
   *
   * @returns false when it cannot be translated (every word after a
   *   prefix longer than /48 is 0xFFFF); the caller drops the packet
   */
  map(a: Uint8Array, off: number): boolean {
    const len = this.#len, to = this.#to;
    let i = 0;
    for (; (i + 1) * 8 <= len; i++) a[off + i] = to[i]!;
    if (i * 8 < len) {
      const m = (0xff << (8 - (len & 7))) & 0xff;
      a[off + i] = (a[off + i]! & ~m) | (to[i]! & m);
    }
    let w = 3;
    if (len > 48) {
      for (w = 4; w < 8; w++) if (((a[off + 2 * w]! << 8) | a[off + 2 * w + 1]!) !== 0xffff) break;
      if (w === 8) return false;
    }
    let s = ((a[off + 2 * w]! << 8) | a[off + 2 * w + 1]!) + this.adjustment;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    if (s === 0xffff) s = 0;
    a[off + 2 * w] = s >> 8;
    a[off + 2 * w + 1] = s & 0xff;
    return true;
  }
}
