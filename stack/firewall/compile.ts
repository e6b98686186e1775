/**
 * Compiled chains: the index that lets a chain walk test only the few
 * rules that can match a packet, in iptables' first-match order, instead
 * of every rule (docs/firewall-compile.md has the design and its cost
 * model).
 *
 * Each rule is filed under one exact-match key of one field it requires:
 * its destination or source prefix, a destination or source port, its
 * output or input interface, or its protocol, whichever key the fewest
 * rules of the chain share. A rule with none of those (or only negated
 * ones), or with a match this compiler does not know, is filed under
 * "always". For a packet, the index looks up the packet's value in each
 * field (one hash or array read; a prefix field one hash read per prefix
 * length present) and yields the rules of every bucket it hits — a few
 * sorted runs of rule numbers — which the walk merges in rule order. Each
 * candidate is then tested in full by `CompiledRule.matches`, so the index
 * only ever leaves out rules that could not match: verdicts, counters,
 * `-m limit` tokens and LOG lines are those of the linear walk.
 *
 * The indexed fields are ones no target changes during a walk (MARK
 * changes the mark, which is never a key).
 *
 * @module
 */
import { PrefixIndex } from "../_lpm_index.ts";
import type { PacketInfo } from "./match.ts";
import type { InterfaceMatch, Negatable, PortRange, Rule } from "./rule_types.ts";

/** How chains are compiled. */
export interface CompileOptions {
  /** Chains with fewer rules are walked rule by rule (an index costs more than it saves). */
  indexFrom: number;
}

/** The default: chains of 8 rules or more get an index. */
export const DEFAULT_COMPILE: CompileOptions = { indexFrom: 8 };

/**
 * Whether this compiler knows the matches of rule key `k`. A rule that
 * carries any other key — a match added after this list was written — is
 * tested for every packet at its place in the chain.
 */
function known(k: string): boolean {
  switch (k) {
    case "text":
    case "family":
    case "target":
    case "comment":
    case "source":
    case "destination":
    case "inInterface":
    case "outInterface":
    case "protocol":
    case "sourcePorts":
    case "destinationPorts":
    case "ports":
    case "tcpFlags":
    case "icmpType":
    case "ctState":
    case "mark":
    case "limit":
    case "matchSets":
      return true;
    default:
      return false;
  }
}

/** A rule with port matches of more ports than this is not filed by port. */
const MAX_PORTS_PER_RULE = 64;

/** The indexed fields, in the order a tie between keys is broken. */
const enum Dim {
  Dst,
  Src,
  Dport,
  Sport,
  /** `-m multiport --ports`: filed under both the source and destination port. */
  Ports,
  Out,
  In,
  OutPrefix,
  InPrefix,
  Proto,
}

/** How many rules of each kind the index holds (`tapir show`-style summaries, tests). */
export interface IndexSummary {
  rules: number;
  /** Rules tested for every packet. */
  always: number;
  /** Rules filed by destination/source prefix, port, interface and protocol. */
  byDestination: number;
  bySource: number;
  byPort: number;
  byInterface: number;
  byProtocol: number;
  /** Prefix lengths the destination and source lookups try. */
  destinationLengths: number;
  sourceLengths: number;
}

/** Word `k` of the mask of a `len`-bit prefix. */
function mask(len: number, k: number): number {
  const bits = Math.max(0, Math.min(32, len - 32 * k));
  return bits === 0 ? 0 : bits === 32 ? -1 : -1 << (32 - bits);
}

/** The ports of a positive port match when there are few enough to file one by one. */
function portList(m: Negatable<PortRange[]> | undefined): number[] | null {
  if (m === undefined || m.invert) return null;
  let n = 0;
  for (const r of m.value) n += r.max - r.min + 1;
  if (n > MAX_PORTS_PER_RULE) return null;
  const out: number[] = [];
  for (const r of m.value) for (let p = r.min; p <= r.max; p++) out.push(p);
  return out;
}

/**
 * A prefix field: every prefix the chain's rules name, by an id from a
 * {@link PrefixIndex} (the route table's exact-match hash), the bucket of
 * the ids rules were filed under, and the lengths a lookup tries.
 */
