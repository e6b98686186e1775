/**
 * The Internet checksum (RFC 1071): the 16-bit ones' complement of the
 * ones' complement sum, and its incremental update (RFC 1624 eqn. 3).
 *
 * @module
 */

/**
 * Add the bytes `data[off, off + len)` to a running ones' complement sum,
 * as big-endian 16-bit words (an odd last byte is padded with zero). The
 * result is unfolded; pass it on or give it to {@link finishChecksum}.
 *
 * @example
 * ```ts
 * import { onesSum, finishChecksum } from "./checksum.ts";
 * const b = new Uint8Array([0x45, 0x00, 0x00, 0x1c]);
 * console.assert(finishChecksum(onesSum(b, 0, 4, 0)) === (~0x451c & 0xffff));
 * ```
 */
export function onesSum(data: Uint8Array, off: number, len: number, acc: number): number {
  let sum = acc;
  const end = off + (len & ~1);
  let i = off;
  // Sum in blocks so the accumulator never leaves the exact-integer range.
  while (i < end) {
    const stop = Math.min(end, i + 65_536);
    for (; i < stop; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
    sum = (sum & 0xffff) + Math.floor(sum / 65_536);
  }
  if (len & 1) sum += data[off + len - 1]! << 8;
  return sum;
}

/** Fold a running sum to 16 bits (without complementing it). */
export function foldSum(acc: number): number {
  let s = acc;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65_536);
  return s;
}

/** Fold a running sum and complement it: the checksum field's value. */
export function finishChecksum(acc: number): number {
  return ~foldSum(acc) & 0xffff;
}

/**
 * The Internet checksum of `data[off, off + len)`.
 *
 * @example
 * ```ts
 * import { internetChecksum } from "./checksum.ts";
 * // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2.
 * const b = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
 * console.assert(internetChecksum(b, 0, b.length) === (~0xddf2 & 0xffff));
 * ```
 */
export function internetChecksum(data: Uint8Array, off: number, len: number): number {
  return finishChecksum(onesSum(data, off, len, 0));
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered
 * data changed from `oldWord` to `newWord`: HC' = ~(~HC + ~m + m').
 *
 * @example
 * ```ts
 * import { checksumUpdate16 } from "./checksum.ts";
 * // TTL 64 → 63 in the word (TTL << 8 | protocol):
 * const updated = checksumUpdate16(0xb861, 0x4001, 0x3f01);
 * console.assert(updated === 0xb961);
 * ```
 */
export function checksumUpdate16(checksum: number, oldWord: number, newWord: number): number {
  const s = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~foldSum(s) & 0xffff;
}

/** RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address) that changed. */
export function checksumUpdate32(checksum: number, oldValue: number, newValue: number): number {
  const s = (~checksum & 0xffff) + (~(oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) + (newValue & 0xffff);
  return ~foldSum(s) & 0xffff;
}

/** Ones' complement sum of the IPv4 pseudo header (RFC 793 §3.1, RFC 768). */
export function ipv4PseudoHeaderSum(
  src: number,
  dst: number,
  protocol: number,
  len: number,
): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + len;
}

/** Ones' complement sum of the IPv6 pseudo header (RFC 8200 §8.1). */
export function ipv6PseudoHeaderSum(
  data: Uint8Array,
  srcOff: number,
  dstOff: number,
  nextHeader: number,
  len: number,
): number {
  let s = onesSum(data, srcOff, 16, 0);
  s = onesSum(data, dstOff, 16, s);
  return s + (len >>> 16) + (len & 0xffff) + nextHeader;
}
