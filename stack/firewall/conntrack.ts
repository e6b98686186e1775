/**
 * Connection tracking (one table per family): a hash table of connections keyed by their
 * original and reply tuples, protocol state machines (TCP as Linux's
 * nf_conntrack_proto_tcp, UDP, ICMP queries, a generic one), timeouts on
 * the stack's {@link Clock}, and a table limit with early drop of
 * unassured entries (Linux `nf_conntrack_max`).
 *
 * TCP connections are tracked with their windows as Linux's
 * `tcp_in_window` does: per direction the highest sequence sent, the
 * highest right edge the peer allowed and the largest window (scaled per
 * RFC 7323 when both SYNs offer it); a segment outside those bounds is
 * INVALID (counted), unless `tcpBeLiberal` (`nf_conntrack_tcp_be_liberal`)
 * or the connection was picked up mid-stream.
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
  /** TCP with data in flight not yet acknowledged (nf_conntrack_tcp_timeout_unacknowledged). */
  tcpUnacknowledged: 300 * S,
  /** TCP after `TCP_MAX_RETRANS` retransmissions (nf_conntrack_tcp_timeout_max_retrans). */
  tcpMaxRetrans: 300 * S,
} as const;

/** Retransmissions of one segment before the connection gets the short timeout (nf_conntrack_tcp_max_retrans). */
const TCP_MAX_RETRANS = 3;

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

// Linux TCP_*_SET: the event index of a segment.
const SYN_SET = 0, SYNACK_SET = 1, FIN_SET = 2, ACK_SET = 3, RST_SET = 4;

/** Linux get_conntrack_index: the event a TCP flag byte is. */
function tcpEvent(flags: number): number {
  if (flags & 0x04) return 4; // RST
  if (flags & 0x02) return flags & 0x10 ? 1 : 0; // SYN(+ACK)
  if (flags & 0x01) return 2; // FIN
  if (flags & 0x10) return 3; // ACK
  return 5;
}

/**
 * New connections a second one source (IPv6: one /64) may start through
 * PREROUTING, by default (`conntrack.per_source_rate`; the burst is twice
 * it): well above what one host opens — a browser, a NATed LAN's DNS
 * forwarder — and about a tenth of what tapir can set up, so that one
 * flooding neighbour leaves the rest for everyone else.
 */
export const CT_PER_SOURCE_RATE = 5000;

