/**
 * ICMPv6 (RFC 4443): the message header, its checksum over the IPv6
 * pseudo header (RFC 8200 §8.1), and the error and echo messages. NDP
 * (ndp.ts) and MLD (mld.ts) messages share the view.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  unused / MTU / pointer / identifier + sequence number        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  as much of the invoking packet as fits in 1280 bytes (errors) |
 * |  or the echo data                                             |
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";
import { finishChecksum, foldSum, ipv6PseudoHeaderSum, onesSum } from "./checksum.ts";
import { IPV6_HEADER_LEN, IPV6_MIN_MTU } from "./ipv6.ts";

/** Bytes of the ICMPv6 header as every message tapir handles has it: type, code, checksum, 4 more. */
export const ICMPV6_HEADER_LEN = 8;
/** The Next Header value of ICMPv6. */
export const ICMPV6_NEXT_HEADER = 58;
/**
 * RFC 4443 §2.4 (c): an error message must not make the IPv6 packet
 * exceed the minimum MTU, so at most 1280 − 40 − 8 bytes are quoted.
 */
export const ICMPV6_MAX_ERROR_QUOTE = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN;

/** ICMPv6 message types (RFC 4443, RFC 4861, RFC 2710, RFC 3810). */
export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  /** Multicast Listener Query (MLDv1 and MLDv2). */
  MLD_QUERY: 130,
  /** MLDv1 Multicast Listener Report (RFC 2710). */
  MLD_REPORT_V1: 131,
  /** MLDv1 Multicast Listener Done (RFC 2710). */
  MLD_DONE: 132,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
  REDIRECT: 137,
  /** MLDv2 Multicast Listener Report (RFC 3810 §5.2). */
  MLD_REPORT_V2: 143,
} as const;

/**
 * ICMPv6 codes. Destination Unreachable 0–6 (RFC 4443 §3.1), Time
 * Exceeded 0–1 (§3.3), Parameter Problem 0–2 (§3.4) and 3 (RFC 7112 §5).
 */
export const Icmpv6Code = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS_UNREACHABLE: 3,
  PORT_UNREACHABLE: 4,
  SOURCE_ADDRESS_FAILED_POLICY: 5,
  REJECT_ROUTE: 6,
  /** Time Exceeded: hop limit exceeded in transit. */
  HOP_LIMIT_EXCEEDED: 0,
  /** Time Exceeded: fragment reassembly time exceeded. */
  REASSEMBLY_TIME_EXCEEDED: 1,
  /** Parameter Problem: erroneous header field encountered. */
  ERRONEOUS_HEADER_FIELD: 0,
  /** Parameter Problem: unrecognized Next Header type encountered. */
  UNRECOGNIZED_NEXT_HEADER: 1,
  /** Parameter Problem: unrecognized IPv6 option encountered. */
  UNRECOGNIZED_OPTION: 2,
  /** Parameter Problem: first fragment has an incomplete header chain (RFC 7112 §5). */
  INCOMPLETE_HEADER_CHAIN: 3,
} as const;

/** True for error messages: types 0–127 (RFC 4443 §2.1). */
export function icmpv6IsError(type: number): boolean {
  return type < 128;
}

// RFC 4443 §2.1, §3, §4
const F = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4, IDENT: 4, SEQ: 6 } as const;

/** Offset of the source address in an IPv6 header. */
const IP_SRC = 8;
/** Offset of the destination address in an IPv6 header. */
const IP_DST = 24;

/**
 * A view of an ICMPv6 message at an offset of a {@link PacketBuffer}.
 * The message runs to `buf.end` unless a length is passed. The checksum
 * covers the IPv6 pseudo header, so its methods take the offset of the
 * IPv6 header that carries the addresses.
 *
 * @example
 * ```ts
 * import { Icmpv6Packet, Icmpv6Repr } from "./icmpv6.ts";
 * import { writeIpv6Header } from "./ipv6.ts";
 * import { parseIpv6 } from "./ip_address.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(128);
 * const repr: Icmpv6Repr = { kind: "echoRequest", ident: 1, seq: 2, data: new Uint8Array(4) };
 * const len = Icmpv6Repr.bufferLen(repr);
 * p.setFrame(0, 40 + len);
 * writeIpv6Header(p, 0, {
 *   src: parseIpv6("2001:db8::1"), dst: parseIpv6("2001:db8::2"), nextHeader: 58, payloadLen: len,
 * });
 * Icmpv6Repr.emit(repr, p, 40, 0);
 * const icmp = new Icmpv6Packet().reset(p, 40);
 * console.assert(icmp.check() && icmp.verifyChecksum(0) && icmp.seq() === 2);
 * ```
 */
