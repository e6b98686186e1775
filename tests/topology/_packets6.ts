/**
 * IPv6 bytes for stack tests: hand-written IPv6, extension header, ICMPv6,
 * NDP and UDP (independent of the stack's own emitters), and readers for
 * captured frames.
 */
import assert from "node:assert/strict";
import { formatIpv6, parseIpv6 } from "../../stack/wire/mod.ts";

/** Addresses of the IPv6 labs (documentation prefix, RFC 3849). */
export const ADDR6 = {
  a: "2001:db8:1::10",
  aLL: "fe80::a",
  rLan: "2001:db8:1::1",
  rWan: "2001:db8:2::1",
  b: "2001:db8:2::10",
  bLL: "fe80::b",
  c: "2001:db8:1::20",
  far: "2001:db8:99::1",
} as const;

/** Next Header values used by the tests. */
export const NH = {
  HBH: 0,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAG: 44,
  ICMP6: 58,
  NONE: 59,
  DEST: 60,
} as const;

/** ICMPv6 types used by the tests. */
export const T6 = {
  DEST_UNREACH: 1,
  TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAM_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  MLD_QUERY: 130,
  RS: 133,
  RA: 134,
  NS: 135,
  NA: 136,
  REDIRECT: 137,
  MLD2_REPORT: 143,
} as const;

/** An address given as text or bytes. */
export type Addr6 = string | Uint8Array;

/** The 16 bytes of an {@link Addr6}. */
export function a6(a: Addr6): Uint8Array {
  return typeof a === "string" ? parseIpv6(a) : a;
}

function sum16(d: Uint8Array, off: number, len: number, acc = 0): number {
  for (let i = 0; i + 1 < len; i += 2) acc += (d[off + i]! << 8) | d[off + i + 1]!;
  if (len & 1) acc += d[off + len - 1]! << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return acc;
}

/** The upper-layer checksum of `msg` (RFC 8200 §8.1 pseudo-header). */
export function checksum6(src: Addr6, dst: Addr6, proto: number, msg: Uint8Array): number {
  const p = new Uint8Array(40);
  p.set(a6(src), 0);
  p.set(a6(dst), 16);
  new DataView(p.buffer).setUint32(32, msg.length);
  p[39] = proto;
  return ~fold(sum16(msg, 0, msg.length, sum16(p, 0, 40))) & 0xffff;
}

/** A bit pattern of `n` bytes. */
export function pattern6(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** An ICMPv6 message with its checksum. */
export function icmp6(
  src: Addr6,
  dst: Addr6,
  type: number,
  code: number,
  rest: number,
  body: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const b = new Uint8Array(8 + body.length);
  const v = new DataView(b.buffer);
  b[0] = type;
  b[1] = code;
  v.setUint32(4, rest >>> 0);
  b.set(body, 8);
  v.setUint16(2, checksum6(src, dst, NH.ICMP6, b));
  return b;
}

/** An echo request with `n` bytes of data. */
export function echo6(src: Addr6, dst: Addr6, ident = 0x1234, seq = 1, n = 16): Uint8Array {
  return icmp6(src, dst, T6.ECHO_REQUEST, 0, (ident << 16) | seq, pattern6(n));
}

/** A UDP datagram with its checksum. */
export function udp6(src: Addr6, dst: Addr6, sport: number, dport: number, n = 16): Uint8Array {
  const b = new Uint8Array(8 + n);
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, b.length);
  b.set(pattern6(n), 8);
  const c = checksum6(src, dst, NH.UDP, b);
  v.setUint16(6, c === 0 ? 0xffff : c);
  return b;
}

/** One extension header: its type (the Next Header value naming it) and bytes (byte 0 is filled in). */
export interface ExtHeader {
  type: number;
  bytes: Uint8Array;
}

function optionsHeader(type: number, options: number[]): ExtHeader {
  const body = [0, 0, ...options];
  const pad = (8 - body.length % 8) % 8;
  if (pad === 1) body.push(0);
  else if (pad > 1) body.push(1, pad - 2, ...new Array(pad - 2).fill(0));
  const b = new Uint8Array(body);
  b[1] = b.length / 8 - 1;
  return { type, bytes: b };
}

/** A Hop-by-Hop Options header with these option bytes (padded with PadN). */
export function hbh(...options: number[]): ExtHeader {
  return optionsHeader(NH.HBH, options);
}

/** A Destination Options header with these option bytes (padded with PadN). */
export function destOpts(...options: number[]): ExtHeader {
  return optionsHeader(NH.DEST, options);
}

