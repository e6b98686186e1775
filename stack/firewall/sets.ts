/**
 * Named sets, as ipset keeps them for iptables' `-m set`: `hash:ip`,
 * `hash:net`, `hash:ip,port` and `hash:net,iface`, for one family or
 * both, with an optional timeout per entry. A rule tests a set in one
 * hash lookup (hash:net types: one per prefix length present), so a set
 * of a million addresses costs a packet about what a set of ten does; a
 * `tapir set add` changes the set that the compiled rules hold, so the
 * next packet already sees it.
 *
 * Each family's members live in one {@link PrefixIndex} (the route
 * table's exact-match hash over typed arrays): the key is the address,
 * masked to the entry's prefix length, plus one word for the second
 * dimension (`proto << 16 | port`, or the interface's number). A hash:net
 * lookup tries each prefix length present, longest first, as the kernel's
 * hash:net does (its cost is the number of distinct lengths, not of
 * entries). An expired entry is no member from its deadline on; its slot
 * is reclaimed when a lookup, add or list meets it.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { PrefixIndex } from "../_lpm_index.ts";
import {
  AddressParseError,
  formatIpv4,
  formatIpv6,
  type IpCidr,
  parseCidr,
  parseIpAddress,
} from "../wire/ip_address.ts";
import type { FirewallSetEntry, FirewallSetSpec, FirewallSetType, SetMatch } from "./rule_types.ts";

/** The set types, by ipset's names. */
export const SET_TYPES: readonly FirewallSetType[] = [
  "hash:ip",
  "hash:net",
  "hash:ip,port",
  "hash:net,iface",
];

/** How many dimensions (`src`/`dst` flags a rule uses) each type has. */
export const SET_DIMENSIONS: Readonly<Record<FirewallSetType, number>> = {
  "hash:ip": 1,
  "hash:net": 1,
  "hash:ip,port": 2,
  "hash:net,iface": 2,
};

/** The default of `max_entries` (ipset's maxelem). */
export const SET_DEFAULT_MAX = 65536;

/** What a set test reads of a packet (the fields of a `PacketInfo`). */
export interface SetProbe {
  readonly family: 4 | 6;
  readonly pkt: { readonly data: Uint8Array } | null;
  /** IPv4 addresses. */
  readonly src: number;
  readonly dst: number;
  /** IPv6: the addresses' offsets in `pkt.data`. */
  readonly srcOff: number;
  readonly dstOff: number;
  readonly proto: number;
  /** TCP or UDP ports are there. */
  readonly hasPorts: boolean;
  readonly sport: number;
  readonly dport: number;
  readonly inNic: { readonly name: string } | null;
  readonly outNic: { readonly name: string } | null;
}

/** A set entry that cannot be parsed, does not fit the set, or a full set. */
export class SetError extends Error {
  /** @param message what is wrong, naming the entry */
  constructor(message: string) {
    super(message);
    this.name = "SetError";
  }
}

/** One entry as `tapir set list` shows it. */
export interface SetEntryInfo {
  /** The entry as `tapir set add` takes it (`192.0.2.1`, `192.0.2.0/24,lan0`, ...). */
  entry: string;
  /** Seconds left, null for an entry without a timeout. */
  timeout: number | null;
}

const NAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Parse one entry of a set of `type` as ipset writes it: `ADDR` (hash:ip),
 * `NET` or `ADDR` (hash:net; an address is its full-length prefix),
 * `ADDR,PORT`, `ADDR,tcp:PORT`, `ADDR,udp:PORT` (hash:ip,port; tcp
 * unless named), `NET,IFACE` (hash:net,iface).
 *
 * @param type the set's type
 * @param family the set's family (0: both)
 * @param text the entry
 * @returns the entry, without a timeout
 * @throws SetError saying what is wrong
 * @example
 * ```ts
 * import { parseSetEntry } from "./sets.ts";
 * const e = parseSetEntry("hash:ip,port", 0, "192.0.2.1,udp:53");
 * console.assert(e.proto === 17 && e.port === 53);
 * ```
 */
