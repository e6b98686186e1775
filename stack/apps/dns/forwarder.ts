/**
 * A caching DNS forwarder for the LAN (dnsmasq's other half), over UDP
 * and TCP: it answers on port 53 of the interfaces it serves, from a static hosts
 * table and `local` domains it never forwards, from its cache, or by
 * forwarding to an upstream resolver. DHCP clients are answered by the
 * names their leases carry (DHCPv4 hostnames, DHCPv6 Client FQDNs), forward
 * and reverse, as dnsmasq does.
 *
 * Answers pass through as the upstream sent them; the forwarder edits
 * bytes in place only: the ID, the question's letter case (the client's),
 * and a cached answer's TTLs (aged by the time it was held). The cache is
 * bounded (least recently used goes first, counted), keyed by name, type,
 * class and the DO bit, and keeps NXDOMAIN and NODATA answers for the
 * SOA's minimum (RFC 2308 §5), at most `maxNegativeTtl`. A UDP query whose
 * answer is cached is answered without a parse into objects or a string:
 * the query is read in place, its question hashed as DNS compares names,
 * and the cached wire image copied into one buffer with the ID, TTLs,
 * question case and OPT record patched; anything else takes the general
 * path, which answers the same bytes.
 *
 * RFC 5452 defences: each forwarded query gets a random ID and its own
 * socket on a random port, and an answer is taken only from the server
 * asked, on port 53, with that ID and the same question; anything else is
 * dropped and counted. An upstream that does not answer is marked down
 * after `deadAfter` timeouts in a row and tried again after `retryDownMs`.
 * A client that sends more than `rateLimit` queries per second (burst
 * `rateBurst`) is refused silently (counted), as dnsmasq's and unbound's
 * ratelimits do.
 *
 * TCP (RFC 1035 §4.2.2, RFC 7766): the forwarder listens on TCP port 53
 * where it listens on UDP. A connection carries any number of
 * length-prefixed queries, pipelined: each is answered as soon as its
 * answer is there (from the cache at once, from an upstream later), so
 * answers may leave in another order than their queries (RFC 7766
 * §6.2.1.1). At most `maxTcpClients` connections are open at once (more
 * are reset at once, counted), at most {@link TCP_PIPELINE} queries of one
 * connection are outstanding (then it is not read until answers leave),
 * and a connection with nothing outstanding for `tcpIdleMs` is closed
 * (RFC 7766 §6.2.3). A query that came over TCP is forwarded over TCP, as
 * dnsmasq does.
 *
 * Truncation: an upstream's UDP answer with TC set is asked again over
 * TCP of the same server (RFC 7766 §5, RFC 1035 §4.2.1; newer dnsmasq's
 * tcp_from_udp does the same), and the full answer is cached. A UDP client gets it whole
 * when it fits the client's size (512 bytes without EDNS, else its EDNS
 * UDP payload size, at most {@link EDNS_UDP_SIZE}); otherwise the header,
 * question and OPT record with TC set, and the client asks again over TCP,
 * where the cache answers. If the TCP attempt fails, the client gets the
 * truncated UDP answer as it came. Forwarded UDP queries offer upstreams at
 * most {@link EDNS_UDP_SIZE} bytes (dnsmasq's edns-packet-max).
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { IpAddr, Udp, UdpDatagram, UdpEndpoint } from "../../transport/udp.ts";
import type { Tcp, TcpListener } from "../../transport/tcp/tcp.ts";
import type { TcpConnection } from "../../transport/tcp/connection.ts";
import type { Clock, Timer } from "../../clock.ts";
import type { Random } from "../../random.ts";
import { TokenBucket } from "../../token_bucket.ts";
import {
  DNS_MAX_NAME,
  DNS_PORT,
  DnsClass,
  DnsFlag,
  type DnsMessage,
  dnsNameKey,
  DnsQueryView,
  DnsRcode,
  DnsType,
  DnsWriter,
  EDNS_DO,
  parseDns,
  readDnsName,
  readDnsQuery,
  setDnsId,
  walkDnsName,
} from "../../wire/dns.ts";
import { formatIpAddress, type IpAddress } from "../../wire/ip_address.ts";
import { dnsStreamFrame, DnsStreamReader } from "./_stream.ts";
import {
  AnswerCache,
  type AnswerKey,
  answerKey,
  answerKeyHash,
  type CachedAnswer,
} from "./_cache.ts";

/** What the forwarder serves and where it asks. */
export interface DnsForwarderSettings {
  /** Upstream resolvers, asked in order (the first that is up). */
  servers: IpAddress[];
  /** Cache entries (dnsmasq's cache-size); 0: no cache. */
  cacheSize: number;
  /** Names answered locally (A and AAAA; PTR for their addresses), lower case. */
  hosts: { name: string; addresses: IpAddress[] }[];
  /** Domains answered locally only (never forwarded): a name in them and not in `hosts` is NXDOMAIN. */
  local: string[];
  /** TTL of local answers, seconds. */
  localTtl: number;
  /** Upper bound of a negative answer's time in the cache, seconds (RFC 2308 §5 suggests 3 h). */
  maxNegativeTtl: number;
  /** Milliseconds to wait for an upstream before the next one is asked. */
  timeoutMs: number;
  /** Timeouts in a row after which an upstream is marked down. */
  deadAfter: number;
  /** Milliseconds an upstream stays down before it is asked again. */
  retryDownMs: number;
  /** Queries per second per client address (0: no limit), and the burst. */
  rateLimit: number;
  rateBurst: number;
  /** Milliseconds a client's TCP connection may stay with nothing outstanding before it is closed (RFC 7766 §6.2.3). */
  tcpIdleMs: number;
  /** Client TCP connections open at once; one more is reset at once (counted). */
  maxTcpClients: number;
}

