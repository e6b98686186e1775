/**
 * ARP for IPv4 over Ethernet (RFC 826).
 *
 * ```
 *  0        2        4    5    6        8                14         18                24         28
 * +--------+--------+----+----+--------+-----------------+----------+-----------------+----------+
 * | htype  | ptype  |hlen|plen|   op   | sender MAC      | sender IP| target MAC      | target IP|
 * +--------+--------+----+----+--------+-----------------+----------+-----------------+----------+
 * ```
 *
 * @module
 */
import type { PacketBuffer } from "./packet_buffer.ts";

/** Bytes of an Ethernet/IPv4 ARP packet. */
export const ARP_PACKET_LEN = 28;
/** Hardware type Ethernet (RFC 826; IANA ARP parameters). */
export const ARP_HTYPE_ETHERNET = 1;
/** Protocol type IPv4 (the EtherType). */
export const ARP_PTYPE_IPV4 = 0x0800;

/** ARP operation codes (RFC 826). */
export const ArpOp = {
  REQUEST: 1,
  REPLY: 2,
} as const;

// RFC 826, "Packet format"
const F = {
  HTYPE: 0,
  PTYPE: 2,
  HLEN: 4,
  PLEN: 5,
  OP: 6,
  SHA: 8,
  SPA: 14,
  THA: 18,
  TPA: 24,
} as const;

/**
 * A view of an ARP packet at an offset of a {@link PacketBuffer}.
 *
 * @example
 * ```ts
 * import { ArpPacket, ArpRepr, ArpOp } from "./arp.ts";
 * import { PacketBuffer } from "./packet_buffer.ts";
 * const p = new PacketBuffer(64);
 * p.setFrame(0, 28);
 * ArpRepr.emit({ op: ArpOp.REQUEST, senderMac: new Uint8Array(6), senderIp: 0xc0000201,
 *   targetMac: new Uint8Array(6), targetIp: 0xc0000202 }, p, 0);
 * const arp = new ArpPacket().reset(p, 0);
 * console.assert(arp.check() && arp.tpa() === 0xc0000202);
 * ```
 */
export class ArpPacket {
  /** The buffer the view reads. */
  buf!: PacketBuffer;
  /** Offset of the first byte in `buf.data`. */
  off = 0;

  /** Point the view at the packet starting at `off`. */
  reset(buf: PacketBuffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /**
   * True for a whole Ethernet/IPv4 ARP packet: 28 bytes before `buf.end`,
   * htype 1, ptype 0x0800, hlen 6, plen 4.
   */
  check(): boolean {
    if (this.buf.end - this.off < ARP_PACKET_LEN) return false;
    return this.htype() === ARP_HTYPE_ETHERNET && this.ptype() === ARP_PTYPE_IPV4 &&
      this.hlen() === 6 && this.plen() === 4;
  }

  /** Hardware type. */
  htype(): number {
    return this.buf.view.getUint16(this.off + F.HTYPE);
  }

  setHtype(v: number): void {
    this.buf.view.setUint16(this.off + F.HTYPE, v);
  }

  /** Protocol type. */
  ptype(): number {
    return this.buf.view.getUint16(this.off + F.PTYPE);
  }

  setPtype(v: number): void {
    this.buf.view.setUint16(this.off + F.PTYPE, v);
  }

  /** Hardware address length. */
  hlen(): number {
    return this.buf.data[this.off + F.HLEN]!;
  }

  setHlen(v: number): void {
    this.buf.data[this.off + F.HLEN] = v;
  }

  /** Protocol address length. */
  plen(): number {
    return this.buf.data[this.off + F.PLEN]!;
  }

  setPlen(v: number): void {
    this.buf.data[this.off + F.PLEN] = v;
  }

  /** Operation ({@link ArpOp}). */
  op(): number {
    return this.buf.view.getUint16(this.off + F.OP);
  }

  setOp(v: number): void {
    this.buf.view.setUint16(this.off + F.OP, v);
  }

  /** Offset in `buf.data` of the sender hardware address. */
  shaOffset(): number {
    return this.off + F.SHA;
  }

  /** Offset in `buf.data` of the target hardware address. */
  thaOffset(): number {
    return this.off + F.THA;
  }

  /** A copy of the sender hardware address. */
  sha(): Uint8Array {
    return this.buf.data.slice(this.off + F.SHA, this.off + F.SHA + 6);
  }

  setSha(mac: Uint8Array): void {
    this.buf.data.set(mac.subarray(0, 6), this.off + F.SHA);
  }

  /** A copy of the target hardware address. */
  tha(): Uint8Array {
    return this.buf.data.slice(this.off + F.THA, this.off + F.THA + 6);
  }

  setTha(mac: Uint8Array): void {
    this.buf.data.set(mac.subarray(0, 6), this.off + F.THA);
  }

  /** Sender protocol (IPv4) address. */
  spa(): number {
    return this.buf.view.getUint32(this.off + F.SPA);
  }

  setSpa(v: number): void {
    this.buf.view.setUint32(this.off + F.SPA, v >>> 0);
  }

  /** Target protocol (IPv4) address. */
  tpa(): number {
    return this.buf.view.getUint32(this.off + F.TPA);
  }

  setTpa(v: number): void {
    this.buf.view.setUint32(this.off + F.TPA, v >>> 0);
  }
}

/** An Ethernet/IPv4 ARP packet in parsed form. */
export interface ArpRepr {
  /** Operation ({@link ArpOp}). */
  op: number;
  /** Sender hardware address (6 bytes). */
  senderMac: Uint8Array;
  /** Sender IPv4 address. */
  senderIp: number;
  /** Target hardware address (6 bytes; zero in a request). */
  targetMac: Uint8Array;
  /** Target IPv4 address. */
  targetIp: number;
}

/** Parse, size and emit {@link ArpRepr}s. */
export const ArpRepr: {
  parse(arp: ArpPacket): ArpRepr | null;
  bufferLen(repr: ArpRepr): number;
  emit(repr: ArpRepr, buf: PacketBuffer, off: number): void;
} = {
  /** Parse a view; null when `check()` fails or the op is neither request nor reply. */
  parse(arp: ArpPacket): ArpRepr | null {
    if (!arp.check()) return null;
    const op = arp.op();
    if (op !== ArpOp.REQUEST && op !== ArpOp.REPLY) return null;
    return {
      op,
      senderMac: arp.sha(),
      senderIp: arp.spa(),
      targetMac: arp.tha(),
      targetIp: arp.tpa(),
    };
  },

  /** Bytes `emit()` writes: always 28. */
  bufferLen(_repr: ArpRepr): number {
    return ARP_PACKET_LEN;
  },

  /** Write the 28-byte packet at `off`. */
  emit(repr: ArpRepr, buf: PacketBuffer, off: number): void {
    const arp = new ArpPacket().reset(buf, off);
    arp.setHtype(ARP_HTYPE_ETHERNET);
    arp.setPtype(ARP_PTYPE_IPV4);
    arp.setHlen(6);
    arp.setPlen(4);
    arp.setOp(repr.op);
    arp.setSha(repr.senderMac);
    arp.setSpa(repr.senderIp);
    arp.setTha(repr.targetMac);
    arp.setTpa(repr.targetIp);
  },
};
