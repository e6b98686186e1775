/**
 * DHCPv4 (RFC 2131) messages and options (RFC 2132): a view of the fixed
 * BOOTP header, an option reader that handles option overload (option 52:
 * options in `file`/`sname`) and split options (RFC 3396: the same code
 * twice is one option, concatenated), and a writer.
 *
 * ```
 *  0      7 8     15 16    23 24    31
 * +--------+--------+--------+--------+
 * |   op   | htype  |  hlen  |  hops  |
 * +--------+--------+--------+--------+
 * |                xid                |
 * +-----------------+-----------------+
 * |      secs       |      flags      |
 * +-----------------+-----------------+
 * | ciaddr | yiaddr | siaddr | giaddr |   (4 bytes each)
 * | chaddr (16) | sname (64) | file (128)
 * | magic cookie 99.130.83.99 | options ... 255
 * ```
 *
 * @module
 */

/** Bytes of the fixed header before the magic cookie. */
export const DHCPV4_FIXED_LEN = 236;
/** Offset of the first option (after the cookie). */
export const DHCPV4_OPTIONS_OFFSET = 240;
/** RFC 1542 §3.4 / RFC 2131 §2: BOOTP messages are padded to at least 300 bytes. */
export const DHCPV4_MIN_LEN = 300;
/** RFC 2131 §3: the magic cookie 99.130.83.99. */
export const DHCPV4_MAGIC = 0x63825363;
export const DHCPV4_SERVER_PORT = 67;
export const DHCPV4_CLIENT_PORT = 68;
/** RFC 2131 §2: the BROADCAST bit of `flags`. */
export const DHCPV4_FLAG_BROADCAST = 0x8000;

/** `op`. */
export const BootpOp = { REQUEST: 1, REPLY: 2 } as const;

/** Option 53 values (RFC 2132 §9.6). */
export const Dhcpv4MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

/** Names of option 53 values, for logs and `show`. */
export const DHCPV4_MESSAGE_NAMES: Readonly<Record<number, string>> = {
  1: "DISCOVER",
  2: "OFFER",
  3: "REQUEST",
  4: "DECLINE",
  5: "ACK",
  6: "NAK",
  7: "RELEASE",
  8: "INFORM",
};

/** Option codes (RFC 2132 unless noted). */
export const Dhcpv4Option = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  BROADCAST_ADDRESS: 28,
  NTP_SERVERS: 42,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  /** RFC 4039. */
  RAPID_COMMIT: 80,
  /** RFC 4702. */
  CLIENT_FQDN: 81,
  /** RFC 3046. */
  RELAY_AGENT_INFO: 82,
  /** RFC 3397. */
  DOMAIN_SEARCH: 119,
  /** RFC 3442. */
  CLASSLESS_ROUTES: 121,
  END: 255,
} as const;

/** Why a message could not be read. */
export type Dhcpv4ParseError =
  | "short"
  | "badCookie"
  | "optionTruncated"
  | "badOverload";

/**
 * The options of one message: code → value (a view into the message, or
 * a concatenation for an option split over several instances).
 */
export type Dhcpv4Options = Map<number, Uint8Array>;

/**
 * A view of a DHCPv4 message at `off` of `data`, `len` bytes long.
 *
 * @example
 * ```ts
 * import { Dhcpv4Message, Dhcpv4MessageType, Dhcpv4Option, writeDhcpv4 } from "./dhcpv4.ts";
 * const b = new Uint8Array(400);
 * const n = writeDhcpv4(b, 0, {
 *   op: 1, xid: 0x1234, chaddr: new Uint8Array([2, 0, 0, 0, 0, 1]),
 * }, [[Dhcpv4Option.MESSAGE_TYPE, new Uint8Array([Dhcpv4MessageType.DISCOVER])]]);
 * const m = new Dhcpv4Message(b, 0, n);
 * const opts = m.options();
 * console.assert(typeof opts !== "string" && opts.get(53)![0] === 1 && m.xid() === 0x1234);
 * ```
 */
