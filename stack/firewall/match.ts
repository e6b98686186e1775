/**
 * Rule matching: a {@link PacketInfo} read once per hook from the packet's
 * bytes, and {@link CompiledRule}s whose matches are plain numbers and
 * strings, checked without allocation.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import { FRAG_LATER, FRAG_NONE, type PacketBuffer } from "../wire/packet_buffer.ts";
import { Ipv6UpperLayer } from "../wire/ipv6_ext.ts";
import type { Clock } from "../clock.ts";
import { TokenBucket } from "../token_bucket.ts";
import { ipv4Mask } from "../wire/ip_address.ts";
import type { CtState, InterfaceMatch, Negatable, PortRange, Rule } from "./rule_types.ts";

/** Connection tracking state bits of a packet (for `--ctstate`). */
export const CtBit = {
  NEW: 1,
  ESTABLISHED: 2,
  RELATED: 4,
  INVALID: 8,
  UNTRACKED: 16,
  SNAT: 32,
  DNAT: 64,
} as const;

const CT_BITS: Record<CtState, number> = CtBit;

/** What the rules look at, read from the packet at each hook. */
export class PacketInfo {
  /** 4 or 6. */
  family: 4 | 6 = 4;
  pkt: PacketBuffer | null = null;
  ipOff = 0;
  /** IP total length (the byte counters count it): IPv6 40 + payload length. */
  len = 0;
  /** IPv4 addresses (IPv6: 0). */
  src = 0;
  dst = 0;
  /** IPv6: offsets of the addresses in `pkt.data`. */
  srcOff = 0;
  dstOff = 0;
  /** Upper-layer protocol (IPv6: after the extension headers; 59 when none). */
  proto = 0;
  /** TTL or hop limit. */
  ttl = 0;
  id = 0;
  /** A fragment other than the first: no transport header. */
  laterFragment = false;
  /** IPv6: the packet has a Fragment header (`id` is its Identification). */
  fragment = false;
  /** Offset of the transport header. */
  l4Off = 0;
  /** The transport header's first 4 (TCP/UDP: 20 resp. 8) bytes are there. */
  hasPorts = false;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  /** ICMP type/code, −1 when not ICMP or too short. */
  icmpType = -1;
  icmpCode = -1;
  inNic: Nic | null = null;
  outNic: Nic | null = null;
  /** {@link CtBit}s. */
  ctState = 0;
  mark = 0;
  readonly #upper = new Ipv6UpperLayer();