export class Icmpv6Packet {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the type byte in `buf.data`. */
  off = 0;

  /** Point the view at the message starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** True when the 8-byte header lies before `buf.end`. */
  check(): boolean {
    return this.buf.end - this.off >= ICMPV6_HEADER_LEN;
  }

  /** Message type ({@link Icmpv6Type}). */
  type(): number {
    return this.buf.data[this.off + F.TYPE]!;
  }

  /** Set the type. */
  setType(v: number): void {
    this.buf.data[this.off + F.TYPE] = v;
  }

  /** Code ({@link Icmpv6Code}). */
  code(): number {
    return this.buf.data[this.off + F.CODE]!;
  }

  /** Set the code. */
  setCode(v: number): void {
    this.buf.data[this.off + F.CODE] = v;
  }

  /** Checksum field. */
  checksum(): number {
    return this.buf.view.getUint16(this.off + F.CHECKSUM);
  }

  /** Set the checksum field. */
  setChecksum(v: number): void {
    this.buf.view.setUint16(this.off + F.CHECKSUM, v);
  }

  /** The 32-bit word after the checksum (unused, MTU or pointer). */
  restOfHeader(): number {
    return this.buf.view.getUint32(this.off + F.REST);
  }

  /** Set the 32-bit word after the checksum. */
  setRestOfHeader(v: number): void {
    this.buf.view.setUint32(this.off + F.REST, v >>> 0);
  }

  /** Echo identifier. */
  ident(): number {
    return this.buf.view.getUint16(this.off + F.IDENT);
  }

  /** Set the echo identifier. */
  setIdent(v: number): void {
    this.buf.view.setUint16(this.off + F.IDENT, v);
  }

  /** Echo sequence number. */
  seq(): number {
    return this.buf.view.getUint16(this.off + F.SEQ);
  }

  /** Set the echo sequence number. */
  setSeq(v: number): void {
    this.buf.view.setUint16(this.off + F.SEQ, v);
  }

  /** MTU of Packet Too Big (RFC 4443 §3.2). */
  mtu(): number {
    return this.restOfHeader();
  }

  /** Set the MTU of Packet Too Big. */
  setMtu(v: number): void {
    this.setRestOfHeader(v);
  }

  /** Pointer of Parameter Problem (RFC 4443 §3.4): offset of the error in the invoking packet. */
  pointer(): number {
    return this.restOfHeader();
  }

  /** Set the Parameter Problem pointer. */
  setPointer(v: number): void {
    this.setRestOfHeader(v);
  }

  /** Offset in `buf.data` of the data after the 8-byte header. */
  payloadOffset(): number {
    return this.off + ICMPV6_HEADER_LEN;
  }

  /**
   * True when the checksum over `len` bytes of message is correct. The
   * pseudo header takes the addresses of the IPv6 header at `ipOff`; pass
   * `dstOff` when the final destination differs (a Routing header, RFC
   * 8200 §8.1).
   */
  verifyChecksum(
    ipOff: number,
    len: number = this.buf.end - this.off,
    dstOff: number = ipOff + IP_DST,
  ): boolean {
    const d = this.buf.data;
    const s = onesSum(
      d,
      this.off,
      len,
      ipv6PseudoHeaderSum(d, ipOff + IP_SRC, dstOff, ICMPV6_NEXT_HEADER, len),
    );
    return foldSum(s) === 0xffff;
  }

  /** Compute and store the checksum over `len` bytes of message (see {@link verifyChecksum}). */
  fillChecksum(
    ipOff: number,
    len: number = this.buf.end - this.off,
    dstOff: number = ipOff + IP_DST,
  ): void {
    const d = this.buf.data;
    this.setChecksum(0);
    this.setChecksum(
      finishChecksum(
        onesSum(
          d,
          this.off,
          len,
          ipv6PseudoHeaderSum(d, ipOff + IP_SRC, dstOff, ICMPV6_NEXT_HEADER, len),
        ),
      ),
    );
  }
}

/**
 * An ICMPv6 error or echo message in parsed form. Errors carry `data`: as
 * much of the invoking packet as fits (RFC 4443 §2.4 (c), at most
 * {@link ICMPV6_MAX_ERROR_QUOTE} bytes).
 */
