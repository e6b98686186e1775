/**
 * IPv4 fragmentation (RFC 791 §2.3, §3.2 "An Example Fragmentation
 * Procedure") and the IPv4 side of reassembly on top of the generic
 * {@link Reassembler}. Header fields are read through the buffer's DataView
 * at RFC 791 §3.1 offsets.
 *
 * @module
 */
import { internetChecksum } from "../wire/checksum.ts";
import { type BufferPool, HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";
import type { Reassembler, ReassemblyResult } from "../reassembly.ts";

// RFC 791 §3.1 field offsets.
const VER_IHL = 0;
const TOTAL_LEN = 2;
const IDENT = 4;
const FLAGS_FRAG = 6;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;
const MIN_HEADER_LEN = 20;

/** Flags+offset word: Don't Fragment. */
const FLAG_DF = 0x4000;
/** Flags+offset word: More Fragments. */
const FLAG_MF = 0x2000;
/** Flags+offset word: the fragment offset, in 8-octet units. */
const OFFSET_MASK = 0x1fff;

/** RFC 791 §3.1: every internet module must be able to forward a 68-octet datagram without fragmenting. */
export const IPV4_MIN_MTU = 68;
/** Reassembly timeout for IPv4, as Linux's ipfrag_time (30 s). */
export const IPV4_REASSEMBLY_TIMEOUT_MS = 30_000;
/** Offset of the IP header in fragments made by {@link fragmentIpv4}: room for Ethernet at HEADROOM. */
export const FRAGMENT_IP_OFFSET = HEADROOM + 14;

/**
 * Why {@link fragmentIpv4} made no (or not all) fragments:
 * - `dontFragment`: DF is set, the caller sends ICMP Fragmentation Needed (RFC 792, RFC 1191);
 * - `mtuTooSmall`: the MTU is below 68 (RFC 791 §3.1);
 * - `noBuffer`: the pool ran out (fragments already emitted stay emitted);
 * - `malformed`: the header is not a valid IPv4 header or its length exceeds the buffer.
 */
export type FragmentError = "dontFragment" | "mtuTooSmall" | "noBuffer" | "malformed";

// Scratch space for the options copied into non-first fragments (≤ 40 bytes).
const copiedOptions = new Uint8Array(40);

/**
 * Collect into `copiedOptions` the options of the header at `data[ipOff]`
 * with the copied flag set (RFC 791 §3.1: "copied flag ... 1 = copied"),
 * padded with End of Option List to a 4-byte boundary. Parsing stops at
 * End of Option List or at a malformed option, as Linux's
 * ip_options_fragment() does.
 *
 * @returns bytes written (a multiple of 4).
 */
function collectCopiedOptions(data: Uint8Array, ipOff: number, ihl: number): number {
  let i = ipOff + MIN_HEADER_LEN;
  const end = ipOff + ihl;
  let n = 0;
  while (i < end) {
    const type = data[i]!;
    if (type === 0) break; // End of Option List
    if (type === 1) { // No Operation: copied flag 0
      i++;
      continue;
    }
    if (i + 1 >= end) break;
    const len = data[i + 1]!;
    if (len < 2 || i + len > end) break;
    if (type & 0x80) {
      copiedOptions.set(data.subarray(i, i + len), n);
      n += len;
    }
    i += len;
  }
  const padded = (n + 3) & ~3;
  copiedOptions.fill(0, n, padded);
  return padded;
}

/**
 * Split the IPv4 datagram at `src.data[ipOff…]` (its length from its Total
 * Length field) into fragments of at most `mtu` bytes of IP, following
 * RFC 791 §3.2: each fragment's data is a multiple of 8 bytes except the
 * last; the first fragment keeps every option, the others only the options
 * with the copied flag; MF is set on all but the last, and on the last too
 * when the original was itself a non-last fragment; offsets are relative to
 * the original's offset; each header checksum is recomputed.
 *
 * Each fragment is built in a buffer of `pool` with its IP header at
 * {@link FRAGMENT_IP_OFFSET} (so the caller can prepend Ethernet at
 * HEADROOM) and passed to `emit(frag, ipOff)` in order; `emit` must not keep
 * the buffer, which goes back to the pool when `emit` returns. A datagram
 * that already fits is passed to `emit` as is (`src` itself, not copied).
 * An L4 checksum left partial for offload must be completed before calling.
 *
 * @returns the number of fragments emitted, or a {@link FragmentError}.
 *
 * @example
 * ```ts
 * import { fragmentIpv4 } from "./fragmentation.ts";
 * import { BufferPool, PacketBuffer } from "../wire/packet_buffer.ts";
 * const src = new PacketBuffer();
 * src.data[0] = 0x45;
 * src.view.setUint16(2, 3000);
 * const n = fragmentIpv4(src, 0, 1500, new BufferPool(4), () => {});
 * console.assert(n === 3);
 * ```
 */
export function fragmentIpv4(
  src: PacketBuffer,
  ipOff: number,
  mtu: number,
  pool: BufferPool,
  emit: (frag: PacketBuffer, ipOff: number) => void,
): number | FragmentError {
  const data = src.data;
  const view = src.view;
  if (ipOff < 0 || ipOff + MIN_HEADER_LEN > data.length) return "malformed";
  const verIhl = data[ipOff + VER_IHL]!;
  const ihl = (verIhl & 0x0f) * 4;
  const totalLen = view.getUint16(ipOff + TOTAL_LEN);
  if (
    verIhl >> 4 !== 4 || ihl < MIN_HEADER_LEN || totalLen < ihl || ipOff + totalLen > data.length
  ) {
    return "malformed";
  }
  if (mtu < IPV4_MIN_MTU) return "mtuTooSmall";
  if (totalLen <= mtu) {
    emit(src, ipOff);
    return 1;
  }
  const flagsFrag = view.getUint16(ipOff + FLAGS_FRAG);
  if (flagsFrag & FLAG_DF) return "dontFragment";

  const origOffset = (flagsFrag & OFFSET_MASK) * 8;
  const origMore = (flagsFrag & FLAG_MF) !== 0;
  const keptFlags = flagsFrag & ~(FLAG_MF | OFFSET_MASK); // the reserved bit, as received
  const laterIhl = MIN_HEADER_LEN + collectCopiedOptions(data, ipOff, ihl);
  const dataLen = totalLen - ihl;
  const out = FRAGMENT_IP_OFFSET;

  let pos = 0;
  let count = 0;
  while (pos < dataLen) {
    const first = pos === 0;
    // The header length differs between the first and later fragments, so
    // the data per fragment is computed for each one.
    const hlen = first ? ihl : laterIhl;
    const room = (mtu - hlen) & ~7;
    const len = Math.min(room, dataLen - pos);
    const last = pos + len === dataLen;
    const b = pool.get();
    if (b === null) return "noBuffer";
    const d = b.data;
    if (first) {
      d.set(data.subarray(ipOff, ipOff + ihl), out);
    } else {
      d.set(data.subarray(ipOff, ipOff + MIN_HEADER_LEN), out);
      d.set(copiedOptions.subarray(0, laterIhl - MIN_HEADER_LEN), out + MIN_HEADER_LEN);
      d[out + VER_IHL] = 0x40 | (laterIhl >> 2);
    }
    const v = b.view;
    v.setUint16(out + TOTAL_LEN, hlen + len);
    v.setUint16(
      out + FLAGS_FRAG,
      keptFlags | (!last || origMore ? FLAG_MF : 0) | ((origOffset + pos) >> 3),
    );
    v.setUint16(out + CHECKSUM, 0);
    v.setUint16(out + CHECKSUM, internetChecksum(d, out, hlen));
    d.set(data.subarray(ipOff + ihl + pos, ipOff + ihl + pos + len), out + hlen);
    b.start = out;
    b.end = out + hlen + len;
    b.networkOffset = out;
    b.transportOffset = first ? out + hlen : 0;
    try {
      emit(b, out);
    } finally {
      pool.put(b);
    }
    count++;
    pos += len;
  }
  return count;
}

/**
 * The reassembly key of the IPv4 fragment at `buf.data[ipOff…]`: source,
 * destination, protocol and identification (RFC 791 §3.2).
 */
export function ipv4ReassemblyKey(buf: PacketBuffer, ipOff: number): string {
  const v = buf.view;
  return `${v.getUint32(ipOff + SRC)}/${v.getUint32(ipOff + DST)}/${v.getUint8(ipOff + PROTOCOL)}/${
    v.getUint16(ipOff + IDENT)
  }`;
}

/**
 * Feed the IPv4 fragment at `buf.data[ipOff…]` (already validated: version,
 * IHL, total length, checksum) to `r` under {@link ipv4ReassemblyKey}. On
 * completion the reassembled header is fixed: Total Length set, MF and the
 * offset cleared, checksum recomputed — so the buffer holds an ordinary
 * unfragmented datagram at `result.headerOffset`.
 */
export function addIpv4Fragment(
  r: Reassembler<string>,
  buf: PacketBuffer,
  ipOff: number,
): ReassemblyResult {
  const v = buf.view;
  const ihl = (v.getUint8(ipOff + VER_IHL) & 0x0f) * 4;
  const totalLen = v.getUint16(ipOff + TOTAL_LEN);
  const flagsFrag = v.getUint16(ipOff + FLAGS_FRAG);
  const res = r.add(
    ipv4ReassemblyKey(buf, ipOff),
    (flagsFrag & OFFSET_MASK) * 8,
    (flagsFrag & FLAG_MF) !== 0,
    buf,
    ipOff + ihl,
    totalLen - ihl,
    ipOff,
    ihl,
  );
  if (res.kind === "complete") {
    const o = res.headerOffset;
    const b = res.buffer;
    const bv = b.view;
    bv.setUint16(o + TOTAL_LEN, res.headerLen + res.payloadLen);
    bv.setUint16(o + FLAGS_FRAG, bv.getUint16(o + FLAGS_FRAG) & ~(FLAG_MF | OFFSET_MASK));
    bv.setUint16(o + CHECKSUM, 0);
    bv.setUint16(o + CHECKSUM, internetChecksum(b.data, o, res.headerLen));
  }
  return res;
}