/** The default depth of a source's bucket for a budget of `rate` a second: twice it (at least 1). */
export function ctPerSourceBurst(rate: number): number {
  return Math.max(1, 2 * rate);
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
  /** TCP: the window tracking state (null for other protocols). */
  tcp: TcpTrack | null = null;
  /** Clock time the entry expires. */
  expires = 0;
  /**
   * Its deadline in the table's expiry heap (it is looked at again then,
   * and goes back in if `expires` moved later), and its place there (−1:
   * not in the heap). The table keeps one clock timer for all its entries.
   */
  timerAt = 0;
  heapIndex = -1;
  /** Order of arming, so entries with one deadline expire in the order they were armed. */
  armSeq = 0;
  /** For MASQUERADE: the id of the NIC whose address the source became (0: none). */
  masqNic = 0;
  /** The connection's mark (`-j CONNMARK`, `-m connmark`; Linux ct->mark). */
  mark = 0;
  /** Packets and bytes seen in the original direction and in the reply direction (fields, not arrays: an entry's size counts). */
  packetsOrig = 0;
  packetsReply = 0;
  bytesOrig = 0;
  bytesReply = 0;
  /** Insertion-ordered list of the table (oldest first), for early drop. */
  prev: Conn | null = null;
  next: Conn | null = null;

  constructor() {
    this.orig = new CtTuple(this, 0);
    this.reply = new CtTuple(this, 1);
  }

  /** Count a packet of `len` bytes in direction `dir`. */
  count(dir: 0 | 1, len: number): void {
    if (dir === 0) {
      this.packetsOrig++;
      this.bytesOrig += len;
    } else {
      this.packetsReply++;
      this.bytesReply += len;
    }
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
  /** TCP segments outside the tracked window (Linux tcp_in_window), made INVALID; also in `invalid`. */
  tcpOutOfWindow: number;
  /** First packets of new connections dropped before anything was made: their source's budget of new connections was spent. */
  sourceBudgetDropped: number;
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
    tcpOutOfWindow: 0,
    sourceBudgetDropped: 0,
  };
  /**
   * Accept TCP segments outside the window instead of marking them
   * INVALID (Linux nf_conntrack_tcp_be_liberal); the window is still tracked.
   */
  tcpBeLiberal = false;
  /** Entries in the table. */
  size = 0;
  #buckets: (CtTuple | null)[];
  #mask: number;
  #head: Conn | null = null;
  #tail: Conn | null = null;
  /** Confirmed entries by `timerAt` (a binary min-heap), and the one clock timer for its top. */
  #heap: Conn[] = [];
  #timer: Timer | null = null;
  #timerAt = Infinity;
  #armSeq = 0;
  readonly #onTimer = () => this.#expireDue();
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
    const c = new Conn();
    c.proto = protoKey & 0xff;
    if (c.proto === 6) c.tcp = new TcpTrack();
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
    if (c.heapIndex >= 0) this.#heapRemove(c);
    this.size--;
    this.onRemove?.(c);
  }

  /**
   * Set `c` to expire `ms` from now. Per packet this only stores a number:
   * the entry is looked at again at its heap deadline and goes back in if
   * `expires` moved later; the heap changes only when the deadline moves
   * earlier (a state change).
   */
  refresh(c: Conn, ms: number): void {
    c.expires = this.clock.coarseNow() + ms;
    if (c.has(CtStatus.CONFIRMED) && (c.heapIndex < 0 || c.expires < c.timerAt)) this.#arm(c);
  }

  #arm(c: Conn): void {
    c.timerAt = c.expires;
    c.armSeq = this.#armSeq++;
    if (c.heapIndex < 0) {
      c.heapIndex = this.#heap.length;
      this.#heap.push(c);
    }
    // Armed only earlier than before (or new): it can only rise.
    this.#siftUp(c.heapIndex);
    this.#schedule();
  }

  /** Keep the clock timer at the heap's top deadline. */
  #schedule(): void {
    const top = this.#heap[0];
    const at = top === undefined ? Infinity : top.timerAt;
    if (at >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.clock.schedule(at - this.clock.now(), this.#onTimer);
  }

  /** The clock timer: expire every entry whose deadline came, re-arm those refreshed since. */
  #expireDue(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    const h = this.#heap, now = this.clock.now();
    while (h.length > 0 && h[0]!.timerAt <= now) {
      const c = h[0]!;
      this.#heapRemove(c);
      if (c.has(CtStatus.DYING)) continue;
      if (c.expires > now) {
        this.#arm(c);
        continue;
      }
      this.stats.expired++;
      this.remove(c);
    }
    this.#schedule();
  }

  #less(a: Conn, b: Conn): boolean {
    return a.timerAt < b.timerAt || (a.timerAt === b.timerAt && a.armSeq < b.armSeq);
  }

  #place(c: Conn, i: number): void {
    this.#heap[i] = c;
    c.heapIndex = i;
  }

  #siftUp(i: number): void {
    const h = this.#heap, c = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(c, h[p]!)) break;
      this.#place(h[p]!, i);
      i = p;
    }
    this.#place(c, i);
  }

  #siftDown(i: number): void {
    const h = this.#heap, c = h[i]!, n = h.length;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = l;
      if (l >= n) break;
      if (r < n && this.#less(h[r]!, h[l]!)) m = r;
      if (!this.#less(h[m]!, c)) break;
      this.#place(h[m]!, i);
      i = m;
    }
    this.#place(c, i);
  }

  #heapRemove(c: Conn): void {
    const h = this.#heap, i = c.heapIndex;
    c.heapIndex = -1;
    const last = h.pop()!;
    if (last === c) return;
    this.#place(last, i);
    this.#siftUp(i);
    this.#siftDown(last.heapIndex);
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
   * The window state of a new connection from its first segment (Linux
   * tcp_new, then the window check every segment gets). A connection
   * picked up mid-stream is tracked liberally in both directions (its
   * window scale is unknown) and gets the unacknowledged timeout, not
   * ESTABLISHED's five days.
   */
  tcpStart(c: Conn, s: TcpSegment): void {
    this.#start(c, 0, s);
    if (c.tcpState !== sSS && c.expires - this.clock.coarseNow() > CT_TIMEOUTS.tcpUnacknowledged) {
      c.expires = this.clock.coarseNow() + CT_TIMEOUTS.tcpUnacknowledged;
    }
  }

  /** Linux tcp_new's window state, from a segment sent in `dir`, then its window check. */
  #start(c: Conn, dir: 0 | 1, s: TcpSegment): void {
    const t = c.tcp!;
    t.reset();
    const o = t.seen[dir];
    o.end = s.end;
    o.maxWin = s.win === 0 ? 1 : s.win;
    if ((s.flags & 0x12) === 0x02) {
      o.maxEnd = o.end;
      s.options(o);
    } else {
      o.maxEnd = (o.end + o.maxWin) >>> 0;
      o.flags = t.seen[dir === 0 ? 1 : 0].flags = TCP_FLAG_SACK_PERM | TCP_FLAG_BE_LIBERAL;
    }
    this.#inWindow(c, dir, tcpEvent(s.flags), s);
  }

  /**
   * Run the TCP state machine and the window check for a segment of `c`
   * in direction `dir`, and refresh the timeout of the new state (Linux
   * nf_conntrack_tcp_packet). The caller sets SEEN_REPLY after it, as
   * Linux does.
   *
   * @returns a {@link TcpVerdict}: INVALID for a transition the table
   *   forbids or a segment outside the window; IGNORE for one that may
   *   belong to a connection conntrack is out of sync with
   */
  tcpUpdate(c: Conn, dir: 0 | 1, s: TcpSegment): number {
    const t = c.tcp;
    if (t === null) return TcpVerdict.INVALID;
    let old = c.tcpState;
    const index = tcpEvent(s.flags);
    let next = TCP_TABLE[dir]![index]![old]!;
    const sender = t.seen[dir], receiver = t.seen[dir === 0 ? 1 : 0];
    let checkWindow = true;
    switch (next) {
      case sSS: {
        if (old < sTW) break;
        // RFC 1122 §4.2.2.13: a SYN may reopen a connection in TIME_WAIT.
        // Linux reopens one that was closed (a FIN) or reset by this side,
        // killing the entry and creating it anew; tapir keeps the entry
        // (and its NAT mapping) and starts its tracking over.
        if (
          ((sender.flags | receiver.flags) & TCP_FLAG_CLOSE_INIT) !== 0 ||
          (t.lastDir === dir && t.lastIndex === RST_SET)
        ) {
          if (dir === 0) c.status &= ~(CtStatus.SEEN_REPLY | CtStatus.ASSURED);
          c.tcpState = sSS;
          this.#start(c, dir, s);
          this.refresh(c, CT_TIMEOUTS.tcp[sSS]!);
          return TcpVerdict.OK;
        }
        return this.#ignore(c, dir, index, old, s);
      }
      case sIG: {
        // b) A SYN-ACK answering a SYN conntrack ignored: the ends are in
        // sync, conntrack is not; take the SYN's annotated window.
        if (
          index === SYNACK_SET && t.lastIndex === SYN_SET && t.lastDir !== dir &&
          s.ack === t.lastEnd
        ) {
          old = sSS;
          next = sSR;
          const w = t.seen[t.lastDir];
          w.end = w.maxEnd = t.lastEnd;
          w.maxWin = t.lastWin === 0 ? 1 : t.lastWin;
          w.scale = t.lastWscale;
          t.lastFlags &= ~TCP_FLAG_EXP_CHALLENGE_ACK;
          w.flags = t.lastFlags;
          t.seen[dir].clear();
          break;
        }
        return this.#ignore(c, dir, index, old, s);
      }
      case sIV:
        return TcpVerdict.INVALID;
      case sTW:
        // RFC 5961 §4: a challenge ACK answering a spurious SYN in
        // LAST_ACK does not acknowledge the last FIN.
        if (
          old === sLA && index === ACK_SET && t.lastDir !== dir && t.lastIndex === SYN_SET &&
          (t.lastFlags & TCP_FLAG_EXP_CHALLENGE_ACK) !== 0
        ) {
          t.lastFlags &= ~TCP_FLAG_EXP_CHALLENGE_ACK;
          return TcpVerdict.IGNORE;
        }
        break;
      case sS2:
        // The table does not know simultaneous open by itself.
        t.lastFlags |= TCP_FLAG_SIMULTANEOUS_OPEN;
        break;
      case sSR:
        if (dir === 1 && index === ACK_SET && (t.lastFlags & TCP_FLAG_SIMULTANEOUS_OPEN) !== 0) {
          next = sES;
        }
        break;
      case sCL: {
        if (index !== RST_SET) break;
        // Closing: the tuple may be reused already; no window check.
        if (old >= sFW && old <= sCL) {
          checkWindow = false;
          break;
        }
        if ((receiver.flags & TCP_FLAG_MAXACK_SET) !== 0 && t.lastIndex !== SYN_SET) {
          const established = old === sES && c.has(CtStatus.ASSURED);
          if (s.seq === 0 && !established) break;
          // RFC 5961 §3.2: a reset below what the peer acknowledged is not one.
          if (before(s.seq, receiver.maxAck)) return TcpVerdict.INVALID;
          if (!established || s.seq === receiver.maxAck) break;
          // A reset ending a train of this side's data is in order.
          if (t.lastIndex === ACK_SET && t.lastDir === dir && s.seq === t.lastEnd) break;
          // Not exactly in order: keep the state for a possible challenge ACK.
          next = old;
        }
        if (
          ((c.has(CtStatus.SEEN_REPLY) && t.lastIndex === SYN_SET) ||
            (!c.has(CtStatus.ASSURED) && t.lastIndex === ACK_SET)) &&
          s.ack === t.lastEnd
        ) {
          // A reset answering a SYN or ACK conntrack let through (a, c):
          // it may acknowledge what was ignored.
          checkWindow = false;
        } else if (
          old === sSS && t.lastIndex === ACK_SET && t.lastDir === 1 && s.seq === t.lastAck
        ) {
          // A reset answering a challenge ACK let through before.
          checkWindow = false;
        }
        break;
      }
    }
    if (checkWindow) {
      const w = this.#inWindow(c, dir, index, s);
      if (w === TcpVerdict.IGNORE) return w;
      if (w === TcpVerdict.INVALID) {
        this.stats.tcpOutOfWindow++;
        this.#handleInvalid(c, dir, index);
        return w;
      }
    }
    t.lastIndex = index;
    t.lastDir = dir;
    c.tcpState = next;
    if (old !== next && next === sFW) sender.flags |= TCP_FLAG_CLOSE_INIT;
    const T = CT_TIMEOUTS;
    const stateTimeout = T.tcp[next]!;
    let timeout = stateTimeout;
    if (t.retrans >= TCP_MAX_RETRANS && stateTimeout > T.tcpMaxRetrans) timeout = T.tcpMaxRetrans;
    else if (index === RST_SET) timeout = T.tcp[sCL]!;
    else if (
      ((t.seen[0].flags | t.seen[1].flags) & TCP_FLAG_DATA_UNACKNOWLEDGED) !== 0 &&
      stateTimeout > T.tcpUnacknowledged
    ) timeout = T.tcpUnacknowledged;
    else if (t.lastWin === 0 && stateTimeout > T.tcpMaxRetrans) timeout = T.tcpMaxRetrans;
    if (!c.has(CtStatus.SEEN_REPLY)) {
      // The only answer is a reset: no connection was made; forget it
      // (after this packet, which still needs its NAT).
      if ((s.flags & 0x04) !== 0) {
        this.refresh(c, 0);
        return TcpVerdict.OK;
      }
      // A SYN retransmission does not renew the timeout (a reused port
      // would keep the entry, and its NAT, alive forever).
      if (index === SYN_SET && old === sSS) return TcpVerdict.OK;
      // Picked up mid-stream, never answered: not ESTABLISHED's timeout.
      if (next === sES && timeout > T.tcpUnacknowledged) timeout = T.tcpUnacknowledged;
    } else if (!c.has(CtStatus.ASSURED) && (old === sSR || old === sES) && next === sES) {
      c.status |= CtStatus.ASSURED;
    }
    this.refresh(c, timeout);
    return TcpVerdict.OK;
  }

  /**
   * An ignored segment (Linux TCP_CONNTRACK_IGNORE): annotated, so that a
   * SYN-ACK answering an ignored SYN can bring conntrack back in sync.
   */
  #ignore(c: Conn, dir: 0 | 1, index: number, old: number, s: TcpSegment): number {
    const t = c.tcp!;
    t.lastIndex = index;
    t.lastDir = dir;
    t.lastSeq = s.seq;
    t.lastEnd = s.end;
    t.lastWin = s.win;
    if (index === SYN_SET && dir === 0) {
      // a) A SYN in the original direction: keep its options for the SYN-ACK.
      const w = this.#scratch;
      w.clear();
      s.options(w);
      t.lastFlags = w.flags & (TCP_FLAG_WINDOW_SCALE | TCP_FLAG_SACK_PERM);
      t.lastWscale = (w.flags & TCP_FLAG_WINDOW_SCALE) !== 0 ? w.scale : 0;
      // RFC 5961: the challenge ACK it may draw in LAST_ACK is no ACK of the FIN.
      if (old === sLA) t.lastFlags |= TCP_FLAG_EXP_CHALLENGE_ACK;
    }
    // c) A possible challenge ACK answering the SYN.
    if (old === sSS && index === ACK_SET && dir === 1) t.lastAck = s.ack;
    return TcpVerdict.IGNORE;
  }

  readonly #scratch = new TcpWindow();

  /**
   * Linux tcp_in_window: whether the segment lies in the window of its
   * direction, updating both directions' bounds when it does.
   *
   * I.   seq <= sender.maxEnd (the right edge the receiver allowed)
   * II.  seq + len >= sender.end - receiver.maxWin (not all old data)
   * III. ack <= receiver.end (no acknowledgment of data not sent)
   * IV.  ack >= receiver.end - MAXACKWINDOW (not an ancient ACK)
   */
  #inWindow(c: Conn, dir: 0 | 1, index: number, s: TcpSegment): number {
    const t = c.tcp!;
    const sender = t.seen[dir], receiver = t.seen[dir === 0 ? 1 : 0];
    const flags = s.flags;
    const syn = (flags & 0x02) !== 0, hasAck = (flags & 0x10) !== 0, rst = (flags & 0x04) !== 0;
    let seq = s.seq, ack = s.ack, end = s.end, win = s.win;
    let sack = (receiver.flags & TCP_FLAG_SACK_PERM) !== 0 ? s.highestSack(ack) : ack;
    if (sender.maxWin === 0) {
      if (syn) {
        // The SYN-ACK (or the peer's SYN in a simultaneous open).
        initSender(sender, receiver, s, end, win, dir);
        if (!hasAck) return TcpVerdict.OK;
      } else {
        // Its history is lost to us: start from this segment.
        sender.end = end;
        const swin = (win << sender.scale) >>> 0;
        sender.maxWin = swin === 0 ? 1 : swin;
        sender.maxEnd = (end + sender.maxWin) >>> 0;
        if (receiver.maxWin === 0) {
          // The other direction is unseen: let III and IV pass until it is.
          receiver.end = receiver.maxEnd = sack;
        } else if (sack === ((receiver.end + 1) >>> 0)) {
          // Likely the answer to a keepalive (III).
          receiver.end = (receiver.end + 1) >>> 0;
        }
      }
    } else if (syn && after(end, sender.end) && (c.tcpState === sSS || c.tcpState === sSR)) {
      // RFC 9293 §3.4.1: a restarted TCP uses larger sequence numbers; start over.
      initSender(sender, receiver, s, end, win, dir);
      if (dir === 1 && !hasAck) return TcpVerdict.OK;
    }
    if (!hasAck || ((flags & 0x14) === 0x14 && ack === 0)) {
      // No ACK (or a broken stack's RST+ACK with ack 0): as if it acked all.
      ack = sack = receiver.end;
    }
    // A reset answering a SYN has sequence number 0 (RFC 9293 §3.5.2).
    if (rst && seq === 0 && c.tcpState === sSS) seq = end = sender.end;
    const maxAckWin = sender.maxWin > MAX_ACK_WINDOW ? sender.maxWin : MAX_ACK_WINDOW;
    if (!before(seq, (sender.maxEnd + 1) >>> 0)) {
      const overshot = (end - sender.maxEnd + 1) >>> 0;
      const ackOk = after(sack, (receiver.end - maxAckWin - 1) >>> 0);
      const inRecv = receiver.maxWin !== 0 &&
        after(end, (sender.end - receiver.maxWin - 1) >>> 0);
      if (
        inRecv && ackOk && overshot <= receiver.maxWin && before(sack, (receiver.end + 1) >>> 0)
      ) {
        // A TCP that sends a little more than the window allows: ignored,
        // but remembered, so that the peer's ACK of it is in order.
        sender.end = end;
        sender.flags |= TCP_FLAG_DATA_UNACKNOWLEDGED;
        return this.#liberal(sender, TcpVerdict.IGNORE);
      }
      // I: beyond the receiver's window.
      return this.#liberal(sender, TcpVerdict.INVALID);
    }
    // III: acknowledges data not seen yet.
    if (!before(sack, (receiver.end + 1) >>> 0)) return this.#liberal(sender, TcpVerdict.INVALID);
    // II: only data the receiver has acknowledged already (a retransmission).
    if (receiver.maxWin !== 0 && !after(end, (sender.end - receiver.maxWin - 1) >>> 0)) {
      return this.#liberal(sender, TcpVerdict.IGNORE);
    }
    // IV: an overly delayed ACK.
    if (!after(sack, (receiver.end - maxAckWin - 1) >>> 0)) {
      return this.#liberal(sender, TcpVerdict.IGNORE);
    }
    // RFC 7323 §2.3: the window of a SYN is never scaled.
    if (!syn) win = (win << sender.scale) >>> 0;
    const swin = (win + ((sack - ack) >>> 0)) >>> 0;
    if (sender.maxWin < swin) sender.maxWin = swin;
    if (after(end, sender.end)) {
      sender.end = end;
      sender.flags |= TCP_FLAG_DATA_UNACKNOWLEDGED;
    }
    if (hasAck) {
      if ((sender.flags & TCP_FLAG_MAXACK_SET) === 0) {
        sender.maxAck = ack;
        sender.flags |= TCP_FLAG_MAXACK_SET;
      } else if (after(ack, sender.maxAck)) sender.maxAck = ack;
    }
    if (receiver.maxWin !== 0 && after(end, sender.maxEnd)) {
      receiver.maxWin = (receiver.maxWin + ((end - sender.maxEnd) >>> 0)) >>> 0;
    }
    if (after((sack + win) >>> 0, (receiver.maxEnd - 1) >>> 0)) {
      receiver.maxEnd = (sack + win) >>> 0;
      if (win === 0) receiver.maxEnd = (receiver.maxEnd + 1) >>> 0;
    }
    if (ack === receiver.end) receiver.flags &= ~TCP_FLAG_DATA_UNACKNOWLEDGED;
    if (index === ACK_SET) {
      // The same segment again: a retransmission.
      if (
        t.lastDir === dir && t.lastSeq === seq && t.lastAck === ack && t.lastEnd === end &&
        t.lastWin === s.win
      ) t.retrans++;
      else {
        t.lastDir = dir;
        t.lastSeq = seq;
        t.lastAck = ack;
        t.lastEnd = end;
        t.lastWin = s.win;
        t.retrans = 0;
      }
    }
    return TcpVerdict.OK;
  }

  /** An out-of-window verdict, unless the sender or the table is liberal. */
  #liberal(sender: TcpWindow, verdict: number): number {
    return this.tcpBeLiberal || (sender.flags & TCP_FLAG_BE_LIBERAL) !== 0
      ? TcpVerdict.OK
      : verdict;
  }

  /**
   * Linux nf_tcp_handle_invalid: an assured connection whose FIN or RST
   * answers the other side's out of window is likely dead; its timeout
   * shrinks to the unacknowledged one.
   */
  #handleInvalid(c: Conn, dir: 0 | 1, index: number): void {
    const t = c.tcp!;
    if (!c.has(CtStatus.ASSURED) || (index !== RST_SET && index !== FIN_SET)) return;
    if (t.lastDir !== dir && (t.lastIndex === FIN_SET || t.lastIndex === RST_SET)) {
      const left = c.expires - this.clock.now();
      if (left < 120 * S) return;
      if (left > CT_TIMEOUTS.tcpUnacknowledged) this.refresh(c, CT_TIMEOUTS.tcpUnacknowledged);
    } else {
      t.lastIndex = index;
      t.lastDir = dir;
    }
  }
}

