/**
 * DNS messages (RFC 1035 §4) for a forwarder that passes answers through:
 * a reader that walks the header, questions and resource records in place
 * (names decompressed with bound and loop checks, every count checked
 * against the bytes), the EDNS(0) OPT record (RFC 6891), and the few edits
 * a forwarder makes on the bytes themselves (the ID, the TTLs of a cached
 * answer, the question's letter case); and a writer for queries and
 * simple answers with name compression.
 *
 * ```
 *  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
 * |                      ID                       |
 * |QR|  Opcode   |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
 * |                    QDCOUNT                    |
 * |                    ANCOUNT                    |
 * |                    NSCOUNT                    |
 * |                    ARCOUNT                    |
 * ```
 *
 * @module
 */

export const DNS_PORT = 53;
export const DNS_HEADER_LEN = 12;
/** RFC 1035 §2.3.4: a name is at most 255 bytes on the wire, a label 63. */
export const DNS_MAX_NAME = 255;
export const DNS_MAX_LABEL = 63;

/** Record types a forwarder and its cache look at (RFC 1035, 3596, 2782, 4034, 6891, 9460). */
export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  SVCB: 64,
  HTTPS: 65,
  ANY: 255,
} as const;

export const DnsClass = { IN: 1, CH: 3, ANY: 255 } as const;

/** RCODEs (RFC 1035 §4.1.1, RFC 6895). */
export const DnsRcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** Header flag bits (in the 16-bit flags word). */
export const DnsFlag = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;

/** The EDNS DO bit (RFC 3225) in the OPT record's TTL field. */
export const EDNS_DO = 0x8000;

/** Why a message did not parse. */
export type DnsParseError =
  | "truncated"
  | "bad-label-type"
  | "label-too-long"
  | "name-too-long"
  | "bad-pointer"
  | "pointer-loop"
  | "count-overrun"
  | "two-opt";

/** A question: its name (lower-case-insensitive text, dotted, no trailing dot; "" for the root). */
export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
  /** Where the name starts and the question ends in the message. */
  offset: number;
  end: number;
}

/** A resource record, its data left in place. */
export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** Offset of the 32-bit TTL field (a cache rewrites it). */
  ttlOffset: number;
  rdataOffset: number;
  rdataLength: number;
}

/** The OPT pseudo-record's fields (RFC 6891 §6.1.3). */
export interface DnsEdns {
  udpSize: number;
  extendedRcode: number;
  version: number;
  /** The DO bit (RFC 3225). */
  dnssecOk: boolean;
  /** Offset of the OPT record's class field (the UDP size), for a forwarder that rewrites it. */
  udpSizeOffset: number;
}

/** A parsed message. */
export interface DnsMessage {
  id: number;
  flags: number;
  /** The 4-bit RCODE of the header (with EDNS, `edns.extendedRcode` holds the upper bits). */
  rcode: number;
  opcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authority: DnsRecord[];
  /** Additional records other than OPT. */
  additional: DnsRecord[];
  edns: DnsEdns | null;
  /** Bytes the message took (the rest of the datagram is ignored). */
  length: number;
}

/** Every label takes at least one byte: a count over the bytes left is a lie, checked before looping. */
const MIN_RR = 11;
const MIN_Q = 5;

/**
 * Walk the name at message offset `off` of the message `b[base, base +
 * len)` and return where it ends in place (after the first pointer, if
 * any), or why it is malformed. Pointers must point backwards, before the
 * name's own start (RFC 1035 §4.1.4 "a prior occurrence"), which also rules
 * out loops; the expanded name must fit in 255 bytes. When `out` is given,
 * the name's labels, expanded (pointers followed) and with the root label,
 * are copied to `out[0..]`, ASCII letters folded to lower case when `fold`
 * (RFC 4343: the form two names are compared in). No allocation.
 */
