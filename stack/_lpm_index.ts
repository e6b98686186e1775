/**
 * Exact-match index of prefixes for `route_table.ts`: (masked prefix,
 * length) → id, an open-addressing hash table over typed arrays (linear
 * probing, backward-shift deletion), so that a full table costs a few bytes
 * per prefix and no JS object or Map entry.
 *
 * A key is `words` 32-bit words (1 for IPv4, 4 for IPv6) plus the length.
 *
 * @module
 */

/** The index; ids are allocated by the caller and must be > 0. */
export class PrefixIndex {
  /** 32-bit words per key. */
  readonly words: number;
  /** How many stored prefixes have each length. */
  readonly lenCount: Int32Array;
  #keys: Int32Array;
  #lens: Uint8Array;
  #hashes: Int32Array;
  #slots: Int32Array;
  #count = 0;

  /**
   * @param words 32-bit words per key
   * @param maxLen the longest prefix length
   */
  constructor(words: number, maxLen: number) {
    this.words = words;
    this.lenCount = new Int32Array(maxLen + 1);
    this.#keys = new Int32Array(1024 * words);
    this.#lens = new Uint8Array(1024);
    this.#hashes = new Int32Array(1024);
    this.#slots = new Int32Array(2048);
  }

  /** Number of stored prefixes. */
  get count(): number {
    return this.#count;
  }

  /** Bytes held by the typed arrays. */
  get bytes(): number {
    return this.#keys.byteLength + this.#lens.byteLength + this.#hashes.byteLength +
      this.#slots.byteLength;
  }

  /** The id stored for `key`/`len`, or 0. `key` must already be masked. */
  find(key: ArrayLike<number>, len: number): number {
    const mask = this.#slots.length - 1;
    const w = this.words;
    let i = this.#hash(key, len) & mask;
    for (;;) {
      const id = this.#slots[i]!;
      if (id === 0) return 0;
      if (this.#lens[id] === len) {
        let k = 0;
        const base = id * w;
        while (k < w && this.#keys[base + k] === (key[k]! | 0)) k++;
        if (k === w) return id;
      }
      i = (i + 1) & mask;
    }
  }

  /** Store `id` under `key`/`len` (not already present; `key` masked). */
  insert(id: number, key: ArrayLike<number>, len: number): void {
    const w = this.words;
    if (id >= this.#lens.length) {
      let n = this.#lens.length * 2;
      while (n <= id) n *= 2;
      const keys = new Int32Array(n * w);
      keys.set(this.#keys);
      this.#keys = keys;
      const lens = new Uint8Array(n);
      lens.set(this.#lens);
      this.#lens = lens;
      const hashes = new Int32Array(n);
      hashes.set(this.#hashes);
      this.#hashes = hashes;
    }
    for (let k = 0; k < w; k++) this.#keys[id * w + k] = key[k]! | 0;
    this.#lens[id] = len;
    this.#hashes[id] = this.#hash(key, len);
    if (2 * (this.#count + 1) > this.#slots.length) this.#rehash(this.#slots.length * 2);
    this.#place(id);
    this.#count++;
    this.lenCount[len]!++;
  }

  /** Remove `id` (which must be present). */
  delete(id: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = this.#hashes[id]! & mask;
    while (slots[i] !== id) {
      if (slots[i] === 0) return;
      i = (i + 1) & mask;
    }
    // Backward-shift deletion: pull later members of the probe run back
    // into the hole when their home slot allows it.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const other = slots[j]!;
      if (other === 0) break;
      const home = this.#hashes[other]! & mask;
      const between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (!between) {
        slots[i] = other;
        i = j;
      }
    }
    slots[i] = 0;
    this.#count--;
    this.lenCount[this.#lens[id]!]!--;
  }

  #place(id: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = this.#hashes[id]! & mask;
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = id;
  }

  #rehash(size: number): void {
    const old = this.#slots;
    this.#slots = new Int32Array(size);
    for (let i = 0; i < old.length; i++) if (old[i] !== 0) this.#place(old[i]!);
  }

  #hash(key: ArrayLike<number>, len: number): number {
    let h = Math.imul(len + 1, 0x9e3779b1);
    for (let k = 0; k < this.words; k++) {
      h = Math.imul(h ^ (key[k]! | 0), 0x85ebca6b);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }
}
