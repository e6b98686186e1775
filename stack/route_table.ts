/**
 * The routing tables: longest-prefix match for IPv4 and IPv6 over a
 * leaf-pushed multibit trie in typed arrays (IPv4: DIR-16-8-8, at most three
 * reads; IPv6: a 16-bit root then 4-bit strides), built to hold a full
 * Internet table and to change while packets are being forwarded.
 *
 * Each prefix holds any number of routes. A lookup takes the longest
 * matching prefix, then among its routes the lowest metric (RFC 1812
 * §5.2.4.3: longest match first, then the best metric), then, among the
 * equal-cost unicast routes, one chosen by the flow hash (ECMP, RFC 2992
 * hash-threshold style: one flow always takes one path).
 *
 * Routes passed to `add` are copied; the objects that `lookup` and `routes`
 * return are the table's own and must be treated as read-only.
 *
 * @module
 */

import { LpmTrie } from "./_lpm_trie.ts";
import { PrefixIndex } from "./_lpm_index.ts";

/**
 * What a matching route does with a packet: `unicast` forwards it,
 * `local` delivers it to the stack, `blackhole` drops it silently,
 * `unreachable` and `prohibit` drop it with an ICMP error (as in Linux's
 * route types).
 */
export type RouteType = "unicast" | "blackhole" | "unreachable" | "prohibit" | "local";

/** Where a route came from: an interface address, the config, a Router Advertisement, a DHCP lease, or a local address. */
export type RouteSource = "connected" | "static" | "ra" | "dhcp" | "local";

/** An IPv4 route. */
export interface Ipv4Route {
  /** The network, an unsigned 32-bit number (host bits are cleared on add). */
  prefix: number;
  /** 0 to 32. */
  prefixLen: number;
  /** What a match does. */
  type: RouteType;
  /** The outgoing NIC, 0 when none (blackhole, unreachable, prohibit). */
  nicId: number;
  /** The next hop, or null when the destination is on-link. */
  gateway: number | null;
  /** Lower wins among routes of one prefix. */
  metric: number;
  /** Who added the route. */
  source: RouteSource;
}

/** An IPv6 route. */
export interface Ipv6Route {
  /** The network, 16 bytes (host bits are cleared on add). */
  prefix: Uint8Array;
  /** 0 to 128. */
  prefixLen: number;
  /** What a match does. */
  type: RouteType;
  /** The outgoing NIC, 0 when none. */
  nicId: number;
  /** The next hop (usually link-local), or null when on-link. */
  gateway: Uint8Array | null;
  /** Lower wins among routes of one prefix. */
  metric: number;
  /** Who added the route. */
  source: RouteSource;
  /**
   * Router preference (RFC 4191 §2.1: high 1, medium 0, low -1); among
   * routes of equal metric the higher preference wins. Default 0.
   */
  preference?: number;
  /** When the route lapses (Clock ms); see {@link Ipv6RouteTable.removeExpired}. */
  expiresAt?: number;
}

// ---------------------------------------------------------------- shared

interface AnyRoute {
  metric: number;
  type: RouteType;
  preference?: number;
}

function byPreference(a: AnyRoute, b: AnyRoute): number {
  return a.metric - b.metric || (b.preference ?? 0) - (a.preference ?? 0);
}

/**
 * How many leading routes of a sorted list form the chosen group: the first
 * route alone unless it is unicast, else the run of unicast routes that tie
 * with it on metric and preference.
 */
function groupSize(list: readonly AnyRoute[]): number {
  const first = list[0]!;
  if (first.type !== "unicast") return 1;
  let n = 1;
  while (n < list.length) {
    const r = list[n]!;
    if (r.type !== "unicast" || byPreference(first, r) !== 0) break;
    n++;
  }
  return n;
}

function checkLen(len: number, max: number): void {
  if (!Number.isInteger(len) || len < 0 || len > max) {
    throw new RangeError(`prefix length must be an integer from 0 to ${max}, found ${len}`);
  }
}

