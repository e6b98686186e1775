/**
 * Default address selection for IPv6 (RFC 6724): the policy table (§2.1),
 * source address selection (§5) and destination address ordering (§6).
 *
 * Addresses are 16-byte `Uint8Array`s. IPv4 addresses take part as
 * IPv4-mapped addresses (`::ffff:a.b.c.d`), which is how RFC 6724 §2.1 and
 * §3.2 fold them into the same policy table and scope model, so a dual-stack
 * caller can order a mixed list of destinations. The functions are pure: they
 * read their arguments and the policy table, and nothing else.
 *
 * Deliberate gaps, each a no-op rule:
 * - Source rule 4 and destination rule 4 (prefer home addresses): tapir has
 *   no Mobile IPv6 (RFC 6275), so no address is a home or care-of address.
 * - Destination rule 7 (prefer native transport): tapir has no tunnels.
 *
 * @module
 */

import {
  ipv6CidrContains,
  ipv6CommonPrefixLen,
  ipv6Equal,
  ipv6IsV4Mapped,
  ipv6Scope,
  parseCidr,
  Scope,
} from "../wire/ip_address.ts";

// ---------------------------------------------------------------- policy table

/** One row of the policy table (RFC 6724 §2.1). */
export interface PolicyEntry {
  /** The prefix, 16 bytes. */
  readonly prefix: Uint8Array;
  /** Its length in bits, 0 to 128. */
  readonly prefixLen: number;
  /** Precedence: higher is preferred as a destination (§6 rule 6). */
  readonly precedence: number;
  /** Label: a source and a destination with equal labels are a good pair (§5 rule 6, §6 rule 5). */
  readonly label: number;
}

/** A policy table: looked up by longest matching prefix (RFC 6724 §2.1). Row order does not matter. */
export type PolicyTable = readonly PolicyEntry[];

/**
 * Build a policy table from text rows `[prefix, precedence, label]`, as
 * `ip addrlabel` and the RFC print them.
 *
 * @param rows e.g. `[["::1/128", 50, 0], ["::/0", 40, 1]]`
 * @returns the table
 * @throws AddressParseError when a prefix is not `ADDRESS/LEN` with clear host bits;
 *   RangeError when it is an IPv4 prefix
 * @example
 * ```ts
 * import { policyTable } from "./address_selection.ts";
 * const t = policyTable([["::/0", 40, 1], ["2001:db8::/32", 45, 20]]);
 * console.assert(t.length === 2);
 * ```
 */
export function policyTable(
  rows: readonly (readonly [prefix: string, precedence: number, label: number])[],
): PolicyTable {
  return rows.map(([text, precedence, label]) => {
    const c = parseCidr(text);
    if (c.family !== 6) throw new RangeError(`Policy prefix "${text}" is not an IPv6 prefix`);
    return { prefix: c.address, prefixLen: c.prefixLen, precedence, label };
  });
}

/**
 * The default policy table of RFC 6724 §2.1 (the same rows Linux's
 * `ip addrlabel` starts with).
 */
export const DEFAULT_POLICY_TABLE: PolicyTable = policyTable([
  ["::1/128", 50, 0],
  ["::/0", 40, 1],
  ["::ffff:0:0/96", 35, 4],
  ["2002::/16", 30, 2],
  ["2001::/32", 5, 5],
  ["fc00::/7", 3, 13],
  ["::/96", 1, 3],
  ["fec0::/10", 1, 11],
  ["3ffe::/16", 1, 12],
]);

/** Label given to an address no row of a custom table matches (Linux's IPV6_ADDR_LABEL_DEFAULT plays the same part). */
export const NO_LABEL = -1;

/**
 * The row of `table` whose prefix matches `a` longest (RFC 6724 §2.1), or
 * null when none does (only possible in a custom table without `::/0`).
 */
export function policyLookup(table: PolicyTable, a: Uint8Array): PolicyEntry | null {
  let best: PolicyEntry | null = null;
  for (const e of table) {
    if (
      (best === null || e.prefixLen > best.prefixLen) &&
      ipv6CommonPrefixLen(e.prefix, a) >= e.prefixLen
    ) best = e;
  }
  return best;
}

/** Precedence(a) of RFC 6724 §2.1; 0 when no row matches. */
export function precedenceOf(a: Uint8Array, table: PolicyTable = DEFAULT_POLICY_TABLE): number {
  return policyLookup(table, a)?.precedence ?? 0;
}

