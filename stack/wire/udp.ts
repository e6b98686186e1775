/**
 * UDP (RFC 768), with the IPv4 and IPv6 pseudo-header checksums
 * (RFC 768; RFC 8200 §8.1).
 *
 * ```
 *  0      7 8     15 16    23 24    31
 * +--------+--------+--------+--------+
 * |   source port   |    dest port    |
 * +--------+--------+--------+--------+
 * |     length      |    checksum     |
 * +--------+--------+--------+--------+
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";
import { finishChecksum, foldSum, ipv4PseudoHeaderSum, onesSum } from "./checksum.ts";

/** Bytes of the UDP header. */
export const UDP_HEADER_LEN = 8;
const UDP_PROTOCOL = 17;

// RFC 768
const F = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;

/**
 * A view of a UDP datagram at an offset of a {@link PacketBuffer}.
 *
 * @example
 * ```ts
 * import { UdpPacket, UdpRepr } from "./udp.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(64);
 * const repr = { srcPort: 5000, dstPort: 53, payload: new Uint8Array([1, 2, 3]) };
 * p.setFrame(0, UdpRepr.bufferLen(repr));
 * UdpRepr.emit(repr, p, 0, { src: 0xc0000201, dst: 0xc0000202 });
 * const udp = new UdpPacket().reset(p, 0);
 * console.assert(udp.check() && udp.verifyChecksumV4(0xc0000201, 0xc0000202));
 * ```
 */
export class UdpPacket {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the header in `buf.data`. */
  off = 0;

  /** Point the view at the datagram starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** True when the header fits and 8 ≤ Length ≤ bytes before `buf.end`. */
  check(): boolean {
    const avail = this.buf.end - this.off;
    if (avail < UDP_HEADER_LEN) return false;
    const len = this.length();
    return len >= UDP_HEADER_LEN && len <= avail;
  }

  /** Source port. */
  srcPort(): number {
    return this.buf.view.getUint16(this.off + F.SRC_PORT);
  }

  setSrcPort(v: number): void {
    this.buf.view.setUint16(this.off + F.SRC_PORT, v);
  }

  /** Destination port. */
  dstPort(): number {
    return this.buf.view.getUint16(this.off + F.DST_PORT);
  }

  setDstPort(v: number): void {
    this.buf.view.setUint16(this.off + F.DST_PORT, v);
  }

  /** Length: header plus payload bytes. */
  length(): number {
    return this.buf.view.getUint16(this.off + F.LENGTH);
  }

  setLength(v: number): void {
    this.buf.view.setUint16(this.off + F.LENGTH, v);
  }

  /** Checksum field (0 over IPv4 means "none"). */
  checksum(): number {
    return this.buf.view.getUint16(this.off + F.CHECKSUM);
  }

  setChecksum(v: number): void {
    this.buf.view.setUint16(this.off + F.CHECKSUM, v);
  }

  /** Offset in `buf.data` of the payload. */
  payloadOffset(): number {
    return this.off + UDP_HEADER_LEN;
  }

  /** Payload bytes according to Length. */
  payloadLength(): number {
    return this.length() - UDP_HEADER_LEN;
  }

  /** True when the checksum over IPv4 is correct or absent (0, RFC 768). */
  verifyChecksumV4(src: number, dst: number): boolean {
    if (this.checksum() === 0) return true;
    const len = this.length();
    const s = onesSum(
      this.buf.data,
      this.off,
      len,
      ipv4PseudoHeaderSum(src, dst, UDP_PROTOCOL, len),
    );
    return foldSum(s) === 0xffff;
  }

  /** Compute and store the checksum over IPv4; a computed 0 is sent as 0xffff (RFC 768). */
  fillChecksumV4(src: number, dst: number): void {
    const len = this.length();
    this.setChecksum(0);
    const c = finishChecksum(
      onesSum(this.buf.data, this.off, len, ipv4PseudoHeaderSum(src, dst, UDP_PROTOCOL, len)),
    );
    this.setChecksum(c === 0 ? 0xffff : c);
  }

  /** True when the checksum over IPv6 is correct; 0 is invalid over IPv6 (RFC 8200 §8.1). */
  verifyChecksumV6(src: Uint8Array, dst: Uint8Array, srcOff = 0, dstOff = 0): boolean {
    if (this.checksum() === 0) return false;
    const len = this.length();
    const s = onesSum(this.buf.data, this.off, len, v6Pseudo(src, dst, srcOff, dstOff, len));
    return foldSum(s) === 0xffff;
  }

  /** Compute and store the checksum over IPv6; a computed 0 is sent as 0xffff. */
  fillChecksumV6(src: Uint8Array, dst: Uint8Array, srcOff = 0, dstOff = 0): void {
    const len = this.length();
    this.setChecksum(0);
    const c = finishChecksum(
      onesSum(this.buf.data, this.off, len, v6Pseudo(src, dst, srcOff, dstOff, len)),
    );
    this.setChecksum(c === 0 ? 0xffff : c);
  }
}

function v6Pseudo(
  src: Uint8Array,
  dst: Uint8Array,
  srcOff: number,
  dstOff: number,
  len: number,
): number {
  const s = onesSum(src, srcOff, 16, 0);
  return onesSum(dst, dstOff, 16, s) + (len >>> 16) + (len & 0xffff) + UDP_PROTOCOL;
}

/** A UDP datagram in parsed form. */
export interface UdpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Payload bytes. */
  payload: Uint8Array;
}

/** Parse, size and emit {@link UdpRepr}s. */
export const UdpRepr: {
  parse(udp: UdpPacket): UdpRepr | null;
  bufferLen(repr: UdpRepr): number;
  emit(repr: UdpRepr, buf: PacketBuffer, off: number, v4?: { src: number; dst: number }): void;
} = {
  /**
   * Parse a view; null when `check()` fails or the destination port is 0.
   * The checksum is checked separately with `verifyChecksumV4`/`V6`, which
   * need the addresses.
   */
  parse(udp: UdpPacket): UdpRepr | null {
    if (!udp.check() || udp.dstPort() === 0) return null;
    const p = udp.payloadOffset();
    return {
      srcPort: udp.srcPort(),
      dstPort: udp.dstPort(),
      payload: udp.buf.data.slice(p, p + udp.payloadLength()),
    };
  },

  /** Bytes `emit()` writes: header plus payload. */
  bufferLen(repr: UdpRepr): number {
    return UDP_HEADER_LEN + repr.payload.length;
  },

  /**
   * Write header and payload at `off`. With `v4` the IPv4 checksum is
   * filled; without it the checksum is 0 (fill it with `fillChecksumV6`
   * for IPv6).
   */
  emit(repr: UdpRepr, buf: PacketBuffer, off: number, v4?: { src: number; dst: number }): void {
    const udp = new UdpPacket().reset(buf, off);
    udp.setSrcPort(repr.srcPort);
    udp.setDstPort(repr.dstPort);
    udp.setLength(UDP_HEADER_LEN + repr.payload.length);
    udp.setChecksum(0);
    buf.data.set(repr.payload, off + UDP_HEADER_LEN);
    if (v4 !== undefined) udp.fillChecksumV4(v4.src, v4.dst);
  },
};
