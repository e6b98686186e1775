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
import { matchSets, type SetRef } from "./sets.ts";
import type { Conn } from "./conntrack.ts";
import { isEditTarget, PacketEditor } from "./mangle.ts";
import { ConnLimiter, type MatchState, type RecentTable } from "./match_state.ts";

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
  /** A fragment (IPv4: MF or an offset; IPv6: a Fragment header); `id` is its Identification. */
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
  /** The packet's connection (null: untracked or invalid), set with `ctState`. */
  conn: Conn | null = null;
  mark = 0;
  /** What the stateful matches and `-m addrtype` use; set once by the firewall (null: those never match). */
  host: MatchState | null = null;
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
    const frag = v.getUint16(ipOff + 6);
    this.laterFragment = (frag & 0x1fff) !== 0;
    this.fragment = (frag & 0x3fff) !== 0;
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
  /** A target that edits the packet and goes on ({@link CompiledRule.editor}). */
  EDIT: 14,
  NETMAP: 15,
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
  /** For {@link TargetKind.EDIT}: the target, ready to apply. */
  readonly editor: PacketEditor | null;
  /** `-m set` matches, resolved to the firewall's sets by the table compiler (null: none). */
  sets: SetRef[] | null = null;
  readonly limit: TokenBucket | null;
  /** The matches beyond the flattened ones (iprange, addrtype, recent, ...), or null. */
  readonly #extra: ExtraMatches | null;
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
    this.#extra = hasExtraMatches(r) ? new ExtraMatches(r) : null;
    this.editor = isEditTarget(r.target) ? new PacketEditor(r.target) : null;
    this.kind = r.target === undefined
      ? TargetKind.NONE
      : this.editor !== null
      ? TargetKind.EDIT
      : TargetKind[r.target.kind as keyof typeof TargetKind];
    this.proto = r.protocol !== undefined && !r.protocol.invert ? r.protocol.value : -1;
  }

  /** Whether the packet matches every match of the rule (`-m limit` last: it takes a token). */
  matches(p: PacketInfo): boolean {
    const has = this.#has;
    if (has === 0) {
      const x = this.#extra;
      if (x !== null && !x.pure(p)) return false;
      if (this.sets !== null && !matchSets(this.sets, p)) return false;
      if (x !== null && !x.stateful(p)) return false;
      return this.limit === null || this.limit.take();
    }
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
      // Type 255 is iptables' "any".
      const hit = (this.#icmpType === 255 || p.icmpType === this.#icmpType) &&
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
    const x = this.#extra;
    if (x !== null && !x.pure(p)) return false;
    if (this.sets !== null && !matchSets(this.sets, p)) return false;
    if (x !== null && !x.stateful(p)) return false;
    if (this.limit !== null && !this.limit.take()) return false;
    return true;
  }
}

/** Whether a rule has a match {@link ExtraMatches} tests. */
function hasExtraMatches(r: Rule): boolean {
  return r.fragment !== undefined || r.ipRange !== undefined || r.addrType !== undefined ||
    r.pktType !== undefined || r.macSource !== undefined || r.length !== undefined ||
    r.connmark !== undefined || r.recent !== undefined || r.connlimit !== undefined ||
    r.hashlimit !== undefined || r.statistic !== undefined;
}

/** `a[aOff..aOff+16)` compared with `b` as unsigned numbers: <0, 0, >0. */
function compare6(a: Uint8Array, aOff: number, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) {
    const d = a[aOff + i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** The address at `d[off]` under a prefix length, as a map key. */
function key6(d: Uint8Array, off: number, prefixLen: number): string {
  let k = "";
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefixLen - 8 * i));
    k += HEX[d[off + i]! & ((0xff00 >> bits) & 0xff)];
  }
  return k;
}

/** The address at `d[off]` under a 16-byte netmask, as a map key. */
function keyMask6(d: Uint8Array, off: number, mask: Uint8Array): string {
  let k = "";
  for (let i = 0; i < 16; i++) k += HEX[d[off + i]! & mask[i]!];
  return k;
}

/** The packet's source or destination, masked to `prefixLen` bits, as a map key. */
function addressKey(p: PacketInfo, dst: boolean, prefixLen: number | undefined): string {
  if (p.family === 6) return key6(p.pkt!.data, dst ? p.dstOff : p.srcOff, prefixLen ?? 128);
  const mask = ipv4Mask(prefixLen ?? 32);
  return String(((dst ? p.dst : p.src) & mask) >>> 0);
}