class PrefixField {
  readonly index: PrefixIndex;
  /** Prefix lengths of filed prefixes, longest first. */
  lens: Int32Array = new Int32Array(0);
  /** Each id's bucket + 1 (0: no rule was filed under it). */
  bucket: Int32Array = new Int32Array(64);
  /** Each id's prefix length. */
  #len: number[] = [0];
  /** Masks of each length, `words` words each. */
  readonly masks: Int32Array;
  readonly words: number;
  readonly key: Int32Array;
  readonly masked: Int32Array;

  constructor(family: 4 | 6) {
    this.words = family === 4 ? 1 : 4;
    const max = family === 4 ? 32 : 128;
    this.index = new PrefixIndex(this.words, max);
    this.masks = new Int32Array((max + 1) * this.words);
    for (let l = 0; l <= max; l++) {
      for (let k = 0; k < this.words; k++) this.masks[l * this.words + k] = mask(l, k);
    }
    this.key = new Int32Array(this.words);
    this.masked = new Int32Array(this.words);
  }

  /** One more than the largest prefix id. */
  get size(): number {
    return this.#len.length;
  }

  /** The id of a rule's prefix (made on first sight). */
  idOf(c: { family: 4 | 6; address: number | Uint8Array; prefixLen: number }): number {
    const len = c.prefixLen, key = this.key;
    if (c.family === 4) key[0] = (c.address as number) & mask(len, 0);
    else {
      const a = c.address as Uint8Array;
      for (let k = 0; k < 4; k++) {
        const o = 4 * k;
        key[k] = ((a[o]! << 24) | (a[o + 1]! << 16) | (a[o + 2]! << 8) | a[o + 3]!) & mask(len, k);
      }
    }
    let id = this.index.find(key, len);
    if (id === 0) {
      id = this.#len.length;
      this.#len.push(len);
      this.index.insert(id, key, len);
    }
    return id;
  }

  /** File `bucket` under prefix `id`. */
  file(id: number, bucket: number): void {
    if (id >= this.bucket.length) {
      const b = new Int32Array(Math.max(id + 1, this.bucket.length * 2));
      b.set(this.bucket);
      this.bucket = b;
    }
    this.bucket[id] = bucket + 1;
  }

  /** After the last {@link file}: the lengths to try (those of filed prefixes only). */
  finish(): void {
    const seen = new Set<number>();
    for (let id = 1; id < this.#len.length; id++) {
      if (this.bucket[id] !== 0 && id < this.bucket.length) seen.add(this.#len[id]!);
    }
    this.lens = Int32Array.from([...seen].sort((a, b) => b - a));
  }
}

/**
 * One chain's index: every rule number in one array, bucket by bucket
 * (bucket 0 holds the rules tested for every packet), and per field the
 * lookup from a packet's value to its bucket.
 */
export class ChainIndex {
  /** Rule numbers, each bucket's run ascending. */
  readonly members: Int32Array;
  /** Bucket `b` is `members[start[b] .. start[b + 1])`. */
  readonly start: Int32Array;
  /** The most runs one packet can get (the merge state's size). */
  readonly maxLists: number;
  readonly summary: IndexSummary;
  /** protocol → bucket + 1 (0: none). */
  readonly #proto = new Int32Array(256);
  #hasProto = false;
  readonly #dport = new Map<number, number>();
  readonly #sport = new Map<number, number>();
  readonly #in = new Map<string, number>();
  readonly #out = new Map<string, number>();
  /** Interface name prefixes (`eth+`) and their buckets. */
  readonly #inPrefix: string[] = [];
  readonly #inPrefixBucket: number[] = [];
  readonly #outPrefix: string[] = [];
  readonly #outPrefixBucket: number[] = [];
  /** The prefix fields; null when no rule is filed under a prefix there. */
  #src: PrefixField | null;
  #dst: PrefixField | null;