/** Per-prefix bookkeeping common to both families, indexed by prefix id. */
class Entries<R extends AnyRoute> {
  /** Every route of each prefix, best first; a lone route is stored bare. */
  all: (R | R[] | undefined)[] = [undefined];
  /** What a lookup returns from: the one best route, or the ECMP group. */
  best: (R | R[] | undefined)[] = [undefined];
  #free: number[] = [];

  alloc(r: R): number {
    let id = this.#free.pop();
    if (id === undefined) {
      id = this.all.length;
      this.all.push(r);
      this.best.push(r);
    } else {
      this.all[id] = r;
      this.best[id] = r;
    }
    return id;
  }

  release(id: number): void {
    this.all[id] = undefined;
    this.best[id] = undefined;
    this.#free.push(id);
  }

  /** The routes of `id` as a list the caller may change and hand to `set`. */
  list(id: number): R[] {
    const a = this.all[id];
    return a === undefined ? [] : Array.isArray(a) ? a : [a];
  }

  /** Store a non-empty list for `id`, sorted, with its lookup group. */
  set(id: number, list: R[]): void {
    list.sort(byPreference);
    if (list.length === 1) {
      this.all[id] = this.best[id] = list[0]!;
      return;
    }
    this.all[id] = list;
    const n = groupSize(list);
    this.best[id] = n === 1 ? list[0]! : list.slice(0, n);
  }

  /** Every route of every prefix. */
  flat(): R[] {
    const out: R[] = [];
    for (const a of this.all) {
      if (a === undefined) continue;
      if (Array.isArray(a)) out.push(...a);
      else out.push(a);
    }
    return out;
  }
}

// ---------------------------------------------------------------- hashing

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** True when a table's `candidates` answer is a group of equal-cost routes (not one route). */
export function isRouteGroup<R>(c: R | readonly R[] | null): c is readonly R[] {
  return Array.isArray(c);
}

/**
 * A flow hash of an IPv4 5-tuple for ECMP (MurmurHash3 mixing rounds): the
 * same flow always gives the same number. No allocation.
 *
 * @param src source address
 * @param dst destination address
 * @param proto IP protocol number
 * @param sport source port (0 when the protocol has none)
 * @param dport destination port (0 when the protocol has none)
 * @param seed per-router seed, so that paths are not predictable from outside
 * @returns an unsigned 32-bit hash
 * @example
 * ```ts
 * import { flowHashV4 } from "./route_table.ts";
 * console.assert(flowHashV4(1, 2, 6, 3, 4) === flowHashV4(1, 2, 6, 3, 4));
 * ```
 */
export function flowHashV4(
  src: number,
  dst: number,
  proto: number,
  sport: number,
  dport: number,
  seed = 0,
): number {
  let h = mix(seed | 0, src | 0);
  h = mix(h, dst | 0);
  h = mix(h, ((sport & 0xffff) << 16) | (dport & 0xffff));
  h = mix(h, proto & 0xff);
  return finish(h ^ 16);
}

function word(b: Uint8Array, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

/**
 * A flow hash for IPv6: both addresses, read in place at their offsets,
 * the protocol, the ports and the flow label (RFC 6437 §2: a flow label
 * may be part of the ECMP hash). No allocation, no slicing.
 *
 * @param buf the packet bytes
 * @param srcOff offset of the source address
 * @param dstOff offset of the destination address
 * @param proto upper-layer protocol number
 * @param sport source port (0 when none)
 * @param dport destination port (0 when none)
 * @param flowLabel the 20-bit flow label
 * @param seed per-router seed
 * @returns an unsigned 32-bit hash
 * @example
 * ```ts
 * import { flowHashV6 } from "./route_table.ts";
 * const b = new Uint8Array(40);
 * console.assert(flowHashV6(b, 8, 24, 17, 1, 2) === flowHashV6(b, 8, 24, 17, 1, 2));
 * ```
 */
export function flowHashV6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  proto: number,
  sport: number,
  dport: number,
  flowLabel = 0,
  seed = 0,
): number {
  let h = seed | 0;
  for (let i = 0; i < 16; i += 4) h = mix(h, word(buf, srcOff + i));
  for (let i = 0; i < 16; i += 4) h = mix(h, word(buf, dstOff + i));
  h = mix(h, ((sport & 0xffff) << 16) | (dport & 0xffff));
  h = mix(h, ((proto & 0xff) << 20) | (flowLabel & 0xfffff));
  return finish(h ^ 40);
}

