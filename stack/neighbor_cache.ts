/**
 * The neighbor cache with Neighbor Unreachability Detection, one
 * implementation for ARP (IPv4) and NDP (IPv6): the conceptual Neighbor
 * Cache of RFC 4861 §5.1 and the state machine of RFC 4861 §7.3.2–7.3.3
 * (INCOMPLETE, REACHABLE, STALE, DELAY, PROBE), plus FAILED and PERMANENT
 * as Linux's net/core/neighbour.c has them.
 *
 * The cache knows no packet format. A protocol plugs in through
 * {@link NeighborProtocol}: it sends solicitations (ARP requests, Neighbor
 * Solicitations), sends the packets that waited for resolution and reports
 * failures (ICMP host/address unreachable), and it feeds the cache what it
 * hears through {@link NeighborCache.handleAdvertisement} and
 * {@link NeighborCache.handleSolicitation}.
 *
 * Choices where the RFC leaves room, following Linux:
 * - A failed resolution (INCOMPLETE or PROBE out of probes) leaves the entry
 *   in FAILED, without a link-layer address and without a timer, so that
 *   `show neighbors` can show it. A new packet to it restarts resolution.
 *   FAILED entries are the first reaped by garbage collection
 *   ({@link NeighborCache.gc}, and forced GC when the table is full).
 *   (RFC 4861 §7.3.3 says the entry SHOULD be deleted; Linux keeps it.)
 * - The queue of an unresolved entry drops its oldest packet when full
 *   (Linux's `__neigh_event_send`).
 * - REACHABLE is not re-armed on every confirmation: `confirm()` only
 *   stamps the time, and the REACHABLE timer, when it fires, re-arms
 *   itself for the remainder (Linux's `neigh_timer_handler`). So a busy
 *   TCP flow costs no timer per ACK.
 * - PERMANENT entries (static, `ip neigh add … nud permanent`) do not count
 *   against `maxEntries` (Linux's `exempt_from_gc`).
 *
 * @module
 */
import type { Clock, Timer } from "./clock.ts";
import type { Random } from "./random.ts";
import { HEADROOM, PacketBuffer } from "./wire/packet_buffer.ts";
import { FRAME_RECORD_LEN, FrameQueue } from "./_frame_queue.ts";

/**
 * How long an entry a solicitation made and nothing used is spared by the
 * forced GC (Linux's neigh_forced_gc: entries updated in the last 5 s stay).
 */
const UNUSED_GC_AGE_MS = 5_000;

/** Bytes of free queue rings a cache keeps once no packet waits. */
const QUEUE_BUFFERS_KEPT_IDLE = 64 * 1024;

/** Bytes of free queue rings a cache keeps while packets wait. */
const QUEUE_BUFFERS_KEPT = 1024 * 1024;

/** Bytes of the buffer a queued packet is sent from, at least (fits an Ethernet frame at HEADROOM). */
const SEND_BUFFER_MIN = 2048;

/**
 * Neighbor Unreachability Detection states (RFC 4861 §7.3.2, plus FAILED
 * and PERMANENT from Linux). Small integers so the hit path compares ints.
 */
export const NudState = {
  /** Address resolution is in progress; no link-layer address yet. */
  INCOMPLETE: 1,
  /** Positive confirmation within the last ReachableTime. */
  REACHABLE: 2,
  /** Address known but reachability unconfirmed; no traffic sent since. */
  STALE: 3,
  /** Traffic was sent to a STALE neighbor; waiting DELAY_FIRST_PROBE_TIME for an upper-layer confirmation. */
  DELAY: 4,
  /** Unicast solicitations every RetransTimer to confirm reachability. */
  PROBE: 5,
  /** Resolution or probing failed; kept (without address) until garbage-collected. */
  FAILED: 6,
  /** Static entry: never expires, never evicted, never changed by the network. */
  PERMANENT: 7,
} as const;

/** One of the {@link NudState} values. */
export type NudStateValue = typeof NudState[keyof typeof NudState];

/** Names of the {@link NudState} values, indexed by value, as `ip neigh` prints them. */
export const NUD_STATE_NAMES: readonly string[] = [
  "NONE",
  "INCOMPLETE",
  "REACHABLE",
  "STALE",
  "DELAY",
  "PROBE",
  "FAILED",
  "PERMANENT",
];

/** The name of a {@link NudState} value (`"REACHABLE"`), for `show neighbors`. */
export function nudStateName(state: number): string {
  return NUD_STATE_NAMES[state] ?? "NONE";
}

/** Timings and limits of a neighbor cache (per NIC and protocol). */
export interface NeighborConfig {
  /** BaseReachableTime (RFC 4861 §6.3.2, §10: REACHABLE_TIME 30 s); ReachableTime is drawn from it. */
  baseReachableTimeMs: number;
  /** RetransTimer: between solicitations (RFC 4861 §10: RETRANS_TIMER 1 s). */
  retransTimeMs: number;
  /** Multicast/broadcast solicitations in INCOMPLETE before failing (MAX_MULTICAST_SOLICIT 3). */
  multicastProbes: number;
  /** Unicast solicitations in PROBE before failing (MAX_UNICAST_SOLICIT 3). */
  unicastProbes: number;
  /** DELAY_FIRST_PROBE_TIME: how long DELAY waits for an upper-layer confirmation (5 s). */
  delayFirstProbeMs: number;
  /** Packets queued per unresolved entry (Linux: unres_qlen); the oldest is dropped beyond it. */
  queueLen: number;
  /** Bytes queued per unresolved entry (Linux: unres_qlen_bytes); the oldest is dropped beyond it. */
  queueBytes: number;
  /** Bytes queued in all of this cache's entries together; a packet beyond it is not queued. */
  queueBytesTotal: number;
  /** Most entries that are not PERMANENT (Linux: gc_thresh3). */
  maxEntries: number;
  /** A STALE or FAILED entry unchanged this long may be garbage-collected (Linux: gc_stale_time). */
  gcStaleTimeMs: number;
}