/** Router Alert option (RFC 2711) with `value`. */
export function routerAlert(value = 0): number[] {
  return [5, 2, value >> 8, value & 0xff];
}

/** An unknown option of `action` (0–3) in its two high bits, 2 data bytes. */
export function unknownOption(action: number): number[] {
  return [(action << 6) | 0x1e, 2, 0, 0];
}

/** A Routing header: type, segments left, one address. */
export function routing(routingType: number, segmentsLeft: number): ExtHeader {
  const b = new Uint8Array(24);
  b[1] = 2;
  b[2] = routingType;
  b[3] = segmentsLeft;
  b.set(parseIpv6("2001:db8:77::1"), 8);
  return { type: NH.ROUTING, bytes: b };
}

/** A Fragment header. */
export function frag(offset: number, more: boolean, id: number): ExtHeader {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint16(2, (offset & 0xfff8) | (more ? 1 : 0));
  v.setUint32(4, id);
  return { type: NH.FRAG, bytes: b };
}

/** Fields of {@link ip6}. */
export interface Ip6Spec {
  src: Addr6;
  dst: Addr6;
  /** Upper-layer protocol (the last Next Header). */
  proto: number;
  payload: Uint8Array;
  ext?: ExtHeader[];
  hopLimit?: number;
  /** Write this Payload Length instead of the true one. */
  payloadLength?: number;
}

/** An IPv6 packet: header, extension headers chained in order, payload. */
export function ip6(s: Ip6Spec): Uint8Array {
  const ext = s.ext ?? [];
  const extLen = ext.reduce((n, e) => n + e.bytes.length, 0);
  const b = new Uint8Array(40 + extLen + s.payload.length);
  const v = new DataView(b.buffer);
  b[0] = 0x60;
  v.setUint16(4, s.payloadLength ?? extLen + s.payload.length);
  b[6] = ext.length > 0 ? ext[0]!.type : s.proto;
  b[7] = s.hopLimit ?? 64;
  b.set(a6(s.src), 8);
  b.set(a6(s.dst), 24);
  let p = 40;
  ext.forEach((e, i) => {
    b.set(e.bytes, p);
    b[p] = i + 1 < ext.length ? ext[i + 1]!.type : s.proto;
    p += e.bytes.length;
  });
  b.set(s.payload, p);
  return b;
}

/**
 * Split an upper-layer message into fragments: `cuts` are the byte
 * offsets where each fragment starts (the first is 0).
 */
export function fragments(
  s: Omit<Ip6Spec, "ext"> & { id: number; cuts: number[]; before?: ExtHeader[] },
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < s.cuts.length; i++) {
    const from = s.cuts[i]!;
    const to = i + 1 < s.cuts.length ? s.cuts[i + 1]! : s.payload.length;
    out.push(ip6({
      ...s,
      payload: s.payload.subarray(from, to),
      ext: [...(s.before ?? []), frag(from, i + 1 < s.cuts.length, s.id)],
    }));
  }
  return out;
}

/** NDP option: source (1) or target (2) link-layer address. */
export function llaOption(kind: 1 | 2, mac: Uint8Array): number[] {
  return [kind, 1, ...mac];
}

/** A Neighbor Solicitation (type 135) message with options. */
export function ns(
  src: Addr6,
  dst: Addr6,
  target: Addr6,
  opts: { slla?: Uint8Array; nonce?: number[]; code?: number } = {},
): Uint8Array {
  const o: number[] = [];
  if (opts.slla) o.push(...llaOption(1, opts.slla));
  if (opts.nonce) o.push(14, 1, ...opts.nonce);
  const body = new Uint8Array(20 + o.length);
  body.set(a6(target), 4);
  body.set(o, 20);
  // rest (reserved) is body[0..4) of the message: icmp6 writes it as `rest`.
  return icmp6(src, dst, T6.NS, opts.code ?? 0, 0, body.subarray(4));
}

/** A Neighbor Advertisement (type 136) message. */
export function na(
  src: Addr6,
  dst: Addr6,
  target: Addr6,
  f: { r?: boolean; s?: boolean; o?: boolean; tlla?: Uint8Array } = {},
): Uint8Array {
  const o: number[] = f.tlla ? llaOption(2, f.tlla) : [];
  const body = new Uint8Array(16 + o.length);
  body.set(a6(target), 0);
  body.set(o, 16);
  const flags = (f.r ? 0x80000000 : 0) | (f.s ? 0x40000000 : 0) | (f.o ? 0x20000000 : 0);
  return icmp6(src, dst, T6.NA, 0, flags, body);
}

