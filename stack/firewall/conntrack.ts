/**
 * Connection tracking for IPv4: a hash table of connections keyed by their
 * original and reply tuples, protocol state machines (TCP as Linux's
 * nf_conntrack_proto_tcp, UDP, ICMP queries, a generic one), timeouts on
 * the stack's {@link Clock}, and a table limit with early drop of
 * unassured entries (Linux `nf_conntrack_max`).
 *
 * A tuple is (protocol key, source, destination, source port, destination
 * port), all numbers: no string is built per packet. For ICMP queries the
 * protocol key carries the ICMP type (`1 | type << 8`) and both "ports" are
 * the identifier, so NAT code can treat the identifier like a port.
 *
 * @module
 */
import type { Clock, Timer } from "../clock.ts";

/** Direction of a packet relative to its connection. */
export const CtDir = { ORIGINAL: 0, REPLY: 1 } as const;

/** `Conn.status` bits (Linux IPS_*). */
export const CtStatus = {
  /** A packet in the reply direction was seen. */
  SEEN_REPLY: 1,
  /** The connection is worth keeping: never early-dropped. */
  ASSURED: 2,
  /** In the table (the packet that made it was not dropped). */
  CONFIRMED: 4,
  /** The source is translated (SNAT, MASQUERADE). */
  SRC_NAT: 8,
  /** The destination is translated (DNAT, REDIRECT). */
  DST_NAT: 16,
  /** NAT was decided for the source manipulation (even if to identity). */
  SRC_NAT_DONE: 32,
  /** NAT was decided for the destination manipulation. */
  DST_NAT_DONE: 64,
  /** Removed from the table. */
  DYING: 128,
} as const;

/** TCP conntrack states (Linux TCP_CONNTRACK_*). */
export const TcpCtState = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
  SYN_SENT2: 9,
} as const;

/** Names of {@link TcpCtState} values, for dumps and tests. */
export const TCP_CT_STATE_NAMES: readonly string[] = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
];

const S = 1000;
/** Timeouts in ms, Linux's defaults (nf_conntrack_tcp_timeout_* and friends). */
export const CT_TIMEOUTS = {
  /** By {@link TcpCtState}. */
  tcp: [10 * S, 120 * S, 60 * S, 5 * 86_400 * S, 120 * S, 60 * S, 30 * S, 120 * S, 10 * S, 120 * S],
  udpUnreplied: 30 * S,
  udpReplied: 120 * S,
  icmp: 30 * S,
  generic: 600 * S,
} as const;