/** Counters of one forwarder. */
export interface DnsForwarderStats {
  /** Queries received from clients. */
  queriesReceived: number;
  /** Queries answered from the cache. */
  cacheHits: number;
  /** Queries answered from hosts or local domains. */
  localAnswers: number;
  /** Queries sent upstream (retries to the next server included). */
  forwarded: number;
  /** Answers from upstreams passed to clients. */
  answersForwarded: number;
  /** SERVFAIL sent because no upstream answered (or none is configured). */
  servfailSent: number;
  /** Upstream queries that timed out. */
  upstreamTimeouts: number;
  /** Cache entries pushed out to make room (least recently used). */
  cacheEvictions: number;
  /** Client messages that do not parse. */
  malformedDropped: number;
  /** Client messages that are answers (QR set). */
  notQueryDropped: number;
  /** Queries with an opcode other than QUERY, or not one question: answered NOTIMP / FORMERR. */
  unsupportedQueries: number;
  /** Queries refused by the per-client rate limit. */
  rateLimitedDropped: number;
  /**
   * Answers on a forwarded query's socket with the wrong ID or for another
   * question (RFC 5452). Those from another address or port never reach
   * that socket, which is connected to the server's port 53: the UDP layer
   * counts them (unknown port).
   */
  spoofDropped: number;
  /** Upstream answers that do not parse. */
  badAnswerDropped: number;
  /** Replies the stack could not send. */
  sendFailed: number;
  /** Client TCP connections accepted on port 53. */
  tcpConnectionsAccepted: number;
  /** Client TCP connections reset at once because `maxTcpClients` were open. */
  tcpClientsRefused: number;
  /** Client TCP connections closed after `tcpIdleMs` with nothing outstanding (RFC 7766 §6.2.3). */
  tcpIdleClosed: number;
  /** Queries received over TCP (also counted in queriesReceived). */
  tcpQueriesReceived: number;
  /** Answers not sent because the client's TCP connection had closed. */
  tcpClientGoneDropped: number;
  /** Answers too large for a UDP client's payload size, sent as header, question and OPT with TC set. */
  truncatedAnswers: number;
  /** Upstream UDP answers with TC set, asked again over TCP of the same server. */
  tcRetries: number;
  /** TCP retries of truncated answers that failed (refused, reset, timed out): the truncated answer went to the client. */
  tcRetryFailed: number;
  /** Queries sent upstream over TCP (TC retries and clients' TCP queries). */
  tcpForwarded: number;
  /** Upstream TCP connections of clients' TCP queries that failed before an answer (refused, reset, closed): the next server is asked. */
  tcpUpstreamFailed: number;
}

function newStats(): DnsForwarderStats {
  return {
    queriesReceived: 0,
    cacheHits: 0,
    localAnswers: 0,
    forwarded: 0,
    answersForwarded: 0,
    servfailSent: 0,
    upstreamTimeouts: 0,
    cacheEvictions: 0,
    malformedDropped: 0,
    notQueryDropped: 0,
    unsupportedQueries: 0,
    rateLimitedDropped: 0,
    spoofDropped: 0,
    badAnswerDropped: 0,
    sendFailed: 0,
    tcpConnectionsAccepted: 0,
    tcpClientsRefused: 0,
    tcpIdleClosed: 0,
    tcpQueriesReceived: 0,
    tcpClientGoneDropped: 0,
    truncatedAnswers: 0,
    tcRetries: 0,
    tcRetryFailed: 0,
    tcpForwarded: 0,
    tcpUpstreamFailed: 0,
  };
}

/** The defaults {@link DnsForwarder} takes for settings not given. */
export const DNS_FORWARDER_DEFAULTS: DnsForwarderSettings = {
  servers: [],
  cacheSize: 150,
  hosts: [],
  local: [],
  localTtl: 0,
  maxNegativeTtl: 10_800,
  timeoutMs: 2_000,
  deadAfter: 3,
  retryDownMs: 30_000,
  rateLimit: 0,
  rateBurst: 100,
  tcpIdleMs: 10_000,
  maxTcpClients: 20,
};

/** What the forwarder needs of a stack. */
export interface DnsForwarderHost {
  readonly udp: Udp;
  readonly tcp: Tcp;
  readonly clock: Clock;
  readonly random: Random;
}

interface Upstream {
  address: IpAddress;
  timeouts: number;
  downUntil: number;
  /** Smoothed round-trip time of its answers (ms), or null before the first. */
  rttMs: number | null;
}

/** A client's TCP connection to port 53. */
interface TcpClient {
  readonly conn: TcpConnection;
  readonly reader: DnsStreamReader;
  readonly address: IpAddress;
  readonly port: number;
  readonly local: IpAddress;
  /** Queries read whose answers have not been written (or dropped) yet. */
  outstanding: number;
  /** Framed answers waiting for room in the send buffer. */
  readonly queue: Uint8Array[];
  /** Clock ms of the last query read or answer written. */
  lastActive: number;
  timer: Timer | null;
  closed: boolean;
  /** True while its queries are being read (an answer written meanwhile does not read again). */
  reading: boolean;
}

/** Who asked, and how the answer goes back. */
interface Client {
  address: IpAddress;
  port: number;
  nic: Nic | null;
  local: IpAddress;
  /** The TCP connection the query came on; null for UDP. */
  tcp: TcpClient | null;
  /** The largest UDP answer it takes (RFC 6891 §6.2.5); unused for TCP. */
  udpLimit: number;
}

interface Pending {
  /** The UDP socket of a UDP attempt, or null. */
  ep: UdpEndpoint | null;
  /** The TCP connection of a TCP attempt, or null. */
  conn: TcpConnection | null;
  id: number;
  server: Upstream;
  /** The client's query, kept to answer it (and to retry). */
  query: Uint8Array;
  qname: string;
  qtype: number;
  qclass: number;
  /** Where the client's question name starts and the question ends in `query`. */
  qOffset: number;
  qEnd: number;
  /** Where the query's OPT UDP payload size is (-1: no OPT). */
  udpSizeOffset: number;
  client: Client;
  key: AnswerKey;
  /** The generation of local names under which the question was not local (see {@link CachedAnswer.localGen}). */
  localGen: number;
  tried: Set<Upstream>;
  timer: Timer;
  sentAt: number;
  /** A TC answer from UDP being asked again over TCP: passed on if that fails. */
  truncated: Uint8Array | null;
}

/**
 * The UDP payload size tapir offers in the OPT records it writes, the most
 * it sends a UDP client and the most it lets a forwarded query offer (the
 * DNS Flag Day 2020 value, dnsmasq's edns-packet-max).
 */
export const EDNS_UDP_SIZE = 1232;
/** A UDP answer's limit without EDNS (RFC 1035 §4.2.1), and the least an OPT may lower it to (RFC 6891 §6.2.5). */
const UDP_MIN = 512;
/** Queries of one TCP connection outstanding at once; the connection is not read past them. */
export const TCP_PIPELINE = 16;

/** Ephemeral ports a forwarded query is sent from (Linux's default ip_local_port_range). */
const PORT_MIN = 32768, PORT_MAX = 60999;
const MAX_PENDING = 4096;

/**
 * The DNS forwarder.
 *
 * @example
 * ```ts
 * import { Stack, ManualClock } from "../../mod.ts";
 * import { DnsForwarder } from "./forwarder.ts";
 * const s = new Stack({ clock: new ManualClock() });
 * const f = new DnsForwarder(s, [null], { servers: [] });
 * console.assert(f.stats.queriesReceived === 0);
 * f.close();
 * ```
 */
