/**
 * IP datagram reassembly, shared by IPv4 (RFC 791 §3.2, RFC 815) and IPv6
 * (RFC 8200 §4.5, RFC 5722). The caller parses its own header, picks a key
 * (IPv4: src, dst, protocol, id; IPv6: src, dst, id) and hands each
 * fragment's payload to {@link Reassembler.add}; the reassembler copies it
 * into a chunk sized to it and, when the last hole is filled, copies the
 * whole datagram (the first fragment's header followed by the payload)
 * into one pooled buffer and returns it. The caller then fixes the
 * length/flags fields of that header.
 *
 * Policy, following Linux (net/ipv4/inet_fragment.c) where the RFCs leave
 * room: exact duplicates are ignored; any other overlap drops the whole
 * datagram and the key is remembered until its timeout so later fragments
 * of it are dropped too; memory held is bounded (each fragment is charged
 * what it really holds, as Linux charges an skb's truesize). When a new
 * fragment would not fit, the oldest datagrams are evicted first, but only
 * those that have waited {@link REASSEMBLY_EVICT_AGE_MS}; otherwise the
 * fragment is dropped, as Linux drops every fragment over its limit.
 *
 * @module
 */
import type { Clock, Timer } from "./clock.ts";
import type { BufferPool, PacketBuffer } from "./wire/packet_buffer.ts";

/**
 * Bytes charged for each tracked datagram besides its fragments: its
 * object, arrays, key and map entry, and fragment 0's header chunk's
 * object (measured with bench/memory_budget.ts: a datagram of one 1,000-byte
 * fragment holds about 2,200 bytes in all).
 */
export const REASSEMBLY_DATAGRAM_OVERHEAD = 512;
/** Bytes charged for each fragment held besides its chunk's capacity: the chunk's object and its malloc header. */
export const REASSEMBLY_FRAGMENT_OVERHEAD = 256;

/**
 * How long a datagram must have waited before a new one may evict it when
 * the memory limit is reached. Linux (inet_frag_find since 4.17) evicts
 * nothing: over ipfrag_high_thresh every fragment is dropped until timers
 * free memory, up to 60 s (IPv6) after a flood ends. tapir refuses new
 * datagrams while every datagram held is younger than this (a flood's
 * fragments then cost a check, see {@link Reassembler.dropIfFull}, not a
 * copy into memory the next copy evicts), and lets the ones that waited
 * this long go to make room: the
 * fragments of a datagram arrive back to back, so one incomplete for a
 * second is as good as lost, and fragments work again a second after a
 * flood.
 */
export const REASSEMBLY_EVICT_AGE_MS = 1000;

/**
 * Capacities of the chunks fragments are copied into: a fragment is charged
 * the smallest that holds it (1536 takes the 1480/1448/1232-byte fragments
 * of 1500-byte links), so a flood of small fragments fills the memory
 * limit with thousands of datagrams, not with 64 KiB pool buffers.
 */
export const REASSEMBLY_CHUNK_SIZES: readonly number[] = [
  64,
  128,
  256,
  512,
  1024,
  1536,
  2048,
  4096,
  9216,
  16_384,
  32_768,
  65_536,
];

/** The index in {@link REASSEMBLY_CHUNK_SIZES} of the smallest chunk of at least `len` bytes. */
function chunkClass(len: number): number {
  const sizes = REASSEMBLY_CHUNK_SIZES;
  let i = 0;
  while (i < sizes.length - 1 && sizes[i]! < len) i++;
  return i;
}

/** Free chunk bytes kept once no datagram is tracked; beyond it they are let go. */
const CHUNKS_KEPT_IDLE = 256 * 1024;

/**
 * Free chunks by size class, reused so that a steady fragment flood
 * allocates nothing (an ArrayBuffer costs ~0.5 µs and GC work in Deno).
 * What it keeps is bounded by the reassembler's memory limit (chunks are
 * only made while the charged bytes fit it); {@link ChunkPool.release}
 * lets every free chunk go.
 */
class ChunkPool {
  readonly #free: Uint8Array[][] = REASSEMBLY_CHUNK_SIZES.map(() => []);
  /** Bytes in the free lists. */
  freeBytes = 0;

