/**
 * The state the stateful matches keep between packets, per firewall and
 * kept across reloads (iptables-restore keeps xt_recent and hashlimit
 * tables of the same name): `-m recent` lists, `-m hashlimit` tables, and
 * what `-m addrtype` asks of the stack (its addresses and routes). Per-rule
 * state (`-m connlimit`'s connection sets, `-m statistic`'s counter) lives
 * with the rule ({@link ConnLimiter}, match.ts).
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Nic } from "../nic.ts";
import type { Random } from "../random.ts";
import { TokenBucket } from "../token_bucket.ts";
import type { Ipv4 } from "../ipv4/ipv4.ts";
import type { Ipv6 } from "../ipv6/ipv6.ts";
import { type Conn, CtStatus, TcpCtState } from "./conntrack.ts";
import { ADDRTYPE_BITS } from "./rule_types.ts";

const T = ADDRTYPE_BITS;

/** One address of a recent list (Linux struct recent_entry). */
export class RecentEntry {
  /** When the address was seen (ms), oldest first; at most the list's `stampsMax`. */
  readonly stamps: number[] = [];
  /** The TTL of the last packet that stamped it (`--rttl`). */
  ttl = 0;

  /** @param key the masked address as the list keys it */
  constructor(readonly key: string) {}

  /** The newest stamp. */
  last(): number {
    return this.stamps[this.stamps.length - 1] ?? 0;
  }
}

/**
 * A named `-m recent` list: addresses with the times they were seen, the
 * least recently used one forgotten when the list is full (xt_recent's
 * ip_list_tot = 100 entries, ip_pkt_list_tot = 20 stamps, rounded up to a
 * power of two as the kernel's ring is).
 */
export class RecentTable {
  /** Entries in least-recently-updated order (Map insertion order). */
  readonly #entries = new Map<string, RecentEntry>();
  /** Most entries (xt_recent ip_list_tot). */
  readonly max = 100;
  /** Stamps kept per entry. */
  stampsMax = 32;

  /** @param name the list's name */
  constructor(readonly name: string) {}

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Make room for `hitcount` stamps per entry (a rule asks for more than 20). */
  ensureStamps(hitcount: number): void {
    let n = 32;
    while (n < hitcount + 1) n <<= 1;
    if (n > this.stampsMax) this.stampsMax = n;
  }

  /** The entry of `key`, when its TTL is `ttl` (or `ttl` is -1: any). */
  lookup(key: string, ttl: number): RecentEntry | undefined {
    const e = this.#entries.get(key);
    return e !== undefined && (ttl < 0 || e.ttl === ttl) ? e : undefined;
  }

  /** A new entry for `key`, stamped now; the oldest is forgotten when the list is full. */
  init(key: string, ttl: number, now: number): RecentEntry {
    if (this.#entries.size >= this.max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    const e = new RecentEntry(key);
    e.ttl = ttl;
    e.stamps.push(now);
    this.#entries.set(key, e);
    return e;
  }

  /** Stamp `e` now and make it the most recently used. */
  update(e: RecentEntry, now: number): void {
    e.stamps.push(now);
    if (e.stamps.length > this.stampsMax) e.stamps.shift();
    this.#entries.delete(e.key);
    this.#entries.set(e.key, e);
  }

  /** Forget `e`. */
  remove(e: RecentEntry): void {
    this.#entries.delete(e.key);
  }

  /** `--reap`: forget the least recently used entry when its newest stamp is before `time`. */
  reap(time: number): void {
    const first = this.#entries.values().next().value;
    if (first !== undefined && first.last() < time) this.#entries.delete(first.key);
  }

  /** Every entry (least recently used first). */
  entries(): IterableIterator<RecentEntry> {
    return this.#entries.values();
  }
}

/** One bucket of a hashlimit table. */
interface HashBucket {
  bucket: TokenBucket;
  /** When the bucket was last used (ms). */
  used: number;
}

/**
 * A named `-m hashlimit` table: a token bucket per key, an idle bucket
 * expiring after `expireMs` (swept at most once a second, as the kernel's
 * gc interval), at most `max` buckets (the least recently made one goes to
 * make room).
 */
export class HashlimitTable {
  readonly #buckets = new Map<string, HashBucket>();
  #swept = 0;

  /**
   * @param perSecond the rate of each bucket
   * @param burst its depth
   */
  constructor(
    readonly clock: Clock,
    readonly perSecond: number,
    readonly burst: number,
    readonly expireMs: number,
    readonly max: number,
  ) {}

  /** Buckets held. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Take a token from `key`'s bucket (made full when new): false when it is empty. */
  take(key: string): boolean {
    const now = this.clock.now();
    if (now - this.#swept >= 1000) this.#sweep(now);
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.max) {
        const first = this.#buckets.keys().next().value;
        if (first !== undefined) this.#buckets.delete(first);
      }
      b = { bucket: new TokenBucket(this.clock, this.perSecond, this.burst), used: now };
      this.#buckets.set(key, b);
    }
    b.used = now;
    return b.bucket.take();
  }

  #sweep(now: number): void {
    this.#swept = now;
    for (const [k, b] of this.#buckets) if (now - b.used >= this.expireMs) this.#buckets.delete(k);
  }
}

/**
 * `-m connlimit`'s connections of one rule, by masked address (Linux
 * nf_conncount): a connection counts while it is in the table and not
 * closing (TCP TIME_WAIT or CLOSE); dead ones are dropped when their key is
 * counted, and every key is swept every 1024 counts.
 */
export class ConnLimiter {
  readonly #keys = new Map<string, Set<Conn>>();
  #calls = 0;

