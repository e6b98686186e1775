/**
 * The IPv4 header (RFC 791 §3.1).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version|  IHL  |   DSCP    |ECN|          Total Length         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Identification        |Flags|      Fragment Offset    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       Source Address                          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Destination Address                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Options                    |    Padding    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";
import { checksumUpdate16, internetChecksum } from "./checksum.ts";

/** Bytes of an IPv4 header without options (IHL 5). */
export const IPV4_MIN_HEADER_LEN = 20;
/** Bytes of the largest IPv4 header (IHL 15). */
export const IPV4_MAX_HEADER_LEN = 60;
/** The largest value of the Total Length field. */
export const IPV4_MAX_TOTAL_LEN = 65_535;
/** RFC 791 §3.2: every host must accept a 576-byte datagram; the ICMP error size limit (RFC 1812 §4.3.2.3). */
export const IPV4_MIN_REASSEMBLY_LEN = 576;
/** RFC 791 §3.2: every IPv4 link carries at least 68 bytes. */
export const IPV4_MIN_MTU = 68;

/** IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared with IPv6 Next Header. */
export const IpProtocol = {
  HOP_BY_HOP: 0,
  ICMP: 1,
  IGMP: 2,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  IPV6_ROUTE: 43,
  IPV6_FRAGMENT: 44,
  GRE: 47,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  IPV6_NO_NEXT: 59,
  IPV6_OPTS: 60,
  SCTP: 132,
} as const;

// RFC 791 §3.1
const F = {
  VER_IHL: 0,
  DSCP_ECN: 1,
  TOTAL_LEN: 2,
  IDENT: 4,
  FLAGS_FRAG: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
} as const;

/** Flags bit "Don't Fragment" in the 16-bit flags/fragment-offset word (RFC 791 §3.1). */
const DF = 0x4000;
/** Flags bit "More Fragments". */
const MF = 0x2000;
/** The fragment offset, in units of 8 bytes. */
const FRAG_MASK = 0x1fff;

/**
 * A view of an IPv4 header at an offset of a {@link PacketBuffer}.
 * Re-point it with `reset()` for each packet; accessors do not allocate.
 *
 * @example
 * ```ts
 * import { Ipv4Packet, writeIpv4Header, IpProtocol } from "./ipv4.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(256);
 * p.setFrame(0, 28);
 * writeIpv4Header(p, 0, { src: 0xc0000201, dst: 0xc6336401, protocol: IpProtocol.UDP, payloadLen: 8, ttl: 64 });
 * const ip = new Ipv4Packet().reset(p, 0);
 * console.assert(ip.check() && ip.verifyChecksum());
 * console.assert(ip.decrementTtl() === 63 && ip.verifyChecksum());
 * ```
 */
export class Ipv4Packet {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the first header byte in `buf.data`. */
  off = 0;

  /** Point the view at the header starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /**
   * True when the lengths are consistent with `buf.end`: a whole fixed
   * header, IHL ≥ 5, IHL·4 ≤ Total Length ≤ bytes present. It does not
   * check the version or the checksum. Bytes past Total Length (link
   * padding) are allowed.
   */
  check(): boolean {
    const avail = this.buf.end - this.off;
    if (avail < IPV4_MIN_HEADER_LEN) return false;
    const hl = this.headerLen();
    if (hl < IPV4_MIN_HEADER_LEN) return false;
    const tl = this.totalLength();
    return hl <= tl && tl <= avail;
  }

  /** The Version field (4 for IPv4). */
  version(): number {
    return this.buf.data[this.off + F.VER_IHL]! >> 4;
  }

  /** The IHL field: header length in 32-bit words. */
  ihl(): number {
    return this.buf.data[this.off + F.VER_IHL]! & 0x0f;
  }

  /** Header length in bytes (IHL·4). */
  headerLen(): number {
    return (this.buf.data[this.off + F.VER_IHL]! & 0x0f) << 2;
  }

  /** Set the Version and IHL byte from a header length in bytes (a multiple of 4). */
  setHeaderLen(bytes: number): void {
    this.buf.data[this.off + F.VER_IHL] = 0x40 | ((bytes >> 2) & 0x0f);
  }

  /** Set the raw Version/IHL byte. */
  setVersionIhl(v: number): void {
    this.buf.data[this.off + F.VER_IHL] = v;
  }

  /** The DSCP/ECN byte (the old Type of Service). */
  dscpEcn(): number {
    return this.buf.data[this.off + F.DSCP_ECN]!;
  }

  setDscpEcn(v: number): void {
    this.buf.data[this.off + F.DSCP_ECN] = v;
  }

  /** Total Length: header plus payload bytes. */
  totalLength(): number {
    return this.buf.view.getUint16(this.off + F.TOTAL_LEN);
  }

  setTotalLength(v: number): void {
    this.buf.view.setUint16(this.off + F.TOTAL_LEN, v);
  }

  /** Identification. */
  id(): number {
    return this.buf.view.getUint16(this.off + F.IDENT);
  }

  setId(v: number): void {
    this.buf.view.setUint16(this.off + F.IDENT, v);
  }