export class DnsForwarder {
  readonly stats: DnsForwarderStats = newStats();
  /** A service of the whole stack, not of one interface. */
  readonly nic: Nic | null = null;
  #settings!: DnsForwarderSettings;
  readonly #listeners: UdpEndpoint[] = [];
  readonly #tcpListeners: TcpListener[] = [];
  readonly #tcpClients = new Set<TcpClient>();
  readonly #cache = new AnswerCache();
  readonly #pending = new Set<Pending>();
  #upstreams: Upstream[] = [];
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #out = new Uint8Array(1232);
  /** The query view every UDP query is read into. */
  readonly #qv = new DnsQueryView();
  /** A question's key bytes (its name's labels, lower case) on the general path. */
  readonly #keyName = new Uint8Array(DNS_MAX_NAME);
  /** Where a cached answer is put together for a UDP client (the largest message and an OPT record). */
  readonly #answerBuf = new Uint8Array(0xffff + 11);
  /** A UDP client's IPv6 address and the one it asked, for the reply (copied from the query). */
  readonly #peer6 = new Uint8Array(16);
  readonly #local6 = new Uint8Array(16);
  /** The options of a cache hit's reply, rewritten for each. */
  readonly #replyOpts: { src: IpAddr; nic: Nic | undefined } = { src: 0, nic: undefined };
  /**
   * The generation of local names: changes when the settings do (hosts,
   * local domains) and when the lease-name source hands out another list.
   */
  #localGen = 0;
  /** The lease-name list last seen (null: none). */
  #leaseList: { name: string; address: IpAddress; domain: string | null }[] | null = null;
  #hosts = new Map<string, IpAddress[]>();
  /** `.DOMAIN` for each local domain. */
  #localSuffixes: string[] = [];
  #ptr = new Map<string, string>();
  /** Upstreams learned elsewhere (the WAN leases) when `servers` is empty, by address text. */
  readonly #learned = new Map<string, Upstream>();
  /**
   * Where upstreams come from when `servers` is empty (e.g. the DNS
   * servers of the WAN interfaces' DHCP leases); asked at each query.
   */
  upstreamSource: (() => IpAddress[]) | null = null;
  /**
   * The names of DHCP clients (hostname, its lease's address, the server's
   * domain), asked at each query: DHCPv4 leases answer A and in-addr.arpa
   * PTR, DHCPv6 ones AAAA and ip6.arpa PTR. The index is rebuilt when the
   * source hands out another list, so a source returns the same list
   * object until its leases change.
   */
  leaseNames: (() => { name: string; address: IpAddress; domain: string | null }[]) | null = null;

