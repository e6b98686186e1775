/**
 * Neighbor Discovery for IPv6 (RFC 4861 §4): Router Solicitation and
 * Advertisement, Neighbor Solicitation and Advertisement, Redirect, and
 * their options: link-layer addresses, Prefix Information, Redirected
 * Header, MTU (RFC 4861 §4.6), Route Information (RFC 4191 §2.3), RDNSS
 * and DNSSL (RFC 8106 §5), and Nonce (RFC 3971 §5.3.2, used by RFC 7527).
 *
 * ```
 * every message: type, code 0, checksum, then (after the ICMPv6 header)
 *  RS  133  reserved(4)                                    options at 8
 *  RA  134  cur hop limit | M O H Prf(2) P res | router lifetime(2)
 *           reachable time(4) | retrans timer(4)           options at 16
 *  NS  135  reserved(4) | target(16)                       options at 24
 *  NA  136  R S O reserved(29 bits) | target(16)           options at 24
 *  Rd  137  reserved(4) | target(16) | destination(16)     options at 40
 * option:   +--------+--------+------------------------
 *           |  type  | length | data … (length · 8 bytes in all)
 *           +--------+--------+------------------------
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";
import { ICMPV6_NEXT_HEADER, Icmpv6Packet, Icmpv6Type } from "./icmpv6.ts";
import { IPV6_HEADER_LEN, writeIpv6Header } from "./ipv6.ts";
import { type DnrInstance, encodeDnrRaBody, parseDnrRaBody } from "./dnr.ts";

/** RFC 4861 §6.1.1, §7.1.1: NDP messages are sent, and only accepted, with hop limit 255. */
export const NDP_HOP_LIMIT = 255;

/** NDP option types (IANA "IPv6 Neighbor Discovery Option Formats"). */
export const NdpOptionType = {
  SOURCE_LINK_LAYER_ADDRESS: 1,
  TARGET_LINK_LAYER_ADDRESS: 2,
  PREFIX_INFORMATION: 3,
  REDIRECTED_HEADER: 4,
  MTU: 5,
  NONCE: 14,
  ROUTE_INFORMATION: 24,
  RDNSS: 25,
  DNSSL: 31,
  /** RFC 8910 §2.3. */
  CAPTIVE_PORTAL: 37,
  /** RFC 8781 §4. */
  PREF64: 38,
  /** RFC 9463 §6.1 (encrypted DNS resolver). */
  DNR: 144,
} as const;

/** PREF64 prefix lengths by their PLC code (RFC 8781 §4). */
export const PREF64_LENGTHS: readonly number[] = [96, 64, 56, 48, 40, 32];

/**
 * Router and route preference (RFC 4191 §2.1), a 2-bit signed value:
 * 01 high, 00 medium, 11 low; 10 is reserved and read as medium.
 */
export const NdpPreference = {
  MEDIUM: 0,
  HIGH: 1,
  RESERVED: 2,
  LOW: 3,
} as const;

/** Bytes from the ICMPv6 type byte to the first option of each NDP message. */
export function ndpFixedLen(type: number): number {
  switch (type) {
    case Icmpv6Type.ROUTER_SOLICITATION:
      return 8;
    case Icmpv6Type.ROUTER_ADVERTISEMENT:
      return 16;
    case Icmpv6Type.NEIGHBOR_SOLICITATION:
    case Icmpv6Type.NEIGHBOR_ADVERTISEMENT:
      return 24;
    case Icmpv6Type.REDIRECT:
      return 40;
    default:
      return 0;
  }
}

// RFC 4861 §4.2, §4.4
const RA_M = 0x80;
const RA_O = 0x40;
const NA_R = 0x80;
const NA_S = 0x40;
const NA_O = 0x20;

/**
 * A view of an NDP message (the ICMPv6 header included) at an offset of a
 * {@link PacketBuffer}. Field accessors are for the message type at hand;
 * `check()` makes sure its fixed part is present.
 *
 * @example
 * ```ts
 * import { NdpPacket, NdpRepr, writeNdpPacket } from "./ndp.ts";
 * import { parseIpv6 } from "./ip_address.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(256);
 * const repr: NdpRepr = {
 *   kind: "neighborSolicitation",
 *   target: parseIpv6("2001:db8::2"),
 *   options: [{ kind: "sourceLinkLayerAddress", mac: new Uint8Array([2, 0, 0, 0, 0, 1]) }],
 * };
 * const n = writeNdpPacket(p, 0, parseIpv6("2001:db8::1"), parseIpv6("ff02::1:ff00:2"), repr);
 * p.setFrame(0, n);
 * const ndp = new NdpPacket().reset(p, 40);
 * console.assert(ndp.check() && ndp.type() === 135 && ndp.optionsOffset() === 64);
 * ```
 */