/** Label(a) of RFC 6724 §2.1; {@link NO_LABEL} when no row matches. */
export function labelOf(a: Uint8Array, table: PolicyTable = DEFAULT_POLICY_TABLE): number {
  return policyLookup(table, a)?.label ?? NO_LABEL;
}

// ---------------------------------------------------------------- scope

/**
 * Scope(a) as address selection uses it: RFC 6724 §3.1 for IPv6 (multicast
 * scope field; link-local unicast and loopback are link-local; fec0::/10 is
 * site-local; the rest global) and §3.2 for IPv4-mapped addresses
 * (127.0.0.0/8 and 169.254.0.0/16 are link-local, every other IPv4 address
 * — private ranges included — is global).
 */
export function selectionScope(a: Uint8Array): number {
  if (ipv6IsV4Mapped(a)) {
    const b0 = a[12]!;
    if (b0 === 127 || (b0 === 169 && a[13] === 254)) return Scope.LINK_LOCAL;
    return Scope.GLOBAL;
  }
  return ipv6Scope(a);
}

/**
 * CommonPrefixLen(S, D) of RFC 6724 §2.2: the number of leading bits `s`
 * and `d` share, "up to the length of S's prefix" — so it never exceeds
 * `sPrefixLen` (e.g. CommonPrefixLen(fe80::1, fe80::2) is 64 for a /64).
 */
export function commonPrefixLen(s: Uint8Array, sPrefixLen: number, d: Uint8Array): number {
  return Math.min(ipv6CommonPrefixLen(s, d), sPrefixLen);
}

// ---------------------------------------------------------------- source selection (§5)

/** An address assigned to a NIC, offered to source selection. */
export interface CandidateAddress {
  /** The address, 16 bytes (an IPv4 address as `::ffff:a.b.c.d`). */
  address: Uint8Array;
  /** Prefix length of the address's on-link subnet, counted on the 128-bit form (so 192.0.2.1/24 is 120). */
  prefixLen: number;
  /** The NIC the address is assigned to. */
  nicId: number;
  /** RFC 4862 §5.5.4 state; "duplicate" is an address whose DAD failed (Linux's "dadfailed"). */
  state: "tentative" | "preferred" | "deprecated" | "duplicate";
  /** A temporary (privacy) address of RFC 8981; false or absent for a public one. */
  temporary?: boolean;
}

/** An IPv6 prefix (an `Ipv6Cidr` fits). */
export interface Ipv6PrefixLike {
  /** The prefix, 16 bytes. */
  readonly address: Uint8Array;
  /** Its length in bits. */
  readonly prefixLen: number;
}

/** Inputs of source address selection besides the destination and the candidates. */
export interface SourceSelectionOptions {
  /**
   * The NIC the packet will leave by. Rule 5 prefers its addresses; and
   * RFC 6724 §4 confines a destination of link-local (or smaller) scope to
   * addresses on the same link, so when this is given only that NIC's
   * addresses are candidates for such a destination.
   */
  outNicId?: number | undefined;
  /**
   * Rule 7: prefer temporary addresses over public ones. Default `true`,
   * RFC 6724's default. RFC 6724 §5 requires a way to reverse it; Linux's
   * default effectively does (it makes no temporary addresses unless
   * `use_tempaddr` ≥ 1, and prefers them only with `use_tempaddr=2`), so a
   * caller mirroring `use_tempaddr=1` passes `false`.
   */
  preferTemporary?: boolean;
  /** The policy table; default {@link DEFAULT_POLICY_TABLE}. */
  policy?: PolicyTable;
  /**
   * Rule 5.5: the prefixes the selected next hop advertised (e.g. the
   * Prefix Information options of its Router Advertisement). Candidates
   * inside one are preferred. Absent: the rule is skipped.
   */
  nextHopPrefixes?: readonly Ipv6PrefixLike[] | undefined;
}

/** True when `c` may be used as a source at all (RFC 6724 §4, RFC 4862 §5.4: never a tentative or duplicate address). */
export function isUsableSource(c: CandidateAddress): boolean {
  return c.state === "preferred" || c.state === "deprecated";
}

function inAny(prefixes: readonly Ipv6PrefixLike[], a: Uint8Array): boolean {
  for (const p of prefixes) if (ipv6CidrContains(p, a)) return true;
  return false;
}