// Linux tcp_conntracks[dir][event][state], events syn, synack, fin, ack, rst, none.
const sNO = 0, sSS = 1, sSR = 2, sES = 3, sFW = 4, sCW = 5, sLA = 6, sTW = 7, sCL = 8, sS2 = 9;
const sIV = 10, sIG = 11;
const TCP_TABLE: readonly (readonly (readonly number[])[])[] = [
  [
    /* syn */ [sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2],
    /* synack */ [sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR],
    /* fin */ [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    /* ack */ [sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV],
    /* rst */ [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    /* none */ [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
  [
    /* syn */ [sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2],
    /* synack */ [sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR],
    /* fin */ [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    /* ack */ [sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG],
    /* rst */ [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    /* none */ [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
];

/** Linux get_conntrack_index: the event a TCP flag byte is. */
function tcpEvent(flags: number): number {
  if (flags & 0x04) return 4; // RST
  if (flags & 0x02) return flags & 0x10 ? 1 : 0; // SYN(+ACK)
  if (flags & 0x01) return 2; // FIN
  if (flags & 0x10) return 3; // ACK
  return 5;
}

/** One direction's tuple: a node in the table's hash chains. */
export class CtTuple {
  /** IP protocol, or `1 | icmpType << 8` for ICMP queries. */
  protoKey = 0;
  /** Source address (IPv4: the address; IPv6: its Ipv6AddressIds id). */
  src = 0;
  /** Destination address, as `src`. */
  dst = 0;
  /** Source port (ICMP query: the identifier). */
  sport = 0;
  /** Destination port (ICMP query: the identifier). */
  dport = 0;
  /** Next node in the same hash bucket. */
  next: CtTuple | null = null;

  /** @param conn the connection, @param dir which of its tuples this is */
  constructor(readonly conn: Conn, readonly dir: 0 | 1) {}

  /** Set every field. */
  set(protoKey: number, src: number, dst: number, sport: number, dport: number): void {
    this.protoKey = protoKey;
    this.src = src;
    this.dst = dst;
    this.sport = sport;
    this.dport = dport;
  }

  /** `conntrack -L`-like text. */
  toString(): string {
    const a = (n: number) => `${n >>> 24}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    return `src=${a(this.src)} dst=${a(this.dst)} sport=${this.sport} dport=${this.dport}`;
  }
}

/** One tracked connection. */
export class Conn {
  /** The tuple of the first packet, and the tuple replies carry (after NAT). */
  readonly orig: CtTuple;
  readonly reply: CtTuple;
  /** IP protocol number. */
  proto = 0;
  /** {@link CtStatus} bits. */
  status = 0;
  /** TCP: a {@link TcpCtState}. */
  tcpState = 0;
  /** Clock time the entry expires. */
  expires = 0;
  /** When the pending timer fires (it re-arms itself if `expires` moved later). */
  timerAt = 0;
  timer: Timer | null = null;
  /** For MASQUERADE: the id of the NIC whose address the source became (0: none). */
  masqNic = 0;
  /** Packets and bytes seen, by direction. */
  packets: [number, number] = [0, 0];
  bytes: [number, number] = [0, 0];
  /** Insertion-ordered list of the table (oldest first), for early drop. */
  prev: Conn | null = null;
  next: Conn | null = null;
  readonly onTimer: () => void;

  constructor(table: Conntrack) {
    this.orig = new CtTuple(this, 0);
    this.reply = new CtTuple(this, 1);
    this.onTimer = () => table.timerFired(this);
  }

  /** True when `bit` ({@link CtStatus}) is set. */
  has(bit: number): boolean {
    return (this.status & bit) !== 0;
  }
}

/** Conntrack counters. */
export interface ConntrackStats {
  /** Connections inserted into the table. */
  inserted: number;
  /** Connections that expired. */
  expired: number;
  /** Unassured connections evicted to make room for a new one. */
  earlyDropped: number;
  /** New connections (and their first packet) dropped: the table was full of assured entries. */
  tableFullDropped: number;
  /** First packets dropped because a tuple of theirs was already in the table. */
  insertFailed: number;
  /** Packets that fit no connection state (ctstate INVALID). */
  invalid: number;
  /** Connections removed because their MASQUERADE address went away. */
  masqueradeFlushed: number;
}

/** Result of {@link Conntrack.tcpUpdate}. */
export const TcpVerdict = { OK: 0, IGNORE: 1, INVALID: 2 } as const;

/**
 * The connection table.
 *
 * @example
 * ```ts
 * import { Conntrack } from "./conntrack.ts";
 * import { ManualClock } from "../clock.ts";
 * const ct = new Conntrack(new ManualClock(), 1024);
 * const c = ct.create(17, 1, 2, 1000, 53);
 * console.assert(ct.confirm(c) && ct.size === 1);
 * ```
 */
export class Conntrack {
  readonly stats: ConntrackStats = {
    inserted: 0,
    expired: 0,
    earlyDropped: 0,
    tableFullDropped: 0,
    insertFailed: 0,
    invalid: 0,
    masqueradeFlushed: 0,
  };
  /** Entries in the table. */
  size = 0;
  #buckets: (CtTuple | null)[];
  #mask: number;
  #head: Conn | null = null;
  #tail: Conn | null = null;
  /** Called when a confirmed connection leaves the table (IPv6 releases its address ids). */
  onRemove: ((c: Conn) => void) | null = null;

  /** @param max most entries (Linux nf_conntrack_max) */
  constructor(readonly clock: Clock, readonly max: number) {
    let n = 1024;
    while (n < max && n < (1 << 22)) n <<= 1;
    this.#buckets = new Array<CtTuple | null>(n).fill(null);
    this.#mask = n - 1;
  }

  #hash(protoKey: number, src: number, dst: number, sport: number, dport: number): number {
    let h = Math.imul(src ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ dst, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ ((sport << 16) | dport), 0x27d4eb2f);
    h = Math.imul(h ^ (h >>> 15) ^ protoKey, 0x165667b1);
    return (h ^ (h >>> 16)) & this.#mask;
  }

  /** The tuple node equal to the given tuple, or null. */
  lookup(protoKey: number, src: number, dst: number, sport: number, dport: number): CtTuple | null {
    let t = this.#buckets[this.#hash(protoKey, src, dst, sport, dport)] ?? null;
    while (t !== null) {
      if (
        t.src === src && t.dst === dst && t.sport === sport && t.dport === dport &&
        t.protoKey === protoKey
      ) return t;
      t = t.next;
    }
    return null;
  }

  /** Whether a tuple is used by a confirmed connection other than `except`. */
  taken(
    protoKey: number,
    src: number,
    dst: number,
    sport: number,
    dport: number,
    except: Conn | null,
  ): boolean {
    const t = this.lookup(protoKey, src, dst, sport, dport);
    return t !== null && t.conn !== except;
  }

  /**
   * A new, unconfirmed connection for a first packet with this tuple; the
   * reply tuple is its inverse (NAT changes it before {@link confirm}).
   * ICMP queries pass `replyProtoKey` (the reply's type).
   */
  create(
    protoKey: number,
    src: number,
    dst: number,
    sport: number,
    dport: number,
    replyProtoKey: number = protoKey,
  ): Conn {
    const c = new Conn(this);
    c.proto = protoKey & 0xff;
    c.orig.set(protoKey, src, dst, sport, dport);
    c.reply.set(replyProtoKey, dst, src, dport, sport);
    return c;
  }

  /**
   * Put `c` in the table (the packet that created it survived every hook).
   * Makes room by early drop when the table is full.
   *
   * @returns false when it could not be inserted (counted); drop the packet
   */
  confirm(c: Conn): boolean {
    if (c.has(CtStatus.CONFIRMED)) return true;
    const o = c.orig, r = c.reply;
    if (
      this.lookup(o.protoKey, o.src, o.dst, o.sport, o.dport) !== null ||
      this.lookup(r.protoKey, r.src, r.dst, r.sport, r.dport) !== null
    ) {
      this.stats.insertFailed++;
      return false;
    }
    if (this.size >= this.max && !this.#earlyDrop()) {
      this.stats.tableFullDropped++;
      return false;
    }
    this.#link(o);
    this.#link(r);
    c.status |= CtStatus.CONFIRMED;
    c.prev = this.#tail;
    c.next = null;
    if (this.#tail !== null) this.#tail.next = c;
    else this.#head = c;
    this.#tail = c;
    this.size++;
    this.stats.inserted++;
    if (c.expires > 0) this.#arm(c);
    return true;
  }

  /** Linux early_drop: evict an unassured entry, oldest first, looking at up to 64. */
  #earlyDrop(): boolean {
    let c = this.#head;
    for (let i = 0; i < 64 && c !== null; i++, c = c.next) {
      if (!c.has(CtStatus.ASSURED)) {
        this.remove(c);
        this.stats.earlyDropped++;
        return true;
      }
    }
    return false;
  }

  #link(t: CtTuple): void {
    const h = this.#hash(t.protoKey, t.src, t.dst, t.sport, t.dport);
    t.next = this.#buckets[h] ?? null;
    this.#buckets[h] = t;
  }

  #unlink(t: CtTuple): void {
    const h = this.#hash(t.protoKey, t.src, t.dst, t.sport, t.dport);
    let p = this.#buckets[h] ?? null;
    if (p === t) {
      this.#buckets[h] = t.next;
      t.next = null;
      return;
    }
    while (p !== null && p.next !== t) p = p.next;
    if (p !== null) p.next = t.next;
    t.next = null;
  }

  /** Take `c` out of the table and cancel its timer. */
  remove(c: Conn): void {
    if (!c.has(CtStatus.CONFIRMED) || c.has(CtStatus.DYING)) return;
    c.status |= CtStatus.DYING;
    this.#unlink(c.orig);
    this.#unlink(c.reply);
    if (c.prev !== null) c.prev.next = c.next;
    else this.#head = c.next;
    if (c.next !== null) c.next.prev = c.prev;
    else this.#tail = c.prev;
    c.prev = c.next = null;
    c.timer?.cancel();
    c.timer = null;
    this.size--;
    this.onRemove?.(c);
  }

  /**
   * Set `c` to expire `ms` from now. Per packet this only stores a number:
   * the timer re-arms itself when it fires early, and is rescheduled only
   * when the deadline moves earlier (a state change).
   */
  refresh(c: Conn, ms: number): void {
    c.expires = this.clock.now() + ms;
    if (c.has(CtStatus.CONFIRMED) && (c.timer === null || c.expires < c.timerAt)) this.#arm(c);
  }

  #arm(c: Conn): void {
    c.timer?.cancel();
    c.timerAt = c.expires;
    c.timer = this.clock.schedule(c.expires - this.clock.now(), c.onTimer);
  }

  /** Timer callback of `c` (internal). */
  timerFired(c: Conn): void {
    c.timer = null;
    if (c.has(CtStatus.DYING)) return;
    if (c.expires > this.clock.now()) {
      this.#arm(c);
      return;
    }
    this.stats.expired++;
    this.remove(c);
  }

  /** Every connection, oldest first. */
  *entries(): IterableIterator<Conn> {
    for (let c = this.#head; c !== null; c = c.next) yield c;
  }

  /** Remove every connection for which `pred` holds; returns how many. */
  removeWhere(pred: (c: Conn) => boolean): number {
    let n = 0;
    for (let c = this.#head; c !== null;) {
      const next = c.next;
      if (pred(c)) {
        this.remove(c);
        n++;
      }
      c = next;
    }
    return n;
  }

  /** Remove everything. */
  clear(): void {
    this.removeWhere(() => true);
  }

  /**
   * Whether a TCP segment with `flags` may start a connection (Linux
   * tcp_new with nf_conntrack_tcp_loose=1: a SYN, or an ACK picked up
   * mid-stream).
   */
  static tcpNewState(flags: number): number {
    const s = TCP_TABLE[0]![tcpEvent(flags)]![sNO]!;
    return s === sIV ? -1 : s;
  }

  /**
   * Run the TCP state machine for a segment of `c` in direction `dir`, and
   * refresh the timeout of the new state.
   *
   * @returns a {@link TcpVerdict}
   */
  tcpUpdate(c: Conn, dir: 0 | 1, flags: number): number {
    const old = c.tcpState;
    const next = TCP_TABLE[dir]![tcpEvent(flags)]![old]!;
    if (next === sIG) return TcpVerdict.IGNORE;
    if (next === sIV) return TcpVerdict.INVALID;
    // A SYN in the original direction after TIME_WAIT/CLOSE reopens the
    // connection (Linux kills and recreates it; the NAT mapping is kept here).
    if (dir === 0 && next === sSS && (old === sTW || old === sCL)) {
      c.status &= ~(CtStatus.SEEN_REPLY | CtStatus.ASSURED);
    }
    c.tcpState = next;
    if (
      next === sES && !c.has(CtStatus.ASSURED) &&
      (old === sSR || (old === sES && c.has(CtStatus.SEEN_REPLY)))
    ) {
      c.status |= CtStatus.ASSURED;
    }
    this.refresh(c, CT_TIMEOUTS.tcp[next]!);
    return TcpVerdict.OK;
  }
}
