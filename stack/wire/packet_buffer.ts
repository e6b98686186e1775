/**
 * The one packet container of the datapath: a pooled `Uint8Array` with a
 * `DataView` made once, `start`/`end` offsets into it, headroom in front for
 * lower headers, and the virtio-net metadata a TAP opened with IFF_VNET_HDR
 * attaches to each frame (see `linux/virtio_net.h`).
 *
 * @module
 */

/** Bytes of the legacy `struct virtio_net_hdr` in front of each frame on a TAP with IFF_VNET_HDR. */
export const VNET_HDR_LEN = 10;
/** Headroom kept in front of a received frame; the virtio-net header sits just before `HEADROOM`. */
export const HEADROOM = 128;
/** Largest frame a buffer holds: a 64 KiB GSO super-frame plus link headers. */
export const MAX_FRAME_LEN = 65_536 + 64;
/** Bytes of one pooled buffer. */
export const BUFFER_SIZE = HEADROOM + MAX_FRAME_LEN;

/** virtio_net_hdr.flags: the L4 checksum must be completed (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
export const VNET_F_NEEDS_CSUM = 1;
/** virtio_net_hdr.flags: the checksum was already validated (VIRTIO_NET_HDR_F_DATA_VALID). */
export const VNET_F_DATA_VALID = 2;
/** virtio_net_hdr.gso_type values. */
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_UDP = 3;
export const GSO_TCPV6 = 4;
export const GSO_ECN = 0x80;

/** {@link PacketBuffer.fragment}: not a fragment. */
export const FRAG_NONE = 0;
/** {@link PacketBuffer.fragment}: the first fragment (offset 0, more fragments). */
export const FRAG_FIRST = 1;
/** {@link PacketBuffer.fragment}: a later fragment (offset above 0): no upper-layer header. */
export const FRAG_LATER = 2;
/** {@link PacketBuffer.fragment}: the More Fragments bit. */
export const FRAG_MORE = 4;

/**
 * A frame in a pooled buffer. The frame is `data[start, end)`. Layers
 * prepend headers by moving `start` back; nothing on the datapath copies.
 *
 * @example
 * ```ts
 * import { PacketBuffer, HEADROOM } from "./packet_buffer.ts";
 * const p = new PacketBuffer();
 * p.setFrame(HEADROOM, 60);
 * console.assert(p.length() === 60);
 * ```
 */
export class PacketBuffer {
  /** The whole backing store, headroom included. */
  readonly data: Uint8Array;
  /** A DataView over `data`, made once. */
  readonly view: DataView;
  /** Offset of the first byte of the frame (the Ethernet header). */
  start = HEADROOM;
  /** Offset one past the last byte of the frame. */
  end = HEADROOM;
  /** Offset of the network header, set by the stack while it handles the frame. */
  networkOffset = 0;
  /** Offset of the transport header, set by the stack while it handles the frame. */
  transportOffset = 0;

  // Per-packet metadata: what a layer parsed once rides on the packet
  // (Linux's skb fields, gVisor's PacketBuffer.NetworkPacketInfo / tuple), so
  // nothing re-walks a header chain or re-finds a packet's state. Cleared by
  // setFrame() when the buffer carries a new frame.

  /** Upper-layer protocol (IPv4 protocol / IPv6 last Next Header), or -1 when not parsed yet. */
  l4Protocol = -1;
  /** Offset of the upper-layer header (after every IPv6 extension header), or -1. */
  l4Offset = -1;
  /** Fragment bits as parsed: {@link FRAG_NONE}, or FRAG_FIRST / FRAG_LATER, ORed with FRAG_MORE. */
  fragment = 0;
  /** Opaque connection-tracking slot owned by the firewall (Linux's skb->_nfct), or null. */
  ct: unknown = null;
  /** The firewall's bits about {@link ct} (Linux's ctinfo: state, direction); 0 until it saw the packet. */
  ctInfo = 0;
  /** Packet mark (Linux's skb->mark); 0 unless a rule set it. */
  mark = 0;
  /**
   * Link-layer destination chosen by the sender (a DHCP server answering a
   * client that has no address yet): the output path writes it instead of
   * resolving the next hop with ARP/NDP. Null: resolve as usual.
   */
  linkDst: Uint8Array | null = null;

  /** virtio_net_hdr.flags (VNET_F_*). */
  vnetFlags = 0;
  /** virtio_net_hdr.gso_type (GSO_*), GSO_NONE for an ordinary frame. */
  gsoType = GSO_NONE;
  /** virtio_net_hdr.hdr_len: bytes of headers in front of the GSO payload. */
  gsoHdrLen = 0;
  /** virtio_net_hdr.gso_size: payload bytes per segment of a super-frame. */
  gsoSize = 0;
  /** virtio_net_hdr.csum_start, relative to `start`. */
  csumStart = 0;
  /** virtio_net_hdr.csum_offset, relative to `csumStart`. */
  csumOffset = 0;