// ---------------------------------------------------------------- IPv4

function maskV4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/**
 * The IPv4 routing table.
 *
 * @example
 * ```ts
 * import { Ipv4RouteTable } from "./route_table.ts";
 * const t = new Ipv4RouteTable();
 * t.add({ prefix: 0, prefixLen: 0, type: "unicast", nicId: 1, gateway: 0xc6336401, metric: 0, source: "static" });
 * t.add({ prefix: 0xc0000200, prefixLen: 24, type: "unicast", nicId: 2, gateway: null, metric: 0, source: "connected" });
 * console.assert(t.lookup(0xc0000205)!.nicId === 2);
 * console.assert(t.lookup(0x08080808)!.nicId === 1);
 * ```
 */
export class Ipv4RouteTable {
  #trie = new LpmTrie(16, 8, 256);
  #index = new PrefixIndex(1, 32);
  #entries = new Entries<Ipv4Route>();
  #size = 0;
  #path = new Int32Array(3);
  #key = new Int32Array(1);

  /** Number of routes (not prefixes). */
  get size(): number {
    return this.#size;
  }

  /** Number of distinct prefixes. */
  get prefixCount(): number {
    return this.#index.count;
  }

  /** Bytes held by the trie and the prefix index (not the route objects). */
  get trieBytes(): number {
    return this.#trie.bytes + this.#index.bytes;
  }

  /** Child tables in use in the trie (0 when only short prefixes remain). */
  get trieChunks(): number {
    return this.#trie.chunks;
  }

  /**
   * Add a route. A route with the same prefix, length, metric, NIC and
   * gateway replaces the old one; one with the same prefix, length and
   * metric but another next hop joins its ECMP group.
   *
   * @throws RangeError when `prefixLen` is not 0 to 32 (a programming error)
   */
  add(r: Ipv4Route): void {
    checkLen(r.prefixLen, 32);
    const len = r.prefixLen;
    const prefix = (r.prefix & maskV4(len)) >>> 0;
    const route: Ipv4Route = {
      prefix,
      prefixLen: len,
      type: r.type,
      nicId: r.nicId,
      gateway: r.gateway === null ? null : r.gateway >>> 0,
      metric: r.metric,
      source: r.source,
    };
    const key = this.#key;
    key[0] = prefix;
    const id = this.#index.find(key, len);
    if (id === 0) {
      const nid = this.#entries.alloc(route);
      this.#index.insert(nid, key, len);
      this.#trie.setLen(nid, len);
      this.#trie.insert(this.#pathOf(prefix), len, nid);
      this.#size++;
      return;
    }
    const list = this.#entries.list(id);
    const i = list.findIndex((o) =>
      o.metric === route.metric && o.nicId === route.nicId && o.gateway === route.gateway
    );
    // A replaced route moves to the end, as if removed and added again:
    // among equal routes the order (and so the ECMP member a hash picks)
    // is the order of their last addition.
    if (i >= 0) list.splice(i, 1);
    else this.#size++;
    list.push(route);
    this.#entries.set(id, list);
  }

  /**
   * Remove the routes of exactly `prefix/prefixLen` that `match` accepts
   * (all of them without `match`). When a prefix loses its last route,
   * lookups fall back to the next-shorter covering prefix.
   *
   * @returns how many routes were removed
   */
  remove(prefix: number, prefixLen: number, match?: (r: Ipv4Route) => boolean): number {
    const id = this.#find(prefix, prefixLen);
    return id === 0 ? 0 : this.#filter(id, match);
  }

