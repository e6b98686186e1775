/**
 * The firewall: iptables-like `raw`, `mangle`, `nat` and `filter` tables
 * run at the IPv4 layer's hooks where netfilter runs them, on top of
 * connection tracking and NAT; and the same four, ip6tables-like (NAT66
 * included), at the IPv6 layer's hooks.
 *
 * | hook        | order                                                         |
 * | ----------- | ------------------------------------------------------------- |
 * | PREROUTING  | raw → conntrack → mangle → nat (DNAT, de-SNAT of replies)     |
 * | INPUT       | mangle → filter → nat (SNAT) → confirm                        |
 * | FORWARD     | mangle → filter                                               |
 * | OUTPUT      | raw → conntrack → mangle → nat (DNAT) → filter                |
 * | POSTROUTING | mangle → nat (SNAT, MASQUERADE, de-DNAT of replies) → confirm |
 *
 * The connection of a packet rides on the packet from hook to hook
 * (`pkt.ct`, `pkt.ctInfo`, `pkt.mark`: Linux's skb->_nfct, ctinfo and
 * mark); a hook that finds none (loopback, reassembled packets) looks the
 * connection up afresh. One set of hooks serves both families over a
 * per-family {@link HookFamily}.
 *
 * IPv6 runs the same order. Its connections hold addresses as ids
 * ({@link Ipv6AddressIds}); a NAT mapping holds a reference to the id of
 * its new address. Fragments of either family are not reassembled first
 * (Linux's nf_defrag_ipv4/ipv6 do): a first fragment is tracked by its
 * ports and remembered ({@link FragmentStates}); later ones take its
 * connection, ctstate and NAT, or are UNTRACKED when it was not seen. NDP
 * and MLD messages are UNTRACKED, ICMPv6 errors about a tracked connection
 * RELATED.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { SourceBudget } from "./source_budget.ts";
import { ipv6Hash } from "../ipv6/addr_map.ts";
import type { Nic } from "../nic.ts";
import type { Clock } from "../clock.ts";
import type { Random } from "../random.ts";
import type { Ipv4 } from "../ipv4/ipv4.ts";
import type { Ipv6 } from "../ipv6/ipv6.ts";
import type { IpHook, IpHooks } from "../ip/hooks.ts";
import { sendTcpReset } from "../ip/tcp_reset.ts";
import { icmpv4IsError } from "../ipv4/icmp.ts";
import { TcpPacket } from "../wire/tcp.ts";
import { formatIpv4, formatIpv6, ipv4Mask } from "../wire/ip_address.ts";
import { type PacketBuffer, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM } from "../wire/packet_buffer.ts";
import {
  finishChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "../wire/checksum.ts";
import {
  type Conn,
  Conntrack,
  CT_PER_SOURCE_RATE,
  CT_TIMEOUTS,
  ctPerSourceBurst,
  CtStatus,
  TCP_CT_STATE_NAMES,
  TcpSegment,
  TcpVerdict,
} from "./conntrack.ts";
import {
  ICMP_QUERY_REPLY,
  Manip,
  natIcmpError,
  natIcmpError6,
  natPacket,
  natPacket6,
  needsManip,
  setupNat,
} from "./nat.ts";
import { CompiledRule, CtBit, PacketInfo, TargetKind } from "./match.ts";
import {
  type CompiledChain,
  type CompiledTable,
  compileTable,
  dumpTables,
  Verdict,
} from "./tables.ts";
import type { FirewallSpec, FirewallTableName, RejectReason, Rule, Target } from "./rule_types.ts";
import { carrySets, IpSet, resolveSets } from "./sets.ts";
import { MatchState } from "./match_state.ts";
import type { CompileOptions } from "./compile.ts";
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
  /** Packets SNPT/DNPT could not translate (every word after a prefix longer than /48 is 0xFFFF), dropped. */
  nptUntranslatable: number;
  /** Lines logged by LOG rules. */
  logged: number;
  /** Trace lines emitted. */
  traced: number;
}

/**
 * The per-packet state of the hook at hand (one scratch record: hooks do
 * not nest while it is in use). Between hooks it rides on the packet
 * itself: the connection in `pkt.ct`, the rest in `pkt.ctInfo` (Linux's
 * skb->_nfct and ctinfo), the mark in `pkt.mark`.
 */
class PacketRecord {
  conn: Conn | null = null;
  dir: 0 | 1 = 0;
  ct = 0;
  notrack = false;
  traced = false;
  /** A connection this packet starts is charged to its source's budget (set only around PREROUTING's tracking). */
  budget = false;
  /** It would have started one, and its source's budget was spent: drop it. */
  overBudget = false;
}

/** What {@link Firewall}'s `#apply` returns for a target after which the walk goes on. */
const GO_ON = -1;

/** Where a chain walk is in each run of candidates its index yielded. */
interface ChainMerge {
  pos: Int32Array;
  end: Int32Array;
}

/** How a {@link Firewall} walks its chains. */
export interface FirewallOptions {
  /**
   * Test every rule of every chain in turn, as iptables does, instead of
   * the candidates of the compiled index: the reference the compiled walk
   * is checked against. Default false.
   */
  linear?: boolean;
  /** Which chains get an index (default: chains of 8 rules or more). */
  compile?: CompileOptions;
}

/** {@link PacketBuffer.ctInfo} above the ctstate bits ({@link CtBit}, below 0x100). */
const INFO_SEEN = 0x100, INFO_REPLY = 0x200, INFO_TRACED = 0x400;

/** The builtin chains that have rules or a DROP policy (null: nothing to run). */
interface ActiveChains {
  rawPre: CompiledChain | null;
  rawOut: CompiledChain | null;
  manglePre: CompiledChain | null;
  mangleIn: CompiledChain | null;
  mangleFwd: CompiledChain | null;
  mangleOut: CompiledChain | null;
  manglePost: CompiledChain | null;
  natPre: CompiledChain | null;
  natIn: CompiledChain | null;
  natOut: CompiledChain | null;
  natPost: CompiledChain | null;
  filterIn: CompiledChain | null;
  filterFwd: CompiledChain | null;
  filterOut: CompiledChain | null;
}

/** The five hooks of one family. */
type HookSet = { readonly [K in keyof IpHooks]: IpHook };

const HOOK_NAMES = ["prerouting", "input", "forward", "output", "postrouting"] as const;

/** Point a layer's hooks at `mine`. */
function setHooks(h: IpHooks, mine: HookSet): void {
  for (const k of HOOK_NAMES) h[k] = mine[k];
}

/** Clear a layer's hooks when they are `mine` (another firewall's stay). */
function clearHooks(h: IpHooks, mine: HookSet): void {
  if (h.prerouting !== mine.prerouting) return;
  for (const k of HOOK_NAMES) h[k] = null;
}

/** What the one set of hooks needs of a family. */
interface HookFamily {
  readonly family: 4 | 6;
  /** The packet view the family's hooks read into. */
  readonly p: PacketInfo;
  raw: CompiledTable;
  mangle: CompiledTable;
  /** The nat table, or null for a family without NAT: every NAT step is skipped. */
  nat: CompiledTable | null;
  filter: CompiledTable;
  chains: ActiveChains;
  trace: CompiledRule | null;
  /** Read the packet's fields (IPv4 header, or IPv6 header chain). */
  load(
    p: PacketInfo,
    pkt: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
    outNic: Nic | null,
  ): void;
  /** Find or create the packet's connection; set its ctstate. */
  track(rec: PacketRecord, p: PacketInfo): void;
  /** Put a new connection into the table (false: the table is full, drop). */
  confirm(rec: PacketRecord): boolean;
}

