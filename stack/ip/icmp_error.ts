/**
 * The ICMP error core both families share: the order of the rules (never
 * about what RFC 1122 §3.2.2 / RFC 4443 §2.4 (e) forbid, then the rate
 * limit, which path MTU errors skip as Linux's ratemask does), the buffer,
 * the error header with its quote, the counters. A family supplies its
 * never-about rules, the IP header it builds and how it sends.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import { TokenBucket } from "../token_bucket.ts";
import type { StackContext } from "./context.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";

/** The counters of an ICMP error sender (fields of Icmpv4Stats / Icmpv6Stats). */
export interface IcmpErrorStats {
  errorsSent: number;
  errorsSuppressed: number;
  errorsRateLimited: number;
}

/** The ICMP header (type, code, zero checksum, rest) and the quote, in both families' layout. */
const ICMP_ERROR_HEADER_LEN = 8;

/**
 * Send an ICMP error about the packet at `orig.data[ipOff]`, unless the
 * family's rules forbid it or the rate limit says no.
 *
 * @param inNic where the original arrived (null: generated locally)
 * @param rest the 32-bit rest-of-header (MTU, pointer, gateway)
 * @param toMulticast the error may answer a multicast destination
 * @returns true when the error was sent
 */
export function sendIcmpError(
  f: IcmpErrorCore,
  orig: PacketBuffer,
  ipOff: number,
  inNic: Nic | null,
  type: number,
  code: number,
  rest: number,
  toMulticast = false,
): boolean {
  const s = f.errorStats;
  if (f.neverAbout(orig, ipOff, inNic, toMulticast)) {
    s.errorsSuppressed++;
    return false;
  }
  if (!f.pathMtuError(type, code) && !f.bucket.take()) {
    s.errorsRateLimited++;
    return false;
  }
  return withBuffer(f.stack, (b) => {
    const quote = f.quoteLen(orig, ipOff);
    const icmpLen = ICMP_ERROR_HEADER_LEN + quote;
    const m = f.writeIpHeader(b, orig, ipOff, icmpLen);
    b.end = m + icmpLen;
    b.data[m] = type;
    b.data[m + 1] = code;
    b.view.setUint16(m + 2, 0);
    b.view.setUint32(m + 4, rest >>> 0);
    b.data.set(orig.data.subarray(ipOff, ipOff + quote), m + ICMP_ERROR_HEADER_LEN);
    s.errorsSent++;
    return f.finishAndSend(b, m, icmpLen, orig, ipOff, inNic);
  });
}

/** True when `orig` arrived on `inNic` in a link-layer broadcast or multicast frame. */
export function arrivedAsLinkGroup(orig: PacketBuffer, ipOff: number, inNic: Nic | null): boolean {
  return inNic !== null && ipOff >= ETHERNET_HEADER_LEN &&
    orig.start <= ipOff - ETHERNET_HEADER_LEN &&
    (orig.data[ipOff - ETHERNET_HEADER_LEN]! & 1) === 1;
}

/**
 * Send an error about a packet the layer kept only as bytes (the first
 * fragment of a datagram whose reassembly timed out), from ourselves.
 */
export function sendAboutBytes(
  f: IcmpErrorCore,
  bytes: Uint8Array,
  type: number,
  code: number,
): boolean {
  return withBuffer(f.stack, (b) => {
    const off = b.start + ETHERNET_HEADER_LEN;
    const n = Math.min(bytes.length, b.data.length - off);
    b.data.set(bytes.subarray(0, n), off);
    b.end = off + n;
    return sendIcmpError(f, b, off, null, type, code, 0);
  });
}

/**
 * Run `fn` with a buffer from the stack's pool, given back afterwards;
 * false (and `bufferPoolExhausted` counted) when the pool is empty.
 */
export function withBuffer(stack: StackContext, fn: (b: PacketBuffer) => boolean): boolean {
  const b = stack.pool.get();
  if (b === null) {
    stack.stats.bufferPoolExhausted++;
    return false;
  }
  try {
    return fn(b);
  } finally {
    stack.pool.put(b);
  }
}

/** How a family sends an ICMP error about a packet (its ICMP module's `sendErrorAbout`). */
export type IcmpErrorSender = (
  orig: PacketBuffer,
  ipOff: number,
  inNic: Nic | null,
  type: number,
  code: number,
  rest: number,
  toMulticast?: boolean,
) => boolean;

/**
 * What both ICMP modules are as error senders: the shared token bucket
 * (Linux's icmp_ratelimit / icmp_msgs_per_sec and ICMPv6's ratelimit, 1000
 * a second with bursts of 50) and {@link sendIcmpError} bound as their
 * `sendErrorAbout`; each family answers the core's questions.
 */
export abstract class IcmpErrorCore {
  readonly bucket: TokenBucket;
  /** Send an error about a packet (see {@link sendIcmpError}). */
  readonly sendErrorAbout: IcmpErrorSender = (orig, ipOff, inNic, type, code, rest, toMc) =>
    sendIcmpError(this, orig, ipOff, inNic, type, code, rest, toMc);

  constructor(readonly stack: StackContext, readonly errorStats: IcmpErrorStats) {
    this.bucket = new TokenBucket(stack.clock, 1000, 50);
  }

  /** True when no error may be sent about the packet at `orig.data[ipOff]`. */
  abstract neverAbout(
    orig: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
    toMulticast: boolean,
  ): boolean;
  /** True for the errors path MTU discovery needs: never rate-limited. */
  abstract pathMtuError(type: number, code: number): boolean;
  /**
   * How much of the original the error quotes: as much as fits (RFC 1812
   * §4.3.2.3: 576 bytes in all; RFC 4443 §2.4 (c): the minimum MTU), never
   * past the original's own length.
   */
  abstract quoteLen(orig: PacketBuffer, ipOff: number): number;
  /**
   * Write the error's IP header into `b` for an ICMP message of `icmpLen`
   * bytes about the packet at `orig.data[ipOff]`.
   *
   * @returns the offset of the ICMP message in `b`
   */
  abstract writeIpHeader(
    b: PacketBuffer,
    orig: PacketBuffer,
    ipOff: number,
    icmpLen: number,
  ): number;
  /** Fill the ICMP checksum (ICMPv6's covers a pseudo-header) and send. */
  abstract finishAndSend(
    b: PacketBuffer,
    icmpOff: number,
    icmpLen: number,
    orig: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
  ): boolean;
}