export class NdpPacket {
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
   * True when the type is an NDP message and its fixed part lies within
   * `len` bytes (to `buf.end` by default), and those lie before `buf.end`
   * (RFC 4861 §6.1, §7.1, §8.1: "ICMP length is 8 or more octets" etc.).
   */
  check(len: number = this.buf.end - this.off): boolean {
    const need = ndpFixedLen(this.type());
    return this.buf.end - this.off >= 4 && need !== 0 && need <= len &&
      len <= this.buf.end - this.off;
  }

  /** ICMPv6 type. */
  type(): number {
    return this.buf.data[this.off]!;
  }

  /** ICMPv6 code (0 for every valid NDP message). */
  code(): number {
    return this.buf.data[this.off + 1]!;
  }

  /** Offset in `buf.data` of the first option. */
  optionsOffset(): number {
    return this.off + ndpFixedLen(this.type());
  }

  /** RA: Cur Hop Limit (0: unspecified). */
  curHopLimit(): number {
    return this.buf.data[this.off + 4]!;
  }

  /** RA: the flags byte (M, O, H, Prf, P). */
  raFlags(): number {
    return this.buf.data[this.off + 5]!;
  }

  /** RA: the M flag, addresses come from DHCPv6. */
  managed(): boolean {
    return (this.raFlags() & RA_M) !== 0;
  }

  /** RA: the O flag, other configuration comes from DHCPv6. */
  other(): boolean {
    return (this.raFlags() & RA_O) !== 0;
  }

  /** RA: the Default Router Preference ({@link NdpPreference}, RFC 4191 §2.2). */
  routerPreference(): number {
    return (this.raFlags() >> 3) & 3;
  }

  /** RA: Router Lifetime in seconds (0: not a default router). */
  routerLifetime(): number {
    return this.buf.view.getUint16(this.off + 6);
  }

  /** RA: Reachable Time in ms (0: unspecified). */
  reachableTime(): number {
    return this.buf.view.getUint32(this.off + 8);
  }

  /** RA: Retrans Timer in ms (0: unspecified). */
  retransTimer(): number {
    return this.buf.view.getUint32(this.off + 12);
  }

  /** NA: the Router flag. */
  router(): boolean {
    return (this.buf.data[this.off + 4]! & NA_R) !== 0;
  }

  /** NA: the Solicited flag. */
  solicited(): boolean {
    return (this.buf.data[this.off + 4]! & NA_S) !== 0;
  }

  /** NA: the Override flag. */
  override(): boolean {
    return (this.buf.data[this.off + 4]! & NA_O) !== 0;
  }

  /** NS, NA, Redirect: offset in `buf.data` of the Target Address. */
  targetOffset(): number {
    return this.off + 8;
  }

  /** Redirect: offset in `buf.data` of the Destination Address. */
  destinationOffset(): number {
    return this.off + 24;
  }
}

/** Why {@link NdpOptionIterator.next} stopped early. */
export const NdpOptionError = {
  NONE: 0,
  /** RFC 4861 §4.6: "Nodes MUST silently discard an ND packet that contains an option with length zero." */
  ZERO_LENGTH: 1,
  /** An option runs past the end of the message. */
  OVERRUN: 2,
} as const;

/**
 * Walks NDP options without allocating. After `next()` returns true,
 * `type`, `offset` and `length` (bytes) describe the option, and the
 * accessors read its fields; `wellFormed()` says whether its length fits
 * its type (an option that does not is ignored). `next()` returns false at
 * the end, or on a zero-length or overrunning option with `error` set.
 *
 * @example
 * ```ts
 * import { NdpOptionIterator } from "./ndp.ts";
 * const b = new Uint8Array([5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
 * const it = new NdpOptionIterator().reset(b, 0, 8);
 * console.assert(it.next() && it.type === 5 && it.mtu() === 1500 && !it.next());
 * ```
 */
