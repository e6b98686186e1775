/**
 * The firewall: iptables-like `raw`, `nat` and `filter` tables run at the
 * IPv4 layer's hooks where netfilter runs them, on top of connection
 * tracking and NAT; and ip6tables-like `raw` and `filter` tables with
 * connection tracking (no NAT) at the IPv6 layer's hooks.
 *
 * | hook        | order                                                         |
 * | ----------- | ------------------------------------------------------------- |
 * | PREROUTING  | raw → conntrack → nat (DNAT, de-SNAT of replies)              |
 * | INPUT       | filter → nat (SNAT) → confirm                                 |
 * | FORWARD     | filter                                                        |
 * | OUTPUT      | raw → conntrack → nat (DNAT) → filter                         |
 * | POSTROUTING | nat (SNAT, MASQUERADE, de-DNAT of replies) → confirm          |
 *
 * The connection of a packet is carried from hook to hook in a small ring
 * of per-packet records keyed by the buffer (Linux keeps it in
 * skb->_nfct); a hook that finds no record (loopback, reassembled or
 * fragmented packets) looks the connection up afresh.
 *
 * IPv6 runs raw → conntrack in PREROUTING and OUTPUT, filter in INPUT,
 * FORWARD and OUTPUT, and confirms in INPUT and POSTROUTING. Fragments are
 * not reassembled first (Linux's nf_defrag_ipv6 does): a first fragment is
 * tracked by its ports, later ones are UNTRACKED. NDP and MLD messages are
 * UNTRACKED, ICMPv6 errors about a tracked connection RELATED.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Nic } from "../nic.ts";
import type { Clock } from "../clock.ts";
import type { Random } from "../random.ts";
import type { Ipv4 } from "../ipv4/ipv4.ts";
import type { Ipv6 } from "../ipv6/ipv6.ts";
import type { Ipv4Hook } from "../ipv4/ipv4.ts";
import { sendTcpReset } from "../ip/tcp_reset.ts";
import { icmpv4IsError } from "../ipv4/icmp.ts";
import { Ipv4Packet } from "../wire/ipv4.ts";
import { TcpPacket } from "../wire/tcp.ts";
import { formatIpv4, formatIpv6 } from "../wire/ip_address.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import {
  type Conn,
  Conntrack,
  CT_TIMEOUTS,
  CtStatus,
  TCP_CT_STATE_NAMES,
  TcpVerdict,
} from "./conntrack.ts";
import { ICMP_QUERY_REPLY, Manip, natIcmpError, natPacket, needsManip, setupNat } from "./nat.ts";
import { CompiledRule, CtBit, PacketInfo, TargetKind } from "./match.ts";
import {
  type CompiledChain,
  type CompiledTable,
  compileTable,
  dumpTables,
  Verdict,
} from "./tables.ts";
import type { FirewallSpec, FirewallTableName, RejectReason, Target } from "./rule_types.ts";
import {
  FragmentStates,
  ICMPV6_QUERY_REPLY,
  icmpv6Untracked,
  Ipv6AddressIds,
  REJECT6_CODES,
} from "./ipv6_track.ts";

const log = getLogger(["tapir", "firewall"]);

/** Firewall counters (conntrack's are in {@link Conntrack.stats}). */
export interface FirewallStats {
  /** Packets dropped by a DROP or REJECT rule or a DROP policy. */
  dropped: number;
  /** ICMP errors and TCP resets REJECT sent (or tried to: the ICMP rate limit applies). */
  rejectsSent: number;
  /** New connections dropped: no free NAT port (or identifier) in the range. */
  natPortsExhausted: number;
  /** New connections dropped: MASQUERADE found no address on the egress NIC. */
  masqueradeNoAddress: number;
  /** Fragments after the first, passed untracked (they carry no ports). */
  laterFragmentsUntracked: number;
  /** Lines logged by LOG rules. */
  logged: number;
  /** Trace lines emitted. */
  traced: number;
}

/** Per-packet state carried between hooks (Linux skb->_nfct and skb->mark). */
class PacketRecord {
  pkt: PacketBuffer | null = null;
  ipOff = 0;
  src = 0;
  dst = 0;
  conn: Conn | null = null;
  dir: 0 | 1 = 0;
  ct = 0;
  mark = 0;
  notrack = false;
  traced = false;
}

const RING = 16;

/** The builtin chains that have rules or a DROP policy (null: nothing to run). */
interface ActiveChains {
  rawPre: CompiledChain | null;
  rawOut: CompiledChain | null;
  natPre: CompiledChain | null;
  natIn: CompiledChain | null;
  natOut: CompiledChain | null;
  natPost: CompiledChain | null;
  filterIn: CompiledChain | null;
  filterFwd: CompiledChain | null;
  filterOut: CompiledChain | null;
}

const REJECT_CODES: Partial<Record<RejectReason, number>> = {
  "net-unreachable": 0,
  "host-unreachable": 1,
  "proto-unreachable": 2,
  "port-unreachable": 3,
  "net-prohibited": 9,
  "host-prohibited": 10,
  "admin-prohibited": 13,
};

const PROTO_NAMES: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6" };

/** The IPv6 builtin chains that have rules or a DROP policy. */
interface ActiveChains6 {
  rawPre: CompiledChain | null;
  rawOut: CompiledChain | null;
  filterIn: CompiledChain | null;
  filterFwd: CompiledChain | null;
  filterOut: CompiledChain | null;
}

/**
 * The firewall of one stack.
 *
 * @example
 * ```ts
 * import { Firewall } from "./firewall.ts";
 * import { Stack } from "../stack.ts";
 * import { ManualClock } from "../clock.ts";
 * const stack = new Stack({ clock: new ManualClock() });
 * const empty = () => ({ table: "filter" as const, family: 0 as const, defined: false, chains: new Map() });
 * const scope = () => ({ filter: empty(), nat: { ...empty(), table: "nat" as const }, raw: { ...empty(), table: "raw" as const } });
 * const fw = new Firewall(stack, { conntrack: { max: 1024 }, shared: scope(), ipv4: scope(), ipv6: scope() });
 * fw.install();
 * console.assert(fw.dump().includes("*filter"));
 * ```
 */
