/**
 * The IPv6 fixed header (RFC 8200 §3).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version| Traffic Class |           Flow Label                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Source Address (128 bits)                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 Destination Address (128 bits)                |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Addresses stay in the buffer: the view gives their offsets, and copies
 * them only into arrays the caller owns.
 *
 * @module
 */
import { HEADROOM, type PacketBuffer } from "./packet_buffer.ts";

/** Bytes of the IPv6 fixed header. */
export const IPV6_HEADER_LEN = 40;
/** Bytes of an IPv6 address. */
export const IPV6_ADDRESS_LEN = 16;
/** RFC 8200 §5: every link that carries IPv6 has an MTU of at least 1280 bytes. */
export const IPV6_MIN_MTU = 1280;
/** The largest value of the Payload Length field (jumbograms, RFC 2675, are not supported). */
export const IPV6_MAX_PAYLOAD_LEN = 65_535;

// RFC 8200 §3
const F = {
  VER_TC_FL: 0,
  PAYLOAD_LEN: 4,
  NEXT_HEADER: 6,
  HOP_LIMIT: 7,
  SRC: 8,
  DST: 24,
} as const;

/**
 * A view of an IPv6 fixed header at an offset of a {@link PacketBuffer}.
 * Re-point it with `reset()` for each packet; accessors do not allocate.
 *
 * @example
 * ```ts
 * import { Ipv6Packet, writeIpv6Header } from "./ipv6.ts";
 * import { parseIpv6 } from "./ip_address.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(128);
 * p.setFrame(0, 48);
 * writeIpv6Header(p, 0, {
 *   src: parseIpv6("2001:db8::1"), dst: parseIpv6("2001:db8::2"), nextHeader: 17, payloadLen: 8,
 * });
 * const ip = new Ipv6Packet().reset(p, 0);
 * console.assert(ip.check() && ip.version() === 6);
 * console.assert(ip.decrementHopLimit() === 63);
 * ```
 */
export class Ipv6Packet {
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
   * True when a whole fixed header lies before `buf.end` and 40 + Payload
   * Length ≤ bytes present. It does not check the version. Bytes past the
   * payload (link padding) are allowed. A Payload Length of 0 (a
   * jumbogram, RFC 2675) passes with an empty payload.
   */
  check(): boolean {
    const avail = this.buf.end - this.off;
    if (avail < IPV6_HEADER_LEN) return false;
    return IPV6_HEADER_LEN + this.payloadLength() <= avail;
  }

  /** The Version field (6 for IPv6). */
  version(): number {
    return this.buf.data[this.off]! >> 4;
  }

  /** Set the Version field. */
  setVersion(v: number): void {
    const d = this.buf.data;
    d[this.off] = ((v & 0x0f) << 4) | (d[this.off]! & 0x0f);
  }

  /** The Traffic Class byte (DSCP and ECN, RFC 2474 and RFC 3168). */
  trafficClass(): number {
    const d = this.buf.data;
    return ((d[this.off]! & 0x0f) << 4) | (d[this.off + 1]! >> 4);
  }

  /** Set the Traffic Class byte. */
  setTrafficClass(v: number): void {
    const d = this.buf.data;
    d[this.off] = (d[this.off]! & 0xf0) | ((v >> 4) & 0x0f);
    d[this.off + 1] = ((v & 0x0f) << 4) | (d[this.off + 1]! & 0x0f);
  }

  /** The 20-bit Flow Label (RFC 6437). */
  flowLabel(): number {
    return this.buf.view.getUint32(this.off + F.VER_TC_FL) & 0x000f_ffff;
  }

  /** Set the Flow Label. */
  setFlowLabel(v: number): void {
    const w = this.buf.view.getUint32(this.off + F.VER_TC_FL);
    this.buf.view.setUint32(this.off + F.VER_TC_FL, ((w & 0xfff0_0000) | (v & 0x000f_ffff)) >>> 0);
  }

  /** Payload Length: bytes after the fixed header, extension headers included. */
  payloadLength(): number {
    return this.buf.view.getUint16(this.off + F.PAYLOAD_LEN);
  }

  /** Set Payload Length. */
  setPayloadLength(v: number): void {
    this.buf.view.setUint16(this.off + F.PAYLOAD_LEN, v);
  }

  /** Next Header: the first extension header or the upper-layer protocol. */
  nextHeader(): number {
    return this.buf.data[this.off + F.NEXT_HEADER]!;
  }

