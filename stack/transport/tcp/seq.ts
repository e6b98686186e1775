/**
 * Sequence number arithmetic modulo 2³² (RFC 9293 §3.4): comparisons are
 * on the signed 32-bit difference, so they hold across the wrap.
 *
 * @module
 */

/** a < b modulo 2³². */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** a ≤ b modulo 2³². */
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/** a > b modulo 2³². */
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** a ≥ b modulo 2³². */
export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** a + n modulo 2³². */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** b − a as a signed distance (positive when b is after a). */
export function seqDiff(b: number, a: number): number {
  return (b - a) | 0;
}