export class Dhcpv4Message {
  readonly #v: DataView;
  constructor(readonly data: Uint8Array, readonly off: number, readonly len: number) {
    this.#v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  /** True when the fixed header and the cookie fit. */
  check(): boolean {
    return this.len >= DHCPV4_OPTIONS_OFFSET && this.off + this.len <= this.data.length;
  }
  op(): number {
    return this.data[this.off]!;
  }
  htype(): number {
    return this.data[this.off + 1]!;
  }
  hlen(): number {
    return this.data[this.off + 2]!;
  }
  hops(): number {
    return this.data[this.off + 3]!;
  }
  xid(): number {
    return this.#v.getUint32(this.off + 4);
  }
  secs(): number {
    return this.#v.getUint16(this.off + 8);
  }
  flags(): number {
    return this.#v.getUint16(this.off + 10);
  }
  ciaddr(): number {
    return this.#v.getUint32(this.off + 12);
  }
  yiaddr(): number {
    return this.#v.getUint32(this.off + 16);
  }
  siaddr(): number {
    return this.#v.getUint32(this.off + 20);
  }
  giaddr(): number {
    return this.#v.getUint32(this.off + 24);
  }
  /** The 16-byte chaddr field (a MAC is its first `hlen` bytes). */
  chaddr(): Uint8Array {
    return this.data.subarray(this.off + 28, this.off + 44);
  }
  cookie(): number {
    return this.#v.getUint32(this.off + DHCPV4_FIXED_LEN);
  }

  /**
   * Every option, with overload (option 52) and split options (RFC 3396)
   * resolved; a string naming the problem when the options are malformed.
   */
  options(): Dhcpv4Options | Dhcpv4ParseError {
    if (!this.check()) return "short";
    if (this.cookie() !== DHCPV4_MAGIC) return "badCookie";
    const out: Dhcpv4Options = new Map();
    const o = this.off;
    const r = readOptions(this.data, o + DHCPV4_OPTIONS_OFFSET, o + this.len, out);
    if (r !== null) return r;
    const ov = out.get(Dhcpv4Option.OVERLOAD);
    if (ov !== undefined) {
      if (ov.length !== 1 || ov[0]! < 1 || ov[0]! > 3) return "badOverload";
      out.delete(Dhcpv4Option.OVERLOAD);
      // RFC 2131 §4.1: options, then `file`, then `sname`.
      if ((ov[0]! & 1) !== 0) {
        const e = readOptions(this.data, o + 108, o + 236, out);
        if (e !== null) return e;
      }
      if ((ov[0]! & 2) !== 0) {
        const e = readOptions(this.data, o + 44, o + 108, out);
        if (e !== null) return e;
      }
      if (out.has(Dhcpv4Option.OVERLOAD)) return "badOverload";
    }
    return out;
  }
}

/** Read options from `data[from, end)` into `out`; null when well-formed. */
function readOptions(
  data: Uint8Array,
  from: number,
  end: number,
  out: Dhcpv4Options,
): Dhcpv4ParseError | null {
  let i = from;
  while (i < end) {
    const code = data[i]!;
    if (code === Dhcpv4Option.PAD) {
      i++;
      continue;
    }
    if (code === Dhcpv4Option.END) return null;
    if (i + 2 > end) return "optionTruncated";
    const n = data[i + 1]!;
    if (i + 2 + n > end) return "optionTruncated";
    const v = data.subarray(i + 2, i + 2 + n);
    const prev = out.get(code);
    if (prev === undefined) out.set(code, v);
    else {
      // RFC 3396 §7: the instances of one option are concatenated.
      const c = new Uint8Array(prev.length + n);
      c.set(prev);
      c.set(v, prev.length);
      out.set(code, c);
    }
    i += 2 + n;
  }
  // No END: tolerated (the buffer ends where the options do), as ISC and dnsmasq do.
  return null;
}

/** The fixed fields of a message to write (absent ones are 0). */
export interface Dhcpv4Header {
  op: number;
  xid: number;
  htype?: number;
  hlen?: number;
  hops?: number;
  secs?: number;
  flags?: number;
  ciaddr?: number;
  yiaddr?: number;
  siaddr?: number;
  giaddr?: number;
  /** Up to 16 bytes (a MAC for Ethernet). */
  chaddr: Uint8Array;
}

/** One option to write: code and value (split into 255-byte instances when longer, RFC 3396). */
export type Dhcpv4OptionEntry = readonly [number, Uint8Array];

/** Bytes {@link writeDhcpv4} writes for `options` (before the 300-byte padding). */
export function dhcpv4Length(options: readonly Dhcpv4OptionEntry[]): number {
  let n = DHCPV4_OPTIONS_OFFSET + 1;
  for (const [, v] of options) n += v.length + 2 * Math.max(1, Math.ceil(v.length / 255));
  return n;
}

/**
 * Write a message at `off` of `out`; returns its length (at least 300
 * bytes: the padding is zeros). `out` must hold {@link dhcpv4Length} or
 * 300 bytes, whichever is more.
 */
export function writeDhcpv4(
  out: Uint8Array,
  off: number,
  h: Dhcpv4Header,
  options: readonly Dhcpv4OptionEntry[],
): number {
  const len = Math.max(DHCPV4_MIN_LEN, dhcpv4Length(options));
  out.fill(0, off, off + len);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[off] = h.op;
  out[off + 1] = h.htype ?? 1;
  out[off + 2] = h.hlen ?? 6;
  out[off + 3] = h.hops ?? 0;
  v.setUint32(off + 4, h.xid >>> 0);
  v.setUint16(off + 8, h.secs ?? 0);
  v.setUint16(off + 10, h.flags ?? 0);
  v.setUint32(off + 12, h.ciaddr ?? 0);
  v.setUint32(off + 16, h.yiaddr ?? 0);
  v.setUint32(off + 20, h.siaddr ?? 0);
  v.setUint32(off + 24, h.giaddr ?? 0);
  out.set(h.chaddr.subarray(0, 16), off + 28);
  v.setUint32(off + DHCPV4_FIXED_LEN, DHCPV4_MAGIC);
  let i = off + DHCPV4_OPTIONS_OFFSET;
  for (const [code, val] of options) {
    let p = 0;
    do {
      const n = Math.min(255, val.length - p);
      out[i] = code;
      out[i + 1] = n;
      out.set(val.subarray(p, p + n), i + 2);
      i += 2 + n;
      p += n;
    } while (p < val.length);
  }
  out[i] = Dhcpv4Option.END;
  return len;
}

// ------------------------------------------------------------ option values

/** IPv4 addresses as an option value (4 bytes each). */
export function encodeIpv4List(addrs: readonly number[]): Uint8Array {
  const b = new Uint8Array(4 * addrs.length);
  const v = new DataView(b.buffer);
  addrs.forEach((a, i) => v.setUint32(4 * i, a >>> 0));
  return b;
}

/** An option value of IPv4 addresses; null when its length is not a multiple of 4 (or 0). */
export function decodeIpv4List(b: Uint8Array): number[] | null {
  if (b.length === 0 || b.length % 4 !== 0) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 4) out.push(v.getUint32(i));
  return out;
}

