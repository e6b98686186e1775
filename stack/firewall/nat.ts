/**
 * NAT on connection tracking: rewriting a packet's source or destination
 * with incremental checksums (RFC 1624), choosing a NAT mapping whose
 * reply tuple is unique, and translating the packet quoted inside an ICMP
 * error (so traceroute through NAT shows the hops), in the manner of
 * Linux's nf_nat_core / nf_nat_proto.
 *
 * @module
 */
import { checksumUpdate16, checksumUpdate32, internetChecksum } from "../wire/checksum.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import type { Random } from "../random.ts";
import { type Conn, type Conntrack, CtStatus, type CtTuple } from "./conntrack.ts";

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

/** True for a protocol whose tuple has ports (or an ICMP identifier). */
export function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 1;
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
  if (proto === 1) return { min: 0, max: 65535 };
  if (port < 512) return { min: 1, max: 511 };
  if (port < 1024) return { min: 600, max: 1023 };
  return { min: 1024, max: 65535 };
}

/**
 * Choose `c`'s NAT mapping for `manip` to `addr` (ports from `ports` or
 * Linux's default range), keeping the reply tuple unique in `ct` (Linux
 * nf_nat_l4proto_unique_tuple). The original port is kept when it is in
 * range and free; otherwise the range is searched from a random offset
 * (all of it up to 512 ports, else 128 tries).
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
  const icmp = proto === 1;
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
    if (free()) return true;
  }
  return false;
}