  get(len: number): Uint8Array {
    const c = chunkClass(len);
    const f = this.#free[c]!;
    const b = f.pop();
    if (b !== undefined) {
      this.freeBytes -= b.length;
      return b;
    }
    return new Uint8Array(Math.max(len, REASSEMBLY_CHUNK_SIZES[c]!));
  }

  put(b: Uint8Array): void {
    // A chunk larger than every class (never made: fragments are < 64 KiB) is let go.
    const c = chunkClass(b.length);
    if (REASSEMBLY_CHUNK_SIZES[c] !== b.length) return;
    this.#free[c]!.push(b);
    this.freeBytes += b.length;
  }

  release(): void {
    for (const f of this.#free) f.length = 0;
    this.freeBytes = 0;
  }
}

/** Counters of a {@link Reassembler}. */
export interface ReassemblyStats {
  /** Fragments handed to `add()` or refused by `dropIfFull()`, whatever became of them. */
  fragmentsReceived: number;
  /** Datagrams completed and returned to the caller. */
  datagramsReassembled: number;
  /** Fragments ignored because one with the same offset and length was already held. */
  duplicatesIgnored: number;
  /** Datagrams dropped because a fragment overlapped one already held (RFC 5722). */
  overlapsDropped: number;
  /** Datagrams dropped because their reassembly timer expired while still incomplete. */
  timeouts: number;
  /** Datagrams evicted (oldest first, each incomplete for at least a second) to keep the memory held under the limit. */
  evictedForMemory: number;
  /** Fragments dropped because they would make the datagram exceed its maximum length. */
  tooLongDropped: number;
  /** Datagrams dropped because a fragment conflicted with the total length fixed by a last fragment. */
  inconsistentDropped: number;
  /** Fragments dropped as malformed: empty, offset or non-last length not a multiple of 8, out of the source buffer. */
  malformedDropped: number;
  /** Fragments dropped because their datagram was already dropped and its key is remembered until the timeout. */
  lateFragmentsDropped: number;
  /** Fragments dropped because they did not fit in the memory limit and no datagram was old enough to evict. */
  memoryLimitDropped: number;
  /** Datagrams dropped when complete because the buffer pool had no buffer to hand them over in. */
  bufferPoolExhausted: number;
  /** Gauge: bytes currently charged to datagrams under reassembly. */
  memoryInUse: number;
}

/** A zeroed {@link ReassemblyStats}. */
export function newReassemblyStats(): ReassemblyStats {
  return {
    fragmentsReceived: 0,
    datagramsReassembled: 0,
    duplicatesIgnored: 0,
    overlapsDropped: 0,
    timeouts: 0,
    evictedForMemory: 0,
    tooLongDropped: 0,
    inconsistentDropped: 0,
    malformedDropped: 0,
    lateFragmentsDropped: 0,
    memoryLimitDropped: 0,
    bufferPoolExhausted: 0,
    memoryInUse: 0,
  };
}

/**
 * What a timed-out datagram leaves for the ICMP Time Exceeded (code 1,
 * "fragment reassembly time exceeded") the caller may send: RFC 792, and
 * RFC 8200 §4.5 which sends it only when the first fragment arrived.
 */
export interface FirstFragmentInfo {
  /** A copy of the first fragment: its header bytes followed by its payload. */
  readonly bytes: Uint8Array;
  /** Bytes of header at the front of `bytes`. */
  readonly headerLen: number;
  /** Bytes of payload after the header. */
  readonly payloadLen: number;
}

/**
 * Why a fragment was not taken:
 * - `duplicate`: same offset and length as a fragment already held, ignored;
 * - `overlap`: it overlapped a held fragment, the datagram was dropped;
 * - `tooLong`: the datagram would exceed its maximum length (IPv6 callers send Parameter Problem);
 * - `inconsistent`: it conflicts with the total length, the datagram was dropped;
 * - `invalid`: malformed fragment, dropped alone;
 * - `memory`: no memory or buffer for it;
 * - `late`: its datagram was dropped earlier and is remembered until the timeout.
 */
export type ReassemblyDropReason =
  | "duplicate"
  | "overlap"
  | "tooLong"
  | "inconsistent"
  | "invalid"
  | "memory"
  | "late";

/** The fragment was taken; the datagram is not complete yet. */
export interface ReassemblyPending {
  readonly kind: "pending";
}

/** The fragment was not taken. */
export interface ReassemblyDropped {
  readonly kind: "dropped";
  readonly reason: ReassemblyDropReason;
}

/**
 * The datagram is complete. `buffer` now belongs to the caller, who returns
 * it to the pool; its frame (`start`, `end`, `networkOffset`) is the
 * datagram: `headerLen` bytes of the first fragment's header at
 * `headerOffset`, then `payloadLen` bytes of payload. The header's length
 * and fragment fields are still the first fragment's: the caller fixes them.
 */
export interface ReassemblyComplete {
  readonly kind: "complete";
  readonly buffer: PacketBuffer;
  readonly headerOffset: number;
  readonly headerLen: number;
  readonly payloadLen: number;
}

/** Result of {@link Reassembler.add}. */
export type ReassemblyResult = ReassemblyPending | ReassemblyDropped | ReassemblyComplete;

const PENDING: ReassemblyPending = Object.freeze({ kind: "pending" });
const DROPPED: Record<ReassemblyDropReason, ReassemblyDropped> = {
  duplicate: Object.freeze({ kind: "dropped", reason: "duplicate" }),
  overlap: Object.freeze({ kind: "dropped", reason: "overlap" }),
  tooLong: Object.freeze({ kind: "dropped", reason: "tooLong" }),
  inconsistent: Object.freeze({ kind: "dropped", reason: "inconsistent" }),
  invalid: Object.freeze({ kind: "dropped", reason: "invalid" }),
  memory: Object.freeze({ kind: "dropped", reason: "memory" }),
  late: Object.freeze({ kind: "dropped", reason: "late" }),
};

/** Options of a {@link Reassembler}. */
export interface ReassemblerOptions<K> {
  /** Where timers run. */
  clock: Clock;
  /**
   * Where the buffer of a complete datagram comes from (taken when its last
   * hole is filled; fragments wait in chunks sized to them).
   */
  pool: BufferPool;
  /** Reassembly timeout from the first fragment: 30 000 for IPv4 (Linux), 60 000 for IPv6 (RFC 8200 §4.5). */
  timeoutMs: number;
  /** Bytes held at most, like Linux's ipfrag_high_thresh; default 4 MiB. */
  memoryLimit?: number;
  /**
   * Largest datagram: 65 535 for IPv4 (header + payload), 65 535 for IPv6
   * (Payload Length, with `fixedHeaderLen` 40).
   */
  maxDatagramLen: number;
  /**
   * Bytes at the front of the header not counted against `maxDatagramLen`:
   * 0 for IPv4, 40 for IPv6 (the fixed header is outside Payload Length).
   */
  fixedHeaderLen?: number;
  /** Called when an incomplete datagram times out; `first` is null unless fragment 0 arrived. */
  onTimeout?: (key: K, first: FirstFragmentInfo | null) => void;
  /** Counters to update; a fresh set when omitted. */
  stats?: ReassemblyStats;
}

/** One datagram under reassembly. */
class Datagram<K> {
  key: K;
  /** Clock time its reassembly timer runs out (from the first-arriving fragment). */
  expiresAt: number;
  /** True once dropped: the key is remembered so its later fragments are dropped too. */
  dead = false;
  /** Fragment 0's header (a chunk; its first `firstHeaderLen` bytes), null until it arrives. */
  header: Uint8Array | null = null;
  /** Header length of fragment 0, -1 until it arrives. */
  firstHeaderLen = -1;
  /** Payload length fixed by the last fragment, -1 until it arrives. */
  total = -1;
  /** Largest fragment end seen. */
  maxEnd = 0;
  /** Payload bytes held (fragments never overlap, so this is the covered length). */
  received = 0;
  /** Fragments held, sorted by offset: [start0, end0, start1, end1, …]. */
  frags: number[] = [];
  /** The payload of each fragment in `frags` (pair i → chunks[i]), in chunks from the pool. */
  chunks: Uint8Array[] = [];
  /** Bytes charged to the memory gauge. */
  charged = 0;
  /** Forgotten: no longer in the table (its place in the age queue is skipped). */
  gone = false;