  /** The raw 16-bit flags/fragment-offset word. */
  flagsFragment(): number {
    return this.buf.view.getUint16(this.off + F.FLAGS_FRAG);
  }

  setFlagsFragment(v: number): void {
    this.buf.view.setUint16(this.off + F.FLAGS_FRAG, v);
  }

  /** The DF flag. */
  dontFragment(): boolean {
    return (this.flagsFragment() & DF) !== 0;
  }

  setDontFragment(v: boolean): void {
    const w = this.flagsFragment();
    this.setFlagsFragment(v ? w | DF : w & ~DF);
  }

  /** The MF flag. */
  moreFragments(): boolean {
    return (this.flagsFragment() & MF) !== 0;
  }

  setMoreFragments(v: boolean): void {
    const w = this.flagsFragment();
    this.setFlagsFragment(v ? w | MF : w & ~MF);
  }

  /** Fragment offset in bytes (the field counts 8-byte units). */
  fragmentOffset(): number {
    return (this.flagsFragment() & FRAG_MASK) << 3;
  }

  /** Set the fragment offset in bytes; it must be a multiple of 8. */
  setFragmentOffset(bytes: number): void {
    const w = this.flagsFragment();
    this.setFlagsFragment((w & ~FRAG_MASK) | ((bytes >>> 3) & FRAG_MASK));
  }

  /** True for any fragment: MF set or a non-zero offset. */
  isFragment(): boolean {
    return (this.flagsFragment() & (MF | FRAG_MASK)) !== 0;
  }

  /** Time to Live. */
  ttl(): number {
    return this.buf.data[this.off + F.TTL]!;
  }

  /** Set the TTL without touching the checksum. */
  setTtl(v: number): void {
    this.buf.data[this.off + F.TTL] = v;
  }

  /** Protocol of the payload ({@link IpProtocol}). */
  protocol(): number {
    return this.buf.data[this.off + F.PROTOCOL]!;
  }

  setProtocol(v: number): void {
    this.buf.data[this.off + F.PROTOCOL] = v;
  }

  /** Header Checksum field. */
  checksum(): number {
    return this.buf.view.getUint16(this.off + F.CHECKSUM);
  }

  setChecksum(v: number): void {
    this.buf.view.setUint16(this.off + F.CHECKSUM, v);
  }

  /** Source address as an unsigned 32-bit number. */
  src(): number {
    return this.buf.view.getUint32(this.off + F.SRC);
  }

  setSrc(v: number): void {
    this.buf.view.setUint32(this.off + F.SRC, v >>> 0);
  }

  /** Destination address as an unsigned 32-bit number. */
  dst(): number {
    return this.buf.view.getUint32(this.off + F.DST);
  }

  setDst(v: number): void {
    this.buf.view.setUint32(this.off + F.DST, v >>> 0);
  }

  /** Offset in `buf.data` of the source address (for the pseudo header). */
  srcOffset(): number {
    return this.off + F.SRC;
  }

  /** Offset in `buf.data` of the destination address. */
  dstOffset(): number {
    return this.off + F.DST;
  }

  /** Bytes of options (and their padding) after the fixed header. */
  optionsLength(): number {
    return this.headerLen() - IPV4_MIN_HEADER_LEN;
  }

  /** Offset in `buf.data` of the first option byte. */
  optionsOffset(): number {
    return this.off + IPV4_MIN_HEADER_LEN;
  }

  /** Offset in `buf.data` of the first payload byte. */
  payloadOffset(): number {
    return this.off + this.headerLen();
  }

  /** Payload bytes according to the header: Total Length − header length. */
  payloadLength(): number {
    return this.totalLength() - this.headerLen();
  }

  /** True when the header checksum is correct. */
  verifyChecksum(): boolean {
    return internetChecksum(this.buf.data, this.off, this.headerLen()) === 0;
  }

  /** Compute and store the header checksum. */
  fillChecksum(): void {
    this.setChecksum(0);
    this.setChecksum(internetChecksum(this.buf.data, this.off, this.headerLen()));
  }

  /**
   * Decrement the TTL by one and patch the checksum incrementally
   * (RFC 1624 eqn. 3, as RFC 1812 §5.3.1 allows a router to do).
   * The caller checks the TTL is above 1 first.
   *
   * @returns the new TTL
   */
  decrementTtl(): number {
    const at = this.off + F.TTL;
    const d = this.buf.data;
    const ttl = d[at]!;
    const oldWord = (ttl << 8) | d[at + 1]!;
    const newTtl = (ttl - 1) & 0xff;
    d[at] = newTtl;
    this.setChecksum(checksumUpdate16(this.checksum(), oldWord, (newTtl << 8) | d[at + 1]!));
    return newTtl;
  }
}

