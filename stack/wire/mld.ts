/**
 * Multicast Listener Discovery: MLDv2 (RFC 3810 §5) Query and Report with
 * multicast address records, MLDv1 (RFC 2710 §3) Query, Report and Done
 * for compatibility, and the Hop-by-Hop Router Alert header every MLD
 * message carries (RFC 2711; RFC 3810 §5: hop limit 1, Router Alert).
 *
 * ```
 * MLDv1 (24 bytes):     type | code | checksum | max response delay(2) | reserved(2)
 *                       multicast address(16)
 * MLDv2 Query (28+16n): type 130 | code | checksum | max response code(2) | reserved(2)
 *                       multicast address(16) | resv(4) S(1) QRV(3) | QQIC | number of sources(2)
 *                       source addresses(16 each)
 * MLDv2 Report (143):   type | reserved | checksum | reserved(2) | number of records(2)
 *   record:             record type | aux data len(words) | number of sources(2)
 *                       multicast address(16) | sources(16 each) | aux data
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";
import { ICMPV6_NEXT_HEADER, Icmpv6Packet, Icmpv6Type } from "./icmpv6.ts";
import { IPV6_HEADER_LEN, writeIpv6Header } from "./ipv6.ts";
import { Ipv6OptionType, Ipv6RouterAlertValue } from "./ipv6_ext.ts";

/** Bytes of an MLDv1 message (RFC 2710 §3). */
export const MLDV1_LEN = 24;
/** Bytes of an MLDv2 Query without sources (RFC 3810 §5.1). */
export const MLDV2_QUERY_MIN_LEN = 28;
/** Bytes of the MLDv2 Report header before its records (RFC 3810 §5.2). */
export const MLDV2_REPORT_HEADER_LEN = 8;
/** Bytes of a multicast address record without sources or aux data. */
export const MLDV2_RECORD_HEADER_LEN = 20;
/** Bytes of the Hop-by-Hop header {@link writeRouterAlertHopByHop} writes. */
export const ROUTER_ALERT_HBH_LEN = 8;
/** RFC 3810 §5: MLD messages are sent with hop limit 1. */
export const MLD_HOP_LIMIT = 1;

/** Multicast address record types (RFC 3810 §5.2.12). */
export const MldRecordType = {
  MODE_IS_INCLUDE: 1,
  MODE_IS_EXCLUDE: 2,
  CHANGE_TO_INCLUDE_MODE: 3,
  CHANGE_TO_EXCLUDE_MODE: 4,
  ALLOW_NEW_SOURCES: 5,
  BLOCK_OLD_SOURCES: 6,
} as const;

/**
 * Maximum Response Delay in ms from the Maximum Response Code (RFC 3810
 * §5.1.3): below 32768 the code is the delay; above, a floating-point
 * value (mant | 0x1000) << (exp + 3).
 */
export function mldMaxResponseMs(code: number): number {
  if (code < 0x8000) return code;
  return ((code & 0x0fff) | 0x1000) * 2 ** (((code >> 12) & 7) + 3);
}

/** The Maximum Response Code for `ms` (rounded down to a representable value). */
export function mldMaxResponseCode(ms: number): number {
  if (ms < 0x8000) return ms;
  for (let exp = 0; exp < 8; exp++) {
    const mant = Math.floor(ms / 2 ** (exp + 3)) - 0x1000;
    if (mant < 0x1000) return 0x8000 | (exp << 12) | mant;
  }
  return 0xffff;
}

/**
 * Querier's Query Interval in seconds from the QQIC (RFC 3810 §5.1.9):
 * below 128 the code is the interval; above, (mant | 0x10) << (exp + 3).
 */
export function mldQqiSeconds(qqic: number): number {
  if (qqic < 0x80) return qqic;
  return ((qqic & 0x0f) | 0x10) << (((qqic >> 4) & 7) + 3);
}

/** The QQIC for `seconds` (rounded down to a representable value). */
export function mldQqicCode(seconds: number): number {
  if (seconds < 0x80) return seconds;
  for (let exp = 0; exp < 8; exp++) {
    const mant = (seconds >> (exp + 3)) - 0x10;
    if (mant < 0x10) return 0x80 | (exp << 4) | mant;
  }
  return 0xff;
}

/**
 * A view of an MLD message (the ICMPv6 header included) at an offset of a
 * {@link PacketBuffer}: a Query (v1 or v2), an MLDv1 Report or Done, or
 * an MLDv2 Report.
 *
 * @example
 * ```ts
 * import { MldPacket, MldRepr, writeMldPacket } from "./mld.ts";
 * import { parseIpv6 } from "./ip_address.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(256);
 * const repr: MldRepr = {
 *   kind: "reportV2",
 *   records: [{ type: 4, group: parseIpv6("ff02::1:ff00:1"), sources: [] }],
 * };
 * const n = writeMldPacket(p, 0, parseIpv6("fe80::1"), parseIpv6("ff02::16"), repr);
 * p.setFrame(0, n);
 * const mld = new MldPacket().reset(p, 48);
 * console.assert(mld.check() && mld.numberOfRecords() === 1);
 * ```
 */