/** RFC 4861 §10 protocol constants and Linux's neighbour defaults. */
export const DEFAULT_NEIGHBOR_CONFIG: Readonly<NeighborConfig> = Object.freeze({
  baseReachableTimeMs: 30_000,
  retransTimeMs: 1_000,
  multicastProbes: 3,
  unicastProbes: 3,
  delayFirstProbeMs: 5_000,
  queueLen: 64,
  queueBytes: 212_992,
  queueBytesTotal: 4 * 1024 * 1024,
  maxEntries: 1024,
  gcStaleTimeMs: 60_000,
});

/** RFC 4861 §6.2.1: AdvReachableTime MUST be no greater than 3,600,000 ms. */
export const MAX_REACHABLE_TIME_MS = 3_600_000;

/**
 * RFC 4861 §6.3.4: ReachableTime is re-randomized "at least every few
 * hours"; Linux (neigh_periodic_work) does it every 300 s.
 */
export const REACHABLE_TIME_REFRESH_MS = 300_000;

/** What the cache needs from ARP or NDP. Callbacks may re-enter the cache. */
export interface NeighborProtocol<K> {
  /**
   * Send a solicitation for `key`: multicast/broadcast when `unicastTo` is
   * null (INCOMPLETE), unicast to that MAC when probing (PROBE). The MAC is
   * the cache's own buffer: read it, do not keep it.
   */
  sendProbe(key: K, unicastTo: Uint8Array | null): void;
  /**
   * The entry's MAC is known: send `pkt` to `mac`. A queued packet comes
   * in a buffer of the cache's, reused once the call returns: the callee
   * must not keep it.
   */
  sendQueued(key: K, mac: Uint8Array, pkt: PacketBuffer): void;
  /**
   * Resolution failed: one call per queued packet (IPv4 sends ICMP host
   * unreachable, IPv6 address unreachable). The buffer is the cache's,
   * reused once the call returns.
   */
  resolutionFailed(key: K, pkt: PacketBuffer): void;
}

/** Counters of one neighbor cache. */
export interface NeighborStats {
  /** Calls to `lookup()`. */
  lookups: number;
  /** `lookup()` calls that found no usable link-layer address (the caller then resolves). */
  lookupMisses: number;
  /** Entries created (INCOMPLETE by `resolve`, STALE by a solicitation, PERMANENT by `addStatic`). */
  entriesCreated: number;
  /** Address resolutions started: an INCOMPLETE entry was created or a FAILED one restarted. */
  resolutionsStarted: number;
  /** Resolutions and probes that ran out of solicitations (INCOMPLETE or PROBE → FAILED). */
  resolutionsFailed: number;
  /** Multicast/broadcast solicitations sent (INCOMPLETE). */
  multicastProbesSent: number;
  /** Unicast solicitations sent (PROBE). */
  unicastProbesSent: number;
  /** Packets copied into an unresolved entry's queue. */
  packetsQueued: number;
  /** Queued packets dropped because the entry's queue was full (the oldest goes). */
  queuedPacketsDropped: number;
  /** Packets not queued because the cache's queues hold `queueBytesTotal` bytes already. */
  queueBytesDrops: number;
  /** Queued packets sent once the address was learnt. */
  queuedPacketsSent: number;
  /** Queued packets handed to `resolutionFailed` when resolution failed. */
  queuedPacketsFailed: number;
  /** Queued packets discarded because their entry was removed or flushed. */
  queuedPacketsDiscarded: number;
  /** Entries not created because the table was full even after garbage collection. */
  tableFullDrops: number;
  /** Entries removed by garbage collection (forced or `gc()`). */
  entriesEvicted: number;
  /** Reachability confirmations that moved an entry to, or kept it in, REACHABLE. */
  confirmations: number;
  /** Advertisements ignored: no entry for the target, or the entry is PERMANENT. */
  advertisementsIgnored: number;
  /** Times an existing entry's link-layer address was replaced by a different one. */
  linkAddressChanges: number;
}

/** A zeroed {@link NeighborStats}. */
export function newNeighborStats(): NeighborStats {
  return {
    lookups: 0,
    lookupMisses: 0,
    entriesCreated: 0,
    resolutionsStarted: 0,
    resolutionsFailed: 0,
    multicastProbesSent: 0,
    unicastProbesSent: 0,
    packetsQueued: 0,
    queuedPacketsDropped: 0,
    queueBytesDrops: 0,
    queuedPacketsSent: 0,
    queuedPacketsFailed: 0,
    queuedPacketsDiscarded: 0,
    tableFullDrops: 0,
    entriesEvicted: 0,
    confirmations: 0,
    advertisementsIgnored: 0,
    linkAddressChanges: 0,
  };
}

/** Flags of a Neighbor Advertisement (RFC 4861 §4.4); ARP replies pass solicited and override. */
export interface AdvertisementFlags {
  /** S: the advertisement answers a solicitation. */
  solicited: boolean;
  /** O: the advertisement overrides a cached link-layer address. */
  override: boolean;
  /** R: the sender is a router (stored on the entry; the NDP layer acts on a change). */
  isRouter?: boolean;
}

/** A row of {@link NeighborCache.entries}. */
export interface NeighborEntryInfo<K> {
  /** The neighbor's protocol address. */
  key: K;
  /** A copy of the link-layer address, or null (INCOMPLETE, FAILED). */
  mac: Uint8Array | null;
  /** The state's name (`NUD_STATE_NAMES`). */
  state: string;
  /** Packets waiting for resolution. */
  queued: number;
  /** Solicitations sent in the current INCOMPLETE or PROBE round. */
  probes: number;
  /** The IsRouter flag (RFC 4861 §7.3). */
  isRouter: boolean;
  /** Milliseconds until the entry's timer acts (state change or next probe); absent without a timer. */
  expiresInMs?: number;
}