export class Firewall {
  /** The connection table. */
  readonly conntrack: Conntrack;
  readonly stats: FirewallStats = {
    dropped: 0,
    rejectsSent: 0,
    natPortsExhausted: 0,
    masqueradeNoAddress: 0,
    laterFragmentsUntracked: 0,
    logged: 0,
    traced: 0,
  };
  /** Compiled IPv4 tables (replaced whole by {@link reconfigure}). */
  raw!: CompiledTable;
  nat!: CompiledTable;
  filter!: CompiledTable;
  /** IPv6 connections (addresses by {@link Ipv6AddressIds} id). */
  readonly conntrack6: Conntrack;
  /** Compiled IPv6 tables (no nat: IPv6 NAT is not supported). */
  raw6!: CompiledTable;
  filter6!: CompiledTable;
  /** True when the IPv6 tables have something to do: {@link install} sets the IPv6 hooks. */
  ipv6Active = false;
  /** Also receives every trace line (tests, `tapir show`). */
  traceSink: ((line: string) => void) | null = null;
  /** Also receives every LOG line. */
  logSink: ((line: string, level: number) => void) | null = null;
  readonly #stack: FirewallHost;
  readonly #onAddressRemoved = (nic: Nic, address: number) =>
    void this.addressRemoved(nic, address);
  #trace: CompiledRule | null = null;
  #trace6: CompiledRule | null = null;
  readonly #p = new PacketInfo();
  readonly #p6 = new PacketInfo();
  readonly #inner6 = new PacketInfo();
  readonly #ids6 = new Ipv6AddressIds();
  readonly #frags6 = new FragmentStates();
  /** The last IPv6 connection made and not yet confirmed (its address ids are released if it never is). */
  #pending6: Conn | null = null;
  #chains6!: ActiveChains6;
  readonly #ring: PacketRecord[] = [];
  #cursor = 0;
  readonly #ip = new Ipv4Packet();
  readonly #tcp = new TcpPacket();
  #reject: CompiledRule | null = null;
  #natRule: CompiledRule | null = null;
  #tracing = false;
  #chains!: ActiveChains;
  #installed = false;

  /** @param stack the stack whose IPv4 layer it filters; @param spec tables and settings */
  constructor(stack: FirewallHost, spec: FirewallSpec) {
    this.#stack = stack;
    this.conntrack = new Conntrack(stack.clock, spec.conntrack.max);
    for (let i = 0; i < RING; i++) this.#ring.push(new PacketRecord());
    this.conntrack6 = new Conntrack(stack.clock, spec.conntrack.max);
    this.conntrack6.onRemove = (c) => {
      this.#ids6.release(c.orig.src);
      this.#ids6.release(c.orig.dst);
    };
    this.#compile(spec);
  }

