/**
 * Packet builders and checkers for stack tests: hand-written IPv4, UDP,
 * ICMP and TCP bytes (independent of the code under test, so a bug in the
 * stack's own emitters cannot hide in both), and small checkers such as
 * `expectIpv4(frame, { ttl: 63 })` that read a captured Ethernet frame.
 */
import assert from "node:assert/strict";
import { formatIpv4, formatMac, internetChecksum, parseIpv4 } from "../../stack/wire/mod.ts";

/** An address as text or as the stack's u32. */
export type Addr = string | number;

/** The u32 form of an {@link Addr}. */
export function addr(a: Addr): number {
  return typeof a === "number" ? a >>> 0 : parseIpv4(a);
}

/** IPv4 protocol numbers used by the tests. */
export const PROTO = { ICMP: 1, TCP: 6, UDP: 17 } as const;

function sum16(d: Uint8Array, off: number, len: number, acc = 0): number {
  for (let i = 0; i + 1 < len; i += 2) acc += (d[off + i]! << 8) | d[off + i + 1]!;
  if (len & 1) acc += d[off + len - 1]! << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return acc;
}

function pseudo(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/** Fields of {@link ipv4}. Overrides (`totalLength`, `ihl`, `version`, `checksum`) build broken headers. */
export interface Ipv4Spec {
  src: Addr;
  dst: Addr;
  protocol: number;
  payload: Uint8Array;
  ttl?: number;
  id?: number;
  tos?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset?: number;
  /** Option bytes, padded with End of Option List to a multiple of 4. */
  options?: number[];
  totalLength?: number;
  ihl?: number;
  version?: number;
  /** Write this checksum instead of the correct one. */
  checksum?: number;
}

/** An IPv4 packet (header + payload) with a correct header checksum unless overridden. */
export function ipv4(s: Ipv4Spec): Uint8Array {
  const opts = s.options ?? [];
  const hl = 20 + ((opts.length + 3) & ~3);
  const b = new Uint8Array(hl + s.payload.length);
  const v = new DataView(b.buffer);
  b[0] = ((s.version ?? 4) << 4) | (s.ihl ?? hl >> 2);
  b[1] = s.tos ?? 0;
  v.setUint16(2, s.totalLength ?? b.length);
  v.setUint16(4, s.id ?? 0);
  v.setUint16(
    6,
    (s.df ? 0x4000 : 0) | (s.mf ? 0x2000 : 0) | ((s.fragOffset ?? 0) >> 3),
  );
  b[8] = s.ttl ?? 64;
  b[9] = s.protocol;
  v.setUint32(12, addr(s.src));
  v.setUint32(16, addr(s.dst));
  b.set(opts, 20);
  v.setUint16(10, s.checksum ?? (~fold(sum16(b, 0, hl)) & 0xffff));
  b.set(s.payload, hl);
  return b;
}

/** A UDP datagram (header + payload) with its checksum over the pseudo-header. */
export function udp(
  src: Addr,
  dst: Addr,
  sport: number,
  dport: number,
  payload: number | Uint8Array,
): Uint8Array {
  const p = typeof payload === "number" ? pattern(payload) : payload;
  const b = new Uint8Array(8 + p.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, b.length);
  b.set(p, 8);
  const c = ~fold(sum16(b, 0, b.length, pseudo(addr(src), addr(dst), PROTO.UDP, b.length))) &
    0xffff;
  v.setUint16(6, c === 0 ? 0xffff : c);
  return b;
}

/** An Ethernet/IPv4 ARP packet (RFC 826): operation, sender and target hardware and protocol addresses. */
export function arp(
  op: number,
  sha: Uint8Array,
  spa: Addr,
  tha: Uint8Array,
  tpa: Addr,
): Uint8Array {
  const a = new Uint8Array(28);
  const v = new DataView(a.buffer);
  v.setUint16(0, 1);
  v.setUint16(2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  v.setUint16(6, op);
  a.set(sha, 8);
  v.setUint32(14, addr(spa));
  a.set(tha, 18);
  v.setUint32(24, addr(tpa));
  return a;
}

/** An ICMP message: type, code, 32-bit rest of header, body; checksum filled. */
export function icmp(type: number, code: number, rest: number, body: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + body.length);
  const v = new DataView(b.buffer);
  b[0] = type;
  b[1] = code;
  v.setUint32(4, rest >>> 0);
  b.set(body, 8);
  v.setUint16(2, ~fold(sum16(b, 0, b.length)) & 0xffff);
  return b;
}

/** An echo request (type 8) with `payloadLen` pattern bytes. */
export function echoRequest(ident: number, seq: number, payloadLen: number): Uint8Array {
  return icmp(8, 0, (ident << 16) | seq, pattern(payloadLen));
}

/** Fields of {@link tcp}. */
export interface TcpSpec {
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  /** Flags byte; default ACK|PSH. */
  flags?: number;
  /** Option bytes (a multiple of 4, at most 40). */
  options?: Uint8Array;
  payload: Uint8Array;
}

/** A TCP segment (20-byte header and `options`) with its checksum. */
export function tcp(src: Addr, dst: Addr, s: TcpSpec): Uint8Array {
  const ol = s.options?.length ?? 0;
  const b = new Uint8Array(20 + ol + s.payload.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, s.sport);
  v.setUint16(2, s.dport);
  v.setUint32(4, s.seq >>> 0);
  v.setUint32(8, (s.ack ?? 0) >>> 0);
  b[12] = ((20 + ol) >> 2) << 4;
  b[13] = s.flags ?? 0x18;
  v.setUint16(14, 65535);
  if (s.options !== undefined) b.set(s.options, 20);
  b.set(s.payload, 20 + ol);
  v.setUint16(
    16,
    ~fold(sum16(b, 0, b.length, pseudo(addr(src), addr(dst), PROTO.TCP, b.length))) & 0xffff,
  );
  return b;
}

/** `n` bytes of a recognisable pattern. */
export function pattern(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed + 3) & 0xff;
  return b;
}