  constructor(key: K, expiresAt: number) {
    this.key = key;
    this.expiresAt = expiresAt;
  }

  /** Make a spare datagram (forgotten and out of the age queue) new again. */
  reuse(key: K, expiresAt: number): this {
    this.key = key;
    this.expiresAt = expiresAt;
    this.dead = false;
    this.header = null;
    this.firstHeaderLen = -1;
    this.total = -1;
    this.maxEnd = 0;
    this.received = 0;
    this.frags.length = 0;
    this.chunks.length = 0;
    this.charged = 0;
    this.gone = false;
    return this;
  }
}

/** Spare {@link Datagram} objects kept for reuse (a flood makes one per fragment). */
const SPARE_DATAGRAMS = 4096;

/**
 * Reassembles fragmented datagrams keyed by `K`.
 *
 * Each fragment's payload is copied into a chunk sized to it (from a free
 * list by size class) and charged its chunk's capacity plus
 * {@link REASSEMBLY_FRAGMENT_OVERHEAD}, so `memoryLimit` bounds what is
 * really held; a pool buffer is taken only when the datagram is complete.
 * All datagrams share one timer: they time out in the order they were made.
 *
 * @example
 * ```ts
 * import { Reassembler } from "./reassembly.ts";
 * import { ManualClock } from "./clock.ts";
 * import { BufferPool, PacketBuffer } from "./wire/packet_buffer.ts";
 * const r = new Reassembler<string>({
 *   clock: new ManualClock(), pool: new BufferPool(4), timeoutMs: 30_000, maxDatagramLen: 65_535,
 * });
 * const src = new PacketBuffer(64);
 * r.add("a", 8, false, src, 20, 8, 0, 20); // the last 8 bytes first
 * const res = r.add("a", 0, true, src, 20, 8, 0, 20);
 * console.assert(res.kind === "complete" && res.payloadLen === 16);
 * ```
 */
export class Reassembler<K extends string | number> {
  /** Counters, shared with the caller when it passed its own. */
  readonly stats: ReassemblyStats;
  readonly #clock: Clock;
  readonly #pool: BufferPool;
  readonly #timeoutMs: number;
  readonly #memoryLimit: number;
  readonly #maxLen: number;
  readonly #fixedHeaderLen: number;
  readonly #onTimeout: ((key: K, first: FirstFragmentInfo | null) => void) | undefined;
  /** Datagrams by key. */
  readonly #datagrams = new Map<K, Datagram<K>>();
  /**
   * Datagrams in creation order from `#head` on, so the first that is not
   * gone is the oldest and times out first. (A Map's own order would do,
   * but finding its first entry walks past every entry deleted since its
   * last rehash: under a flood, thousands per fragment.)
   */
  #order: Datagram<K>[] = [];
  #head = 0;
  /** Forgotten datagrams that left the age queue, for reuse. */
  readonly #spare: Datagram<K>[] = [];
  readonly #chunks = new ChunkPool();
  /** The one timer, armed for the oldest datagram's deadline while any is tracked. */
  #timer: Timer | null = null;
  readonly #onTimer = () => this.#expireDue();