  /** Compile `spec`'s tables for both families and point the hooks' chain shortcuts at them. */
  #compile(spec: FirewallSpec): void {
    const clock = this.#stack.clock;
    const compile = (n: FirewallTableName) =>
      compileTable(n, [spec.shared[n], spec.ipv4[n]], clock);
    this.raw = compile("raw");
    this.nat = compile("nat");
    this.filter = compile("filter");
    this.#trace = spec.trace !== undefined && spec.trace.family !== 6
      ? new CompiledRule(spec.trace, clock)
      : null;
    this.#chains = {
      rawPre: this.raw.active("prerouting"),
      rawOut: this.raw.active("output"),
      natPre: this.nat.active("prerouting"),
      natIn: this.nat.active("input"),
      natOut: this.nat.active("output"),
      natPost: this.nat.active("postrouting"),
      filterIn: this.filter.active("input"),
      filterFwd: this.filter.active("forward"),
      filterOut: this.filter.active("output"),
    };
    const compile6 = (n: FirewallTableName) =>
      compileTable(n, [spec.shared[n], spec.ipv6[n]], clock, 6);
    this.raw6 = compile6("raw");
    this.filter6 = compile6("filter");
    this.#trace6 = spec.trace !== undefined && spec.trace.family !== 4
      ? new CompiledRule(spec.trace, clock)
      : null;
    this.#chains6 = {
      rawPre: this.raw6.active("prerouting"),
      rawOut: this.raw6.active("output"),
      filterIn: this.filter6.active("input"),
      filterFwd: this.filter6.active("forward"),
      filterOut: this.filter6.active("output"),
    };
    this.ipv6Active = Object.values(this.#chains6).some((c) => c !== null);
  }

  /**
   * Swap in new tables, as `iptables-restore` does: one step between two
   * packets, so no packet sees half of each. Connections and NAT bindings
   * stay (they live in conntrack, not in the rules); a rule that is in both
   * the old and the new tables (same table, chain and text) keeps its
   * packet and byte counters, and so does each builtin chain's policy.
   * The conntrack size (`spec.conntrack.max`) is fixed at construction.
   */
  reconfigure(spec: FirewallSpec): void {
    const old = [this.raw, this.nat, this.filter, this.raw6, this.filter6];
    this.#compile(spec);
    carryCounters(old, [this.raw, this.nat, this.filter, this.raw6, this.filter6]);
    if (this.#installed) this.install();
  }

  /** Set the IPv4 layer's five hooks to this firewall. */
  install(): void {
    this.#installed = true;
    // MASQUERADE follows the egress address: its connections go with it.
    this.#stack.ipv4.addressRemovedListeners.add(this.#onAddressRemoved);
    const h = this.#stack.ipv4.hooks;
    h.prerouting = this.prerouting;
    h.input = this.input;
    h.forward = this.forward;
    h.output = this.output;
    h.postrouting = this.postrouting;
    const h6 = this.#stack.ipv6.hooks;
    if (!this.ipv6Active) {
      if (h6.prerouting === this.prerouting6) {
        h6.prerouting =
          h6.input =
          h6.forward =
          h6.output =
          h6.postrouting =
            null;
      }
      return;
    }
    h6.prerouting = this.prerouting6;
    h6.input = this.input6;
    h6.forward = this.forward6;
    h6.output = this.output6;
    h6.postrouting = this.postrouting6;
  }

  /** Clear the hooks and forget every connection. */
  close(): void {
    this.#stack.ipv4.addressRemovedListeners.delete(this.#onAddressRemoved);
    const h = this.#stack.ipv4.hooks;
    if (h.prerouting === this.prerouting) {
      h.prerouting =
        h.input =
        h.forward =
        h.output =
        h.postrouting =
          null;
    }
    const h6 = this.#stack.ipv6.hooks;
    if (h6.prerouting === this.prerouting6) {
      h6.prerouting =
        h6.input =
        h6.forward =
        h6.output =
        h6.postrouting =
          null;
    }
    this.conntrack.clear();
    this.conntrack6.clear();
    this.#frags6.clear();
  }

  /**
   * iptables-save -c style dump of the IPv4 tables with their counters,
   * then (when IPv6 filtering is active) ip6tables-save -c of the IPv6 ones.
   */
  dump(): string {
    const v4 = dumpTables([this.raw, this.nat, this.filter]);
    return this.ipv6Active ? v4 + dumpTables([this.raw6, this.filter6], 6) : v4;
  }

  /**
   * Every tracked connection of both families, as `conntrack -L` lists
   * them: protocol, state, seconds left, both tuples (the reply tuple shows
   * the NAT), flags and counters.
   */
  connections(): ConnectionInfo[] {
    const now = this.#stack.clock.now();
    const out: ConnectionInfo[] = [];
    const protoName = (c: Conn) => PROTO_NAMES[c.proto]?.toLowerCase() ?? String(c.proto);
    const row = (c: Conn, family: 4 | 6, addr: (x: number) => string): ConnectionInfo => {
      const tuple = (t: Conn["orig"]) => ({
        src: addr(t.src),
        dst: addr(t.dst),
        ...(c.proto === 6 || c.proto === 17 ? { sport: t.sport, dport: t.dport } : {}),
      });
      return {
        family,
        proto: protoName(c),
        protoNumber: c.proto,
        state: c.proto === 6 ? (TCP_CT_STATE_NAMES[c.tcpState] ?? "NONE") : null,
        timeout: Math.max(0, Math.ceil((c.expires - now) / 1000)),
        orig: tuple(c.orig),
        reply: tuple(c.reply),
        seenReply: c.has(CtStatus.SEEN_REPLY),
        assured: c.has(CtStatus.ASSURED),
        srcNat: c.has(CtStatus.SRC_NAT),
        dstNat: c.has(CtStatus.DST_NAT),
        packets: [...c.packets],
        bytes: [...c.bytes],
      };
    };
    for (const c of this.conntrack.entries()) out.push(row(c, 4, formatIpv4));
    for (const c of this.conntrack6.entries()) {
      out.push(row(c, 6, (id) => {
        const a = this.#ids6.address(id);
        return a === undefined ? "?" : formatIpv6(a);
      }));
    }
    return out;
  }

  /**
   * An address left `nic`: forget the connections MASQUERADE mapped to it
   * (Linux masq_inet_event). An installed firewall hears of it from the
   * IPv4 layer's address listeners.
   *
   * @returns how many connections were removed
   */
  addressRemoved(nic: Nic, address: number): number {
    const n = this.conntrack.removeWhere((c) => c.masqNic === nic.id && c.reply.dst === address);
    this.conntrack.stats.masqueradeFlushed += n;
    return n;
  }

  // ------------------------------------------------------------ hooks

  /** PREROUTING hook. */
  readonly prerouting: Ipv4Hook = (pkt, ipOff, inNic) => {
    const p = this.#p;
    p.load(pkt, ipOff, inNic, null);
    const rec = this.#newRecord(pkt, ipOff, p);
    const c = this.#chains;
    if (c.rawPre !== null && this.#runBuiltin(this.raw, c.rawPre, p, rec) === Verdict.DROP) {
      return this.#drop(pkt, ipOff, inNic, p);
    }
    this.#track(rec, p);
    if (!this.#natStep(rec, p, Manip.DST, c.natPre)) return false;
    this.#save(rec, p);
    return true;
  };

  /** INPUT hook (local delivery). */
  readonly input: Ipv4Hook = (pkt, ipOff, inNic) => {
    const p = this.#p;
    p.load(pkt, ipOff, inNic, null);
    const rec = this.#recordFor(pkt, ipOff, p);
    const c = this.#chains;
    if (c.filterIn !== null && this.#runBuiltin(this.filter, c.filterIn, p, rec) === Verdict.DROP) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, inNic, p);
    }
    const ok = this.#natStep(rec, p, Manip.SRC, c.natIn) && this.#confirm(rec);
    rec.pkt = null;
    return ok;
  };

  /** FORWARD hook. */
  readonly forward: Ipv4Hook = (pkt, ipOff, inNic, outNic) => {
    const p = this.#p;
    p.load(pkt, ipOff, inNic, outNic);
    const rec = this.#recordFor(pkt, ipOff, p);
    const c = this.#chains;
    if (
      c.filterFwd !== null && this.#runBuiltin(this.filter, c.filterFwd, p, rec) === Verdict.DROP
    ) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, inNic, p);
    }
    return true;
  };

  /** OUTPUT hook (locally generated packets, after routing). */
  readonly output: Ipv4Hook = (pkt, ipOff, _inNic, outNic) => {
    const p = this.#p;
    p.load(pkt, ipOff, null, outNic);
    const rec = this.#newRecord(pkt, ipOff, p);
    const c = this.#chains;
    if (c.rawOut !== null && this.#runBuiltin(this.raw, c.rawOut, p, rec) === Verdict.DROP) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, null, p);
    }
    this.#track(rec, p);
    if (!this.#natStep(rec, p, Manip.DST, c.natOut)) {
      rec.pkt = null;
      return false;
    }
    if (
      c.filterOut !== null && this.#runBuiltin(this.filter, c.filterOut, p, rec) === Verdict.DROP
    ) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, null, p);
    }
    this.#save(rec, p);
    return true;
  };

  /** POSTROUTING hook. */
  readonly postrouting: Ipv4Hook = (pkt, ipOff, _inNic, outNic) => {
    const p = this.#p;
    p.load(pkt, ipOff, null, outNic);
    const rec = this.#recordFor(pkt, ipOff, p);
    const ok = this.#natStep(rec, p, Manip.SRC, this.#chains.natPost) && this.#confirm(rec);
    rec.pkt = null;
    return ok;
  };

  // ------------------------------------------------------------ IPv6 hooks

  /** IPv6 PREROUTING hook: raw, then conntrack. */
  readonly prerouting6: Ipv4Hook = (pkt, ipOff, inNic) => {
    const p = this.#p6;
    p.load6(pkt, ipOff, inNic, null);
    const rec = this.#newRecord6(pkt, ipOff, p);
    const c = this.#chains6;
    if (c.rawPre !== null && this.#runBuiltin(this.raw6, c.rawPre, p, rec) === Verdict.DROP) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, inNic, p);
    }
    this.#track6(rec, p);
    return true;
  };

  /** IPv6 INPUT hook: filter, then confirm. */
  readonly input6: Ipv4Hook = (pkt, ipOff, inNic) => {
    const p = this.#p6;
    p.load6(pkt, ipOff, inNic, null);
    const rec = this.#recordFor6(pkt, ipOff, p);
    rec.pkt = null;
    const c = this.#chains6;
    if (
      c.filterIn !== null && this.#runBuiltin(this.filter6, c.filterIn, p, rec) === Verdict.DROP
    ) {
      return this.#drop(pkt, ipOff, inNic, p);
    }
    return this.#confirm6(rec);
  };

  /** IPv6 FORWARD hook: filter. */
  readonly forward6: Ipv4Hook = (pkt, ipOff, inNic, outNic) => {
    const p = this.#p6;
    p.load6(pkt, ipOff, inNic, outNic);
    const rec = this.#recordFor6(pkt, ipOff, p);
    const c = this.#chains6;
    if (
      c.filterFwd !== null && this.#runBuiltin(this.filter6, c.filterFwd, p, rec) === Verdict.DROP
    ) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, inNic, p);
    }
    return true;
  };

  /** IPv6 OUTPUT hook: raw, conntrack, filter. */
  readonly output6: Ipv4Hook = (pkt, ipOff, _inNic, outNic) => {
    const p = this.#p6;
    p.load6(pkt, ipOff, null, outNic);
    const rec = this.#newRecord6(pkt, ipOff, p);
    const c = this.#chains6;
    if (c.rawOut !== null && this.#runBuiltin(this.raw6, c.rawOut, p, rec) === Verdict.DROP) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, null, p);
    }
    this.#track6(rec, p);
    if (
      c.filterOut !== null && this.#runBuiltin(this.filter6, c.filterOut, p, rec) === Verdict.DROP
    ) {
      rec.pkt = null;
      return this.#drop(pkt, ipOff, null, p);
    }
    return true;
  };

  /** IPv6 POSTROUTING hook: confirm. */
  readonly postrouting6: Ipv4Hook = (pkt, ipOff, _inNic, outNic) => {
    const p = this.#p6;
    p.load6(pkt, ipOff, null, outNic);
    const rec = this.#recordFor6(pkt, ipOff, p);
    rec.pkt = null;
    return this.#confirm6(rec);
  };

  // ------------------------------------------------------------ records

  #newRecord(pkt: PacketBuffer, ipOff: number, p: PacketInfo): PacketRecord {
    this.#cursor = (this.#cursor + 1) % RING;
    const rec = this.#ring[this.#cursor]!;
    rec.pkt = pkt;
    rec.ipOff = ipOff;
    rec.conn = null;
    rec.dir = 0;
    rec.ct = 0;
    rec.mark = 0;
    rec.notrack = false;
    rec.traced = this.#trace !== null && this.#trace.matches(p);
    this.#tracing = rec.traced;
    p.mark = 0;
    return rec;
  }

  /** The record a previous hook left for this packet, or a fresh one (tracked now). */
  #recordFor(pkt: PacketBuffer, ipOff: number, p: PacketInfo): PacketRecord {
    for (let i = 0; i < RING; i++) {
      const rec = this.#ring[(this.#cursor - i + RING) % RING]!;
      if (rec.pkt === pkt && rec.ipOff === ipOff && rec.src === p.src && rec.dst === p.dst) {
        p.ctState = rec.ct;
        p.mark = rec.mark;
        this.#tracing = rec.traced;
        return rec;
      }
    }
    const rec = this.#newRecord(pkt, ipOff, p);
    this.#track(rec, p);
    this.#save(rec, p);
    return rec;
  }

  /** A fingerprint of an IPv6 packet (addresses' last words, payload length, next header). */
  #fingerprint6(p: PacketInfo): number {
    const v = p.pkt!.view;
    return (v.getUint32(p.srcOff + 12) ^ Math.imul(v.getUint32(p.dstOff + 12), 31) ^
      (v.getUint32(p.ipOff + 4) >>> 8)) >>> 0;
  }

  #newRecord6(pkt: PacketBuffer, ipOff: number, p: PacketInfo): PacketRecord {
    this.#cursor = (this.#cursor + 1) % RING;
    const rec = this.#ring[this.#cursor]!;
    rec.pkt = pkt;
    rec.ipOff = ipOff;
    rec.src = this.#fingerprint6(p);
    rec.dst = -1; // never equal to an IPv4 record's destination
    rec.conn = null;
    rec.dir = 0;
    rec.ct = 0;
    rec.mark = 0;
    rec.notrack = false;
    rec.traced = this.#trace6 !== null && this.#trace6.matches(p);
    this.#tracing = rec.traced;
    p.mark = 0;
    return rec;
  }

  /** The record an earlier IPv6 hook left for this packet, or a fresh one (tracked now). */
  #recordFor6(pkt: PacketBuffer, ipOff: number, p: PacketInfo): PacketRecord {
    const fp = this.#fingerprint6(p);
    for (let i = 0; i < RING; i++) {
      const rec = this.#ring[(this.#cursor - i + RING) % RING]!;
      if (rec.pkt === pkt && rec.ipOff === ipOff && rec.dst === -1 && rec.src === fp) {
        p.ctState = rec.ct;
        p.mark = rec.mark;
        this.#tracing = rec.traced;
        return rec;
      }
    }
    const rec = this.#newRecord6(pkt, ipOff, p);
    this.#track6(rec, p);
    return rec;
  }

  #save(rec: PacketRecord, p: PacketInfo): void {
    rec.src = p.src;
    rec.dst = p.dst;
    rec.mark = p.mark;
  }

  // ------------------------------------------------------------ conntrack

  /** Find or create the packet's connection; set its ctstate. */
  #track(rec: PacketRecord, p: PacketInfo): void {
    const ct = this.conntrack;
    rec.conn = null;
    rec.dir = 0;
    if (rec.notrack) return this.#setCt(rec, p, CtBit.UNTRACKED);
    if (p.laterFragment) {
      this.stats.laterFragmentsUntracked++;
      return this.#setCt(rec, p, CtBit.UNTRACKED);
    }
    const pkt = p.pkt!;
    const proto = p.proto;
    let key = proto, sport = 0, dport = 0, replyKey = proto;
    if (proto === 6 || proto === 17) {
      if (!p.hasPorts) return this.#invalid(rec, p);
      sport = p.sport;
      dport = p.dport;
    } else if (proto === 1) {
      if (p.icmpType < 0) return this.#invalid(rec, p);
      if (icmpv4IsError(p.icmpType)) return this.#trackIcmpError(rec, p);
      const reply = ICMP_QUERY_REPLY[p.icmpType];
      if (reply === undefined) return this.#invalid(rec, p);
      key = 1 | (p.icmpType << 8);
      replyKey = 1 | (reply << 8);
      sport = dport = pkt.view.getUint16(p.l4Off + 4);
    }
    const t = ct.lookup(key, p.src, p.dst, sport, dport);
    if (t !== null) {
      const c = t.conn;
      const dir = t.dir;
      if (dir === 1) c.status |= CtStatus.SEEN_REPLY;
      c.packets[dir]++;
      c.bytes[dir] += p.len;
      if (proto === 6) {
        if (ct.tcpUpdate(c, dir, p.tcpFlags) === TcpVerdict.INVALID) return this.#invalid(rec, p);
      } else if (proto === 17) {
        if (c.has(CtStatus.SEEN_REPLY)) {
          c.status |= CtStatus.ASSURED;
          ct.refresh(c, CT_TIMEOUTS.udpReplied);
        } else ct.refresh(c, CT_TIMEOUTS.udpUnreplied);
      } else ct.refresh(c, proto === 1 ? CT_TIMEOUTS.icmp : CT_TIMEOUTS.generic);
      rec.conn = c;
      rec.dir = dir;
      const state = dir === 1 || c.has(CtStatus.SEEN_REPLY) ? CtBit.ESTABLISHED : CtBit.NEW;
      return this.#setCt(rec, p, state | this.#natBits(c));
    }
    // A first packet: a new, unconfirmed connection.
    let timeout: number = proto === 17
      ? CT_TIMEOUTS.udpUnreplied
      : proto === 1
      ? CT_TIMEOUTS.icmp
      : CT_TIMEOUTS.generic;
    let tcpState = 0;
    if (proto === 6) {
      tcpState = Conntrack.tcpNewState(p.tcpFlags);
      if (tcpState < 0) return this.#invalid(rec, p);
      timeout = CT_TIMEOUTS.tcp[tcpState]!;
    } else if (proto === 1) {
      // Only requests (8, 13, 15, 17) start a connection; a reply without one is invalid.
      const t = p.icmpType;
      if (t !== 8 && t !== 13 && t !== 15 && t !== 17) return this.#invalid(rec, p);
    }
    const c = ct.create(key, p.src, p.dst, sport, dport, replyKey);
    c.tcpState = tcpState;
    c.expires = ct.clock.now() + timeout;
    c.packets[0] = 1;
    c.bytes[0] = p.len;
    rec.conn = c;
    this.#setCt(rec, p, CtBit.NEW);
  }

  /** RELATED when an ICMP error quotes a packet of a tracked connection (Linux icmp_error_message). */
  #trackIcmpError(rec: PacketRecord, p: PacketInfo): void {
    const pkt = p.pkt!;
    const v = pkt.view, d = pkt.data;
    const inner = p.l4Off + 8;
    if (inner + 20 > pkt.end || (d[inner]! >> 4) !== 4) return this.#invalid(rec, p);
    if ((v.getUint16(inner + 6) & 0x1fff) !== 0) return this.#invalid(rec, p);
    const il4 = inner + ((d[inner]! & 0x0f) << 2);
    const iproto = d[inner + 9]!;
    const isrc = v.getUint32(inner + 12), idst = v.getUint32(inner + 16);
    let key = iproto, sport = 0, dport = 0;
    if (iproto === 6 || iproto === 17) {
      if (il4 + 4 > pkt.end) return this.#invalid(rec, p);
      sport = v.getUint16(il4);
      dport = v.getUint16(il4 + 2);
    } else if (iproto === 1) {
      if (il4 + 8 > pkt.end) return this.#invalid(rec, p);
      const reply = ICMP_QUERY_REPLY[d[il4]!];
      if (reply === undefined) return this.#invalid(rec, p);
      key = 1 | (reply << 8);
      sport = dport = v.getUint16(il4 + 4);
    }
    // The error travels against the quoted packet: look up its inverse.
    const t = this.conntrack.lookup(key, idst, isrc, dport, sport);
    if (t === null) return this.#invalid(rec, p);
    rec.conn = t.conn;
    rec.dir = t.dir;
    this.#setCt(rec, p, CtBit.RELATED | this.#natBits(t.conn));
  }

  #natBits(c: Conn): number {
    return (c.has(CtStatus.SRC_NAT) ? CtBit.SNAT : 0) | (c.has(CtStatus.DST_NAT) ? CtBit.DNAT : 0);
  }

  /** Find or create an IPv6 packet's connection; set its ctstate. */
  #track6(rec: PacketRecord, p: PacketInfo): void {
    rec.conn = null;
    rec.dir = 0;
    if (rec.notrack) return this.#setCt(rec, p, CtBit.UNTRACKED);
    if (p.laterFragment) {
      const f = this.#frags6;
      if (f.find(p.pkt!.data, p.ipOff, p.id)) {
        rec.conn = f.conn;
        rec.dir = f.dir;
        return this.#setCt(rec, p, f.ct);
      }
      this.stats.laterFragmentsUntracked++;
      return this.#setCt(rec, p, CtBit.UNTRACKED);
    }
    this.#track6Packet(rec, p);
    if (p.fragment) this.#frags6.put(p.pkt!.data, p.ipOff, p.id, rec.conn, rec.dir, rec.ct);
  }

  #track6Packet(rec: PacketRecord, p: PacketInfo): void {
    const ct = this.conntrack6;
    const pkt = p.pkt!;
    const proto = p.proto;
    let key = proto, sport = 0, dport = 0, replyKey = proto;
    if (proto === 6 || proto === 17) {
      if (!p.hasPorts) return this.#invalid(rec, p);
      sport = p.sport;
      dport = p.dport;
    } else if (proto === 58) {
      const type = p.icmpType;
      if (type < 0) return this.#invalid(rec, p);
      // RFC 4443 §2.1: types below 128 are errors.
      if (type < 128) return this.#trackIcmpv6Error(rec, p);
      if (icmpv6Untracked(type)) return this.#setCt(rec, p, CtBit.UNTRACKED);
      const reply = ICMPV6_QUERY_REPLY[type];
      if (reply === undefined || p.l4Off + 8 > pkt.end) return this.#invalid(rec, p);
      key = 58 | (type << 8);
      replyKey = 58 | (reply << 8);
      sport = dport = pkt.view.getUint16(p.l4Off + 4);
    } else if (proto === 59) {
      // No upper layer (or a header chain past the end): nothing to track by.
      return this.#invalid(rec, p);
    }
    const ids = this.#ids6, d = pkt.data;
    const srcId = ids.find(d, p.srcOff), dstId = ids.find(d, p.dstOff);
    const t = srcId === 0 || dstId === 0 ? null : ct.lookup(key, srcId, dstId, sport, dport);
    if (t !== null) {
      const c = t.conn;
      const dir = t.dir;
      if (dir === 1) c.status |= CtStatus.SEEN_REPLY;
      c.packets[dir]++;
      c.bytes[dir] += p.len;
      if (proto === 6) {
        if (ct.tcpUpdate(c, dir, p.tcpFlags) === TcpVerdict.INVALID) return this.#invalid(rec, p);
      } else if (proto === 17) {
        if (c.has(CtStatus.SEEN_REPLY)) {
          c.status |= CtStatus.ASSURED;
          ct.refresh(c, CT_TIMEOUTS.udpReplied);
        } else ct.refresh(c, CT_TIMEOUTS.udpUnreplied);
      } else ct.refresh(c, proto === 58 ? CT_TIMEOUTS.icmp : CT_TIMEOUTS.generic);
      rec.conn = c;
      rec.dir = dir;
      const state = dir === 1 || c.has(CtStatus.SEEN_REPLY) ? CtBit.ESTABLISHED : CtBit.NEW;
      return this.#setCt(rec, p, state);
    }
    let timeout: number = proto === 17
      ? CT_TIMEOUTS.udpUnreplied
      : proto === 58
      ? CT_TIMEOUTS.icmp
      : CT_TIMEOUTS.generic;
    let tcpState = 0;
    if (proto === 6) {
      tcpState = Conntrack.tcpNewState(p.tcpFlags);
      if (tcpState < 0) return this.#invalid(rec, p);
      timeout = CT_TIMEOUTS.tcp[tcpState]!;
    } else if (proto === 58 && p.icmpType !== 128 && p.icmpType !== 139) {
      // Only echo and node information requests start a connection.
      return this.#invalid(rec, p);
    }
    // The previous new connection never made it into the table: forget its addresses.
    const old = this.#pending6;
    if (old !== null && !old.has(CtStatus.CONFIRMED)) {
      ids.release(old.orig.src);
      ids.release(old.orig.dst);
    }
    const c = ct.create(
      key,
      ids.acquire(d, p.srcOff),
      ids.acquire(d, p.dstOff),
      sport,
      dport,
      replyKey,
    );
    this.#pending6 = c;
    c.tcpState = tcpState;
    c.expires = ct.clock.now() + timeout;
    c.packets[0] = 1;
    c.bytes[0] = p.len;
    rec.conn = c;
    this.#setCt(rec, p, CtBit.NEW);
  }

  /** RELATED when an ICMPv6 error quotes a packet of a tracked connection. */
  #trackIcmpv6Error(rec: PacketRecord, p: PacketInfo): void {
    const pkt = p.pkt!;
    const inner = p.l4Off + 8;
    if (inner + 40 > pkt.end || (pkt.data[inner]! >> 4) !== 6) return this.#invalid(rec, p);
    const q = this.#inner6;
    q.load6(pkt, inner, null, null);
    if (q.laterFragment) return this.#invalid(rec, p);
    let key = q.proto, sport = 0, dport = 0;
    if (q.proto === 6 || q.proto === 17) {
      if (q.l4Off + 4 > pkt.end) return this.#invalid(rec, p);
      sport = pkt.view.getUint16(q.l4Off);
      dport = pkt.view.getUint16(q.l4Off + 2);
    } else if (q.proto === 58) {
      if (q.l4Off + 8 > pkt.end) return this.#invalid(rec, p);
      const reply = ICMPV6_QUERY_REPLY[pkt.data[q.l4Off]!];
      if (reply === undefined) return this.#invalid(rec, p);
      key = 58 | (reply << 8);
      sport = dport = pkt.view.getUint16(q.l4Off + 4);
    }
    const d = pkt.data;
    const isrc = this.#ids6.find(d, q.srcOff), idst = this.#ids6.find(d, q.dstOff);
    // The error travels against the quoted packet: look up its inverse.
    const t = isrc === 0 || idst === 0
      ? null
      : this.conntrack6.lookup(key, idst, isrc, dport, sport);
    if (t === null) return this.#invalid(rec, p);
    rec.conn = t.conn;
    rec.dir = t.dir;
    this.#setCt(rec, p, CtBit.RELATED);
  }

  #confirm6(rec: PacketRecord): boolean {
    const c = rec.conn;
    if (c === null || c.has(CtStatus.CONFIRMED)) return true;
    if (!this.conntrack6.confirm(c)) return false;
    if (this.#pending6 === c) this.#pending6 = null;
    return true;
  }

  #invalid(rec: PacketRecord, p: PacketInfo): void {
    this.conntrack.stats.invalid++;
    rec.conn = null;
    this.#setCt(rec, p, CtBit.INVALID);
  }

  #setCt(rec: PacketRecord, p: PacketInfo, bits: number): void {
    rec.ct = bits;
    p.ctState = bits;
  }

  #confirm(rec: PacketRecord): boolean {
    const c = rec.conn;
    if (c === null || c.has(CtStatus.CONFIRMED)) return true;
    return this.conntrack.confirm(c);
  }

  // ------------------------------------------------------------ NAT

  /**
   * The nat table's step at a hook: on a connection's first packet, run
   * the chain to choose its mapping; then translate the packet.
   *
   * @returns false to drop (counted)
   */
  #natStep(rec: PacketRecord, p: PacketInfo, manip: number, chain: CompiledChain | null): boolean {
    const c = rec.conn;
    if (c === null) return true;
    const pkt = p.pkt!;
    if ((rec.ct & CtBit.RELATED) !== 0) {
      if (p.proto === 1 && icmpv4IsError(p.icmpType)) {
        natIcmpError(pkt, p.ipOff, c, rec.dir, manip);
        this.#reload(rec, p);
      }
      return true;
    }
    const done = manip === Manip.SRC ? CtStatus.SRC_NAT_DONE : CtStatus.DST_NAT_DONE;
    if (!c.has(CtStatus.CONFIRMED) && !c.has(done)) {
      c.status |= done;
      if (chain !== null) {
        this.#natRule = null;
        this.#runBuiltin(this.nat, chain, p, rec);
        const r = this.#natRule as CompiledRule | null;
        if (r !== null && !this.#setupNat(c, r, p, manip)) return false;
        rec.ct = p.ctState = rec.ct | this.#natBits(c);
      }
    }
    if (needsManip(c, rec.dir, manip)) {
      natPacket(pkt, p.ipOff, c, rec.dir, manip);
      this.#reload(rec, p);
    }
    return true;
  }

  #reload(rec: PacketRecord, p: PacketInfo): void {
    const mark = p.mark, ct = p.ctState;
    p.load(p.pkt!, p.ipOff, p.inNic, p.outNic);
    p.mark = mark;
    p.ctState = ct;
    this.#save(rec, p);
  }

  #setupNat(c: Conn, r: CompiledRule, p: PacketInfo, manip: number): boolean {
    const t = r.rule.target!;
    let addr = 0;
    let ports: { min: number; max: number } | undefined;
    switch (t.kind) {
      case "SNAT":
      case "DNAT":
        if (t.address.family !== 4) return true;
        addr = t.address.address;
        ports = t.ports;
        break;
      case "MASQUERADE": {
        const out = p.outNic;
        const a = out === null ? null : this.#stack.ipv4.sourceFor(out, p.dst);
        if (a === null || out === null) {
          this.stats.masqueradeNoAddress++;
          return false;
        }
        addr = a;
        ports = t.ports;
        c.masqNic = out.id;
        break;
      }
      case "REDIRECT": {
        // To the ingress NIC's first address; locally generated: loopback.
        const st = p.inNic === null ? undefined : this.#stack.ipv4.nicState(p.inNic);
        addr = st === undefined ? 0x7f000001 : (st.addresses[0]?.address ?? 0);
        if (addr === 0) return false;
        ports = t.ports;
        break;
      }
      default:
        return true;
    }
    if (!setupNat(this.conntrack, this.#stack.random, c, manip, addr, ports)) {
      this.stats.natPortsExhausted++;
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------ rules

  /** Walk a builtin chain: its rules, then its policy (counted). */
  #runBuiltin(
    table: CompiledTable,
    chain: CompiledChain,
    p: PacketInfo,
    rec: PacketRecord,
  ): number {
    this.#reject = null;
    let v = this.#walk(table, chain, p, rec, 0);
    if (v === Verdict.CONTINUE) {
      chain.policyPackets++;
      chain.policyBytes += p.len;
      v = chain.policy;
      if (this.#tracing) this.#traceLine(table, chain, "policy", chain.rules.length + 1, p);
    }
    if (this.#tracing) {
      const line = `TRACE: ${table.name}:${chain.name}:verdict:${
        v === Verdict.DROP ? (this.#reject !== null ? "REJECT" : "DROP") : "ACCEPT"
      }`;
      this.stats.traced++;
      this.traceSink?.(line);
      log.info("{line}", { line });
    }
    rec.mark = p.mark;
    return v;
  }

  #walk(
    table: CompiledTable,
    chain: CompiledChain,
    p: PacketInfo,
    rec: PacketRecord,
    depth: number,
  ): number {
    const rules = chain.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!r.matches(p)) continue;
      r.packets++;
      r.bytes += p.len;
      if (this.#tracing) this.#traceLine(table, chain, "rule", i + 1, p);
      switch (r.kind) {
        case TargetKind.ACCEPT:
          return Verdict.ACCEPT;
        case TargetKind.DROP:
          return Verdict.DROP;
        case TargetKind.REJECT:
          this.#reject = r;
          return Verdict.DROP;
        case TargetKind.RETURN:
          if (this.#tracing) this.#traceLine(table, chain, "return", i + 1, p);
          return Verdict.CONTINUE;
        case TargetKind.JUMP: {
          if (depth >= 32) return Verdict.DROP;
          const v = this.#walk(table, r.jump as CompiledChain, p, rec, depth + 1);
          if (v !== Verdict.CONTINUE) return v;
          break;
        }
        case TargetKind.LOG:
          this.#log(r.rule.target!, p);
          break;
        case TargetKind.MARK: {
          const t = r.rule.target as Extract<Target, { kind: "MARK" }>;
          p.mark = ((p.mark & ~t.mask) ^ t.value) >>> 0;
          break;
        }
        case TargetKind.NOTRACK:
          rec.notrack = true;
          break;
        case TargetKind.TCPMSS:
          this.#tcpmss(r.rule.target as Extract<Target, { kind: "TCPMSS" }>, p);
          break;
        case TargetKind.SNAT:
        case TargetKind.DNAT:
        case TargetKind.MASQUERADE:
        case TargetKind.REDIRECT:
          this.#natRule = r;
          return Verdict.ACCEPT;
      }
    }
    return Verdict.CONTINUE;
  }

  /** A rule or policy dropped the packet: count, and REJECT if a REJECT rule did. */
  #drop(pkt: PacketBuffer, ipOff: number, inNic: Nic | null, p: PacketInfo): boolean {
    this.stats.dropped++;
    const r = this.#reject;
    this.#reject = null;
    if (r === null) return false;
    const reason = (r.rule.target as Extract<Target, { kind: "REJECT" }>).reason;
    if (p.family === 6) return this.#reject6(reason, pkt, ipOff, inNic, p);
    const ipv4 = this.#stack.ipv4;
    if (reason === "tcp-reset") {
      // RFC 793 §3.4 reset generation, from the segment's destination.
      const ip = this.#ip.reset(pkt, ipOff);
      const l4 = ipOff + ip.headerLen();
      const end = ipOff + ip.totalLength();
      if (
        p.proto === 6 && sendTcpReset(4, ipv4, ipv4.settings.defaultTtl, inNic, pkt, ipOff, l4, end)
      ) {
        this.stats.rejectsSent++;
      }
      return false;
    }
    const code = REJECT_CODES[reason];
    if (code !== undefined && ipv4.icmp.sendErrorAbout(pkt, ipOff, inNic, 3, code, 0)) {
      this.stats.rejectsSent++;
    }
    return false;
  }

  /** REJECT over IPv6: a TCP reset or an ICMPv6 Destination Unreachable (RFC 4443 §3.1). */
  #reject6(
    reason: RejectReason,
    pkt: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
    p: PacketInfo,
  ): boolean {
    const ipv6 = this.#stack.ipv6;
    if (reason === "tcp-reset") {
      const end = ipOff + 40 + pkt.view.getUint16(ipOff + 4);
      if (
        p.proto === 6 && p.hasPorts &&
        sendTcpReset(6, ipv6, ipv6.settings.defaultHopLimit, inNic, pkt, ipOff, p.l4Off, end)
      ) {
        ipv6.stack.stats.ipv6.tcpResetsSent++;
        this.stats.rejectsSent++;
      }
      return false;
    }
    const code = REJECT6_CODES[reason];
    if (code !== undefined && ipv6.icmp.sendErrorAbout(pkt, ipOff, inNic, 1, code, 0)) {
      this.stats.rejectsSent++;
    }
    return false;
  }

  /** TCPMSS: lower the MSS option of a SYN (never raise it). */
  #tcpmss(t: Extract<Target, { kind: "TCPMSS" }>, p: PacketInfo): void {
    if (p.proto !== 6 || !p.hasPorts || (p.tcpFlags & 0x02) === 0) return;
    const pkt = p.pkt!;
    const tcp = this.#tcp.reset(pkt, p.l4Off);
    if (p.l4Off + 20 > pkt.end || p.l4Off + tcp.headerLen() > pkt.end) return;
    const cur = tcp.mss();
    if (cur < 0) return;
    const want = t.mss === "pmtu" ? (p.outNic === null ? cur : p.outNic.mtu() - 40) : t.mss;
    if (cur <= want) return;
    if ((pkt.vnetFlags & 1) !== 0) {
      // Partial checksum: the options are summed later; just write.
      const at = tcp.findOption(2, 4);
      pkt.view.setUint16(at, want);
    } else tcp.setMss(want);
  }

  #describe(p: PacketInfo): string {
    const io = `IN=${p.inNic?.name ?? ""} OUT=${p.outNic?.name ?? ""}`;
    const proto = `PROTO=${PROTO_NAMES[p.proto] ?? p.proto}`;
    let s = p.family === 6
      ? `${io} SRC=${formatIpv6(p.pkt!.data.subarray(p.srcOff, p.srcOff + 16))} DST=${
        formatIpv6(p.pkt!.data.subarray(p.dstOff, p.dstOff + 16))
      } LEN=${p.len} HOPLIMIT=${p.ttl} ${proto}`
      : `${io} SRC=${formatIpv4(p.src)} DST=${
        formatIpv4(p.dst)
      } LEN=${p.len} TTL=${p.ttl} ID=${p.id} ${proto}`;
    if (p.hasPorts) s += ` SPT=${p.sport} DPT=${p.dport}`;
    if (p.icmpType >= 0) s += ` TYPE=${p.icmpType} CODE=${p.icmpCode}`;
    if (p.mark !== 0) s += ` MARK=0x${p.mark.toString(16)}`;
    return s;
  }

  #log(t: Target, p: PacketInfo): void {
    if (t.kind !== "LOG") return;
    const line = `${t.prefix}${this.#describe(p)}`;
    this.stats.logged++;
    this.logSink?.(line, t.level);
    if (t.level <= 3) log.error("{line}", { line });
    else if (t.level === 4) log.warn("{line}", { line });
    else if (t.level <= 6) log.info("{line}", { line });
    else log.debug("{line}", { line });
  }

  #traceLine(table: CompiledTable, chain: CompiledChain, what: string, n: number, p: PacketInfo) {
    const line = `TRACE: ${table.name}:${chain.name}:${what}:${n} ${this.#describe(p)}`;
    this.stats.traced++;
    this.traceSink?.(line);
    log.info("{line}", { line });
  }
}