/** Linux MAXACKWINCONST: the least window IV allows an ACK to lag by. */
const MAX_ACK_WINDOW = 66000;
/** RFC 7323 §2.3: the largest window shift. */
const TCP_MAX_WSCALE = 14;

// Linux IP_CT_TCP_FLAG_*: per direction (and, for the last two, per connection).
/** The side sent the Window Scale option. */
export const TCP_FLAG_WINDOW_SCALE = 0x01;
/** The side sent SACK-Permitted. */
export const TCP_FLAG_SACK_PERM = 0x02;
/** The side sent the first FIN. */
export const TCP_FLAG_CLOSE_INIT = 0x04;
/** The side's segments are never out of window (picked up mid-stream). */
export const TCP_FLAG_BE_LIBERAL = 0x08;
/** The side has data in flight the other has not acknowledged. */
export const TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10;
/** `maxAck` holds an ACK the side sent. */
export const TCP_FLAG_MAXACK_SET = 0x20;
const TCP_FLAG_EXP_CHALLENGE_ACK = 0x40;
const TCP_FLAG_SIMULTANEOUS_OPEN = 0x80;

/** `a` is before `b` in sequence space (RFC 9293 §3.4: modulo 2^32). */
function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** `a` is after `b` in sequence space. */
function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/**
 * Linux tcp_init_sender: a SYN-ACK answering a SYN (or the peer's SYN of
 * a simultaneous open) starts its direction's window.
 */