/** Options of a {@link NeighborCache}. */
export interface NeighborCacheOptions<K> {
  /** Source of time and timers. */
  clock: Clock;
  /** Source of ReachableTime's random factor. */
  random: Random;
  /** ARP or NDP. */
  protocol: NeighborProtocol<K>;
  /** Timings and limits; missing fields take {@link DEFAULT_NEIGHBOR_CONFIG}. */
  config?: Partial<NeighborConfig>;
  /** Counters to increment; a fresh set when absent. */
  stats?: NeighborStats;
}

const NONE = 0;
const { INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED, PERMANENT } = NudState;

/** One neighbor. Mutable and reused in place so the hit path never allocates. */
class Entry<K> {
  state: number = NONE;
  /** Link-layer address; valid when `hasMac`. Allocated once, written in place. */
  mac: Uint8Array = new Uint8Array(6);
  hasMac = false;
  isRouter = false;
  /** Solicitations sent in the current INCOMPLETE/PROBE round. */
  probes = 0;
  timer: Timer | null = null;
  /** When `timer` fires (clock ms). */
  deadline = 0;
  /** Last reachability confirmation (clock ms). */
  confirmedAt = 0;
  /** Last state or address change (clock ms): the GC's age. */
  updatedAt = 0;
  /** Packets waiting for the address, by value; null when none wait. */
  queue: FrameQueue | null = null;
  /** Bytes of the frames in `queue`. */
  queuedBytes = 0;
  /** Set once removed from the table; late callbacks then do nothing. */
  dead = false;
  /** Queued in the cache's FAILED FIFO. */
  inFailedList = false;
  /**
   * Made by a solicitation (STALE) and never confirmed reachable nor
   * resolved for traffic of ours since: what a flood of NS/ARP from random
   * sources leaves. Our answer to its solicitation (an NA sent through the
   * entry) moves it to DELAY and PROBE as RFC 4861 §7.3.3 says, but does
   * not make it used. The forced GC takes these before the entries of
   * neighbours that carry traffic.
   */
  unused = false;
  /** The timer callback, made once per entry. */
  readonly onTimer: () => void;

  constructor(readonly key: K, onTimer: (e: Entry<K>) => void) {
    this.onTimer = () => onTimer(this);
  }
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkConfig(c: NeighborConfig): void {
  for (const [name, v] of Object.entries(c)) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`NeighborConfig.${name} must be a finite number ≥ 0, got ${v}`);
    }
  }
  for (const name of ["multicastProbes", "unicastProbes", "queueLen", "maxEntries"] as const) {
    if (!Number.isInteger(c[name])) {
      throw new RangeError(`NeighborConfig.${name} must be an integer, got ${c[name]}`);
    }
  }
  if (c.baseReachableTimeMs <= 0) {
    throw new RangeError("NeighborConfig.baseReachableTimeMs must be > 0");
  }
}

/**
 * The map key of `k`: an IPv4 address (u32) as int32, which V8 keeps as a
 * small integer instead of boxing every address ≥ 2^31 per lookup.
 */
function nk<K extends number | string>(k: K): K {
  return (typeof k === "number" ? (k | 0) : k) as K;
}

/**
 * A neighbor cache with NUD (RFC 4861 §7.3), keyed by protocol address
 * (`number` for IPv4, a string or number key of the caller's choice for
 * IPv6).
 *
 * The datapath calls {@link lookup} per packet; on null it calls
 * {@link resolve}, which queues a copy of the packet and solicits.
 *
 * @example
 * ```ts
 * import { NeighborCache, NudState } from "./neighbor_cache.ts";
 * import { ManualClock } from "./clock.ts";
 * import { SeededRandom } from "./random.ts";
 * import { PacketBuffer } from "./wire/packet_buffer.ts";
 *
 * const sent: string[] = [];
 * const cache = new NeighborCache<number>({
 *   clock: new ManualClock(),
 *   random: new SeededRandom(1),
 *   protocol: {
 *     sendProbe: (k, to) => sent.push(to === null ? `who-has ${k}` : `probe ${k}`),
 *     sendQueued: (k) => sent.push(`send ${k}`),
 *     resolutionFailed: (k) => sent.push(`unreachable ${k}`),
 *   },
 * });
 * const ip = 0xc0000202; // 192.0.2.2
 * if (cache.lookup(ip) === null) cache.resolve(ip, new PacketBuffer(512));
 * cache.handleAdvertisement(ip, new Uint8Array([2, 0, 0, 0, 0, 2]), { solicited: true, override: true });
 * console.assert(cache.get(ip)?.state === NudState.REACHABLE);
 * console.assert(sent.join() === `who-has ${ip},send ${ip}`);
 * ```
 */
export class NeighborCache<K extends number | string> {
  /** The counters this cache increments. */
  readonly stats: NeighborStats;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #protocol: NeighborProtocol<K>;
  readonly #cfg: NeighborConfig;
  readonly #map = new Map<K, Entry<K>>();
  readonly #onTimer = (e: Entry<K>) => this.#timerFired(e);
  /** Entries per state, indexed by state value. */
  readonly #counts = new Int32Array(8);
  #reachableTimeMs = 0;
  #randomizedAt = 0;
  /** No STALE entry is old enough for GC before this time (a lower bound). */
  #gcStaleEligibleAt = Infinity;
  readonly #gcCandidates: Entry<K>[] = [];
  /** FAILED entries in order of failure (may hold entries that since left FAILED). */
  #failedList: (Entry<K> | null)[] = [];
  #failedHead = 0;
  /** Entries made by a solicitation, in order of creation (may hold entries since used or gone). */
  #unusedList: (Entry<K> | null)[] = [];
  #unusedHead = 0;
  /** Entries in the table that are {@link Entry.unused}. */
  #unusedCount = 0;

