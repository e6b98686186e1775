/**
 * Time for the stack: a monotonic `now()` in milliseconds and one-shot
 * timers. `SystemClock` is the real thing; `ManualClock` runs timers only
 * when a test or the virtual lab advances it, in deadline order, the way
 * gVisor's faketime.ManualClock does.
 *
 * This is the only file in stack/ allowed to read the real time.
 *
 * @module
 */

/** A scheduled callback; `cancel()` is idempotent. */
export interface Timer {
  cancel(): void;
}

/** Where the stack's time comes from. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /**
   * Monotonic milliseconds that may lag {@link Clock.now} by up to one link
   * driver pass (well under a millisecond): for per-packet reads of the
   * time that only set or check timeouts of seconds (conntrack), where a
   * read of the real time per packet costs more than the work around it.
   */
  coarseNow(): number;
  /** Run `fn` once after `delayMs`. */
  schedule(delayMs: number, fn: () => void): Timer;
}

/**
 * The real clock: `performance.now()`, with the stack's timers kept in one
 * heap and a single `setTimeout` armed for the earliest. A driver that
 * holds the event loop under traffic (the link driver's synchronous polls)
 * calls {@link SystemClock.runDue} on every turn, so retransmissions and a
 * DHCP server's group commit fire on time without a macrotask turn; when
 * the loop is idle the armed `setTimeout` fires them.
 *
 * @example
 * ```ts
 * import { SystemClock } from "./clock.ts";
 * const c = new SystemClock();
 * c.schedule(10, () => {}).cancel();
 * ```
 */
export class SystemClock implements Clock {
  readonly #heap = new TimerHeap();
  #armed: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Infinity;
  /** The time {@link SystemClock.hold} holds `coarseNow()` at, or -1. */
  #held = -1;

  now(): number {
    return performance.now();
  }

  /**
   * `performance.now()`, or while a link driver's pass holds the clock
   * ({@link SystemClock.hold}), the time that pass began.
   */
  coarseNow(): number {
    const h = this.#held;
    return h >= 0 ? h : performance.now();
  }

  /**
   * Hold `coarseNow()` at the current time until {@link SystemClock.release}:
   * the link driver holds it for each synchronous pass over a batch of
   * frames, so conntrack's per-packet read of the time (its timeout) costs
   * one `performance.now()` (0.05–0.12 µs in Deno) per pass instead of one
   * per packet, as Linux's conntrack reads jiffies. A pass is a few hundred
   * frames, well under a millisecond. `now()` stays exact, for what needs
   * the real time inside a pass (TCP's RTT samples and timestamps).
   *
   * @returns the time held
   */
  hold(): number {
    return this.#held = performance.now();
  }

  /** Let `coarseNow()` read the real time again. */
  release(): void {
    this.#held = -1;
  }

  schedule(delayMs: number, fn: () => void): Timer {
    const t = this.#heap.add(performance.now() + Math.max(0, delayMs), fn);
    if (t.at < this.#armedAt) this.#arm(t.at);
    return t;
  }

  /** Fire every timer whose deadline has passed; returns how many fired. */
  runDue(): number {
    let fired = 0;
    for (;;) {
      const next = this.#heap.next();
      if (next === undefined || next > performance.now()) break;
      const t = this.#heap.pop()!;
      t.cancelled = true;
      fired++;
      t.fn();
    }
    const next = this.#heap.next();
    if (next === undefined) this.#disarm();
    else if (next !== this.#armedAt) this.#arm(next);
    return fired;
  }

  /** Deadline of the next pending timer, or undefined when none is pending. */
  nextDeadline(): number | undefined {
    return this.#heap.next();
  }

  /** Number of timers not yet fired or cancelled. */
  pending(): number {
    return this.#heap.pending();
  }

  #arm(at: number): void {
    this.#disarm();
    this.#armedAt = at;
    this.#armed = setTimeout(() => {
      this.#armed = undefined;
      this.#armedAt = Infinity;
      this.runDue();
    }, Math.max(0, at - performance.now()));
  }

  #disarm(): void {
    if (this.#armed !== undefined) clearTimeout(this.#armed);
    this.#armed = undefined;
    this.#armedAt = Infinity;
  }
}

/**
 * A clock that moves only when told. `advance(ms)` fires every timer due
 * in that window in deadline order (ties in scheduling order), with `now()`
 * set to each timer's deadline while it runs; timers scheduled by a timer
 * fire in the same call if they fall inside the window.
 *
 * @example
 * ```ts
 * import { ManualClock } from "./clock.ts";
 * const c = new ManualClock();
 * let fired = 0;
 * c.schedule(30_000, () => fired++);
 * c.advance(30_000);
 * console.assert(fired === 1 && c.now() === 30_000);
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  readonly #heap = new TimerHeap();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** The same as {@link ManualClock.now}: virtual time does not move by itself. */
  coarseNow(): number {
    return this.#now;
  }

  schedule(delayMs: number, fn: () => void): Timer {
    return this.#heap.add(this.#now + Math.max(0, delayMs), fn);
  }

  /** Deadline of the next pending timer, or undefined when none is pending. */
  nextDeadline(): number | undefined {
    return this.#heap.next();
  }

  /** Number of timers not yet fired or cancelled. */
  pending(): number {
    return this.#heap.pending();
  }

  /** Move time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const next = this.#heap.next();
      if (next === undefined || next > until) break;
      const t = this.#heap.pop()!;
      this.#now = Math.max(this.#now, t.at);
      t.cancelled = true;
      t.fn();
    }
    this.#now = until;
  }

  /** Fire timers that are due now (deadline ≤ now) without moving time. */
  runDue(): void {
    this.advance(0);
  }
}

/** A timer in a {@link TimerHeap}: a class, so `cancel` is one method on the prototype, not a closure per timer. */
class HeapTimer implements Timer {
  cancelled = false;

  constructor(
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
    readonly heap: TimerHeap,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.heap.cancelledOne();
  }
}

/** A binary min-heap of timers by deadline, ties in scheduling order. */
class TimerHeap {
  #seq = 0;
  #heap: HeapTimer[] = [];
  #cancelled = 0;

  add(at: number, fn: () => void): HeapTimer {
    const t = new HeapTimer(at, this.#seq++, fn, this);
    this.#push(t);
    return t;
  }

  /**
   * A timer was cancelled. Cancelled timers wait in the heap until they
   * reach the top; when they are most of it, rebuild the heap without them.
   */
  cancelledOne(): void {
    if (++this.#cancelled > 1024 && this.#cancelled * 2 > this.#heap.length) this.#compact();
  }

  /** Deadline of the earliest live timer, dropping cancelled ones on top. */
  next(): number | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) {
      this.pop();
      this.#cancelled = Math.max(0, this.#cancelled - 1);
    }
    return this.#heap[0]?.at;
  }

  pending(): number {
    return this.#heap.filter((t) => !t.cancelled).length;
  }

  #compact(): void {
    const live = this.#heap.filter((t) => !t.cancelled);
    this.#heap = [];
    this.#cancelled = 0;
    for (const t of live) this.#push(t);
  }

  #less(a: HeapTimer, b: HeapTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(t: HeapTimer): void {
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): HeapTimer | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
