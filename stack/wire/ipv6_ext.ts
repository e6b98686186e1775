/**
 * IPv6 extension headers (RFC 8200 §4): an allocation-free walker over the
 * header chain, the TLV options of Hop-by-Hop and Destination Options with
 * the action bits of unrecognised options (§4.2), and views of the
 * Fragment (§4.5) and Routing (§4.4) headers.
 *
 * ```
 * most extension headers (Hop-by-Hop 0, Routing 43, Destination Options 60):
 * +---------------+---------------+-------------------------------+
 * |  Next Header  |  Hdr Ext Len  |  header-specific data …       |  (Hdr Ext Len + 1) · 8 bytes
 * +---------------+---------------+-------------------------------+
 * Fragment 44:
 * +---------------+---------------+-------------------------+-+-+-+
 * |  Next Header  |   Reserved    |    Fragment Offset      |Res|M|
 * +---------------+---------------+-------------------------+-+-+-+
 * |                        Identification                         |
 * +---------------------------------------------------------------+
 * Authentication Header 51 (RFC 4302): length in 4-byte units, minus 2.
 * options (Hop-by-Hop, Destination Options):
 * +--------+--------+-------------
 * |  type  | length | data … (length bytes)      Pad1 (type 0) is one byte
 * +--------+--------+-------------
 * type bits: action(2) | may change en route(1) | rest(5)
 * ```
 *
 * Every pointer returned here counts bytes from the start of the IPv6
 * header, as the Parameter Problem pointer does (RFC 4443 §3.4).
 *
 * @module
 */
import {
  FRAG_FIRST,
  FRAG_LATER,
  FRAG_MORE,
  FRAG_NONE,
  type PacketBuffer,
} from "./packet_buffer.ts";
import { IPV6_HEADER_LEN, type Ipv6Packet } from "./ipv6.ts";

/** Next Header values of the extension headers (IANA "IPv6 Extension Header Types"). */
export const Ipv6NextHeader = {
  HOP_BY_HOP: 0,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NO_NEXT_HEADER: 59,
  DESTINATION_OPTIONS: 60,
  MOBILITY: 135,
  HIP: 139,
  SHIM6: 140,
} as const;

/**
 * True for the extension headers the chain walker steps over (RFC 8200
 * §4; RFC 7045 §4 lists them). ESP (50) is not stepped over: what follows
 * it is encrypted. No Next Header (59) ends the chain.
 */
export function ipv6IsExtensionHeader(nextHeader: number): boolean {
  switch (nextHeader) {
    case 0:
    case 43:
    case 44:
    case 51:
    case 60:
    case 135:
    case 139:
    case 140:
      return true;
    default:
      return false;
  }
}

/**
 * The upper layer of an IPv6 packet as netfilter finds it (ip6tables'
 * ipv6_find_hdr): over Hop-by-Hop, Routing, Fragment, Authentication and
 * Destination Options headers, at most 8 of them, without judging them.
 * The one walk both the IPv6 layer (recording it on the packet) and the
 * firewall (when nothing was recorded) use.
 *
 * @example
 * ```ts
 * import { Ipv6UpperLayer } from "./ipv6_ext.ts";
 * const p = new Uint8Array(40 + 8 + 8);
 * p[0] = 0x60;
 * p[6] = 0; // Hop-by-Hop first
 * p[40] = 17; // then UDP
 * const u = new Ipv6UpperLayer().find(p, 0, p.length);
 * console.assert(u.proto === 17 && u.offset === 48 && !u.truncated);
 * ```
 */
export class Ipv6UpperLayer {
  /** Upper-layer protocol; for a later fragment the Fragment header's Next Header. */
  proto = 0;
  /** Where the upper layer starts (a later fragment: where its data starts). */
  offset = 0;
  /** FRAG_* bits of the Fragment header (FRAG_NONE without one, or an atomic one). */
  fragment = FRAG_NONE;
  /** A Fragment header was there (an atomic one too), with this Identification. */
  hasFragmentHeader = false;
  id = 0;
  /** The chain ran past the packet: `proto` is 59 (no next header). */
  truncated = false;