  /**
   * Serve on UDP and TCP port 53 of each of `nics` (null: every interface,
   * as a wildcard socket).
   *
   * @throws Deno.errors.AddrInUse when port 53 is taken there
   */
  constructor(
    readonly host: DnsForwarderHost,
    readonly nics: (Nic | null)[],
    settings: Partial<DnsForwarderSettings>,
  ) {
    this.configure({ ...DNS_FORWARDER_DEFAULTS, ...settings });
    try {
      for (const nic of nics) {
        this.#listeners.push(host.udp.bindSocket({
          family: 0,
          port: DNS_PORT,
          device: nic,
          onDatagram: (d) => this.#query(d),
        }));
        const l = host.tcp.listen({ family: 0, address: null, port: DNS_PORT, device: nic });
        this.#tcpListeners.push(l);
        l.onAcceptable = () => this.#accept(l);
      }
    } catch (e) {
      for (const l of this.#listeners) l.close();
      for (const l of this.#tcpListeners) l.close();
      throw e;
    }
  }

  /** Take new settings (a reload): the cache stays, upstreams start fresh. */
  configure(settings: DnsForwarderSettings): void {
    this.#settings = settings;
    this.#localGen++;
    this.#upstreams = settings.servers.map((address) => ({
      address,
      timeouts: 0,
      downUntil: 0,
      rttMs: null,
    }));
    this.#hosts = new Map();
    this.#ptr = new Map();
    this.#localSuffixes = settings.local.map((d) => `.${d}`);
    for (const h of settings.hosts) {
      const k = dnsNameKey(h.name.replace(/\.$/, ""));
      this.#hosts.set(k, [...(this.#hosts.get(k) ?? []), ...h.addresses]);
      for (const a of h.addresses) this.#ptr.set(reverseName(a), k);
    }
    while (this.#cache.size > settings.cacheSize) this.#evictOne();
  }

  get settings(): DnsForwarderSettings {
    return this.#settings;
  }

  /** Set the upstreams (e.g. from a WAN lease) without touching the rest. */
  setServers(servers: IpAddress[]): void {
    this.configure({ ...this.#settings, servers });
  }

  /** Entries in the cache now. */
  get cacheEntries(): number {
    return this.#cache.size;
  }

  /** Client TCP connections open now. */
  get tcpClients(): number {
    return this.#tcpClients.size;
  }

  /** Each upstream and whether it is up, for `show`. */
  upstreams(): { address: string; up: boolean; timeouts: number; rttMs: number | null }[] {
    const now = this.host.clock.now();
    return this.#currentUpstreams().map((u) => ({
      address: formatIpAddress(u.address),
      up: u.downUntil <= now,
      timeouts: u.timeouts,
      rttMs: u.rttMs === null ? null : Math.round(u.rttMs * 10) / 10,
    }));
  }

  close(): void {
    for (const l of this.#listeners) l.close();
    this.#listeners.length = 0;
    for (const l of this.#tcpListeners) l.close();
    this.#tcpListeners.length = 0;
    for (const t of [...this.#tcpClients]) this.#dropTcpClient(t, true);
    for (const p of this.#pending) this.#release(p);
    this.#pending.clear();
  }

  // ------------------------------------------------------------ queries

  #query(d: UdpDatagram): void {
    if (this.#answerFromCache(d)) return;
    // A view: the query is copied only when it is forwarded (answers here are built at once).
    const data = d.buffer.data.subarray(d.payloadOffset, d.payloadOffset + d.payloadLength);
    this.#handle(data, {
      address: srcOf(d),
      port: d.srcPort,
      nic: d.nic,
      local: dstOf(d),
      tcp: null,
      udpLimit: UDP_MIN,
    });
  }

  /** A query from a client over UDP or TCP: answered, forwarded, or dropped (counted). */
  #handle(data: Uint8Array, client: Client): void {
    const s = this.stats;
    const m = parseDns(data);
    if (typeof m === "string") {
      s.malformedDropped++;
      return this.#unanswered(client);
    }
    if ((m.flags & DnsFlag.QR) !== 0) {
      s.notQueryDropped++;
      return this.#unanswered(client);
    }
    s.queriesReceived++;
    if (client.tcp !== null) s.tcpQueriesReceived++;
    // RFC 6891 §6.2.5: without OPT 512 bytes; an OPT below 512 counts as 512; ours caps it.
    else if (m.edns !== null) {
      client.udpLimit = Math.min(EDNS_UDP_SIZE, Math.max(UDP_MIN, m.edns.udpSize));
    }
    const st = this.#settings;
    if (st.rateLimit > 0) {
      const k = formatIpAddress(client.address);
      let b = this.#buckets.get(k);
      if (b === undefined) {
        if (this.#buckets.size > 10_000) this.#buckets.clear();
        b = new TokenBucket(this.host.clock, st.rateLimit, st.rateBurst);
        this.#buckets.set(k, b);
      }
      if (!b.take()) {
        s.rateLimitedDropped++;
        return this.#unanswered(client);
      }
    }
    if (m.opcode !== 0 || m.questions.length !== 1) {
      s.unsupportedQueries++;
      return this.#error(data, m.opcode !== 0 ? DnsRcode.NOTIMP : DnsRcode.FORMERR, client);
    }
    const q = m.questions[0]!;
    const name = dnsNameKey(q.name);
    const leases = this.#syncLocalGen();
    if (this.#answerLocally(data, q, name, m.edns, client, leases)) return;
    const dnssecOk = m.edns?.dnssecOk ?? false;
    // The key: the name's labels as they are compared (parsed above, so the walk succeeds).
    const k = this.#keyName;
    walkDnsName(data, 0, data.length, q.offset, k, true);
    const klen = wireNameLength(k);
    const hash = answerKeyHash(k, klen, q.type, q.class, dnssecOk);
    const hit = this.#cache.find(k, klen, q.type, q.class, dnssecOk, hash);
    const now = this.host.clock.now();
    if (hit !== null && hit.expires > now) {
      // Most recently used goes to the end; not local under this generation.
      this.#cache.touch(hit);
      hit.localGen = this.#localGen;
      const edns = m.edns !== null;
      const n = composeCachedAnswer(
        this.#answerBuf,
        hit,
        m.id,
        data,
        q.offset,
        q.end,
        edns,
        edns && m.edns!.dnssecOk,
        now,
      );
      s.cacheHits++;
      return this.#reply(this.#answerBuf.slice(0, n), client);
    }
    if (hit !== null) this.#cache.delete(hit);
    this.#forward({
      query: data.slice(),
      qname: name,
      qtype: q.type,
      qclass: q.class,
      qOffset: q.offset,
      qEnd: q.end,
      udpSizeOffset: m.edns?.udpSizeOffset ?? -1,
      client,
      key: answerKey(k, klen, q.type, q.class, dnssecOk),
      localGen: this.#localGen,
    });
  }

  /**
   * A UDP query whose answer is in the cache, answered at once: the query
   * read in place (no parse into objects, no string), the cached wire
   * image copied with its ID, TTLs and question case patched, sent from
   * the address asked. False for anything else (malformed, not a plain
   * query, rate-limited clients, a miss, an expired entry, a question not
   * yet checked against the local names of this generation, an answer that
   * must be truncated): those take the general path ({@link #handle}),
   * which counts nothing twice since nothing was counted here.
   */
  #answerFromCache(d: UdpDatagram): boolean {
    if (this.#settings.rateLimit > 0 || this.#cache.size === 0) return false;
    const q = this.#qv;
    const b = d.buffer.data, base = d.payloadOffset;
    if (readDnsQuery(b, base, d.payloadLength, q) !== null) return false;
    if ((q.flags & DnsFlag.QR) !== 0 || q.opcode !== 0 || q.questions !== 1) return false;
    const hash = answerKeyHash(q.name, q.nameLength, q.qType, q.qClass, q.dnssecOk);
    const e = this.#cache.find(q.name, q.nameLength, q.qType, q.qClass, q.dnssecOk, hash);
    if (e === null) return false;
    const now = this.host.clock.now();
    if (e.expires <= now) return false;
    this.#syncLocalGen();
    if (e.localGen !== this.#localGen) return false;
    // RFC 6891 §6.2.5, as #handle: without OPT 512 bytes; an OPT below 512 counts as 512.
    const limit = q.edns ? Math.min(EDNS_UDP_SIZE, Math.max(UDP_MIN, q.udpSize)) : UDP_MIN;
    if (cachedAnswerLength(e, q.edns) > limit) return false;
    const ep = this.#listeners[0];
    if (ep === undefined) return false;
    const s = this.stats;
    s.queriesReceived++;
    this.#cache.touch(e);
    const out = this.#answerBuf;
    const n = composeCachedAnswer(
      out,
      e,
      q.id,
      b,
      base + q.qOffset,
      base + q.qEnd,
      q.edns,
      q.dnssecOk,
      now,
    );
    s.cacheHits++;
    const o = this.#replyOpts;
    o.nic = d.nic ?? undefined;
    let to: IpAddr;
    if (d.family === 4) {
      to = d.src;
      o.src = d.dst;
    } else {
      to = this.#peer6;
      to.set(b.subarray(d.src6Offset, d.src6Offset + 16));
      this.#local6.set(b.subarray(d.dst6Offset, d.dst6Offset + 16));
      o.src = this.#local6;
    }
    if (!ep.send(to, d.srcPort, out.subarray(0, n), o)) s.sendFailed++;
    return true;
  }

  /**
   * The lease-name list now, and the generation of local names moved on
   * when it is another list than last time.
   */
  #syncLocalGen(): { name: string; address: IpAddress; domain: string | null }[] | null {
    const list = this.leaseNames?.() ?? null;
    if (list !== this.#leaseList) {
      this.#leaseList = list;
      this.#localGen++;
    }
    return list;
  }

  /** Hosts and `local` domains; true when answered. */
  #answerLocally(
    data: Uint8Array,
    q: { name: string; type: number; class: number; offset: number; end: number },
    name: string,
    edns: DnsMessage["edns"],
    client: Client,
    leases: { name: string; address: IpAddress; domain: string | null }[] | null,
  ): boolean {
    const st = this.#settings;
    let addrs = this.#hosts.get(name);
    let ptr = q.type === DnsType.PTR ? this.#ptr.get(name) : undefined;
    if ((addrs === undefined || ptr === undefined) && leases !== null) {
      // DHCP clients by the hostnames they sent (dnsmasq's lease names): `host` and `host.DOMAIN`.
      const idx = this.#leaseIndex(leases);
      addrs ??= idx.names.get(name);
      if (q.type === DnsType.PTR) ptr ??= idx.ptrs.get(name);
    }
    const isLocal = st.local.includes(name) || this.#localSuffixes.some((d) => name.endsWith(d));
    if (addrs === undefined && ptr === undefined && !isLocal) return false;
    const id = (data[0]! << 8) | data[1]!;
    const rd = ((data[2]! << 8) | data[3]!) & DnsFlag.RD;
    const w = new DnsWriter(this.#out);
    const answers: [number, Uint8Array][] = [];
    if (addrs !== undefined && q.class === DnsClass.IN) {
      for (const a of addrs) {
        if (a.family === 4 && q.type === DnsType.A) {
          const n = a.address as number;
          answers.push([
            DnsType.A,
            new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]),
          ]);
        }
        if (a.family === 6 && q.type === DnsType.AAAA) {
          answers.push([DnsType.AAAA, (a.address as Uint8Array).slice()]);
        }
      }
    }
    // A name with names below it, or a local domain itself, exists (RFC 1034 §4.3.2, RFC 8020):
    // NOERROR with no data, not NXDOMAIN.
    const known = addrs !== undefined || ptr !== undefined || st.local.includes(name) ||
      [...this.#hosts.keys()].some((h) => h.endsWith(`.${name}`));
    const rcode = known ? DnsRcode.NOERROR : DnsRcode.NXDOMAIN;
    const count = answers.length + (ptr !== undefined ? 1 : 0);
    w.header({
      id,
      flags: DnsFlag.QR | DnsFlag.AA | rd | DnsFlag.RA | rcode,
      qd: 1,
      an: count,
      ar: edns !== null ? 1 : 0,
    });
    // The question as the client wrote it (its letter case).
    const text = readDnsName(data, q.offset);
    w.question(typeof text === "string" ? q.name : text.name, q.type, q.class);
    for (const [type, rdata] of answers) w.record(q.name, type, st.localTtl, rdata);
    if (ptr !== undefined) w.nameRecord(q.name, DnsType.PTR, st.localTtl, ptr);
    // RFC 6891 §6.1.1: a query with OPT gets one back (RFC 3225: the DO bit copied).
    if (edns !== null) w.opt(EDNS_UDP_SIZE, edns.dnssecOk);
    this.stats.localAnswers++;
    this.#reply(w.bytes().slice(), client);
    return true;
  }

  /** Lease names by name and by PTR name, built once per list the source hands out. */
  #leaseIndex(list: { name: string; address: IpAddress; domain: string | null }[]): {
    names: Map<string, IpAddress[]>;
    ptrs: Map<string, string>;
  } {
    if (this.#leaseIdx !== null && this.#leaseIdx.list === list) return this.#leaseIdx;
    const names = new Map<string, IpAddress[]>();
    const ptrs = new Map<string, string>();
    for (const l of list) {
      const h = dnsNameKey(l.name);
      const full = l.domain !== null ? `${h}.${dnsNameKey(l.domain.replace(/\.$/, ""))}` : h;
      for (const n of new Set([h, full])) names.set(n, [...(names.get(n) ?? []), l.address]);
      ptrs.set(reverseName(l.address), full);
    }
    this.#leaseIdx = { list, names, ptrs };
    return this.#leaseIdx;
  }
  #leaseIdx: {
    list: object;
    names: Map<string, IpAddress[]>;
    ptrs: Map<string, string>;
  } | null = null;

  /** The upstreams to ask: the configured ones, else those the source names now. */
  #currentUpstreams(): Upstream[] {
    if (this.#upstreams.length > 0 || this.upstreamSource === null) return this.#upstreams;
    const out: Upstream[] = [];
    for (const address of this.upstreamSource()) {
      const k = formatIpAddress(address);
      let u = this.#learned.get(k);
      if (u === undefined) {
        this.#learned.set(k, u = { address, timeouts: 0, downUntil: 0, rttMs: null });
      }
      out.push(u);
    }
    return out;
  }

  // ------------------------------------------------------------ upstreams

  /** Ask the next upstream not tried yet: over TCP for a TCP client (as dnsmasq), else UDP. */
  #forward(
    o: Omit<
      Pending,
      "ep" | "conn" | "id" | "server" | "tried" | "timer" | "sentAt" | "truncated"
    >,
    tried = new Set<Upstream>(),
  ): void {
    for (;;) {
      const now = this.host.clock.now();
      const ups = this.#currentUpstreams();
      const server = ups.find((u) => !tried.has(u) && u.downUntil <= now) ??
        ups.find((u) => !tried.has(u));
      if (server === undefined || this.#pending.size >= MAX_PENDING) {
        this.stats.servfailSent++;
        return this.#error(o.query, DnsRcode.SERVFAIL, o.client);
      }
      tried.add(server);
      const p: Pending = {
        ...o,
        id: this.host.random.uint32() & 0xffff,
        server,
        tried,
        ep: null,
        conn: null,
        timer: NO_TIMER,
        sentAt: now,
        truncated: null,
      };
      if (o.client.tcp !== null) {
        if (!this.#askTcp(p)) {
          // No connection to it at all (no route, no port): the next server.
          this.stats.tcpUpstreamFailed++;
          continue;
        }
      } else if (!this.#askUdp(p)) {
        this.stats.servfailSent++;
        return this.#error(o.query, DnsRcode.SERVFAIL, o.client);
      }
      p.timer = this.host.clock.schedule(this.#settings.timeoutMs, () => this.#timeout(p));
      this.#pending.add(p);
      this.stats.forwarded++;
      return;
    }
  }

  /** The query with the upstream ID (and an OPT payload size of at most ours). */
  #upstreamQuery(p: Pending): Uint8Array {
    const q = p.query.slice();
    setDnsId(q, p.id);
    const at = p.udpSizeOffset;
    if (at >= 0 && ((q[at]! << 8) | q[at + 1]!) > EDNS_UDP_SIZE) {
      q[at] = EDNS_UDP_SIZE >>> 8;
      q[at + 1] = EDNS_UDP_SIZE & 0xff;
    }
    return q;
  }

  /** Send `p` over UDP from a fresh random port (RFC 5452 §9.2); false when no port was free. */
  #askUdp(p: Pending): boolean {
    const server = p.server;
    let ep: UdpEndpoint | null = null;
    for (let i = 0; i < 16 && ep === null; i++) {
      const port = PORT_MIN + (this.host.random.uint32() % (PORT_MAX - PORT_MIN + 1));
      try {
        ep = this.host.udp.bindSocket({
          family: server.address.family,
          port,
          remote: { address: server.address.address, port: DNS_PORT },
          onDatagram: (d) => this.#answer(p, d),
        });
      } catch {
        // The port is taken: another.
      }
    }
    if (ep === null) return false;
    p.ep = ep;
    if (!ep.send(server.address.address, DNS_PORT, this.#upstreamQuery(p))) {
      this.stats.sendFailed++;
    }
    return true;
  }

  /**
   * Open a TCP connection to `p`'s server and send the query on it (RFC
   * 7766 §6.2.1: one query a connection here, closed after its answer);
   * false when no connection can be opened (no route or source).
   */
  #askTcp(p: Pending): boolean {
    let c: TcpConnection;
    try {
      c = this.host.tcp.connect({ remote: p.server.address.address, port: DNS_PORT });
    } catch {
      return false;
    }
    p.conn = c;
    c.setNoDelay(true);
    const reader = new DnsStreamReader();
    c.events = {
      onReadable: () => {
        while (p.conn === c) {
          const msg = reader.next(c);
          if (msg === null) break;
          this.#answerTcp(p, msg);
        }
        // The server ended its side without the answer.
        if (p.conn === c && c.readEof) this.#tcpFailed(p);
      },
      onClosed: () => {
        if (p.conn === c) this.#tcpFailed(p);
      },
    };
    // Queued now, sent once the handshake completes.
    c.write(dnsStreamFrame(this.#upstreamQuery(p)));
    this.stats.tcpForwarded++;
    return true;
  }

  #timeout(p: Pending): void {
    this.#finish(p);
    if (p.truncated !== null) {
      this.stats.tcRetryFailed++;
      return this.#passTruncated(p);
    }
    this.stats.upstreamTimeouts++;
    const u = p.server;
    u.timeouts++;
    if (u.timeouts >= this.#settings.deadAfter) {
      u.downUntil = this.host.clock.now() + this.#settings.retryDownMs;
    }
    this.#forward(p, p.tried);
  }

  /** A TCP attempt ended without an answer: a TC retry passes the truncated answer on, a TCP client's query goes to the next server. */
  #tcpFailed(p: Pending): void {
    if (!this.#pending.has(p)) return;
    this.#finish(p);
    if (p.truncated !== null) {
      this.stats.tcRetryFailed++;
      return this.#passTruncated(p);
    }
    this.stats.tcpUpstreamFailed++;
    this.#forward(p, p.tried);
  }

  /** Stop `p`'s timer and close its socket or connection (it stays in the table). */
  #release(p: Pending): void {
    p.timer.cancel();
    p.ep?.close();
    p.ep = null;
    const c = p.conn;
    p.conn = null;
    if (c !== null) c.close();
  }

  #finish(p: Pending): void {
    this.#release(p);
    this.#pending.delete(p);
  }

  /** The checks every upstream answer passes (RFC 5452): answer, ID, one question, the same question. */
  #matches(p: Pending, m: DnsMessage): boolean {
    const q = m.questions[0];
    return m.id === p.id && (m.flags & DnsFlag.QR) !== 0 && m.questions.length === 1 &&
      q !== undefined && dnsNameKey(q.name) === p.qname && q.type === p.qtype &&
      q.class === p.qclass;
  }

  /** An answer on a forwarded query's socket: the right server, ID and question, or dropped. */
  #answer(p: Pending, d: UdpDatagram): void {
    const data = d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength);
    const m = parseDns(data);
    if (typeof m === "string") {
      this.stats.badAnswerDropped++;
      return;
    }
    if (d.srcPort !== DNS_PORT || !this.#matches(p, m)) {
      this.stats.spoofDropped++;
      return;
    }
    if ((m.flags & DnsFlag.TC) !== 0) {
      // RFC 7766 §5, RFC 1035 §4.2.1: the same question over TCP, to the same server.
      p.ep?.close();
      p.ep = null;
      p.timer.cancel();
      p.truncated = data;
      this.stats.tcRetries++;
      this.#noteAnswered(p, true);
      if (!this.#askTcp(p)) {
        this.#finish(p);
        this.stats.tcRetryFailed++;
        return this.#passTruncated(p);
      }
      p.timer = this.host.clock.schedule(this.#settings.timeoutMs, () => this.#timeout(p));
      return;
    }
    this.#deliver(p, data, m, true);
  }

  /** A message on a forwarded query's TCP connection. */
  #answerTcp(p: Pending, data: Uint8Array): void {
    const m = parseDns(data);
    if (typeof m === "string") {
      this.stats.badAnswerDropped++;
      return;
    }
    if (!this.#matches(p, m)) {
      this.stats.spoofDropped++;
      return;
    }
    this.#deliver(p, data, m, false);
  }

  /** The server answered: it is up (and, over UDP, its round trip is a sample). */
  #noteAnswered(p: Pending, rtt: boolean): void {
    p.server.timeouts = 0;
    p.server.downUntil = 0;
    if (!rtt) return;
    const sample = this.host.clock.now() - p.sentAt;
    p.server.rttMs = p.server.rttMs === null ? sample : 0.8 * p.server.rttMs + 0.2 * sample;
  }

  /** A matching answer: cached (unless truncated), then given to the client with its ID and case. */
  #deliver(p: Pending, data: Uint8Array, m: DnsMessage, udp: boolean): void {
    this.#finish(p);
    // A TC retry's round trip is the UDP one (already noted).
    if (p.truncated === null) this.#noteAnswered(p, udp);
    const q = m.questions[0]!;
    const now = this.host.clock.now();
    const tc = (m.flags & DnsFlag.TC) !== 0;
    if (!tc && this.#settings.cacheSize > 0) {
      const ttl = cacheTtl(data, m, this.#settings.maxNegativeTtl);
      if (ttl > 0) {
        while (this.#cache.size >= this.#settings.cacheSize) this.#evictOne();
        const records = [...m.answers, ...m.authority, ...m.additional];
        const a: CachedAnswer = {
          // `data` is this answer's own copy; the ID and question case edited below are
          // rewritten on every hit anyway.
          bytes: data,
          stored: now,
          expires: now + ttl * 1000,
          ttlOffsets: records.map((r) => r.ttlOffset),
          ttls: records.map((r) => r.ttl),
          questionOffset: q.offset,
          opt: optRecord(data, m),
          localGen: p.localGen,
        };
        this.#cache.set(p.key, a);
      }
    }
    const clientId = (p.query[0]! << 8) | p.query[1]!;
    setDnsId(data, clientId);
    copyQuestionCase(data, data.length, q.offset, p.query, p.qOffset, p.qEnd);
    this.stats.answersForwarded++;
    this.#reply(data, p.client);
  }

  /** The truncated UDP answer of a failed TCP retry, as it came (the client asks over TCP itself). */
  #passTruncated(p: Pending): void {
    const data = p.truncated!;
    setDnsId(data, (p.query[0]! << 8) | p.query[1]!);
    const m = parseDns(data);
    if (typeof m !== "string" && m.questions[0] !== undefined) {
      copyQuestionCase(data, data.length, m.questions[0].offset, p.query, p.qOffset, p.qEnd);
    }
    this.stats.answersForwarded++;
    this.#reply(data, p.client);
  }

  #evictOne(): void {
    const oldest = this.#cache.oldest();
    if (oldest === null) return;
    this.#cache.delete(oldest);
    this.stats.cacheEvictions++;
  }

  /** An answer with only the header and question of `query`, and `rcode`. */
  #error(query: Uint8Array, rcode: number, client: Client): void {
    const m = parseDns(query);
    const qEnd = typeof m === "string" ? 12 : (m.questions[0]?.end ?? 12);
    if (query.length < 12) return this.#unanswered(client);
    const out = query.slice(0, typeof m === "string" || m.questions.length !== 1 ? 12 : qEnd);
    const flags = ((query[2]! << 8) | query[3]!) & (DnsFlag.RD | 0x7800);
    const f = flags | DnsFlag.QR | DnsFlag.RA | rcode;
    out[2] = f >>> 8;
    out[3] = f & 0xff;
    const qd = out.length > 12 ? 1 : 0;
    const edns = typeof m === "string" ? null : m.edns;
    out.set([0, qd, 0, 0, 0, 0, 0, edns !== null ? 1 : 0], 4);
    if (edns === null) return this.#reply(out, client);
    // RFC 6891 §6.1.1: with the OPT record the query had (our UDP size, its DO bit).
    const w = new DnsWriter(new Uint8Array(out.length + 11));
    w.buf.set(out);
    const opt = new DnsWriter(new Uint8Array(11)).opt(EDNS_UDP_SIZE, edns.dnssecOk).bytes();
    w.buf.set(opt, out.length);
    this.#reply(w.buf, client);
  }

  /** Send an answer to its client: on its TCP connection, or over UDP cut to its size. */
  #reply(out: Uint8Array, c: Client): void {
    if (c.tcp !== null) return this.#tcpAnswer(c.tcp, out);
    if (out.length > c.udpLimit) {
      // RFC 2181 §9, RFC 6891 §7: TC set, no partial RRsets; the client asks over TCP.
      const cut = truncateAnswer(out);
      if (cut !== null) {
        out = cut;
        this.stats.truncatedAnswers++;
      }
    }
    const ep = this.#listeners[0];
    if (ep === undefined) return;
    const ok = ep.send(c.address.address, c.port, out, {
      src: c.local.address,
      ...(c.nic !== null ? { nic: c.nic } : {}),
    });
    if (!ok) this.stats.sendFailed++;
  }

  // ------------------------------------------------------------ TCP clients

  /** Take the connections the listener has ready; past `maxTcpClients`, reset them. */
  #accept(l: TcpListener): void {
    for (;;) {
      const c = l.accept();
      if (c === null) return;
      if (this.#tcpClients.size >= this.#settings.maxTcpClients) {
        this.stats.tcpClientsRefused++;
        c.abort();
        continue;
      }
      this.stats.tcpConnectionsAccepted++;
      // Answers leave at once, not after the previous one's ACK (Nagle would hold them).
      c.setNoDelay(true);
      const t: TcpClient = {
        conn: c,
        reader: new DnsStreamReader(),
        address: ipAddressOf(c.remote),
        port: c.remotePort,
        local: ipAddressOf(c.local),
        outstanding: 0,
        queue: [],
        lastActive: this.host.clock.now(),
        timer: null,
        closed: false,
        reading: false,
      };
      this.#tcpClients.add(t);
      c.events = {
        onReadable: () => this.#tcpRead(t),
        onWritable: () => this.#tcpFlush(t),
        onClosed: () => this.#dropTcpClient(t, false),
      };
      this.#armIdle(t, this.#settings.tcpIdleMs);
      this.#tcpRead(t);
    }
  }

  /** Read and handle whole queries while fewer than {@link TCP_PIPELINE} are outstanding and no answer waits for room. */
  #tcpRead(t: TcpClient): void {
    if (t.closed || t.reading) return;
    t.reading = true;
    while (!t.closed && t.outstanding < TCP_PIPELINE && t.queue.length === 0) {
      const msg = t.reader.next(t.conn);
      if (msg === null) break;
      t.lastActive = this.host.clock.now();
      t.outstanding++;
      this.#handle(msg, {
        address: t.address,
        port: t.port,
        nic: null,
        local: t.local,
        tcp: t,
        udpLimit: UDP_MIN,
      });
    }
    t.reading = false;
    this.#tcpMaybeDone(t);
  }

  /** The client ended its side (RFC 7766 §6.2.4 lets it): close once every answer is out. */
  #tcpMaybeDone(t: TcpClient): void {
    if (!t.closed && t.conn.readEof && t.outstanding === 0 && t.queue.length === 0) {
      this.#dropTcpClient(t, false);
    }
  }

  /** A query of `c` that gets no answer (dropped): one less outstanding on its connection. */
  #unanswered(c: Client): void {
    if (c.tcp === null) return;
    c.tcp.outstanding--;
  }

  /** Write an answer to a TCP client (framed), queueing what the send buffer does not take. */
  #tcpAnswer(t: TcpClient, out: Uint8Array): void {
    t.outstanding--;
    if (t.closed) {
      this.stats.tcpClientGoneDropped++;
      return;
    }
    t.lastActive = this.host.clock.now();
    const frame = dnsStreamFrame(out);
    if (t.queue.length > 0) {
      t.queue.push(frame);
      return;
    }
    const n = t.conn.write(frame);
    if (n < frame.length) t.queue.push(frame.subarray(n));
    // Room for more of its queries now (unless they are being read already).
    if (!t.reading) this.#tcpRead(t);
  }

  /** Room in the send buffer: write what waits, then read on. */
  #tcpFlush(t: TcpClient): void {
    if (t.closed) return;
    while (t.queue.length > 0) {
      if (!t.conn.canWrite) return;
      const f = t.queue[0]!;
      const n = t.conn.write(f);
      if (n > 0) t.lastActive = this.host.clock.now();
      if (n < f.length) {
        t.queue[0] = f.subarray(n);
        return;
      }
      t.queue.shift();
    }
    this.#tcpRead(t);
  }

  /**
   * The idle timer: a connection with nothing outstanding upstream and no
   * query read nor answer byte taken for `tcpIdleMs` is closed (RFC 7766
   * §6.2.3), reset when answers still wait for a client that stopped
   * reading. It is re-armed when it fires, never rescheduled per query.
   */
  #armIdle(t: TcpClient, ms: number): void {
    t.timer = this.host.clock.schedule(ms, () => {
      t.timer = null;
      if (t.closed) return;
      const idle = this.#settings.tcpIdleMs;
      const left = t.lastActive + idle - this.host.clock.now();
      if (t.outstanding > 0) return this.#armIdle(t, idle);
      if (left > 0) return this.#armIdle(t, left);
      this.stats.tcpIdleClosed++;
      this.#dropTcpClient(t, t.queue.length > 0);
    });
  }

  /** Forget a client connection: closed (FIN) or, with `reset`, aborted. */
  #dropTcpClient(t: TcpClient, reset: boolean): void {
    if (t.closed) return;
    t.closed = true;
    t.timer?.cancel();
    t.timer = null;
    t.queue.length = 0;
    this.#tcpClients.delete(t);
    if (reset) t.conn.abort();
    else t.conn.close();
  }
}

