/**
 * Ethernet II frames (IEEE 802.3 with the DIX type field) and the 802.1Q
 * tag's EtherTypes.
 *
 * ```
 *  0                   6                  12        14
 * +-------------------+-------------------+---------+------------
 * | destination MAC   | source MAC        | type    | payload …
 * +-------------------+-------------------+---------+------------
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";

/** Bytes of an untagged Ethernet header. */
export const ETHERNET_HEADER_LEN = 14;
/** Smallest frame on the wire without the FCS; shorter frames are padded. */
export const ETHERNET_MIN_FRAME_LEN = 60;

/** EtherType values tapir knows. */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPV6: 0x86dd,
  QINQ: 0x88a8,
} as const;

const F = { DST: 0, SRC: 6, TYPE: 12 } as const;

/**
 * A view of the Ethernet header at an offset of a {@link PacketBuffer}.
 * Re-point it with `reset()` for each frame.
 *
 * @example
 * ```ts
 * import { EthernetFrame } from "./ethernet.ts";
 * import { PacketBuffer, HEADROOM } from "./packet_buffer.ts";
 * const p = new PacketBuffer(256).setFrame(HEADROOM, 60);
 * const eth = new EthernetFrame().reset(p, p.start);
 * eth.setEtherType(0x0806);
 * console.assert(eth.etherType() === 0x0806);
 * ```
 */
export class EthernetFrame {
  buf!: PacketBuffer;
  off = 0;

  /** Point the view at the header starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** True when the frame holds at least a whole header. */
  check(): boolean {
    return this.buf.end - this.off >= ETHERNET_HEADER_LEN;
  }

  /** The EtherType (or the 802.1Q TPID of a tagged frame). */
  etherType(): number {
    return this.buf.view.getUint16(this.off + F.TYPE);
  }

  setEtherType(v: number): void {
    this.buf.view.setUint16(this.off + F.TYPE, v);
  }

  /** Offset of the destination address in `buf.data`. */
  dstOffset(): number {
    return this.off + F.DST;
  }

  /** Offset of the source address in `buf.data`. */
  srcOffset(): number {
    return this.off + F.SRC;
  }

  setDst(mac: Uint8Array): void {
    this.buf.data.set(mac, this.off + F.DST);
  }

  setSrc(mac: Uint8Array): void {
    this.buf.data.set(mac, this.off + F.SRC);
  }

  /** True when the destination has the group bit set (multicast or broadcast). */
  dstIsMulticast(): boolean {
    return (this.buf.data[this.off + F.DST]! & 1) === 1;
  }

  /** Offset of the first payload byte. */
  payloadOffset(): number {
    return this.off + ETHERNET_HEADER_LEN;
  }
}

/** Write a whole Ethernet header at `off`. */
export function writeEthernetHeader(
  buf: PacketBuffer,
  off: number,
  dst: Uint8Array,
  src: Uint8Array,
  etherType: number,
): void {
  buf.data.set(dst, off + F.DST);
  buf.data.set(src, off + F.SRC);
  buf.view.setUint16(off + F.TYPE, etherType);
}
