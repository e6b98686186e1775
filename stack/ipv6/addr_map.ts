/**
 * Maps keyed by IPv6 addresses that are looked up straight from packet
 * bytes, without making a string or a slice per packet: a 32-bit hash of
 * the 16 bytes picks a bucket, and the bytes are compared in place.
 *
 * @module
 */
import { formatIpv6 } from "../wire/ip_address.ts";

/** A 32-bit hash of the 16 bytes at `a[off]` (FNV-1a over four words). */
export function ipv6Hash(a: Uint8Array, off = 0): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i += 4) {
    const w = (a[off + i]! << 24) | (a[off + i + 1]! << 16) | (a[off + i + 2]! << 8) |
      a[off + i + 3]!;
    h = Math.imul(h ^ w, 0x01000193);
  }
  return h >>> 0;
}

/** The big-endian 32-bit word at `a[o]` (signed, as Int32Array holds it). */
function word(a: Uint8Array, o: number): number {
  return (a[o]! << 24) | (a[o + 1]! << 16) | (a[o + 2]! << 8) | a[o + 3]!;
}

/**
 * The home slot's hash of an address given as its four words: each word
 * multiplied by its own odd constant, then murmur3's finalizer, so that
 * addresses of one /64 (which differ in the last words only) spread over
 * the whole table.
 */
function mix(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0, 0x27d4eb2f) ^ Math.imul(w1, 0x165667b1) ^ Math.imul(w2, 0x85ebca77) ^
    Math.imul(w3, 0xc2b2ae3d);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * An open-addressing table of IPv6 addresses (linear probing, at most half
 * full, backward-shift deletion): the addresses as four Int32 words per
 * slot, so a lookup reads the 16 packet bytes once, hashes the words and
 * compares words in place — no Map, no bucket array, no string.
 */
class AddressTable<S> {
  #mask: number;
  #words: Int32Array;
  #slots: (S | undefined)[];
  #size = 0;

  constructor(capacity = 16) {
    let cap = 16;
    while (cap < capacity) cap *= 2;
    this.#mask = cap - 1;
    this.#words = new Int32Array(4 * cap);
    this.#slots = new Array<S | undefined>(cap).fill(undefined);
  }

  get size(): number {
    return this.#size;
  }

  /** The slot's value for the address at `a[off]`, or undefined. */
  get(a: Uint8Array, off: number): S | undefined {
    const i = this.#index(a, off);
    return i < 0 ? undefined : this.#slots[i];
  }

  /** Put `value` under the address at `a[off]` (replacing what was there). */
  set(a: Uint8Array, off: number, value: S): void {
    const i = this.#index(a, off);
    if (i >= 0) {
      this.#slots[i] = value;
      return;
    }
    if (2 * (this.#size + 1) > this.#slots.length) this.#grow();
    this.#insert(word(a, off), word(a, off + 4), word(a, off + 8), word(a, off + 12), value);
    this.#size++;
  }

  /** Remove the address at `a[off]`; its value, or undefined when absent. */
  delete(a: Uint8Array, off: number): S | undefined {
    let i = this.#index(a, off);
    if (i < 0) return undefined;
    const slots = this.#slots, words = this.#words, mask = this.#mask;
    const gone = slots[i];
    // Backward shift: pull up every later entry of the run that may sit at i.
    for (let j = (i + 1) & mask; slots[j] !== undefined; j = (j + 1) & mask) {
      const k = j << 2;
      const home = mix(words[k]!, words[k + 1]!, words[k + 2]!, words[k + 3]!) & mask;
      // j may move to i when its home is not in (i, j] (cyclically).
      if (((j - home) & mask) >= ((j - i) & mask)) {
        slots[i] = slots[j];
        words.copyWithin(i << 2, k, k + 4);
        i = j;
      }
    }
    slots[i] = undefined;
    this.#size--;
    return gone;
  }

  clear(): void {
    this.#slots.fill(undefined);
    this.#size = 0;
  }

  *values(): IterableIterator<S> {
    for (const s of this.#slots) if (s !== undefined) yield s;
  }

  #index(a: Uint8Array, off: number): number {
    const w0 = word(a, off), w1 = word(a, off + 4), w2 = word(a, off + 8), w3 = word(a, off + 12);
    const slots = this.#slots, words = this.#words, mask = this.#mask;
    for (let i = mix(w0, w1, w2, w3) & mask;; i = (i + 1) & mask) {
      if (slots[i] === undefined) return -1;
      const k = i << 2;
      if (words[k] === w0 && words[k + 1] === w1 && words[k + 2] === w2 && words[k + 3] === w3) {
        return i;
      }
    }
  }

  #insert(w0: number, w1: number, w2: number, w3: number, value: S): void {
    const slots = this.#slots, words = this.#words, mask = this.#mask;
    let i = mix(w0, w1, w2, w3) & mask;
    while (slots[i] !== undefined) i = (i + 1) & mask;
    slots[i] = value;
    const k = i << 2;
    words[k] = w0;
    words[k + 1] = w1;
    words[k + 2] = w2;
    words[k + 3] = w3;
  }

  #grow(): void {
    const oldSlots = this.#slots, oldWords = this.#words;
    const cap = 2 * oldSlots.length;
    this.#mask = cap - 1;
    this.#words = new Int32Array(4 * cap);
    this.#slots = new Array<S | undefined>(cap).fill(undefined);
    for (let i = 0; i < oldSlots.length; i++) {
      const s = oldSlots[i];
      if (s === undefined) continue;
      const k = i << 2;
      this.#insert(oldWords[k]!, oldWords[k + 1]!, oldWords[k + 2]!, oldWords[k + 3]!, s);
    }
  }
}