  /**
   * @param size bytes of the backing store; defaults to {@link BUFFER_SIZE}.
   */
  constructor(size: number = BUFFER_SIZE) {
    this.data = new Uint8Array(size);
    this.view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  /** Bytes of the frame. */
  length(): number {
    return this.end - this.start;
  }

  /** Point the frame at `data[start, start + len)` and clear the metadata. */
  setFrame(start: number, len: number): this {
    this.start = start;
    this.end = start + len;
    this.networkOffset = 0;
    this.transportOffset = 0;
    this.clearMeta();
    this.clearOffload();
    return this;
  }

  /** Forget the per-packet metadata (protocol, offsets, fragment bits, conntrack slot, mark). */
  clearMeta(): void {
    this.l4Protocol = -1;
    this.l4Offset = -1;
    this.fragment = 0;
    this.ct = null;
    this.ctInfo = 0;
    this.mark = 0;
    this.linkDst = null;
  }

  /** Forget the virtio-net metadata: an ordinary, fully checksummed frame. */
  clearOffload(): void {
    this.vnetFlags = 0;
    this.gsoType = GSO_NONE;
    this.gsoHdrLen = 0;
    this.gsoSize = 0;
    this.csumStart = 0;
    this.csumOffset = 0;
  }

  /** True when the frame is a GSO super-frame the link must segment. */
  isGso(): boolean {
    return (this.gsoType & ~GSO_ECN) !== GSO_NONE;
  }

  /** Copy the frame and its metadata into `dst`, at the same offsets. */
  copyTo(dst: PacketBuffer): PacketBuffer {
    dst.data.set(this.data.subarray(this.start, this.end), this.start);
    dst.start = this.start;
    dst.end = this.end;
    dst.networkOffset = this.networkOffset;
    dst.transportOffset = this.transportOffset;
    dst.vnetFlags = this.vnetFlags;
    dst.gsoType = this.gsoType;
    dst.gsoHdrLen = this.gsoHdrLen;
    dst.gsoSize = this.gsoSize;
    dst.csumStart = this.csumStart;
    dst.csumOffset = this.csumOffset;
    return dst;
  }
}

/**
 * A free list of {@link PacketBuffer}s. Buffers are made on demand up to
 * `limit` and then reused; `get()` returns null when all are in use, which
 * the caller counts as a drop.
 *
 * @example
 * ```ts
 * import { BufferPool } from "./packet_buffer.ts";
 * const pool = new BufferPool(4);
 * const b = pool.get()!;
 * pool.put(b);
 * ```
 */
export class BufferPool {
  #free: PacketBuffer[] = [];
  #made = 0;
  readonly limit: number;
  readonly size: number;

  /**
   * @param limit the most buffers this pool makes.
   * @param size bytes per buffer.
   */
  constructor(limit = 1024, size: number = BUFFER_SIZE) {
    this.limit = limit;
    this.size = size;
  }

  /** A free buffer with an empty frame at HEADROOM, or null when the pool is exhausted. */
  get(): PacketBuffer | null {
    let b = this.#free.pop();
    if (b === undefined) {
      if (this.#made >= this.limit) return null;
      this.#made++;
      b = new PacketBuffer(this.size);
    }
    const used = this.#made - this.#free.length;
    if (used > this.#peak) this.#peak = used;
    b.setFrame(HEADROOM, 0);
    return b;
  }

  /** The most buffers in use at once since the last {@link trim}. */
  #peak = 0;

  /**
   * Give back free buffers beyond what the time since the last trim needed
   * at its peak (and beyond `floor`): the garbage collector takes them, so
   * a burst's memory does not stay for good. The stack trims now and then.
   *
   * @returns how many buffers were let go
   */
  trim(floor = 64): number {
    const keep = Math.max(floor, this.#peak);
    let n = 0;
    while (this.#made > keep && this.#free.length > 0) {
      this.#free.pop();
      this.#made--;
      n++;
    }
    this.#peak = this.#made - this.#free.length;
    return n;
  }

  /** Return a buffer taken with `get()`. */
  put(b: PacketBuffer): void {
    this.#free.push(b);
  }

  /** A copy of `src` in a buffer of this pool, or null when the pool is exhausted. */
  clone(src: PacketBuffer): PacketBuffer | null {
    const b = this.get();
    return b === null ? null : src.copyTo(b);
  }

  /** Buffers made so far. */
  made(): number {
    return this.#made;
  }

  /** Buffers currently handed out. */
  inUse(): number {
    return this.#made - this.#free.length;
  }
}
