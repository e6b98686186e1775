/**
 * The TCP header (RFC 9293 §3.1), as much as forwarding, NAT, MSS
 * clamping and segmentation need: ports, sequence numbers, flags, window,
 * the MSS option (RFC 9293 §3.2) and the pseudo-header checksums.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          Source Port          |       Destination Port        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        Sequence Number                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Acknowledgment Number                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Data |       |C|E|U|A|P|R|S|F|                               |
 * | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           Checksum            |         Urgent Pointer        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           Options                             |
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";
import {
  checksumUpdate16,
  finishChecksum,
  foldSum,
  ipv4PseudoHeaderSum,
  onesSum,
} from "./checksum.ts";

/** Bytes of a TCP header without options. */
export const TCP_MIN_HEADER_LEN = 20;
/** Bytes of the largest TCP header (data offset 15). */
export const TCP_MAX_HEADER_LEN = 60;
const TCP_PROTOCOL = 6;

/** TCP flag bits of byte 13 (RFC 9293 §3.1; ECE/CWR from RFC 3168 §6.1). */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** TCP option kinds (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

// RFC 9293 §3.1
const F = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFF: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
} as const;

/**
 * A view of a TCP header at an offset of a {@link PacketBuffer}.
 *
 * @example
 * ```ts
 * import { TcpPacket, TcpRepr, TcpFlags } from "./tcp.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(128);
 * const repr: TcpRepr = { srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: TcpFlags.SYN,
 *   window: 64240, urgent: 0, mss: 1460, payload: new Uint8Array(0) };
 * p.setFrame(0, TcpRepr.bufferLen(repr));
 * TcpRepr.emit(repr, p, 0, { src: 0xc0000201, dst: 0xc0000202 });
 * const tcp = new TcpPacket().reset(p, 0);
 * tcp.setMss(1400);
 * console.assert(tcp.mss() === 1400 && tcp.verifyChecksumV4(0xc0000201, 0xc0000202));
 * ```
 */
export class TcpPacket {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the header in `buf.data`. */
  off = 0;