function initSender(
  sender: TcpWindow,
  receiver: TcpWindow,
  s: TcpSegment,
  end: number,
  win: number,
  dir: 0 | 1,
): void {
  sender.end = sender.maxEnd = end;
  sender.maxWin = win === 0 ? 1 : win;
  s.options(sender);
  // RFC 7323 §2.2: scaling is on only when both SYNs carry the option.
  if (
    dir === 1 &&
    ((sender.flags & TCP_FLAG_WINDOW_SCALE) === 0 || (receiver.flags & TCP_FLAG_WINDOW_SCALE) === 0)
  ) {
    sender.scale = receiver.scale = 0;
  }
}

/** One direction's window (Linux ip_ct_tcp_state). */
export class TcpWindow {
  /** Highest sequence number sent plus its length (td_end). */
  end = 0;
  /** Highest right edge the other side allowed (td_maxend). */
  maxEnd = 0;
  /** Largest window seen from this side (td_maxwin); 0 until it is seen. */
  maxWin = 0;
  /** Highest ACK sent (td_maxack). */
  maxAck = 0;
  /** Window shift this side announced (td_scale). */
  scale = 0;
  /** `TCP_FLAG_*` bits. */
  flags = 0;

  /** Forget everything but liberal tracking (Linux nf_ct_tcp_state_reset). */
  clear(): void {
    this.end =
      this.maxEnd =
      this.maxWin =
      this.maxAck =
      this.scale =
        0;
    this.flags &= TCP_FLAG_BE_LIBERAL;
  }
}

