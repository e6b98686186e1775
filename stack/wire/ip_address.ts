/**
 * IPv4 and IPv6 addresses and prefixes: parse, format (IPv6 in the
 * canonical text form of RFC 5952), compare, contain, and classify by scope
 * (RFC 4291 §2.5–2.7, RFC 6724 §3.1).
 *
 * An IPv4 address is an unsigned 32-bit number; an IPv6 address is a
 * 16-byte `Uint8Array`.
 *
 * @module
 */

/** Thrown by the parse functions; `message` says what is wrong. */
export class AddressParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddressParseError";
  }
}

/** An IPv4 prefix: `address` already masked to `prefixLen` bits unless made with `keepHost`. */
export interface Ipv4Cidr {
  readonly family: 4;
  readonly address: number;
  readonly prefixLen: number;
}

/** An IPv6 prefix. */
export interface Ipv6Cidr {
  readonly family: 6;
  readonly address: Uint8Array;
  readonly prefixLen: number;
}

/** Either family's prefix (or an interface address with its prefix length). */
export type IpCidr = Ipv4Cidr | Ipv6Cidr;

/** Either family's address. */
export type IpAddress = { readonly family: 4; readonly address: number } | {
  readonly family: 6;
  readonly address: Uint8Array;
};

// ---------------------------------------------------------------- IPv4

/**
 * Parse dotted-quad text.
 *
 * @param text e.g. `"192.0.2.1"`
 * @returns the address as an unsigned 32-bit number
 * @throws AddressParseError with the reason
 * @example
 * ```ts
 * import { parseIpv4, formatIpv4 } from "./ip_address.ts";
 * console.assert(formatIpv4(parseIpv4("192.0.2.1")) === "192.0.2.1");
 * ```
 */