interface Slot<V> {
  key: Uint8Array;
  /** The address in canonical text, made once, for keyed caches and logs. */
  text: string;
  value: V;
}

/**
 * A map from IPv6 address to `V`.
 *
 * @example
 * ```ts
 * import { Ipv6AddressMap } from "./addr_map.ts";
 * import { parseIpv6 } from "../wire/ip_address.ts";
 * const m = new Ipv6AddressMap<number>();
 * m.set(parseIpv6("2001:db8::1"), 7);
 * console.assert(m.get(parseIpv6("2001:db8::1")) === 7);
 * ```
 */
export class Ipv6AddressMap<V> {
  readonly #t = new AddressTable<Slot<V>>();

  /** Entries held. */
  get size(): number {
    return this.#t.size;
  }

  /** The value for the address at `a[off]`, or undefined. */
  get(a: Uint8Array, off = 0): V | undefined {
    return this.#t.get(a, off)?.value;
  }

  /** True when the address at `a[off]` is present. */
  has(a: Uint8Array, off = 0): boolean {
    return this.#t.get(a, off) !== undefined;
  }

  /** The canonical text of a present address (made once when it was set), or undefined. */
  keyText(a: Uint8Array, off = 0): string | undefined {
    return this.#t.get(a, off)?.text;
  }

  /** Set the value of the address at `a[off]` (the bytes are copied). */
  set(a: Uint8Array, value: V, off = 0): void {
    const s = this.#t.get(a, off);
    if (s !== undefined) {
      s.value = value;
      return;
    }
    const key = a.slice(off, off + 16);
    this.#t.set(key, 0, { key, text: formatIpv6(key), value });
  }

  /** Remove the address at `a[off]`; true when it was present. */
  delete(a: Uint8Array, off = 0): boolean {
    return this.#t.delete(a, off) !== undefined;
  }

  /** Forget everything. */
  clear(): void {
    this.#t.clear();
  }

  /** Every entry, as (address, text, value). */
  *entries(): IterableIterator<[Uint8Array, string, V]> {
    for (const s of this.#t.values()) yield [s.key, s.text, s.value];
  }
}

/**
 * Interned canonical strings for addresses seen in packets, so a cache
 * keyed by address text gets the same string object without making one
 * per packet. Bounded: when full it starts over. The addresses sit as
 * words in one table sized for `limit`, so a new address costs its text,
 * not an ArrayBuffer of its own (a flood of random sources interns one
 * address per packet).
 */
export class Ipv6KeyInterner {
  readonly #t: AddressTable<string>;

  constructor(readonly limit = 4096) {
    this.#t = new AddressTable<string>(2 * limit);
  }

  /** The canonical text of the address at `a[off]`, interned. */
  key(a: Uint8Array, off = 0): string {
    const known = this.#t.get(a, off);
    if (known !== undefined) return known;
    if (this.#t.size >= this.limit) this.#t.clear();
    const text = formatIpv6(a, off);
    this.#t.set(a, off, text);
    return text;
  }

  /**
   * The canonical text of the address at `a[off]`: the interned string
   * when there is one, else a new one that is not kept. For addresses a
   * flood makes up (random sources and targets that are looked up once and
   * dropped): interning each would keep it past young-generation GC, and
   * the flood's garbage would grow the old generation (RSS) by the
   * packet.
   */
  peek(a: Uint8Array, off = 0): string {
    return this.#t.get(a, off) ?? formatIpv6(a, off);
  }
}