  /** Point the view at the segment starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** True when 20 ≤ data offset·4 ≤ bytes before `buf.end`. */
  check(): boolean {
    const avail = this.buf.end - this.off;
    if (avail < TCP_MIN_HEADER_LEN) return false;
    const hl = this.headerLen();
    return hl >= TCP_MIN_HEADER_LEN && hl <= avail;
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

  /** Sequence number (unsigned 32-bit). */
  seq(): number {
    return this.buf.view.getUint32(this.off + F.SEQ);
  }

  setSeq(v: number): void {
    this.buf.view.setUint32(this.off + F.SEQ, v >>> 0);
  }

  /** Acknowledgment number (unsigned 32-bit). */
  ack(): number {
    return this.buf.view.getUint32(this.off + F.ACK);
  }

  setAck(v: number): void {
    this.buf.view.setUint32(this.off + F.ACK, v >>> 0);
  }

  /** Data offset: header length in 32-bit words. */
  dataOffset(): number {
    return this.buf.data[this.off + F.DATA_OFF]! >> 4;
  }

  setDataOffset(words: number): void {
    const at = this.off + F.DATA_OFF;
    this.buf.data[at] = ((words & 0x0f) << 4) | (this.buf.data[at]! & 0x0f);
  }

  /** Header length in bytes (data offset·4). */
  headerLen(): number {
    return (this.buf.data[this.off + F.DATA_OFF]! >> 4) << 2;
  }

  /** The flag byte ({@link TcpFlags}). */
  flags(): number {
    return this.buf.data[this.off + F.FLAGS]!;
  }

  setFlags(v: number): void {
    this.buf.data[this.off + F.FLAGS] = v;
  }

  /** True when every bit of `flag` is set. */
  hasFlags(flag: number): boolean {
    return (this.buf.data[this.off + F.FLAGS]! & flag) === flag;
  }

  /** Window (unscaled). */
  window(): number {
    return this.buf.view.getUint16(this.off + F.WINDOW);
  }

  setWindow(v: number): void {
    this.buf.view.setUint16(this.off + F.WINDOW, v);
  }

  /** Checksum field. */
  checksum(): number {
    return this.buf.view.getUint16(this.off + F.CHECKSUM);
  }

  setChecksum(v: number): void {
    this.buf.view.setUint16(this.off + F.CHECKSUM, v);
  }

  /** Urgent pointer. */
  urgent(): number {
    return this.buf.view.getUint16(this.off + F.URGENT);
  }

  setUrgent(v: number): void {
    this.buf.view.setUint16(this.off + F.URGENT, v);
  }

  /** Offset in `buf.data` of the first option byte. */
  optionsOffset(): number {
    return this.off + TCP_MIN_HEADER_LEN;
  }

  /** Offset in `buf.data` of the payload. */
  payloadOffset(): number {
    return this.off + this.headerLen();
  }

  /**
   * Offset in `buf.data` of the first option of `kind`'s value (after kind
   * and length), or −1 when absent, malformed, or not `len` bytes long.
   */
  findOption(kind: number, len: number): number {
    const d = this.buf.data;
    const end = this.off + this.headerLen();
    let i = this.off + TCP_MIN_HEADER_LEN;
    while (i < end) {
      const k = d[i]!;
      if (k === TcpOptionKind.END) return -1;
      if (k === TcpOptionKind.NOP) {
        i++;
        continue;
      }
      if (i + 1 >= end) return -1;
      const l = d[i + 1]!;
      if (l < 2 || i + l > end) return -1;
      if (k === kind) return l === len ? i + 2 : -1;
      i += l;
    }
    return -1;
  }

  /** The MSS option's value (RFC 9293 §3.2), or −1 when absent. */
  mss(): number {
    const at = this.findOption(TcpOptionKind.MSS, 4);
    return at < 0 ? -1 : (this.buf.data[at]! << 8) | this.buf.data[at + 1]!;
  }

  /**
   * Rewrite an existing MSS option's value and patch the checksum
   * incrementally (RFC 1624), as MSS clamping does.
   *
   * @returns false when there is no MSS option
   */
  setMss(v: number): boolean {
    const at = this.findOption(TcpOptionKind.MSS, 4);
    if (at < 0) return false;
    const d = this.buf.data;
    // The value may start at an odd offset from the header; update each of
    // the checksum's 16-bit words the two bytes touch.
    const first = at - ((at - this.off) & 1);
    const words = first === at ? 1 : 2;
    const old0 = (d[first]! << 8) | d[first + 1]!;
    const old1 = words === 2 ? (d[first + 2]! << 8) | d[first + 3]! : 0;
    d[at] = (v >> 8) & 0xff;
    d[at + 1] = v & 0xff;
    let c = checksumUpdate16(this.checksum(), old0, (d[first]! << 8) | d[first + 1]!);
    if (words === 2) c = checksumUpdate16(c, old1, (d[first + 2]! << 8) | d[first + 3]!);
    this.setChecksum(c);
    return true;
  }

  /** True when the checksum over `len` bytes of segment over IPv4 is correct. */
  verifyChecksumV4(src: number, dst: number, len: number = this.buf.end - this.off): boolean {
    return foldSum(
      onesSum(this.buf.data, this.off, len, ipv4PseudoHeaderSum(src, dst, TCP_PROTOCOL, len)),
    ) ===
      0xffff;
  }

  /** Compute and store the checksum over `len` bytes of segment over IPv4. */
  fillChecksumV4(src: number, dst: number, len: number = this.buf.end - this.off): void {
    this.setChecksum(0);
    this.setChecksum(
      finishChecksum(
        onesSum(this.buf.data, this.off, len, ipv4PseudoHeaderSum(src, dst, TCP_PROTOCOL, len)),
      ),
    );
  }

  /** True when the checksum over `len` bytes of segment over IPv6 is correct. */
  verifyChecksumV6(
    src: Uint8Array,
    dst: Uint8Array,
    len: number = this.buf.end - this.off,
    srcOff = 0,
    dstOff = 0,
  ): boolean {
    return foldSum(
      onesSum(this.buf.data, this.off, len, v6Pseudo(src, dst, srcOff, dstOff, len)),
    ) === 0xffff;
  }

  /** Compute and store the checksum over `len` bytes of segment over IPv6. */
  fillChecksumV6(
    src: Uint8Array,
    dst: Uint8Array,
    len: number = this.buf.end - this.off,
    srcOff = 0,
    dstOff = 0,
  ): void {
    this.setChecksum(0);
    this.setChecksum(
      finishChecksum(
        onesSum(this.buf.data, this.off, len, v6Pseudo(src, dst, srcOff, dstOff, len)),
      ),
    );
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
  return onesSum(dst, dstOff, 16, s) + (len >>> 16) + (len & 0xffff) + TCP_PROTOCOL;
}

/**
 * A TCP segment in parsed form. Only the MSS option is modelled; `emit`
 * writes it (padded to 4 bytes) when `mss` is not null.
 */
export interface TcpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number. */
  seq: number;
  /** Acknowledgment number. */
  ack: number;
  /** Flag byte ({@link TcpFlags}). */
  flags: number;
  /** Window (unscaled). */
  window: number;
  /** Urgent pointer. */
  urgent: number;
  /** MSS option value, or null without one. */
  mss: number | null;
  /** Payload bytes. */
  payload: Uint8Array;
}

/** Parse, size and emit {@link TcpRepr}s. */
export const TcpRepr: {
  parse(tcp: TcpPacket, len?: number): TcpRepr | null;
  headerLen(repr: TcpRepr): number;
  bufferLen(repr: TcpRepr): number;
  emit(repr: TcpRepr, buf: PacketBuffer, off: number, v4?: { src: number; dst: number }): void;
} = {
  /**
   * Parse `len` bytes of segment (to `buf.end` by default); null when
   * `check()` fails, the header is longer than `len`, or a port is 0.
   * Options other than MSS are skipped; the checksum is checked separately.
   */
  parse(tcp: TcpPacket, len: number = tcp.buf.end - tcp.off): TcpRepr | null {
    if (!tcp.check() || tcp.headerLen() > len || tcp.srcPort() === 0 || tcp.dstPort() === 0) {
      return null;
    }
    const mss = tcp.mss();
    const p = tcp.payloadOffset();
    return {
      srcPort: tcp.srcPort(),
      dstPort: tcp.dstPort(),
      seq: tcp.seq(),
      ack: tcp.ack(),
      flags: tcp.flags(),
      window: tcp.window(),
      urgent: tcp.urgent(),
      mss: mss < 0 ? null : mss,
      payload: tcp.buf.data.slice(p, tcp.off + len),
    };
  },

  /** Header bytes of `repr`: 20, or 24 with MSS. */
  headerLen(repr: TcpRepr): number {
    return TCP_MIN_HEADER_LEN + (repr.mss === null ? 0 : 4);
  },

  /** Bytes `emit()` writes: header plus payload. */
  bufferLen(repr: TcpRepr): number {
    return TcpRepr.headerLen(repr) + repr.payload.length;
  },

  /** Write header and payload at `off`; with `v4` the IPv4 checksum is filled, else it is 0. */
  emit(repr: TcpRepr, buf: PacketBuffer, off: number, v4?: { src: number; dst: number }): void {
    const tcp = new TcpPacket().reset(buf, off);
    const hl = TcpRepr.headerLen(repr);
    tcp.setSrcPort(repr.srcPort);
    tcp.setDstPort(repr.dstPort);
    tcp.setSeq(repr.seq);
    tcp.setAck(repr.ack);
    buf.data[off + F.DATA_OFF] = (hl >> 2) << 4;
    tcp.setFlags(repr.flags);
    tcp.setWindow(repr.window);
    tcp.setChecksum(0);
    tcp.setUrgent(repr.urgent);
    if (repr.mss !== null) writeMssOption(buf, off + TCP_MIN_HEADER_LEN, repr.mss);
    buf.data.set(repr.payload, off + hl);
    if (v4 !== undefined) tcp.fillChecksumV4(v4.src, v4.dst, hl + repr.payload.length);
  },
};

/** Write a 4-byte MSS option (kind 2, length 4, value) at `off`. */
export function writeMssOption(buf: PacketBuffer, off: number, mss: number): void {
  buf.data[off] = TcpOptionKind.MSS;
  buf.data[off + 1] = 4;
  buf.view.setUint16(off + 2, mss);
}

/**
 * The options a TCP endpoint reads from a segment (RFC 9293 §3.2 MSS,
 * RFC 7323 window scale and timestamps, RFC 2018 SACK), parsed into a
 * reusable object so the receive path allocates nothing.
 */
export class TcpOptions {
  /** MSS value, or −1 when absent. */
  mss = -1;
  /** Window scale shift (clamped to 14, RFC 7323 §2.3), or −1 when absent. */
  wscale = -1;
  sackPermitted = false;
  /** True when a timestamps option was present. */
  hasTimestamps = false;
  tsVal = 0;
  tsEcr = 0;
  /** SACK blocks: left and right edges, `sackCount` pairs in `sack`. */
  sackCount = 0;
  readonly sack: Uint32Array = new Uint32Array(8);