export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4) {
    throw new AddressParseError(
      `Cannot parse address "${text}": expected 4 dot-separated octets, found ${parts.length}`,
    );
  }
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^[0-9]{1,3}$/.test(p)) {
      throw new AddressParseError(`Cannot parse address "${text}": octet ${i + 1} is not a number`);
    }
    if (p.length > 1 && p[0] === "0") {
      throw new AddressParseError(
        `Cannot parse address "${text}": octet ${i + 1} has a leading zero`,
      );
    }
    const n = Number(p);
    if (n > 255) {
      throw new AddressParseError(`Cannot parse address "${text}": octet ${i + 1} is out of range`);
    }
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** Format an IPv4 address as dotted-quad text. */
export function formatIpv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** The netmask of an IPv4 prefix length, e.g. 24 → 0xffffff00. */
export function ipv4Mask(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** True when `a` lies inside `cidr`. */
export function ipv4CidrContains(cidr: { address: number; prefixLen: number }, a: number): boolean {
  const m = ipv4Mask(cidr.prefixLen);
  return ((a & m) >>> 0) === ((cidr.address & m) >>> 0);
}

/** 127.0.0.0/8 (RFC 1122 §3.2.1.3 (g)). */
export function ipv4IsLoopback(a: number): boolean {
  return (a >>> 24) === 127;
}

/** 224.0.0.0/4. */
export function ipv4IsMulticast(a: number): boolean {
  return (a >>> 28) === 0xe;
}

/** 255.255.255.255, the limited broadcast address. */
export function ipv4IsLimitedBroadcast(a: number): boolean {
  return a >>> 0 === 0xffffffff;
}

/** 0.0.0.0/8 ("this network", RFC 1122 §3.2.1.3 (a)). */
export function ipv4IsThisNetwork(a: number): boolean {
  return (a >>> 24) === 0;
}

/** 169.254.0.0/16 (RFC 3927). */
export function ipv4IsLinkLocal(a: number): boolean {
  return (a >>> 16) === 0xa9fe;
}

/** The directed broadcast address of a prefix (all host bits set). */
export function ipv4Broadcast(cidr: { address: number; prefixLen: number }): number {
  return (cidr.address | ~ipv4Mask(cidr.prefixLen)) >>> 0;
}

// ---------------------------------------------------------------- IPv6

/**
 * Parse IPv6 text (RFC 4291 §2.2), including `::` and an embedded dotted
 * IPv4 tail. A zone (`%eth0`) is not accepted here.
 *
 * @param text e.g. `"2001:db8::1"`
 * @returns 16 bytes
 * @throws AddressParseError with the reason
 * @example
 * ```ts
 * import { parseIpv6, formatIpv6 } from "./ip_address.ts";
 * console.assert(formatIpv6(parseIpv6("2001:0db8:0:0:0:0:0:1")) === "2001:db8::1");
 * ```
 */
export function parseIpv6(text: string): Uint8Array {
  const fail = (why: string): never => {
    throw new AddressParseError(`Cannot parse address "${text}": ${why}`);
  };
  if (text.includes("%")) fail("a zone index is not allowed here");
  const out = new Uint8Array(16);
  const dbl = text.indexOf("::");
  if (dbl !== -1 && text.indexOf("::", dbl + 1) !== -1) fail('"::" appears more than once');
  const head = dbl === -1 ? text : text.slice(0, dbl);
  const tail = dbl === -1 ? "" : text.slice(dbl + 2);
  const words = (s: string, allowV4: boolean): number[] => {
    if (s === "") return [];
    const groups = s.split(":");
    const res: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4 && i === groups.length - 1 && g.includes(".")) {
        let v4 = 0;
        try {
          v4 = parseIpv4(g);
        } catch {
          fail(`embedded IPv4 part "${g}" is invalid`);
        }
        res.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) {
        fail(g === "" ? "empty group" : `group "${g}" is not 1 to 4 hex digits`);
      }
      res.push(parseInt(g, 16));
    }
    return res;
  };
  const h = words(head, dbl === -1);
  const t = words(tail, true);
  if (dbl === -1) {
    if (h.length !== 8) fail(`expected 8 groups, found ${h.length}`);
  } else if (h.length + t.length > 7) {
    fail('too many groups for "::"');
  }
  for (let i = 0; i < h.length; i++) {
    out[2 * i] = h[i]! >> 8;
    out[2 * i + 1] = h[i]! & 255;
  }
  const off = 16 - 2 * t.length;
  for (let i = 0; i < t.length; i++) {
    out[off + 2 * i] = t[i]! >> 8;
    out[off + 2 * i + 1] = t[i]! & 255;
  }
  return out;
}

/**
 * Format an IPv6 address in RFC 5952 canonical form: lower case, no leading
 * zeros, the longest run (first on a tie) of two or more zero groups as
 * `::`, and IPv4-mapped addresses with a dotted tail (§5).
 */
export function formatIpv6(a: Uint8Array, off = 0): string {
  // RFC 5952 §5: ::ffff:a.b.c.d for IPv4-mapped addresses.
  if (
    a[off] === 0 && a[off + 1] === 0 && a[off + 2] === 0 && a[off + 3] === 0 &&
    a[off + 4] === 0 && a[off + 5] === 0 && a[off + 6] === 0 && a[off + 7] === 0 &&
    a[off + 8] === 0 && a[off + 9] === 0 && a[off + 10] === 0xff && a[off + 11] === 0xff
  ) {
    return `::ffff:${a[off + 12]}.${a[off + 13]}.${a[off + 14]}.${a[off + 15]}`;
  }
  // The longest run of two or more zero groups (the first on a tie).
  let bestStart = -1, bestLen = 1, run = 0;
  for (let i = 0; i < 8; i++) {
    if (a[off + 2 * i] === 0 && a[off + 2 * i + 1] === 0) {
      run++;
      if (run > bestLen) {
        bestStart = i - run + 1;
        bestLen = run;
      }
    } else run = 0;
  }
  // Character codes into a scratch array, made into one flat string (a
  // string built by concatenation is a rope that each Map lookup flattens).
  const c = FORMAT_CODES;
  let n = 0;
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      if (i === 0) c[n++] = 0x3a;
      c[n++] = 0x3a;
      i += bestLen - 1;
      continue;
    }
    const g = (a[off + 2 * i]! << 8) | a[off + 2 * i + 1]!;
    if (g >= 0x1000) c[n++] = HEX_CODES[g >> 12]!;
    if (g >= 0x100) c[n++] = HEX_CODES[(g >> 8) & 15]!;
    if (g >= 0x10) c[n++] = HEX_CODES[(g >> 4) & 15]!;
    c[n++] = HEX_CODES[g & 15]!;
    if (i < 7) c[n++] = 0x3a;
  }
  c.length = n;
  const text = String.fromCharCode.apply(null, c);
  c.length = 40;
  return text;
}