// ------------------------------------------------------------ reading

/** The Ethernet header of a frame. */
export interface EthView {
  dst: string;
  src: string;
  type: number;
}

/** Read the Ethernet header of `frame`. */
export function eth(frame: Uint8Array): EthView {
  return {
    dst: formatMac(frame, 0),
    src: formatMac(frame, 6),
    type: (frame[12]! << 8) | frame[13]!,
  };
}

/** An IPv4 header read field by field. */
export interface Ipv4View {
  version: number;
  headerLen: number;
  tos: number;
  totalLength: number;
  id: number;
  df: boolean;
  mf: boolean;
  fragOffset: number;
  ttl: number;
  protocol: number;
  checksumOk: boolean;
  src: string;
  dst: string;
  /** The packet as Total Length says (header + payload). */
  bytes: Uint8Array;
  /** Header bytes (options included). */
  header: Uint8Array;
  /** The payload (Total Length − header). */
  payload: Uint8Array;
}

/** Read the IPv4 packet at `b[off…]`. */
export function readIpv4(b: Uint8Array, off = 0): Ipv4View {
  const v = new DataView(b.buffer, b.byteOffset + off);
  const hl = (b[off]! & 0x0f) << 2;
  const tl = v.getUint16(2);
  const ff = v.getUint16(6);
  const bytes = b.subarray(off, off + tl);
  return {
    version: b[off]! >> 4,
    headerLen: hl,
    tos: b[off + 1]!,
    totalLength: tl,
    id: v.getUint16(4),
    df: (ff & 0x4000) !== 0,
    mf: (ff & 0x2000) !== 0,
    fragOffset: (ff & 0x1fff) * 8,
    ttl: b[off + 8]!,
    protocol: b[off + 9]!,
    checksumOk: internetChecksum(b, off, hl) === 0,
    src: formatIpv4(v.getUint32(12)),
    dst: formatIpv4(v.getUint32(16)),
    bytes,
    header: bytes.subarray(0, hl),
    payload: bytes.subarray(hl),
  };
}

/** What {@link expectIpv4} compares; addresses as text. */
export type Ipv4Expect =
  & Partial<
    Omit<Ipv4View, "bytes" | "header" | "payload" | "checksumOk" | "src" | "dst">
  >
  & { src?: Addr; dst?: Addr };

/**
 * Assert that `frame` is an Ethernet frame holding a well-formed IPv4
 * packet (EtherType, version, a valid header checksum, Total Length within
 * the frame) whose fields match `exp`.
 */