/** The TCP tracking state of a connection (Linux ip_ct_tcp). */
export class TcpTrack {
  /** By direction. */
  readonly seen: [TcpWindow, TcpWindow] = [new TcpWindow(), new TcpWindow()];
  /** The last in-window (or ignored) segment: direction, event, sequence numbers, raw window. */
  lastDir: 0 | 1 = 0;
  lastIndex = 5;
  lastSeq = 0;
  lastAck = 0;
  lastEnd = 0;
  lastWin = 0;
  lastWscale = 0;
  lastFlags = 0;
  /** Retransmissions of the last segment. */
  retrans = 0;

  /** Start over (a new or reopened connection). */
  reset(): void {
    for (const w of this.seen) {
      w.clear();
      w.flags = 0;
    }
    this.lastDir = 0;
    this.lastIndex = 5;
    this.lastSeq =
      this.lastAck =
      this.lastEnd =
      this.lastWin =
        0;
    this.lastWscale = this.lastFlags = this.retrans = 0;
  }
}

// Linux tcp_valid_flags: FIN, SYN, RST, ACK, URG combinations a TCP sends (PSH, ECE, CWR aside).
const VALID_FLAGS = new Uint8Array(0x40);
for (const f of [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30]) VALID_FLAGS[f] = 1;

/**
 * The fields of a TCP segment conntrack reads, loaded in place from the
 * packet (one scratch object; no allocation per packet).
 */