// ------------------------------------------------------------ readers

/** The parsed view of a captured IPv6 frame. */
export interface Ip6View {
  src: string;
  dst: string;
  ethDst: Uint8Array;
  ethSrc: Uint8Array;
  hopLimit: number;
  payloadLength: number;
  /** Types of the extension headers, in order. */
  ext: number[];
  /** Offsets in the frame of each extension header. */
  extOff: number[];
  /** The upper-layer protocol and where it starts in the frame. */
  proto: number;
  l4Off: number;
  /** Bytes from `l4Off` to the end of the payload. */
  l4: Uint8Array;
}

/** True for an IPv6 Ethernet frame. */
export function isIpv6(f: Uint8Array): boolean {
  return f.length >= 54 && f[12] === 0x86 && f[13] === 0xdd;
}

/** Read an IPv6 frame (Ethernet header first). */
export function readIpv6(f: Uint8Array): Ip6View {
  assert.ok(isIpv6(f), "an IPv6 frame");
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const plen = v.getUint16(18);
  const end = 54 + plen;
  let t = f[20]!;
  let p = 54;
  const ext: number[] = [];
  const extOff: number[] = [];
  while ((t === 0 || t === 43 || t === 44 || t === 60) && p + 8 <= end) {
    ext.push(t);
    extOff.push(p);
    const len = t === 44 ? 8 : (f[p + 1]! + 1) * 8;
    const fragData = t === 44 && (v.getUint16(p + 2) & 0xfff8) !== 0;
    t = f[p]!;
    p += len;
    if (fragData) break;
  }
  return {
    src: formatIpv6(f, 22),
    dst: formatIpv6(f, 38),
    ethDst: f.slice(0, 6),
    ethSrc: f.slice(6, 12),
    hopLimit: f[21]!,
    payloadLength: plen,
    ext,
    extOff,
    proto: t,
    l4Off: p,
    l4: f.slice(p, end),
  };
}

/** An ICMPv6 message read from a frame. */
export interface Icmp6View {
  ip: Ip6View;
  type: number;
  code: number;
  /** The 32-bit field after the checksum (pointer, MTU, ident/seq, flags). */
  rest: number;
  /** Bytes after the 8-byte header (the quoted packet for errors). */
  body: Uint8Array;
}

/** True for an ICMPv6 frame (of `type` when given). */
export function isIcmp6(f: Uint8Array, type?: number): boolean {
  if (!isIpv6(f)) return false;
  const ip = readIpv6(f);
  return ip.proto === NH.ICMP6 && ip.l4.length >= 4 && (type === undefined || ip.l4[0] === type);
}

/** Read the ICMPv6 message of a frame, checking its checksum. */
export function readIcmp6(f: Uint8Array): Icmp6View {
  const ip = readIpv6(f);
  assert.equal(ip.proto, NH.ICMP6, "an ICMPv6 frame");
  const m = ip.l4;
  assert.equal(checksum6(ip.src, ip.dst, NH.ICMP6, m), 0, "ICMPv6 checksum");
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  return { ip, type: m[0]!, code: m[1]!, rest: v.getUint32(4), body: m.slice(8) };
}

/** What {@link expectIcmp6} checks. */
export interface Icmp6Expect {
  type: number;
  code?: number;
  /** The pointer / MTU / rest-of-header field. */
  rest?: number;
  src?: string;
  dst?: string;
  hopLimit?: number;
}

/** Assert a frame is the ICMPv6 message described by `e`. */
export function expectIcmp6(f: Uint8Array, e: Icmp6Expect, msg = ""): Icmp6View {
  const m = readIcmp6(f);
  assert.equal(m.type, e.type, `${msg} ICMPv6 type`);
  if (e.code !== undefined) assert.equal(m.code, e.code, `${msg} ICMPv6 code`);
  if (e.rest !== undefined) assert.equal(m.rest, e.rest, `${msg} ICMPv6 pointer/MTU`);
  if (e.src !== undefined) assert.equal(m.ip.src, e.src, `${msg} source`);
  if (e.dst !== undefined) assert.equal(m.ip.dst, e.dst, `${msg} destination`);
  if (e.hopLimit !== undefined) assert.equal(m.ip.hopLimit, e.hopLimit, `${msg} hop limit`);
  return m;
}
