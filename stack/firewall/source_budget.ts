/**
 * Per-source budgets for new conntrack entries (issue #16's fairness under
 * load): a token bucket per source address (IPv6: per /64, the unit one
 * host or one attacker holds), so that one neighbour opening flows as fast
 * as it can does not take the table and the CPU from everyone else. A
 * packet that would start a connection after its source's bucket ran dry
 * is dropped before anything is made for it — the cheapest drop conntrack
 * has. Linux has no such default; nftables users write the same with a
 * `meter` or `-m hashlimit --hashlimit-mode srcip` on `ctstate NEW`.
 *
 * The buckets live in fixed typed arrays (no allocation per packet): a
 * source hashes to a window of {@link PROBE} slots; a source not in it takes
 * a free slot, or else the one idle longest, and starts with a full bucket.
 * So sources beyond the table's size (a flood of forged addresses) can only
 * push sources out, which then start afresh: they never lower anyone's
 * budget.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { refillTokens } from "../token_bucket.ts";

/** Slots a source may sit in, from its hash on. */
const PROBE = 8;

/**
 * Token buckets by source, refilled at `rate` per second up to `burst`.
 *
 * @example
 * ```ts
 * import { SourceBudget } from "./source_budget.ts";
 * import { ManualClock } from "../clock.ts";
 * const clock = new ManualClock();
 * const b = new SourceBudget(clock, 1000, 2);
 * console.assert(b.take(0xc0000201, 0) && b.take(0xc0000201, 0) && !b.take(0xc0000201, 0));
 * console.assert(b.take(0xc0000202, 0)); // another source has its own
 * clock.advance(1);
 * console.assert(b.take(0xc0000201, 0)); // one token a millisecond
 * ```
 */
export class SourceBudget {
  /** Per slot: the source's two key words, its tokens, its last refill (ms); `used` 0: free. */
  readonly #k0: Int32Array;
  readonly #k1: Int32Array;
  readonly #tokens: Float64Array;
  readonly #last: Float64Array;
  readonly #used: Uint8Array;
  readonly #mask: number;

  /**
   * @param rate new connections a second per source (0: no budget, {@link take} always true)
   * @param burst tokens a bucket holds (at least 1)
   * @param slots sources tracked at once (a power of two)
   */
  constructor(
    readonly clock: Clock,
    public rate: number,
    public burst: number,
    slots = 4096,
  ) {
    this.#k0 = new Int32Array(slots);
    this.#k1 = new Int32Array(slots);
    this.#tokens = new Float64Array(slots);
    this.#last = new Float64Array(slots);
    this.#used = new Uint8Array(slots);
    this.#mask = slots - 1;
  }

  /** Change the rate and burst (a reload); the buckets stay, capped at the new burst. */
  configure(rate: number, burst: number): void {
    this.rate = rate;
    this.burst = burst;
  }

  /**
   * Take a token from the bucket of the source with key (`k0`, `k1`) —
   * IPv4: the address and 0; IPv6: the /64's two words. False when it is empty.
   */
  take(k0: number, k1: number): boolean {
    if (this.rate <= 0) return true;
    const now = this.clock.coarseNow();
    k0 |= 0;
    k1 |= 0;
    const used = this.#used, a = this.#k0, b = this.#k1, last = this.#last, mask = this.#mask;
    let h = Math.imul(k0 ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ k1, 0xc2b2ae35);
    h ^= h >>> 16;
    let free = -1, idlest = -1;
    for (let j = 0; j < PROBE; j++) {
      const i = (h + j) & mask;
      if (used[i] === 0) {
        if (free < 0) free = i;
        continue;
      }
      if (a[i] === k0 && b[i] === k1) return this.#take(i, now);
      if (idlest < 0 || last[i]! < last[idlest]!) idlest = i;
    }
    const i = free >= 0 ? free : idlest;
    used[i] = 1;
    a[i] = k0;
    b[i] = k1;
    this.#tokens[i] = this.burst;
    last[i] = now;
    return this.#take(i, now);
  }

  #take(i: number, now: number): boolean {
    const tokens = this.#tokens, last = this.#last;
    const t = refillTokens(tokens[i]!, now - last[i]!, this.rate, this.burst);
    last[i] = now;
    if (t < 1) {
      tokens[i] = t;
      return false;
    }
    tokens[i] = t - 1;
    return true;
  }
}
