/**
 * A caching DNS forwarder for the LAN (dnsmasq's other half), over UDP:
 * it answers on port 53 of the interfaces it serves, from a static hosts
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
 * SOA's minimum (RFC 2308 §5), at most `maxNegativeTtl`.
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
 * An answer with TC set is passed to the client as it came (the client
 * retries over TCP, which this forwarder does not serve yet).
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Udp, UdpDatagram, UdpEndpoint } from "../../transport/udp.ts";
import type { Clock, Timer } from "../../clock.ts";
import type { Random } from "../../random.ts";
import { TokenBucket } from "../../token_bucket.ts";
import {
  DNS_PORT,
  DnsClass,
  DnsFlag,
  type DnsMessage,
  dnsNameKey,
  DnsRcode,
  DnsType,
  DnsWriter,
  parseDns,
  readDnsName,
  setDnsId,
} from "../../wire/dns.ts";
import { formatIpAddress, type IpAddress } from "../../wire/ip_address.ts";

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
};

/** What the forwarder needs of a stack. */
export interface DnsForwarderHost {
  readonly udp: Udp;
  readonly clock: Clock;
  readonly random: Random;
}

interface CacheEntry {
  /** The answer as received (ID and TTLs rewritten on each use). */
  bytes: Uint8Array;
  stored: number;
  expires: number;
  /** Where its records' TTLs are, and what they were (so a hit needs no parse). */
  ttlOffsets: number[];
  ttls: number[];
  /** Where its question's name starts. */
  questionOffset: number;
}

interface Upstream {
  address: IpAddress;
  timeouts: number;
  downUntil: number;
  /** Smoothed round-trip time of its answers (ms), or null before the first. */
  rttMs: number | null;
}

interface Pending {
  ep: UdpEndpoint;
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
  client: { address: IpAddress; port: number; nic: Nic | null; local: IpAddress };
  key: string;
  tried: Set<Upstream>;
  timer: Timer;
  sentAt: number;
}