export function parseSetEntry(
  type: FirewallSetType,
  family: 0 | 4 | 6,
  text: string,
): FirewallSetEntry {
  const t = text.trim();
  const comma = t.indexOf(",");
  const two = SET_DIMENSIONS[type] === 2;
  if (two && comma === -1) {
    throw new SetError(
      `entry "${text}" of a ${type} set needs two parts: ${
        type === "hash:ip,port" ? "ADDRESS,PORT" : "NETWORK,INTERFACE"
      }`,
    );
  }
  if (!two && comma !== -1) {
    throw new SetError(
      `entry "${text}" of a ${type} set is one ${
        type === "hash:ip" ? "address" : "network"
      } (no ",")`,
    );
  }
  const first = two ? t.slice(0, comma) : t;
  const net = type === "hash:net" || type === "hash:net,iface";
  let address: IpCidr;
  try {
    if (first.includes("/")) {
      address = parseCidr(first, false);
      const full = address.family === 4 ? 32 : 128;
      if (!net && address.prefixLen !== full) {
        throw new SetError(
          `entry "${text}": "${first}" is a network, and a ${type} set holds addresses (use a hash:net set)`,
        );
      }
      if (net && address.prefixLen === 0) {
        throw new SetError(`entry "${text}": a /0 network would hold every address`);
      }
    } else {
      const a = parseIpAddress(first);
      address = a.family === 4
        ? { family: 4, address: a.address, prefixLen: 32 }
        : { family: 6, address: a.address, prefixLen: 128 };
    }
  } catch (e) {
    if (e instanceof AddressParseError) throw new SetError(`entry "${text}": ${e.message}`);
    throw e;
  }
  if (family !== 0 && address.family !== family) {
    throw new SetError(`entry "${text}" is IPv${address.family}, and the set holds IPv${family}`);
  }
  if (!two) return { address };
  const second = t.slice(comma + 1);
  if (type === "hash:net,iface") {
    if (!NAME.test(second)) throw new SetError(`entry "${text}": bad interface name "${second}"`);
    return { address, iface: second };
  }
  const m = /^(?:(tcp|udp):)?([0-9]{1,5})$/i.exec(second);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) {
    throw new SetError(
      `entry "${text}": "${second}" is no port (write PORT, tcp:PORT or udp:PORT, 0 to 65535)`,
    );
  }
  return { address, proto: m[1]?.toLowerCase() === "udp" ? 17 : 6, port };
}

/** The text of an entry, as {@link parseSetEntry} reads it back (the entry's identity). */
export function formatSetEntry(type: FirewallSetType, e: FirewallSetEntry): string {
  const a = e.address;
  const addr = a.family === 4 ? formatIpv4(a.address) : formatIpv6(a.address);
  const net = type === "hash:net" || type === "hash:net,iface";
  const first = net && a.prefixLen !== (a.family === 4 ? 32 : 128)
    ? `${addr}/${a.prefixLen}`
    : addr;
  if (type === "hash:ip,port") return `${first},${e.proto === 17 ? "udp" : "tcp"}:${e.port}`;
  if (type === "hash:net,iface") return `${first},${e.iface}`;
  return first;
}

/** The address words of prefix length `len` in a family of `words` words, masked. */
function maskWord(len: number, k: number): number {
  const bits = Math.max(0, Math.min(32, len - 32 * k));
  return bits === 0 ? 0 : bits === 32 ? -1 : -1 << (32 - bits);
}

/** One family's members of a set. */
class Members {
  /** (masked address words + second dimension) → id. */
  readonly index: PrefixIndex;
  /** 32-bit words of the address (1 or 4), and of the whole key. */
  readonly aw: number;
  readonly words: number;
  /** 32 or 128. */
  readonly maxLen: number;
  /** Each id's key (a copy of the index's, for listing) and prefix length. */
  keys: Int32Array;
  lens: Uint8Array;
  /** Each id's deadline (clock ms); Infinity: none; NaN: a free id. */
  expiry: Float64Array;
  /** The prefix lengths present, longest first (hash:net types). */
  present: Int32Array = new Int32Array(0);
  /** Entries with a deadline (0: a lookup reads no clock). */
  timed = 0;
  /** The probe's key, and the same masked to one prefix length. */
  readonly key: Int32Array;
  readonly masked: Int32Array;
  /** Masks of each prefix length, `aw` words each. */
  readonly masks: Int32Array;
  #next = 1;
  #free: number[] = [];
  /** Where the incremental sweep for expired entries goes on. */
  #sweep = 1;