  /** Set Next Header. */
  setNextHeader(v: number): void {
    this.buf.data[this.off + F.NEXT_HEADER] = v;
  }

  /** Offset in `buf.data` of the Next Header field (pointer 6 of a Parameter Problem). */
  nextHeaderOffset(): number {
    return this.off + F.NEXT_HEADER;
  }

  /** Hop Limit. */
  hopLimit(): number {
    return this.buf.data[this.off + F.HOP_LIMIT]!;
  }

  /** Set Hop Limit. */
  setHopLimit(v: number): void {
    this.buf.data[this.off + F.HOP_LIMIT] = v;
  }

  /**
   * Decrement the Hop Limit by one (RFC 8200 §3). IPv6 has no header
   * checksum, so nothing else changes. The caller checks it is above 1
   * first (RFC 4443 §3.3: a router sends Time Exceeded instead).
   *
   * @returns the new Hop Limit
   */
  decrementHopLimit(): number {
    const at = this.off + F.HOP_LIMIT;
    const v = (this.buf.data[at]! - 1) & 0xff;
    this.buf.data[at] = v;
    return v;
  }

  /** Offset in `buf.data` of the source address (16 bytes). */
  srcOffset(): number {
    return this.off + F.SRC;
  }

  /** Offset in `buf.data` of the destination address (16 bytes). */
  dstOffset(): number {
    return this.off + F.DST;
  }

  /** Copy the source address into `out` at `outOff`. */
  copySrc(out: Uint8Array, outOff = 0): void {
    out.set(this.buf.data.subarray(this.off + F.SRC, this.off + F.SRC + 16), outOff);
  }

  /** Copy the destination address into `out` at `outOff`. */
  copyDst(out: Uint8Array, outOff = 0): void {
    out.set(this.buf.data.subarray(this.off + F.DST, this.off + F.DST + 16), outOff);
  }

  /** Write the source address from `a` at `aOff`. */
  setSrc(a: Uint8Array, aOff = 0): void {
    copy16(a, aOff, this.buf.data, this.off + F.SRC);
  }

  /** Write the destination address from `a` at `aOff`. */
  setDst(a: Uint8Array, aOff = 0): void {
    copy16(a, aOff, this.buf.data, this.off + F.DST);
  }

  /** True when the source equals `a` (at `aOff`), without allocating. */
  srcEquals(a: Uint8Array, aOff = 0): boolean {
    return equal16(this.buf.data, this.off + F.SRC, a, aOff);
  }

  /** True when the destination equals `a` (at `aOff`), without allocating. */
  dstEquals(a: Uint8Array, aOff = 0): boolean {
    return equal16(this.buf.data, this.off + F.DST, a, aOff);
  }

  /** True when the destination is multicast (ff00::/8, RFC 4291 §2.7). */
  dstIsMulticast(): boolean {
    return this.buf.data[this.off + F.DST] === 0xff;
  }

  /** Offset in `buf.data` of the first byte after the fixed header. */
  payloadOffset(): number {
    return this.off + IPV6_HEADER_LEN;
  }

  /** Offset in `buf.data` one past the last payload byte (40 + Payload Length). */
  endOffset(): number {
    return this.off + IPV6_HEADER_LEN + this.payloadLength();
  }

  /** Header plus payload bytes. */
  totalLength(): number {
    return IPV6_HEADER_LEN + this.payloadLength();
  }
}

function copy16(src: Uint8Array, so: number, dst: Uint8Array, dO: number): void {
  for (let i = 0; i < 16; i++) dst[dO + i] = src[so + i]!;
}