  /** The fields both families set first; no ports, flags or ICMP type yet. */
  #begin(
    family: 4 | 6,
    pkt: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
    outNic: Nic | null,
  ): void {
    this.family = family;
    this.pkt = pkt;
    this.ipOff = ipOff;
    this.inNic = inNic;
    this.outNic = outNic;
    this.hasPorts = false;
    this.sport = this.dport = this.tcpFlags = 0;
    this.icmpType = this.icmpCode = -1;
  }

  /** The transport header's ports and flags (TCP, UDP) or type and code (ICMP, `icmpMin` bytes there). */
  #upperLayer(proto: number, off: number, icmpProto: number, icmpMin: number): void {
    const pkt = this.pkt!, d = pkt.data, v = pkt.view, end = pkt.end;
    if (proto === 6 || proto === 17) {
      if (off + (proto === 6 ? 14 : 8) <= end) {
        this.hasPorts = true;
        this.sport = v.getUint16(off);
        this.dport = v.getUint16(off + 2);
        if (proto === 6) this.tcpFlags = d[off + 13]!;
      }
    } else if (proto === icmpProto && off + icmpMin <= end) {
      this.icmpType = d[off]!;
      this.icmpCode = d[off + 1]!;
    }
  }

  /** Read an IPv4 packet's fields. */
  load(pkt: PacketBuffer, ipOff: number, inNic: Nic | null, outNic: Nic | null): void {
    const d = pkt.data, v = pkt.view;
    this.#begin(4, pkt, ipOff, inNic, outNic);
    this.len = v.getUint16(ipOff + 2);
    this.ttl = d[ipOff + 8]!;
    this.id = v.getUint16(ipOff + 4);
    this.proto = d[ipOff + 9]!;
    this.src = v.getUint32(ipOff + 12);
    this.dst = v.getUint32(ipOff + 16);
    this.laterFragment = (v.getUint16(ipOff + 6) & 0x1fff) !== 0;
    const l4 = ipOff + ((d[ipOff]! & 0x0f) << 2);
    this.l4Off = l4;
    if (!this.laterFragment) this.#upperLayer(this.proto, l4, 1, 8);
  }

  /**
   * Read an IPv6 packet's fields, walking its extension headers to the
   * upper layer (ip6tables' ipv6_find_hdr). A fragment with a non-zero
   * offset is a later fragment; a chain that runs past the packet leaves
   * `proto` at the last header type and `hasPorts` false.
   */
  load6(pkt: PacketBuffer, ipOff: number, inNic: Nic | null, outNic: Nic | null): void {
    const d = pkt.data, v = pkt.view;
    this.#begin(6, pkt, ipOff, inNic, outNic);
    this.len = 40 + v.getUint16(ipOff + 4);
    this.ttl = d[ipOff + 7]!;
    this.id = 0;
    this.src = this.dst = 0;
    this.srcOff = ipOff + 8;
    this.dstOff = ipOff + 24;
    this.laterFragment = false;
    this.fragment = false;
    const end = pkt.end;
    let nh: number, off: number;
    if (pkt.networkOffset === ipOff && pkt.l4Offset >= 0 && pkt.fragment === FRAG_NONE) {
      // The IPv6 layer walked the chain once (the same walk) and left the result on the packet.
      nh = pkt.l4Protocol;
      off = pkt.l4Offset;
    } else {
      const u = this.#upper.find(d, ipOff, end);
      this.fragment = u.hasFragmentHeader;
      this.id = u.id;
      if ((u.fragment & FRAG_LATER) !== 0) {
        this.laterFragment = true;
        this.proto = u.proto;
        this.l4Off = u.offset;
        return;
      }
      nh = u.proto;
      off = u.offset;
    }
    this.proto = nh;
    this.l4Off = off;
    this.#upperLayer(nh, off, 58, 4);
  }
}

/** Whether the first `len` bits of `a[aOff..]` equal those of `prefix`. */
function prefix6(a: Uint8Array, aOff: number, prefix: Uint8Array, len: number): boolean {
  let i = 0;
  for (; len >= 8; i++, len -= 8) if (a[aOff + i] !== prefix[i]) return false;
  if (len === 0) return true;
  const m = (0xff << (8 - len)) & 0xff;
  return (a[aOff + i]! & m) === (prefix[i]! & m);
}

/** The matches a rule may have, named by their key in {@link Rule}, as bits of {@link CompiledRule}'s flattened form. */
const M = {
  source: 1,
  destination: 2,
  inInterface: 4,
  outInterface: 8,
  protocol: 16,
  sourcePorts: 32,
  destinationPorts: 64,
  ports: 128,
  tcpFlags: 256,
  icmpType: 512,
  ctState: 1024,
  mark: 2048,
} as const;

/** The rule keys of the matches, in bit order. */
const MATCH_KEYS = Object.keys(M) as (keyof typeof M)[];

/** Kinds of target, as numbers. */
export const TargetKind = {
  ACCEPT: 0,
  DROP: 1,
  RETURN: 2,
  NOTRACK: 3,
  REJECT: 4,
  LOG: 5,
  JUMP: 6,
  MARK: 7,
  SNAT: 8,
  DNAT: 9,
  MASQUERADE: 10,
  REDIRECT: 11,
  TCPMSS: 12,
  NONE: 13,
} as const;