/**
 * Compare two candidate source addresses for destination `dst` by the rules
 * of RFC 6724 §5, applied in order until one decides.
 *
 * @returns a negative number when `sa` is preferred, a positive one when
 *   `sb` is, 0 when no rule decides; the magnitude is the deciding rule
 *   (1, 2, 3, 5, 5.5, 6, 7 or 8). Rule 4 never decides (no Mobile IPv6).
 * @example
 * ```ts
 * import { compareSourceAddresses } from "./address_selection.ts";
 * import { parseIpv6 } from "../wire/ip_address.ts";
 * const c = (a: string) => ({ address: parseIpv6(a), prefixLen: 64, nicId: 1, state: "preferred" as const });
 * const r = compareSourceAddresses(parseIpv6("2001:db8:1::1"), c("2001:db8:1::2"), c("2001:db8:3::2"));
 * console.assert(r === -8); // rule 8, longest matching prefix, prefers the first
 * ```
 */
export function compareSourceAddresses(
  dst: Uint8Array,
  sa: CandidateAddress,
  sb: CandidateAddress,
  opts: SourceSelectionOptions = {},
): number {
  // Rule 1: prefer same address.
  const aSame = ipv6Equal(sa.address, dst), bSame = ipv6Equal(sb.address, dst);
  if (aSame !== bSame) return aSame ? -1 : 1;

  // Rule 2: prefer appropriate scope — the RFC's exact wording:
  // if Scope(SA) < Scope(SB): prefer SB if Scope(SA) < Scope(D), else SA;
  // if Scope(SB) < Scope(SA): prefer SA if Scope(SB) < Scope(D), else SB.
  const scA = selectionScope(sa.address), scB = selectionScope(sb.address);
  if (scA !== scB) {
    const scD = selectionScope(dst);
    if (scA < scB) return scA < scD ? 2 : -2;
    return scB < scD ? -2 : 2;
  }

  // Rule 3: avoid deprecated addresses.
  const aDep = sa.state === "deprecated", bDep = sb.state === "deprecated";
  if (aDep !== bDep) return aDep ? 3 : -3;

  // Rule 4: prefer home addresses — no Mobile IPv6 here, nothing to do.

  // Rule 5: prefer the outgoing interface.
  if (opts.outNicId !== undefined) {
    const aOut = sa.nicId === opts.outNicId, bOut = sb.nicId === opts.outNicId;
    if (aOut !== bOut) return aOut ? -5 : 5;
  }

  // Rule 5.5: prefer addresses in a prefix advertised by the next hop.
  if (opts.nextHopPrefixes !== undefined) {
    const aHop = inAny(opts.nextHopPrefixes, sa.address);
    const bHop = inAny(opts.nextHopPrefixes, sb.address);
    if (aHop !== bHop) return aHop ? -5.5 : 5.5;
  }

  // Rule 6: prefer matching label.
  const policy = opts.policy ?? DEFAULT_POLICY_TABLE;
  const lD = labelOf(dst, policy);
  const aLab = labelOf(sa.address, policy) === lD, bLab = labelOf(sb.address, policy) === lD;
  if (aLab !== bLab) return aLab ? -6 : 6;

  // Rule 7: prefer temporary addresses (or public ones, when reversed).
  const aTmp = sa.temporary === true, bTmp = sb.temporary === true;
  if (aTmp !== bTmp) {
    const preferTmp = opts.preferTemporary ?? true;
    return aTmp === preferTmp ? -7 : 7;
  }

  // Rule 8: use longest matching prefix, CommonPrefixLen capped at the
  // source's own prefix length (§2.2).
  const cplA = commonPrefixLen(sa.address, sa.prefixLen, dst);
  const cplB = commonPrefixLen(sb.address, sb.prefixLen, dst);
  if (cplA !== cplB) return cplA > cplB ? -8 : 8;

  return 0;
}