/** How a family's ICMP takes part in tracking. */
interface IcmpTracking {
  readonly proto: number;
  /** Query type → its answer (Linux's invmap). */
  readonly queryReply: Readonly<Record<number, number>>;
  isError(type: number): boolean;
  /** A request that may start a connection. */
  isRequest(type: number): boolean;
}

const ICMPV4_TRACKING: IcmpTracking = {
  proto: 1,
  queryReply: ICMP_QUERY_REPLY,
  isError: icmpv4IsError,
  isRequest: (t) => t === 8 || t === 13 || t === 15 || t === 17,
};

const ICMPV6_TRACKING: IcmpTracking = {
  proto: 58,
  queryReply: ICMPV6_QUERY_REPLY,
  // RFC 4443 §2.1: types below 128 are errors.
  isError: (t) => t < 128,
  // Echo and node information requests.
  isRequest: (t) => t === 128 || t === 139,
};

const REJECT_CODES: Partial<Record<RejectReason, number>> = {
  "net-unreachable": 0,
  "host-unreachable": 1,
  "proto-unreachable": 2,
  "port-unreachable": 3,
  "net-prohibited": 9,
  "host-prohibited": 10,
  "admin-prohibited": 13,
};

/** ::1, REDIRECT's address for locally generated IPv6 packets. */
const IPV6_LOOPBACK = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