  /**
   * @param rules the chain's rules, in order
   * @param family the chain's family (its address keys are of this family)
   */
  constructor(rules: readonly Rule[], family: 4 | 6) {
    const n = rules.length;
    const src = new PrefixField(family), dst = new PrefixField(family);
    const ifIds = new Map<string, number>();
    // Each rule's keys as groups in one flat list: field, count, values
    // (a port list is one group of several values); interface names and
    // prefixes as small numbers, so every field counts in a typed array.
    const kv: number[] = [];
    const at = new Int32Array(n + 1);
    const always = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      at[i] = kv.length;
      if (!this.#keysOf(rules[i]!, family, src, dst, ifIds, kv)) {
        kv.length = at[i]!;
        always[i] = 1;
      } else if (kv.length === at[i]) always[i] = 1;
    }
    at[n] = kv.length;
    const ifNames = [...ifIds.keys()];
    const domain = (d: Dim) =>
      d === Dim.Dst
        ? dst.size
        : d === Dim.Src
        ? src.size
        : d === Dim.Proto
        ? 256
        : d <= Dim.Ports
        ? 65536
        : ifNames.length;
    const present = new Uint8Array(Dim.Proto + 1);
    for (let q = 0; q < kv.length;) {
      const d = kv[q]!;
      if (d === Dim.Ports) present[Dim.Dport] = present[Dim.Sport] = 1;
      else present[d] = 1;
      q += 2 + kv[q + 1]!;
    }
    const none = new Int32Array(0);
    const table = () =>
      Array.from(
        { length: Dim.Proto + 1 },
        (_, d) => present[d] === 1 ? new Int32Array(domain(d)) : none,
      );
    // How many rules share each key: a rule goes where the fewest others are.
    const cnt = table();
    for (let q = 0; q < kv.length;) {
      const d = kv[q]!, c = kv[q + 1]!;
      for (let j = 0; j < c; j++) {
        const v = kv[q + 2 + j]!;
        if (d === Dim.Ports) {
          cnt[Dim.Dport]![v]!++;
          cnt[Dim.Sport]![v]!++;
        } else cnt[d]![v]!++;
      }
      q += 2 + c;
    }
    const chosen = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      if (always[i] === 1) continue;
      let best = -1, bestDim = 0, bestCost = Infinity;
      for (let q = at[i]!; q < at[i + 1]!;) {
        const d = kv[q]!, c = kv[q + 1]!;
        let cost = 0;
        for (let j = 0; j < c; j++) {
          const v = kv[q + 2 + j]!;
          cost += d === Dim.Ports ? cnt[Dim.Dport]![v]! + cnt[Dim.Sport]![v]! : cnt[d]![v]!;
        }
        if (cost < bestCost || (cost === bestCost && d < bestDim)) {
          best = q;
          bestDim = d;
          bestCost = cost;
        }
        q += 2 + c;
      }
      chosen[i] = best;
    }
    // Buckets: 0 = always; then one per (field, value) in first-use order.
    // Two passes in rule order (sizes, then members), so each run ascends;
    // a rule lands in a bucket once (`--ports 53,53`).
    const bucketOf = table();
    const sizes: number[] = [0];
    const last: number[] = [-1];
    const s: IndexSummary = {
      rules: n,
      always: 0,
      byDestination: 0,
      bySource: 0,
      byPort: 0,
      byInterface: 0,
      byProtocol: 0,
      destinationLengths: 0,
      sourceLengths: 0,
    };
    const visit = (i: number, put: (b: number) => void) => {
      const q = chosen[i]!;
      if (q < 0) return put(0);
      const d = kv[q]!, c = kv[q + 1]!;
      for (let j = 0; j < c; j++) {
        const v = kv[q + 2 + j]!;
        for (const dd of d === Dim.Ports ? [Dim.Dport, Dim.Sport] : [d]) {
          const m = bucketOf[dd]!;
          let b = m[v]! - 1;
          if (b < 0) {
            b = sizes.length;
            sizes.push(0);
            last.push(-1);
            m[v] = b + 1;
            this.#register(dd, v, b, src, dst, ifNames);
          }
          put(b);
        }
      }
    };
    for (let i = 0; i < n; i++) {
      visit(i, (b) => {
        if (last[b] === i) return;
        last[b] = i;
        sizes[b]!++;
      });
      const q = chosen[i]!;
      const d = q < 0 ? -1 : kv[q]!;
      if (d < 0) s.always++;
      else if (d === Dim.Dst) s.byDestination++;
      else if (d === Dim.Src) s.bySource++;
      else if (d <= Dim.Ports) s.byPort++;
      else if (d === Dim.Proto) s.byProtocol++;
      else s.byInterface++;
    }
    const start = new Int32Array(sizes.length + 1);
    for (let b = 0; b < sizes.length; b++) start[b + 1] = start[b]! + sizes[b]!;
    const members = new Int32Array(start[sizes.length]!);
    const fill = start.slice(0, sizes.length);
    last.fill(-1);
    for (let i = 0; i < n; i++) {
      visit(i, (b) => {
        if (last[b] === i) return;
        last[b] = i;
        members[fill[b]!++] = i;
      });
    }
    this.members = members;
    this.start = start;
    this.#src = present[Dim.Src] === 1 ? src : null;
    this.#dst = present[Dim.Dst] === 1 ? dst : null;
    this.#src?.finish();
    this.#dst?.finish();
    s.sourceLengths = this.#src?.lens.length ?? 0;
    s.destinationLengths = this.#dst?.lens.length ?? 0;
    if (s.sourceLengths === 0) this.#src = null;
    if (s.destinationLengths === 0) this.#dst = null;
    this.summary = s;
    this.maxLists = 6 + this.#inPrefix.length + this.#outPrefix.length + s.sourceLengths +
      s.destinationLengths;
  }

  /**
   * Append the key groups of `rule` to `kv` (field, count, values); false:
   * the rule is tested for every packet (a match this compiler does not
   * know). A prefix is its id in the field's index, an interface its
   * number in `ifIds`.
   */
  #keysOf(
    rule: Rule,
    family: 4 | 6,
    src: PrefixField,
    dst: PrefixField,
    ifIds: Map<string, number>,
    kv: number[],
  ): boolean {
    for (const k in rule) {
      if (!known(k) && (rule as unknown as Record<string, unknown>)[k] !== undefined) return false;
    }
    const addr = (dim: Dim, f: PrefixField, m: Rule["source"]) => {
      if (m === undefined || m.invert) return;
      const c = m.value;
      if (c.family !== family || c.prefixLen === 0) return;
      kv.push(dim, 1, f.idOf(c));
    };
    addr(Dim.Dst, dst, rule.destination);
    addr(Dim.Src, src, rule.source);
    const ports = (dim: Dim, m: Negatable<PortRange[]> | undefined) => {
      const list = portList(m);
      if (list !== null) kv.push(dim, list.length, ...list);
    };
    ports(Dim.Dport, rule.destinationPorts);
    ports(Dim.Sport, rule.sourcePorts);
    ports(Dim.Ports, rule.ports);
    const iface = (exact: Dim, prefix: Dim, m: Negatable<InterfaceMatch> | undefined) => {
      if (m === undefined || m.invert || (m.value.prefix && m.value.name === "")) return;
      let id = ifIds.get(m.value.name);
      if (id === undefined) {
        id = ifIds.size;
        ifIds.set(m.value.name, id);
      }
      kv.push(m.value.prefix ? prefix : exact, 1, id);
    };
    iface(Dim.Out, Dim.OutPrefix, rule.outInterface);
    iface(Dim.In, Dim.InPrefix, rule.inInterface);
    if (rule.protocol !== undefined && !rule.protocol.invert) {
      kv.push(Dim.Proto, 1, rule.protocol.value);
    }
    return true;
  }

  #register(
    dim: Dim,
    v: number,
    b: number,
    src: PrefixField,
    dst: PrefixField,
    ifNames: string[],
  ): void {
    switch (dim) {
      case Dim.Dst:
        dst.file(v, b);
        break;
      case Dim.Src:
        src.file(v, b);
        break;
      case Dim.Dport:
        this.#dport.set(v, b);
        break;
      case Dim.Sport:
        this.#sport.set(v, b);
        break;
      case Dim.Out:
        this.#out.set(ifNames[v]!, b);
        break;
      case Dim.In:
        this.#in.set(ifNames[v]!, b);
        break;
      case Dim.OutPrefix:
        this.#outPrefix.push(ifNames[v]!);
        this.#outPrefixBucket.push(b);
        break;
      case Dim.InPrefix:
        this.#inPrefix.push(ifNames[v]!);
        this.#inPrefixBucket.push(b);
        break;
      case Dim.Proto:
        this.#proto[v] = b + 1;
        this.#hasProto = true;
        break;
    }
  }

  /**
   * The runs of candidate rules for a packet: for each run `j < k` (k
   * returned), `members[pos[j] .. end[j])`; every run is non-empty.
   * No allocation.
   */
  gather(p: PacketInfo, pos: Int32Array, end: Int32Array): number {
    const start = this.start;
    let k = 0;
    if (start[1]! > 0) {
      pos[0] = 0;
      end[0] = start[1]!;
      k = 1;
    }
    if (this.#hasProto) {
      const b = this.#proto[p.proto]! - 1;
      if (b >= 0) k = this.#run(b, pos, end, k);
    }
    if (p.hasPorts) {
      if (this.#dport.size > 0) {
        const b = this.#dport.get(p.dport);
        if (b !== undefined) k = this.#run(b, pos, end, k);
      }
      if (this.#sport.size > 0) {
        const b = this.#sport.get(p.sport);
        if (b !== undefined) k = this.#run(b, pos, end, k);
      }
    }
    // Loopback packets have no NIC here; Linux names their device `lo` (as match.ts).
    if (this.#in.size > 0 || this.#inPrefix.length > 0) {
      const name = p.inNic === null ? "lo" : p.inNic.name;
      const b = this.#in.get(name);
      if (b !== undefined) k = this.#run(b, pos, end, k);
      const pre = this.#inPrefix;
      for (let i = 0; i < pre.length; i++) {
        if (name.startsWith(pre[i]!)) k = this.#run(this.#inPrefixBucket[i]!, pos, end, k);
      }
    }
    if (this.#out.size > 0 || this.#outPrefix.length > 0) {
      const name = p.outNic === null ? "lo" : p.outNic.name;
      const b = this.#out.get(name);
      if (b !== undefined) k = this.#run(b, pos, end, k);
      const pre = this.#outPrefix;
      for (let i = 0; i < pre.length; i++) {
        if (name.startsWith(pre[i]!)) k = this.#run(this.#outPrefixBucket[i]!, pos, end, k);
      }
    }
    if (this.#src !== null) k = this.#prefixes(this.#src, p, true, pos, end, k);
    if (this.#dst !== null) k = this.#prefixes(this.#dst, p, false, pos, end, k);
    return k;
  }

  #run(b: number, pos: Int32Array, end: Int32Array, k: number): number {
    const s = this.start[b]!, e = this.start[b + 1]!;
    if (s === e) return k;
    pos[k] = s;
    end[k] = e;
    return k + 1;
  }

  /** The buckets of every prefix of the packet's source (or destination) address that rules name. */
  #prefixes(
    f: PrefixField,
    p: PacketInfo,
    src: boolean,
    pos: Int32Array,
    end: Int32Array,
    k: number,
  ): number {
    const key = f.key, masked = f.masked, masks = f.masks, w = f.words, lens = f.lens;
    if (w === 1) key[0] = src ? p.src : p.dst;
    else {
      const d = p.pkt!.data;
      const off = src ? p.srcOff : p.dstOff;
      for (let j = 0; j < 4; j++) {
        const o = off + 4 * j;
        key[j] = (d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!;
      }
    }
    for (let i = 0; i < lens.length; i++) {
      const len = lens[i]!;
      const mo = len * w;
      for (let j = 0; j < w; j++) masked[j] = key[j]! & masks[mo + j]!;
      const id = f.index.find(masked, len);
      if (id !== 0) {
        const b = id < f.bucket.length ? f.bucket[id]! - 1 : -1;
        if (b >= 0) k = this.#run(b, pos, end, k);
      }
    }
    return k;
  }
}