export function walkDnsName(
  b: Uint8Array,
  base: number,
  len: number,
  off: number,
  out: Uint8Array | null,
  fold: boolean,
): number | DnsParseError {
  let wire = 1; // the root label
  let i = off;
  let end = -1;
  let limit = off; // a pointer must go below this
  let jumps = 0;
  let o = 0;
  for (;;) {
    if (i >= len) return "truncated";
    const n = b[base + i]!;
    if (n === 0) {
      if (end < 0) end = i + 1;
      break;
    }
    const kind = n & 0xc0;
    if (kind === 0xc0) {
      if (i + 1 >= len) return "truncated";
      const ptr = ((n & 0x3f) << 8) | b[base + i + 1]!;
      if (end < 0) end = i + 2;
      // At or before itself (into labels just read): a loop; after itself: forward.
      if (ptr >= limit) return ptr > i ? "bad-pointer" : "pointer-loop";
      if (++jumps > 127) return "pointer-loop";
      limit = ptr;
      i = ptr;
      continue;
    }
    if (kind !== 0) return "bad-label-type"; // 0x40 / 0x80: extended and reserved label types
    if (n > DNS_MAX_LABEL) return "label-too-long";
    if (i + 1 + n > len) return "truncated";
    wire += 1 + n;
    if (wire > DNS_MAX_NAME) return "name-too-long";
    if (out !== null) {
      out[o++] = n;
      for (let k = base + i + 1, e = k + n; k < e; k++) {
        const c = b[k]!;
        out[o++] = fold && c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
      }
    }
    i += 1 + n;
  }
  if (out !== null) out[o] = 0;
  return end;
}

/** The expanded labels of the last name {@link readDnsName} read. */
const NAME_SCRATCH = new Uint8Array(DNS_MAX_NAME);

/**
 * Read the name at `off`: its text and where the name ends in place (after
 * the first pointer, if any), with the checks of {@link walkDnsName}.
 */
export function readDnsName(
  b: Uint8Array,
  off: number,
): { name: string; end: number } | DnsParseError {
  const end = walkDnsName(b, 0, b.length, off, NAME_SCRATCH, false);
  if (typeof end === "string") return end;
  return { name: suffixText(NAME_SCRATCH, 0), end };
}

/** A label as text: printable ASCII as is, "." and "\\" escaped, other bytes as \DDD (RFC 4343). */
function labelText(b: Uint8Array, off: number, len: number): string {
  let s = "";
  for (let k = 0; k < len; k++) {
    const c = b[off + k]!;
    if (c === 0x2e || c === 0x5c) s += "\\" + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += "\\" + c.toString().padStart(3, "0");
  }
  return s;
}

/** The cache key form of a name: ASCII letters folded to lower case (RFC 4343). */
export function dnsNameKey(name: string): string {
  // Most names come lower case: no copy then.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return name.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return name;
}

/** Parse a DNS message (a UDP payload, or a TCP message without its length prefix). */
export function parseDns(b: Uint8Array): DnsMessage | DnsParseError {
  if (b.length < DNS_HEADER_LEN) return "truncated";
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const flags = v.getUint16(2);
  const qd = v.getUint16(4), an = v.getUint16(6), ns = v.getUint16(8), ar = v.getUint16(10);
  const left = b.length - DNS_HEADER_LEN;
  if (qd * MIN_Q + (an + ns + ar) * MIN_RR > left) return "count-overrun";
  let off = DNS_HEADER_LEN;
  const questions: DnsQuestion[] = [];
  for (let k = 0; k < qd; k++) {
    const n = readDnsName(b, off);
    if (typeof n === "string") return n;
    if (n.end + 4 > b.length) return "truncated";
    questions.push({
      name: n.name,
      type: v.getUint16(n.end),
      class: v.getUint16(n.end + 2),
      offset: off,
      end: n.end + 4,
    });
    off = n.end + 4;
  }
  const section = (count: number): DnsRecord[] | DnsParseError => {
    const out: DnsRecord[] = [];
    for (let k = 0; k < count; k++) {
      const n = readDnsName(b, off);
      if (typeof n === "string") return n;
      if (n.end + 10 > b.length) return "truncated";
      const rdlen = v.getUint16(n.end + 8);
      if (n.end + 10 + rdlen > b.length) return "truncated";
      out.push({
        name: n.name,
        type: v.getUint16(n.end),
        class: v.getUint16(n.end + 2),
        ttl: v.getUint32(n.end + 4),
        ttlOffset: n.end + 4,
        rdataOffset: n.end + 10,
        rdataLength: rdlen,
      });
      off = n.end + 10 + rdlen;
    }
    return out;
  };
  const answers = section(an);
  if (typeof answers === "string") return answers;
  const authority = section(ns);
  if (typeof authority === "string") return authority;
  const extra = section(ar);
  if (typeof extra === "string") return extra;
  let edns: DnsEdns | null = null;
  const additional: DnsRecord[] = [];
  for (const r of extra) {
    if (r.type !== DnsType.OPT) {
      additional.push(r);
      continue;
    }
    // RFC 6891 §6.1.1: one OPT, owned by the root.
    if (edns !== null) return "two-opt";
    edns = {
      udpSize: r.class,
      extendedRcode: r.ttl >>> 24,
      version: (r.ttl >>> 16) & 0xff,
      dnssecOk: (r.ttl & EDNS_DO) !== 0,
      udpSizeOffset: r.ttlOffset - 2,
    };
  }
  return {
    id: v.getUint16(0),
    flags,
    rcode: flags & 0xf,
    opcode: (flags >>> 11) & 0xf,
    questions,
    answers,
    authority,
    additional,
    edns,
    length: off,
  };
}