function ranges(m: Negatable<PortRange[]> | undefined): Int32Array | null {
  if (m === undefined) return null;
  const a = new Int32Array(m.value.length * 2);
  m.value.forEach((r, i) => {
    a[2 * i] = r.min;
    a[2 * i + 1] = r.max;
  });
  return a;
}

function inRanges(a: Int32Array, p: number): boolean {
  for (let i = 0; i < a.length; i += 2) if (p >= a[i]! && p <= a[i + 1]!) return true;
  return false;
}

function ifMatch(m: InterfaceMatch, nic: Nic | null): boolean {
  // Loopback packets have no NIC here; Linux names their device `lo`.
  if (nic === null) return m.prefix ? "lo".startsWith(m.name) : m.name === "lo";
  return m.prefix ? nic.name.startsWith(m.name) : nic.name === m.name;
}

/**
 * One rule with its matches in numeric form, its counters and its target.
 * `jump` is filled in by the table compiler.
 */
export class CompiledRule {
  /** Packets and bytes that matched. */
  packets = 0;
  bytes = 0;
  readonly kind: number;
  /** The protocol the rule requires (`-p X` without `!`), or -1: the chain walk skips by it. */
  readonly proto: number;
  /** Filled in for JUMP by the compiler. */
  jump: unknown = null;
  readonly limit: TokenBucket | null;
  // Each match flattened into numbers and flags of this class, so the walk
  // over many rules reads one object shape (a parsed Rule's optional fields
  // differ from rule to rule).
  /** Match bits: which of the rule's matches are present. */
  readonly #has: number;
  /** Invert bits: which of them carry `!`. */
  readonly #inv: number;
  #srcAddr = 0;
  #srcMask = 0;
  #dstAddr = 0;
  #dstMask = 0;
  #srcLen = 0;
  #dstLen = 0;
  #src6: Uint8Array | null = null;
  #dst6: Uint8Array | null = null;
  #inIf: InterfaceMatch | null;
  #outIf: InterfaceMatch | null;
  #protocol = 0;
  #sports: Int32Array | null;
  #dports: Int32Array | null;
  #ports: Int32Array | null;
  #flagMask = 0;
  #flagComp = 0;
  #icmpType = 0;
  /** -1: any code. */
  #icmpCode = -1;
  #ctMask = 0;
  #markValue = 0;
  #markMask = 0;