  /** @param opts see {@link ReassemblerOptions}. */
  constructor(opts: ReassemblerOptions<K>) {
    this.#clock = opts.clock;
    this.#pool = opts.pool;
    this.#timeoutMs = opts.timeoutMs;
    this.#memoryLimit = opts.memoryLimit ?? 4 * 1024 * 1024;
    this.#maxLen = opts.maxDatagramLen;
    this.#fixedHeaderLen = opts.fixedHeaderLen ?? 0;
    this.#onTimeout = opts.onTimeout;
    this.stats = opts.stats ?? newReassemblyStats();
  }

  /** Datagrams tracked, dropped-but-remembered ones included. */
  size(): number {
    return this.#datagrams.size;
  }

  /** Bytes currently charged (the `memoryInUse` gauge of this reassembler). */
  memoryInUse(): number {
    let n = 0;
    for (const d of this.#datagrams.values()) n += d.charged;
    return n;
  }

  /** Bytes of free chunks kept for reuse (let go once no datagram is tracked). */
  freeChunkBytes(): number {
    return this.#chunks.freeBytes;
  }

  /**
   * True, with the fragment counted as received and dropped for memory
   * (`memoryLimitDropped`), when a fragment of `payloadLen` bytes could not
   * be taken now whatever its key: the memory held leaves no room for its
   * chunk (even in a datagram already tracked) and no datagram has waited
   * {@link REASSEMBLY_EVICT_AGE_MS} to be evicted.
   * Callers ask before they make the key, so that a flood over the limit
   * costs no key and no lookup (Linux's inet_frag_find drops before its
   * lookup too). Otherwise false, and the caller goes on to {@link add}.
   */
  dropIfFull(payloadLen: number): boolean {
    const st = this.stats;
    const need = REASSEMBLY_FRAGMENT_OVERHEAD + chunkBytes(payloadLen);
    if (!(need > 0) || st.memoryInUse + need <= this.#memoryLimit) return false;
    const o = this.#oldest();
    if (o !== undefined && o.expiresAt <= this.#evictableUntil()) return false;
    st.fragmentsReceived++;
    st.memoryLimitDropped++;
    return true;
  }

  /** Deadline at or before which a datagram has waited {@link REASSEMBLY_EVICT_AGE_MS} (it was made by then). */
  #evictableUntil(): number {
    return this.#clock.now() - REASSEMBLY_EVICT_AGE_MS + this.#timeoutMs;
  }

  /**
   * Add one fragment: payload `src.data[payloadOff, payloadOff + payloadLen)`
   * at byte offset `fragOffset` of the datagram, `more` its MF/M flag. The
   * header `src.data[headerOff, headerOff + headerLen)` is kept from
   * fragment 0 only (IPv4 header with options, or the IPv6 unfragmentable
   * part); for other fragments it only counts toward the length check. The
   * source buffer is not kept. Never throws on bad input.
   *
   * @returns the complete datagram, `pending`, or why the fragment was dropped.
   */
  add(
    key: K,
    fragOffset: number,
    more: boolean,
    src: PacketBuffer,
    payloadOff: number,
    payloadLen: number,
    headerOff: number,
    headerLen: number,
  ): ReassemblyResult {
    const st = this.stats;
    st.fragmentsReceived++;
    const srcLen = src.data.length;
    // RFC 791 §3.2 / RFC 8200 §4.5: offsets count 8-octet units, and every
    // fragment but the last carries a multiple of 8 octets.
    if (
      !(payloadLen > 0) || !(fragOffset >= 0) || (fragOffset & 7) !== 0 ||
      (more && (payloadLen & 7) !== 0) || !(headerLen >= 0) ||
      !(payloadOff >= 0) || payloadOff + payloadLen > srcLen ||
      !(headerOff >= 0) || headerOff + headerLen > srcLen
    ) {
      st.malformedDropped++;
      return DROPPED.invalid;
    }
    const end = fragOffset + payloadLen;
    let d = this.#datagrams.get(key);
    if (d !== undefined && d.dead) {
      st.lateFragmentsDropped++;
      return DROPPED.late;
    }

    // RFC 8200 §4.5: a fragment that would make the reassembled Payload
    // Length exceed 65 535 is discarded (the caller sends Parameter
    // Problem); for IPv4 the "ping of death" bound is 65 535 with header.
    // The whole datagram must also fit the pool's buffers.
    const h = d !== undefined && d.firstHeaderLen >= 0 ? d.firstHeaderLen : headerLen;
    const len = Math.max(end, d?.maxEnd ?? 0);
    if (h - this.#fixedHeaderLen + len > this.#maxLen || this.#base() + h + len > this.#pool.size) {
      st.tooLongDropped++;
      if (d !== undefined) this.#kill(d);
      return DROPPED.tooLong;
    }

    let slot = 0; // pair index where this fragment goes
    if (d !== undefined) {
      const f = d.frags;
      const n = f.length >> 1;
      if (n === 0 || f[2 * n - 2]! < fragOffset) {
        slot = n; // the common case: after the last fragment held
      } else {
        let lo = 0, hi = n;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (f[2 * mid]! < fragOffset) lo = mid + 1;
          else hi = mid;
        }
        slot = lo;
        if (slot < n && f[2 * slot] === fragOffset && f[2 * slot + 1] === end) {
          st.duplicatesIgnored++;
          return DROPPED.duplicate;
        }
      }
      // The last fragment fixes the length; nothing may end beyond it, and
      // two last fragments must agree.
      if (
        (!more && ((d.total >= 0 && end !== d.total) || end < d.maxEnd)) ||
        (d.total >= 0 && end > d.total)
      ) {
        st.inconsistentDropped++;
        this.#kill(d);
        return DROPPED.inconsistent;
      }
      // RFC 5722 §4 (and Linux since 4.19 for IPv4): any overlap drops the
      // whole datagram.
      if ((slot < n && f[2 * slot]! < end) || (slot > 0 && f[2 * slot - 1]! > fragOffset)) {
        st.overlapsDropped++;
        this.#kill(d);
        return DROPPED.overlap;
      }
    }

    // Charge what this fragment costs (its chunk's capacity, fragment 0's
    // header chunk too), evicting the oldest datagrams first.
    const isNew = d === undefined;
    const withHeader = fragOffset === 0 && headerLen > 0;
    const need = REASSEMBLY_FRAGMENT_OVERHEAD + chunkBytes(payloadLen) +
      (withHeader ? chunkBytes(headerLen) : 0) + (isNew ? REASSEMBLY_DATAGRAM_OVERHEAD : 0);
    if (!this.#reserve(need, d)) {
      st.memoryLimitDropped++;
      return DROPPED.memory;
    }
    if (d === undefined) {
      const expiresAt = this.#clock.now() + this.#timeoutMs;
      // A spare object, so that a flood's datagrams are not garbage the
      // old generation grows by (they live past young-generation GC).
      d = this.#spare.pop()?.reuse(key, expiresAt) ?? new Datagram(key, expiresAt);
      this.#datagrams.set(key, d);
      this.#order.push(d);
      if (this.#timer === null) this.#arm(d.expiresAt);
    }
    d.charged += need;
    st.memoryInUse += need;

    const data = src.data;
    if (fragOffset === 0) {
      d.firstHeaderLen = headerLen;
      if (withHeader) {
        const hc = this.#chunks.get(headerLen);
        hc.set(data.subarray(headerOff, headerOff + headerLen));
        d.header = hc;
      }
    }
    const chunk = this.#chunks.get(payloadLen);
    chunk.set(data.subarray(payloadOff, payloadOff + payloadLen));
    const f = d.frags;
    if (slot === f.length >> 1) {
      f.push(fragOffset, end);
      d.chunks.push(chunk);
    } else {
      f.splice(2 * slot, 0, fragOffset, end);
      d.chunks.splice(slot, 0, chunk);
    }
    d.received += payloadLen;
    if (end > d.maxEnd) d.maxEnd = end;
    if (!more) d.total = end;

    if (d.total < 0 || d.firstHeaderLen < 0 || d.received !== d.total) return PENDING;
    return this.#complete(d);
  }

  /** Drop every datagram, stop the timer and let every chunk go (stack shutdown). */
  clear(): void {
    for (const d of [...this.#datagrams.values()]) this.#forget(d);
    this.#chunks.release();
  }

  /**
   * RFC 815: no holes left. Copy the datagram into one pool buffer, behind
   * as much headroom as the largest datagram leaves, and hand it over.
   */
  #complete(d: Datagram<K>): ReassemblyResult {
    const buf = this.#pool.get();
    if (buf === null) {
      this.stats.bufferPoolExhausted++;
      this.#kill(d);
      return DROPPED.memory;
    }
    const headerLen = d.firstHeaderLen;
    const payloadLen = d.total;
    const headerOffset = this.#base();
    const payloadPos = headerOffset + headerLen;
    const out = buf.data;
    if (d.header !== null) out.set(d.header.subarray(0, headerLen), headerOffset);
    const f = d.frags, chunks = d.chunks;
    for (let i = 0; i < chunks.length; i++) {
      const from = f[2 * i]!, to = f[2 * i + 1]!;
      out.set(chunks[i]!.subarray(0, to - from), payloadPos + from);
    }
    this.#forget(d);
    buf.start = headerOffset;
    buf.end = payloadPos + payloadLen;
    buf.networkOffset = headerOffset;
    buf.transportOffset = payloadPos;
    this.stats.datagramsReassembled++;
    return { kind: "complete", buffer: buf, headerOffset, headerLen, payloadLen };
  }

  /** Where a complete datagram's header goes: the room the largest datagram leaves in a pool buffer. */
  #base(): number {
    return Math.max(0, this.#pool.size - (this.#maxLen + this.#fixedHeaderLen));
  }

  /**
   * Make room for `need` more bytes by evicting the oldest datagrams other
   * than `keep`, but only those incomplete for at least
   * {@link REASSEMBLY_EVICT_AGE_MS}: when every datagram held is younger,
   * the fragment is refused.
   */
  #reserve(need: number, keep: Datagram<K> | undefined): boolean {
    const st = this.stats;
    if (st.memoryInUse + need <= this.#memoryLimit) return true;
    const latest = this.#evictableUntil();
    while (st.memoryInUse + need > this.#memoryLimit) {
      const victim = this.#oldest(keep);
      if (victim === undefined || victim.expiresAt > latest) return false;
      st.evictedForMemory++;
      this.#forget(victim);
    }
    return true;
  }

  /** Drop a datagram's data but remember its key until its timer fires. */
  #kill(d: Datagram<K>): void {
    this.#release(d);
    d.dead = true;
    const freed = d.charged - REASSEMBLY_DATAGRAM_OVERHEAD;
    d.charged = REASSEMBLY_DATAGRAM_OVERHEAD;
    this.stats.memoryInUse -= freed;
  }

  /** Return the chunks of `d` to the free lists. */
  #release(d: Datagram<K>): void {
    const c = this.#chunks;
    for (let i = 0; i < d.chunks.length; i++) c.put(d.chunks[i]!);
    if (d.header !== null) c.put(d.header);
    d.chunks.length = 0;
    d.frags.length = 0;
    d.header = null;
    d.received = 0;
  }

  /** Forget `d` entirely: chunks, map entry, memory charge; the timer stops with the last datagram. */
  #forget(d: Datagram<K>): void {
    this.#release(d);
    if (this.#datagrams.get(d.key) === d) this.#datagrams.delete(d.key);
    d.gone = true;
    this.stats.memoryInUse -= d.charged;
    d.charged = 0;
    if (this.#datagrams.size === 0) {
      this.#order.length = 0;
      this.#head = 0;
      this.#spare.length = 0;
      this.#timer?.cancel();
      this.#timer = null;
      // A flood (or a burst) is over: its free chunks go to the garbage
      // collector; a few are kept for the next datagrams.
      if (this.#chunks.freeBytes > CHUNKS_KEPT_IDLE) this.#chunks.release();
    }
  }

  #arm(at: number): void {
    this.#timer?.cancel();
    this.#timer = this.#clock.schedule(at - this.#clock.now(), this.#onTimer);
  }

  /** The timer fired: time out every datagram whose deadline passed (oldest first), re-arm for the next. */
  #expireDue(): void {
    this.#timer = null;
    const now = this.#clock.now();
    for (;;) {
      const d = this.#oldest();
      if (d === undefined) return;
      if (d.expiresAt > now) {
        this.#arm(d.expiresAt);
        return;
      }
      this.#expire(d);
    }
  }

