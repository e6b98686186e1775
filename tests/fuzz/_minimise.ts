/**
 * Shrinking a failing fuzz input to a small reproducer: a list of events
 * (delta debugging: drop chunks, halving the chunk size) and one frame
 * (truncate from the end, then zero each byte and keep the zero only if it
 * still fails). Both take a predicate that replays the candidate on a fresh
 * target and says whether the same failure came back; both keep a candidate
 * only when the predicate says so, so the result always still fails.
 *
 * @module
 */

/** Caps on the work a minimisation may do (predicate calls). */
export interface MinimiseLimits {
  /** Most predicate calls (each is a replay on a fresh stack). */
  maxTries?: number;
}

/**
 * The smallest prefix-and-bytes version of `frame` for which `fails` still
 * holds: first the shortest length (a binary search on truncation, then a
 * byte-by-byte walk back, since failures need not be monotonic in length),
 * then each byte set to 0 and restored if the failure went away. Throws if
 * `frame` itself does not fail: a minimiser must start from a failure.
 */
export function minimiseFrame(
  frame: Uint8Array,
  fails: (f: Uint8Array) => boolean,
  limits: MinimiseLimits = {},
): Uint8Array {
  let tries = limits.maxTries ?? 4096;
  const test = (f: Uint8Array) => tries-- > 0 && fails(f);
  if (!fails(frame)) throw new Error("minimiseFrame: the input does not fail");
  let f = frame.slice();
  // Truncation: the shortest length found by halving the cut, then single bytes.
  for (let cut = f.length >> 1; cut >= 1 && tries > 0; cut >>= 1) {
    while (cut <= f.length && test(f.subarray(0, f.length - cut))) f = f.slice(0, f.length - cut);
  }
  // Zeroing: bytes that do not matter to the failure become 0.
  for (let i = 0; i < f.length && tries > 0; i++) {
    if (f[i] === 0) continue;
    const was = f[i]!;
    f[i] = 0;
    if (!test(f)) f[i] = was; // restore: this byte is part of the failure
  }
  return f;
}

/**
 * The smallest sub-list of `events` (order kept) for which `fails` still
 * holds, by removing chunks: halves, then quarters, ... down to single
 * events (the complement step of Zeller's ddmin). Throws if `events` does
 * not fail.
 */
export function minimiseEvents<T>(
  events: readonly T[],
  fails: (e: readonly T[]) => boolean,
  limits: MinimiseLimits = {},
): T[] {
  let tries = limits.maxTries ?? 512;
  if (!fails(events)) throw new Error("minimiseEvents: the input does not fail");
  let cur = events.slice();
  for (let chunk = Math.max(1, cur.length >> 1); tries > 0; chunk = chunk >> 1) {
    for (let at = cur.length - chunk; at >= 0 && tries > 0; at -= chunk) {
      const cand = [...cur.slice(0, at), ...cur.slice(at + chunk)];
      tries--;
      if (fails(cand)) cur = cand;
    }
    if (chunk === 1) break;
  }
  return cur;
}