export class NdpOptionIterator {
  /** The bytes being walked. */
  data: Uint8Array = new Uint8Array(0);
  /** Type of the current option. */
  type = 0;
  /** Offset in `data` of the current option. */
  offset = 0;
  /** Bytes of the current option (the length field · 8). */
  length = 0;
  /** {@link NdpOptionError} after `next()` returned false early. */
  error = 0;
  /** Offset in `data` of the option that caused `error`, or −1. */
  errorOffset = -1;
  #pos = 0;
  #end = 0;

  /** Start walking the options in `data[start, end)`. */
  reset(data: Uint8Array, start: number, end: number): this {
    this.data = data;
    this.#pos = start;
    this.#end = end;
    this.type = 0;
    this.offset = 0;
    this.length = 0;
    this.error = NdpOptionError.NONE;
    this.errorOffset = -1;
    return this;
  }

  /** Start walking the options of a checked NDP message of `len` bytes. */
  resetFrom(ndp: NdpPacket, len: number = ndp.buf.end - ndp.off): this {
    return this.reset(ndp.buf.data, ndp.optionsOffset(), ndp.off + len);
  }

  /** Advance to the next option; false at the end or on error. */
  next(): boolean {
    const pos = this.#pos;
    if (pos >= this.#end) return false;
    if (this.#end - pos < 2) return this.#fail(NdpOptionError.OVERRUN, pos);
    const units = this.data[pos + 1]!;
    if (units === 0) return this.#fail(NdpOptionError.ZERO_LENGTH, pos);
    const len = units << 3;
    if (len > this.#end - pos) return this.#fail(NdpOptionError.OVERRUN, pos);
    this.type = this.data[pos]!;
    this.offset = pos;
    this.length = len;
    this.#pos = pos + len;
    return true;
  }

  #fail(error: number, at: number): boolean {
    this.error = error;
    this.errorOffset = at;
    this.#pos = this.#end;
    return false;
  }

  /**
   * True when the current option's length is valid for its type: Prefix
   * Information 32 bytes (RFC 4861 §4.6.2), MTU 8 (§4.6.4), Route
   * Information 8/16/24 bytes covering its prefix length (RFC 4191 §2.3),
   * RDNSS 8 + 16·n with n ≥ 1 (RFC 8106 §5.1), DNSSL ≥ 16 (§5.2), Nonce ≥ 8
   * (RFC 3971 §5.3.2), Redirected Header ≥ 8. Other types are accepted.
   */
  wellFormed(): boolean {
    const n = this.length;
    switch (this.type) {
      case NdpOptionType.PREFIX_INFORMATION:
        return n === 32 && this.prefixLength() <= 128;
      case NdpOptionType.MTU:
        return n === 8;
      case NdpOptionType.ROUTE_INFORMATION: {
        const pl = this.prefixLength();
        if (pl > 128 || n > 24) return false;
        return pl > 64 ? n === 24 : pl > 0 ? n >= 16 : true;
      }
      case NdpOptionType.RDNSS:
        return n >= 24 && ((n - 8) & 15) === 0;
      case NdpOptionType.DNSSL:
        return n >= 16;
      case NdpOptionType.PREF64:
        // RFC 8781 §4: 16 bytes; a PLC outside 0-5 makes it unusable.
        return n === 16 && (this.data[this.offset + 3]! & 7) <= 5;
      case NdpOptionType.DNR:
        // RFC 9463 §6.1: every field up to the ADN (at least one label): 16 bytes or more.
        return n >= 16;
      default:
        return true;
    }
  }

  /** Source/Target Link-Layer Address: offset of the address (6 bytes for Ethernet). */
  linkLayerAddressOffset(): number {
    return this.offset + 2;
  }

  /** Prefix Information and Route Information: Prefix Length. */
  prefixLength(): number {
    return this.data[this.offset + 2]!;
  }

  /** Prefix Information: the L (on-link) flag. */
  onLink(): boolean {
    return (this.data[this.offset + 3]! & 0x80) !== 0;
  }

  /** Prefix Information: the A (autonomous address configuration) flag. */
  autonomous(): boolean {
    return (this.data[this.offset + 3]! & 0x40) !== 0;
  }

  /** Prefix Information: Valid Lifetime in seconds (0xffffffff: infinity). */
  validLifetime(): number {
    return readU32(this.data, this.offset + 4);
  }

  /** Prefix Information: Preferred Lifetime in seconds. */
  preferredLifetime(): number {
    return readU32(this.data, this.offset + 8);
  }

  /** Prefix Information: offset of the 16-byte Prefix. Route Information: of its 0–16 prefix bytes. */
  prefixOffset(): number {
    return this.offset + (this.type === NdpOptionType.PREFIX_INFORMATION ? 16 : 8);
  }

  /** Route Information: copy the prefix into `out` (16 bytes), zero-filling bytes the option leaves out. */
  copyRoutePrefix(out: Uint8Array, outOff = 0): void {
    const have = Math.min(16, this.length - 8);
    const at = this.offset + 8;
    for (let i = 0; i < 16; i++) out[outOff + i] = i < have ? this.data[at + i]! : 0;
  }

  /** Route Information: Route Preference ({@link NdpPreference}). */
  routePreference(): number {
    return (this.data[this.offset + 3]! >> 3) & 3;
  }

  /** Route Information, RDNSS, DNSSL: Lifetime in seconds. */
  lifetime(): number {
    return readU32(this.data, this.offset + 4);
  }

  /** MTU option: the MTU. */
  mtu(): number {
    return readU32(this.data, this.offset + 4);
  }

  /** RDNSS: the number of addresses. */
  rdnssCount(): number {
    return (this.length - 8) >> 4;
  }

  /** RDNSS: offset of address `i`. */
  rdnssAddressOffset(i: number): number {
    return this.offset + 8 + 16 * i;
  }

  /** Redirected Header and DNSSL: offset of the data after the 8-byte option header. */
  bodyOffset(): number {
    return this.offset + 8;
  }

  /** Redirected Header and DNSSL: bytes of the data after the 8-byte option header. */
  bodyLength(): number {
    return this.length - 8;
  }

  /** Nonce: offset of the nonce bytes. */
  nonceOffset(): number {
    return this.offset + 2;
  }

  /** Nonce: bytes of the nonce (the option minus its type and length). */
  nonceLength(): number {
    return this.length - 2;
  }
}

function readU32(d: Uint8Array, at: number): number {
  return ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;
}

function writeU32(d: Uint8Array, at: number, v: number): void {
  d[at] = v >>> 24;
  d[at + 1] = (v >>> 16) & 255;
  d[at + 2] = (v >>> 8) & 255;
  d[at + 3] = v & 255;
}

const valIt = new NdpOptionIterator();

/**
 * True when every option in `data[start, end)` has a length above zero
 * and fits (RFC 4861 §4.6: a message with a zero-length option is
 * discarded; §6.1.1 etc.: "All included options have a length that is
 * greater than zero").
 */
export function validateNdpOptions(data: Uint8Array, start: number, end: number): boolean {
  valIt.reset(data, start, end);
  while (valIt.next()) { /* walk */ }
  return valIt.error === NdpOptionError.NONE;
}

// ------------------------------------------------------------ Reprs

/** One NDP option in parsed form. */
export type NdpOptionRepr =
  | { kind: "sourceLinkLayerAddress"; mac: Uint8Array }
  | { kind: "targetLinkLayerAddress"; mac: Uint8Array }
  | {
    kind: "prefixInformation";
    prefixLength: number;
    onLink: boolean;
    autonomous: boolean;
    validLifetime: number;
    preferredLifetime: number;
    prefix: Uint8Array;
  }
  | { kind: "redirectedHeader"; data: Uint8Array }
  | { kind: "mtu"; mtu: number }
  | {
    kind: "routeInformation";
    prefixLength: number;
    preference: number;
    lifetime: number;
    prefix: Uint8Array;
  }
  | { kind: "rdnss"; lifetime: number; addresses: Uint8Array[] }
  | { kind: "dnssl"; lifetime: number; domains: string[] }
  | { kind: "nonce"; nonce: Uint8Array }
  /** RFC 8910: the captive-portal API URI. */
  | { kind: "captivePortal"; uri: string }
  /** RFC 8781: a NAT64 prefix; `lifetime` in seconds (a multiple of 8, at most 65528). */
  | { kind: "pref64"; lifetime: number; prefixLength: number; prefix: Uint8Array }
  /** RFC 9463 §6.1: an encrypted DNS resolver; `lifetime` in seconds. */
  | { kind: "dnr"; lifetime: number; instance: DnrInstance }
  | { kind: "unknown"; type: number; data: Uint8Array };

const pad8 = (n: number): number => (n + 7) & ~7;

/** DNS wire encoding of `names` (RFC 1035 §3.1, no compression), unpadded. */
export function encodeDnsNames(names: readonly string[]): Uint8Array {
  const bytes: number[] = [];
  for (const name of names) {
    const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
    if (trimmed === "") throw new RangeError("DNSSL: an empty domain name cannot be encoded");
    for (const label of trimmed.split(".")) {
      if (label.length === 0 || label.length > 63) {
        throw new RangeError(`DNSSL: label "${label}" of "${name}" must be 1..63 bytes`);
      }
      bytes.push(label.length);
      for (let i = 0; i < label.length; i++) {
        const c = label.charCodeAt(i);
        if (c > 0x7e || c < 0x21) throw new RangeError(`DNSSL: "${name}" is not ASCII`);
        bytes.push(c);
      }
    }
    bytes.push(0);
  }
  return new Uint8Array(bytes);
}

/**
 * Decode the domain names of a DNSSL option's body (RFC 8106 §5.2): names
 * in DNS wire encoding followed by zero padding. Returns null when a label
 * runs past the body or uses compression.
 */
export function decodeDnsNames(d: Uint8Array, start: number, end: number): string[] | null {
  const names: string[] = [];
  let pos = start;
  while (pos < end) {
    if (d[pos] === 0) break; // padding
    const labels: string[] = [];
    for (;;) {
      if (pos >= end) return null;
      const n = d[pos]!;
      if (n === 0) {
        pos++;
        break;
      }
      if (n > 63 || pos + 1 + n > end) return null;
      labels.push(String.fromCharCode(...d.subarray(pos + 1, pos + 1 + n)));
      pos += 1 + n;
    }
    names.push(labels.join("."));
  }
  return names;
}

/** Bytes {@link writeNdpOption} writes for `o` (a multiple of 8). */
export function ndpOptionLen(o: NdpOptionRepr): number {
  switch (o.kind) {
    case "sourceLinkLayerAddress":
    case "targetLinkLayerAddress":
      return pad8(2 + o.mac.length);
    case "prefixInformation":
      return 32;
    case "redirectedHeader":
      return 8 + pad8(o.data.length);
    case "mtu":
      return 8;
    case "routeInformation":
      // RFC 4191 §2.3: the shortest length that holds the prefix.
      return o.prefixLength === 0 ? 8 : o.prefixLength <= 64 ? 16 : 24;
    case "rdnss":
      return 8 + 16 * o.addresses.length;
    case "dnssl":
      return 8 + pad8(encodeDnsNames(o.domains).length);
    case "nonce":
      return pad8(2 + o.nonce.length);
    case "captivePortal":
      return pad8(2 + new TextEncoder().encode(o.uri).length);
    case "pref64":
      return 16;
    case "dnr":
      return pad8(2 + encodeDnrRaBody(o.instance, o.lifetime).length);
    case "unknown":
      return pad8(2 + o.data.length);
  }
}

/**
 * Write a Source (type 1) or Target (type 2) Link-Layer Address option,
 * padded to 8 bytes (RFC 4861 §4.6.1).
 *
 * @returns bytes written
 */
export function writeLinkLayerAddressOption(
  buf: PacketBuffer,
  off: number,
  type: number,
  mac: Uint8Array,
): number {
  const len = pad8(2 + mac.length);
  const d = buf.data;
  d[off] = type;
  d[off + 1] = len >> 3;
  d.set(mac, off + 2);
  d.fill(0, off + 2 + mac.length, off + len);
  return len;
}

/**
 * Write one option at `off`; reserved bytes and padding are zero.
 *
 * @returns bytes written ({@link ndpOptionLen})
 */
export function writeNdpOption(buf: PacketBuffer, off: number, o: NdpOptionRepr): number {
  if (o.kind === "sourceLinkLayerAddress" || o.kind === "targetLinkLayerAddress") {
    const t = o.kind === "sourceLinkLayerAddress"
      ? NdpOptionType.SOURCE_LINK_LAYER_ADDRESS
      : NdpOptionType.TARGET_LINK_LAYER_ADDRESS;
    return writeLinkLayerAddressOption(buf, off, t, o.mac);
  }
  const len = ndpOptionLen(o);
  const d = buf.data;
  d.fill(0, off, off + len);
  d[off + 1] = len >> 3;
  switch (o.kind) {
    case "prefixInformation":
      d[off] = NdpOptionType.PREFIX_INFORMATION;
      d[off + 2] = o.prefixLength;
      d[off + 3] = (o.onLink ? 0x80 : 0) | (o.autonomous ? 0x40 : 0);
      writeU32(d, off + 4, o.validLifetime);
      writeU32(d, off + 8, o.preferredLifetime);
      d.set(o.prefix.subarray(0, 16), off + 16);
      break;
    case "redirectedHeader":
      d[off] = NdpOptionType.REDIRECTED_HEADER;
      d.set(o.data, off + 8);
      break;
    case "mtu":
      d[off] = NdpOptionType.MTU;
      writeU32(d, off + 4, o.mtu);
      break;
    case "routeInformation":
      d[off] = NdpOptionType.ROUTE_INFORMATION;
      d[off + 2] = o.prefixLength;
      d[off + 3] = (o.preference & 3) << 3;
      writeU32(d, off + 4, o.lifetime);
      d.set(o.prefix.subarray(0, len - 8), off + 8);
      break;
    case "rdnss":
      d[off] = NdpOptionType.RDNSS;
      writeU32(d, off + 4, o.lifetime);
      o.addresses.forEach((a, i) => d.set(a.subarray(0, 16), off + 8 + 16 * i));
      break;
    case "dnssl":
      d[off] = NdpOptionType.DNSSL;
      writeU32(d, off + 4, o.lifetime);
      d.set(encodeDnsNames(o.domains), off + 8);
      break;
    case "nonce":
      d[off] = NdpOptionType.NONCE;
      d.set(o.nonce, off + 2);
      break;
    case "captivePortal":
      // The URI, then NUL padding to 8 bytes (RFC 8910 §2.3).
      d[off] = NdpOptionType.CAPTIVE_PORTAL;
      d.set(new TextEncoder().encode(o.uri), off + 2);
      break;
    case "pref64": {
      d[off] = NdpOptionType.PREF64;
      const plc = PREF64_LENGTHS.indexOf(o.prefixLength);
      const scaled = Math.min(8191, Math.floor(o.lifetime / 8));
      d[off + 2] = (scaled >> 5) & 0xff;
      d[off + 3] = ((scaled & 31) << 3) | (plc < 0 ? 0 : plc);
      d.set(o.prefix.subarray(0, 12), off + 4);
      break;
    }
    case "dnr":
      // Zero padding to 8 bytes (RFC 9463 §6.1).
      d[off] = NdpOptionType.DNR;
      d.set(encodeDnrRaBody(o.instance, o.lifetime), off + 2);
      break;
    case "unknown":
      d[off] = o.type;
      d.set(o.data, off + 2);
      break;
  }
  return len;
}

/** Parse the current option of `it` (a well-formed one) into its Repr; null when it is not well formed. */
function parseOption(it: NdpOptionIterator): NdpOptionRepr | null {
  if (!it.wellFormed()) return null;
  const d = it.data;
  const o = it.offset;
  switch (it.type) {
    case NdpOptionType.SOURCE_LINK_LAYER_ADDRESS:
    case NdpOptionType.TARGET_LINK_LAYER_ADDRESS: {
      // Ethernet (RFC 2464 §8): a 6-byte address in an 8-byte option.
      const mac = d.slice(o + 2, o + (it.length === 8 ? 8 : it.length));
      return it.type === NdpOptionType.SOURCE_LINK_LAYER_ADDRESS
        ? { kind: "sourceLinkLayerAddress", mac }
        : { kind: "targetLinkLayerAddress", mac };
    }
    case NdpOptionType.PREFIX_INFORMATION:
      return {
        kind: "prefixInformation",
        prefixLength: it.prefixLength(),
        onLink: it.onLink(),
        autonomous: it.autonomous(),
        validLifetime: it.validLifetime(),
        preferredLifetime: it.preferredLifetime(),
        prefix: d.slice(o + 16, o + 32),
      };
    case NdpOptionType.REDIRECTED_HEADER:
      return { kind: "redirectedHeader", data: d.slice(o + 8, o + it.length) };
    case NdpOptionType.MTU:
      return { kind: "mtu", mtu: it.mtu() };
    case NdpOptionType.ROUTE_INFORMATION: {
      const prefix = new Uint8Array(16);
      it.copyRoutePrefix(prefix);
      return {
        kind: "routeInformation",
        prefixLength: it.prefixLength(),
        preference: it.routePreference(),
        lifetime: it.lifetime(),
        prefix,
      };
    }
    case NdpOptionType.RDNSS: {
      const addresses: Uint8Array[] = [];
      for (let i = 0; i < it.rdnssCount(); i++) {
        const a = it.rdnssAddressOffset(i);
        addresses.push(d.slice(a, a + 16));
      }
      return { kind: "rdnss", lifetime: it.lifetime(), addresses };
    }
    case NdpOptionType.DNSSL: {
      const domains = decodeDnsNames(d, it.bodyOffset(), o + it.length);
      if (domains === null) return null;
      return { kind: "dnssl", lifetime: it.lifetime(), domains };
    }
    case NdpOptionType.NONCE:
      return { kind: "nonce", nonce: d.slice(o + 2, o + it.length) };
    case NdpOptionType.CAPTIVE_PORTAL: {
      let end = o + it.length;
      while (end > o + 2 && d[end - 1] === 0) end--;
      return { kind: "captivePortal", uri: new TextDecoder().decode(d.subarray(o + 2, end)) };
    }
    case NdpOptionType.PREF64: {
      const prefix = new Uint8Array(16);
      prefix.set(d.subarray(o + 4, o + 16));
      const plc = d[o + 3]! & 7;
      const len = PREF64_LENGTHS[plc]!;
      // Bits past the prefix length are ignored (RFC 8781 §4).
      for (let i = 0; i < 16; i++) {
        const keep = Math.max(0, Math.min(8, len - 8 * i));
        prefix[i] = prefix[i]! & ((0xff << (8 - keep)) & 0xff);
      }
      return {
        kind: "pref64",
        lifetime: (((d[o + 2]! << 8) | d[o + 3]!) >> 3) * 8,
        prefixLength: len,
        prefix,
      };
    }
    case NdpOptionType.DNR: {
      const r = parseDnrRaBody(d.subarray(o + 2, o + it.length));
      return r === null ? null : { kind: "dnr", lifetime: r.lifetime, instance: r.instance };
    }
    default:
      return { kind: "unknown", type: it.type, data: d.slice(o + 2, o + it.length) };
  }
}

/**
 * Parse every option of `data[start, end)`. Options whose length does not
 * fit their type are left out (ignored, as RFC 4861 §4.6 and RFC 4191
 * §3.1 ask). Returns null when an option has length 0 or overruns.
 */
export function parseNdpOptions(
  data: Uint8Array,
  start: number,
  end: number,
): NdpOptionRepr[] | null {
  const it = new NdpOptionIterator().reset(data, start, end);
  const out: NdpOptionRepr[] = [];
  while (it.next()) {
    const o = parseOption(it);
    if (o !== null) out.push(o);
  }
  return it.error === NdpOptionError.NONE ? out : null;
}

/** An NDP message in parsed form. */
export type NdpRepr =
  | { kind: "routerSolicitation"; options: NdpOptionRepr[] }
  | {
    kind: "routerAdvertisement";
    curHopLimit: number;
    managed: boolean;
    other: boolean;
    /** Default Router Preference ({@link NdpPreference}). */
    preference: number;
    routerLifetime: number;
    reachableTime: number;
    retransTimer: number;
    options: NdpOptionRepr[];
  }
  | { kind: "neighborSolicitation"; target: Uint8Array; options: NdpOptionRepr[] }
  | {
    kind: "neighborAdvertisement";
    router: boolean;
    solicited: boolean;
    override: boolean;
    target: Uint8Array;
    options: NdpOptionRepr[];
  }
  | { kind: "redirect"; target: Uint8Array; destination: Uint8Array; options: NdpOptionRepr[] };

const KIND_TYPE = {
  routerSolicitation: Icmpv6Type.ROUTER_SOLICITATION,
  routerAdvertisement: Icmpv6Type.ROUTER_ADVERTISEMENT,
  neighborSolicitation: Icmpv6Type.NEIGHBOR_SOLICITATION,
  neighborAdvertisement: Icmpv6Type.NEIGHBOR_ADVERTISEMENT,
  redirect: Icmpv6Type.REDIRECT,
} as const;

/** Parse, size and emit {@link NdpRepr}s. */
export const NdpRepr: {
  parse(ndp: NdpPacket, ipOff: number, len?: number): NdpRepr | null;
  bufferLen(repr: NdpRepr): number;
  emit(repr: NdpRepr, buf: PacketBuffer, off: number, ipOff: number): void;
} = {
  /**
   * Parse `len` bytes of message (to `buf.end` by default) whose IPv6
   * header is at `ipOff`. Returns null when the fixed part is short, the
   * code is not 0, the checksum is wrong, or an option has length 0 or
   * overruns (RFC 4861 §6.1, §7.1, §8.1). The hop limit and address
   * checks of those sections are the caller's.
   */
  parse(ndp: NdpPacket, ipOff: number, len: number = ndp.buf.end - ndp.off): NdpRepr | null {
    if (!ndp.check(len) || ndp.code() !== 0) return null;
    if (!new Icmpv6Packet().reset(ndp.buf, ndp.off).verifyChecksum(ipOff, len)) return null;
    const d = ndp.buf.data;
    const options = parseNdpOptions(d, ndp.optionsOffset(), ndp.off + len);
    if (options === null) return null;
    const t = ndp.targetOffset();
    switch (ndp.type()) {
      case Icmpv6Type.ROUTER_SOLICITATION:
        return { kind: "routerSolicitation", options };
      case Icmpv6Type.ROUTER_ADVERTISEMENT:
        return {
          kind: "routerAdvertisement",
          curHopLimit: ndp.curHopLimit(),
          managed: ndp.managed(),
          other: ndp.other(),
          preference: ndp.routerPreference(),
          routerLifetime: ndp.routerLifetime(),
          reachableTime: ndp.reachableTime(),
          retransTimer: ndp.retransTimer(),
          options,
        };
      case Icmpv6Type.NEIGHBOR_SOLICITATION:
        return { kind: "neighborSolicitation", target: d.slice(t, t + 16), options };
      case Icmpv6Type.NEIGHBOR_ADVERTISEMENT:
        return {
          kind: "neighborAdvertisement",
          router: ndp.router(),
          solicited: ndp.solicited(),
          override: ndp.override(),
          target: d.slice(t, t + 16),
          options,
        };
      default: {
        const dst = ndp.destinationOffset();
        return {
          kind: "redirect",
          target: d.slice(t, t + 16),
          destination: d.slice(dst, dst + 16),
          options,
        };
      }
    }
  },

  /** Bytes `emit()` writes: fixed part plus options. */
  bufferLen(repr: NdpRepr): number {
    let n = ndpFixedLen(KIND_TYPE[repr.kind]);
    for (const o of repr.options) n += ndpOptionLen(o);
    return n;
  },

  /**
   * Write the whole message at `off`, checksum included. The IPv6 header
   * at `ipOff` must already hold the source and destination addresses.
   */
  emit(repr: NdpRepr, buf: PacketBuffer, off: number, ipOff: number): void {
    const type = KIND_TYPE[repr.kind];
    const fixed = ndpFixedLen(type);
    const d = buf.data;
    d.fill(0, off, off + fixed);
    d[off] = type;
    switch (repr.kind) {
      case "routerAdvertisement":
        d[off + 4] = repr.curHopLimit;
        d[off + 5] = (repr.managed ? RA_M : 0) | (repr.other ? RA_O : 0) |
          ((repr.preference & 3) << 3);
        buf.view.setUint16(off + 6, repr.routerLifetime);
        writeU32(d, off + 8, repr.reachableTime);
        writeU32(d, off + 12, repr.retransTimer);
        break;
      case "neighborSolicitation":
        d.set(repr.target, off + 8);
        break;
      case "neighborAdvertisement":
        d[off + 4] = (repr.router ? NA_R : 0) | (repr.solicited ? NA_S : 0) |
          (repr.override ? NA_O : 0);
        d.set(repr.target, off + 8);
        break;
      case "redirect":
        d.set(repr.target, off + 8);
        d.set(repr.destination, off + 24);
        break;
      case "routerSolicitation":
        break;
    }
    let at = off + fixed;
    for (const o of repr.options) at += writeNdpOption(buf, at, o);
    new Icmpv6Packet().reset(buf, off).fillChecksum(ipOff, at - off);
  },
};

/**
 * Write a whole NDP packet at `off`: the IPv6 header (hop limit 255, RFC
 * 4861 §6.1.1) and the message with its options and checksum.
 *
 * @returns bytes written (40 + the message)
 */
export function writeNdpPacket(
  buf: PacketBuffer,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  repr: NdpRepr,
): number {
  const len = NdpRepr.bufferLen(repr);
  writeIpv6Header(buf, off, {
    src,
    dst,
    nextHeader: ICMPV6_NEXT_HEADER,
    payloadLen: len,
    hopLimit: NDP_HOP_LIMIT,
  });
  NdpRepr.emit(repr, buf, off + IPV6_HEADER_LEN, off);
  return IPV6_HEADER_LEN + len;
}
