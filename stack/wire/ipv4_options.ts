/**
 * IPv4 options (RFC 791 §3.1): an allocation-free walker, validation that
 * yields the ICMP Parameter Problem pointer, Record Route and Timestamp
 * processing for forwarded packets, the options copied into non-first
 * fragments, and the options an Echo Reply carries (RFC 1122 §3.2.2.6).
 *
 * ```
 * single byte:  +--------+
 *               |  type  |      End of Option List (0), No Operation (1)
 *               +--------+
 * others:       +--------+--------+--------+---------
 *               |  type  | length | pointer| data …   (length counts all bytes)
 *               +--------+--------+--------+---------
 * type bits:    copied(1) | class(2) | number(5)
 * ```
 *
 * Error pointers follow gVisor's `processIPOptions` (and Linux
 * `ip_options_compile`): they count bytes from the start of the IP header.
 *
 * @module
 */
import { IPV4_MIN_HEADER_LEN, type Ipv4Packet } from "./ipv4.ts";

/** Option type bytes tapir knows (IANA "IP Option Numbers"). */
export const Ipv4OptionType = {
  END: 0,
  NOP: 1,
  RECORD_ROUTE: 7,
  TIMESTAMP: 68,
  SECURITY: 130,
  LOOSE_SOURCE_ROUTE: 131,
  STREAM_ID: 136,
  STRICT_SOURCE_ROUTE: 137,
  ROUTER_ALERT: 148,
} as const;

/** The copied flag of an option type: the option goes into every fragment (RFC 791 §3.1). */
export const IPV4_OPTION_COPIED = 0x80;

/** Timestamp option flags (RFC 791 §3.1, "Internet Timestamp"). */
export const Ipv4TimestampFlag = {
  /** Timestamps only. */
  TIMESTAMP_ONLY: 0,
  /** Each timestamp preceded by the recording host's address. */
  WITH_ADDRESS: 1,
  /** Addresses are prespecified; a host records only when its own address is next. */
  PRESPECIFIED: 3,
} as const;

// Offsets inside one option.
const O = { TYPE: 0, LENGTH: 1, POINTER: 2, TS_OFLW_FLG: 3, RA_VALUE: 2 } as const;
/** Bytes before the data area of Record Route: type, length, pointer. */
const RR_HDR_LEN = 3;
/** Bytes before the data area of Timestamp: type, length, pointer, overflow/flags. */
const TS_HDR_LEN = 4;
/** Router Alert is exactly 4 bytes (RFC 2113 §2.1). */
const RA_LEN = 4;

/** The result of validation or processing: fine, or the Parameter Problem pointer. */
export type Ipv4OptionsResult = { readonly ok: true } | {
  readonly ok: false;
  readonly pointer: number;
};

/** The one success value, so that success does not allocate. */
export const IPV4_OPTIONS_OK: Ipv4OptionsResult = Object.freeze({ ok: true as const });

function problem(pointer: number): Ipv4OptionsResult {
  return { ok: false, pointer };
}

/**
 * Walks the options of an IPv4 header without allocating. After `next()`
 * returns true, `type`, `offset` and `length` describe the option (NOP
 * included, length 1). `next()` returns false at the end (End of Option
 * List or the end of the header) or when an option's length is malformed,
 * in which case `errorPointer` holds the Parameter Problem pointer (else −1).
 *
 * @example
 * ```ts
 * import { Ipv4OptionIterator } from "./ipv4_options.ts";
 * import { Ipv4Packet, writeIpv4Header } from "./ipv4.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(128);
 * p.setFrame(0, 24);
 * writeIpv4Header(p, 0, { src: 1, dst: 2, protocol: 17, payloadLen: 0, options: new Uint8Array([148, 4, 0, 0]) });
 * const it = new Ipv4OptionIterator().reset(new Ipv4Packet().reset(p, 0));
 * console.assert(it.next() && it.type === 148 && it.length === 4 && !it.next());
 * ```
 */
export class Ipv4OptionIterator {
  /** The bytes being walked (`buf.data` of the packet). */
  data: Uint8Array = new Uint8Array(0);
  /** Type of the current option. */
  type = 0;
  /** Offset of the current option in `data`. */
  offset = 0;
  /** Bytes of the current option. */
  length = 0;
  /** −1, or the Parameter Problem pointer after `next()` failed on a malformed option. */
  errorPointer = -1;
  #base = 0;
  #pos = 0;
  #end = 0;

