/**
 * A token bucket on the stack's clock, for ICMP error rate limiting
 * (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)); Linux and gVisor both default to
 * 1000 messages a second with a burst of 50.
 *
 * @module
 */
import type { Clock } from "./clock.ts";

/**
 * The tokens of a bucket that held `tokens` `elapsedMs` ago, refilled at
 * `rate` a second up to `burst`: the arithmetic of {@link TokenBucket},
 * shared with buckets kept in typed arrays (the firewall's SourceBudget).
 */
export function refillTokens(
  tokens: number,
  elapsedMs: number,
  rate: number,
  burst: number,
): number {
  return Math.min(burst, tokens + elapsedMs * rate / 1000);
}

/**
 * Refills continuously at `rate` tokens per second up to `burst`.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * import { ManualClock } from "./clock.ts";
 * const c = new ManualClock();
 * const b = new TokenBucket(c, 1000, 2);
 * console.assert(b.take() && b.take() && !b.take());
 * c.advance(1);
 * console.assert(b.take());
 * ```
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(private clock: Clock, public rate: number, public burst: number) {
    this.#tokens = burst;
    this.#last = clock.now();
  }

  /** Take one token; false when the bucket is empty. */
  take(): boolean {
    const now = this.clock.now();
    this.#tokens = refillTokens(this.#tokens, now - this.#last, this.rate, this.burst);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