  /** @param rule the parsed rule; @param clock for `-m limit` */
  constructor(readonly rule: Rule, clock: Clock) {
    const r = rule;
    let has = 0, inv = 0;
    for (const k of MATCH_KEYS) {
      const m = r[k];
      if (m === undefined) continue;
      has |= M[k];
      if (m.invert) inv |= M[k];
    }
    this.#has = has;
    this.#inv = inv;
    if (r.source?.value.family === 4) {
      this.#srcMask = ipv4Mask(r.source.value.prefixLen);
      this.#srcAddr = (r.source.value.address & this.#srcMask) >>> 0;
    }
    if (r.destination?.value.family === 4) {
      this.#dstMask = ipv4Mask(r.destination.value.prefixLen);
      this.#dstAddr = (r.destination.value.address & this.#dstMask) >>> 0;
    }
    if (r.source?.value.family === 6) {
      this.#src6 = r.source.value.address;
      this.#srcLen = r.source.value.prefixLen;
    }
    if (r.destination?.value.family === 6) {
      this.#dst6 = r.destination.value.address;
      this.#dstLen = r.destination.value.prefixLen;
    }
    this.#inIf = r.inInterface?.value ?? null;
    this.#outIf = r.outInterface?.value ?? null;
    this.#protocol = r.protocol?.value ?? 0;
    this.#sports = ranges(r.sourcePorts);
    this.#dports = ranges(r.destinationPorts);
    this.#ports = ranges(r.ports);
    if (r.tcpFlags) {
      this.#flagMask = r.tcpFlags.value.mask;
      this.#flagComp = r.tcpFlags.value.comp;
    }
    if (r.icmpType) {
      this.#icmpType = r.icmpType.value.type;
      this.#icmpCode = r.icmpType.value.code ?? -1;
    }
    if (r.ctState) { for (const s of r.ctState.value) this.#ctMask |= CT_BITS[s]; }
    if (r.mark) {
      this.#markValue = r.mark.value.value;
      this.#markMask = r.mark.value.mask;
    }
    this.limit = r.limit ? new TokenBucket(clock, r.limit.perSecond, r.limit.burst) : null;
    this.kind = r.target === undefined ? TargetKind.NONE : TargetKind[r.target.kind];
    this.proto = r.protocol !== undefined && !r.protocol.invert ? r.protocol.value : -1;
  }

  /** Whether the packet matches every match of the rule (`-m limit` last: it takes a token). */
  matches(p: PacketInfo): boolean {
    const has = this.#has;
    if (has === 0) return this.limit === null || this.limit.take();
    const inv = this.#inv;
    // Each test: does the match hold (before `!`)? A failing test ends it.
    if ((has & M.source) !== 0) {
      const hit = p.family === 6
        ? this.#src6 !== null && prefix6(p.pkt!.data, p.srcOff, this.#src6, this.#srcLen)
        : ((p.src & this.#srcMask) >>> 0) === this.#srcAddr;
      if (hit === ((inv & M.source) !== 0)) return false;
    }
    if ((has & M.destination) !== 0) {
      const hit = p.family === 6
        ? this.#dst6 !== null && prefix6(p.pkt!.data, p.dstOff, this.#dst6, this.#dstLen)
        : ((p.dst & this.#dstMask) >>> 0) === this.#dstAddr;
      if (hit === ((inv & M.destination) !== 0)) return false;
    }
    if (
      (has & M.inInterface) !== 0 && ifMatch(this.#inIf!, p.inNic) === ((inv & M.inInterface) !== 0)
    ) {
      return false;
    }
    if (
      (has & M.outInterface) !== 0 &&
      ifMatch(this.#outIf!, p.outNic) === ((inv & M.outInterface) !== 0)
    ) {
      return false;
    }
    if ((has & M.protocol) !== 0 && (p.proto === this.#protocol) === ((inv & M.protocol) !== 0)) {
      return false;
    }
    // Port, flag and type matches never match a later fragment (xt_tcpudp).
    if ((has & M.sourcePorts) !== 0) {
      if (!p.hasPorts || inRanges(this.#sports!, p.sport) === ((inv & M.sourcePorts) !== 0)) {
        return false;
      }
    }
    if ((has & M.destinationPorts) !== 0) {
      if (!p.hasPorts || inRanges(this.#dports!, p.dport) === ((inv & M.destinationPorts) !== 0)) {
        return false;
      }
    }
    if ((has & M.ports) !== 0) {
      if (
        !p.hasPorts ||
        (inRanges(this.#ports!, p.sport) || inRanges(this.#ports!, p.dport)) ===
          ((inv & M.ports) !== 0)
      ) return false;
    }
    if ((has & M.tcpFlags) !== 0) {
      if (p.proto !== 6 || !p.hasPorts) return false;
      if (((p.tcpFlags & this.#flagMask) === this.#flagComp) === ((inv & M.tcpFlags) !== 0)) {
        return false;
      }
    }
    if ((has & M.icmpType) !== 0) {
      if (p.icmpType < 0) return false;
      const hit = p.icmpType === this.#icmpType &&
        (this.#icmpCode < 0 || p.icmpCode === this.#icmpCode);
      if (hit === ((inv & M.icmpType) !== 0)) return false;
    }
    if (
      (has & M.ctState) !== 0 && ((p.ctState & this.#ctMask) !== 0) === ((inv & M.ctState) !== 0)
    ) {
      return false;
    }
    if ((has & M.mark) !== 0) {
      if ((((p.mark & this.#markMask) >>> 0) === this.#markValue) === ((inv & M.mark) !== 0)) {
        return false;
      }
    }
    if (this.limit !== null && !this.limit.take()) return false;
    return true;
  }
}