/** The UDP payload size tapir offers in the OPT records it writes (the DNS Flag Day 2020 value). */
const EDNS_UDP_SIZE = 1232;

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
  readonly #cache = new Map<string, CacheEntry>();
  readonly #pending = new Set<Pending>();
  #upstreams: Upstream[] = [];
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #out = new Uint8Array(1232);
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
   * Serve on port 53 of each of `nics` (null: every interface, as a
   * wildcard socket).
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
      }
    } catch (e) {
      for (const l of this.#listeners) l.close();
      throw e;
    }
  }

  /** Take new settings (a reload): the cache stays, upstreams start fresh. */
  configure(settings: DnsForwarderSettings): void {
    this.#settings = settings;
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
    for (const p of this.#pending) {
      p.timer.cancel();
      p.ep.close();
    }
    this.#pending.clear();
  }

  // ------------------------------------------------------------ queries

  #query(d: UdpDatagram): void {
    const s = this.stats;
    // A view: the query is copied only when it is forwarded (answers here are built at once).
    const data = d.buffer.data.subarray(d.payloadOffset, d.payloadOffset + d.payloadLength);
    const m = parseDns(data);
    if (typeof m === "string") {
      s.malformedDropped++;
      return;
    }
    if ((m.flags & DnsFlag.QR) !== 0) {
      s.notQueryDropped++;
      return;
    }
    s.queriesReceived++;
    const client = {
      address: srcOf(d),
      port: d.srcPort,
      nic: d.nic,
      local: dstOf(d),
    };
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
        return;
      }
    }
    if (m.opcode !== 0 || m.questions.length !== 1) {
      s.unsupportedQueries++;
      return this.#error(data, m.opcode !== 0 ? DnsRcode.NOTIMP : DnsRcode.FORMERR, client);
    }
    const q = m.questions[0]!;
    const name = dnsNameKey(q.name);
    if (this.#answerLocally(data, q, name, m.edns, client)) return;
    const dnssecOk = m.edns?.dnssecOk ?? false;
    const key = `${name}/${q.type}/${q.class}/${dnssecOk ? 1 : 0}`;
    const hit = this.#cache.get(key);
    const now = this.host.clock.now();
    if (hit !== undefined && hit.expires > now) {
      // Most recently used goes to the end.
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      const out = hit.bytes.slice();
      setDnsId(out, m.id);
      const age = Math.floor((now - hit.stored) / 1000);
      const v = new DataView(out.buffer);
      for (let i = 0; i < hit.ttlOffsets.length; i++) {
        v.setUint32(hit.ttlOffsets[i]!, Math.max(0, hit.ttls[i]! - age));
      }
      copyQuestionCase(out, hit.questionOffset, data, q.offset, q.end);
      s.cacheHits++;
      return this.#reply(out, client);
    }
    if (hit !== undefined) this.#cache.delete(key);
    this.#forward({
      query: data.slice(),
      qname: name,
      qtype: q.type,
      qclass: q.class,
      qOffset: q.offset,
      qEnd: q.end,
      client,
      key,
    });
  }

  /** Hosts and `local` domains; true when answered. */
  #answerLocally(
    data: Uint8Array,
    q: { name: string; type: number; class: number; offset: number; end: number },
    name: string,
    edns: DnsMessage["edns"],
    client: Pending["client"],
  ): boolean {
    const st = this.#settings;
    let addrs = this.#hosts.get(name);
    let ptr = q.type === DnsType.PTR ? this.#ptr.get(name) : undefined;
    if ((addrs === undefined || ptr === undefined) && this.leaseNames !== null) {
      // DHCP clients by the hostnames they sent (dnsmasq's lease names): `host` and `host.DOMAIN`.
      const idx = this.#leaseIndex(this.leaseNames());
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

  #forward(
    o: Omit<Pending, "ep" | "id" | "server" | "tried" | "timer" | "sentAt">,
    tried = new Set<Upstream>(),
  ): void {
    const now = this.host.clock.now();
    const ups = this.#currentUpstreams();
    const server = ups.find((u) => !tried.has(u) && u.downUntil <= now) ??
      ups.find((u) => !tried.has(u));
    if (server === undefined || this.#pending.size >= MAX_PENDING) {
      this.stats.servfailSent++;
      return this.#error(o.query, DnsRcode.SERVFAIL, o.client);
    }
    tried.add(server);
    const id = this.host.random.uint32() & 0xffff;
    let ep: UdpEndpoint | null = null;
    const p = { ...o, id, server, tried } as Pending;
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
    if (ep === null) {
      this.stats.servfailSent++;
      return this.#error(o.query, DnsRcode.SERVFAIL, o.client);
    }
    p.ep = ep;
    const q = o.query.slice();
    setDnsId(q, id);
    p.timer = this.host.clock.schedule(this.#settings.timeoutMs, () => this.#timeout(p));
    p.sentAt = this.host.clock.now();
    this.#pending.add(p);
    this.stats.forwarded++;
    if (!ep.send(server.address.address, DNS_PORT, q)) this.stats.sendFailed++;
  }

  #timeout(p: Pending): void {
    this.#finish(p);
    this.stats.upstreamTimeouts++;
    const u = p.server;
    u.timeouts++;
    if (u.timeouts >= this.#settings.deadAfter) {
      u.downUntil = this.host.clock.now() + this.#settings.retryDownMs;
    }
    this.#forward(p, p.tried);
  }

  #finish(p: Pending): void {
    p.timer.cancel();
    p.ep.close();
    this.#pending.delete(p);
  }

  /** An answer on a forwarded query's socket: the right server, ID and question, or dropped. */
  #answer(p: Pending, d: UdpDatagram): void {
    const data = d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength);
    const m = parseDns(data);
    if (typeof m === "string") {
      this.stats.badAnswerDropped++;
      return;
    }
    const q = m.questions[0];
    if (
      d.srcPort !== DNS_PORT || m.id !== p.id || (m.flags & DnsFlag.QR) === 0 ||
      m.questions.length !== 1 || q === undefined || dnsNameKey(q.name) !== p.qname ||
      q.type !== p.qtype || q.class !== p.qclass
    ) {
      this.stats.spoofDropped++;
      return;
    }
    this.#finish(p);
    p.server.timeouts = 0;
    p.server.downUntil = 0;
    const now = this.host.clock.now();
    const rtt = now - p.sentAt;
    p.server.rttMs = p.server.rttMs === null ? rtt : 0.8 * p.server.rttMs + 0.2 * rtt;
    const tc = (m.flags & DnsFlag.TC) !== 0;
    if (!tc && this.#settings.cacheSize > 0) {
      const ttl = cacheTtl(data, m, this.#settings.maxNegativeTtl);
      if (ttl > 0) {
        while (this.#cache.size >= this.#settings.cacheSize) this.#evictOne();
        const records = [...m.answers, ...m.authority, ...m.additional];
        this.#cache.set(p.key, {
          // `data` is this answer's own copy; the ID and question case edited below are
          // rewritten on every hit anyway.
          bytes: data,
          stored: now,
          expires: now + ttl * 1000,
          ttlOffsets: records.map((r) => r.ttlOffset),
          ttls: records.map((r) => r.ttl),
          questionOffset: q.offset,
        });
      }
    }
    const clientId = (p.query[0]! << 8) | p.query[1]!;
    setDnsId(data, clientId);
    copyQuestionCase(data, q.offset, p.query, p.qOffset, p.qEnd);
    this.stats.answersForwarded++;
    this.#reply(data, p.client);
  }

  #evictOne(): void {
    const oldest = this.#cache.keys().next();
    if (oldest.done) return;
    this.#cache.delete(oldest.value);
    this.stats.cacheEvictions++;
  }

  /** An answer with only the header and question of `query`, and `rcode`. */
  #error(query: Uint8Array, rcode: number, client: Pending["client"]): void {
    const m = parseDns(query);
    const qEnd = typeof m === "string" ? 12 : (m.questions[0]?.end ?? 12);
    if (query.length < 12) return;
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

  #reply(out: Uint8Array, c: Pending["client"]): void {
    const ep = this.#listeners[0];
    if (ep === undefined) return;
    const ok = ep.send(c.address.address, c.port, out, {
      src: c.local.address,
      ...(c.nic !== null ? { nic: c.nic } : {}),
    });
    if (!ok) this.stats.sendFailed++;
  }
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

/** Put the client's spelling of the name (same bytes but for case) into the answer's question. */
function copyQuestionCase(
  out: Uint8Array,
  at: number,
  query: Uint8Array,
  qoff: number,
  qend: number,
): void {
  if (at < 0) return;
  const len = qend - 4 - qoff;
  if (at + len > out.length) return;
  for (let i = 0; i < len; i++) {
    const a = out[at + i]!, b = query[qoff + i]!;
    if ((a | 0x20) !== (b | 0x20)) return; // not the same name uncompressed: leave it
  }
  out.set(query.subarray(qoff, qoff + len), at);
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
