/**
 * IP datagram reassembly, shared by IPv4 (RFC 791 §3.2, RFC 815) and IPv6
 * (RFC 8200 §4.5, RFC 5722). The caller parses its own header, picks a key
 * (IPv4: src, dst, protocol, id; IPv6: src, dst, id) and hands each
 * fragment's payload to {@link Reassembler.add}; the reassembler copies it
 * into one pooled buffer per datagram and returns the whole datagram (the
 * first fragment's header followed by the payload) when the last hole is
 * filled. The caller then fixes the length/flags fields of that header.
 *
 * Policy, following Linux (net/ipv4/inet_fragment.c) where the RFCs leave
 * room: exact duplicates are ignored; any other overlap drops the whole
 * datagram and the key is remembered until its timeout so later fragments
 * of it are dropped too; memory held is bounded and the oldest datagrams
 * are evicted first when a new one would not fit.
 *
 * @module
 */
import type { Clock, Timer } from "./clock.ts";
import type { BufferPool, PacketBuffer } from "./wire/packet_buffer.ts";

/** Bytes charged for each tracked datagram besides its buffer (state, timer, map entry). */
export const REASSEMBLY_DATAGRAM_OVERHEAD = 256;
/** Bytes charged for each fragment record of a datagram. */
export const REASSEMBLY_FRAGMENT_OVERHEAD = 16;

/** Counters of a {@link Reassembler}. */
export interface ReassemblyStats {
  /** Fragments handed to `add()`, whatever became of them. */
  fragmentsReceived: number;
  /** Datagrams completed and returned to the caller. */
  datagramsReassembled: number;
  /** Fragments ignored because one with the same offset and length was already held. */
  duplicatesIgnored: number;
  /** Datagrams dropped because a fragment overlapped one already held (RFC 5722). */
  overlapsDropped: number;
  /** Datagrams dropped because their reassembly timer expired while still incomplete. */
  timeouts: number;
  /** Datagrams evicted (oldest first) to keep the memory held under the limit. */
  evictedForMemory: number;
  /** Fragments dropped because they would make the datagram exceed its maximum length. */
  tooLongDropped: number;
  /** Datagrams dropped because a fragment conflicted with the total length fixed by a last fragment. */
  inconsistentDropped: number;
  /** Fragments dropped as malformed: empty, offset or non-last length not a multiple of 8, out of the source buffer. */
  malformedDropped: number;
  /** Fragments dropped because their datagram was already dropped and its key is remembered until the timeout. */
  lateFragmentsDropped: number;
  /** Fragments dropped because they did not fit in the memory limit even after evicting every other datagram. */
  memoryLimitDropped: number;
  /** Fragments dropped because the buffer pool had no buffer for a new datagram. */
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
  /** Where assembly buffers come from (one per datagram, taken on its first fragment). */
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
  readonly key: K;
  /** The assembly buffer, null until the first fragment is copied (and after a drop). */
  buf: PacketBuffer | null = null;
  /** True once dropped: the key is remembered so its later fragments are dropped too. */
  dead = false;
  /** Header length of fragment 0, -1 until it arrives. */
  firstHeaderLen = -1;
  /** Where payload byte 0 sits in `buf`, -1 until a fragment arrives. */
  payloadPos = -1;
  /** Payload length fixed by the last fragment, -1 until it arrives. */
  total = -1;
  /** Largest fragment end seen. */
  maxEnd = 0;
  /** Payload bytes held (fragments never overlap, so this is the covered length). */
  received = 0;
  /** Fragments held, sorted by offset: [start0, end0, start1, end1, …]. */
  frags: number[] = [];
  /** Bytes charged to the memory gauge. */
  charged = 0;
  timer: Timer | null = null;

  constructor(key: K) {
    this.key = key;
  }
}