  constructor(family: 4 | 6, extra: number) {
    this.aw = family === 4 ? 1 : 4;
    this.words = this.aw + extra;
    this.maxLen = family === 4 ? 32 : 128;
    this.index = new PrefixIndex(this.words, this.maxLen);
    this.keys = new Int32Array(64 * this.words);
    this.lens = new Uint8Array(64);
    this.expiry = new Float64Array(64).fill(NaN);
    this.key = new Int32Array(this.words);
    this.masked = new Int32Array(this.words);
    this.masks = new Int32Array((this.maxLen + 1) * this.aw);
    for (let l = 0; l <= this.maxLen; l++) {
      for (let k = 0; k < this.aw; k++) this.masks[l * this.aw + k] = maskWord(l, k);
    }
  }

  get count(): number {
    return this.index.count;
  }

  /** The id of `key` (masked to `len`), 0 when absent. */
  find(key: Int32Array, len: number): number {
    return this.index.find(key, len);
  }

  /** Whether `id` is a live member now (an expired one is removed). */
  live(id: number, clock: Clock): boolean {
    if (id === 0) return false;
    const exp = this.expiry[id]!;
    if (exp === Infinity || exp > clock.now()) return true;
    this.remove(id);
    return false;
  }

  /** Add `key`/`len` with deadline `exp`: the new id. */
  insert(key: Int32Array, len: number, exp: number): number {
    let id = this.#free.pop();
    if (id === undefined) {
      id = this.#next++;
      if (id >= this.lens.length) this.#grow(this.lens.length * 2);
    }
    this.keys.set(key.subarray(0, this.words), id * this.words);
    this.lens[id] = len;
    this.expiry[id] = exp;
    if (exp !== Infinity) this.timed++;
    const before = this.index.lenCount[len]!;
    this.index.insert(id, key, len);
    if (before === 0) this.#present();
    return id;
  }

  /** Set the deadline of a present `id`. */
  retime(id: number, exp: number): void {
    const old = this.expiry[id]!;
    if (old !== Infinity) this.timed--;
    if (exp !== Infinity) this.timed++;
    this.expiry[id] = exp;
  }

  remove(id: number): void {
    const len = this.lens[id]!;
    this.index.delete(id);
    if (this.expiry[id] !== Infinity) this.timed--;
    this.expiry[id] = NaN;
    this.#free.push(id);
    if (this.index.lenCount[len] === 0) this.#present();
  }

  /** Remove expired entries: all of them (`all`), or the next few ids (each add). */
  sweep(now: number, all: boolean): void {
    if (this.timed === 0) return;
    const n = this.#next;
    let steps = all ? n : 4;
    for (; steps > 0; steps--) {
      if (this.#sweep >= n) this.#sweep = 1;
      const id = this.#sweep++;
      const exp = this.expiry[id]!;
      if (exp <= now) this.remove(id);
    }
  }

  /** Every live id. */
  *ids(now: number): IterableIterator<number> {
    for (let id = 1; id < this.#next; id++) {
      const exp = this.expiry[id]!;
      if (Number.isNaN(exp)) continue;
      if (exp <= now) {
        this.remove(id);
        continue;
      }
      yield id;
    }
  }

  #present(): void {
    const out: number[] = [];
    for (let l = this.maxLen; l >= 0; l--) if (this.index.lenCount[l]! > 0) out.push(l);
    this.present = Int32Array.from(out);
  }

  #grow(n: number): void {
    const keys = new Int32Array(n * this.words);
    keys.set(this.keys);
    this.keys = keys;
    const lens = new Uint8Array(n);
    lens.set(this.lens);
    this.lens = lens;
    const exp = new Float64Array(n).fill(NaN);
    exp.set(this.expiry);
    this.expiry = exp;
  }
}

/** Kinds of second dimension. */
const enum Second {
  None,
  Port,
  Iface,
}

/**
 * A named set: its definition, and its members for one family or both.
 *
 * @example
 * ```ts
 * import { IpSet, parseSetEntry } from "./sets.ts";
 * import { ManualClock } from "../clock.ts";
 * const s = new IpSet({ name: "ban", type: "hash:ip", family: 0, timeout: 0, maxEntries: 10, entries: [] }, new ManualClock());
 * s.add(parseSetEntry("hash:ip", 0, "192.0.2.7"));
 * console.assert(s.size === 1 && s.list()[0]!.entry === "192.0.2.7");
 * ```
 */