function equal16(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < 16; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** The fields {@link writeIpv6Header} writes; omitted ones take their usual values. */
export interface Ipv6HeaderFields {
  /** Source address (16 bytes). */
  src: Uint8Array;
  /** Destination address (16 bytes). */
  dst: Uint8Array;
  /** Next Header: the first extension header or the upper-layer protocol. */
  nextHeader: number;
  /** Bytes after the fixed header (extension headers included). */
  payloadLen: number;
  /** Hop Limit; 64 when omitted. */
  hopLimit?: number;
  /** Traffic Class; 0 when omitted. */
  trafficClass?: number;
  /** Flow Label; 0 when omitted. */
  flowLabel?: number;
}

/**
 * Write a whole IPv6 fixed header at `off`.
 *
 * @returns {@link IPV6_HEADER_LEN}
 * @throws RangeError when the payload exceeds 65535 bytes or an address is not 16 bytes
 */
export function writeIpv6Header(buf: PacketBuffer, off: number, f: Ipv6HeaderFields): number {
  if (f.payloadLen > IPV6_MAX_PAYLOAD_LEN || f.payloadLen < 0) {
    throw new RangeError(`IPv6 payload length ${f.payloadLen} is outside 0..65535`);
  }
  if (f.src.length < 16 || f.dst.length < 16) {
    throw new RangeError("IPv6 addresses are 16 bytes");
  }
  const tc = f.trafficClass ?? 0;
  buf.view.setUint32(
    off + F.VER_TC_FL,
    ((6 << 28) | ((tc & 0xff) << 20) | ((f.flowLabel ?? 0) & 0x000f_ffff)) >>> 0,
  );
  buf.view.setUint16(off + F.PAYLOAD_LEN, f.payloadLen);
  buf.data[off + F.NEXT_HEADER] = f.nextHeader;
  buf.data[off + F.HOP_LIMIT] = f.hopLimit ?? 64;
  copy16(f.src, 0, buf.data, off + F.SRC);
  copy16(f.dst, 0, buf.data, off + F.DST);
  return IPV6_HEADER_LEN;
}

/** An IPv6 fixed header in parsed form (addresses copied out). */
export interface Ipv6Repr {
  /** Source address. */
  src: Uint8Array;
  /** Destination address. */
  dst: Uint8Array;
  /** Next Header. */
  nextHeader: number;
  /** Payload Length. */
  payloadLen: number;
  /** Hop Limit. */
  hopLimit: number;
  /** Traffic Class. */
  trafficClass: number;
  /** Flow Label. */
  flowLabel: number;
}

/** Parse, size and emit {@link Ipv6Repr}s. */
export const Ipv6Repr: {
  parse(ip: Ipv6Packet): Ipv6Repr | null;
  bufferLen(repr: Ipv6Repr): number;
  emit(repr: Ipv6Repr, buf: PacketBuffer, off: number): void;
} = {
  /** Parse a view; null when `check()` fails or the version is not 6. */
  parse(ip: Ipv6Packet): Ipv6Repr | null {
    if (!ip.check() || ip.version() !== 6) return null;
    const src = new Uint8Array(16);
    const dst = new Uint8Array(16);
    ip.copySrc(src);
    ip.copyDst(dst);
    return {
      src,
      dst,
      nextHeader: ip.nextHeader(),
      payloadLen: ip.payloadLength(),
      hopLimit: ip.hopLimit(),
      trafficClass: ip.trafficClass(),
      flowLabel: ip.flowLabel(),
    };
  },

  /** Header bytes `emit()` writes: always 40. */
  bufferLen(_repr: Ipv6Repr): number {
    return IPV6_HEADER_LEN;
  },

  /** Write the fixed header (not the payload) at `off`. */
  emit(repr: Ipv6Repr, buf: PacketBuffer, off: number): void {
    writeIpv6Header(buf, off, repr);
  },
};

/** ff02::1, all nodes on the link (RFC 4291 §2.7.1). */
export const IPV6_ALL_NODES: Uint8Array = new Uint8Array([
  0xff,
  2,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  1,
]);
/** ff02::2, all routers on the link (RFC 4291 §2.7.1). */
export const IPV6_ALL_ROUTERS: Uint8Array = new Uint8Array([
  0xff,
  2,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  2,
]);

/**
 * Write an IPv6 header for a locally built packet at the build offset of
 * `buf` (headroom for the Ethernet header in front), and set the frame's
 * bounds to the header plus `payloadLen`. A null `src` is written as ::
 * (the output path chooses one).
 *
 * @returns the offset of the IPv6 header
 */
export function buildIpv6Packet(
  buf: PacketBuffer,
  f: {
    src: Uint8Array | null;
    dst: Uint8Array;
    nextHeader: number;
    payloadLen: number;
    hopLimit: number;
  },
): number {
  const off = HEADROOM + 14;
  writeIpv6Header(buf, off, {
    src: f.src ?? new Uint8Array(16),
    dst: f.dst,
    nextHeader: f.nextHeader,
    payloadLen: f.payloadLen,
    hopLimit: f.hopLimit,
  });
  buf.start = HEADROOM;
  buf.end = off + IPV6_HEADER_LEN + f.payloadLen;
  return off;
}