const PROTO_NAMES: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6" };

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
 * const scope = () => ({
 *   filter: empty(),
 *   nat: { ...empty(), table: "nat" as const },
 *   raw: { ...empty(), table: "raw" as const },
 *   mangle: { ...empty(), table: "mangle" as const },
 * });
 * const fw = new Firewall(stack, { conntrack: { max: 1024 }, shared: scope(), ipv4: scope(), ipv6: scope() });
 * fw.install();
 * console.assert(fw.dump().includes("*filter"));
 * ```
 */
export class Firewall {
  /** The connection table. */
  readonly conntrack: Conntrack;
  /**
   * The named sets by name (`[firewall.sets]`): `tapir set` changes them in
   * place, and the next packet a rule tests against one sees the change.
   * Replaced by {@link reconfigure} (kept sets are the same objects).
   */
  sets: Map<string, IpSet> = new Map();
  readonly stats: FirewallStats = {
    dropped: 0,
    rejectsSent: 0,
    natPortsExhausted: 0,
    masqueradeNoAddress: 0,
    laterFragmentsUntracked: 0,
    nptUntranslatable: 0,
    logged: 0,
    traced: 0,
  };
  /** Compiled IPv4 tables (replaced whole by {@link reconfigure}). */
  raw!: CompiledTable;
  mangle!: CompiledTable;
  nat!: CompiledTable;
  filter!: CompiledTable;
  /** IPv6 connections (addresses by {@link Ipv6AddressIds} id). */
  readonly conntrack6: Conntrack;
  /** `-m recent` lists and `-m hashlimit` tables (kept across {@link reconfigure}), and addrtype's lookups. */
  readonly matchState: MatchState;
  /** Compiled IPv6 tables. */
  raw6!: CompiledTable;
  mangle6!: CompiledTable;
  nat6!: CompiledTable;
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
  readonly #onAddress6 = (nic: Nic, a: { address: Uint8Array }) => {
    // Called for every state change; flush only when the address is gone.
    const st = this.#stack.ipv6.nicState(nic);
    if (st !== undefined && st.addresses.some((x) => x === a)) return;
    this.addressRemoved6(nic, a.address);
  };
  readonly #addressOf6 = (id: number) => this.#ids6.address(id);
  readonly #inner6 = new PacketInfo();
  readonly #ids6 = new Ipv6AddressIds();
  readonly #frags4 = new FragmentStates();
  readonly #frags6 = new FragmentStates();
  /** The last IPv6 connection made and not yet confirmed (its address ids are released if it never is). */
  #pending6: Conn | null = null;
  /** The hook at hand's record (see {@link PacketRecord}). */
  readonly #rec = new PacketRecord();
  /** The tuple {@link #tuple} read: key, reply key, ports; whether the packet is an ICMP error. */
  #key = 0;
  #replyKey = 0;
  #sport = 0;
  #dport = 0;
  #tupleIsError = false;
  /** The TCP state of the connection {@link #firstTimeout} judged. */
  #tcpState = 0;
  /** New connections a second each source may start (IPv6: each /64), by family. */
  readonly #budget4: SourceBudget;
  readonly #budget6: SourceBudget;
  /** The TCP segment at hand, for the window tracking ({@link #tcpSegment}). */
  readonly #seg = new TcpSegment();
  /** The two families the one set of hooks runs for, and their hooks. */
  readonly #v4: HookFamily;
  readonly #v6: HookFamily;
  readonly #hooks4: HookSet;
  readonly #hooks6: HookSet;
  readonly #tcp = new TcpPacket();
  #reject: CompiledRule | null = null;
  #natRule: CompiledRule | null = null;
  #tracing = false;
  #installed = false;
  /** Walk every chain rule by rule (the reference the compiled walk is tested against). */
  readonly #linear: boolean;
  readonly #compileOptions: CompileOptions | undefined;
  /** The merge state of the chain walk at each jump depth (made on first use). */
  readonly #merges: ChainMerge[] = [];

  /** The IPv4 hooks (PREROUTING … POSTROUTING), as {@link install} sets them. */
  readonly prerouting: IpHook;
  readonly input: IpHook;
  readonly forward: IpHook;
  readonly output: IpHook;
  readonly postrouting: IpHook;
  /** The IPv6 hooks, set when the IPv6 tables have something to do. */
  readonly prerouting6: IpHook;
  readonly input6: IpHook;
  readonly forward6: IpHook;
  readonly output6: IpHook;
  readonly postrouting6: IpHook;

  /** @param stack the stack whose IPv4 layer it filters; @param spec tables and settings */
  constructor(stack: FirewallHost, spec: FirewallSpec, options: FirewallOptions = {}) {
    this.#stack = stack;
    this.#linear = options.linear ?? false;
    this.#compileOptions = options.compile;
    for (const [name, s] of spec.sets ?? []) this.sets.set(name, new IpSet(s, stack.clock));
    this.conntrack = new Conntrack(stack.clock, spec.conntrack.max);
    this.conntrack6 = new Conntrack(stack.clock, spec.conntrack.max);
    this.#budget4 = new SourceBudget(stack.clock, 0, 1);
    this.#budget6 = new SourceBudget(stack.clock, 0, 1);
    this.matchState = new MatchState(stack);
    this.conntrack6.onRemove = (c) => this.#releaseIds6(c);
    const family = (
      f: 4 | 6,
      track: HookFamily["track"],
      confirm: HookFamily["confirm"],
    ): HookFamily => ({
      family: f,
      p: Object.assign(new PacketInfo(), { host: this.matchState }),
      raw: null as unknown as CompiledTable,
      mangle: null as unknown as CompiledTable,
      nat: null,
      filter: null as unknown as CompiledTable,
      chains: null as unknown as ActiveChains,
      trace: null,
      load: f === 4
        ? (p, pkt, ipOff, inNic, outNic) => p.load(pkt, ipOff, inNic, outNic)
        : (p, pkt, ipOff, inNic, outNic) => p.load6(pkt, ipOff, inNic, outNic),
      track,
      confirm,
    });
    this.#v4 = family(4, (r, p) => this.#track4(r, p), (r) => this.#confirm4(r));
    this.#v6 = family(6, (r, p) => this.#track6(r, p), (r) => this.#confirm6(r));
    this.#compile(spec);
    this.#settings(spec);
    const h4 = this.#hooks4 = this.#hooksOf(this.#v4);
    const h6 = this.#hooks6 = this.#hooksOf(this.#v6);
    this.prerouting = h4.prerouting;
    this.input = h4.input;
    this.forward = h4.forward;
    this.output = h4.output;
    this.postrouting = h4.postrouting;
    this.prerouting6 = h6.prerouting;
    this.input6 = h6.input;
    this.forward6 = h6.forward;
    this.output6 = h6.output;
    this.postrouting6 = h6.postrouting;
  }

  /** Conntrack settings a reload may change (not the table size). */
  #settings(spec: FirewallSpec): void {
    const c = spec.conntrack;
    this.conntrack.tcpBeLiberal = this.conntrack6.tcpBeLiberal = c.tcpBeLiberal ?? false;
    const rate = c.perSourceRate ?? CT_PER_SOURCE_RATE;
    const burst = c.perSourceBurst ?? ctPerSourceBurst(rate);
    this.#budget4.configure(rate, burst);
    this.#budget6.configure(rate, burst);
  }

  /** Compile `spec`'s tables for both families and point the hooks' chain shortcuts at them. */
  #compile(spec: FirewallSpec): void {
    const clock = this.#stack.clock;
    const opts = { sets: this.sets, compile: this.#compileOptions };
    const compile = (n: FirewallTableName, f: 4 | 6) =>
      compileTable(n, [spec.shared[n], f === 4 ? spec.ipv4[n] : spec.ipv6[n]], clock, f, opts);
    this.raw = compile("raw", 4);
    this.mangle = compile("mangle", 4);
    this.nat = compile("nat", 4);
    this.filter = compile("filter", 4);
    this.raw6 = compile("raw", 6);
    this.mangle6 = compile("mangle", 6);
    this.nat6 = compile("nat", 6);
    this.filter6 = compile("filter", 6);
    const set = (
      f: HookFamily,
      raw: CompiledTable,
      mangle: CompiledTable,
      nat: CompiledTable | null,
      filter: CompiledTable,
    ) => {
      f.raw = raw;
      f.mangle = mangle;
      f.nat = nat;
      f.filter = filter;
      f.trace = spec.trace !== undefined && spec.trace.family !== (f.family === 4 ? 6 : 4)
        ? this.#traceRule(spec.trace)
        : null;
      f.chains = {
        rawPre: raw.active("prerouting"),
        rawOut: raw.active("output"),
        manglePre: mangle.active("prerouting"),
        mangleIn: mangle.active("input"),
        mangleFwd: mangle.active("forward"),
        mangleOut: mangle.active("output"),
        manglePost: mangle.active("postrouting"),
        natPre: nat?.active("prerouting") ?? null,
        natIn: nat?.active("input") ?? null,
        natOut: nat?.active("output") ?? null,
        natPost: nat?.active("postrouting") ?? null,
        filterIn: filter.active("input"),
        filterFwd: filter.active("forward"),
        filterOut: filter.active("output"),
      };
    };
    set(this.#v4, this.raw, this.mangle, this.nat, this.filter);
    set(this.#v6, this.raw6, this.mangle6, this.nat6, this.filter6);
    this.ipv6Active = Object.values(this.#v6.chains).some((c) => c !== null);
  }

  /** The `firewall.trace` rule, its `-m set` matches resolved. */
  #traceRule(rule: Rule): CompiledRule {
    const r = new CompiledRule(rule, this.#stack.clock);
    if (rule.matchSets !== undefined) r.sets = resolveSets(rule.matchSets, this.sets);
    return r;
  }

  /**
   * Swap in new tables, as `iptables-restore` does: one step between two
   * packets, so no packet sees half of each. Connections and NAT bindings
   * stay (they live in conntrack, not in the rules); a rule that is in both
   * the old and the new tables (same table, chain and text) keeps its
   * packet and byte counters, and so does each builtin chain's policy.
   * The conntrack size (`spec.conntrack.max`) is fixed at construction;
   * `tcpBeLiberal` applies from the next packet. A named set whose
   * definition is unchanged keeps its entries (those `tapir set add` made
   * too), with the config's own entries brought up to date
   * ({@link carrySets}); the chains are compiled again in the same step.
   *
   * @returns one line per named set that was made, rebuilt, changed or removed
   */
  reconfigure(spec: FirewallSpec): string[] {
    const old = this.#tables();
    const carried = carrySets(this.sets, spec.sets, this.#stack.clock);
    this.sets = carried.sets;
    this.#compile(spec);
    this.#settings(spec);
    carryCounters(old, this.#tables());
    if (this.#installed) this.install();
    return carried.changes;
  }

  /** IPv6 addresses the IPv6 connections (and their NAT mappings) hold ids for. */
  get ipv6AddressesHeld(): number {
    return this.#ids6.size;
  }

  /** Every compiled table, both families, in one fixed order. */
  #tables(): CompiledTable[] {
    return [
      this.raw,
      this.mangle,
      this.nat,
      this.filter,
      this.raw6,
      this.mangle6,
      this.nat6,
      this.filter6,
    ];
  }

  /** Set the IPv4 layer's five hooks to this firewall, and the IPv6 layer's when its tables have something to do. */
  install(): void {
    this.#installed = true;
    // MASQUERADE follows the egress address: its connections go with it.
    this.#stack.ipv4.addressRemovedListeners.add(this.#onAddressRemoved);
    this.#stack.ipv6.addressListeners.add(this.#onAddress6);
    setHooks(this.#stack.ipv4.hooks, this.#hooks4);
    if (this.ipv6Active) setHooks(this.#stack.ipv6.hooks, this.#hooks6);
    else clearHooks(this.#stack.ipv6.hooks, this.#hooks6);
  }

  /** Clear the hooks and forget every connection. */
  close(): void {
    this.#stack.ipv4.addressRemovedListeners.delete(this.#onAddressRemoved);
    this.#stack.ipv6.addressListeners.delete(this.#onAddress6);
    clearHooks(this.#stack.ipv4.hooks, this.#hooks4);
    clearHooks(this.#stack.ipv6.hooks, this.#hooks6);
    this.conntrack.clear();
    this.conntrack6.clear();
    this.#frags4.clear();
    this.#frags6.clear();
  }

  /**
   * iptables-save -c style dump of the IPv4 tables with their counters,
   * then (when IPv6 filtering is active) ip6tables-save -c of the IPv6 ones.
   */
  dump(): string {
    const v4 = dumpTables([this.raw, this.mangle, this.nat, this.filter]);
    return this.ipv6Active
      ? v4 + dumpTables([this.raw6, this.mangle6, this.nat6, this.filter6], 6)
      : v4;
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
        packets: [c.packetsOrig, c.packetsReply],
        bytes: [c.bytesOrig, c.bytesReply],
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

  /**
   * An IPv6 address left `nic`: forget the connections MASQUERADE mapped
   * to it (Linux masq_inet6_event). An installed firewall hears of it
   * from the IPv6 layer's address listeners.
   *
   * @returns how many connections were removed
   */
  addressRemoved6(nic: Nic, address: Uint8Array): number {
    const id = this.#ids6.find(address, 0);
    if (id === 0) return 0;
    const n = this.conntrack6.removeWhere((c) => c.masqNic === nic.id && c.reply.dst === id);
    this.conntrack6.stats.masqueradeFlushed += n;
    return n;
  }

  // ------------------------------------------------------------ hooks

  /** The five hooks of one family, in netfilter's order of tables (see the module table). */
  #hooksOf(f: HookFamily): HookSet {
    const rec = this.#rec;
    return {
      prerouting: (pkt, ipOff, inNic) => {
        const p = this.#first(f, pkt, ipOff, inNic, null);
        const c = f.chains;
        if (!this.#chain(f.raw, c.rawPre, p, pkt, ipOff, inNic)) return false;
        rec.budget = true;
        rec.overBudget = false;
        f.track(rec, p);
        rec.budget = false;
        // Counted by conntrack (sourceBudgetDropped); nothing was made for it.
        if (rec.overBudget) return false;
        if (!this.#chain(f.mangle, c.manglePre, p, pkt, ipOff, inNic)) return false;
        if (f.nat !== null && !this.#natStep(rec, p, Manip.DST, f.nat, c.natPre)) return false;
        this.#store(pkt, rec, p);
        return true;
      },
      input: (pkt, ipOff, inNic) => {
        const p = this.#later(f, pkt, ipOff, inNic, null);
        const c = f.chains;
        if (!this.#chain(f.mangle, c.mangleIn, p, pkt, ipOff, inNic)) return false;
        if (!this.#chain(f.filter, c.filterIn, p, pkt, ipOff, inNic)) return false;
        if (f.nat !== null && !this.#natStep(rec, p, Manip.SRC, f.nat, c.natIn)) return false;
        return f.confirm(rec);
      },
      forward: (pkt, ipOff, inNic, outNic) => {
        const p = this.#later(f, pkt, ipOff, inNic, outNic);
        if (!this.#chain(f.mangle, f.chains.mangleFwd, p, pkt, ipOff, inNic)) return false;
        return this.#chain(f.filter, f.chains.filterFwd, p, pkt, ipOff, inNic);
      },
      output: (pkt, ipOff, _inNic, outNic) => {
        const p = this.#first(f, pkt, ipOff, null, outNic);
        const c = f.chains;
        if (!this.#chain(f.raw, c.rawOut, p, pkt, ipOff, null)) return false;
        f.track(rec, p);
        if (!this.#chain(f.mangle, c.mangleOut, p, pkt, ipOff, null)) return false;
        if (f.nat !== null && !this.#natStep(rec, p, Manip.DST, f.nat, c.natOut, true)) {
          return false;
        }
        if (!this.#chain(f.filter, c.filterOut, p, pkt, ipOff, null)) return false;
        this.#store(pkt, rec, p);
        return true;
      },
      postrouting: (pkt, ipOff, _inNic, outNic) => {
        const p = this.#later(f, pkt, ipOff, null, outNic);
        if (!this.#chain(f.mangle, f.chains.manglePost, p, pkt, ipOff, null)) return false;
        if (f.nat !== null && !this.#natStep(rec, p, Manip.SRC, f.nat, f.chains.natPost)) {
          return false;
        }
        return f.confirm(rec);
      },
    };
  }

  /** A packet's first hook (PREROUTING, OUTPUT): read it, start a fresh record. */
  #first(f: HookFamily, pkt: PacketBuffer, ipOff: number, inNic: Nic | null, outNic: Nic | null) {
    const p = f.p;
    f.load(p, pkt, ipOff, inNic, outNic);
    this.#fresh(pkt, f, p);
    return p;
  }

  /** A later hook: read the packet, take up the record an earlier hook left on it. */
  #later(f: HookFamily, pkt: PacketBuffer, ipOff: number, inNic: Nic | null, outNic: Nic | null) {
    const p = f.p;
    f.load(p, pkt, ipOff, inNic, outNic);
    this.#recordFor(pkt, f, p);
    return p;
  }

  /**
   * Run a builtin chain when it has something to do: true to go on, false
   * when it dropped the packet (counted; REJECT answered).
   */
  #chain(
    table: CompiledTable,
    chain: CompiledChain | null,
    p: PacketInfo,
    pkt: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
  ): boolean {
    if (chain === null || this.#runBuiltin(table, chain, p, this.#rec) !== Verdict.DROP) {
      return true;
    }
    return this.#drop(pkt, ipOff, inNic, p);
  }

  // ------------------------------------------------------------ records

  /** A packet's first hook (PREROUTING, OUTPUT): a fresh record, mark 0. */
  #fresh(pkt: PacketBuffer, f: HookFamily, p: PacketInfo): PacketRecord {
    const rec = this.#rec;
    rec.conn = null;
    rec.dir = 0;
    rec.ct = 0;
    rec.notrack = false;
    p.conn = null;
    p.mark = 0;
    pkt.mark = 0;
    rec.traced = f.trace !== null && f.trace.matches(p);
    this.#tracing = rec.traced;
    return rec;
  }

  /**
   * The record an earlier hook left on the packet, or a fresh one, tracked
   * now (loopback, reassembled and locally built packets arrive without).
   */
  #recordFor(pkt: PacketBuffer, f: HookFamily, p: PacketInfo): PacketRecord {
    const info = pkt.ctInfo;
    if ((info & INFO_SEEN) === 0) {
      const rec = this.#fresh(pkt, f, p);
      f.track(rec, p);
      this.#store(pkt, rec, p);
      return rec;
    }
    const rec = this.#rec;
    rec.conn = pkt.ct as Conn | null;
    rec.dir = (info & INFO_REPLY) !== 0 ? 1 : 0;
    rec.ct = p.ctState = info & 0xff;
    p.conn = rec.conn;
    rec.notrack = false;
    rec.traced = this.#tracing = (info & INFO_TRACED) !== 0;
    p.mark = pkt.mark;
    return rec;
  }

  /** Leave the record on the packet for the hooks after this one. */
  #store(pkt: PacketBuffer, rec: PacketRecord, p: PacketInfo): void {
    pkt.ct = rec.conn;
    pkt.ctInfo = INFO_SEEN | rec.ct | (rec.dir === 1 ? INFO_REPLY : 0) |
      (rec.traced ? INFO_TRACED : 0);
    pkt.mark = p.mark;
  }

  // ------------------------------------------------------------ conntrack

  /** IPv4: find or create the packet's connection; set its ctstate. */
  #track4(rec: PacketRecord, p: PacketInfo): void {
    rec.conn = null;
    rec.dir = 0;
    if (rec.notrack) return this.#setCt(rec, p, CtBit.UNTRACKED);
    if (p.laterFragment) {
      const f = this.#frags4;
      if (f.find(p.src, p.dst, p.id | (p.proto << 16))) {
        rec.conn = f.conn;
        rec.dir = f.dir;
        return this.#setCt(rec, p, f.ct);
      }
      this.stats.laterFragmentsUntracked++;
      return this.#setCt(rec, p, CtBit.UNTRACKED);
    }
    this.#track4Packet(rec, p);
    if (p.fragment) {
      this.#frags4.put(p.src, p.dst, p.id | (p.proto << 16), rec.conn, rec.dir, rec.ct);
    }
  }

  #track4Packet(rec: PacketRecord, p: PacketInfo): void {
    if (!this.#tuple(p, ICMPV4_TRACKING)) return this.#invalid(rec, p);
    if (this.#tupleIsError) return this.#trackIcmpError4(rec, p);
    const ct = this.conntrack;
    const t = ct.lookup(this.#key, p.src, p.dst, this.#sport, this.#dport);
    if (t !== null) return this.#seen(ct, rec, p, t.conn, t.dir, 1);
    const timeout = this.#firstTimeout(p, ICMPV4_TRACKING);
    if (timeout < 0) return this.#invalid(rec, p);
    if (rec.budget && !this.#budget4.take(p.src, 0)) return this.#overBudget(ct, rec, p);
    const c = ct.create(this.#key, p.src, p.dst, this.#sport, this.#dport, this.#replyKey);
    this.#begin(ct, rec, p, c, timeout);
  }

  /** IPv6: find or create the packet's connection; set its ctstate. */
  #track6(rec: PacketRecord, p: PacketInfo): void {
    rec.conn = null;
    rec.dir = 0;
    if (rec.notrack) return this.#setCt(rec, p, CtBit.UNTRACKED);
    if (p.laterFragment) {
      const f = this.#frags6, d = p.pkt!.data;
      if (f.find(ipv6Hash(d, p.srcOff), ipv6Hash(d, p.dstOff), p.id)) {
        rec.conn = f.conn;
        rec.dir = f.dir;
        return this.#setCt(rec, p, f.ct);
      }
      this.stats.laterFragmentsUntracked++;
      return this.#setCt(rec, p, CtBit.UNTRACKED);
    }
    this.#track6Packet(rec, p);
    if (p.fragment) {
      const d = p.pkt!.data;
      this.#frags6.put(
        ipv6Hash(d, p.srcOff),
        ipv6Hash(d, p.dstOff),
        p.id,
        rec.conn,
        rec.dir,
        rec.ct,
      );
    }
  }

  #track6Packet(rec: PacketRecord, p: PacketInfo): void {
    // No upper layer (or a header chain past the end): nothing to track by.
    if (p.proto === 59) return this.#invalid(rec, p);
    if (p.proto === 58 && icmpv6Untracked(p.icmpType)) return this.#setCt(rec, p, CtBit.UNTRACKED);
    if (!this.#tuple(p, ICMPV6_TRACKING)) return this.#invalid(rec, p);
    if (this.#tupleIsError) return this.#trackIcmpError6(rec, p);
    const ct = this.conntrack6;
    const ids = this.#ids6, d = p.pkt!.data;
    const srcId = ids.find(d, p.srcOff), dstId = ids.find(d, p.dstOff);
    const t = srcId === 0 || dstId === 0
      ? null
      : ct.lookup(this.#key, srcId, dstId, this.#sport, this.#dport);
    if (t !== null) return this.#seen(ct, rec, p, t.conn, t.dir, 58);
    const timeout = this.#firstTimeout(p, ICMPV6_TRACKING);
    if (timeout < 0) return this.#invalid(rec, p);
    if (rec.budget && !this.#takeBudget6(p)) return this.#overBudget(ct, rec, p);
    // The previous new connection never made it into the table: forget its addresses.
    const old = this.#pending6;
    if (old !== null && !old.has(CtStatus.CONFIRMED)) this.#releaseIds6(old);
    const c = ct.create(
      this.#key,
      ids.acquire(d, p.srcOff),
      ids.acquire(d, p.dstOff),
      this.#sport,
      this.#dport,
      this.#replyKey,
    );
    this.#pending6 = c;
    this.#begin(ct, rec, p, c, timeout);
  }

  /**
   * The tuple of a packet into `#key`, `#replyKey`, `#sport`, `#dport`
   * (ICMP queries by type and identifier); `#tupleIsError` for an ICMP
   * error. False when the packet has no valid tuple (INVALID).
   */
  #tuple(p: PacketInfo, icmp: IcmpTracking): boolean {
    const proto = p.proto;
    this.#key = this.#replyKey = proto;
    this.#sport = this.#dport = 0;
    this.#tupleIsError = false;
    if (proto === 6 || proto === 17) {
      if (!p.hasPorts) return false;
      this.#sport = p.sport;
      this.#dport = p.dport;
    } else if (proto === icmp.proto) {
      const type = p.icmpType;
      if (type < 0) return false;
      if (icmp.isError(type)) {
        this.#tupleIsError = true;
        return true;
      }
      const reply = icmp.queryReply[type];
      const pkt = p.pkt!;
      if (reply === undefined || p.l4Off + 8 > pkt.end) return false;
      this.#key = proto | (type << 8);
      this.#replyKey = proto | (reply << 8);
      this.#sport = this.#dport = pkt.view.getUint16(p.l4Off + 4);
    }
    return true;
  }

  /** A packet of a known connection: its counters, TCP state and timeout; ESTABLISHED or NEW. */
  #seen(ct: Conntrack, rec: PacketRecord, p: PacketInfo, c: Conn, dir: 0 | 1, icmp: number): void {
    if (dir === 1 && p.proto !== 6) c.status |= CtStatus.SEEN_REPLY;
    c.count(dir, p.len);
    const proto = p.proto;
    if (proto === 6) {
      // Linux sets SEEN_REPLY after the TCP tracker ran (it judges "only a reset answered").
      if (!this.#tcpSegment(p) || ct.tcpUpdate(c, dir, this.#seg) === TcpVerdict.INVALID) {
        return this.#invalid(rec, p);
      }
      if (dir === 1) c.status |= CtStatus.SEEN_REPLY;
    } else if (proto === 17) {
      if (c.has(CtStatus.SEEN_REPLY)) {
        c.status |= CtStatus.ASSURED;
        ct.refresh(c, CT_TIMEOUTS.udpReplied);
      } else ct.refresh(c, CT_TIMEOUTS.udpUnreplied);
    } else ct.refresh(c, proto === icmp ? CT_TIMEOUTS.icmp : CT_TIMEOUTS.generic);
    rec.conn = c;
    rec.dir = dir;
    const state = dir === 1 || c.has(CtStatus.SEEN_REPLY) ? CtBit.ESTABLISHED : CtBit.NEW;
    this.#setCt(rec, p, state | this.#natBits(c));
  }

  /** The timeout of a connection this packet starts (its TCP state into `#tcpState`), or -1 when it cannot start one. */
  #firstTimeout(p: PacketInfo, icmp: IcmpTracking): number {
    this.#tcpState = 0;
    switch (p.proto) {
      case 6: {
        const s = this.#tcpSegment(p) ? Conntrack.tcpNewState(p.tcpFlags) : -1;
        if (s < 0) return -1;
        this.#tcpState = s;
        return CT_TIMEOUTS.tcp[s]!;
      }
      case 17:
        return CT_TIMEOUTS.udpUnreplied;
      case icmp.proto:
        // Only requests start a connection; a reply without one is invalid.
        return icmp.isRequest(p.icmpType) ? CT_TIMEOUTS.icmp : -1;
      default:
        return CT_TIMEOUTS.generic;
    }
  }

  /** Load the TCP segment of `p` into `#seg`: false when conntrack finds it malformed (INVALID). */
  #tcpSegment(p: PacketInfo): boolean {
    const pkt = p.pkt!;
    return this.#seg.load(pkt.data, pkt.view, p.l4Off, p.ipOff + p.len);
  }

  /** A new, unconfirmed connection for a first packet. */
  #begin(ct: Conntrack, rec: PacketRecord, p: PacketInfo, c: Conn, timeout: number): void {
    c.tcpState = this.#tcpState;
    c.expires = ct.clock.coarseNow() + timeout;
    // #firstTimeout loaded the segment.
    if (p.proto === 6) ct.tcpStart(c, this.#seg);
    c.packetsOrig = 1;
    c.bytesOrig = p.len;
    rec.conn = c;
    this.#setCt(rec, p, CtBit.NEW);
  }

  /** RELATED when an ICMP error quotes a packet of a tracked connection (Linux icmp_error_message). */
  #trackIcmpError4(rec: PacketRecord, p: PacketInfo): void {
    const pkt = p.pkt!;
    const v = pkt.view, d = pkt.data;
    const inner = p.l4Off + 8;
    if (inner + 20 > pkt.end || (d[inner]! >> 4) !== 4) return this.#invalid(rec, p);
    if ((v.getUint16(inner + 6) & 0x1fff) !== 0) return this.#invalid(rec, p);
    const il4 = inner + ((d[inner]! & 0x0f) << 2);
    if (!this.#quotedTuple(pkt, d[inner + 9]!, il4, ICMPV4_TRACKING)) return this.#invalid(rec, p);
    // The error travels against the quoted packet: look up its inverse.
    const isrc = v.getUint32(inner + 12), idst = v.getUint32(inner + 16);
    this.#related(rec, p, this.conntrack.lookup(this.#key, idst, isrc, this.#dport, this.#sport));
  }

  /** RELATED when an ICMPv6 error quotes a packet of a tracked connection. */
  #trackIcmpError6(rec: PacketRecord, p: PacketInfo): void {
    const pkt = p.pkt!;
    const inner = p.l4Off + 8;
    if (inner + 40 > pkt.end || (pkt.data[inner]! >> 4) !== 6) return this.#invalid(rec, p);
    const q = this.#inner6;
    q.load6(pkt, inner, null, null);
    if (q.laterFragment || !this.#quotedTuple(pkt, q.proto, q.l4Off, ICMPV6_TRACKING)) {
      return this.#invalid(rec, p);
    }
    const d = pkt.data;
    const isrc = this.#ids6.find(d, q.srcOff), idst = this.#ids6.find(d, q.dstOff);
    // The error travels against the quoted packet: look up its inverse.
    const t = isrc === 0 || idst === 0
      ? null
      : this.conntrack6.lookup(this.#key, idst, isrc, this.#dport, this.#sport);
    this.#related(rec, p, t);
  }

  /** The tuple of the packet an ICMP error quotes (upper layer at `l4`), as {@link #tuple} does. */
  #quotedTuple(pkt: PacketBuffer, proto: number, l4: number, icmp: IcmpTracking): boolean {
    this.#key = proto;
    this.#sport = this.#dport = 0;
    if (proto === 6 || proto === 17) {
      if (l4 + 4 > pkt.end) return false;
      this.#sport = pkt.view.getUint16(l4);
      this.#dport = pkt.view.getUint16(l4 + 2);
    } else if (proto === icmp.proto) {
      if (l4 + 8 > pkt.end) return false;
      const reply = icmp.queryReply[pkt.data[l4]!];
      if (reply === undefined) return false;
      this.#key = proto | (reply << 8);
      this.#sport = this.#dport = pkt.view.getUint16(l4 + 4);
    }
    return true;
  }

  #related(rec: PacketRecord, p: PacketInfo, t: { conn: Conn; dir: 0 | 1 } | null): void {
    if (t === null) return this.#invalid(rec, p);
    rec.conn = t.conn;
    rec.dir = t.dir;
    this.#setCt(rec, p, CtBit.RELATED | this.#natBits(t.conn));
  }

  #natBits(c: Conn): number {
    return (c.has(CtStatus.SRC_NAT) ? CtBit.SNAT : 0) | (c.has(CtStatus.DST_NAT) ? CtBit.DNAT : 0);
  }

  /**
   * Charge a new IPv6 connection to its source: the /64, which one host
   * (or one attacker) holds — but a link-local source by its interface
   * identifier, since every host on the link shares fe80::/64.
   */
  #takeBudget6(p: PacketInfo): boolean {
    const v = p.pkt!.view, o = p.srcOff;
    const linkLocal = (v.getUint16(o) & 0xffc0) === 0xfe80;
    return linkLocal
      ? this.#budget6.take(v.getInt32(o + 8), v.getInt32(o + 12))
      : this.#budget6.take(v.getInt32(o), v.getInt32(o + 4));
  }

  /** A new connection from a source whose budget is spent: nothing is made, the packet goes. */
  #overBudget(ct: Conntrack, rec: PacketRecord, p: PacketInfo): void {
    ct.stats.sourceBudgetDropped++;
    rec.overBudget = true;
    rec.conn = null;
    this.#setCt(rec, p, CtBit.INVALID);
  }

  #invalid(rec: PacketRecord, p: PacketInfo): void {
    this.conntrack.stats.invalid++;
    rec.conn = null;
    this.#setCt(rec, p, CtBit.INVALID);
  }

  #setCt(rec: PacketRecord, p: PacketInfo, bits: number): void {
    rec.ct = bits;
    p.ctState = bits;
    p.conn = rec.conn;
  }

  /**
   * Release the address ids an IPv6 connection holds: its original
   * tuple's two, and the one a NAT mapping put into its reply tuple.
   */
  #releaseIds6(c: Conn): void {
    const o = c.orig, r = c.reply, ids = this.#ids6;
    ids.release(o.src);
    ids.release(o.dst);
    if (r.dst !== o.src) ids.release(r.dst);
    if (r.src !== o.dst) ids.release(r.src);
  }

  #confirm4(rec: PacketRecord): boolean {
    const c = rec.conn;
    if (c === null || c.has(CtStatus.CONFIRMED)) return true;
    return this.conntrack.confirm(c);
  }

  #confirm6(rec: PacketRecord): boolean {
    const c = rec.conn;
    if (c === null || c.has(CtStatus.CONFIRMED)) return true;
    if (!this.conntrack6.confirm(c)) return false;
    if (this.#pending6 === c) this.#pending6 = null;
    return true;
  }

  // ------------------------------------------------------------ NAT

  /**
   * The nat table's step at a hook: on a connection's first packet, run
   * the chain to choose its mapping; then translate the packet. `p` is
   * read again after a rewrite only when the hook goes on to a chain
   * (`readAfter`: OUTPUT's filter); elsewhere NAT is the hook's last step
   * and the next hook reads the packet afresh.
   *
   * @returns false to drop (counted)
   */
  #natStep(
    rec: PacketRecord,
    p: PacketInfo,
    manip: number,
    table: CompiledTable,
    chain: CompiledChain | null,
    readAfter = false,
  ): boolean {
    const c = rec.conn;
    if (c === null) return true;
    const pkt = p.pkt!;
    const v6 = p.family === 6;
    if ((rec.ct & CtBit.RELATED) !== 0) {
      if (!v6 && p.proto === 1 && icmpv4IsError(p.icmpType)) {
        natIcmpError(pkt, p.ipOff, c, rec.dir, manip);
        if (readAfter) this.#reload(p);
      } else if (v6 && p.proto === 58 && p.icmpType >= 0 && p.icmpType < 128) {
        // RFC 4443 §2.1: types below 128 are errors.
        natIcmpError6(pkt, p.ipOff, p.l4Off, c, rec.dir, manip, this.#addressOf6);
        if (readAfter) this.#reload(p);
      }
      return true;
    }
    const done = manip === Manip.SRC ? CtStatus.SRC_NAT_DONE : CtStatus.DST_NAT_DONE;
    if (!c.has(CtStatus.CONFIRMED) && !c.has(done)) {
      c.status |= done;
      if (chain !== null) {
        this.#natRule = null;
        this.#runBuiltin(table, chain, p, rec);
        const r = this.#natRule as CompiledRule | null;
        if (
          r !== null && !(v6 ? this.#setupNat6(c, r, p, manip) : this.#setupNat(c, r, p, manip))
        ) {
          return false;
        }
        rec.ct = p.ctState = rec.ct | this.#natBits(c);
      }
    }
    if (needsManip(c, rec.dir, manip)) {
      if (v6) {
        const l4 = p.laterFragment ? -1 : p.l4Off;
        natPacket6(pkt, p.ipOff, l4, p.proto, c, rec.dir, manip, this.#addressOf6);
      } else natPacket(pkt, p.ipOff, c, rec.dir, manip);
      if (readAfter) this.#reload(p);
    }
    return true;
  }

  /** Read the packet again after NAT rewrote it (its mark, ctstate and connection stay). */
  #reload(p: PacketInfo): void {
    const mark = p.mark, ct = p.ctState, conn = p.conn;
    if (p.family === 6) p.load6(p.pkt!, p.ipOff, p.inNic, p.outNic);
    else p.load(p.pkt!, p.ipOff, p.inNic, p.outNic);
    p.mark = mark;
    p.ctState = ct;
    p.conn = conn;
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
      case "NETMAP": {
        // The prefix replaced, the host bits kept (Linux nf_nat_netmap).
        if (t.to.family !== 4) return true;
        const mask = ipv4Mask(t.to.prefixLen);
        const from = manip === Manip.SRC ? p.src : p.dst;
        addr = ((t.to.address & mask) | (from & ~mask)) >>> 0;
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

  /**
   * NAT66 (ip6tables' nf_nat_ipv6): the mapping of a new IPv6 connection.
   * The new address is interned as an id the reply tuple holds a
   * reference to (released with the connection).
   */
  #setupNat6(c: Conn, r: CompiledRule, p: PacketInfo, manip: number): boolean {
    const t = r.rule.target!;
    const d = p.pkt!.data;
    let addr: Uint8Array;
    let ports: { min: number; max: number } | undefined;
    switch (t.kind) {
      case "SNAT":
      case "DNAT":
        if (t.address.family !== 6) return true;
        addr = t.address.address;
        ports = t.ports;
        break;
      case "MASQUERADE": {
        // RFC 6724 source selection for the destination by the egress NIC
        // (Linux nf_nat_masquerade_ipv6: ipv6_dev_get_saddr).
        const out = p.outNic;
        const a = out === null ? null : this.#stack.ipv6.selectSource(d, p.dstOff, out);
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
        // To the ingress NIC's first address, global before link-local (its
        // address list's order in Linux); locally generated: ::1.
        if (p.inNic === null) addr = IPV6_LOOPBACK;
        else {
          const list = this.#stack.ipv6.nicState(p.inNic)?.addresses ?? [];
          const usable = list.filter((a) => a.state !== "tentative");
          const a = usable.find((x) => x.address[0] !== 0xfe || (x.address[1]! & 0xc0) !== 0x80) ??
            usable[0];
          if (a === undefined) return false;
          addr = a.address;
        }
        ports = t.ports;
        break;
      }
      case "NETMAP": {
        if (t.to.family !== 6) return true;
        const from = manip === Manip.SRC ? p.srcOff : p.dstOff;
        addr = d.slice(from, from + 16);
        const to = t.to.address, len = t.to.prefixLen;
        let i = 0;
        for (; (i + 1) * 8 <= len; i++) addr[i] = to[i]!;
        if (len % 8 !== 0) {
          const m = (0xff << (8 - (len % 8))) & 0xff;
          addr[i] = (addr[i]! & ~m) | (to[i]! & m);
        }
        break;
      }
      default:
        return true;
    }
    const ids = this.#ids6;
    const id = ids.acquire(addr, 0);
    const rt = c.reply;
    const before = manip === Manip.SRC ? rt.dst : rt.src;
    const ok = setupNat(this.conntrack6, this.#stack.random, c, manip, id, ports);
    // The reply tuple holds one reference per address it names: an
    // identity mapping already had one.
    if (id === before) ids.release(id);
    if (!ok) {
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
    // A MARK rule's mark is the packet's from now on.
    p.pkt!.mark = p.mark;
    return v;
  }

  /**
   * Walk a chain: the candidates its index yields for the packet, merged
   * in rule order (compile.ts), or every rule in turn for a chain without
   * an index and in the linear reference mode. Each candidate is tested in
   * full; the first terminal target decides.
   */
  #walk(
    table: CompiledTable,
    chain: CompiledChain,
    p: PacketInfo,
    rec: PacketRecord,
    depth: number,
  ): number {
    const ix = chain.index;
    if (ix === null || this.#linear) return this.#walkLinear(table, chain, p, rec, depth);
    const rules = chain.rules;
    const m = this.#mergeAt(depth, ix.maxLists);
    const pos = m.pos, end = m.end, mem = ix.members;
    let k = ix.gather(p, pos, end);
    if (k === 1) {
      // One run (the usual case): no merge.
      for (let q = pos[0]!, e = end[0]!; q < e; q++) {
        const i = mem[q]!;
        const r = rules[i]!;
        if (!r.matches(p)) continue;
        const v = this.#apply(table, chain, r, i, p, rec, depth);
        if (v !== GO_ON) return v;
      }
      return Verdict.CONTINUE;
    }
    // Merge the sorted runs: take the smallest head each time; a rule that
    // is in two runs (`--ports`) comes up twice in a row and is taken once.
    let last = -1;
    while (k > 0) {
      let best = 0, i = mem[pos[0]!]!;
      for (let j = 1; j < k; j++) {
        const h = mem[pos[j]!]!;
        if (h < i) {
          i = h;
          best = j;
        }
      }
      if (++pos[best]! === end[best]) {
        k--;
        pos[best] = pos[k]!;
        end[best] = end[k]!;
      }
      if (i === last) continue;
      last = i;
      const r = rules[i]!;
      if (!r.matches(p)) continue;
      const v = this.#apply(table, chain, r, i, p, rec, depth);
      if (v !== GO_ON) return v;
    }
    return Verdict.CONTINUE;
  }

  /** The plain walk: every rule in turn, as iptables does. */
  #walkLinear(
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
      const v = this.#apply(table, chain, r, i, p, rec, depth);
      if (v !== GO_ON) return v;
    }
    return Verdict.CONTINUE;
  }

  /** The merge state for a walk at `depth` with room for `n` runs. */
  #mergeAt(depth: number, n: number): ChainMerge {
    let m = this.#merges[depth];
    if (m === undefined || m.pos.length < n) {
      m = { pos: new Int32Array(n), end: new Int32Array(n) };
      this.#merges[depth] = m;
    }
    return m;
  }

  /**
   * Rule `i` of `chain` matched: count it and do its target. A {@link Verdict}
   * ends the walk (CONTINUE for RETURN); {@link GO_ON} goes on to the next rule.
   */
  #apply(
    table: CompiledTable,
    chain: CompiledChain,
    r: CompiledRule,
    i: number,
    p: PacketInfo,
    rec: PacketRecord,
    depth: number,
  ): number {
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
      case TargetKind.EDIT:
        if (!r.editor!.apply(p, rec.conn)) {
          this.stats.nptUntranslatable++;
          return Verdict.DROP;
        }
        break;
      case TargetKind.SNAT:
      case TargetKind.DNAT:
      case TargetKind.MASQUERADE:
      case TargetKind.REDIRECT:
      case TargetKind.NETMAP:
        this.#natRule = r;
        return Verdict.ACCEPT;
    }
    return GO_ON;
  }

  /** A rule or policy dropped the packet: count, and REJECT if a REJECT rule did. */
  #drop(pkt: PacketBuffer, ipOff: number, inNic: Nic | null, p: PacketInfo): boolean {
    this.stats.dropped++;
    const r = this.#reject;
    this.#reject = null;
    if (r === null) return false;
    const reason = (r.rule.target as Extract<Target, { kind: "REJECT" }>).reason;
    if (!rejectChecksumOk(pkt, p)) return false;
    const v4 = p.family === 4;
    const layer = v4 ? this.#stack.ipv4 : this.#stack.ipv6;
    if (reason === "tcp-reset") {
      // RFC 793 §3.4 reset generation, from the segment's destination (the
      // closed-port reset of the layer, counted here as a REJECT).
      const ttl = v4
        ? this.#stack.ipv4.settings.defaultTtl
        : this.#stack.ipv6.settings.defaultHopLimit;
      if (
        p.proto === 6 && p.hasPorts &&
        sendTcpReset(p.family, layer, ttl, inNic, pkt, ipOff, p.l4Off, ipOff + p.len)
      ) this.stats.rejectsSent++;
      return false;
    }
    // ICMP / ICMPv6 Destination Unreachable (RFC 792, RFC 4443 §3.1).
    const code = (v4 ? REJECT_CODES : REJECT6_CODES)[reason];
    if (code !== undefined && layer.icmp.sendErrorAbout(pkt, ipOff, inNic, v4 ? 3 : 1, code, 0)) {
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
    // The path MTU less the IP and TCP headers (IPv6's is 40 bytes).
    const hdrs = p.family === 4 ? 40 : 60;
    const want = t.mss === "pmtu" ? (p.outNic === null ? cur : p.outNic.mtu() - hdrs) : t.mss;
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

/**
 * Carry packet/byte counters from `old` tables to the same rules (same
 * table, chain and text; equal texts in order) and policies in `next`.
 * A chain whose rules are unchanged copies them rule by rule, without a
 * map (a reload that changed something else, or other chains).
 */
function carryCounters(old: CompiledTable[], next: CompiledTable[]): void {
  const chains = (t: CompiledTable) => [...t.builtins.values(), ...t.userChains];
  const before = new Map<string, CompiledChain>();
  old.forEach((t, i) => {
    for (const c of chains(t)) before.set(`${i}/${c.name}`, c);
  });
  next.forEach((t, i) => {
    for (const c of chains(t)) {
      const p = before.get(`${i}/${c.name}`);
      if (p === undefined) continue;
      if (c.builtin) {
        c.policyPackets = p.policyPackets;
        c.policyBytes = p.policyBytes;
      }
      const from = p.rules, to = c.rules;
      let same = from.length === to.length;
      for (let k = 0; same && k < to.length; k++) same = from[k]!.rule.text === to[k]!.rule.text;
      if (same) {
        for (let k = 0; k < to.length; k++) {
          to[k]!.packets = from[k]!.packets;
          to[k]!.bytes = from[k]!.bytes;
        }
        continue;
      }
      const byText = new Map<string, CompiledRule[]>();
      for (const r of from) {
        const list = byText.get(r.rule.text);
        if (list === undefined) byText.set(r.rule.text, [r]);
        else list.push(r);
      }
      for (const r of to) {
        const prev = byText.get(r.rule.text)?.shift();
        if (prev !== undefined) {
          r.packets = prev.packets;
          r.bytes = prev.bytes;
        }
      }
    }
  });
}

/**
 * Whether REJECT may answer `pkt` (Linux nf_reject_verify_csum and
 * reject6_csum_ok): never a later fragment; otherwise only when the
 * transport checksum is right, or was checked or left to the device by
 * the kernel (virtio DATA_VALID / NEEDS_CSUM), or the protocol has no
 * such checksum (UDP with 0, GRE, AH, ESP, SCTP, UDP-Lite, DCCP). A
 * corrupted packet is dropped without an answer, and so is a first
 * fragment, whose checksum covers bytes not in it: the kernel answers
 * one only when conntrack made it reassemble first, which tapir does not.
 */
export function rejectChecksumOk(pkt: PacketBuffer, p: PacketInfo): boolean {
  if (p.laterFragment) return false;
  if ((pkt.vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0) return true;
  const proto = p.proto;
  const end = Math.min(pkt.end, p.ipOff + p.len);
  const len = end - p.l4Off;
  if (len < 0) return false;
  switch (proto) {
    case 17:
      if (len < 8) return false;
      if (pkt.view.getUint16(p.l4Off + 6) === 0) return true;
      break;
    case 33:
    case 47:
    case 50:
    case 51:
    case 132:
    case 136:
      return true;
  }
  const pseudo = p.family === 6
    ? ipv6PseudoHeaderSum(pkt.data, p.srcOff, p.dstOff, proto, len)
    : proto === 6 || proto === 17
    ? ipv4PseudoHeaderSum(p.src, p.dst, proto, len)
    : 0;
  return finishChecksum(onesSum(pkt.data, p.l4Off, len, pseudo)) === 0;
}