/** What the firewall needs of the stack: the clock, randomness and both IP layers. */
export interface FirewallHost {
  readonly clock: Clock;
  readonly random: Random;
  readonly ipv4: Ipv4;
  readonly ipv6: Ipv6;
}

/** One tracked connection as {@link Firewall.connections} lists it. */
export interface ConnectionInfo {
  family: 4 | 6;
  /** `tcp`, `udp`, `icmp`, `icmpv6` or the protocol number. */
  proto: string;
  protoNumber: number;
  /** TCP state (ESTABLISHED, TIME_WAIT, ...), null for other protocols. */
  state: string | null;
  /** Seconds until the entry expires. */
  timeout: number;
  orig: { src: string; dst: string; sport?: number; dport?: number };
  reply: { src: string; dst: string; sport?: number; dport?: number };
  seenReply: boolean;
  assured: boolean;
  srcNat: boolean;
  dstNat: boolean;
  /** Original and reply direction. */
  packets: number[];
  bytes: number[];
}

/** Carry packet/byte counters from `old` tables to the same rules and policies in `next`. */
function carryCounters(old: CompiledTable[], next: CompiledTable[]): void {
  const rules = new Map<string, CompiledRule[]>();
  const policies = new Map<string, CompiledChain>();
  const chains = (t: CompiledTable) => [...t.builtins.values(), ...t.userChains];
  old.forEach((t, i) => {
    for (const c of chains(t)) {
      policies.set(`${i}/${c.name}`, c);
      for (const r of c.rules) {
        const k = `${i}/${c.name}/${r.rule.text}`;
        const list = rules.get(k);
        if (list === undefined) rules.set(k, [r]);
        else list.push(r);
      }
    }
  });
  next.forEach((t, i) => {
    for (const c of chains(t)) {
      const p = policies.get(`${i}/${c.name}`);
      if (p !== undefined && c.builtin) {
        c.policyPackets = p.policyPackets;
        c.policyBytes = p.policyBytes;
      }
      for (const r of c.rules) {
        const prev = rules.get(`${i}/${c.name}/${r.rule.text}`)?.shift();
        if (prev !== undefined) {
          r.packets = prev.packets;
          r.bytes = prev.bytes;
        }
      }
    }
  });
}