/**
 * What {@link readDnsQuery} found in a message: the header, the first
 * question with its name as compared (expanded, lower case) and the OPT
 * record. One view is reused for every message; nothing in it is
 * allocated per message.
 */
export class DnsQueryView {
  id = 0;
  flags = 0;
  opcode = 0;
  /** QDCOUNT. */
  questions = 0;
  /** The first question (when `questions` > 0): where its name starts and it ends, type, class. */
  qOffset = -1;
  qEnd = -1;
  qType = 0;
  qClass = 0;
  /** The first question's name: labels expanded, ASCII letters lower case, the root label last. */
  readonly name: Uint8Array = new Uint8Array(DNS_MAX_NAME);
  /** Bytes of `name` (its root label included). */
  nameLength = 0;
  /** Whether the message has an OPT record (RFC 6891), and its fields. */
  edns = false;
  udpSize = 0;
  dnssecOk = false;
  /** Offset of the OPT record's class field (the UDP size), -1 without one. */
  udpSizeOffset = -1;
  /** Bytes the message took (the rest of the datagram is ignored). */
  length = 0;
}

/**
 * Read the message `b[base, base + len)` into `q` in place: the same checks
 * as {@link parseDns}, in the same order, with the same answer (a message
 * parseDns rejects is rejected here with the same error), but no
 * allocation: for a forwarder's every query. Offsets in `q` are relative
 * to `base`, as parseDns's are to its message.
 *
 * @returns null when the message is well formed, else why not
 */
export function readDnsQuery(
  b: Uint8Array,
  base: number,
  len: number,
  q: DnsQueryView,
): DnsParseError | null {
  if (len < DNS_HEADER_LEN) return "truncated";
  const u16 = (at: number) => (b[base + at]! << 8) | b[base + at + 1]!;
  const qd = u16(4), an = u16(6), ns = u16(8), ar = u16(10);
  if (qd * MIN_Q + (an + ns + ar) * MIN_RR > len - DNS_HEADER_LEN) return "count-overrun";
  let off = DNS_HEADER_LEN;
  q.qOffset = q.qEnd = -1;
  for (let k = 0; k < qd; k++) {
    const end = walkDnsName(b, base, len, off, k === 0 ? q.name : null, true);
    if (typeof end === "string") return end;
    if (end + 4 > len) return "truncated";
    if (k === 0) {
      q.qOffset = off;
      q.qEnd = end + 4;
      q.qType = u16(end);
      q.qClass = u16(end + 2);
    }
    off = end + 4;
  }
  let opts = 0;
  q.edns = false;
  q.udpSize = 0;
  q.dnssecOk = false;
  q.udpSizeOffset = -1;
  const records = an + ns + ar;
  for (let k = 0; k < records; k++) {
    const end = walkDnsName(b, base, len, off, null, false);
    if (typeof end === "string") return end;
    if (end + 10 > len) return "truncated";
    const rdlen = u16(end + 8);
    if (end + 10 + rdlen > len) return "truncated";
    if (k >= an + ns && u16(end) === DnsType.OPT && opts++ === 0) {
      q.edns = true;
      q.udpSize = u16(end + 2);
      q.dnssecOk = (u16(end + 6) & EDNS_DO) !== 0;
      q.udpSizeOffset = end + 2;
    }
    off = end + 10 + rdlen;
  }
  // RFC 6891 §6.1.1: one OPT (parseDns says so once every record has been read).
  if (opts > 1) return "two-opt";
  q.id = u16(0);
  q.flags = u16(2);
  q.opcode = (q.flags >>> 11) & 0xf;
  q.questions = qd;
  q.nameLength = 0;
  if (qd > 0) {
    while (q.name[q.nameLength] !== 0) q.nameLength += 1 + q.name[q.nameLength]!;
    q.nameLength++;
  }
  q.length = off;
  return null;
}