export class TcpSegment {
  flags = 0;
  seq = 0;
  ack = 0;
  /** The window field, unscaled. */
  win = 0;
  /** seq + data length + SYN + FIN (Linux segment_seq_plus_len). */
  end = 0;
  #d: Uint8Array = new Uint8Array(0);
  #opt = 0;
  #optEnd = 0;

  /**
   * Read the TCP header at `l4` of a packet whose IP datagram ends at
   * `ipEnd`.
   *
   * @returns false for a truncated header or a flag combination no TCP
   *   sends (Linux tcp_error: INVALID)
   */
  load(d: Uint8Array, v: DataView, l4: number, ipEnd: number): boolean {
    if (l4 + 20 > ipEnd || ipEnd > d.length) return false;
    const hl = (d[l4 + 12]! >> 4) << 2;
    if (hl < 20 || l4 + hl > ipEnd) return false;
    const flags = d[l4 + 13]!;
    if (VALID_FLAGS[flags & 0x37] !== 1) return false;
    this.flags = flags;
    this.seq = v.getUint32(l4 + 4);
    this.ack = v.getUint32(l4 + 8);
    this.win = v.getUint16(l4 + 14);
    this.end = (this.seq + (ipEnd - l4 - hl) + (flags & 0x02 ? 1 : 0) + (flags & 0x01)) >>> 0;
    this.#d = d;
    this.#opt = l4 + 20;
    this.#optEnd = l4 + hl;
    return true;
  }