/** Where `m`'s OPT record starts and ends in `b` (its owner the root, one byte), or null. */
function optRecord(b: Uint8Array, m: DnsMessage): [number, number] | null {
  if (m.edns === null) return null;
  const at = m.edns.udpSizeOffset;
  if (at < 3 || b[at - 3] !== 0) return null;
  return [at - 3, at + 8 + ((b[at + 6]! << 8) | b[at + 7]!)];
}

/**
 * How long the cached answer `e` is for a query with (`edns`) or without
 * an OPT record: the cache serves both alike. RFC 6891 §7: none for a query
 * without one (taken off when it is the last record, as it nearly always
 * is); RFC 6891 §6.1.1: one (ours, the query's DO bit) for a query with one.
 */
function cachedAnswerLength(e: CachedAnswer, edns: boolean): number {
  const b = e.bytes, opt = e.opt;
  const ar = (b[10]! << 8) | b[11]!;
  if (!edns && opt !== null && opt[1] === b.length && ar > 0) return opt[0];
  if (edns && opt === null && ar < 0xffff) return b.length + 11;
  return b.length;
}

/**
 * Put the cached answer `e` for a query into `out` (at least
 * `e.bytes.length + 11` long): its bytes with the query's ID, its TTLs aged
 * by the seconds it was held, the question in the client's letter case
 * (`query[qOffset, qEnd)`), and the OPT record as {@link cachedAnswerLength}
 * says.
 *
 * @returns the answer's length in `out`
 */