/** Set the message ID in place. */
export function setDnsId(b: Uint8Array, id: number): void {
  b[0] = (id >>> 8) & 0xff;
  b[1] = id & 0xff;
}

/**
 * Rewrite every TTL of `m`'s records (not OPT's) to `ttl(original)`, in
 * place: a cache ages an answer it stored by the time it held it.
 */
export function rewriteDnsTtls(b: Uint8Array, m: DnsMessage, ttl: (t: number) => number): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (const r of [...m.answers, ...m.authority, ...m.additional]) {
    v.setUint32(r.ttlOffset, ttl(r.ttl) >>> 0);
  }
}

/**
 * Encode a name (dotted text, "\\." and "\\DDD" escapes) as wire labels.
 *
 * @throws RangeError for an empty label, a label over 63 or a name over 255 bytes, a final lone "\\"
 */
export function encodeDnsName(name: string): Uint8Array {
  const out: number[] = [];
  // A final "." is the root unless escaped (preceded by an odd number of "\\").
  const text = /(?:^|[^\\])(?:\\\\)*\.$/.test(name) ? name.slice(0, -1) : name;
  if (text !== "") {
    let label: number[] = [];
    const flush = () => {
      if (label.length === 0) throw new RangeError(`empty label in "${name}"`);
      if (label.length > DNS_MAX_LABEL) throw new RangeError(`label longer than 63 in "${name}"`);
      out.push(label.length, ...label);
      label = [];
    };
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x5c) {
        const d = /^\d{3}/.exec(text.slice(i + 1));
        if (d !== null) {
          label.push(Number(d[0]) & 0xff);
          i += 3;
        } else if (i + 1 < text.length) {
          label.push(text.charCodeAt(i + 1));
          i++;
        } else throw new RangeError(`"\\" at the end of "${name}"`);
      } else if (c === 0x2e) flush();
      else label.push(c & 0xff);
    }
    flush();
  }
  out.push(0);
  if (out.length > DNS_MAX_NAME) throw new RangeError(`name longer than 255 bytes: "${name}"`);
  return new Uint8Array(out);
}

/**
 * Builds one message: header, then questions and records in order, names
 * compressed against those written before (RFC 1035 §4.1.4).
 *
 * @example
 * ```ts
 * import { DnsWriter, DnsType, parseDns } from "./dns.ts";
 * const w = new DnsWriter(new Uint8Array(512));
 * w.header({ id: 7, flags: 0x0100, qd: 1 }).question("example.com", DnsType.A);
 * const m = parseDns(w.bytes());
 * console.assert(typeof m !== "string" && m.questions[0]!.name === "example.com");
 * ```
 */
export class DnsWriter {
  #n = 0;
  readonly #v: DataView;
  /** Lower-case name suffix → where it was written. */
  readonly #names = new Map<string, number>();

  constructor(readonly buf: Uint8Array) {
    this.#v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get length(): number {
    return this.#n;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.#n);
  }

  /** The 12-byte header; counts are the caller's to keep right. */
  header(
    h: { id: number; flags: number; qd?: number; an?: number; ns?: number; ar?: number },
  ): this {
    this.#n = 0;
    this.#names.clear();
    this.#room(DNS_HEADER_LEN);
    const v = this.#v;
    v.setUint16(0, h.id);
    v.setUint16(2, h.flags);
    v.setUint16(4, h.qd ?? 0);
    v.setUint16(6, h.an ?? 0);
    v.setUint16(8, h.ns ?? 0);
    v.setUint16(10, h.ar ?? 0);
    this.#n = DNS_HEADER_LEN;
    return this;
  }