  /** Linux tcp_options: Window Scale and SACK-Permitted into `w` (its other flags cleared, liberal kept). */
  options(w: TcpWindow): void {
    const d = this.#d, end = this.#optEnd;
    if (this.#opt === end) return;
    w.scale = 0;
    w.flags &= TCP_FLAG_BE_LIBERAL;
    for (let i = this.#opt; i < end;) {
      const kind = d[i]!;
      if (kind === 0) return;
      if (kind === 1) {
        i++;
        continue;
      }
      if (i + 2 > end) return;
      const len = d[i + 1]!;
      if (len < 2 || i + len > end) return;
      if (kind === 4 && len === 2) w.flags |= TCP_FLAG_SACK_PERM;
      else if (kind === 3 && len === 3) {
        w.scale = Math.min(d[i + 2]!, TCP_MAX_WSCALE);
        w.flags |= TCP_FLAG_WINDOW_SCALE;
      }
      i += len;
    }
  }

  /** Linux tcp_sack: the highest right edge of the SACK blocks, or `ack` when higher or none. */
  highestSack(ack: number): number {
    const d = this.#d, end = this.#optEnd;
    let sack = ack;
    for (let i = this.#opt; i < end;) {
      const kind = d[i]!;
      if (kind === 0) break;
      if (kind === 1) {
        i++;
        continue;
      }
      if (i + 2 > end) break;
      const len = d[i + 1]!;
      if (len < 2 || i + len > end) break;
      if (kind === 5 && len >= 10 && (len - 2) % 8 === 0) {
        for (let b = i + 2; b < i + len; b += 8) {
          const right = ((d[b + 4]! << 24) | (d[b + 5]! << 16) | (d[b + 6]! << 8) | d[b + 7]!) >>>
            0;
          if (after(right, sack)) sack = right;
        }
        break;
      }
      i += len;
    }
    return sack;
  }
}