/** Character codes of the lower-case hex digits. */
const HEX_CODES: readonly number[] = [..."0123456789abcdef"].map((x) => x.charCodeAt(0));
/** {@link formatIpv6}'s scratch: at most 39 characters. */
const FORMAT_CODES: number[] = new Array<number>(40).fill(0);

/** True when the 16 bytes at `a[ao]` and `b[bo]` are equal. */
export function ipv6Equal(a: Uint8Array, b: Uint8Array, ao = 0, bo = 0): boolean {
  for (let i = 0; i < 16; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** Compare two IPv6 addresses as unsigned 128-bit numbers: negative, 0 or positive. */
export function ipv6Compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** A copy of `a` with every bit past `prefixLen` cleared. */
export function ipv6Masked(a: Uint8Array, prefixLen: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefixLen - 8 * i));
    out[i] = a[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** True when the address at `a[off]` lies inside `cidr`. */
export function ipv6CidrContains(
  cidr: { address: Uint8Array; prefixLen: number },
  a: Uint8Array,
  off = 0,
): boolean {
  return ipv6CommonPrefixLen(cidr.address, a, 0, off) >= cidr.prefixLen;
}

/** Number of leading bits two IPv6 addresses share (RFC 6724 CommonPrefixLen). */
export function ipv6CommonPrefixLen(a: Uint8Array, b: Uint8Array, ao = 0, bo = 0): number {
  for (let i = 0; i < 16; i++) {
    const x = a[ao + i]! ^ b[bo + i]!;
    if (x !== 0) return 8 * i + Math.clz32(x) - 24;
  }
  return 128;
}

/** ::/128 */
export function ipv6IsUnspecified(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 16; i++) if (a[off + i] !== 0) return false;
  return true;
}

/** ::1/128 */
export function ipv6IsLoopback(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 15; i++) if (a[off + i] !== 0) return false;
  return a[off + 15] === 1;
}

/** ff00::/8 */
export function ipv6IsMulticast(a: Uint8Array, off = 0): boolean {
  return a[off] === 0xff;
}

/** fe80::/10 */
export function ipv6IsLinkLocalUnicast(a: Uint8Array, off = 0): boolean {
  return a[off] === 0xfe && (a[off + 1]! & 0xc0) === 0x80;
}

/** fc00::/7, unique local (RFC 4193). */
export function ipv6IsUniqueLocal(a: Uint8Array, off = 0): boolean {
  return (a[off]! & 0xfe) === 0xfc;
}