  /** Walk the chain of the IPv6 packet at `d[ipOff]`, which ends at `end`. */
  find(d: Uint8Array, ipOff: number, end: number): this {
    let nh = d[ipOff + 6]!;
    let off = ipOff + IPV6_HEADER_LEN;
    this.fragment = FRAG_NONE;
    this.hasFragmentHeader = false;
    this.id = 0;
    this.truncated = false;
    for (let i = 0; i < 8; i++) {
      if (nh !== 0 && nh !== 43 && nh !== 44 && nh !== 51 && nh !== 60) break;
      if (off + 8 > end) {
        nh = 59;
        this.truncated = true;
        break;
      }
      const next = d[off]!;
      if (nh === 44) {
        this.hasFragmentHeader = true;
        this.id = ((d[off + 4]! << 24) | (d[off + 5]! << 16) | (d[off + 6]! << 8) | d[off + 7]!) >>>
          0;
        const fo = ((d[off + 2]! << 8) | d[off + 3]!) & 0xfff8;
        const more = (d[off + 3]! & 1) !== 0;
        if (fo !== 0) {
          this.fragment = FRAG_LATER | (more ? FRAG_MORE : 0);
          this.proto = next;
          this.offset = off + 8;
          return this;
        }
        if (more) this.fragment = FRAG_FIRST | FRAG_MORE;
        off += 8;
      } else if (nh === 51) off += (d[off + 1]! + 2) << 2; // RFC 4302 §2.2
      else off += (d[off + 1]! + 1) << 3;
      nh = next;
    }
    this.proto = nh;
    this.offset = off;
    return this;
  }
}

/** Why {@link Ipv6ExtHeaderIterator.next} stopped early. */
export const Ipv6ExtError = {
  /** No error. */
  NONE: 0,
  /** A header runs past the payload (RFC 7112 for a first fragment: ICMP code 3). */
  TRUNCATED: 1,
  /**
   * RFC 8200 §4.1: Hop-by-Hop may only follow the IPv6 header; elsewhere
   * it is an unrecognised Next Header (Parameter Problem code 1, pointer
   * at the Next Header field that names it).
   */
  HOP_BY_HOP_NOT_FIRST: 2,
} as const;

/**
 * Walks the extension-header chain of a checked IPv6 packet without
 * allocating. Each `next()` that returns true describes one header in
 * `type`, `offset`, `length`, `nextHeader`, `nextHeaderOffset` and
 * `typeOffset`. The last item is the upper layer (anything that is not an
 * extension header, ESP, No Next Header, or the data after a Fragment
 * header with a non-zero offset): `isUpperLayer` is true, `length` counts
 * the bytes to the end of the payload, and `nextHeader` is −1. `next()`
 * returns false after that, or on a malformed chain with `error` and
 * `errorPointer` set.
 *
 * @example
 * ```ts
 * import { Ipv6ExtHeaderIterator, writeFragmentHeader } from "./ipv6_ext.ts";
 * import { Ipv6Packet, writeIpv6Header } from "./ipv6.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(128);
 * p.setFrame(0, 56);
 * writeIpv6Header(p, 0, { src: new Uint8Array(16), dst: new Uint8Array(16), nextHeader: 44, payloadLen: 16 });
 * writeFragmentHeader(p, 40, { nextHeader: 17, fragmentOffset: 0, moreFragments: true, identification: 1 });
 * const it = new Ipv6ExtHeaderIterator().reset(new Ipv6Packet().reset(p, 0));
 * console.assert(it.next() && it.type === 44 && it.length === 8 && it.nextHeader === 17);
 * console.assert(it.next() && it.isUpperLayer && it.type === 17 && it.length === 8);
 * console.assert(!it.next());
 * ```
 */
