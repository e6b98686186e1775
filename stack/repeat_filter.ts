/**
 * Which senders came before: a pair of rotating Bloom filters over a byte
 * key (an address, a link-layer address). {@link RepeatFilter.repeated}
 * records its key and tells whether the key was recorded in the current or
 * the previous window, so a sender is "known" from its second message within
 * one to two windows. A flood from random sources sends each key once and
 * is almost never known (see {@link RepeatFilter} for the rate); a real
 * neighbour that repeats its message on its protocol's schedule is.
 *
 * ARP and NDP use it when the neighbour table is full (issue #16): a
 * request or NS from a sender the table cannot enter is answered only when
 * that sender asked before, as a host does after its retransmit time (1 s:
 * RFC 4861 §7.2.2's RetransTimer, Linux's ARP retrans_time).
 *
 * @module
 */
import type { Random } from "./random.ts";

/** Bits per window's filter (512 KiB each). */
export const REPEAT_FILTER_BITS = 1 << 22;

/**
 * Two Bloom filters of {@link REPEAT_FILTER_BITS} bits, 2 hash positions a
 * key, the current and the previous window. The hashes are seeded from the
 * stack's Random, so a sender cannot choose keys that collide. Made on
 * first use (1 MiB), so a stack that never needs it pays nothing.
 *
 * False positives: with n keys in a window of m bits, (1 − e^(−2n/m))² per
 * filter; an NS flood of 125,000 random sources a second and windows of 2 s
 * set n = 250,000, so about 1.4 % of each filter and under 3 % of the
 * flood's packets pass as known.
 */
export class RepeatFilter {
  readonly #seed: number;
  readonly #windowMs: number;
  #current: Uint32Array | null = null;
  #previous: Uint32Array | null = null;
  #windowStart = -Infinity;

  /**
   * @param random seeds the hashes.
   * @param windowMs length of one window (a key is known for one to two of them).
   */
  constructor(random: Random, windowMs = 2000) {
    this.#seed = random.uint32() | 1;
    this.#windowMs = windowMs;
  }

  /**
   * Record the key made of `a[aOff, aOff + aLen)` and `b[bOff, bOff + bLen)`
   * and tell whether it was recorded before, in this window or the last.
   */
  repeated(
    now: number,
    a: Uint8Array,
    aOff: number,
    aLen: number,
    b: Uint8Array,
    bOff: number,
    bLen: number,
  ): boolean {
    this.#rotate(now);
    // FNV-1a over both parts, from the seed; the second position from a
    // murmur3 finaliser of the first hash.
    let h = (0x811c9dc5 ^ this.#seed) >>> 0;
    for (let i = aOff; i < aOff + aLen; i++) h = Math.imul(h ^ a[i]!, 0x01000193);
    for (let i = bOff; i < bOff + bLen; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    let g = h ^ (h >>> 16);
    g = Math.imul(g, 0x85ebca6b);
    g ^= g >>> 13;
    g = Math.imul(g, 0xc2b2ae35);
    g ^= g >>> 16;
    const mask = REPEAT_FILTER_BITS - 1;
    const i1 = h & mask, i2 = g & mask;
    const cur = this.#current!, prev = this.#previous!;
    const w1 = i1 >>> 5, b1 = 1 << (i1 & 31), w2 = i2 >>> 5, b2 = 1 << (i2 & 31);
    const known = ((cur[w1]! & b1) !== 0 && (cur[w2]! & b2) !== 0) ||
      ((prev[w1]! & b1) !== 0 && (prev[w2]! & b2) !== 0);
    cur[w1]! |= b1;
    cur[w2]! |= b2;
    return known;
  }

  /** Bytes the filters hold (0 until first used). */
  get bytes(): number {
    return this.#current === null ? 0 : 2 * this.#current.byteLength;
  }

  #rotate(now: number): void {
    if (this.#current === null) {
      this.#current = new Uint32Array(REPEAT_FILTER_BITS >>> 5);
      this.#previous = new Uint32Array(REPEAT_FILTER_BITS >>> 5);
      this.#windowStart = now;
      return;
    }
    const age = now - this.#windowStart;
    if (age < this.#windowMs) return;
    const old = this.#previous!;
    old.fill(0);
    if (age >= 2 * this.#windowMs) {
      // Both windows are over: nothing recorded counts any more.
      this.#current.fill(0);
    } else {
      this.#previous = this.#current;
      this.#current = old;
    }
    this.#windowStart = now;
  }
}