  /**
   * Remove every route `pred` accepts, e.g. all routes of one NIC.
   *
   * @returns how many routes were removed
   */
  removeWhere(pred: (r: Ipv4Route) => boolean): number {
    let n = 0;
    const all = this.#entries.all;
    for (let id = 1; id < all.length; id++) {
      if (all[id] !== undefined) n += this.#filter(id, pred);
    }
    return n;
  }

  /** The routes of exactly `prefix/prefixLen`, best first (empty when none). */
  find(prefix: number, prefixLen: number): readonly Ipv4Route[] {
    const id = this.#find(prefix, prefixLen);
    return id === 0 ? [] : this.#entries.list(id);
  }

  /**
   * The route for `dst`: longest prefix, then lowest metric, then among
   * equal-cost unicast routes the one `flowHash % n` picks. A few typed
   * array reads; no allocation.
   *
   * @param dst destination address (unsigned 32-bit)
   * @param flowHash e.g. from {@link flowHashV4}; 0 picks the first member
   * @returns the route, or null when nothing matches
   */
  lookup(dst: number, flowHash = 0): Ipv4Route | null {
    const c = this.candidates(dst);
    return isRouteGroup(c) ? c[(flowHash >>> 0) % c.length]! : c;
  }

  /**
   * What {@link lookup} picks from: the one best route for `dst`, or its
   * group of equal-cost routes. The forward path hashes the flow only for a
   * group (most packets have one route and pay no hash).
   */
  candidates(dst: number): Ipv4Route | readonly Ipv4Route[] | null {
    const trie = this.#trie;
    let v = trie.root[dst >>> 16]!;
    if (v < 0) {
      const pool = trie.pool;
      v = pool[(-v << 8) | ((dst >>> 8) & 255)]!;
      if (v < 0) v = pool[(-v << 8) | (dst & 255)]!;
    }
    return v === 0 ? null : this.#entries.best[v]!;
  }

  /** Every route, sorted by prefix, then prefix length, then metric (for `show routes`). */
  routes(): Ipv4Route[] {
    return this.#entries.flat().sort((a, b) =>
      a.prefix - b.prefix || a.prefixLen - b.prefixLen || a.metric - b.metric
    );
  }

  #find(prefix: number, prefixLen: number): number {
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) return 0;
    this.#key[0] = prefix & maskV4(prefixLen);
    return this.#index.find(this.#key, prefixLen);
  }

  #pathOf(prefix: number): Int32Array {
    const path = this.#path;
    path[0] = prefix >>> 16;
    path[1] = (prefix >>> 8) & 255;
    path[2] = prefix & 255;
    return path;
  }

  #filter(id: number, pred: ((r: Ipv4Route) => boolean) | undefined): number {
    const list = this.#entries.list(id);
    const keep = pred === undefined ? [] : list.filter((r) => !pred(r));
    const removed = list.length - keep.length;
    if (removed === 0) return 0;
    this.#size -= removed;
    if (keep.length > 0) {
      this.#entries.set(id, keep);
      return removed;
    }
    const first = list[0]!;
    const len = first.prefixLen, prefix = first.prefix;
    this.#index.delete(id);
    // The slots go back to the longest shorter prefix that covers this one.
    let repl = 0;
    const key = this.#key;
    for (let l = len - 1; l >= 0 && repl === 0; l--) {
      if (this.#index.lenCount[l] === 0) continue;
      key[0] = prefix & maskV4(l);
      repl = this.#index.find(key, l);
    }
    this.#trie.remove(this.#pathOf(prefix), len, id, repl);
    this.#entries.release(id);
    return removed;
  }
}

// ---------------------------------------------------------------- IPv6