  /** Count the connections of `key` with `conn` (the packet's) among them. */
  count(key: string, conn: Conn | null): number {
    if ((++this.#calls & 1023) === 0) this.#sweepAll(conn);
    let set = this.#keys.get(key);
    if (set === undefined) {
      if (conn === null) return 0;
      set = new Set();
      this.#keys.set(key, set);
    }
    sweep(set, conn);
    if (conn !== null && alive(conn, conn)) set.add(conn);
    if (set.size === 0) this.#keys.delete(key);
    return set.size;
  }

  /** Keys held (tests). */
  get keys(): number {
    return this.#keys.size;
  }

  #sweepAll(current: Conn | null): void {
    for (const [k, set] of this.#keys) {
      sweep(set, current);
      if (set.size === 0) this.#keys.delete(k);
    }
  }
}

/** A connection that counts: the packet's own (maybe not confirmed yet), or one in the table, not closing. */
function alive(c: Conn, current: Conn | null): boolean {
  if (c.has(CtStatus.DYING)) return false;
  if (!c.has(CtStatus.CONFIRMED) && c !== current) return false;
  return c.proto !== 6 ||
    (c.tcpState !== TcpCtState.TIME_WAIT && c.tcpState !== TcpCtState.CLOSE);
}

function sweep(set: Set<Conn>, current: Conn | null): void {
  for (const c of set) if (!alive(c, current)) set.delete(c);
}

/** What the stateful matches need of the stack. */
export interface MatchStack {
  readonly clock: Clock;
  readonly random: Random;
  readonly ipv4: Ipv4;
  readonly ipv6: Ipv6;
}

/**
 * The firewall's match state, and the stack lookups `-m addrtype` makes.
 *
 * @example
 * ```ts
 * import { MatchState } from "./match_state.ts";
 * import { Stack } from "../stack.ts";
 * import { ManualClock } from "../clock.ts";
 * const m = new MatchState(new Stack({ clock: new ManualClock() }));
 * console.assert(m.recent("ssh") === m.recent("ssh"));
 * ```
 */
export class MatchState {
  readonly #recent = new Map<string, RecentTable>();
  readonly #hashlimit = new Map<string, HashlimitTable>();

  /** @param stack the stack's clock, randomness and IP layers */
  constructor(readonly stack: MatchStack) {}

  /** The clock the stateful matches run on. */
  get clock(): Clock {
    return this.stack.clock;
  }

  /** The randomness of `-m statistic --mode random`. */
  get random(): Random {
    return this.stack.random;
  }

  /** The recent list `name` (made empty on first use). */
  recent(name: string): RecentTable {
    let t = this.#recent.get(name);
    if (t === undefined) {
      t = new RecentTable(name);
      this.#recent.set(name, t);
    }
    return t;
  }

  /**
   * The hashlimit table `name` of `family`; the first rule naming it sets
   * its rate and sizes, as the kernel's does.
   */
  hashlimit(
    family: 4 | 6,
    name: string,
    o: { perSecond: number; burst: number; expireMs: number; max: number },
  ): HashlimitTable {
    const k = `${family}:${name}`;
    let t = this.#hashlimit.get(k);
    if (t === undefined) {
      t = new HashlimitTable(this.clock, o.perSecond, o.burst, o.expireMs, o.max);
      this.#hashlimit.set(k, t);
    }
    return t;
  }

  /**
   * The {@link ADDRTYPE_BITS} bit of an IPv4 address (Linux
   * inet_dev_addr_type on the local table): LOCAL, BROADCAST (0.0.0.0/8,
   * 255.255.255.255 and a subnet's directed broadcast), MULTICAST, else
   * UNICAST. With `nic`, only that NIC's addresses are LOCAL.
   */
  addrType4(a: number, nic: Nic | null): number {
    a >>>= 0;
    if ((a >>> 24) === 0 || a === 0xffffffff) return T.BROADCAST!;
    if ((a >>> 28) === 0xe) return T.MULTICAST!;
    const v4 = this.stack.ipv4;
    if (nic === null) {
      if (v4.isLocal(a) || (a >>> 24) === 127) return T.LOCAL!;
      // Every NIC with an address is in the local map (a NIC may appear twice).
      for (const n of v4.local.values()) {
        for (const x of v4.nicState(n)?.addresses ?? []) if (x.broadcast === a) return T.BROADCAST!;
      }
      return T.UNICAST!;
    }
    const st = v4.nicState(nic);
    for (const x of st?.addresses ?? []) {
      if (x.address === a) return T.LOCAL!;
      if (x.broadcast === a) return T.BROADCAST!;
    }
    return T.UNICAST!;
  }

  /**
   * The {@link ADDRTYPE_BITS} bit of the IPv6 address at `d[off]` (Linux
   * addrtype_mt6 with a route lookup): UNSPEC (::), MULTICAST, LOCAL,
   * ANYCAST (a Subnet-Router anycast address of ours), UNREACHABLE (a
   * reject route), else UNICAST. With `nic`, only its addresses are LOCAL.
   */
  addrType6(d: Uint8Array, off: number, nic: Nic | null): number {
    let zero = true;
    for (let i = 0; i < 16 && zero; i++) zero = d[off + i] === 0;
    if (zero) return T.UNSPEC!;
    if (d[off] === 0xff) return T.MULTICAST!;
    const v6 = this.stack.ipv6;
    const local = v6.local.get(d, off);
    if (local !== undefined && (nic === null || local.nic === nic)) return T.LOCAL!;
    const any = v6.anycastNic(d, off);
    if (any !== undefined && (nic === null || any === nic)) return T.ANYCAST!;
    const r = v6.routes.lookup(d, off, 0);
    if (r !== null && r.type !== "unicast") return T.UNREACHABLE!;
    return T.UNICAST!;
  }
}