/**
 * The matches of a rule beyond the flattened ones of {@link CompiledRule}:
 * the stateless ones ({@link pure}: `-f`, iprange, addrtype, pkttype, mac,
 * length, connmark) and the stateful ones ({@link stateful}: recent,
 * connlimit, hashlimit, statistic — in the order written, after every
 * stateless test, so a packet another match rejects leaves no trace).
 */
class ExtraMatches {
  readonly #r: Rule;
  #recent: RecentTable | null = null;
  readonly #connlimit: ConnLimiter | null;
  /**
   * `-m statistic --mode nth`: the kernel's counter. iptables loads it
   * with `every − 1 − packet` (libxt_statistic), so `--packet p` is the
   * 0-based index of the first packet matched.
   */
  #nth = 0;

  constructor(r: Rule) {
    this.#r = r;
    this.#connlimit = r.connlimit !== undefined ? new ConnLimiter() : null;
    if (r.statistic?.mode === "nth") this.#nth = r.statistic.every - 1 - r.statistic.packet;
  }

  /** The stateless extra matches. */
  pure(p: PacketInfo): boolean {
    const r = this.#r;
    // -f: IPv4 fragments after the first (the rule is IPv4).
    if (r.fragment !== undefined && (p.family === 4 && p.laterFragment) === r.fragment.invert) {
      return false;
    }
    if (r.ipRange !== undefined) {
      const { src, dst } = r.ipRange;
      if (src !== undefined && inRange(p, false, src.value) === src.invert) return false;
      if (dst !== undefined && inRange(p, true, dst.value) === dst.invert) return false;
    }
    if (r.addrType !== undefined) {
      const a = r.addrType, host = p.host;
      if (host === null) return false;
      const nic = a.limitIn ? p.inNic : a.limitOut ? p.outNic : null;
      const type = (dst: boolean) =>
        p.family === 6
          ? host.addrType6(p.pkt!.data, dst ? p.dstOff : p.srcOff, nic)
          : host.addrType4(dst ? p.dst : p.src, nic);
      if (a.src !== undefined && ((type(false) & a.src.value) !== 0) === a.src.invert) return false;
      if (a.dst !== undefined && ((type(true) & a.dst.value) !== 0) === a.dst.invert) return false;
    }
    if (r.pktType !== undefined && (packetType(p) === r.pktType.value) === r.pktType.invert) {
      return false;
    }
    if (r.macSource !== undefined) {
      // Only a packet that came in on a NIC has a source MAC (xt_mac).
      const pkt = p.pkt!, at = p.ipOff - 8;
      if (p.inNic === null || p.ipOff - 14 < pkt.start) return false;
      const m = r.macSource.value;
      let eq = true;
      for (let i = 0; i < 6 && eq; i++) eq = pkt.data[at + i] === m[i];
      if (eq === r.macSource.invert) return false;
    }
    if (r.length !== undefined) {
      const l = r.length;
      if ((p.len >= l.value.min && p.len <= l.value.max) === l.invert) return false;
    }
    if (r.connmark !== undefined) {
      // xt_connmark: no connection, no match (`!` or not).
      const c = p.conn;
      if (c === null) return false;
      const m = r.connmark;
      if ((((c.mark & m.value.mask) >>> 0) === m.value.value) === m.invert) return false;
    }
    return true;
  }