/**
 * Reassembles fragmented datagrams keyed by `K`.
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
  /** Datagrams in creation order, so the first entry is the oldest. */
  readonly #datagrams = new Map<K, Datagram<K>>();

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
    const h = d !== undefined && d.firstHeaderLen >= 0 ? d.firstHeaderLen : headerLen;
    if (h - this.#fixedHeaderLen + Math.max(end, d?.maxEnd ?? 0) > this.#maxLen) {
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

    // Charge what this fragment costs, evicting the oldest datagrams first.
    const isNew = d === undefined;
    const needBuf = d === undefined || d.buf === null;
    const need = REASSEMBLY_FRAGMENT_OVERHEAD + (isNew ? REASSEMBLY_DATAGRAM_OVERHEAD : 0) +
      (needBuf ? this.#pool.size : 0);
    if (!this.#reserve(need, d)) {
      st.memoryLimitDropped++;
      return DROPPED.memory;
    }
    let buf = d?.buf ?? null;
    if (buf === null) {
      buf = this.#pool.get();
      if (buf === null) {
        st.bufferPoolExhausted++;
        return DROPPED.memory;
      }
    }
    if (d === undefined) {
      d = new Datagram(key);
      const dg = d;
      d.timer = this.#clock.schedule(this.#timeoutMs, () => this.#expire(dg));
      this.#datagrams.set(key, d);
      d.charged = REASSEMBLY_DATAGRAM_OVERHEAD;
    }
    if (d.buf === null) {
      d.buf = buf;
      d.charged += this.#pool.size;
    }
    d.charged += REASSEMBLY_FRAGMENT_OVERHEAD;
    st.memoryInUse += need;

    const cap = buf.data.length;
    if (d.payloadPos < 0) {
      // Leave room in front for the largest header this datagram may have,
      // guessing this fragment's header length for fragment 0's.
      const maxTotal = this.#maxLen + this.#fixedHeaderLen;
      d.payloadPos = Math.max(0, cap - maxTotal) + headerLen;
    }
    if (fragOffset === 0) {
      if (d.payloadPos < headerLen) {
        // Fragment 0's header is longer than room left: move what is held.
        const shift = headerLen - d.payloadPos;
        if (headerLen + Math.max(d.maxEnd, end) > cap) return this.#tooLongKill(d);
        buf.data.copyWithin(d.payloadPos + shift, d.payloadPos, d.payloadPos + d.maxEnd);
        d.payloadPos = headerLen;
      }
      d.firstHeaderLen = headerLen;
      buf.data.set(
        src.data.subarray(headerOff, headerOff + headerLen),
        d.payloadPos - headerLen,
      );
    }
    if (d.payloadPos + end > cap) return this.#tooLongKill(d);
    buf.data.set(src.data.subarray(payloadOff, payloadOff + payloadLen), d.payloadPos + fragOffset);

    const f = d.frags;
    if (slot === f.length >> 1) f.push(fragOffset, end);
    else f.splice(2 * slot, 0, fragOffset, end);
    d.received += payloadLen;
    if (end > d.maxEnd) d.maxEnd = end;
    if (!more) d.total = end;

    if (d.total < 0 || d.firstHeaderLen < 0 || d.received !== d.total) return PENDING;

    // RFC 815: no holes left. Hand the buffer over.
    const headerLenFinal = d.firstHeaderLen;
    const payloadLenFinal = d.total;
    const headerOffset = d.payloadPos - headerLenFinal;
    d.buf = null;
    this.#forget(d);
    buf.start = headerOffset;
    buf.end = d.payloadPos + payloadLenFinal;
    buf.networkOffset = headerOffset;
    buf.transportOffset = d.payloadPos;
    st.datagramsReassembled++;
    return {
      kind: "complete",
      buffer: buf,
      headerOffset,
      headerLen: headerLenFinal,
      payloadLen: payloadLenFinal,
    };
  }

  /** Drop every datagram, cancel every timer and return every buffer (stack shutdown). */
  clear(): void {
    for (const d of [...this.#datagrams.values()]) this.#forget(d);
  }

  #tooLongKill(d: Datagram<K>): ReassemblyResult {
    this.stats.tooLongDropped++;
    this.#kill(d);
    return DROPPED.tooLong;
  }

  /** Make room for `need` more bytes by evicting the oldest datagrams other than `keep`. */
  #reserve(need: number, keep: Datagram<K> | undefined): boolean {
    const st = this.stats;
    while (st.memoryInUse + need > this.#memoryLimit) {
      let victim: Datagram<K> | undefined;
      for (const d of this.#datagrams.values()) {
        if (d !== keep) {
          victim = d;
          break;
        }
      }
      if (victim === undefined) return false;
      st.evictedForMemory++;
      this.#forget(victim);
    }
    return true;
  }

  /** Drop a datagram's data but remember its key until its timer fires. */
  #kill(d: Datagram<K>): void {
    this.#release(d);
    d.dead = true;
    d.frags.length = 0;
    d.received = 0;
    const freed = d.charged - REASSEMBLY_DATAGRAM_OVERHEAD;
    d.charged = REASSEMBLY_DATAGRAM_OVERHEAD;
    this.stats.memoryInUse -= freed;
  }

  /** Return the buffer of `d` to the pool, if it holds one. */
  #release(d: Datagram<K>): void {
    if (d.buf !== null) {
      this.#pool.put(d.buf);
      d.buf = null;
    }
  }

  /** Forget `d` entirely: timer, buffer, map entry, memory charge. */
  #forget(d: Datagram<K>): void {
    d.timer?.cancel();
    d.timer = null;
    this.#release(d);
    if (this.#datagrams.get(d.key) === d) this.#datagrams.delete(d.key);
    this.stats.memoryInUse -= d.charged;
    d.charged = 0;
  }

  #expire(d: Datagram<K>): void {
    d.timer = null;
    if (this.#datagrams.get(d.key) !== d) return;
    if (d.dead) {
      this.#forget(d);
      return;
    }
    this.stats.timeouts++;
    let first: FirstFragmentInfo | null = null;
    const buf = d.buf;
    if (d.firstHeaderLen >= 0 && buf !== null && d.frags[0] === 0) {
      const payloadLen = d.frags[1]!;
      const from = d.payloadPos - d.firstHeaderLen;
      first = {
        bytes: buf.data.slice(from, d.payloadPos + payloadLen),
        headerLen: d.firstHeaderLen,
        payloadLen,
      };
    }
    this.#forget(d);
    this.#onTimeout?.(d.key, first);
  }
}
