/**
 * Exceptions that escape a protocol handler while a frame is dispatched
 * (DESIGN.md: "counted and logged, never only counted"). The first is
 * logged with its stack trace; after it, at most one line per interval
 * says how many more were caught.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Clock } from "./clock.ts";

const log = getLogger(["tapir", "dispatch"]);

/** Counts and logs escaped exceptions, rate-limited on the stack's clock. */
export class ExceptionLog {
  /** Exceptions reported, all NICs. */
  count = 0;
  #clock: Clock;
  #intervalMs: number;
  #lastLogAt = -Infinity;
  #sinceLog = 0;

  /**
   * @param clock the stack's clock
   * @param intervalMs shortest time between two log lines after the first
   */
  constructor(clock: Clock, intervalMs = 10_000) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  /** Count `err`, thrown while `where` handled a frame, and log it if the rate allows. */
  report(where: string, err: unknown): void {
    this.count++;
    this.#sinceLog++;
    const now = this.#clock.now();
    if (this.count === 1) {
      this.#lastLogAt = now;
      this.#sinceLog = 0;
      log.error("exception while dispatching a frame on {where}: {error}\n{trace}", {
        where,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        trace: err instanceof Error ? err.stack ?? "" : "",
      });
      return;
    }
    if (now - this.#lastLogAt < this.#intervalMs) return;
    log.error(
      "{n} more exceptions while dispatching frames ({total} in all), latest on {where}: {error}",
      {
        n: this.#sinceLog,
        total: this.count,
        where,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      },
    );
    this.#lastLogAt = now;
    this.#sinceLog = 0;
  }
}
