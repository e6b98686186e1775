/**
 * The forwarder's answer cache: entries keyed by the question as DNS
 * compares it (the name's wire labels with ASCII letters folded, RFC 4343;
 * type; class; the DO bit) through a 30-bit hash of those bytes (a small
 * integer key of a `Map`, entries with the same hash chained), so a lookup
 * builds no string; least recently used first in an intrusive list,
 * so a hit moves its entry without touching the table. It keeps the order
 * a `Map` would (insertion, a hit moves to the end, storing under a key
 * that is there replaces the value in place).
 *
 * @module
 */

/** What a cached answer is found by. */
export interface AnswerKey {
  /** The name's wire labels, letters lower case, the root label last (exactly its length). */
  readonly name: Uint8Array;
  readonly type: number;
  readonly klass: number;
  readonly dnssecOk: boolean;
  /** {@link answerKeyHash} of the above. */
  readonly hash: number;
}

/** An answer as the cache keeps it. */
export interface CachedAnswer {
  /** The answer as received (ID, question case and TTLs rewritten on each use). */
  bytes: Uint8Array;
  /** Clock ms when stored, and when it expires. */
  stored: number;
  expires: number;
  /** Where its records' TTLs are, and what they were (so a hit needs no parse). */
  ttlOffsets: number[];
  ttls: number[];
  /** Where its question's name starts. */
  questionOffset: number;
  /** Where its OPT record starts and ends, or null without one. */
  opt: [number, number] | null;
  /**
   * The forwarder's generation of local names (hosts, local domains,
   * lease names) under which this question was last found not to be
   * local: while it is current, a hit need not look again.
   */
  localGen: number;
}

/** One entry: its key, its answer, its places in the LRU list and the hash chain. */
export interface CacheEntry extends CachedAnswer {
  readonly key: AnswerKey;
  prev: CacheEntry | null;
  next: CacheEntry | null;
  /** The next entry with the same hash. */
  chain: CacheEntry | null;
}

/**
 * FNV-1a over the first `len` bytes of `name`, then type, class and the
 * DO bit; 30 bits (a small integer for V8's Map).
 */
export function answerKeyHash(
  name: Uint8Array,
  len: number,
  type: number,
  klass: number,
  dnssecOk: boolean,
): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ name[i]!, 0x01000193);
  h = Math.imul(h ^ type, 0x01000193);
  h = Math.imul(h ^ klass, 0x01000193);
  h = Math.imul(h ^ (dnssecOk ? 1 : 0), 0x01000193);
  return (h ^ (h >>> 15)) & 0x3fffffff;
}

/** A key for `name[0, len)` (copied). */
export function answerKey(
  name: Uint8Array,
  len: number,
  type: number,
  klass: number,
  dnssecOk: boolean,
): AnswerKey {
  return {
    name: name.slice(0, len),
    type,
    klass,
    dnssecOk,
    hash: answerKeyHash(name, len, type, klass, dnssecOk),
  };
}

/** The answer cache (see the module doc). */
export class AnswerCache {
  readonly #table = new Map<number, CacheEntry>();
  /** Least recently used first. */
  #head: CacheEntry | null = null;
  #tail: CacheEntry | null = null;
  #size = 0;

  /** Entries now. */
  get size(): number {
    return this.#size;
  }

  /** The entry for the question whose key bytes are `name[0, len)`, or null. */
  find(
    name: Uint8Array,
    len: number,
    type: number,
    klass: number,
    dnssecOk: boolean,
    hash: number,
  ): CacheEntry | null {
    for (let e = this.#table.get(hash) ?? null; e !== null; e = e.chain) {
      const k = e.key;
      if (k.type !== type || k.klass !== klass || k.dnssecOk !== dnssecOk) continue;
      if (k.name.length !== len) continue;
      let same = true;
      for (let i = 0; i < len && same; i++) same = k.name[i] === name[i];
      if (same) return e;
    }
    return null;
  }

  /** The entry for `key`, or null. */
  get(key: AnswerKey): CacheEntry | null {
    return this.find(key.name, key.name.length, key.type, key.klass, key.dnssecOk, key.hash);
  }

  /** Make `e` the most recently used. */
  touch(e: CacheEntry): void {
    if (this.#tail === e) return;
    this.#unlink(e);
    this.#append(e);
  }

  /** Store `a` under `key`: in place of the answer there (keeping its place), else as the most recent. */
  set(key: AnswerKey, a: CachedAnswer): void {
    const old = this.get(key);
    if (old !== null) {
      old.bytes = a.bytes;
      old.stored = a.stored;
      old.expires = a.expires;
      old.ttlOffsets = a.ttlOffsets;
      old.ttls = a.ttls;
      old.questionOffset = a.questionOffset;
      old.opt = a.opt;
      old.localGen = a.localGen;
      return;
    }
    const e: CacheEntry = { ...a, key, prev: null, next: null, chain: null };
    e.chain = this.#table.get(key.hash) ?? null;
    this.#table.set(key.hash, e);
    this.#append(e);
    this.#size++;
  }

  /** Take `e` out. */
  delete(e: CacheEntry): void {
    let p = this.#table.get(e.key.hash) ?? null;
    if (p === e) {
      if (e.chain === null) this.#table.delete(e.key.hash);
      else this.#table.set(e.key.hash, e.chain);
    } else {
      while (p !== null && p.chain !== e) p = p.chain;
      if (p === null) return; // not here
      p.chain = e.chain;
    }
    e.chain = null;
    this.#unlink(e);
    this.#size--;
  }

  /** The least recently used entry, or null when empty. */
  oldest(): CacheEntry | null {
    return this.#head;
  }

  #append(e: CacheEntry): void {
    e.prev = this.#tail;
    e.next = null;
    if (this.#tail !== null) this.#tail.next = e;
    else this.#head = e;
    this.#tail = e;
  }

  #unlink(e: CacheEntry): void {
    if (e.prev !== null) e.prev.next = e.next;
    else this.#head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else this.#tail = e.prev;
    e.prev = e.next = null;
  }
}