function composeCachedAnswer(
  out: Uint8Array,
  e: CachedAnswer,
  id: number,
  query: Uint8Array,
  qOffset: number,
  qEnd: number,
  edns: boolean,
  dnssecOk: boolean,
  now: number,
): number {
  const b = e.bytes;
  out.set(b);
  out[0] = id >>> 8;
  out[1] = id & 0xff;
  const age = Math.floor((now - e.stored) / 1000);
  const offs = e.ttlOffsets, ttls = e.ttls;
  for (let i = 0; i < offs.length; i++) {
    const at = offs[i]!, t = Math.max(0, ttls[i]! - age);
    out[at] = t >>> 24;
    out[at + 1] = (t >>> 16) & 0xff;
    out[at + 2] = (t >>> 8) & 0xff;
    out[at + 3] = t & 0xff;
  }
  copyQuestionCase(out, b.length, e.questionOffset, query, qOffset, qEnd);
  const ar = (b[10]! << 8) | b[11]!;
  const n = cachedAnswerLength(e, edns);
  if (n < b.length) {
    out[10] = (ar - 1) >>> 8;
    out[11] = (ar - 1) & 0xff;
  } else if (n > b.length) {
    // Our OPT record (RFC 6891 §6.1.2): root, OPT, our UDP size, the DO bit, no options.
    const at = b.length;
    out[at] = 0;
    out[at + 1] = 0;
    out[at + 2] = DnsType.OPT;
    out[at + 3] = EDNS_UDP_SIZE >>> 8;
    out[at + 4] = EDNS_UDP_SIZE & 0xff;
    out[at + 5] = 0;
    out[at + 6] = 0;
    out[at + 7] = dnssecOk ? EDNS_DO >>> 8 : 0;
    out[at + 8] = 0;
    out[at + 9] = 0;
    out[at + 10] = 0;
    out[10] = (ar + 1) >>> 8;
    out[11] = (ar + 1) & 0xff;
  }
  return n;
}