  /** The oldest datagram other than `skip`, dropping the gone ones at the front of the queue. */
  #oldest(skip?: Datagram<K>): Datagram<K> | undefined {
    const q = this.#order;
    const spare = this.#spare;
    while (this.#head < q.length && q[this.#head]!.gone) {
      // Out of the queue for good: its object may now be reused.
      if (spare.length < SPARE_DATAGRAMS) spare.push(q[this.#head]!);
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#order = q.slice(this.#head);
      this.#head = 0;
    }
    const o = this.#order;
    for (let i = this.#head; i < o.length; i++) {
      const d = o[i]!;
      if (!d.gone && d !== skip) return d;
    }
    return undefined;
  }

  #expire(d: Datagram<K>): void {
    if (d.dead) {
      this.#forget(d);
      return;
    }
    this.stats.timeouts++;
    let first: FirstFragmentInfo | null = null;
    if (d.firstHeaderLen >= 0 && d.frags[0] === 0) {
      const headerLen = d.firstHeaderLen;
      const payloadLen = d.frags[1]!;
      const bytes = new Uint8Array(headerLen + payloadLen);
      if (d.header !== null) bytes.set(d.header.subarray(0, headerLen));
      bytes.set(d.chunks[0]!.subarray(0, payloadLen), headerLen);
      first = { bytes, headerLen, payloadLen };
    }
    this.#forget(d);
    this.#onTimeout?.(d.key, first);
  }
}

/** Bytes charged for a chunk holding `len` bytes (its capacity). */
function chunkBytes(len: number): number {
  return Math.max(len, REASSEMBLY_CHUNK_SIZES[chunkClass(len)]!);
}
