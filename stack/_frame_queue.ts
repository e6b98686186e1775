/**
 * Frames stored by value while they wait (for ARP or NDP): the bytes of
 * each frame and a record of its offsets and virtio-net metadata, back to
 * back in one ring buffer that grows to what it holds. A queued frame costs
 * its own bytes and a 40-byte record, not a {@link PacketBuffer} with its
 * backing store (rounded up to a size class), its views and its fields.
 *
 * @module
 */
import type { PacketBuffer } from "./wire/packet_buffer.ts";

/**
 * Bytes of a frame's record in the ring: ten int32s, the fields
 * {@link PacketBuffer.copyTo} carries (length, start, network and
 * transport offsets, virtio-net flags, GSO type, header length and size,
 * checksum start and offset).
 */
export const FRAME_RECORD_LEN = 40;

/**
 * A FIFO of frames in one `Uint8Array` ring: `push` copies a frame in,
 * `shiftInto` copies the oldest out into a buffer at its original offsets,
 * `shift` drops it. The ring grows by a quarter (or to what the frame
 * needs) up to `maxBytes`, so it holds its frames and little more; it is
 * never shrunk (the owner drops or reuses a whole queue once it is empty).
 *
 * @example
 * ```ts
 * import { FrameQueue } from "./_frame_queue.ts";
 * import { HEADROOM, PacketBuffer } from "./wire/packet_buffer.ts";
 * const q = new FrameQueue(4096);
 * const p = new PacketBuffer(2048).setFrame(HEADROOM, 60);
 * p.data[HEADROOM] = 7;
 * q.push(p);
 * const out = new PacketBuffer(2048);
 * console.assert(q.shiftInto(out) === 60 && out.data[HEADROOM] === 7 && q.length === 0);
 * ```
 */
export class FrameQueue {
  #ring: Uint8Array;
  /** Offset of the oldest record. */
  #head = 0;
  /** Ring bytes in use (records and frames). */
  #used = 0;
  /** Frames queued. */
  #count = 0;
  /** Frame bytes queued (records not included). */
  #frameBytes = 0;
  /** Where the next record field is written or read. */
  #at = 0;

  /**
   * @param maxBytes the most ring bytes growth goes to unless a frame needs more.
   * @param initial ring bytes to start with.
   */
  constructor(readonly maxBytes: number, initial = 0) {
    this.#ring = new Uint8Array(initial);
  }

  /** Frames queued. */
  get length(): number {
    return this.#count;
  }

  /** Bytes of the frames queued (what the owner accounts; the records are not counted). */
  get frameBytes(): number {
    return this.#frameBytes;
  }

  /** Bytes of the ring (its backing store). */
  get capacity(): number {
    return this.#ring.length;
  }

  /** Bytes of the oldest frame; the queue must not be empty. */
  frontLength(): number {
    this.#at = this.#head;
    return this.#get();
  }

  /**
   * The size a buffer needs for {@link shiftInto} of the oldest frame: its
   * end offset. The queue must not be empty.
   */
  frontEnd(): number {
    this.#at = this.#head;
    const len = this.#get();
    return this.#get() + len;
  }

  /** Copy `src`'s frame, offsets and virtio-net metadata to the tail. */
  push(src: PacketBuffer): void {
    const len = src.end - src.start;
    const need = FRAME_RECORD_LEN + len;
    if (this.#ring.length - this.#used < need) this.#grow(need);
    const cap = this.#ring.length;
    let tail = this.#head + this.#used;
    if (tail >= cap) tail -= cap;
    this.#at = tail;
    this.#put(len);
    this.#put(src.start);
    this.#put(src.networkOffset);
    this.#put(src.transportOffset);
    this.#put(src.vnetFlags);
    this.#put(src.gsoType);
    this.#put(src.gsoHdrLen);
    this.#put(src.gsoSize);
    this.#put(src.csumStart);
    this.#put(src.csumOffset);
    const at = this.#at;
    const first = Math.min(len, cap - at);
    this.#ring.set(src.data.subarray(src.start, src.start + first), at);
    if (first < len) this.#ring.set(src.data.subarray(src.start + first, src.end), 0);
    this.#used += need;
    this.#frameBytes += len;
    this.#count++;
  }

  /**
   * Move the oldest frame into `dst` at the offsets it had: `dst` gets the
   * frame (`setFrame`, so its other metadata is cleared), its network and
   * transport offsets and its virtio-net metadata. `dst.data` must be at
   * least {@link frontEnd} bytes. The queue must not be empty.
   *
   * @returns the frame's length.
   */
  shiftInto(dst: PacketBuffer): number {
    this.#at = this.#head;
    const len = this.#get();
    const start = this.#get();
    dst.setFrame(start, len);
    dst.networkOffset = this.#get();
    dst.transportOffset = this.#get();
    dst.vnetFlags = this.#get();
    dst.gsoType = this.#get();
    dst.gsoHdrLen = this.#get();
    dst.gsoSize = this.#get();
    dst.csumStart = this.#get();
    dst.csumOffset = this.#get();
    const at = this.#at;
    const first = Math.min(len, this.#ring.length - at);
    dst.data.set(this.#ring.subarray(at, at + first), start);
    if (first < len) dst.data.set(this.#ring.subarray(0, len - first), start + first);
    this.#drop(len);
    return len;
  }

  /**
   * Drop the oldest frame. The queue must not be empty.
   *
   * @returns its length.
   */
  shift(): number {
    const len = this.frontLength();
    this.#drop(len);
    return len;
  }

  /** Drop every frame (the ring is kept). */
  clear(): void {
    this.#head = 0;
    this.#used = 0;
    this.#count = 0;
    this.#frameBytes = 0;
  }

  #drop(len: number): void {
    const n = FRAME_RECORD_LEN + len;
    this.#used -= n;
    this.#frameBytes -= len;
    this.#count--;
    if (this.#count === 0) {
      this.#head = 0;
      return;
    }
    this.#head += n;
    if (this.#head >= this.#ring.length) this.#head -= this.#ring.length;
  }

  /** A larger ring with the queue's bytes moved to its front. */
  #grow(need: number): void {
    const old = this.#ring;
    const cap = old.length;
    const used = this.#used;
    const ring = new Uint8Array(
      Math.max(used + need, Math.min(cap + (cap >> 2), this.maxBytes)),
    );
    const first = Math.min(used, cap - this.#head);
    ring.set(old.subarray(this.#head, this.#head + first), 0);
    if (first < used) ring.set(old.subarray(0, used - first), first);
    this.#ring = ring;
    this.#head = 0;
  }

  /** Write `v` as a big-endian int32 at the cursor, wrapping at the ring's end. */
  #put(v: number): void {
    const r = this.#ring;
    const cap = r.length;
    let p = this.#at;
    for (let s = 24; s >= 0; s -= 8) {
      r[p] = v >> s;
      if (++p === cap) p = 0;
    }
    this.#at = p;
  }

  /** Read a big-endian int32 at the cursor, wrapping at the ring's end. */
  #get(): number {
    const r = this.#ring;
    const cap = r.length;
    let p = this.#at;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      v = (v << 8) | r[p]!;
      if (++p === cap) p = 0;
    }
    this.#at = p;
    return v;
  }
}