export class MldPacket {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the ICMPv6 type byte in `buf.data`. */
  off = 0;

  /** Point the view at the message starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /**
   * True when `len` bytes (to `buf.end` by default) hold a whole message
   * of its type: 24 bytes for MLDv1 (a Query of 24 bytes is MLDv1, RFC
   * 3810 §8.1), 28 + 16·sources for an MLDv2 Query, and every record for
   * an MLDv2 Report.
   */
  check(len: number = this.buf.end - this.off): boolean {
    if (len > this.buf.end - this.off || len < 8) return false;
    switch (this.type()) {
      case Icmpv6Type.MLD_QUERY:
        if (len === MLDV1_LEN) return true;
        return len >= MLDV2_QUERY_MIN_LEN &&
          MLDV2_QUERY_MIN_LEN + 16 * this.numberOfSources() <= len;
      case Icmpv6Type.MLD_REPORT_V1:
      case Icmpv6Type.MLD_DONE:
        return len >= MLDV1_LEN;
      case Icmpv6Type.MLD_REPORT_V2: {
        const it = recIt.reset(this, len);
        while (it.next()) { /* walk */ }
        return !it.error;
      }
      default:
        return false;
    }
  }

  /** ICMPv6 type. */
  type(): number {
    return this.buf.data[this.off]!;
  }

  /** True for an MLDv2 Query: type 130 and at least 28 bytes (RFC 3810 §8.1). */
  isV2Query(len: number = this.buf.end - this.off): boolean {
    return this.type() === Icmpv6Type.MLD_QUERY && len >= MLDV2_QUERY_MIN_LEN;
  }

  /** Query: Maximum Response Code (MLDv2) or Maximum Response Delay in ms (MLDv1). */
  maxResponseCode(): number {
    return this.buf.view.getUint16(this.off + 4);
  }

  /** Query: the Maximum Response Delay in ms. */
  maxResponseMs(len: number = this.buf.end - this.off): number {
    const c = this.maxResponseCode();
    return this.isV2Query(len) ? mldMaxResponseMs(c) : c;
  }

  /** Query, MLDv1 Report and Done: offset in `buf.data` of the Multicast Address. */
  multicastAddressOffset(): number {
    return this.off + 8;
  }

  /** MLDv2 Query: the S flag (suppress router-side processing). */
  suppressRouterProcessing(): boolean {
    return (this.buf.data[this.off + 24]! & 0x08) !== 0;
  }

  /** MLDv2 Query: Querier's Robustness Variable. */
  qrv(): number {
    return this.buf.data[this.off + 24]! & 7;
  }

  /** MLDv2 Query: Querier's Query Interval Code. */
  qqic(): number {
    return this.buf.data[this.off + 25]!;
  }

  /** MLDv2 Query: the Querier's Query Interval in seconds. */
  qqiSeconds(): number {
    return mldQqiSeconds(this.qqic());
  }

  /** MLDv2 Query: Number of Sources. */
  numberOfSources(): number {
    return this.buf.view.getUint16(this.off + 26);
  }

  /** MLDv2 Query: offset in `buf.data` of source `i`. */
  sourceOffset(i: number): number {
    return this.off + MLDV2_QUERY_MIN_LEN + 16 * i;
  }

  /** MLDv2 Report: Number of Multicast Address Records. */
  numberOfRecords(): number {
    return this.buf.view.getUint16(this.off + 6);
  }
}

/**
 * Walks the multicast address records of an MLDv2 Report without
 * allocating. After `next()` returns true, the fields describe the
 * record; `next()` returns false after Number of Records records, or with
 * `error` true when a record runs past the message.
 */
export class MldRecordIterator {
  /** The bytes being walked. */
  data: Uint8Array = new Uint8Array(0);
  /** Record Type ({@link MldRecordType}). */
  recordType = 0;
  /** Bytes of auxiliary data. */
  auxDataLen = 0;
  /** Number of Sources. */
  numberOfSources = 0;
  /** Offset in `data` of the record. */
  offset = 0;
  /** Bytes of the record. */
  length = 0;
  /** True when a record ran past the message. */
  error = false;
  #pos = 0;
  #end = 0;
  #left = 0;