  /** Start walking the options of `ip` (a checked view). */
  reset(ip: Ipv4Packet): this {
    this.data = ip.buf.data;
    this.#base = ip.off;
    this.#pos = ip.off + IPV4_MIN_HEADER_LEN;
    this.#end = ip.off + ip.headerLen();
    this.errorPointer = -1;
    this.type = 0;
    this.offset = 0;
    this.length = 0;
    return this;
  }

  /** Offset of the current option from the start of the IP header. */
  pointer(): number {
    return this.offset - this.#base;
  }

  /** Advance to the next option; false at the end or on error (see `errorPointer`). */
  next(): boolean {
    const pos = this.#pos;
    if (pos >= this.#end) return false;
    const t = this.data[pos]!;
    if (t === Ipv4OptionType.END) {
      // Everything after End of Option List is padding.
      this.#pos = this.#end;
      return false;
    }
    if (t === Ipv4OptionType.NOP) {
      this.type = t;
      this.offset = pos;
      this.length = 1;
      this.#pos = pos + 1;
      return true;
    }
    // Every other option has a length byte that counts the whole option.
    // As gVisor and Linux do, a bad length points at the option's type byte.
    if (pos + 1 >= this.#end) {
      this.errorPointer = pos - this.#base;
      return false;
    }
    const len = this.data[pos + O.LENGTH]!;
    if (len < 2 || len > this.#end - pos) {
      this.errorPointer = pos - this.#base;
      return false;
    }
    this.type = t;
    this.offset = pos;
    this.length = len;
    this.#pos = pos + len;
    return true;
  }
}

const it = new Ipv4OptionIterator();
const seen = new Uint8Array(256);

function checkRecordRoute(d: Uint8Array, at: number, len: number, ptr: number): Ipv4OptionsResult {
  // The data area must hold at least one address.
  if (len < RR_HDR_LEN + 4) return problem(ptr + O.LENGTH);
  const p = d[at + O.POINTER]!;
  // RFC 791: "the smallest legal value for the pointer is 4", and each
  // entry is a 4-byte address, so the pointer is 4, 8, 12, ...
  if (p < RR_HDR_LEN + 1 || (p & 3) !== 0) return problem(ptr + O.POINTER);
  // Full: forwarded without recording (RFC 791 p. 21).
  if (p > len) return IPV4_OPTIONS_OK;
  // Some room but not enough for an address.
  if (p + 4 > len + 1) return problem(ptr + O.POINTER);
  return IPV4_OPTIONS_OK;
}

function timestampEntrySize(flags: number): number {
  if (flags === Ipv4TimestampFlag.TIMESTAMP_ONLY) return 4;
  if (flags === Ipv4TimestampFlag.WITH_ADDRESS || flags === Ipv4TimestampFlag.PRESPECIFIED) {
    return 8;
  }
  return 0;
}

function checkTimestamp(d: Uint8Array, at: number, len: number, ptr: number): Ipv4OptionsResult {
  if (len < TS_HDR_LEN) return problem(ptr + O.LENGTH);
  const entry = timestampEntrySize(d[at + O.TS_OFLW_FLG]! & 0x0f);
  if (entry === 0) return problem(ptr + O.TS_OFLW_FLG);
  const p = d[at + O.POINTER]!;
  // RFC 791 p. 22: "The smallest legal value is 5."
  if (p < TS_HDR_LEN + 1) return problem(ptr + O.POINTER);
  // Full: the overflow counter is incremented when processed.
  if (p > len) return IPV4_OPTIONS_OK;
  // The pointer must sit at an entry boundary, with room for the entry.
  if ((p - (TS_HDR_LEN + 1)) % entry !== 0) return problem(ptr + O.POINTER);
  if (p + entry > len + 1) return problem(ptr + O.POINTER);
  return IPV4_OPTIONS_OK;
}

/**
 * Validate the options of a checked IPv4 header, as gVisor's
 * `processIPOptions` does before it touches them: lengths, duplicates
 * (RFC 791 allows each option once), Record Route and Timestamp pointers,
 * Timestamp flags, and the Router Alert length and value (RFC 2113).
 * Unknown options are skipped.
 *
 * @returns {@link IPV4_OPTIONS_OK} or the Parameter Problem pointer,
 *   counted from the start of the IP header
 */
export function validateIpv4Options(ip: Ipv4Packet): Ipv4OptionsResult {
  if (ip.headerLen() <= IPV4_MIN_HEADER_LEN) return IPV4_OPTIONS_OK;
  seen.fill(0);
  it.reset(ip);
  const d = it.data;
  while (it.next()) {
    const t = it.type;
    if (t === Ipv4OptionType.NOP) continue;
    const ptr = it.pointer();
    if (seen[t] !== 0) return problem(ptr);
    seen[t] = 1;
    let r = IPV4_OPTIONS_OK;
    if (t === Ipv4OptionType.RECORD_ROUTE) {
      r = checkRecordRoute(d, it.offset, it.length, ptr);
    } else if (t === Ipv4OptionType.TIMESTAMP) {
      r = checkTimestamp(d, it.offset, it.length, ptr);
    } else if (t === Ipv4OptionType.ROUTER_ALERT) {
      if (it.length !== RA_LEN) return problem(ptr + O.LENGTH);
      // RFC 2113 §2.1: value 0 is "Router shall examine packet"; the rest is reserved.
      if (((d[it.offset + O.RA_VALUE]! << 8) | d[it.offset + O.RA_VALUE + 1]!) !== 0) {
        return problem(ptr + O.RA_VALUE);
      }
    }
    if (!r.ok) return r;
  }
  return it.errorPointer >= 0 ? problem(it.errorPointer) : IPV4_OPTIONS_OK;
}

const echoKeep = new Uint8Array(40);

/**
 * Keep in place only the options an echo reply takes from its request
 * (RFC 1122 §3.2.2.6; Linux's ip_options_echo): Record Route and
 * Timestamp, moved to the front of the option area in their order and
 * padded with End of Option List. Every other option is left out.
 *
 * @returns the header length the kept options need (a multiple of 4)
 */
export function keepEchoOptions(ip: Ipv4Packet): number {
  const hl = ip.headerLen();
  if (hl <= IPV4_MIN_HEADER_LEN) return hl;
  const d = ip.buf.data;
  let n = 0;
  it.reset(ip);
  while (it.next()) {
    if (it.type !== Ipv4OptionType.RECORD_ROUTE && it.type !== Ipv4OptionType.TIMESTAMP) continue;
    echoKeep.set(d.subarray(it.offset, it.offset + it.length), n);
    n += it.length;
  }
  const base = ip.off + IPV4_MIN_HEADER_LEN;
  d.set(echoKeep.subarray(0, n), base);
  const kept = IPV4_MIN_HEADER_LEN + ((n + 3) & ~3);
  d.fill(Ipv4OptionType.END, base + n, ip.off + kept);
  return kept;
}

/**
 * Offset in `buf.data` of the first option of `type`, or −1 when absent
 * or the options are malformed.
 */
export function findIpv4Option(ip: Ipv4Packet, type: number): number {
  it.reset(ip);
  while (it.next()) if (it.type === type) return it.offset;
  return -1;
}

function writeU32(d: Uint8Array, at: number, v: number): void {
  d[at] = v >>> 24;
  d[at + 1] = (v >>> 16) & 255;
  d[at + 2] = (v >>> 8) & 255;
  d[at + 3] = v & 255;
}

function readU32(d: Uint8Array, at: number): number {
  return ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;
}

/**
 * Validate the options of a packet this node forwards (or sends) and fill
 * in Record Route and Timestamp entries in place (RFC 791 §3.1; RFC 1812
 * §5.2.4.4): record `outAddress` (the address of the outgoing interface)
 * and `nowMsSinceMidnightUtc` where there is room; when the Timestamp data
 * area is full, increment its overflow counter instead, and fail with the
 * pointer at the flags byte when the counter itself overflows (not when
 * `countOverflow` is false: the second entry of an echo reply, which
 * Linux's ip_options_echo makes only where there is room). When any byte
 * changed, the header checksum is recomputed.
 *
 * @returns {@link IPV4_OPTIONS_OK} or the Parameter Problem pointer
 */
export function processForwardingOptions(
  ip: Ipv4Packet,
  outAddress: number,
  nowMsSinceMidnightUtc: number,
  countOverflow = true,
): Ipv4OptionsResult {
  if (ip.headerLen() <= IPV4_MIN_HEADER_LEN) return IPV4_OPTIONS_OK;
  const v = validateIpv4Options(ip);
  if (!v.ok) return v;
  let changed = false;
  it.reset(ip);
  const d = it.data;
  while (it.next()) {
    const at = it.offset;
    const len = it.length;
    if (it.type === Ipv4OptionType.RECORD_ROUTE) {
      const p = d[at + O.POINTER]!;
      if (p > len) continue; // Full: forwarded without recording.
      writeU32(d, at + p - 1, outAddress);
      d[at + O.POINTER] = p + 4;
      changed = true;
    } else if (it.type === Ipv4OptionType.TIMESTAMP) {
      const p = d[at + O.POINTER]!;
      const of = d[at + O.TS_OFLW_FLG]!;
      const flags = of & 0x0f;
      if (p > len) {
        // Full. A prespecified list has nothing left to match (as gVisor).
        if (flags === Ipv4TimestampFlag.PRESPECIFIED || !countOverflow) continue;
        const overflow = of >> 4;
        // RFC 791 p. 22: the overflow count itself overflowing is an error.
        if (overflow === 15) return problem(it.pointer() + O.TS_OFLW_FLG);
        d[at + O.TS_OFLW_FLG] = ((overflow + 1) << 4) | flags;
        changed = true;
        continue;
      }
      const ts = nowMsSinceMidnightUtc >>> 0;
      if (flags === Ipv4TimestampFlag.TIMESTAMP_ONLY) {
        writeU32(d, at + p - 1, ts);
        d[at + O.POINTER] = p + 4;
        changed = true;
      } else if (flags === Ipv4TimestampFlag.WITH_ADDRESS) {
        writeU32(d, at + p - 1, outAddress);
        writeU32(d, at + p + 3, ts);
        d[at + O.POINTER] = p + 8;
        changed = true;
      } else if (readU32(d, at + p - 1) === outAddress >>> 0) {
        writeU32(d, at + p + 3, ts);
        d[at + O.POINTER] = p + 8;
        changed = true;
      }
    }
  }
  if (changed) ip.fillChecksum();
  return IPV4_OPTIONS_OK;
}

function copySelected(
  ip: Ipv4Packet,
  keep: (type: number) => boolean,
  dst: Uint8Array | null,
  dstOff: number,
): number {
  let n = 0;
  it.reset(ip);
  while (it.next()) {
    if (it.type === Ipv4OptionType.NOP || !keep(it.type)) continue;
    if (dst !== null) dst.set(it.data.subarray(it.offset, it.offset + it.length), dstOff + n);
    n += it.length;
  }
  if (it.errorPointer >= 0) return -1;
  const padded = (n + 3) & ~3;
  if (dst !== null) dst.fill(0, dstOff + n, dstOff + padded);
  return padded;
}

const isCopied = (t: number): boolean => (t & IPV4_OPTION_COPIED) !== 0;
const isEchoed = (t: number): boolean =>
  t === Ipv4OptionType.RECORD_ROUTE || t === Ipv4OptionType.TIMESTAMP;

/**
 * Write the options that go into every fragment after the first: those
 * whose type has the copied flag (RFC 791 §3.2, "Fragmentation"), in
 * order, padded with End of Option List to a multiple of 4.
 *
 * @param dst where to write; pass null to only measure
 * @returns bytes written (a multiple of 4), or −1 when the options are malformed
 */
export function copiedOptions(ip: Ipv4Packet, dst: Uint8Array | null, dstOff = 0): number {
  return copySelected(ip, isCopied, dst, dstOff);
}

/**
 * Write the options an Echo Reply carries: the request's Record Route and
 * Timestamp options (RFC 1122 §3.2.2.6: "this option (these options)
 * SHOULD be updated to include the current host and included in the IP
 * header of the Echo Reply message, without truncation"), padded to a
 * multiple of 4. Other options are dropped, as in gVisor's
 * `optionUsageEcho`. The caller then runs {@link processForwardingOptions}
 * on the reply as it leaves, which records this host.
 *
 * @param dst where to write; pass null to only measure
 * @returns bytes written (a multiple of 4), or −1 when the options are malformed
 */
export function echoReplyOptions(request: Ipv4Packet, dst: Uint8Array | null, dstOff = 0): number {
  return copySelected(request, isEchoed, dst, dstOff);
}