export class Ipv6ExtHeaderIterator {
  /** The bytes being walked (`buf.data` of the packet). */
  data: Uint8Array = new Uint8Array(0);
  /** Offset in `data` of the IPv6 header. */
  ipOff = 0;
  /** Type of the current header: the Next Header value that named it. */
  type = 0;
  /** Offset in `data` of the current header. */
  offset = 0;
  /** Bytes of the current header; for the upper layer, bytes to the end of the payload. */
  length = 0;
  /** The current header's Next Header field; −1 for the upper layer. */
  nextHeader = -1;
  /** Offset in `data` of the current header's own Next Header field; −1 for the upper layer. */
  nextHeaderOffset = -1;
  /** Offset in `data` of the Next Header field that holds `type` (the previous header's). */
  typeOffset = 0;
  /** True for the last item: the upper-layer protocol (or ESP, 59, fragment data). */
  isUpperLayer = false;
  /** {@link Ipv6ExtError} after `next()` returned false early. */
  error = 0;
  /** −1, or the Parameter Problem pointer for `error` (bytes from the IPv6 header). */
  errorPointer = -1;
  #pos = 0;
  #end = 0;
  #nextType = 0;
  #nextTypeOffset = 0;
  #done = true;
  #dataOnly = false;

  /** Start walking the chain of `ip` (a checked view), to 40 + Payload Length. */
  reset(ip: Ipv6Packet): this {
    this.data = ip.buf.data;
    this.ipOff = ip.off;
    this.#pos = ip.off + IPV6_HEADER_LEN;
    this.#end = ip.endOffset();
    this.#nextType = ip.nextHeader();
    this.#nextTypeOffset = ip.nextHeaderOffset();
    this.#done = false;
    this.#dataOnly = false;
    this.type = 0;
    this.offset = 0;
    this.length = 0;
    this.nextHeader = -1;
    this.nextHeaderOffset = -1;
    this.typeOffset = 0;
    this.isUpperLayer = false;
    this.error = Ipv6ExtError.NONE;
    this.errorPointer = -1;
    return this;
  }

  /** `absOffset` (an offset in `data`) as a pointer from the start of the IPv6 header. */
  pointer(absOffset: number): number {
    return absOffset - this.ipOff;
  }

