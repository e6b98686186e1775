/**
 * IPv6 helpers of the firewall: small numeric ids for the addresses of
 * tracked connections (so the IPv4 connection table, keyed by numbers,
 * tracks IPv6 too), the ICMPv6 types conntrack knows, and the TCP reset
 * REJECT sends over IPv6.
 *
 * @module
 */
import { Ipv6AddressMap } from "../ipv6/addr_map.ts";
import type { Conn } from "./conntrack.ts";

interface AddressRef {
  id: number;
  refs: number;
  bytes: Uint8Array;
}

/**
 * Reference-counted ids for IPv6 addresses. {@link find} never allocates;
 * {@link acquire} interns an address for a new connection, {@link release}
 * forgets it with its last connection.
 *
 * @example
 * ```ts
 * import { Ipv6AddressIds } from "./ipv6_track.ts";
 * const ids = new Ipv6AddressIds();
 * const a = new Uint8Array(16);
 * a[15] = 1;
 * const id = ids.acquire(a, 0);
 * console.assert(ids.find(a, 0) === id);
 * ids.release(id);
 * console.assert(ids.find(a, 0) === 0 && ids.size === 0);
 * ```
 */
export class Ipv6AddressIds {
  readonly #map = new Ipv6AddressMap<AddressRef>();
  /** By id: an array, not a Map, since NAT reads an address by id per packet; ids are reused. */
  readonly #byId: (AddressRef | undefined)[] = [undefined];
  readonly #free: number[] = [];
  #size = 0;

  /** Addresses held. */
  get size(): number {
    return this.#size;
  }

  /** The id of the address at `a[off]`, or 0 when no connection uses it. */
  find(a: Uint8Array, off: number): number {
    return this.#map.get(a, off)?.id ?? 0;
  }

  /** The id of the address at `a[off]`, interned if new; one more reference. */
  acquire(a: Uint8Array, off: number): number {
    let r = this.#map.get(a, off);
    if (r === undefined) {
      const id = this.#free.pop() ?? this.#byId.length;
      r = { id, refs: 0, bytes: a.slice(off, off + 16) };
      this.#map.set(a, r, off);
      this.#byId[id] = r;
      this.#size++;
    }
    r.refs++;
    return r.id;
  }

  /** Drop one reference of `id`; the address is forgotten with its last (and its id freed). */
  release(id: number): void {
    const r = this.#byId[id];
    if (r === undefined) return;
    if (--r.refs > 0) return;
    this.#map.delete(r.bytes);
    this.#byId[id] = undefined;
    this.#free.push(id);
    this.#size--;
  }

  /** The address of `id`, if held. */
  address(id: number): Uint8Array | undefined {
    return this.#byId[id]?.bytes;
  }
}

const FRAG_SLOTS = 64;

/**
 * The connection of recent first fragments, so that later fragments (which
 * carry no ports) get the ctstate, connection and NAT of their first one,
 * as they would after Linux's nf_defrag_ipv4/nf_defrag_ipv6 reassembly. A
 * fixed ring keyed by the addresses, the Identification and (IPv4) the
 * protocol: fragments whose first one was not seen (or was pushed out) stay
 * UNTRACKED.
 */
export class FragmentStates {
  readonly #id = new Uint32Array(FRAG_SLOTS);
  readonly #a = new Uint32Array(FRAG_SLOTS);
  readonly #b = new Uint32Array(FRAG_SLOTS);
  readonly #ct = new Uint8Array(FRAG_SLOTS);
  readonly #dir = new Uint8Array(FRAG_SLOTS);
  readonly #conn: (Conn | null)[] = new Array(FRAG_SLOTS).fill(null);
  #next = 0;
  /** The found fragment's connection, direction and ctstate bits (after {@link find}). */
  conn: Conn | null = null;
  dir: 0 | 1 = 0;
  ct = 0;

  /**
   * Remember a first fragment's connection state under the key (`a`, `b`,
   * `id`): IPv4 source, destination, Identification | protocol << 16;
   * IPv6 the hashes of the addresses and the Identification.
   */
  put(a: number, b: number, id: number, conn: Conn | null, dir: 0 | 1, ct: number): void {
    const i = this.#next;
    this.#next = (i + 1) % FRAG_SLOTS;
    this.#id[i] = id;
    this.#a[i] = a;
    this.#b[i] = b;
    this.#ct[i] = ct;
    this.#dir[i] = dir;
    this.#conn[i] = conn;
  }

  /** Look up a later fragment's first one (newest first); true (and the fields set) when found. */
  find(a: number, b: number, id: number): boolean {
    a >>>= 0;
    b >>>= 0;
    id >>>= 0;
    for (let k = 1; k <= FRAG_SLOTS; k++) {
      const i = (this.#next - k + FRAG_SLOTS) % FRAG_SLOTS;
      if (this.#id[i] === id && this.#a[i] === a && this.#b[i] === b && this.#ct[i] !== 0) {
        this.conn = this.#conn[i]!;
        this.dir = this.#dir[i] as 0 | 1;
        this.ct = this.#ct[i]!;
        return true;
      }
    }
    return false;
  }

  /** Forget everything. */
  clear(): void {
    this.#ct.fill(0);
    this.#conn.fill(null);
  }
}

/** ICMPv6 query types and their answers (Linux nf_conntrack_proto_icmpv6 invmap). */
export const ICMPV6_QUERY_REPLY: Readonly<Record<number, number>> = {
  128: 129,
  129: 128,
  139: 140,
  140: 139,
};

/**
 * ICMPv6 messages conntrack leaves UNTRACKED: MLD (130–132, 143) and
 * router/neighbour discovery (133–136), as Linux's noct_valid_new.
 */
export function icmpv6Untracked(type: number): boolean {
  return (type >= 130 && type <= 136) || type === 143;
}

/** ICMPv6 Destination Unreachable codes (RFC 4443 §3.1) for each REJECT reason. */
export const REJECT6_CODES: Readonly<Record<string, number>> = {
  "no-route": 0,
  "net-unreachable": 0,
  "admin-prohibited": 1,
  "net-prohibited": 1,
  "host-prohibited": 1,
  "addr-unreachable": 3,
  "host-unreachable": 3,
  "port-unreachable": 4,
  "proto-unreachable": 4,
};

// The TCP reset REJECT sends is the one the IPv6 layer sends for closed ports.