export function expectIpv4(frame: Uint8Array, exp: Ipv4Expect = {}, msg = ""): Ipv4View {
  assert.equal(eth(frame).type, 0x0800, `${msg} EtherType`);
  const ip = readIpv4(frame, 14);
  assert.equal(ip.version, 4, `${msg} version`);
  assert.ok(ip.checksumOk, `${msg} IPv4 header checksum`);
  assert.ok(14 + ip.totalLength <= frame.length, `${msg} Total Length within the frame`);
  for (const [k, want] of Object.entries(exp)) {
    const got = (ip as unknown as Record<string, unknown>)[k];
    const w = (k === "src" || k === "dst") ? formatIpv4(addr(want as Addr)) : want;
    assert.equal(got, w, `${msg} IPv4 ${k}`);
  }
  return ip;
}

/** An ICMP message read from an IPv4 packet. */
export interface IcmpView {
  ip: Ipv4View;
  type: number;
  code: number;
  rest: number;
  checksumOk: boolean;
  /** Bytes after the 8-byte header: the quote of an error, the payload of an echo. */
  body: Uint8Array;
}

/** What {@link expectIcmp} compares. */
export interface IcmpExpect {
  type?: number;
  code?: number;
  rest?: number;
  src?: Addr;
  dst?: Addr;
}

/** Assert that `frame` is a valid IPv4 ICMP message (checksums included) matching `exp`. */
export function expectIcmp(frame: Uint8Array, exp: IcmpExpect = {}, msg = ""): IcmpView {
  const ipExp: Ipv4Expect = { protocol: PROTO.ICMP };
  if (exp.src !== undefined) ipExp.src = exp.src;
  if (exp.dst !== undefined) ipExp.dst = exp.dst;
  const ip = expectIpv4(frame, ipExp, msg);
  const m = ip.payload;
  assert.ok(m.length >= 8, `${msg} ICMP header present`);
  const v = new DataView(m.buffer, m.byteOffset);
  const view: IcmpView = {
    ip,
    type: m[0]!,
    code: m[1]!,
    rest: v.getUint32(4),
    checksumOk: internetChecksum(m, 0, m.length) === 0,
    body: m.subarray(8),
  };
  assert.ok(view.checksumOk, `${msg} ICMP checksum`);
  if (exp.type !== undefined) assert.equal(view.type, exp.type, `${msg} ICMP type`);
  if (exp.code !== undefined) assert.equal(view.code, exp.code, `${msg} ICMP code`);
  if (exp.rest !== undefined) assert.equal(view.rest, exp.rest >>> 0, `${msg} ICMP rest of header`);
  return view;
}

/** True when `frame` carries IPv4 (EtherType 0x0800). */
export function isIpv4(frame: Uint8Array): boolean {
  return frame.length >= 34 && frame[12] === 0x08 && frame[13] === 0x00;
}

/** True when `frame` is an IPv4 ICMP message (of `type` when given). */
export function isIcmp(frame: Uint8Array, type?: number): boolean {
  if (!isIpv4(frame) || frame[14 + 9] !== PROTO.ICMP) return false;
  const hl = (frame[14]! & 0x0f) << 2;
  return type === undefined || frame[14 + hl] === type;
}

/** True when `frame` is ARP (EtherType 0x0806). */
export function isArp(frame: Uint8Array): boolean {
  return frame.length >= 42 && frame[12] === 0x08 && frame[13] === 0x06;
}

/** An ARP packet read from a frame. */
export interface ArpView {
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

/** Read the ARP packet of an ARP frame. */
export function readArp(frame: Uint8Array): ArpView {
  const v = new DataView(frame.buffer, frame.byteOffset + 14);
  return {
    op: v.getUint16(6),
    senderMac: formatMac(frame, 14 + 8),
    senderIp: formatIpv4(v.getUint32(14)),
    targetMac: formatMac(frame, 14 + 18),
    targetIp: formatIpv4(v.getUint32(24)),
  };
}

/** True when the TCP or UDP checksum of the IPv4 packet `ip` verifies. */
export function l4ChecksumOk(ip: Ipv4View): boolean {
  const p = ip.payload;
  const acc = pseudo(addr(ip.src), addr(ip.dst), ip.protocol, p.length);
  return (~fold(sum16(p, 0, p.length, acc)) & 0xffff) === 0;
}