  /** Advance to the next header; false after the upper layer or on error. */
  next(): boolean {
    if (this.#done) return false;
    const t = this.#nextType;
    const pos = this.#pos;
    const d = this.data;
    this.type = t;
    this.offset = pos;
    this.typeOffset = this.#nextTypeOffset;
    if (this.#dataOnly || !ipv6IsExtensionHeader(t)) {
      this.isUpperLayer = true;
      this.length = this.#end - pos;
      this.nextHeader = -1;
      this.nextHeaderOffset = -1;
      this.#done = true;
      return true;
    }
    if (t === Ipv6NextHeader.HOP_BY_HOP && pos !== this.ipOff + IPV6_HEADER_LEN) {
      return this.#fail(Ipv6ExtError.HOP_BY_HOP_NOT_FIRST, this.#nextTypeOffset);
    }
    if (this.#end - pos < 8) return this.#fail(Ipv6ExtError.TRUNCATED, pos);
    let len: number;
    if (t === Ipv6NextHeader.FRAGMENT) len = 8;
    else if (t === Ipv6NextHeader.AH) len = (d[pos + 1]! + 2) << 2; // RFC 4302 §2.2
    else len = (d[pos + 1]! + 1) << 3;
    // The Hdr Ext Len byte is what is wrong (Parameter Problem code 0).
    if (len > this.#end - pos) return this.#fail(Ipv6ExtError.TRUNCATED, pos + 1);
    this.isUpperLayer = false;
    this.length = len;
    this.nextHeader = d[pos]!;
    this.nextHeaderOffset = pos;
    this.#nextType = d[pos]!;
    this.#nextTypeOffset = pos;
    this.#pos = pos + len;
    // After a non-first fragment comes fragment data, not headers (RFC 8200 §4.5).
    if (t === Ipv6NextHeader.FRAGMENT && ((d[pos + 2]! << 8) | d[pos + 3]!) >> 3 !== 0) {
      this.#dataOnly = true;
    }
    return true;
  }

  #fail(error: number, at: number): boolean {
    this.error = error;
    this.errorPointer = at - this.ipOff;
    this.#done = true;
    return false;
  }
}

// ------------------------------------------------------------ options

/** Option types tapir knows (IANA "Destination Options and Hop-by-Hop Options"). */
export const Ipv6OptionType = {
  PAD1: 0x00,
  PADN: 0x01,
  /** Tunnel Encapsulation Limit (RFC 2473), skipped. */
  TUNNEL_ENCAP_LIMIT: 0x04,
  /** Router Alert (RFC 2711), Hop-by-Hop only. */
  ROUTER_ALERT: 0x05,
  /** Jumbo Payload (RFC 2675); tapir does not accept jumbograms. */
  JUMBO: 0xc2,
  /** Home Address (RFC 6275), Destination Options only. */
  HOME_ADDRESS: 0xc9,
} as const;

/** Router Alert values (RFC 2711 §2.1; IANA "IPv6 Router Alert Option Values"). */
export const Ipv6RouterAlertValue = {
  MLD: 0,
  RSVP: 1,
  ACTIVE_NETWORKS: 2,
} as const;

/**
 * The two high-order bits of an option type: what a node does with an
 * option it does not recognise (RFC 8200 §4.2).
 */
export const Ipv6OptionAction = {
  /** 00: skip the option and go on. */
  SKIP: 0,
  /** 01: discard the packet. */
  DISCARD: 1,
  /** 10: discard and send Parameter Problem code 2, even to a multicast destination. */
  DISCARD_SEND_ICMP: 2,
  /** 11: discard and send Parameter Problem code 2 unless the destination is multicast. */
  DISCARD_SEND_ICMP_UNLESS_MULTICAST: 3,
} as const;

/** The {@link Ipv6OptionAction} encoded in an option type. */
export function ipv6OptionAction(type: number): number {
  return (type >> 6) & 3;
}

/** The third-highest bit of an option type: its data may change en route (RFC 8200 §4.2). */
export function ipv6OptionMayChange(type: number): boolean {
  return (type & 0x20) !== 0;
}

/**
 * Walks the TLV options of one Hop-by-Hop or Destination Options header
 * without allocating. After `next()` returns true, `type`, `offset`,
 * `length` (whole option; 1 for Pad1), `dataOffset` and `dataLength`
 * describe the option. `next()` returns false at the end of the header or
 * when an option runs past it; then `errorPointer` holds the pointer of
 * its type byte (else −1).
 */
export class Ipv6OptionIterator {
  /** The bytes being walked. */
  data: Uint8Array = new Uint8Array(0);
  /** Offset in `data` of the IPv6 header (for pointers). */
  ipOff = 0;
  /** Type of the current option. */
  type = 0;
  /** Offset in `data` of the current option's type byte. */
  offset = 0;
  /** Bytes of the current option, type and length bytes included. */
  length = 0;
  /** Offset in `data` of the current option's data. */
  dataOffset = 0;
  /** Bytes of the current option's data. */
  dataLength = 0;
  /** −1, or the pointer of a malformed option's type byte. */
  errorPointer = -1;
  #pos = 0;
  #end = 0;

  /**
   * Start walking the options of the header at `headerOff` (its Next
   * Header byte), `headerLen` bytes long, in a packet whose IPv6 header is
   * at `ipOff`.
   */
  reset(data: Uint8Array, headerOff: number, headerLen: number, ipOff: number): this {
    this.data = data;
    this.ipOff = ipOff;
    this.#pos = headerOff + 2;
    this.#end = headerOff + headerLen;
    this.errorPointer = -1;
    this.type = 0;
    this.offset = 0;
    this.length = 0;
    this.dataOffset = 0;
    this.dataLength = 0;
    return this;
  }

  /** Start walking the options of the chain walker's current header. */
  resetFrom(ext: Ipv6ExtHeaderIterator): this {
    return this.reset(ext.data, ext.offset, ext.length, ext.ipOff);
  }

  /** The current option's type byte as a pointer from the IPv6 header. */
  pointer(): number {
    return this.offset - this.ipOff;
  }

  /** Advance to the next option; false at the end or on error. */
  next(): boolean {
    const pos = this.#pos;
    if (pos >= this.#end) return false;
    const t = this.data[pos]!;
    this.type = t;
    this.offset = pos;
    if (t === Ipv6OptionType.PAD1) {
      this.length = 1;
      this.dataOffset = pos + 1;
      this.dataLength = 0;
      this.#pos = pos + 1;
      return true;
    }
    if (pos + 2 > this.#end || pos + 2 + this.data[pos + 1]! > this.#end) {
      this.errorPointer = pos - this.ipOff;
      this.#pos = this.#end;
      return false;
    }
    const n = this.data[pos + 1]!;
    this.length = n + 2;
    this.dataOffset = pos + 2;
    this.dataLength = n;
    this.#pos = pos + 2 + n;
    return true;
  }
}

/** What {@link processIpv6Options} decided. */
export const Ipv6OptionsVerdict = {
  /** Go on with the next header. */
  ACCEPT: 0,
  /** Drop the packet silently (action 01, action 11 to a multicast destination, or malformed). */
  DISCARD: 1,
  /** Drop and send Parameter Problem code 2 with `pointer` (actions 10 and 11). */
  PARAMETER_PROBLEM: 2,
} as const;

/** The reusable result of {@link processIpv6Options}, so that processing does not allocate. */
export class Ipv6OptionsResult {
  /** {@link Ipv6OptionsVerdict}. */
  verdict = 0;
  /** For PARAMETER_PROBLEM or a malformed option: pointer of the option's type byte; else −1. */
  pointer = -1;
  /** The Router Alert value of a Hop-by-Hop header (RFC 2711), or −1 when absent. */
  routerAlert = -1;
}

const optIt = new Ipv6OptionIterator();

/**
 * The most options other than padding one Hop-by-Hop or Destination
 * Options header may carry (Linux's max_hbh_opts_cnt / max_dst_opts_cnt
 * default); more is dropped.
 */
export const IPV6_MAX_OPTIONS = 8;

/**
 * Process the options of one Hop-by-Hop or Destination Options header
 * (RFC 8200 §4.2). Pad1 and PadN are skipped, Router Alert (Hop-by-Hop
 * only, 2 data bytes, RFC 2711 §2.1) is recorded; every other option is
 * unrecognised (Jumbo Payload included: tapir takes no jumbograms) and
 * handled by its two high-order bits: 00 skip, 01 discard, 10 discard
 * and Parameter Problem code 2, 11 the same unless the destination is
 * multicast. An option that runs past the header, or a Router Alert of
 * the wrong length, discards the packet silently, as Linux does.
 *
 * @returns `out.verdict` ({@link Ipv6OptionsVerdict})
 */
export function processIpv6Options(
  data: Uint8Array,
  headerOff: number,
  headerLen: number,
  ipOff: number,
  isHopByHop: boolean,
  dstIsMulticast: boolean,
  out: Ipv6OptionsResult,
): number {
  out.verdict = Ipv6OptionsVerdict.ACCEPT;
  out.pointer = -1;
  out.routerAlert = -1;
  const it = optIt.reset(data, headerOff, headerLen, ipOff);
  // Linux's ip6_parse_tlv (RFC 4942 §2.1.9.5): padding only pads, so at
  // most 7 bytes of it in a row and PadN's data all zero; and at most
  // IPV6_MAX_OPTIONS other options in one header. Anything else is dropped.
  let padding = 0, options = 0;
  while (it.next()) {
    const t = it.type;
    if (t === Ipv6OptionType.PAD1 || t === Ipv6OptionType.PADN) {
      padding += t === Ipv6OptionType.PAD1 ? 1 : 2 + it.dataLength;
      let zero = true;
      for (let i = 0; t === Ipv6OptionType.PADN && i < it.dataLength; i++) {
        if (data[it.dataOffset + i] !== 0) zero = false;
      }
      if (padding > 7 || !zero) {
        out.verdict = Ipv6OptionsVerdict.DISCARD;
        out.pointer = it.pointer();
        return out.verdict;
      }
      continue;
    }
    padding = 0;
    if (++options > IPV6_MAX_OPTIONS) {
      out.verdict = Ipv6OptionsVerdict.DISCARD;
      out.pointer = it.pointer();
      return out.verdict;
    }
    if (t === Ipv6OptionType.ROUTER_ALERT && isHopByHop) {
      if (it.dataLength !== 2) {
        out.verdict = Ipv6OptionsVerdict.DISCARD;
        out.pointer = it.pointer();
        return out.verdict;
      }
      out.routerAlert = (data[it.dataOffset]! << 8) | data[it.dataOffset + 1]!;
      continue;
    }
    switch (ipv6OptionAction(t)) {
      case Ipv6OptionAction.SKIP:
        continue;
      case Ipv6OptionAction.DISCARD:
        out.verdict = Ipv6OptionsVerdict.DISCARD;
        break;
      case Ipv6OptionAction.DISCARD_SEND_ICMP:
        out.verdict = Ipv6OptionsVerdict.PARAMETER_PROBLEM;
        break;
      default:
        out.verdict = dstIsMulticast
          ? Ipv6OptionsVerdict.DISCARD
          : Ipv6OptionsVerdict.PARAMETER_PROBLEM;
    }
    out.pointer = it.pointer();
    return out.verdict;
  }
  if (it.errorPointer >= 0) {
    out.verdict = Ipv6OptionsVerdict.DISCARD;
    out.pointer = it.errorPointer;
  }
  return out.verdict;
}

// ------------------------------------------------------------ fragment

/** Bytes of the Fragment header. */
export const IPV6_FRAGMENT_HEADER_LEN = 8;

/**
 * A view of a Fragment header (RFC 8200 §4.5).
 *
 * @example
 * ```ts
 * import { Ipv6FragmentHeader, writeFragmentHeader } from "./ipv6_ext.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(16).setFrame(0, 8);
 * writeFragmentHeader(p, 0, { nextHeader: 17, fragmentOffset: 1232, moreFragments: false, identification: 7 });
 * const f = new Ipv6FragmentHeader().reset(p, 0);
 * console.assert(f.fragmentOffset() === 1232 && !f.moreFragments() && !f.isAtomic());
 * ```
 */
export class Ipv6FragmentHeader {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the header in `buf.data`. */
  off = 0;

  /** Point the view at the header starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** True when the 8 bytes lie before `buf.end`. */
  check(): boolean {
    return this.buf.end - this.off >= IPV6_FRAGMENT_HEADER_LEN;
  }

  /** Next Header of the fragmentable part. */
  nextHeader(): number {
    return this.buf.data[this.off]!;
  }

  /** Set Next Header. */
  setNextHeader(v: number): void {
    this.buf.data[this.off] = v;
  }

  /** Fragment offset in bytes (the field counts 8-byte units). */
  fragmentOffset(): number {
    return this.buf.view.getUint16(this.off + 2) & 0xfff8;
  }

  /** Set the fragment offset in bytes (a multiple of 8). */
  setFragmentOffset(bytes: number): void {
    const w = this.buf.view.getUint16(this.off + 2);
    this.buf.view.setUint16(this.off + 2, (bytes & 0xfff8) | (w & 7));
  }

  /** The M flag: more fragments follow. */
  moreFragments(): boolean {
    return (this.buf.data[this.off + 3]! & 1) !== 0;
  }

  /** Set the M flag. */
  setMoreFragments(v: boolean): void {
    const d = this.buf.data;
    d[this.off + 3] = v ? d[this.off + 3]! | 1 : d[this.off + 3]! & ~1;
  }

  /** Identification. */
  identification(): number {
    return this.buf.view.getUint32(this.off + 4);
  }

  /** Set Identification. */
  setIdentification(v: number): void {
    this.buf.view.setUint32(this.off + 4, v >>> 0);
  }

  /**
   * True for an atomic fragment: offset 0 and M clear (RFC 6946 §4: it is
   * processed as a whole packet, never through reassembly).
   */
  isAtomic(): boolean {
    return (this.buf.view.getUint16(this.off + 2) & 0xfff9) === 0;
  }
}

/** The fields {@link writeFragmentHeader} writes. */
export interface Ipv6FragmentFields {
  /** Next Header of the fragmentable part. */
  nextHeader: number;
  /** Offset in bytes (a multiple of 8). */
  fragmentOffset: number;
  /** The M flag. */
  moreFragments: boolean;
  /** Identification. */
  identification: number;
}

/**
 * Write a Fragment header at `off`; the reserved fields are zero.
 *
 * @returns {@link IPV6_FRAGMENT_HEADER_LEN}
 */
export function writeFragmentHeader(buf: PacketBuffer, off: number, f: Ipv6FragmentFields): number {
  buf.data[off] = f.nextHeader;
  buf.data[off + 1] = 0;
  buf.view.setUint16(off + 2, (f.fragmentOffset & 0xfff8) | (f.moreFragments ? 1 : 0));
  buf.view.setUint32(off + 4, f.identification >>> 0);
  return IPV6_FRAGMENT_HEADER_LEN;
}

// ------------------------------------------------------------ routing

/** Routing types (IANA "Routing Types"). */
export const Ipv6RoutingType = {
  /** Type 0, deprecated by RFC 5095: treated as unrecognised. */
  SOURCE_ROUTE: 0,
  /** Mobile IPv6 (RFC 6275). */
  MOBILE_IPV6: 2,
  /** RPL source route (RFC 6554). */
  RPL: 3,
  /** Segment Routing (RFC 8754). */
  SEGMENT_ROUTING: 4,
} as const;

/**
 * A view of a Routing header's common part (RFC 8200 §4.4). A node that
 * does not recognise the routing type ignores the header when Segments
 * Left is 0, and otherwise sends Parameter Problem code 0 pointing at the
 * Routing Type field ({@link routingTypeOffset}).
 */
export class Ipv6RoutingHeader {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the header in `buf.data`. */
  off = 0;

  /** Point the view at the header starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** True when the 4 fixed bytes and the whole header lie before `buf.end`. */
  check(): boolean {
    const avail = this.buf.end - this.off;
    return avail >= 8 && this.headerLen() <= avail;
  }

  /** Next Header. */
  nextHeader(): number {
    return this.buf.data[this.off]!;
  }

  /** Bytes of the header: (Hdr Ext Len + 1) · 8. */
  headerLen(): number {
    return (this.buf.data[this.off + 1]! + 1) << 3;
  }

  /** Routing Type ({@link Ipv6RoutingType}). */
  routingType(): number {
    return this.buf.data[this.off + 2]!;
  }

  /** Offset in `buf.data` of the Routing Type field. */
  routingTypeOffset(): number {
    return this.off + 2;
  }

  /** Segments Left. */
  segmentsLeft(): number {
    return this.buf.data[this.off + 3]!;
  }

  /** Set Segments Left. */
  setSegmentsLeft(v: number): void {
    this.buf.data[this.off + 3] = v;
  }

  /** Offset in `buf.data` of the Segments Left field. */
  segmentsLeftOffset(): number {
    return this.off + 3;
  }
}