/** ::ffff:0:0/96 */
export function ipv6IsV4Mapped(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/** Address scopes of RFC 4291 §2.7 and RFC 6724 §3.1. */
export const Scope = {
  INTERFACE_LOCAL: 0x1,
  LINK_LOCAL: 0x2,
  ADMIN_LOCAL: 0x4,
  SITE_LOCAL: 0x5,
  ORGANIZATION_LOCAL: 0x8,
  GLOBAL: 0xe,
} as const;

/**
 * The scope of an IPv6 address as RFC 6724 §3.1 defines it: multicast
 * carries its scope field; link-local unicast and loopback are link-local;
 * everything else unicast is global.
 */
export function ipv6Scope(a: Uint8Array, off = 0): number {
  if (ipv6IsMulticast(a, off)) return a[off + 1]! & 0x0f;
  if (ipv6IsLinkLocalUnicast(a, off) || ipv6IsLoopback(a, off)) return Scope.LINK_LOCAL;
  // Deprecated site-local fec0::/10.
  if (a[off] === 0xfe && (a[off + 1]! & 0xc0) === 0xc0) return Scope.SITE_LOCAL;
  return Scope.GLOBAL;
}

/** The solicited-node multicast address of `a` (RFC 4291 §2.7.1): ff02::1:ffXX:XXXX. */
export function ipv6SolicitedNode(a: Uint8Array, off = 0): Uint8Array {
  const out = new Uint8Array(16);
  out[0] = 0xff;
  out[1] = 0x02;
  out[11] = 0x01;
  out[12] = 0xff;
  out[13] = a[off + 13]!;
  out[14] = a[off + 14]!;
  out[15] = a[off + 15]!;
  return out;
}

// ---------------------------------------------------------------- both

/**
 * Parse either family's address.
 *
 * @example
 * ```ts
 * import { parseIpAddress } from "./ip_address.ts";
 * console.assert(parseIpAddress("2001:db8::1").family === 6);
 * ```
 */
export function parseIpAddress(text: string): IpAddress {
  return text.includes(":")
    ? { family: 6, address: parseIpv6(text) }
    : { family: 4, address: parseIpv4(text) };
}

/** Format either family's address. */
export function formatIpAddress(a: IpAddress): string {
  return a.family === 4 ? formatIpv4(a.address) : formatIpv6(a.address);
}

/**
 * Parse `ADDRESS/LEN`. With `keepHost` the host bits stay (an interface
 * address such as 192.0.2.1/24); without it they must be zero (a route
 * prefix), or the text is rejected.
 *
 * @example
 * ```ts
 * import { parseCidr, formatCidr } from "./ip_address.ts";
 * console.assert(formatCidr(parseCidr("192.0.2.1/24", true)) === "192.0.2.1/24");
 * ```
 */
export function parseCidr(text: string, keepHost = false): IpCidr {
  const slash = text.indexOf("/");
  if (slash === -1) {
    throw new AddressParseError(`Cannot parse prefix "${text}": missing "/LENGTH"`);
  }
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const a = parseIpAddress(addrText);
  const max = a.family === 4 ? 32 : 128;
  if (!/^[0-9]{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new AddressParseError(
      `Cannot parse prefix "${text}": prefix length must be 0 to ${max}, found "${lenText}"`,
    );
  }
  const prefixLen = Number(lenText);
  if (a.family === 4) {
    const masked = (a.address & ipv4Mask(prefixLen)) >>> 0;
    if (!keepHost && masked !== a.address) {
      throw new AddressParseError(
        `Cannot parse prefix "${text}": host bits are set (did you mean ${
          formatIpv4(masked)
        }/${prefixLen}?)`,
      );
    }
    return { family: 4, address: a.address, prefixLen };
  }
  const masked = ipv6Masked(a.address, prefixLen);
  if (!keepHost && !ipv6Equal(masked, a.address)) {
    throw new AddressParseError(
      `Cannot parse prefix "${text}": host bits are set (did you mean ${
        formatIpv6(masked)
      }/${prefixLen}?)`,
    );
  }
  return { family: 6, address: a.address, prefixLen };
}

/** Format a prefix as `ADDRESS/LEN`. */
export function formatCidr(c: IpCidr): string {
  return `${c.family === 4 ? formatIpv4(c.address) : formatIpv6(c.address)}/${c.prefixLen}`;
}

/** True when the two prefixes share any address (one contains the other's network). */
export function cidrsOverlap(a: IpCidr, b: IpCidr): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.prefixLen, b.prefixLen);
  if (a.family === 4) {
    return ipv4CidrContains({ address: a.address, prefixLen: len }, b.address as number);
  }
  return ipv6CommonPrefixLen(a.address, b.address as Uint8Array) >= len;
}
