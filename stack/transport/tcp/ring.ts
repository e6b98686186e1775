/**
 * A byte ring for one direction of a TCP connection: the send queue (bytes
 * from SND.UNA on) or the receive queue (bytes from the reader's position
 * on, out-of-order bytes written ahead of the in-order end). Its store is
 * made on first use, grows by doubling up to `max`, and is dropped when the
 * ring empties, so an idle connection holds no data buffer.
 *
 * @module
 */

const MIN_STORE = 4096;

/**
 * Stores of emptied rings, by size, kept for the next ring that grows (a
 * receive ring empties after every read, a send ring whenever everything
 * was acknowledged): a fresh zero-filled store each time was the bulk
 * path's largest cost. Bounded in bytes for the process, so idle
 * connections still hold nothing and the spares stay small.
 */
const SPARE_MAX_BYTES = 16 << 20;
const spares = new Map<number, Uint8Array[]>();
let spareBytes = 0;

function takeStore(size: number): Uint8Array {
  const b = spares.get(size)?.pop();
  if (b !== undefined) {
    spareBytes -= size;
    return b;
  }
  return new Uint8Array(size);
}

function giveStore(b: Uint8Array): void {
  if (spareBytes + b.length > SPARE_MAX_BYTES) return;
  let list = spares.get(b.length);
  if (list === undefined) spares.set(b.length, list = []);
  list.push(b);
  spareBytes += b.length;
}

/** A growable ring of bytes with a hard `max`. */
export class ByteRing {
  #buf: Uint8Array | null = null;
  #head = 0;
  /** Bytes in the ring (in order from the head). */
  length = 0;

  /** @param max the most bytes the ring holds */
  constructor(public max: number) {}

  /** Bytes of store allocated now (0 when idle). */
  get capacity(): number {
    return this.#buf?.length ?? 0;
  }

  /** Room for `n` bytes from the head; false when `n` is above `max`. */
  #reserve(n: number): boolean {
    if (n > this.max) return false;
    const cap = this.#buf?.length ?? 0;
    if (n <= cap) return true;
    let c = Math.max(MIN_STORE, cap);
    while (c < n) c *= 2;
    c = Math.min(c, Math.max(n, this.max));
    const nb = takeStore(c);
    if (this.#buf !== null && cap > 0) {
      // Keep everything the ring may hold ahead of `length` (out-of-order bytes).
      const first = Math.min(cap - this.#head, cap);
      nb.set(this.#buf.subarray(this.#head, this.#head + first), 0);
      if (first < cap) nb.set(this.#buf.subarray(0, cap - first), first);
    }
    if (this.#buf !== null) giveStore(this.#buf);
    this.#buf = nb;
    this.#head = 0;
    return true;
  }

  /** Append `src` at the in-order end; returns the bytes taken (fewer when `max` is reached). */
  push(src: Uint8Array): number {
    const n = Math.min(src.length, this.max - this.length);
    if (n <= 0) return 0;
    this.writeAt(this.length, src, 0, n);
    this.length += n;
    return n;
  }

  /**
   * Write `n` bytes of `src` from `srcOff` at position `pos` from the head
   * (at or past `length` for out-of-order bytes) without moving `length`.
   *
   * @returns false when `pos + n` is beyond `max`
   */
  writeAt(pos: number, src: Uint8Array, srcOff: number, n: number): boolean {
    if (!this.#reserve(pos + n)) return false;
    const b = this.#buf!;
    const cap = b.length;
    let at = (this.#head + pos) % cap;
    let done = 0;
    while (done < n) {
      const run = Math.min(n - done, cap - at);
      b.set(src.subarray(srcOff + done, srcOff + done + run), at);
      done += run;
      at = 0;
    }
    return true;
  }

  /** Copy `n` bytes at position `pos` from the head into `dst` at `dstOff`. */
  copyOut(pos: number, dst: Uint8Array, dstOff: number, n: number): void {
    const b = this.#buf;
    if (b === null || n <= 0) return;
    const cap = b.length;
    let at = (this.#head + pos) % cap;
    let done = 0;
    while (done < n) {
      const run = Math.min(n - done, cap - at);
      dst.set(b.subarray(at, at + run), dstOff + done);
      done += run;
      at = 0;
    }
  }

  /**
   * Drop `n` bytes from the head. When nothing is left and `keepAhead` is
   * false the store is released.
   */
  consume(n: number, keepAhead = false): void {
    if (n <= 0) return;
    this.length -= n;
    const b = this.#buf;
    if (b === null) return;
    this.#head = (this.#head + n) % b.length;
    if (this.length === 0 && !keepAhead) {
      giveStore(b);
      this.#buf = null;
      this.#head = 0;
    }
  }

  /** Read up to `dst.length` in-order bytes into `dst` and consume them. */
  read(dst: Uint8Array, keepAhead = false): number {
    const n = Math.min(dst.length, this.length);
    this.copyOut(0, dst, 0, n);
    this.consume(n, keepAhead);
    return n;
  }

  /** Forget everything and release the store. */
  clear(): void {
    if (this.#buf !== null) giveStore(this.#buf);
    this.#buf = null;
    this.#head = 0;
    this.length = 0;
  }
}
