/**
 * ICMP for IPv4 (RFC 792), with the Fragmentation Needed MTU field of
 * RFC 1191 §4 and the unreachable codes of RFC 1812 §5.2.7.1.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  rest of header: ident/seq, unused/MTU, pointer, gateway      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  data: echo payload, or the IP header + 8+ bytes of the       |
 * |  datagram an error is about                                   |
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";
import { internetChecksum } from "./checksum.ts";

/** Bytes of the ICMP header (type, code, checksum, rest of header). */
export const ICMPV4_HEADER_LEN = 8;

/** ICMPv4 message types (RFC 792, RFC 1256). */
export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  ROUTER_ADVERTISEMENT: 9,
  ROUTER_SOLICITATION: 10,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
  TIMESTAMP: 13,
  TIMESTAMP_REPLY: 14,
} as const;

/**
 * ICMPv4 codes. Destination Unreachable 0–15 (RFC 792; RFC 1812 §5.2.7.1),
 * Time Exceeded 0–1 (RFC 792), Parameter Problem 0–2 (RFC 792, RFC 1108,
 * RFC 1812 §5.2.7.1).
 */
export const Icmpv4Code = {
  NET_UNREACHABLE: 0,
  HOST_UNREACHABLE: 1,
  PROTOCOL_UNREACHABLE: 2,
  PORT_UNREACHABLE: 3,
  FRAGMENTATION_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  DEST_NET_UNKNOWN: 6,
  DEST_HOST_UNKNOWN: 7,
  SOURCE_HOST_ISOLATED: 8,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  NET_UNREACHABLE_FOR_TOS: 11,
  HOST_UNREACHABLE_FOR_TOS: 12,
  ADMIN_PROHIBITED: 13,
  HOST_PRECEDENCE_VIOLATION: 14,
  PRECEDENCE_CUTOFF: 15,
  /** Time Exceeded: TTL reached zero in transit. */
  TTL_EXCEEDED: 0,
  /** Time Exceeded: fragment reassembly timed out. */
  REASSEMBLY_TIME_EXCEEDED: 1,
  /** Parameter Problem: the pointer field locates the bad byte. */
  POINTER_INDICATES_ERROR: 0,
  /** Parameter Problem: a required option is missing. */
  MISSING_REQUIRED_OPTION: 1,
  /** Parameter Problem: bad length. */
  BAD_LENGTH: 2,
} as const;

// RFC 792
const F = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  IDENT: 4,
  SEQ: 6,
  POINTER: 4,
  NEXT_HOP_MTU: 6,
  REST: 4,
} as const;

/**
 * A view of an ICMPv4 message at an offset of a {@link PacketBuffer}.
 * The message runs to `buf.end` unless a length is passed.
 *
 * @example
 * ```ts
 * import { Icmpv4Packet, Icmpv4Repr } from "./icmpv4.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(64);
 * const repr: Icmpv4Repr = { kind: "echoRequest", ident: 1, seq: 2, data: new Uint8Array(4) };
 * p.setFrame(0, Icmpv4Repr.bufferLen(repr));
 * Icmpv4Repr.emit(repr, p, 0);
 * const icmp = new Icmpv4Packet().reset(p, 0);
 * console.assert(icmp.check() && icmp.verifyChecksum() && icmp.seq() === 2);
 * ```
 */
export class Icmpv4Packet {
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
    return this.buf.end - this.off >= ICMPV4_HEADER_LEN;
  }

  /** Message type ({@link Icmpv4Type}). */
  type(): number {
    return this.buf.data[this.off + F.TYPE]!;
  }

  setType(v: number): void {
    this.buf.data[this.off + F.TYPE] = v;
  }

  /** Code ({@link Icmpv4Code}). */
  code(): number {
    return this.buf.data[this.off + F.CODE]!;
  }

  setCode(v: number): void {
    this.buf.data[this.off + F.CODE] = v;
  }

  /** Checksum field. */
  checksum(): number {
    return this.buf.view.getUint16(this.off + F.CHECKSUM);
  }

  setChecksum(v: number): void {
    this.buf.view.setUint16(this.off + F.CHECKSUM, v);
  }

  /** Echo identifier. */
  ident(): number {
    return this.buf.view.getUint16(this.off + F.IDENT);
  }

  setIdent(v: number): void {
    this.buf.view.setUint16(this.off + F.IDENT, v);
  }

  /** Echo sequence number. */
  seq(): number {
    return this.buf.view.getUint16(this.off + F.SEQ);
  }

  setSeq(v: number): void {
    this.buf.view.setUint16(this.off + F.SEQ, v);
  }

  /** The 32-bit rest-of-header word (also the Redirect gateway address). */
  restOfHeader(): number {
    return this.buf.view.getUint32(this.off + F.REST);
  }

  setRestOfHeader(v: number): void {
    this.buf.view.setUint32(this.off + F.REST, v >>> 0);
  }

  /** Next-Hop MTU of Fragmentation Needed (type 3 code 4; RFC 1191 §4). */
  nextHopMtu(): number {
    return this.buf.view.getUint16(this.off + F.NEXT_HOP_MTU);
  }

  setNextHopMtu(v: number): void {
    this.buf.view.setUint16(this.off + F.NEXT_HOP_MTU, v);
  }

  /** Pointer of Parameter Problem (type 12): the offset of the bad byte. */
  pointer(): number {
    return this.buf.data[this.off + F.POINTER]!;
  }

  setPointer(v: number): void {
    this.buf.data[this.off + F.POINTER] = v;
  }

  /** Offset in `buf.data` of the data after the 8-byte header. */
  payloadOffset(): number {
    return this.off + ICMPV4_HEADER_LEN;
  }

  /** True when the checksum over `len` bytes of message is correct. */
  verifyChecksum(len: number = this.buf.end - this.off): boolean {
    return internetChecksum(this.buf.data, this.off, len) === 0;
  }

  /** Compute and store the checksum over `len` bytes of message. */
  fillChecksum(len: number = this.buf.end - this.off): void {
    this.setChecksum(0);
    this.setChecksum(internetChecksum(this.buf.data, this.off, len));
  }
}