export class IpSet {
  readonly name: string;
  readonly type: FirewallSetType;
  readonly family: 0 | 4 | 6;
  /** Default entry timeout in ms (0: none). */
  readonly timeout: number;
  readonly maxEntries: number;
  /** The definition and entries the config gave last (a reload diffs its entries against them). */
  spec: FirewallSetSpec;
  readonly #clock: Clock;
  readonly #v4: Members | null;
  readonly #v6: Members | null;
  readonly #second: Second;
  readonly #net: boolean;
  /** hash:net,iface: interface name → the number in the key. */
  readonly #ifIds = new Map<string, number>();
  readonly #ifNames: string[] = [""];

  /**
   * @param spec the definition, and the entries to start with
   * @param clock for the timeouts
   * @throws SetError when an entry does not fit (config validation rules it out)
   */
  constructor(spec: FirewallSetSpec, clock: Clock) {
    this.name = spec.name;
    this.type = spec.type;
    this.family = spec.family;
    this.timeout = spec.timeout;
    this.maxEntries = spec.maxEntries;
    this.spec = spec;
    this.#clock = clock;
    this.#second = spec.type === "hash:ip,port"
      ? Second.Port
      : spec.type === "hash:net,iface"
      ? Second.Iface
      : Second.None;
    this.#net = spec.type === "hash:net" || spec.type === "hash:net,iface";
    const extra = this.#second === Second.None ? 0 : 1;
    this.#v4 = spec.family === 6 ? null : new Members(4, extra);
    this.#v6 = spec.family === 4 ? null : new Members(6, extra);
    for (const e of spec.entries) this.add(e);
  }