/** The length of the wire name at `b[0..]` (its labels and the root label). */
function wireNameLength(b: Uint8Array): number {
  let i = 0;
  while (b[i] !== 0) i += 1 + b[i]!;
  return i + 1;
}

/** A timer that is not set (a pending query's before it is armed). */
const NO_TIMER: Timer = { cancel() {} };

/**
 * The answer cut to its header, question and OPT record, with TC set and
 * no other records (RFC 2181 §9: no partial RRsets; RFC 6891 §7: the OPT
 * stays, with its extended RCODE); null when it does not parse.
 */
export function truncateAnswer(b: Uint8Array): Uint8Array | null {
  const m = parseDns(b);
  if (typeof m === "string") return null;
  const qEnd = m.questions.length === 1 ? m.questions[0]!.end : 12;
  let opt: Uint8Array | null = null;
  if (m.edns !== null) {
    const at = optRecord(b, m);
    opt = at !== null
      ? b.subarray(at[0], at[1])
      : new DnsWriter(new Uint8Array(11)).opt(EDNS_UDP_SIZE, m.edns.dnssecOk).bytes();
  }
  const out = new Uint8Array(qEnd + (opt?.length ?? 0));
  out.set(b.subarray(0, qEnd));
  if (opt !== null) out.set(opt, qEnd);
  out[2]! |= DnsFlag.TC >>> 8;
  out.set([0, qEnd > 12 ? 1 : 0, 0, 0, 0, 0, 0, opt !== null ? 1 : 0], 4);
  return out;
}