  /** The stateful extra matches, in the order written. */
  stateful(p: PacketInfo): boolean {
    const order = this.#r.stateful;
    if (order === undefined) return true;
    for (const m of order) {
      switch (m) {
        case "recent":
          if (!this.#recentMatch(p)) return false;
          break;
        case "connlimit":
          if (!this.#connlimitMatch(p)) return false;
          break;
        case "hashlimit":
          if (!this.#hashlimitMatch(p)) return false;
          break;
        case "statistic":
          if (!this.#statisticMatch(p)) return false;
          break;
      }
    }
    return true;
  }

  /** Linux xt_recent's recent_mt. */
  #recentMatch(p: PacketInfo): boolean {
    const m = this.#r.recent!, host = p.host;
    if (host === null) return false;
    const t = this.#recent ??= host.recent(m.name);
    t.ensureStamps(m.hitcount);
    const dst = m.side === "dst";
    let key: string;
    const mask = m.mask;
    if (mask === undefined) key = addressKey(p, dst, undefined);
    else if (mask.family === 6) {
      if (p.family !== 6) return false;
      key = keyMask6(p.pkt!.data, dst ? p.dstOff : p.srcOff, mask.address);
    } else {
      if (p.family !== 4) return false;
      key = String(((dst ? p.dst : p.src) & mask.address) >>> 0);
    }
    key = `${p.family}:${key}`;
    const now = host.clock.now();
    const ttl = p.ttl;
    let ret = m.invert;
    const e = t.lookup(key, m.rttl ? ttl : -1);
    if (e === undefined) {
      if (m.mode !== "set") return ret;
      t.init(key, ttl, now);
      return !ret;
    }
    if (m.mode === "set") ret = !ret;
    else if (m.mode === "remove") {
      t.remove(e);
      ret = !ret;
    } else {
      const time = now - m.seconds * 1000;
      let hits = 0;
      for (const stamp of e.stamps) {
        if (m.seconds !== 0 && stamp < time) continue;
        if (m.hitcount === 0 || ++hits >= m.hitcount) {
          ret = !ret;
          break;
        }
      }
      if (m.reap) t.reap(time);
    }
    if (m.mode === "set" || (m.mode === "update" && ret)) {
      t.update(e, now);
      e.ttl = ttl;
    }
    return ret;
  }

  /** Linux xt_connlimit: count the connections of the packet's (masked) address. */
  #connlimitMatch(p: PacketInfo): boolean {
    const m = this.#r.connlimit!;
    const key = `${p.family}:${addressKey(p, m.side === "dst", m.prefixLen)}`;
    const n = this.#connlimit!.count(key, p.conn);
    return (m.above ? n > m.limit : n <= m.limit) !== m.invert;
  }

  /** Linux xt_hashlimit: the bucket of the packet's key. */
  #hashlimitMatch(p: PacketInfo): boolean {
    const m = this.#r.hashlimit!, host = p.host;
    if (host === null) return false;
    const t = host.hashlimit(p.family, m.name, m);
    let key = "";
    for (const part of m.mode) {
      if (part === "srcip") key += addressKey(p, false, m.srcMask) + "|";
      else if (part === "dstip") key += addressKey(p, true, m.dstMask) + "|";
      else if (part === "srcport") key += (p.hasPorts ? p.sport : 0) + "|";
      else key += (p.hasPorts ? p.dport : 0) + "|";
    }
    return t.take(key) !== m.above;
  }

  /** Linux xt_statistic. */
  #statisticMatch(p: PacketInfo): boolean {
    const m = this.#r.statistic!;
    if (m.mode === "random") {
      const host = p.host;
      if (host === null) return false;
      // (prandom & 0x7fffffff) < probability * 2^31, as the kernel compares.
      const hit = (host.random.uint32() & 0x7fffffff) < Math.round(m.probability * 0x80000000);
      return hit !== m.invert;
    }
    // The counter runs 0 .. every-1 and matches when it wraps to 0.
    this.#nth = this.#nth === m.every - 1 ? 0 : this.#nth + 1;
    return (this.#nth === 0) !== m.invert;
  }
}

/** `-m iprange`: whether the packet's address is within [from, to] (another family's is not). */
function inRange(
  p: PacketInfo,
  dst: boolean,
  r: {
    from: { family: 4 | 6; address: number | Uint8Array };
    to: { address: number | Uint8Array };
  },
): boolean {
  if (r.from.family !== p.family) return false;
  if (p.family === 4) {
    const a = (dst ? p.dst : p.src) >>> 0;
    return a >= (r.from.address as number) >>> 0 && a <= (r.to.address as number) >>> 0;
  }
  const d = p.pkt!.data, off = dst ? p.dstOff : p.srcOff;
  return compare6(d, off, r.from.address as Uint8Array) >= 0 &&
    compare6(d, off, r.to.address as Uint8Array) <= 0;
}

/**
 * `-m pkttype`: the kind of the link-layer destination of a packet that
 * came in on a NIC; for one without (locally generated, or past
 * FORWARD), the kind of its IP destination.
 */
function packetType(p: PacketInfo): "unicast" | "broadcast" | "multicast" {
  const pkt = p.pkt!, d = pkt.data;
  if (p.inNic !== null && p.ipOff - 14 >= pkt.start) {
    const at = p.ipOff - 14;
    if ((d[at]! & 1) === 0) return "unicast";
    let all = true;
    for (let i = 0; i < 6 && all; i++) all = d[at + i] === 0xff;
    return all ? "broadcast" : "multicast";
  }
  if (p.family === 6) return d[p.dstOff] === 0xff ? "multicast" : "unicast";
  const a = p.dst >>> 0;
  if ((a >>> 28) === 0xe) return "multicast";
  if (a === 0xffffffff) return "broadcast";
  const host = p.host;
  if (host !== null && host.addrType4(a, null) === 8) return "broadcast";
  return "unicast";
}