/** The fields {@link writeIpv4Header} writes; omitted ones take their usual values. */
export interface Ipv4HeaderFields {
  /** Source address. */
  src: number;
  /** Destination address. */
  dst: number;
  /** Payload protocol. */
  protocol: number;
  /** Payload bytes that follow the header (Total Length = header + this). */
  payloadLen: number;
  /** Time to Live; 64 when omitted. */
  ttl?: number;
  /** Identification; 0 when omitted. */
  id?: number;
  /** DSCP/ECN byte; 0 when omitted. */
  dscpEcn?: number;
  /** DF flag; false when omitted. */
  dontFragment?: boolean;
  /** MF flag; false when omitted. */
  moreFragments?: boolean;
  /** Fragment offset in bytes (a multiple of 8); 0 when omitted. */
  fragmentOffset?: number;
  /** Raw option bytes; padded with End of Option List (0) to a multiple of 4. */
  options?: Uint8Array;
}

/** Header bytes for `optionsLen` bytes of options: 20 plus the options rounded up to 4. */
export function ipv4HeaderLen(optionsLen: number): number {
  return IPV4_MIN_HEADER_LEN + ((optionsLen + 3) & ~3);
}

/**
 * Write a whole IPv4 header, checksum included, at `off`.
 *
 * @returns the header length in bytes
 * @throws RangeError when the options exceed 40 bytes or the total exceeds 65535
 */
export function writeIpv4Header(buf: PacketBuffer, off: number, f: Ipv4HeaderFields): number {
  const optLen = f.options === undefined ? 0 : f.options.length;
  const hl = ipv4HeaderLen(optLen);
  if (hl > IPV4_MAX_HEADER_LEN) {
    throw new RangeError(`IPv4 options are ${optLen} bytes; at most 40 fit`);
  }
  const total = hl + f.payloadLen;
  if (total > IPV4_MAX_TOTAL_LEN) throw new RangeError(`IPv4 total length ${total} exceeds 65535`);
  const d = buf.data;
  const v = buf.view;
  d[off + F.VER_IHL] = 0x40 | (hl >> 2);
  d[off + F.DSCP_ECN] = f.dscpEcn ?? 0;
  v.setUint16(off + F.TOTAL_LEN, total);
  v.setUint16(off + F.IDENT, f.id ?? 0);
  v.setUint16(
    off + F.FLAGS_FRAG,
    (f.dontFragment ? DF : 0) | (f.moreFragments ? MF : 0) |
      (((f.fragmentOffset ?? 0) >>> 3) & FRAG_MASK),
  );
  d[off + F.TTL] = f.ttl ?? 64;
  d[off + F.PROTOCOL] = f.protocol;
  v.setUint16(off + F.CHECKSUM, 0);
  v.setUint32(off + F.SRC, f.src >>> 0);
  v.setUint32(off + F.DST, f.dst >>> 0);
  if (f.options !== undefined) {
    d.set(f.options, off + IPV4_MIN_HEADER_LEN);
    d.fill(0, off + IPV4_MIN_HEADER_LEN + optLen, off + hl);
  }
  v.setUint16(off + F.CHECKSUM, internetChecksum(d, off, hl));
  return hl;
}

/** An IPv4 header in parsed form; `options` holds the raw option bytes with their padding. */
export interface Ipv4Repr {
  /** Source address. */
  src: number;
  /** Destination address. */
  dst: number;
  /** Payload protocol ({@link IpProtocol}). */
  protocol: number;
  /** Time to Live. */
  ttl: number;
  /** Identification. */
  id: number;
  /** DSCP/ECN byte. */
  dscpEcn: number;
  /** DF flag. */
  dontFragment: boolean;
  /** MF flag. */
  moreFragments: boolean;
  /** Fragment offset in bytes. */
  fragmentOffset: number;
  /** Option bytes (a multiple of 4 after parse; emit pads). */
  options: Uint8Array;
  /** Payload bytes after the header. */
  payloadLen: number;
}

/** Parse, size and emit {@link Ipv4Repr}s. */
export const Ipv4Repr: {
  parse(ip: Ipv4Packet): Ipv4Repr | null;
  bufferLen(repr: Ipv4Repr): number;
  emit(repr: Ipv4Repr, buf: PacketBuffer, off: number): void;
} = {
  /**
   * Parse a checked view. Returns null when `check()` fails, the version is
   * not 4, or the header checksum is wrong.
   */
  parse(ip: Ipv4Packet): Ipv4Repr | null {
    if (!ip.check() || ip.version() !== 4 || !ip.verifyChecksum()) return null;
    const oo = ip.optionsOffset();
    return {
      src: ip.src(),
      dst: ip.dst(),
      protocol: ip.protocol(),
      ttl: ip.ttl(),
      id: ip.id(),
      dscpEcn: ip.dscpEcn(),
      dontFragment: ip.dontFragment(),
      moreFragments: ip.moreFragments(),
      fragmentOffset: ip.fragmentOffset(),
      options: ip.buf.data.slice(oo, oo + ip.optionsLength()),
      payloadLen: ip.payloadLength(),
    };
  },

  /** Header bytes `emit()` writes. */
  bufferLen(repr: Ipv4Repr): number {
    return ipv4HeaderLen(repr.options.length);
  },

  /** Write the header (not the payload) at `off`, checksum included. */
  emit(repr: Ipv4Repr, buf: PacketBuffer, off: number): void {
    writeIpv4Header(buf, off, repr);
  },
};