/** A transport address as an {@link IpAddress}. */
function ipAddressOf(a: IpAddr): IpAddress {
  return typeof a === "number" ? { family: 4, address: a } : { family: 6, address: a };
}

/** Seconds an answer may be cached: its smallest TTL, or for NXDOMAIN/NODATA the SOA's (RFC 2308 §5). */
function cacheTtl(b: Uint8Array, m: DnsMessage, maxNeg: number): number {
  if (m.rcode !== DnsRcode.NOERROR && m.rcode !== DnsRcode.NXDOMAIN) return 0;
  if (m.rcode === DnsRcode.NOERROR && m.answers.length > 0) {
    return Math.min(...m.answers.map((r) => r.ttl));
  }
  // Negative: the SOA in authority, min(its TTL, its MINIMUM field).
  const soa = m.authority.find((r) => r.type === DnsType.SOA);
  if (soa === undefined) return 0;
  const end = soa.rdataOffset + soa.rdataLength;
  if (soa.rdataLength < 22 || end > b.length) return 0;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const minimum = v.getUint32(end - 4);
  return Math.min(soa.ttl, minimum, maxNeg);
}

/**
 * Put the client's spelling of the name (same bytes but for case) into the
 * answer's question at `out[at..]`, the answer being `outLength` bytes.
 */
function copyQuestionCase(
  out: Uint8Array,
  outLength: number,
  at: number,
  query: Uint8Array,
  qoff: number,
  qend: number,
): void {
  if (at < 0) return;
  const len = qend - 4 - qoff;
  if (at + len > outLength) return;
  for (let i = 0; i < len; i++) {
    const a = out[at + i]!, b = query[qoff + i]!;
    if ((a | 0x20) !== (b | 0x20)) return; // not the same name uncompressed: leave it
  }
  for (let i = 0; i < len; i++) out[at + i] = query[qoff + i]!;
}

function srcOf(d: UdpDatagram): IpAddress {
  return d.family === 4
    ? { family: 4, address: d.src }
    : { family: 6, address: d.buffer.data.slice(d.src6Offset, d.src6Offset + 16) };
}

function dstOf(d: UdpDatagram): IpAddress {
  return d.family === 4
    ? { family: 4, address: d.dst }
    : { family: 6, address: d.buffer.data.slice(d.dst6Offset, d.dst6Offset + 16) };
}

/** The PTR name of an address (RFC 1035 §3.5, RFC 3596 §2.5), lower case. */
export function reverseName(a: IpAddress): string {
  if (a.family === 4) {
    const n = a.address as number;
    return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}.in-addr.arpa`;
  }
  const b = a.address as Uint8Array;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) {
    nibbles.push((b[i]! & 15).toString(16), (b[i]! >>> 4).toString(16));
  }
  return `${nibbles.join(".")}.ip6.arpa`;
}