/**
 * Choose the source address for `dst` (RFC 6724 §5).
 *
 * The candidate set (§4) is `candidates` less the tentative and duplicate
 * addresses, less the addresses of the other family (IPv4-mapped
 * candidates serve IPv4-mapped destinations only, and the reverse), and —
 * when `opts.outNicId` is given and Scope(dst) is link-local or smaller —
 * less the addresses of other NICs. Addresses of a smaller scope than the
 * destination stay candidates: rule 2 ranks them last, and RFC 6724 §10.2's
 * second example relies on fe80::1 being chosen for a global destination
 * when it is the only IPv6 address.
 *
 * The candidates are ranked by {@link compareSourceAddresses}; when no rule
 * decides (the RFC leaves the tie-break to the implementation) the one
 * listed first wins.
 *
 * @param dst the destination, 16 bytes
 * @param candidates the addresses of the node
 * @param opts outgoing NIC, temporary-address preference, policy, next-hop prefixes
 * @returns the chosen candidate, or null when there is none
 * @example
 * ```ts
 * import { selectSourceAddress } from "./address_selection.ts";
 * import { formatIpv6, parseIpv6 } from "../wire/ip_address.ts";
 * const c = (a: string) => ({ address: parseIpv6(a), prefixLen: 64, nicId: 1, state: "preferred" as const });
 * const s = selectSourceAddress(parseIpv6("2001:db8:1::1"), [c("fe80::1"), c("2001:db8:3::1")]);
 * console.assert(s !== null && formatIpv6(s.address) === "2001:db8:3::1");
 * ```
 */
export function selectSourceAddress(
  dst: Uint8Array,
  candidates: readonly CandidateAddress[],
  opts: SourceSelectionOptions = {},
): CandidateAddress | null {
  const dMapped = ipv6IsV4Mapped(dst);
  const linkOnly = opts.outNicId !== undefined && selectionScope(dst) <= Scope.LINK_LOCAL;
  let best: CandidateAddress | null = null;
  for (const c of candidates) {
    if (!isUsableSource(c)) continue;
    if (ipv6IsV4Mapped(c.address) !== dMapped) continue;
    if (linkOnly && c.nicId !== opts.outNicId) continue;
    if (best === null || compareSourceAddresses(dst, c, best, opts) < 0) best = c;
  }
  return best;
}

// ---------------------------------------------------------------- destination ordering (§6)

/** What the routing table says about one destination, for {@link sortDestinations}. */
export interface DestinationRoute {
  /** The NIC the destination is reached by (source rule 5 and §4's link restriction). */
  nicId: number;
  /** Prefixes the next hop toward the destination advertised (source rule 5.5). */
  nextHopPrefixes?: readonly Ipv6PrefixLike[];
}

/** Inputs of destination address ordering besides the destinations and the candidates. */
export interface DestinationSortOptions {
  /** Rule 7 of source selection; see {@link SourceSelectionOptions.preferTemporary}. Default `true`. */
  preferTemporary?: boolean;
  /** The policy table; default {@link DEFAULT_POLICY_TABLE}. */
  policy?: PolicyTable;
  /**
   * Route lookup for a destination. `null` means it is known to be
   * unreachable (destination rule 1). Absent: every destination is taken
   * as reachable, with no outgoing NIC known.
   */
  route?: (dst: Uint8Array) => DestinationRoute | null;
}

/** A destination with the source address selection chose for it. */
export interface SortedDestination {
  /** The destination (the same object the caller passed). */
  address: Uint8Array;
  /** Source(D), or null when it is undefined (no candidate) . */
  source: CandidateAddress | null;
  /** False when the route lookup said the destination is unreachable. */
  reachable: boolean;
}

interface DstInfo {
  readonly entry: SortedDestination;
  readonly index: number;
  readonly scope: number;
  readonly label: number;
  readonly precedence: number;
  readonly mapped: boolean;
  readonly srcScope: number;
  readonly srcLabel: number;
  readonly cpl: number;
}

/**
 * Order destinations by RFC 6724 §6 and report the source chosen for each
 * (by {@link selectSourceAddress}). Rules, in order: 1 avoid unusable
 * destinations (unreachable, or no source); 2 prefer matching scope;
 * 3 avoid a deprecated source; 4 prefer home addresses (no-op); 5 prefer
 * matching label; 6 prefer higher precedence; 7 prefer native transport
 * (no-op); 8 prefer smaller scope; 9 longest matching prefix (same family
 * only); 10 keep the original order. Rules that read Source(D) are skipped
 * for a pair where either source is undefined.
 *
 * @param dsts destinations, 16 bytes each (IPv4 as `::ffff:a.b.c.d`)
 * @param candidates the node's addresses
 * @param opts policy, temporary-address preference, route lookup
 * @returns a new array, best destination first
 */
