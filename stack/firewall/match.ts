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

  /** Read an IPv4 packet's fields. */
  load(pkt: PacketBuffer, ipOff: number, inNic: Nic | null, outNic: Nic | null): void {
    const d = pkt.data, v = pkt.view;
    this.family = 4;
    this.pkt = pkt;
    this.ipOff = ipOff;
    this.inNic = inNic;
    this.outNic = outNic;
    this.len = v.getUint16(ipOff + 2);
    this.ttl = d[ipOff + 8]!;
    this.id = v.getUint16(ipOff + 4);
    this.proto = d[ipOff + 9]!;
    this.src = v.getUint32(ipOff + 12);
    this.dst = v.getUint32(ipOff + 16);
    this.laterFragment = (v.getUint16(ipOff + 6) & 0x1fff) !== 0;
    const l4 = ipOff + ((d[ipOff]! & 0x0f) << 2);
    this.l4Off = l4;
    this.hasPorts = false;
    this.sport = this.dport = this.tcpFlags = 0;
    this.icmpType = this.icmpCode = -1;
    if (this.laterFragment) return;
    const end = pkt.end;
    if (this.proto === 6 || this.proto === 17) {
      if (l4 + (this.proto === 6 ? 14 : 8) <= end) {
        this.hasPorts = true;
        this.sport = v.getUint16(l4);
        this.dport = v.getUint16(l4 + 2);
        if (this.proto === 6) this.tcpFlags = d[l4 + 13]!;
      }
    } else if (this.proto === 1 && l4 + 8 <= end) {
      this.icmpType = d[l4]!;
      this.icmpCode = d[l4 + 1]!;
    }
  }

  /**
   * Read an IPv6 packet's fields, walking its extension headers to the
   * upper layer (ip6tables' ipv6_find_hdr). A fragment with a non-zero
   * offset is a later fragment; a chain that runs past the packet leaves
   * `proto` at the last header type and `hasPorts` false.
   */
  load6(pkt: PacketBuffer, ipOff: number, inNic: Nic | null, outNic: Nic | null): void {
    const d = pkt.data, v = pkt.view;
    this.family = 6;
    this.pkt = pkt;
    this.ipOff = ipOff;
    this.inNic = inNic;
    this.outNic = outNic;
    this.len = 40 + v.getUint16(ipOff + 4);
    this.ttl = d[ipOff + 7]!;
    this.id = 0;
    this.src = this.dst = 0;
    this.srcOff = ipOff + 8;
    this.dstOff = ipOff + 24;
    this.hasPorts = false;
    this.laterFragment = false;
    this.fragment = false;
    this.sport = this.dport = this.tcpFlags = 0;
    this.icmpType = this.icmpCode = -1;
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
    if (nh === 6 || nh === 17) {
      if (off + (nh === 6 ? 14 : 8) <= end) {
        this.hasPorts = true;
        this.sport = v.getUint16(off);
        this.dport = v.getUint16(off + 2);
        if (nh === 6) this.tcpFlags = d[off + 13]!;
      }
    } else if (nh === 58 && off + 4 <= end) {
      this.icmpType = d[off]!;
      this.icmpCode = d[off + 1]!;
    }
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

/** The matches a rule may have, as bits of {@link CompiledRule}'s flattened form. */
const M = {
  SRC: 1,
  DST: 2,
  IN: 4,
  OUT: 8,
  PROTO: 16,
  SPORTS: 32,
  DPORTS: 64,
  PORTS: 128,
  FLAGS: 256,
  ICMP: 512,
  CT: 1024,
  MARK: 2048,
} as const;

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
    const note = (bit: number, m: { invert: boolean } | undefined) => {
      if (m === undefined) return;
      has |= bit;
      if (m.invert) inv |= bit;
    };
    note(M.SRC, r.source);
    note(M.DST, r.destination);
    note(M.IN, r.inInterface);
    note(M.OUT, r.outInterface);
    note(M.PROTO, r.protocol);
    note(M.SPORTS, r.sourcePorts);
    note(M.DPORTS, r.destinationPorts);
    note(M.PORTS, r.ports);
    note(M.FLAGS, r.tcpFlags);
    note(M.ICMP, r.icmpType);
    note(M.CT, r.ctState);
    note(M.MARK, r.mark);
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
    if ((has & M.SRC) !== 0) {
      const hit = p.family === 6
        ? this.#src6 !== null && prefix6(p.pkt!.data, p.srcOff, this.#src6, this.#srcLen)
        : ((p.src & this.#srcMask) >>> 0) === this.#srcAddr;
      if (hit === ((inv & M.SRC) !== 0)) return false;
    }
    if ((has & M.DST) !== 0) {
      const hit = p.family === 6
        ? this.#dst6 !== null && prefix6(p.pkt!.data, p.dstOff, this.#dst6, this.#dstLen)
        : ((p.dst & this.#dstMask) >>> 0) === this.#dstAddr;
      if (hit === ((inv & M.DST) !== 0)) return false;
    }
    if ((has & M.IN) !== 0 && ifMatch(this.#inIf!, p.inNic) === ((inv & M.IN) !== 0)) {
      return false;
    }
    if ((has & M.OUT) !== 0 && ifMatch(this.#outIf!, p.outNic) === ((inv & M.OUT) !== 0)) {
      return false;
    }
    if ((has & M.PROTO) !== 0 && (p.proto === this.#protocol) === ((inv & M.PROTO) !== 0)) {
      return false;
    }
    // Port, flag and type matches never match a later fragment (xt_tcpudp).
    if ((has & M.SPORTS) !== 0) {
      if (!p.hasPorts || inRanges(this.#sports!, p.sport) === ((inv & M.SPORTS) !== 0)) {
        return false;
      }
    }
    if ((has & M.DPORTS) !== 0) {
      if (!p.hasPorts || inRanges(this.#dports!, p.dport) === ((inv & M.DPORTS) !== 0)) {
        return false;
      }
    }
    if ((has & M.PORTS) !== 0) {
      if (
        !p.hasPorts ||
        (inRanges(this.#ports!, p.sport) || inRanges(this.#ports!, p.dport)) ===
          ((inv & M.PORTS) !== 0)
      ) return false;
    }
    if ((has & M.FLAGS) !== 0) {
      if (p.proto !== 6 || !p.hasPorts) return false;
      if (((p.tcpFlags & this.#flagMask) === this.#flagComp) === ((inv & M.FLAGS) !== 0)) {
        return false;
      }
    }
    if ((has & M.ICMP) !== 0) {
      if (p.icmpType < 0) return false;
      const hit = p.icmpType === this.#icmpType &&
        (this.#icmpCode < 0 || p.icmpCode === this.#icmpCode);
      if (hit === ((inv & M.ICMP) !== 0)) return false;
    }
    if ((has & M.CT) !== 0 && ((p.ctState & this.#ctMask) !== 0) === ((inv & M.CT) !== 0)) {
      return false;
    }
    if ((has & M.MARK) !== 0) {
      if ((((p.mark & this.#markMask) >>> 0) === this.#markValue) === ((inv & M.MARK) !== 0)) {
        return false;
      }
    }
    if (this.limit !== null && !this.limit.take()) return false;
    return true;
  }
}