  /** @param opts clock, random, pool, protocol, optional config and stats. */
  constructor(opts: NeighborCacheOptions<K>) {
    this.#clock = opts.clock;
    this.#random = opts.random;
    this.#protocol = opts.protocol;
    this.#cfg = { ...DEFAULT_NEIGHBOR_CONFIG, ...opts.config };
    checkConfig(this.#cfg);
    this.stats = opts.stats ?? newNeighborStats();
    this.#rerandomize(this.#clock.now());
  }

  /** Entries in the table, PERMANENT included. */
  get size(): number {
    return this.#map.size;
  }

  /** The current ReachableTime (ms): BaseReachableTime × uniform[0.5, 1.5). */
  reachableTimeMs(): number {
    return this.#reachableTime(this.#clock.now());
  }

  /** The current RetransTimer (ms). */
  retransTimeMs(): number {
    return this.#cfg.retransTimeMs;
  }

  /**
   * Fast path: the MAC to send to, or null (then call {@link resolve}).
   * Does not allocate: REACHABLE, DELAY, PROBE and PERMANENT return the
   * cached MAC (the cache's own buffer: copy it into the frame, do not
   * keep it); STALE returns it and moves the entry to DELAY, arming the
   * delay timer (RFC 4861 §7.3.3).
   *
   * @param key the next hop's protocol address.
   * @returns the link-layer address, or null when there is no usable one.
   */
  lookup(key: K): Uint8Array | null {
    this.stats.lookups++;
    const e = this.#map.get(nk(key));
    if (e !== undefined) {
      const s = e.state;
      if (s === REACHABLE || s === DELAY || s === PROBE || s === PERMANENT) return e.mac;
      if (s === STALE) {
        this.#enterDelay(e);
        return e.mac;
      }
    }
    this.stats.lookupMisses++;
    return null;
  }

  /**
   * No usable entry: create an INCOMPLETE entry (if absent, or restart a
   * FAILED one) and send the first solicitation (RFC 4861 §7.2.2); queue a
   * copy of `pkt` (its bytes and metadata) in the entry's bounded queue. The caller
   * keeps `pkt`. When the table is full even after GC, the packet is
   * dropped and counted in `tableFullDrops` (no `resolutionFailed`, as
   * Linux drops with ENOBUFS). If the entry turns out to be usable after
   * all, `pkt` itself is sent at once through `sendQueued`.
   *
   * @param key the next hop's protocol address.
   * @param pkt the packet waiting for the address; not kept.
   */
  resolve(key: K, pkt: PacketBuffer): void {
    const e = this.#map.get(nk(key));
    if (e === undefined) {
      const now = this.#clock.now();
      const c = this.#create(key, INCOMPLETE, now);
      if (c !== null) this.#startResolution(c, pkt);
      return;
    }
    switch (e.state) {
      case INCOMPLETE:
        this.#enqueue(e, pkt);
        return;
      case FAILED:
        this.#setState(e, INCOMPLETE, this.#clock.now());
        this.#startResolution(e, pkt);
        return;
      case STALE:
        this.#enterDelay(e);
        this.#protocol.sendQueued(key, e.mac, pkt);
        return;
      default: // REACHABLE, DELAY, PROBE, PERMANENT
        this.#protocol.sendQueued(key, e.mac, pkt);
    }
  }

  /**
   * A Neighbor Advertisement or ARP reply for `key` (RFC 4861 §7.2.5; for
   * ARP pass solicited=true, override=true). With no entry it is ignored;
   * PERMANENT entries are never changed. INCOMPLETE (or FAILED) takes the
   * address and becomes REACHABLE if solicited, else STALE, and sends its
   * queue. Otherwise: O=0 with a different address turns REACHABLE into
   * STALE and changes nothing else; O=1 or the same address updates the
   * address, and S=1 → REACHABLE, S=0 with a new address → STALE, else the
   * state stays.
   *
   * @param key the advertised (target) protocol address.
   * @param mac the Target Link-Layer Address, or null when the option was absent.
   * @param flags the advertisement's S, O (and R) flags.
   */
  handleAdvertisement(key: K, mac: Uint8Array | null, flags: AdvertisementFlags): void {
    const e = this.#map.get(nk(key));
    // RFC 4861 §7.2.5: "If no entry exists, the advertisement SHOULD be
    // silently discarded." Static entries are the administrator's.
    if (e === undefined || e.state === PERMANENT) {
      this.stats.advertisementsIgnored++;
      return;
    }
    const now = this.#clock.now();
    if (e.state === INCOMPLETE || e.state === FAILED) {
      // §7.2.5: without a TLLA the advertisement can't resolve anything.
      if (mac === null || mac.length === 0) {
        this.stats.advertisementsIgnored++;
        return;
      }
      this.#setMac(e, mac);
      if (flags.isRouter !== undefined) e.isRouter = flags.isRouter;
      if (flags.solicited) this.#enterReachable(e, now);
      else this.#enterStale(e, now);
      this.#sendQueue(e);
      return;
    }
    const differs = mac !== null && mac.length > 0 && !sameMac(e.mac, mac);
    if (!flags.override && differs) {
      // §7.2.5: O=0 and a different address: REACHABLE → STALE, the
      // address is not updated; otherwise ignore.
      if (e.state === REACHABLE) this.#enterStale(e, now);
      return;
    }
    if (differs) {
      this.#setMac(e, mac);
      e.updatedAt = now;
    }
    if (flags.isRouter !== undefined) e.isRouter = flags.isRouter;
    if (flags.solicited) this.#enterReachable(e, now);
    else if (differs) this.#enterStale(e, now);
  }

  /**
   * A packet from the neighbor that carries its link-layer address (ARP
   * request, or NS/RS/RA with a Source Link-Layer Address option): RFC 4861
   * §7.2.3 and §7.3.3. Creates a STALE entry when absent and `create`
   * (subject to `maxEntries`); sets the address and STALE when it differs
   * or was unknown (sending the queue of an INCOMPLETE entry); else keeps
   * the state. PERMANENT entries are never changed.
   *
   * @param key the sender's protocol address.
   * @param mac the sender's link-layer address.
   * @param create false for RFC 826's rule: only requests that target us create entries.
   * @returns false when `create` asked for an entry and the table had no
   *   room for it (`tableFullDrops`); NDP then answers straight to `mac`
   *   without an entry (ndp.ts), so a neighbour that comes during a flood
   *   from random sources still resolves us.
   */
  handleSolicitation(key: K, mac: Uint8Array, create: boolean): boolean {
    if (mac.length === 0) return true;
    let e = this.#map.get(nk(key));
    const now = this.#clock.now();
    if (e === undefined) {
      if (!create) return true;
      const c = this.#create(key, STALE, now);
      if (c === null) return false;
      e = c;
      e.unused = true;
      this.#unusedCount++;
      this.#unusedList.push(e);
      if (this.#unusedList.length - this.#unusedHead > 2 * this.#cfg.maxEntries + 64) {
        this.#compactUnused();
      }
      this.#setMac(e, mac);
      this.#gcStaleEligibleAt = Math.min(this.#gcStaleEligibleAt, now + this.#cfg.gcStaleTimeMs);
      return true;
    }
    if (e.state === PERMANENT) return true;
    if (e.state === INCOMPLETE || e.state === FAILED) {
      this.#setMac(e, mac);
      this.#enterStale(e, now);
      this.#sendQueue(e);
      return true;
    }
    if (!sameMac(e.mac, mac)) {
      this.#setMac(e, mac);
      this.#enterStale(e, now);
    }
    return true;
  }

  /**
   * Upper-layer reachability confirmation (forward progress of TCP, RFC
   * 4861 §7.3.1): an entry with an address goes to REACHABLE; one already
   * REACHABLE only has its confirmation time stamped (no timer work).
   * INCOMPLETE, FAILED, PERMANENT and absent keys are left alone.
   *
   * @param key the neighbor's protocol address.
   */
  confirm(key: K): void {
    const e = this.#map.get(nk(key));
    if (e === undefined) return;
    const s = e.state;
    if (s === REACHABLE || s === STALE || s === DELAY || s === PROBE) {
      this.#enterReachable(e, this.#clock.now());
    }
  }

  /**
   * Add or replace a PERMANENT entry (`ip neigh replace … nud permanent`).
   * Packets queued on an INCOMPLETE entry for `key` are sent.
   *
   * @param key the neighbor's protocol address.
   * @param mac its link-layer address.
   */
  addStatic(key: K, mac: Uint8Array): void {
    const now = this.#clock.now();
    let e = this.#map.get(nk(key));
    if (e === undefined) {
      e = new Entry(key, this.#onTimer);
      e.state = PERMANENT;
      e.updatedAt = now;
      this.#counts[PERMANENT]!++;
      this.#map.set(nk(key), e);
      this.stats.entriesCreated++;
    } else {
      this.#cancelTimer(e);
      e.probes = 0;
      this.#setState(e, PERMANENT, now);
    }
    this.#setMac(e, mac);
    this.#sendQueue(e);
  }

  /**
   * Delete the entry for `key` (any state): its timer is cancelled and
   * queued packets are discarded (`queuedPacketsDiscarded`).
   *
   * @param key the neighbor's protocol address.
   */
  remove(key: K): void {
    const e = this.#map.get(nk(key));
    if (e !== undefined) this.#delete(e);
  }

  /**
   * Delete every entry (link down, interface removed), cancelling timers
   * and discarding queues.
   *
   * @param keepPermanent keep PERMANENT entries (Linux's carrier-down flush).
   */
  flush(keepPermanent = false): void {
    for (const e of [...this.#map.values()]) {
      if (keepPermanent && e.state === PERMANENT) continue;
      this.#delete(e);
    }
    this.#compactFailed();
    this.#compactUnused();
  }

  /**
   * Periodic garbage collection (Linux's neigh_periodic_work): remove
   * FAILED and STALE entries unchanged for `gcStaleTimeMs`. The owner may
   * call it every `baseReachableTimeMs / 2`; the cache itself runs no
   * periodic timer.
   *
   * @returns how many entries were removed.
   */
  gc(): number {
    const now = this.#clock.now();
    const old = now - this.#cfg.gcStaleTimeMs;
    let n = 0;
    let nextStale = Infinity;
    for (const e of [...this.#map.values()]) {
      if (e.state !== FAILED && e.state !== STALE) continue;
      if (e.updatedAt <= old) {
        this.#delete(e);
        n++;
      } else if (e.state === STALE) {
        nextStale = Math.min(nextStale, e.updatedAt + this.#cfg.gcStaleTimeMs);
      }
    }
    this.#gcStaleEligibleAt = nextStale;
    this.#compactFailed();
    this.#compactUnused();
    this.stats.entriesEvicted += n;
    return n;
  }

  /**
   * Every entry, for `show neighbors` and tests (allocates; not for the
   * datapath).
   *
   * @returns one row per entry, in creation order.
   */
  entries(): NeighborEntryInfo<K>[] {
    const now = this.#clock.now();
    const out: NeighborEntryInfo<K>[] = [];
    for (const e of this.#map.values()) {
      const row: NeighborEntryInfo<K> = {
        key: e.key,
        mac: e.hasMac ? e.mac.slice() : null,
        state: nudStateName(e.state),
        queued: e.queue?.length ?? 0,
        probes: e.probes,
        isRouter: e.isRouter,
      };
      if (e.state === REACHABLE) {
        row.expiresInMs = Math.max(0, e.confirmedAt + this.#reachableTime(now) - now);
      } else if (e.timer !== null) {
        row.expiresInMs = Math.max(0, e.deadline - now);
      }
      out.push(row);
    }
    return out;
  }

  /**
   * The state and a copy of the address of one entry.
   *
   * @param key the neighbor's protocol address.
   * @returns undefined when there is no entry.
   */
  get(key: K): { state: NudStateValue; mac: Uint8Array | null; isRouter: boolean } | undefined {
    const e = this.#map.get(nk(key));
    if (e === undefined) return undefined;
    return {
      state: e.state as NudStateValue,
      mac: e.hasMac ? e.mac.slice() : null,
      isRouter: e.isRouter,
    };
  }

  /**
   * Set BaseReachableTime (from an RA's Reachable Time, RFC 4861 §6.3.4)
   * and, when it changes, draw a new ReachableTime. Zero, negative or
   * non-finite values are ignored (an RA's 0 means "unspecified"); values
   * above 3,600,000 ms are clamped.
   *
   * @param ms the new BaseReachableTime.
   */
  setBaseReachableTime(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    const v = Math.min(ms, MAX_REACHABLE_TIME_MS);
    if (v === this.#cfg.baseReachableTimeMs) return;
    this.#cfg.baseReachableTimeMs = v;
    this.#rerandomize(this.#clock.now());
  }

  /**
   * Set RetransTimer (from an RA's Retrans Timer, RFC 4861 §6.3.4); used
   * from the next solicitation on. Zero, negative or non-finite values are
   * ignored.
   *
   * @param ms the new RetransTimer.
   */
  setRetransTime(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    this.#cfg.retransTimeMs = ms;
  }

  // ---- internals ----

  #rerandomize(now: number): void {
    // RFC 4861 §6.3.2: ReachableTime is a uniformly distributed random
    // value between MIN_RANDOM_FACTOR (0.5) and MAX_RANDOM_FACTOR (1.5)
    // times BaseReachableTime, so that neighbors don't probe in lockstep.
    const base = this.#cfg.baseReachableTimeMs;
    this.#reachableTimeMs = Math.max(1, Math.floor(base * (0.5 + this.#random.float())));
    this.#randomizedAt = now;
  }

  #reachableTime(now: number): number {
    if (now - this.#randomizedAt >= REACHABLE_TIME_REFRESH_MS) this.#rerandomize(now);
    return this.#reachableTimeMs;
  }

  #create(key: K, state: number, now: number): Entry<K> | null {
    const cfg = this.#cfg;
    if (this.#map.size - this.#counts[PERMANENT]! >= cfg.maxEntries) {
      this.#forcedGc(now, state === INCOMPLETE);
      if (this.#map.size - this.#counts[PERMANENT]! >= cfg.maxEntries) {
        this.stats.tableFullDrops++;
        return null;
      }
    }
    const e = new Entry(key, this.#onTimer);
    e.state = state;
    e.updatedAt = now;
    this.#counts[state]!++;
    this.#map.set(nk(key), e);
    this.stats.entriesCreated++;
    return e;
  }

  /**
   * The table is full: free FAILED entries (oldest failure first), then
   * entries a solicitation made and nothing used (oldest first; idle 5 s
   * unless `forTraffic`: the new entry is one we resolve to send), then,
   * when there are none of those, STALE entries unchanged for gcStaleTime
   * (oldest first), down to 7/8 of maxEntries (Linux's neigh_forced_gc
   * frees down to gc_thresh2). FAILED and unused entries come from FIFOs,
   * so a flood costs O(1) per new entry; the O(n) STALE scan runs only when
   * some STALE entry may be old enough.
   */
  #forcedGc(now: number, forTraffic: boolean): void {
    const cfg = this.#cfg;
    const target = cfg.maxEntries - Math.max(1, cfg.maxEntries >> 3);
    let evicted = 0;
    while (this.#map.size - this.#counts[PERMANENT]! > target) {
      const f = this.#popFailed();
      if (f === null) break;
      this.#delete(f);
      evicted++;
    }
    // Then entries a solicitation made and nothing used, idle for
    // UNUSED_GC_AGE_MS (Linux's neigh_forced_gc spares entries updated in
    // the last 5 s), oldest first: a flood of NS or ARP from random sources
    // takes the place of its own entries. A packet of ours to send (an
    // address to resolve) takes the place of one at once, however young:
    // the flood must not keep our traffic's next hop out.
    const before = forTraffic ? now : now - UNUSED_GC_AGE_MS;
    while (this.#map.size - this.#counts[PERMANENT]! > target) {
      const u = this.#popUnused(before);
      if (u === null) break;
      this.#delete(u);
      evicted++;
    }
    // While such entries are in the table (younger), the STALE entries of
    // neighbours that carried traffic are not taken for the flood's.
    if (
      evicted === 0 && this.#unusedCount === 0 && this.#counts[STALE]! > 0 &&
      now >= this.#gcStaleEligibleAt
    ) {
      const old = now - cfg.gcStaleTimeMs;
      const cand = this.#gcCandidates;
      let nextStale = Infinity;
      for (const e of this.#map.values()) {
        if (e.state !== STALE) continue;
        if (e.updatedAt <= old) cand.push(e);
        else nextStale = Math.min(nextStale, e.updatedAt + cfg.gcStaleTimeMs);
      }
      cand.sort((a, b) => a.updatedAt - b.updatedAt);
      let i = 0;
      for (; i < cand.length && this.#map.size - this.#counts[PERMANENT]! > target; i++) {
        this.#delete(cand[i]!);
        evicted++;
      }
      if (i < cand.length) nextStale = now; // eligible ones remain
      cand.length = 0;
      this.#gcStaleEligibleAt = nextStale;
    }
    this.stats.entriesEvicted += evicted;
  }

  /** Remember a FAILED entry for forced GC (once; checked again when popped). */
  #noteFailed(e: Entry<K>): void {
    if (e.inFailedList) return;
    e.inFailedList = true;
    this.#failedList.push(e);
    if (this.#failedList.length - this.#failedHead > 2 * this.#cfg.maxEntries + 64) {
      this.#compactFailed();
    }
  }

  /** The entry that failed longest ago and is still FAILED, or null. */
  #popFailed(): Entry<K> | null {
    const list = this.#failedList;
    while (this.#failedHead < list.length) {
      const e = list[this.#failedHead]!;
      list[this.#failedHead++] = null;
      e.inFailedList = false;
      if (!e.dead && e.state === FAILED) return e;
    }
    list.length = 0;
    this.#failedHead = 0;
    return null;
  }

  /** Drop entries that left FAILED (or the table) from the FIFO. */
  #compactFailed(): void {
    const kept: (Entry<K> | null)[] = [];
    for (let i = this.#failedHead; i < this.#failedList.length; i++) {
      const e = this.#failedList[i]!;
      if (!e.dead && e.state === FAILED) kept.push(e);
      else e.inFailedList = false;
    }
    this.#failedList = kept;
    this.#failedHead = 0;
  }

  #setState(e: Entry<K>, s: number, now: number): void {
    this.#counts[e.state]!--;
    this.#counts[s]!++;
    e.state = s;
    e.updatedAt = now;
    // Confirmed (REACHABLE), resolved for our traffic (INCOMPLETE) or made
    // static: in use; FAILED: the FAILED FIFO takes it first anyway. Not
    // DELAY or PROBE: our NA answering the neighbour's solicitation is what
    // moves a flood's entry there, and entries held in them would shut our
    // traffic out of a table the flood filled (bench:floods ns-random: 100 %
    // ping loss through tapir when the pinging host's entry had to be made
    // during the flood).
    if (e.unused && s !== STALE && s !== DELAY && s !== PROBE) {
      e.unused = false;
      this.#unusedCount--;
    }
  }

  /**
   * The oldest entry still {@link Entry.unused} (STALE, DELAY or PROBE),
   * unchanged since `before`, or null. The FIFO is in creation order, so a
   * head that is too young ends the search.
   */
  #popUnused(before: number): Entry<K> | null {
    const list = this.#unusedList;
    while (this.#unusedHead < list.length) {
      const e = list[this.#unusedHead]!;
      if (!e.dead && e.unused) {
        if (e.updatedAt > before) return null;
        list[this.#unusedHead++] = null;
        return e;
      }
      list[this.#unusedHead++] = null;
    }
    list.length = 0;
    this.#unusedHead = 0;
    return null;
  }

  /** Drop entries that are used (or gone) from the FIFO of unused ones. */
  #compactUnused(): void {
    const kept: (Entry<K> | null)[] = [];
    for (let i = this.#unusedHead; i < this.#unusedList.length; i++) {
      const e = this.#unusedList[i]!;
      if (!e.dead && e.unused) kept.push(e);
    }
    this.#unusedList = kept;
    this.#unusedHead = 0;
  }

  #setMac(e: Entry<K>, mac: Uint8Array): void {
    if (e.hasMac && !sameMac(e.mac, mac)) this.stats.linkAddressChanges++;
    if (e.mac.length !== mac.length) e.mac = new Uint8Array(mac.length);
    e.mac.set(mac);
    e.hasMac = true;
  }

  #arm(e: Entry<K>, ms: number): void {
    if (e.timer !== null) e.timer.cancel();
    e.deadline = this.#clock.now() + ms;
    e.timer = this.#clock.schedule(ms, e.onTimer);
  }

  #cancelTimer(e: Entry<K>): void {
    if (e.timer !== null) {
      e.timer.cancel();
      e.timer = null;
    }
  }

  #startResolution(e: Entry<K>, pkt: PacketBuffer): void {
    this.stats.resolutionsStarted++;
    e.probes = 0;
    e.hasMac = false;
    // Queue before soliciting: a synchronous answer must find the packet.
    this.#enqueue(e, pkt);
    this.#solicit(e);
  }

