/**
 * An exception that escapes the stack while a link delivers a frame is a
 * bug, not bad input (the datapath never throws on bad input). The link
 * counts it, goes on with the next frame, and reports it here: the first
 * one is logged with its stack trace, later ones at most one line per
 * interval with how many there were — never only counted.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["tapir", "link"]);

/** Reports the exceptions of one link's dispatcher, rate-limited. */
export class DispatchErrorReporter {
  #first = true;
  #suppressed = 0;
  #lastAt = -Infinity;

  /**
   * @param where the link's name, for the log line
   * @param now monotonic ms (the link's clock)
   * @param intervalMs at most one line per this interval after the first
   */
  constructor(
    readonly where: string,
    readonly now: () => number,
    readonly intervalMs = 10_000,
  ) {}

  /** Log `e` (the first with its stack trace), or count it until the interval has passed. */
  report(e: unknown): void {
    const t = this.now();
    if (this.#first) {
      this.#first = false;
      this.#lastAt = t;
      log.error("{where}: exception while dispatching a frame (the frame is dropped): {trace}", {
        where: this.where,
        trace: e instanceof Error ? (e.stack ?? String(e)) : String(e),
      });
      return;
    }
    if (t - this.#lastAt < this.intervalMs) {
      this.#suppressed++;
      return;
    }
    log.error("{where}: {n} more exceptions while dispatching frames; the last: {error}", {
      where: this.where,
      n: this.#suppressed + 1,
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
    this.#suppressed = 0;
    this.#lastAt = t;
  }
}