function maskedV6(a: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, len - 8 * i));
    out[i] = a[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** Write the four big-endian words of `a`, masked to `len` bits, into `key`. */
function keyV6(key: Int32Array, a: Uint8Array, len: number): Int32Array {
  for (let k = 0; k < 4; k++) {
    const bits = Math.max(0, Math.min(32, len - 32 * k));
    const m = bits === 0 ? 0 : bits === 32 ? -1 : -1 << (32 - bits);
    const o = 4 * k;
    key[k] = ((a[o]! << 24) | (a[o + 1]! << 16) | (a[o + 2]! << 8) | a[o + 3]!) & m;
  }
  return key;
}

function sameV6(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compareV6(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The IPv6 routing table; the same contract as {@link Ipv4RouteTable}.
 *
 * @example
 * ```ts
 * import { Ipv6RouteTable } from "./route_table.ts";
 * import { parseIpv6 } from "./wire/ip_address.ts";
 * const t = new Ipv6RouteTable();
 * t.add({ prefix: parseIpv6("2001:db8::"), prefixLen: 32, type: "unicast", nicId: 1, gateway: null, metric: 256, source: "static" });
 * console.assert(t.lookup(parseIpv6("2001:db8::1"), 0)!.nicId === 1);
 * console.assert(t.lookup(parseIpv6("2001:db9::1"), 0) === null);
 * ```
 */
export class Ipv6RouteTable {
  #trie = new LpmTrie(16, 4, 1024);
  #index = new PrefixIndex(4, 128);
  #entries = new Entries<Ipv6Route>();
  #size = 0;
  #path = new Int32Array(29);
  #key = new Int32Array(4);

  /** Number of routes (not prefixes). */
  get size(): number {
    return this.#size;
  }

  /** Number of distinct prefixes. */
  get prefixCount(): number {
    return this.#index.count;
  }

  /** Bytes held by the trie and the prefix index (not the route objects). */
  get trieBytes(): number {
    return this.#trie.bytes + this.#index.bytes;
  }

  /** Child tables in use in the trie (0 when only short prefixes remain). */
  get trieChunks(): number {
    return this.#trie.chunks;
  }

  /**
   * Add a route; same replace / ECMP rules as {@link Ipv4RouteTable.add}
   * (the gateway is compared by value).
   *
   * @throws RangeError when `prefixLen` is not 0 to 128 or `prefix` is not 16 bytes
   */
  add(r: Ipv6Route): void {
    checkLen(r.prefixLen, 128);
    if (r.prefix.length < 16) throw new RangeError("an IPv6 prefix must be 16 bytes");
    if (r.gateway !== null && r.gateway.length < 16) {
      throw new RangeError("an IPv6 gateway must be 16 bytes");
    }
    const len = r.prefixLen;
    const prefix = maskedV6(r.prefix, len);
    const route: Ipv6Route = {
      prefix,
      prefixLen: len,
      type: r.type,
      nicId: r.nicId,
      gateway: r.gateway === null ? null : r.gateway.slice(0, 16),
      metric: r.metric,
      source: r.source,
    };
    if (r.preference !== undefined) route.preference = r.preference;
    if (r.expiresAt !== undefined) route.expiresAt = r.expiresAt;
    const key = keyV6(this.#key, prefix, len);
    const id = this.#index.find(key, len);
    if (id === 0) {
      const nid = this.#entries.alloc(route);
      this.#index.insert(nid, key, len);
      this.#trie.setLen(nid, len);
      this.#trie.insert(this.#pathOf(prefix), len, nid);
      this.#size++;
      return;
    }
    const list = this.#entries.list(id);
    const i = list.findIndex((o) =>
      o.metric === route.metric && o.nicId === route.nicId && sameV6(o.gateway, route.gateway)
    );
    // Replaced routes move to the end, as in Ipv4RouteTable.add.
    if (i >= 0) list.splice(i, 1);
    else this.#size++;
    list.push(route);
    this.#entries.set(id, list);
  }

  /**
   * Remove the routes of exactly `prefix/prefixLen` that `match` accepts
   * (all without `match`).
   *
   * @returns how many routes were removed
   */
  remove(prefix: Uint8Array, prefixLen: number, match?: (r: Ipv6Route) => boolean): number {
    const id = this.#find(prefix, prefixLen);
    return id === 0 ? 0 : this.#filter(id, match);
  }

  /**
   * Remove every route `pred` accepts.
   *
   * @returns how many routes were removed
   */
  removeWhere(pred: (r: Ipv6Route) => boolean): number {
    let n = 0;
    const all = this.#entries.all;
    for (let id = 1; id < all.length; id++) {
      if (all[id] !== undefined) n += this.#filter(id, pred);
    }
    return n;
  }

  /**
   * Remove every route whose `expiresAt` is at or before `now` (RA-learned
   * routes, RFC 4191 §3.1 Route Lifetime; RFC 4861 §6.3.4 Router Lifetime).
   *
   * @returns how many routes were removed
   */
  removeExpired(now: number): number {
    return this.removeWhere((r) => r.expiresAt !== undefined && r.expiresAt <= now);
  }

  /** The routes of exactly `prefix/prefixLen`, best first (empty when none). */
  find(prefix: Uint8Array, prefixLen: number): readonly Ipv6Route[] {
    const id = this.#find(prefix, prefixLen);
    return id === 0 ? [] : this.#entries.list(id);
  }

  /**
   * The route for the destination address at `dst[off]`: longest prefix,
   * then lowest metric and highest preference, then ECMP by `flowHash`.
   * Reads the address in place; no allocation.
   *
   * @param dst a buffer holding the address (e.g. the packet)
   * @param off offset of the 16 address bytes
   * @param flowHash e.g. from {@link flowHashV6}; 0 picks the first member
   * @returns the route, or null when nothing matches
   */
  lookup(dst: Uint8Array, off: number, flowHash = 0): Ipv6Route | null {
    const c = this.candidates(dst, off);
    return isRouteGroup(c) ? c[(flowHash >>> 0) % c.length]! : c;
  }

  /**
   * What {@link lookup} picks from: the one best route for the address at
   * `dst[off]`, or its group of equal-cost routes (see the IPv4 table's).
   */
  candidates(dst: Uint8Array, off: number): Ipv6Route | readonly Ipv6Route[] | null {
    const trie = this.#trie;
    let v = trie.root[((dst[off]! << 8) | dst[off + 1]!) & 0xffff]!;
    if (v < 0) {
      const pool = trie.pool;
      for (let k = off + 2;; k++) {
        const b = dst[k]! & 255;
        v = pool[(-v << 4) | (b >>> 4)]!;
        if (v >= 0) break;
        v = pool[(-v << 4) | (b & 15)]!;
        if (v >= 0) break;
      }
    }
    return v === 0 ? null : this.#entries.best[v]!;
  }

  /** Every route, sorted by prefix, then prefix length, then metric. */
  routes(): Ipv6Route[] {
    return this.#entries.flat().sort((a, b) =>
      compareV6(a.prefix, b.prefix) || a.prefixLen - b.prefixLen || a.metric - b.metric
    );
  }

  #find(prefix: Uint8Array, prefixLen: number): number {
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 128) return 0;
    if (prefix.length < 16) return 0;
    return this.#index.find(keyV6(this.#key, prefix, prefixLen), prefixLen);
  }

  #pathOf(prefix: Uint8Array): Int32Array {
    const path = this.#path;
    path[0] = (prefix[0]! << 8) | prefix[1]!;
    for (let j = 0; j < 28; j++) {
      const b = prefix[2 + (j >>> 1)]!;
      path[1 + j] = (j & 1) === 0 ? b >>> 4 : b & 15;
    }
    return path;
  }

  #filter(id: number, pred: ((r: Ipv6Route) => boolean) | undefined): number {
    const list = this.#entries.list(id);
    const keep = pred === undefined ? [] : list.filter((r) => !pred(r));
    const removed = list.length - keep.length;
    if (removed === 0) return 0;
    this.#size -= removed;
    if (keep.length > 0) {
      this.#entries.set(id, keep);
      return removed;
    }
    const first = list[0]!;
    const len = first.prefixLen, prefix = first.prefix;
    this.#index.delete(id);
    let repl = 0;
    for (let l = len - 1; l >= 0 && repl === 0; l--) {
      if (this.#index.lenCount[l] === 0) continue;
      repl = this.#index.find(keyV6(this.#key, prefix, l), l);
    }
    this.#trie.remove(this.#pathOf(prefix), len, id, repl);
    this.#entries.release(id);
    return removed;
  }
}