export function sortDestinationsDetailed(
  dsts: readonly Uint8Array[],
  candidates: readonly CandidateAddress[],
  opts: DestinationSortOptions = {},
): SortedDestination[] {
  const policy = opts.policy ?? DEFAULT_POLICY_TABLE;
  const infos: DstInfo[] = dsts.map((d, index) => {
    const route = opts.route === undefined ? undefined : opts.route(d);
    const srcOpts: SourceSelectionOptions = { policy };
    if (opts.preferTemporary !== undefined) srcOpts.preferTemporary = opts.preferTemporary;
    if (route) {
      srcOpts.outNicId = route.nicId;
      if (route.nextHopPrefixes !== undefined) srcOpts.nextHopPrefixes = route.nextHopPrefixes;
    }
    const source = route === null ? null : selectSourceAddress(d, candidates, srcOpts);
    const pe = policyLookup(policy, d);
    return {
      entry: { address: d, source, reachable: route !== null },
      index,
      scope: selectionScope(d),
      label: pe?.label ?? NO_LABEL,
      precedence: pe?.precedence ?? 0,
      mapped: ipv6IsV4Mapped(d),
      srcScope: source === null ? -1 : selectionScope(source.address),
      srcLabel: source === null ? NO_LABEL : labelOf(source.address, policy),
      cpl: source === null ? 0 : commonPrefixLen(source.address, source.prefixLen, d),
    };
  });
  infos.sort(compareDestinations);
  return infos.map((i) => i.entry);
}

/**
 * Order destinations by RFC 6724 §6; see {@link sortDestinationsDetailed}
 * for the rules and for the source chosen for each.
 *
 * @example
 * ```ts
 * import { sortDestinations } from "./address_selection.ts";
 * import { formatIpv6, parseIpv6 } from "../wire/ip_address.ts";
 * const c = (a: string) => ({ address: parseIpv6(a), prefixLen: 64, nicId: 1, state: "preferred" as const });
 * const out = sortDestinations(
 *   [parseIpv6("2001:db8:1::1"), parseIpv6("fe80::1")],
 *   [c("2001:db8:1::2"), c("fe80::2")],
 * );
 * console.assert(formatIpv6(out[0]!) === "fe80::1"); // rule 8, prefer smaller scope
 * ```
 */
export function sortDestinations(
  dsts: readonly Uint8Array[],
  candidates: readonly CandidateAddress[],
  opts: DestinationSortOptions = {},
): Uint8Array[] {
  return sortDestinationsDetailed(dsts, candidates, opts).map((e) => e.address);
}

function compareDestinations(a: DstInfo, b: DstInfo): number {
  const sa = a.entry.source, sb = b.entry.source;
  // Rule 1: avoid unusable destinations.
  const aOk = a.entry.reachable && sa !== null, bOk = b.entry.reachable && sb !== null;
  if (aOk !== bOk) return aOk ? -1 : 1;

  const bothSourced = sa !== null && sb !== null;
  if (bothSourced) {
    // Rule 2: prefer matching scope.
    const aM = a.scope === a.srcScope, bM = b.scope === b.srcScope;
    if (aM !== bM) return aM ? -1 : 1;
    // Rule 3: avoid deprecated addresses.
    const aDep = sa.state === "deprecated", bDep = sb.state === "deprecated";
    if (aDep !== bDep) return aDep ? 1 : -1;
    // Rule 4: prefer home addresses — no Mobile IPv6 here.
    // Rule 5: prefer matching label.
    const aL = a.label === a.srcLabel, bL = b.label === b.srcLabel;
    if (aL !== bL) return aL ? -1 : 1;
  }
  // Rule 6: prefer higher precedence.
  if (a.precedence !== b.precedence) return a.precedence > b.precedence ? -1 : 1;
  // Rule 7: prefer native transport — no encapsulation here.
  // Rule 8: prefer smaller scope.
  if (a.scope !== b.scope) return a.scope < b.scope ? -1 : 1;
  // Rule 9: use longest matching prefix, when both are of one family.
  if (bothSourced && a.mapped === b.mapped && a.cpl !== b.cpl) return a.cpl > b.cpl ? -1 : 1;
  // Rule 10: otherwise, leave the order unchanged.
  return a.index - b.index;
}
