/**
 * Counters of the RA/SLAAC code, shared by the router side (ra.ts) and the
 * host side (slaac.ts) without either importing the other for them.
 *
 * @module
 */

/** Counters of the RA/SLAAC code (router and host sides). */
export interface RaStats {
  /** Unsolicited (periodic) multicast RAs sent. */
  unsolicitedSent: number;
  /** RAs sent in answer to a Router Solicitation (multicast or unicast). */
  solicitedSent: number;
  /** Final RAs with router lifetime 0 sent on shutdown (RFC 4861 §6.2.5). */
  finalSent: number;
  /** Solicitations received on an advertising interface. */
  solicitationsReceived: number;
  /** Solicitations that broke §6.1.1 (unspecified source with a link-layer option). */
  invalidSolicitationsDropped: number;
  /** Solicitations merged into an answer already scheduled. */
  solicitationsCoalesced: number;
  /** RAs of other routers that disagree with ours (§6.2.7). */
  inconsistentAdvertisements: number;
  /** Router Solicitations the host side sent. */
  solicitationsSent: number;
  /** RAs accepted by the host side. */
  advertisementsAccepted: number;
  /** RAs dropped by the host-side checks of §6.1.2, per reason in the name. */
  advertisementsNotLinkLocalDropped: number;
  advertisementsMalformedDropped: number;
  /** RAs on an interface where accept_ra is off. */
  advertisementsIgnored: number;
  /** RAs not parsed: over the interface's rate for their source (known router or not), an RA flood's. */
  advertisementsRateLimited: number;
  /** RAs whose link parameters (hop limit, reachable/retrans time, M/O, MTU) were not applied: a router not heard before, during an RA flood; or a Retrans Timer above 60 s. */
  linkParametersIgnored: number;
  /** New default routers not added: the interface is at `maxRouters`. */
  routersDropped: number;
  /** Default routers heard only once removed to make room for one that repeats its RAs (an RA flood's entries). */
  routersDisplaced: number;
  /** New prefixes not added: the interface is at `maxPrefixes`. */
  prefixesDropped: number;
  /** Prefixes heard only once removed (route and address) to make room for one its router repeats (an RA flood's entries). */
  prefixesDisplaced: number;
  /** SLAAC addresses not formed: the interface is at `maxAddresses`. */
  addressesDropped: number;
  /** Route Information options not installed: the interface is at `maxPrefixes` RA routes. */
  routesDropped: number;
  /** RDNSS/DNSSL entries not kept: the list is full. */
  dnsDropped: number;
  /** Prefix Information options ignored (RFC 4862 §5.5.3 (a)–(d)). */
  prefixesIgnored: number;
  /** Valid lifetimes capped or ignored by the two-hour rule (RFC 4862 §5.5.3 (e)). */
  twoHourRuleApplied: number;
  /** MTU options ignored (below 1280 or above the link MTU). */
  mtuIgnored: number;
}