/**
 * An ICMPv4 message in parsed form. Each error carries `data`: the quoted
 * IP header and leading bytes of the datagram it is about (RFC 792; RFC
 * 1812 §4.3.2.3 asks for as much as fits in 576 bytes).
 */
export type Icmpv4Repr =
  | { kind: "echoRequest"; ident: number; seq: number; data: Uint8Array }
  | { kind: "echoReply"; ident: number; seq: number; data: Uint8Array }
  | {
    kind: "destinationUnreachable";
    code: number;
    /** Next-Hop MTU for code 4 (RFC 1191 §4); 0 otherwise. */
    nextHopMtu: number;
    data: Uint8Array;
  }
  | { kind: "timeExceeded"; code: number; data: Uint8Array }
  | { kind: "parameterProblem"; code: number; pointer: number; data: Uint8Array };

/** Parse, size and emit {@link Icmpv4Repr}s. */
export const Icmpv4Repr: {
  parse(icmp: Icmpv4Packet, len?: number): Icmpv4Repr | null;
  bufferLen(repr: Icmpv4Repr): number;
  emit(repr: Icmpv4Repr, buf: PacketBuffer, off: number): void;
} = {
  /**
   * Parse `len` bytes of message (to `buf.end` by default). Returns null
   * when the header is short, the checksum is wrong, or the type is not
   * one this Repr models.
   */
  parse(icmp: Icmpv4Packet, len: number = icmp.buf.end - icmp.off): Icmpv4Repr | null {
    if (len < ICMPV4_HEADER_LEN || icmp.buf.end - icmp.off < len) return null;
    if (!icmp.verifyChecksum(len)) return null;
    const start = icmp.payloadOffset();
    const data = icmp.buf.data.slice(start, icmp.off + len);
    switch (icmp.type()) {
      case Icmpv4Type.ECHO_REQUEST:
        if (icmp.code() !== 0) return null;
        return { kind: "echoRequest", ident: icmp.ident(), seq: icmp.seq(), data };
      case Icmpv4Type.ECHO_REPLY:
        if (icmp.code() !== 0) return null;
        return { kind: "echoReply", ident: icmp.ident(), seq: icmp.seq(), data };
      case Icmpv4Type.DEST_UNREACHABLE:
        return {
          kind: "destinationUnreachable",
          code: icmp.code(),
          nextHopMtu: icmp.code() === Icmpv4Code.FRAGMENTATION_NEEDED ? icmp.nextHopMtu() : 0,
          data,
        };
      case Icmpv4Type.TIME_EXCEEDED:
        return { kind: "timeExceeded", code: icmp.code(), data };
      case Icmpv4Type.PARAMETER_PROBLEM:
        return { kind: "parameterProblem", code: icmp.code(), pointer: icmp.pointer(), data };
      default:
        return null;
    }
  },

  /** Bytes `emit()` writes: header plus data. */
  bufferLen(repr: Icmpv4Repr): number {
    return ICMPV4_HEADER_LEN + repr.data.length;
  },

  /** Write the whole message at `off`, checksum included. */
  emit(repr: Icmpv4Repr, buf: PacketBuffer, off: number): void {
    const icmp = new Icmpv4Packet().reset(buf, off);
    icmp.setRestOfHeader(0);
    switch (repr.kind) {
      case "echoRequest":
      case "echoReply":
        icmp.setType(repr.kind === "echoRequest" ? Icmpv4Type.ECHO_REQUEST : Icmpv4Type.ECHO_REPLY);
        icmp.setCode(0);
        icmp.setIdent(repr.ident);
        icmp.setSeq(repr.seq);
        break;
      case "destinationUnreachable":
        icmp.setType(Icmpv4Type.DEST_UNREACHABLE);
        icmp.setCode(repr.code);
        if (repr.code === Icmpv4Code.FRAGMENTATION_NEEDED) icmp.setNextHopMtu(repr.nextHopMtu);
        break;
      case "timeExceeded":
        icmp.setType(Icmpv4Type.TIME_EXCEEDED);
        icmp.setCode(repr.code);
        break;
      case "parameterProblem":
        icmp.setType(Icmpv4Type.PARAMETER_PROBLEM);
        icmp.setCode(repr.code);
        icmp.setPointer(repr.pointer);
        break;
    }
    buf.data.set(repr.data, off + ICMPV4_HEADER_LEN);
    icmp.fillChecksum(ICMPV4_HEADER_LEN + repr.data.length);
  },
};