  /** A name, compressed against earlier ones. */
  name(name: string): this {
    const wire = encodeDnsName(name);
    // Walk the labels: the first suffix written before becomes a pointer.
    let i = 0;
    while (wire[i] !== 0) {
      const key = dnsNameKey(suffixText(wire, i));
      const at = this.#names.get(key);
      if (at !== undefined) {
        this.#room(i + 2);
        this.buf.set(wire.subarray(0, i), this.#n);
        this.#remember(wire, i, this.#n);
        this.#n += i;
        this.#v.setUint16(this.#n, 0xc000 | at);
        this.#n += 2;
        return this;
      }
      i += 1 + wire[i]!;
    }
    this.#room(wire.length);
    this.buf.set(wire, this.#n);
    this.#remember(wire, wire.length - 1, this.#n);
    this.#n += wire.length;
    return this;
  }

  /** Remember each suffix of `wire` that starts before `upTo`, written at `base`. */
  #remember(wire: Uint8Array, upTo: number, base: number): void {
    let i = 0;
    while (i < upTo && wire[i] !== 0) {
      if (base + i < 0x4000) {
        const key = dnsNameKey(suffixText(wire, i));
        if (!this.#names.has(key)) this.#names.set(key, base + i);
      }
      i += 1 + wire[i]!;
    }
  }

  question(name: string, type: number, klass: number = DnsClass.IN): this {
    this.name(name);
    this.#room(4);
    this.#v.setUint16(this.#n, type);
    this.#v.setUint16(this.#n + 2, klass);
    this.#n += 4;
    return this;
  }

  /** A record with opaque data. */
  record(
    name: string,
    type: number,
    ttl: number,
    rdata: Uint8Array,
    klass: number = DnsClass.IN,
  ): this {
    if (rdata.length > 0xffff) throw new RangeError("rdata longer than 65535 bytes");
    this.name(name);
    this.#room(10 + rdata.length);
    const v = this.#v;
    v.setUint16(this.#n, type);
    v.setUint16(this.#n + 2, klass);
    v.setUint32(this.#n + 4, ttl >>> 0);
    v.setUint16(this.#n + 8, rdata.length);
    this.buf.set(rdata, this.#n + 10);
    this.#n += 10 + rdata.length;
    return this;
  }

  /** A record whose data is one name (CNAME, NS, PTR), compressed. */
  nameRecord(name: string, type: number, ttl: number, target: string): this {
    this.name(name);
    this.#room(10);
    const v = this.#v;
    v.setUint16(this.#n, type);
    v.setUint16(this.#n + 2, DnsClass.IN);
    v.setUint32(this.#n + 4, ttl >>> 0);
    const lenAt = this.#n + 8;
    this.#n += 10;
    const start = this.#n;
    this.name(target);
    v.setUint16(lenAt, this.#n - start);
    return this;
  }

  /** The OPT pseudo-record (RFC 6891 §6.1.2): UDP size, DO bit, no options. */
  opt(udpSize: number, dnssecOk = false): this {
    this.#room(11);
    this.buf[this.#n] = 0; // root
    const v = this.#v;
    v.setUint16(this.#n + 1, DnsType.OPT);
    v.setUint16(this.#n + 3, udpSize);
    v.setUint32(this.#n + 5, dnssecOk ? EDNS_DO : 0);
    v.setUint16(this.#n + 9, 0);
    this.#n += 11;
    return this;
  }

  #room(n: number): void {
    if (this.#n + n > this.buf.length) throw new RangeError("DNS message does not fit");
  }
}

/** The dotted text of the wire name starting at label `i` of an uncompressed `wire`. */
function suffixText(wire: Uint8Array, i: number): string {
  const parts: string[] = [];
  while (wire[i] !== 0) {
    parts.push(labelText(wire, i + 1, wire[i]!));
    i += 1 + wire[i]!;
  }
  return parts.join(".");
}
