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

/**
 * The bucket of the address at `a[off]`: its hash cut to 30 bits, so that
 * the Map key is a small integer (V8 boxes numbers of 2^30 and above, and a
 * boxed key makes every lookup slower).
 */
function bucketOf(a: Uint8Array, off: number): number {
  return ipv6Hash(a, off) & 0x3fffffff;
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
  #buckets = new Map<number, Slot<V>[]>();
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  #find(a: Uint8Array, off: number): Slot<V> | undefined {
    const b = this.#buckets.get(bucketOf(a, off));
    if (b === undefined) return undefined;
    for (let i = 0; i < b.length; i++) {
      const k = b[i]!.key;
      let eq = true;
      for (let j = 0; j < 16; j++) {
        if (k[j] !== a[off + j]) {
          eq = false;
          break;
        }
      }
      if (eq) return b[i];
    }
    return undefined;
  }

  /** The value for the address at `a[off]`, or undefined. */
  get(a: Uint8Array, off = 0): V | undefined {
    return this.#find(a, off)?.value;
  }

  /** True when the address at `a[off]` is present. */
  has(a: Uint8Array, off = 0): boolean {
    return this.#find(a, off) !== undefined;
  }

  /** The canonical text of a present address (made once when it was set), or undefined. */
  keyText(a: Uint8Array, off = 0): string | undefined {
    return this.#find(a, off)?.text;
  }

  /** Set the value of the address at `a[off]` (the bytes are copied). */
  set(a: Uint8Array, value: V, off = 0): void {
    const s = this.#find(a, off);
    if (s !== undefined) {
      s.value = value;
      return;
    }
    const key = a.slice(off, off + 16);
    const h = bucketOf(key, 0);
    let b = this.#buckets.get(h);
    if (b === undefined) this.#buckets.set(h, b = []);
    b.push({ key, text: formatIpv6(key), value });
    this.#size++;
  }

  /** Remove the address at `a[off]`; true when it was present. */
  delete(a: Uint8Array, off = 0): boolean {
    const h = bucketOf(a, off);
    const b = this.#buckets.get(h);
    const s = this.#find(a, off);
    if (b === undefined || s === undefined) return false;
    b.splice(b.indexOf(s), 1);
    if (b.length === 0) this.#buckets.delete(h);
    this.#size--;
    return true;
  }

  /** Forget everything. */
  clear(): void {
    this.#buckets.clear();
    this.#size = 0;
  }

  /** Every entry, as (address, text, value). */
  *entries(): IterableIterator<[Uint8Array, string, V]> {
    for (const b of this.#buckets.values()) for (const s of b) yield [s.key, s.text, s.value];
  }
}

/**
 * Interned canonical strings for addresses seen in packets, so a cache
 * keyed by address text gets the same string object without making one
 * per packet. Bounded: when full it starts over. The addresses sit in one
 * arena of `16 × limit` bytes, so a new address costs its text and a slot,
 * not an ArrayBuffer of its own (a flood of random sources interns one
 * address per packet).
 */
export class Ipv6KeyInterner {
  /** Bucket → slots; a slot is the arena index of the address, then its text. */
  #buckets = new Map<number, (number | string)[]>();
  readonly #arena: Uint8Array;
  #used = 0;

  constructor(readonly limit = 4096) {
    this.#arena = new Uint8Array(16 * limit);
  }

  /** The canonical text of the address at `a[off]`, interned. */
  key(a: Uint8Array, off = 0): string {
    const h = bucketOf(a, off);
    let b = this.#buckets.get(h);
    const known = this.#find(b, a, off);
    if (known !== undefined) return known;
    if (this.#used >= this.limit) {
      this.#buckets.clear();
      this.#used = 0;
      b = undefined;
    }
    const at = 16 * this.#used++;
    this.#arena.set(a.subarray(off, off + 16), at);
    const text = formatIpv6(a, off);
    if (b === undefined) this.#buckets.set(h, [at, text]);
    else b.push(at, text);
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
    return this.#find(this.#buckets.get(bucketOf(a, off)), a, off) ?? formatIpv6(a, off);
  }

  #find(b: (number | string)[] | undefined, a: Uint8Array, off: number): string | undefined {
    if (b === undefined) return undefined;
    const arena = this.#arena;
    for (let i = 0; i < b.length; i += 2) {
      const at = b[i] as number;
      let eq = true;
      for (let j = 0; j < 16; j++) {
        if (arena[at + j] !== a[off + j]) {
          eq = false;
          break;
        }
      }
      if (eq) return b[i + 1] as string;
    }
    return undefined;
  }
}