  /** Send the next solicitation of an INCOMPLETE/PROBE round, or fail when out of them. */
  #solicit(e: Entry<K>): void {
    const cfg = this.#cfg;
    const incomplete = e.state === INCOMPLETE;
    // RFC 4861 §7.2.2 (MAX_MULTICAST_SOLICIT) and §7.3.3 (MAX_UNICAST_SOLICIT):
    // after the last solicitation and one more RetransTimer, give up.
    if (e.probes >= (incomplete ? cfg.multicastProbes : cfg.unicastProbes)) {
      this.#fail(e);
      return;
    }
    e.probes++;
    this.#arm(e, cfg.retransTimeMs);
    if (incomplete) {
      this.stats.multicastProbesSent++;
      this.#protocol.sendProbe(e.key, null);
    } else {
      this.stats.unicastProbesSent++;
      this.#protocol.sendProbe(e.key, e.mac);
    }
  }

  /**
   * Queue a copy of `pkt` by value: its frame bytes and a 40-byte record of
   * its offsets and offload metadata in the entry's {@link FrameQueue}, a
   * ring sized to what it holds (a 64-byte packet costs 104 bytes of ring,
   * not a buffer of its own with views). Rings come from the cache's own
   * free list, so a flood to hosts that never answer allocates nothing per
   * packet. Linux (__neigh_event_send) drops the oldest packets while the
   * queue is over unres_qlen packets or unres_qlen_bytes bytes; the cache's
   * total is bounded too. Both bounds count frame bytes, not records.
   */
  #enqueue(e: Entry<K>, pkt: PacketBuffer): void {
    const cfg = this.#cfg;
    const len = pkt.end - pkt.start;
    if (cfg.queueLen === 0 || len > cfg.queueBytes) {
      this.stats.queuedPacketsDropped++;
      return;
    }
    let q = e.queue;
    if (q !== null) {
      while (
        q.length > 0 && (q.length >= cfg.queueLen || e.queuedBytes + len > cfg.queueBytes)
      ) {
        this.#account(e, -q.shift());
        this.stats.queuedPacketsDropped++;
      }
    }
    if (this.#queuedBytes + len > cfg.queueBytesTotal) {
      this.stats.queueBytesDrops++;
      if (q !== null && q.length === 0) {
        e.queue = null;
        this.#recycle(q);
      }
      return;
    }
    if (q === null) q = e.queue = this.#takeQueue(len);
    q.push(pkt);
    this.#account(e, len);
    this.stats.packetsQueued++;
  }

  #account(e: Entry<K>, delta: number): void {
    e.queuedBytes += delta;
    this.#queuedBytes += delta;
  }

  /** Free queue rings, reused by entries that start queueing. */
  readonly #freeQueues: FrameQueue[] = [];
  /** Bytes of the rings in {@link #freeQueues}. */
  #freeQueueBytes = 0;
  /** Buffers queued packets are sent from (more than one only when a send re-enters). */
  readonly #sendBuffers: PacketBuffer[] = [];

  /** An empty queue for a first packet of `len` bytes: a free ring that fits, else a new one. */
  #takeQueue(len: number): FrameQueue {
    const need = FRAME_RECORD_LEN + len;
    const q = this.#freeQueues.pop();
    if (q !== undefined) {
      this.#freeQueueBytes -= q.capacity;
      // Not a ring many times the packet: that memory would sit unused.
      if (q.capacity <= Math.max(4 * need, 4096)) return q;
    }
    const cfg = this.#cfg;
    return new FrameQueue(cfg.queueBytes + cfg.queueLen * FRAME_RECORD_LEN, need);
  }

  /** An emptied queue goes back to the free list (within bounds). */
  #recycle(q: FrameQueue): void {
    q.clear();
    if (this.#freeQueueBytes + q.capacity <= QUEUE_BUFFERS_KEPT) {
      this.#freeQueues.push(q);
      this.#freeQueueBytes += q.capacity;
    }
    // Every queue is empty (a flood is over): free rings beyond a few go,
    // and send buffers beyond one ordinary one.
    if (this.#queuedBytes === 0) {
      if (this.#freeQueueBytes > QUEUE_BUFFERS_KEPT_IDLE) {
        this.#freeQueues.length = 0;
        this.#freeQueueBytes = 0;
      }
      const b = this.#sendBuffers;
      if (b.length > 1 || (b.length === 1 && b[0]!.data.length > SEND_BUFFER_MIN)) b.length = 0;
    }
  }

  /** A buffer to send the oldest packet of `q` from (at its own offsets). */
  #takeSendBuffer(q: FrameQueue): PacketBuffer {
    const need = Math.max(q.frontEnd(), HEADROOM + q.frontLength());
    const b = this.#sendBuffers.pop();
    if (b !== undefined && b.data.length >= need) return b;
    return new PacketBuffer(Math.max(need, SEND_BUFFER_MIN));
  }

  /** Bytes in every entry's queue. */
  #queuedBytes = 0;

  /** Bytes of the packets waiting in every entry's queue (bounded by `queueBytesTotal`). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Hand every packet of `e`'s queue, oldest first, to the protocol: sent
   * to the now-known address, or (`failed`) to `resolutionFailed`. Each
   * goes out of a send buffer of the cache's, at the offsets and with the
   * offload metadata it was queued with. Packets queued meanwhile (a
   * callback re-entered) wait in a new queue.
   */
  #drain(e: Entry<K>, failed: boolean): void {
    const q = e.queue;
    if (q === null) return;
    e.queue = null;
    try {
      while (q.length > 0) {
        const b = this.#takeSendBuffer(q);
        this.#account(e, -q.shiftInto(b));
        try {
          if (failed) {
            this.stats.queuedPacketsFailed++;
            this.#protocol.resolutionFailed(e.key, b);
          } else if (e.dead || !e.hasMac) {
            this.stats.queuedPacketsDiscarded++;
          } else {
            this.stats.queuedPacketsSent++;
            this.#protocol.sendQueued(e.key, e.mac, b);
          }
        } finally {
          this.#sendBuffers.push(b);
        }
      }
    } finally {
      // A callback threw: what is left is discarded, and accounted.
      this.stats.queuedPacketsDiscarded += q.length;
      this.#account(e, -q.frameBytes);
      this.#recycle(q);
    }
  }

  /** Send the queue to the entry's now-known address. */
  #sendQueue(e: Entry<K>): void {
    this.#drain(e, false);
  }

  #fail(e: Entry<K>): void {
    this.#cancelTimer(e);
    this.#setState(e, FAILED, this.#clock.now());
    e.hasMac = false;
    e.probes = 0;
    this.stats.resolutionsFailed++;
    this.#noteFailed(e);
    this.#drain(e, true);
  }

  #enterReachable(e: Entry<K>, now: number): void {
    this.stats.confirmations++;
    e.confirmedAt = now;
    e.probes = 0;
    if (e.state === REACHABLE) return; // the running timer re-arms itself lazily
    this.#setState(e, REACHABLE, now);
    this.#arm(e, this.#reachableTime(now));
  }

  #enterStale(e: Entry<K>, now: number): void {
    this.#cancelTimer(e);
    e.probes = 0;
    this.#setState(e, STALE, now);
    this.#gcStaleEligibleAt = Math.min(this.#gcStaleEligibleAt, now + this.#cfg.gcStaleTimeMs);
  }

  #enterDelay(e: Entry<K>): void {
    // RFC 4861 §7.3.3: the first packet to a STALE neighbor moves it to
    // DELAY and sets a timer of DELAY_FIRST_PROBE_TIME.
    this.#setState(e, DELAY, this.#clock.now());
    e.probes = 0;
    this.#arm(e, this.#cfg.delayFirstProbeMs);
  }

  #timerFired(e: Entry<K>): void {
    e.timer = null;
    if (e.dead) return;
    switch (e.state) {
      case INCOMPLETE:
      case PROBE:
        this.#solicit(e);
        return;
      case DELAY:
        // RFC 4861 §7.3.3: still DELAY when the timer expires → PROBE, and
        // send a unicast solicitation.
        this.#setState(e, PROBE, this.#clock.now());
        e.probes = 0;
        this.#solicit(e);
        return;
      case REACHABLE: {
        // RFC 4861 §7.3.3: ReachableTime after the last confirmation →
        // STALE. Confirmations only stamp confirmedAt, so re-arm for the rest.
        const now = this.#clock.now();
        const due = e.confirmedAt + this.#reachableTime(now);
        if (now < due) this.#arm(e, due - now);
        else this.#enterStale(e, now);
        return;
      }
    }
  }

  #delete(e: Entry<K>): void {
    this.#cancelTimer(e);
    e.dead = true;
    if (e.unused) {
      e.unused = false;
      this.#unusedCount--;
    }
    this.#counts[e.state]!--;
    this.#map.delete(nk(e.key));
    const q = e.queue;
    if (q !== null) {
      e.queue = null;
      this.stats.queuedPacketsDiscarded += q.length;
      this.#account(e, -q.frameBytes);
      this.#recycle(q);
    }
  }
}