  /** Live entries (expired ones not yet reclaimed are counted until a lookup or list meets them). */
  get size(): number {
    return (this.#v4?.count ?? 0) + (this.#v6?.count ?? 0);
  }

  /** Whether `other` defines the same set (type, family, timeout, size): a reload keeps its entries. */
  sameDefinition(other: FirewallSetSpec): boolean {
    return other.type === this.type && other.family === this.family &&
      other.timeout === this.timeout && other.maxEntries === this.maxEntries;
  }

  /** Parse `text` as an entry of this set. @throws SetError */
  parse(text: string): FirewallSetEntry {
    return parseSetEntry(this.type, this.family, text);
  }

  /**
   * Add an entry, or give a present one its new timeout (ipset's
   * `add -exist`: a repeated ban restarts its clock).
   *
   * @param e the entry (`e.timeout`: ms, absent for the set's, 0 for ever)
   * @param timeout overrides `e.timeout`
   * @returns true when the entry is new
   * @throws SetError when the entry's family does not fit or the set is full
   */
  add(e: FirewallSetEntry, timeout?: number): boolean {
    const m = this.#members(e);
    const len = this.#keyOf(m, e);
    const t = timeout ?? e.timeout ?? this.timeout;
    const now = this.#clock.now();
    const exp = t === 0 ? Infinity : now + t;
    const id = m.find(m.key, len);
    if (id !== 0) {
      m.retime(id, exp);
      return false;
    }
    m.sweep(now, false);
    if (this.size >= this.maxEntries) {
      this.#v4?.sweep(now, true);
      this.#v6?.sweep(now, true);
      if (this.size >= this.maxEntries) {
        throw new SetError(
          `set "${this.name}" is full (${this.maxEntries} entries; raise its max_entries)`,
        );
      }
    }
    m.insert(m.key, len, exp);
    return true;
  }

  /**
   * Remove an entry.
   *
   * @returns true when it was there (and not yet expired)
   * @throws SetError when the entry's family does not fit the set
   */
  delete(e: FirewallSetEntry): boolean {
    const m = this.#members(e);
    const len = this.#keyOf(m, e);
    const id = m.find(m.key, len);
    if (id === 0) return false;
    const live = m.expiry[id]! > this.#clock.now();
    m.remove(id);
    return live;
  }

  /** Whether exactly this entry is a live member. */
  has(e: FirewallSetEntry): boolean {
    const m = this.#members(e);
    return m.live(m.find(m.key, this.#keyOf(m, e)), this.#clock);
  }

  /** Remove every entry. */
  flush(): void {
    const now = this.#clock.now();
    for (const m of [this.#v4, this.#v6]) {
      if (m === null) continue;
      for (const id of [...m.ids(now)]) m.remove(id);
    }
  }

  /** Every live entry with the seconds it has left, IPv4 first. */
  list(): SetEntryInfo[] {
    const now = this.#clock.now();
    const out: SetEntryInfo[] = [];
    for (const m of [this.#v4, this.#v6]) {
      if (m === null) continue;
      for (const id of m.ids(now)) {
        const exp = m.expiry[id]!;
        out.push({
          entry: formatSetEntry(this.type, this.#entryOf(m, id)),
          timeout: exp === Infinity ? null : Math.ceil((exp - now) / 1000),
        });
      }
    }
    return out;
  }

  /**
   * The datapath test: is the packet, read from the sides `src` names
   * (bit k set: dimension k from the source), a member? One hash lookup
   * (hash:net types: one per prefix length present); no allocation.
   */
  test(p: SetProbe, src: number): boolean {
    const m = p.family === 4 ? this.#v4 : this.#v6;
    if (m === null || m.index.count === 0) return false;
    const key = m.key;
    if (p.family === 4) key[0] = (src & 1) !== 0 ? p.src : p.dst;
    else {
      const d = p.pkt!.data;
      const off = (src & 1) !== 0 ? p.srcOff : p.dstOff;
      for (let k = 0; k < 4; k++) {
        const o = off + 4 * k;
        key[k] = (d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!;
      }
    }
    const aw = m.aw;
    if (this.#second === Second.Port) {
      // ipset's hash:ip,port: TCP and UDP ports only, never a later fragment.
      if (!p.hasPorts) return false;
      key[aw] = (p.proto << 16) | ((src & 2) !== 0 ? p.sport : p.dport);
    } else if (this.#second === Second.Iface) {
      // Loopback packets have no NIC here; Linux names their device `lo`.
      const nic = (src & 2) !== 0 ? p.inNic : p.outNic;
      const id = this.#ifIds.get(nic === null ? "lo" : nic.name);
      if (id === undefined) return false;
      key[aw] = id;
    }
    if (!this.#net) {
      const id = m.find(key, m.maxLen);
      return id !== 0 && (m.timed === 0 || m.live(id, this.#clock));
    }
    const masked = m.masked, masks = m.masks, present = m.present;
    if (this.#second !== Second.None) masked[aw] = key[aw]!;
    for (let i = 0; i < present.length; i++) {
      const len = present[i]!;
      const mo = len * aw;
      for (let k = 0; k < aw; k++) masked[k] = key[k]! & masks[mo + k]!;
      const id = m.find(masked, len);
      if (id !== 0 && (m.timed === 0 || m.live(id, this.#clock))) return true;
    }
    return false;
  }

  /** The members of `e`'s family. @throws SetError */
  #members(e: FirewallSetEntry): Members {
    const m = e.address.family === 4 ? this.#v4 : this.#v6;
    if (m === null) {
      throw new SetError(
        `set "${this.name}" holds IPv${this.family} entries, not IPv${e.address.family}`,
      );
    }
    return m;
  }

  /** Write `e`'s key into `m.key`; its prefix length. */
  #keyOf(m: Members, e: FirewallSetEntry): number {
    const a = e.address;
    const len = this.#net ? a.prefixLen : m.maxLen;
    if (a.family === 4) m.key[0] = a.address & m.masks[len]!;
    else {
      for (let k = 0; k < 4; k++) {
        const o = 4 * k, b = a.address;
        m.key[k] = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) &
          m.masks[len * 4 + k]!;
      }
    }
    if (this.#second === Second.Port) m.key[m.aw] = ((e.proto ?? 6) << 16) | (e.port ?? 0);
    else if (this.#second === Second.Iface) {
      const name = e.iface ?? "";
      let id = this.#ifIds.get(name);
      if (id === undefined) {
        id = this.#ifNames.length;
        this.#ifNames.push(name);
        this.#ifIds.set(name, id);
      }
      m.key[m.aw] = id;
    }
    return len;
  }

  /** The entry stored under `id`. */
  #entryOf(m: Members, id: number): FirewallSetEntry {
    const w = m.words, base = id * w, len = m.lens[id]!;
    let address: IpCidr;
    if (m.aw === 1) address = { family: 4, address: m.keys[base]! >>> 0, prefixLen: len };
    else {
      const b = new Uint8Array(16);
      for (let k = 0; k < 4; k++) {
        const v = m.keys[base + k]!;
        b[4 * k] = v >>> 24;
        b[4 * k + 1] = (v >>> 16) & 255;
        b[4 * k + 2] = (v >>> 8) & 255;
        b[4 * k + 3] = v & 255;
      }
      address = { family: 6, address: b, prefixLen: len };
    }
    const second = m.keys[base + m.aw]!;
    if (this.#second === Second.Port) {
      return { address, proto: second >>> 16, port: second & 0xffff };
    }
    if (this.#second === Second.Iface) return { address, iface: this.#ifNames[second] ?? "" };
    return { address };
  }
}

/** A rule's `-m set` match, resolved to its set. */
export class SetRef {
  /**
   * @param set the set
   * @param src bit k set: the set's dimension k is read from the packet's source side
   * @param invert `!`
   */
  constructor(readonly set: IpSet, readonly src: number, readonly invert: boolean) {}
}

/**
 * Resolve a rule's `-m set` matches against the firewall's sets.
 *
 * @throws Error on a set that does not exist (config validation rules it out)
 */
export function resolveSets(
  matches: readonly SetMatch[],
  sets: ReadonlyMap<string, IpSet>,
): SetRef[] {
  return matches.map((m) => {
    const set = sets.get(m.name);
    if (set === undefined) throw new Error(`no set named "${m.name}"`);
    let src = 0;
    m.dirs.forEach((d, k) => {
      if (d === "src") src |= 1 << k;
    });
    return new SetRef(set, src, m.invert);
  });
}

/** Whether every one of a rule's set matches holds for the packet. */
export function matchSets(refs: readonly SetRef[], p: SetProbe): boolean {
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i]!;
    if (r.set.test(p, r.src) === r.invert) return false;
  }
  return true;
}

/**
 * The sets of a new configuration: a set whose definition is unchanged is
 * the running one, entries and all (what `tapir set` added stays), with
 * the entries the config dropped removed and those it added added; any
 * other set is made afresh from the config.
 *
 * @param running the sets now in use
 * @param specs the new configuration's sets
 * @param clock for new sets' timeouts
 * @returns the sets, and one line per set that was kept, rebuilt, made or removed
 */
export function carrySets(
  running: ReadonlyMap<string, IpSet>,
  specs: ReadonlyMap<string, FirewallSetSpec> | undefined,
  clock: Clock,
): { sets: Map<string, IpSet>; changes: string[] } {
  const sets = new Map<string, IpSet>();
  const changes: string[] = [];
  for (const [name, spec] of specs ?? []) {
    const old = running.get(name);
    if (old === undefined) {
      sets.set(name, new IpSet(spec, clock));
      changes.push(`set ${name} created`);
      continue;
    }
    if (!old.sameDefinition(spec)) {
      sets.set(name, new IpSet(spec, clock));
      changes.push(`set ${name} rebuilt (its definition changed; entries from the config only)`);
      continue;
    }
    const key = (e: FirewallSetEntry) => formatSetEntry(spec.type, e);
    const before = new Set(old.spec.entries.map(key));
    const after = new Set(spec.entries.map(key));
    let added = 0, removed = 0;
    for (const e of old.spec.entries) if (!after.has(key(e)) && old.delete(e)) removed++;
    for (const e of spec.entries) {
      if (before.has(key(e))) continue;
      try {
        if (old.add(e)) added++;
      } catch {
        // A full set keeps what it has; the entry is left out.
      }
    }
    old.spec = spec;
    sets.set(name, old);
    if (added + removed > 0) {
      changes.push(`set ${name} kept (${added} config entries added, ${removed} removed)`);
    }
  }
  for (const name of running.keys()) if (!sets.has(name)) changes.push(`set ${name} removed`);
  return { sets, changes };
}