/** A 32-bit unsigned option value (lease time, T1, T2). */
export function encodeU32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

/** A 16-bit unsigned option value (MTU, maximum message size). */
export function encodeU16(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}

/** Read a fixed-size unsigned option value; null when the length is wrong. */
export function decodeUint(b: Uint8Array | undefined, size: 1 | 2 | 4): number | null {
  if (b === undefined || b.length !== size) return null;
  let n = 0;
  for (let i = 0; i < size; i++) n = n * 256 + b[i]!;
  return n;
}

/** One RFC 3442 classless static route. */
export interface ClasslessRoute {
  /** Destination network (host bits ignored). */
  prefix: number;
  prefixLen: number;
  router: number;
}

/**
 * RFC 3442 option 121: each route as its width, the significant octets of
 * the destination, and the router.
 */
export function encodeClasslessRoutes(routes: readonly ClasslessRoute[]): Uint8Array {
  const parts: number[] = [];
  for (const r of routes) {
    parts.push(r.prefixLen);
    const sig = Math.ceil(r.prefixLen / 8);
    for (let k = 0; k < sig; k++) parts.push((r.prefix >>> (24 - 8 * k)) & 0xff);
    for (let k = 0; k < 4; k++) parts.push((r.router >>> (24 - 8 * k)) & 0xff);
  }
  return new Uint8Array(parts);
}

/** Decode option 121; null when malformed (a width above 32 or a short route). */
export function decodeClasslessRoutes(b: Uint8Array): ClasslessRoute[] | null {
  const out: ClasslessRoute[] = [];
  let i = 0;
  while (i < b.length) {
    const w = b[i++]!;
    if (w > 32) return null;
    const sig = Math.ceil(w / 8);
    if (i + sig + 4 > b.length) return null;
    let prefix = 0;
    for (let k = 0; k < 4; k++) prefix = (prefix << 8) | (k < sig ? b[i + k]! : 0);
    i += sig;
    const router = ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
    i += 4;
    const mask = w === 0 ? 0 : (0xffffffff << (32 - w)) >>> 0;
    out.push({ prefix: (prefix & mask) >>> 0, prefixLen: w, router });
  }
  return out;
}

/**
 * RFC 3397 option 119: domain names in RFC 1035 wire form (without
 * compression, which RFC 3397 allows but does not require).
 */
export function encodeDomainSearch(names: readonly string[]): Uint8Array {
  const parts: number[] = [];
  const enc = new TextEncoder();
  for (const name of names) {
    for (const label of name.replace(/\.$/, "").split(".")) {
      const l = enc.encode(label);
      parts.push(l.length, ...l);
    }
    parts.push(0);
  }
  return new Uint8Array(parts);
}

/** Text as an option value (hostname, domain name, message). */
export function encodeText(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** An option value as text (NUL bytes at the end removed, as clients pad). */
export function decodeText(b: Uint8Array): string {
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return new TextDecoder().decode(b.subarray(0, n));
}
