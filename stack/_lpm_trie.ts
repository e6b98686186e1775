/**
 * A leaf-pushed multibit trie over typed arrays, the longest-prefix-match
 * engine behind `route_table.ts`.
 *
 * The key is split into a root stride of `rootBits` bits followed by child
 * strides of `childBits` bits each (IPv4 uses 16-8-8, a DIR-16-8-8 table;
 * IPv6 uses 16 then 28 × 4). Every slot holds one Int32:
 *
 * - `0`: no prefix covers this slot,
 * - `> 0`: the id of the longest prefix covering it (leaf pushing: a prefix
 *   is written into every slot of its range that no longer prefix owns),
 * - `< 0`: `-chunk`, a child table of `1 << childBits` slots in `pool`.
 *
 * A lookup is therefore one read per level, stopping at the first slot that
 * is not a child pointer. The engine knows each id's prefix length (`lens`)
 * so that inserts overwrite only shorter owners and deletes hand the slots
 * back to the next-shorter covering prefix, which the caller names.
 *
 * Each child chunk counts the prefixes longer than its parent level that run
 * through it. When that count falls to zero every slot in the chunk holds the
 * same pushed leaf, so the chunk folds back into its parent slot and goes on
 * a free list.
 *
 * @module
 */

/** The trie engine; ids are allocated by the caller and must be > 0. */
export class LpmTrie {
  /** Bits of the root stride. */
  readonly rootBits: number;
  /** Bits of every child stride. */
  readonly childBits: number;
  /** Root table, `1 << rootBits` slots. */
  readonly root: Int32Array;
  /** Child chunks, chunk `c` at `c << childBits`; chunk 0 is never used. */
  pool: Int32Array;
  /** Prefix length of each id. */
  lens: Uint8Array;
  #refs: Int32Array;
  #free: number[] = [];
  #nextChunk = 1;
  #chunkSize: number;

  /**
   * @param rootBits bits of the root stride
   * @param childBits bits of each child stride
   * @param initialChunks child chunks to reserve up front (grows by doubling)
   */
  constructor(rootBits: number, childBits: number, initialChunks = 64) {
    this.rootBits = rootBits;
    this.childBits = childBits;
    this.#chunkSize = 1 << childBits;
    this.root = new Int32Array(1 << rootBits);
    this.pool = new Int32Array(initialChunks * this.#chunkSize);
    this.#refs = new Int32Array(initialChunks);
    this.lens = new Uint8Array(1024);
  }

  /** Child chunks in use. */
  get chunks(): number {
    return this.#nextChunk - 1 - this.#free.length;
  }

  /** Bytes held by the typed arrays. */
  get bytes(): number {
    return this.root.byteLength + this.pool.byteLength + this.#refs.byteLength +
      this.lens.byteLength;
  }

  /** Record the prefix length of `id` before inserting it. */
  setLen(id: number, len: number): void {
    if (id >= this.lens.length) {
      let n = this.lens.length * 2;
      while (n <= id) n *= 2;
      const l = new Uint8Array(n);
      l.set(this.lens);
      this.lens = l;
    }
    this.lens[id] = len;
  }

  /**
   * Insert prefix `id` of length `len`. `idx[0]` is the prefix's root index,
   * `idx[k]` its index in the level-k chunk (bits past `len` are zero).
   */
  insert(idx: ArrayLike<number>, len: number, id: number): void {
    this.#walk(idx, len, id, 0, true);
  }

  /**
   * Delete prefix `id` of length `len`; the slots it owned go to
   * `replacement`, the longest prefix shorter than `len` that covers it (0
   * for none).
   */
  remove(idx: ArrayLike<number>, len: number, id: number, replacement: number): void {
    this.#walk(idx, len, id, replacement, false);
  }

  #walk(idx: ArrayLike<number>, len: number, id: number, repl: number, ins: boolean): void {
    const rb = this.rootBits, cb = this.childBits;
    if (len <= rb) {
      this.#paint(this.root, idx[0]!, 1 << (rb - len), len, id, repl, ins);
      return;
    }
    const levels = Math.ceil((len - rb) / cb);
    // Path of (array, slot) down to the chunk where the prefix ends.
    const chunks: number[] = [];
    let arr: Int32Array = this.root;
    let slot = idx[0]!;
    for (let l = 1; l <= levels; l++) {
      let v = arr[slot]!;
      if (v >= 0) {
        if (!ins) return; // Not present: nothing to remove.
        const c = this.#alloc(v);
        // #alloc may have grown (replaced) the pool.
        (l === 1 ? this.root : this.pool)[slot] = -c;
        v = -c;
      }
      const c = -v;
      chunks.push(c);
      if (ins) this.#refs[c]!++;
      arr = this.pool;
      slot = (c << cb) + idx[l]!;
    }
    const endBits = rb + levels * cb;
    this.#paint(this.pool, slot, 1 << (endBits - len), len, id, repl, ins);
    if (ins) return;
    // Fold chunks whose count fell to zero, deepest first.
    for (let l = levels; l >= 1; l--) {
      const c = chunks[l - 1]!;
      if (--this.#refs[c]! !== 0) continue;
      const leaf = this.pool[c << cb]!;
      const parentSlot = l === 1 ? idx[0]! : (chunks[l - 2]! << cb) + idx[l - 1]!;
      (l === 1 ? this.root : this.pool)[parentSlot] = leaf;
      this.#free.push(c);
    }
  }

  #paint(
    arr: Int32Array,
    start: number,
    count: number,
    len: number,
    id: number,
    repl: number,
    ins: boolean,
  ): void {
    const lens = this.lens;
    const end = start + count;
    for (let i = start; i < end; i++) {
      const v = arr[i]!;
      if (v < 0) {
        const base = -v << this.childBits;
        this.#paint(this.pool, base, this.#chunkSize, len, id, repl, ins);
      } else if (ins) {
        if (v === 0 || lens[v]! < len) arr[i] = id;
      } else if (v === id) {
        arr[i] = repl;
      }
    }
  }

  #alloc(fill: number): number {
    let c = this.#free.pop();
    if (c === undefined) {
      c = this.#nextChunk++;
      if (c >= this.#refs.length) {
        const n = this.#refs.length * 2;
        const p = new Int32Array(n << this.childBits);
        p.set(this.pool);
        this.pool = p;
        const r = new Int32Array(n);
        r.set(this.#refs);
        this.#refs = r;
      }
    }
    this.#refs[c] = 0;
    const base = c << this.childBits;
    this.pool.fill(fill, base, base + this.#chunkSize);
    return c;
  }
}