export type Icmpv6Repr =
  | { kind: "echoRequest"; ident: number; seq: number; data: Uint8Array }
  | { kind: "echoReply"; ident: number; seq: number; data: Uint8Array }
  | { kind: "destinationUnreachable"; code: number; data: Uint8Array }
  | { kind: "packetTooBig"; mtu: number; data: Uint8Array }
  | { kind: "timeExceeded"; code: number; data: Uint8Array }
  | { kind: "parameterProblem"; code: number; pointer: number; data: Uint8Array };

/** Parse, size and emit {@link Icmpv6Repr}s. */
export const Icmpv6Repr: {
  parse(icmp: Icmpv6Packet, ipOff: number, len?: number): Icmpv6Repr | null;
  bufferLen(repr: Icmpv6Repr): number;
  emit(repr: Icmpv6Repr, buf: PacketBuffer, off: number, ipOff: number): void;
} = {
  /**
   * Parse `len` bytes of message (to `buf.end` by default), checking the
   * checksum against the IPv6 header at `ipOff`. Returns null when the
   * header is short, the checksum is wrong, or the type is not one this
   * Repr models (NDP and MLD have their own).
   */
  parse(
    icmp: Icmpv6Packet,
    ipOff: number,
    len: number = icmp.buf.end - icmp.off,
  ): Icmpv6Repr | null {
    if (len < ICMPV6_HEADER_LEN || icmp.buf.end - icmp.off < len) return null;
    if (!icmp.verifyChecksum(ipOff, len)) return null;
    const start = icmp.payloadOffset();
    const data = icmp.buf.data.slice(start, icmp.off + len);
    const code = icmp.code();
    switch (icmp.type()) {
      case Icmpv6Type.ECHO_REQUEST:
        if (code !== 0) return null;
        return { kind: "echoRequest", ident: icmp.ident(), seq: icmp.seq(), data };
      case Icmpv6Type.ECHO_REPLY:
        if (code !== 0) return null;
        return { kind: "echoReply", ident: icmp.ident(), seq: icmp.seq(), data };
      case Icmpv6Type.DEST_UNREACHABLE:
        return { kind: "destinationUnreachable", code, data };
      case Icmpv6Type.PACKET_TOO_BIG:
        return { kind: "packetTooBig", mtu: icmp.mtu(), data };
      case Icmpv6Type.TIME_EXCEEDED:
        return { kind: "timeExceeded", code, data };
      case Icmpv6Type.PARAMETER_PROBLEM:
        return { kind: "parameterProblem", code, pointer: icmp.pointer(), data };
      default:
        return null;
    }
  },

  /** Bytes `emit()` writes: header plus data. */
  bufferLen(repr: Icmpv6Repr): number {
    return ICMPV6_HEADER_LEN + repr.data.length;
  },

  /**
   * Write the whole message at `off`, checksum included. The IPv6 header
   * at `ipOff` must already hold the source and destination addresses.
   */
  emit(repr: Icmpv6Repr, buf: PacketBuffer, off: number, ipOff: number): void {
    const icmp = new Icmpv6Packet().reset(buf, off);
    icmp.setRestOfHeader(0);
    switch (repr.kind) {
      case "echoRequest":
      case "echoReply":
        icmp.setType(repr.kind === "echoRequest" ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY);
        icmp.setCode(0);
        icmp.setIdent(repr.ident);
        icmp.setSeq(repr.seq);
        break;
      case "destinationUnreachable":
        icmp.setType(Icmpv6Type.DEST_UNREACHABLE);
        icmp.setCode(repr.code);
        break;
      case "packetTooBig":
        icmp.setType(Icmpv6Type.PACKET_TOO_BIG);
        icmp.setCode(0);
        icmp.setMtu(repr.mtu);
        break;
      case "timeExceeded":
        icmp.setType(Icmpv6Type.TIME_EXCEEDED);
        icmp.setCode(repr.code);
        break;
      case "parameterProblem":
        icmp.setType(Icmpv6Type.PARAMETER_PROBLEM);
        icmp.setCode(repr.code);
        icmp.setPointer(repr.pointer);
        break;
    }
    buf.data.set(repr.data, off + ICMPV6_HEADER_LEN);
    icmp.fillChecksum(ipOff, ICMPV6_HEADER_LEN + repr.data.length);
  },
};