  /** Forget the last segment's options. */
  clear(): void {
    this.mss = -1;
    this.wscale = -1;
    this.sackPermitted = false;
    this.hasTimestamps = false;
    this.tsVal = 0;
    this.tsEcr = 0;
    this.sackCount = 0;
  }
}

/**
 * Parse the options of the header at `off` (data offset `hl` bytes) into
 * `out`. An option whose length is wrong for its kind is skipped, as Linux
 * does (tcp_parse_options); a length that runs past the header ends the
 * walk.
 *
 * @returns false when the option list is malformed (a length below 2 or past the header)
 */
export function parseTcpOptions(
  d: Uint8Array,
  off: number,
  hl: number,
  out: TcpOptions,
): boolean {
  out.clear();
  const end = off + hl;
  let i = off + TCP_MIN_HEADER_LEN;
  while (i < end) {
    const k = d[i]!;
    if (k === TcpOptionKind.END) return true;
    if (k === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return false;
    const l = d[i + 1]!;
    if (l < 2 || i + l > end) return false;
    switch (k) {
      case TcpOptionKind.MSS:
        if (l === 4) out.mss = (d[i + 2]! << 8) | d[i + 3]!;
        break;
      case TcpOptionKind.WINDOW_SCALE:
        // RFC 7323 §2.3: a shift above 14 is used as 14.
        if (l === 3) out.wscale = Math.min(14, d[i + 2]!);
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (l === 2) out.sackPermitted = true;
        break;
      case TcpOptionKind.TIMESTAMPS:
        if (l === 10) {
          out.hasTimestamps = true;
          out.tsVal = readU32(d, i + 2);
          out.tsEcr = readU32(d, i + 6);
        }
        break;
      case TcpOptionKind.SACK:
        if (l >= 10 && (l - 2) % 8 === 0) {
          const n = Math.min(4, (l - 2) >> 3);
          for (let b = 0; b < n; b++) {
            out.sack[2 * b] = readU32(d, i + 2 + 8 * b);
            out.sack[2 * b + 1] = readU32(d, i + 6 + 8 * b);
          }
          out.sackCount = n;
        }
        break;
    }
    i += l;
  }
  return true;
}

function readU32(d: Uint8Array, i: number): number {
  return ((d[i]! << 24) | (d[i + 1]! << 16) | (d[i + 2]! << 8) | d[i + 3]!) >>> 0;
}

function writeU32(d: Uint8Array, i: number, v: number): void {
  d[i] = v >>> 24;
  d[i + 1] = (v >>> 16) & 0xff;
  d[i + 2] = (v >>> 8) & 0xff;
  d[i + 3] = v & 0xff;
}

/** What {@link writeTcpOptions} writes; absent or −1 fields are left out. */
export interface TcpOptionsOut {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  /** Timestamps value and echo reply. */
  ts?: { val: number; ecr: number };
  /** SACK blocks as [left, right, left, right, ...] (at most 4 blocks; fewer fit with timestamps). */
  sack?: ArrayLike<number>;
  sackCount?: number;
}

/**
 * Bytes {@link writeTcpOptions} writes for `o` (a multiple of 4), with the
 * layouts Linux sends: MSS; NOP NOP TS or SACK-permitted+TS; NOP WS; NOP
 * NOP SACK blocks.
 */
export function tcpOptionsLen(o: TcpOptionsOut): number {
  let n = 0;
  if (o.mss !== undefined && o.mss >= 0) n += 4;
  if (o.ts !== undefined) n += 12; // SACK-permitted rides in the TS word's NOPs
  else if (o.sackPermitted) n += 4;
  if (o.wscale !== undefined && o.wscale >= 0) n += 4;
  const blocks = o.sackCount ?? 0;
  if (blocks > 0) n += 4 + 8 * blocks;
  return n;
}

/**
 * Write options at `at` (right after the 20-byte header) in Linux's order
 * and padding, e.g. a SYN's `MSS, SACK-permitted, TS, NOP, WS`.
 *
 * @returns the bytes written ({@link tcpOptionsLen})
 */
export function writeTcpOptions(d: Uint8Array, at: number, o: TcpOptionsOut): number {
  let i = at;
  if (o.mss !== undefined && o.mss >= 0) {
    d[i] = TcpOptionKind.MSS;
    d[i + 1] = 4;
    d[i + 2] = o.mss >> 8;
    d[i + 3] = o.mss & 0xff;
    i += 4;
  }
  if (o.ts !== undefined) {
    if (o.sackPermitted) {
      d[i] = TcpOptionKind.SACK_PERMITTED;
      d[i + 1] = 2;
    } else {
      d[i] = TcpOptionKind.NOP;
      d[i + 1] = TcpOptionKind.NOP;
    }
    d[i + 2] = TcpOptionKind.TIMESTAMPS;
    d[i + 3] = 10;
    writeU32(d, i + 4, o.ts.val);
    writeU32(d, i + 8, o.ts.ecr);
    i += 12;
  } else if (o.sackPermitted) {
    d[i] = TcpOptionKind.NOP;
    d[i + 1] = TcpOptionKind.NOP;
    d[i + 2] = TcpOptionKind.SACK_PERMITTED;
    d[i + 3] = 2;
    i += 4;
  }
  if (o.wscale !== undefined && o.wscale >= 0) {
    d[i] = TcpOptionKind.NOP;
    d[i + 1] = TcpOptionKind.WINDOW_SCALE;
    d[i + 2] = 3;
    d[i + 3] = o.wscale;
    i += 4;
  }
  const blocks = o.sackCount ?? 0;
  if (blocks > 0 && o.sack !== undefined) {
    d[i] = TcpOptionKind.NOP;
    d[i + 1] = TcpOptionKind.NOP;
    d[i + 2] = TcpOptionKind.SACK;
    d[i + 3] = 2 + 8 * blocks;
    i += 4;
    for (let b = 0; b < blocks; b++) {
      writeU32(d, i, o.sack[2 * b]!);
      writeU32(d, i + 4, o.sack[2 * b + 1]!);
      i += 8;
    }
  }
  return i - at;
}