  /** Start walking the records of the MLDv2 Report `mld` of `len` bytes. */
  reset(mld: MldPacket, len: number = mld.buf.end - mld.off): this {
    this.data = mld.buf.data;
    this.#pos = mld.off + MLDV2_REPORT_HEADER_LEN;
    this.#end = mld.off + len;
    this.#left = len >= MLDV2_REPORT_HEADER_LEN ? mld.numberOfRecords() : 0;
    this.error = len < MLDV2_REPORT_HEADER_LEN;
    return this;
  }

  /** Advance to the next record. */
  next(): boolean {
    if (this.#left === 0 || this.error) return false;
    const pos = this.#pos;
    const d = this.data;
    if (this.#end - pos < MLDV2_RECORD_HEADER_LEN) return this.#fail();
    this.recordType = d[pos]!;
    this.auxDataLen = d[pos + 1]! << 2;
    this.numberOfSources = (d[pos + 2]! << 8) | d[pos + 3]!;
    const len = MLDV2_RECORD_HEADER_LEN + 16 * this.numberOfSources + this.auxDataLen;
    if (len > this.#end - pos) return this.#fail();
    this.offset = pos;
    this.length = len;
    this.#pos = pos + len;
    this.#left--;
    return true;
  }

  #fail(): boolean {
    this.error = true;
    return false;
  }

  /** Offset in `data` of the record's Multicast Address. */
  addressOffset(): number {
    return this.offset + 4;
  }

  /** Offset in `data` of source `i` of the record. */
  sourceOffset(i: number): number {
    return this.offset + MLDV2_RECORD_HEADER_LEN + 16 * i;
  }
}

const recIt = new MldRecordIterator();

/** One multicast address record of an MLDv2 Report (aux data is not modelled; RFC 3810 §5.2.10). */
export interface MldRecord {
  /** Record Type ({@link MldRecordType}). */
  type: number;
  /** Multicast Address. */
  group: Uint8Array;
  /** Source addresses. */
  sources: Uint8Array[];
}

/** An MLD message in parsed form. */
export type MldRepr =
  | { kind: "queryV1"; maxResponseDelay: number; group: Uint8Array }
  | {
    kind: "queryV2";
    maxResponseCode: number;
    group: Uint8Array;
    suppress: boolean;
    qrv: number;
    qqic: number;
    sources: Uint8Array[];
  }
  | { kind: "reportV1"; group: Uint8Array }
  | { kind: "done"; group: Uint8Array }
  | { kind: "reportV2"; records: MldRecord[] };

/** Parse, size and emit {@link MldRepr}s. */
export const MldRepr: {
  parse(mld: MldPacket, ipOff: number, len?: number): MldRepr | null;
  bufferLen(repr: MldRepr): number;
  emit(repr: MldRepr, buf: PacketBuffer, off: number, ipOff: number): void;
} = {
  /**
   * Parse `len` bytes of message (to `buf.end` by default) whose IPv6
   * header is at `ipOff`; null when `check()` fails or the checksum is
   * wrong.
   */
  parse(mld: MldPacket, ipOff: number, len: number = mld.buf.end - mld.off): MldRepr | null {
    if (!mld.check(len)) return null;
    if (!new Icmpv6Packet().reset(mld.buf, mld.off).verifyChecksum(ipOff, len)) return null;
    const d = mld.buf.data;
    const g = mld.multicastAddressOffset();
    switch (mld.type()) {
      case Icmpv6Type.MLD_QUERY: {
        if (!mld.isV2Query(len)) {
          return {
            kind: "queryV1",
            maxResponseDelay: mld.maxResponseCode(),
            group: d.slice(g, g + 16),
          };
        }
        const sources: Uint8Array[] = [];
        for (let i = 0; i < mld.numberOfSources(); i++) {
          const s = mld.sourceOffset(i);
          sources.push(d.slice(s, s + 16));
        }
        return {
          kind: "queryV2",
          maxResponseCode: mld.maxResponseCode(),
          group: d.slice(g, g + 16),
          suppress: mld.suppressRouterProcessing(),
          qrv: mld.qrv(),
          qqic: mld.qqic(),
          sources,
        };
      }
      case Icmpv6Type.MLD_REPORT_V1:
        return { kind: "reportV1", group: d.slice(g, g + 16) };
      case Icmpv6Type.MLD_DONE:
        return { kind: "done", group: d.slice(g, g + 16) };
      default: {
        const records: MldRecord[] = [];
        const it = new MldRecordIterator().reset(mld, len);
        while (it.next()) {
          const a = it.addressOffset();
          const sources: Uint8Array[] = [];
          for (let i = 0; i < it.numberOfSources; i++) {
            const s = it.sourceOffset(i);
            sources.push(d.slice(s, s + 16));
          }
          records.push({ type: it.recordType, group: d.slice(a, a + 16), sources });
        }
        return { kind: "reportV2", records };
      }
    }
  },

  /** Bytes `emit()` writes. */
  bufferLen(repr: MldRepr): number {
    switch (repr.kind) {
      case "queryV1":
      case "reportV1":
      case "done":
        return MLDV1_LEN;
      case "queryV2":
        return MLDV2_QUERY_MIN_LEN + 16 * repr.sources.length;
      case "reportV2":
        return repr.records.reduce(
          (n, r) => n + MLDV2_RECORD_HEADER_LEN + 16 * r.sources.length,
          MLDV2_REPORT_HEADER_LEN,
        );
    }
  },

  /**
   * Write the whole message at `off`, checksum included. The IPv6 header
   * at `ipOff` must already hold the source and destination addresses.
   */
  emit(repr: MldRepr, buf: PacketBuffer, off: number, ipOff: number): void {
    const d = buf.data;
    const v = buf.view;
    const len = MldRepr.bufferLen(repr);
    d.fill(0, off, off + 8);
    switch (repr.kind) {
      case "queryV1":
      case "reportV1":
      case "done":
        d[off] = repr.kind === "queryV1"
          ? Icmpv6Type.MLD_QUERY
          : repr.kind === "reportV1"
          ? Icmpv6Type.MLD_REPORT_V1
          : Icmpv6Type.MLD_DONE;
        if (repr.kind === "queryV1") v.setUint16(off + 4, repr.maxResponseDelay);
        d.set(repr.group, off + 8);
        break;
      case "queryV2":
        d[off] = Icmpv6Type.MLD_QUERY;
        v.setUint16(off + 4, repr.maxResponseCode);
        d.set(repr.group, off + 8);
        d[off + 24] = (repr.suppress ? 0x08 : 0) | (repr.qrv & 7);
        d[off + 25] = repr.qqic;
        v.setUint16(off + 26, repr.sources.length);
        repr.sources.forEach((s, i) => d.set(s, off + MLDV2_QUERY_MIN_LEN + 16 * i));
        break;
      case "reportV2": {
        d[off] = Icmpv6Type.MLD_REPORT_V2;
        v.setUint16(off + 6, repr.records.length);
        let at = off + MLDV2_REPORT_HEADER_LEN;
        for (const r of repr.records) {
          d[at] = r.type;
          d[at + 1] = 0;
          v.setUint16(at + 2, r.sources.length);
          d.set(r.group, at + 4);
          r.sources.forEach((s, i) => d.set(s, at + MLDV2_RECORD_HEADER_LEN + 16 * i));
          at += MLDV2_RECORD_HEADER_LEN + 16 * r.sources.length;
        }
        break;
      }
    }
    new Icmpv6Packet().reset(buf, off).fillChecksum(ipOff, len);
  },
};

/**
 * Write a Hop-by-Hop Options header holding Router Alert (RFC 2711 §2.1,
 * value 0 "Multicast Listener Discovery message") and a 2-byte PadN:
 * `nh 00 05 02 00 00 01 00`.
 *
 * @returns {@link ROUTER_ALERT_HBH_LEN}
 */
export function writeRouterAlertHopByHop(
  buf: PacketBuffer,
  off: number,
  nextHeader: number,
  value: number = Ipv6RouterAlertValue.MLD,
): number {
  const d = buf.data;
  d[off] = nextHeader;
  d[off + 1] = 0; // (0 + 1) · 8 bytes
  d[off + 2] = Ipv6OptionType.ROUTER_ALERT;
  d[off + 3] = 2;
  d[off + 4] = (value >> 8) & 0xff;
  d[off + 5] = value & 0xff;
  d[off + 6] = Ipv6OptionType.PADN;
  d[off + 7] = 0;
  return ROUTER_ALERT_HBH_LEN;
}

/**
 * Write a whole MLD packet at `off`: the IPv6 header (hop limit 1), the
 * Router Alert Hop-by-Hop header and the message with its checksum (RFC
 * 3810 §5; RFC 2710 §3).
 *
 * @returns bytes written (40 + 8 + the message)
 */
export function writeMldPacket(
  buf: PacketBuffer,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  repr: MldRepr,
): number {
  const len = MldRepr.bufferLen(repr);
  writeIpv6Header(buf, off, {
    src,
    dst,
    nextHeader: 0,
    payloadLen: ROUTER_ALERT_HBH_LEN + len,
    hopLimit: MLD_HOP_LIMIT,
  });
  writeRouterAlertHopByHop(buf, off + IPV6_HEADER_LEN, ICMPV6_NEXT_HEADER);
  MldRepr.emit(repr, buf, off + IPV6_HEADER_LEN + ROUTER_ALERT_HBH_LEN, off);
  return IPV6_HEADER_LEN + ROUTER_ALERT_HBH_LEN + len;
}
