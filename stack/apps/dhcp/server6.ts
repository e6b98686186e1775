/**
 * A DHCPv6 server (RFC 8415) for one interface: addresses (IA_NA) from
 * pools and delegated prefixes (IA_PD) from prefix pools, the four-message
 * exchange and Rapid Commit, RENEW and REBIND, RELEASE, DECLINE, CONFIRM
 * and INFORMATION-REQUEST, the DNS servers and search list of RFC 3646
 * when the client asks for them (ORO), the client's name from its Client
 * FQDN option (RFC 4704: kept with the address lease, answered with the
 * name and the flags that say the server does the DNS update, as dnsmasq
 * does, the DNS forwarder answering for it), and leases made durable in a
 * {@link LeaseStore} before the REPLY that grants them leaves (one sync per
 * burst, as the DHCPv4 server's group commit).
 *
 * A delegated prefix is routed: while its lease is bound the server keeps
 * a route for it via the requesting router's link-local address on this
 * interface (source `dhcp`, as odhcpd and the DHCPv6-PD servers of home
 * routers do), so traffic for the delegated network is forwarded to it.
 *
 * It binds UDP port 547 on the interface (as Kea and dnsmasq do with
 * SO_BINDTODEVICE), joins All_DHCP_Relay_Agents_and_Servers (ff02::1:2) and
 * answers from its link-local address to the client's source address and
 * port. Message validation is RFC 8415 §16: a Solicit, Confirm, Rebind or
 * Information-request sent to a unicast address is dropped; a Request,
 * Renew, Release or Decline sent to a unicast address (this server never
 * sends the Server Unicast option) gets UseMulticast (§18.3.2). Through
 * relay agents (RELAY-FORW, §19) it serves the link of the innermost
 * relay's link-address when that is one of this interface's prefixes: the
 * answer goes back in one RELAY-REPL per relay (hop count, addresses and
 * Interface-Id repeated) to the outermost relay's port 547, and a
 * delegated prefix is routed via that relay.
 *
 * Leases are {@link LeaseRecord}s: `address` is the address, or the prefix
 * as `prefix/len`; `clientId` the client's DUID as colon hex; `mac` the MAC
 * of a DUID-LL or DUID-LLT, else empty; `iaid` and `ia` (`na` or `pd`)
 * name the IA; `via` is the router a delegated prefix is routed to;
 * `hostname` the first label of an address lease's Client FQDN.
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Udp, UdpDatagram, UdpEndpoint } from "../../transport/udp.ts";
import type { Clock, Timer } from "../../clock.ts";
import type { Ipv6 } from "../../ipv6/ipv6.ts";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  decodeDomainList,
  DHCPV6_SERVER_PORT,
  Dhcpv6MessageType,
  Dhcpv6Option,
  type Dhcpv6OptionView,
  Dhcpv6Status,
  Dhcpv6Writer,
  duidLl,
  duidMac,
  encodeDomainList,
  findOption,
  hexColon,
  parseDhcpv6,
  parseIa,
  parseIaAddr,
  parseIaPrefix,
  parseOro,
  sameDuid,
} from "../../wire/dhcpv6.ts";
import { formatIpv6, ipv6Masked, parseIpv6 } from "../../wire/ip_address.ts";
import { DHCPV6_DNR_OPTION, type DnrInstance, encodeDhcpv6Dnr } from "../../wire/dnr.ts";
import { formatMac } from "../../wire/mac_address.ts";
import { GroupCommit, isLeaseHostname, type LeaseRecord, type LeaseStore } from "./lease_store.ts";
import { OFFER_HOLD_MS } from "./server4.ts";

/** An inclusive range of addresses to hand out (16 bytes each). */
export interface Dhcpv6Pool {
  start: Uint8Array;
  end: Uint8Array;
}

/** Prefixes of `delegatedLen` bits to delegate, carved out of `prefix/prefixLen`. */
export interface Dhcpv6PdPool {
  prefix: Uint8Array;
  prefixLen: number;
  delegatedLen: number;
}

/** What one interface's DHCPv6 server hands out. */
export interface Dhcpv6ServerSettings {
  pools: Dhcpv6Pool[];
  pdPools: Dhcpv6PdPool[];
  /** Preferred lifetime, seconds (T1 and T2 are 0.5 and 0.8 of it, RFC 8415 §21.4). */
  preferredLifetime: number;
  /** Valid lifetime, seconds (the lease time). */
  validLifetime: number;
  /** Option 23 (RFC 3646), sent when asked for. */
  dnsServers: Uint8Array[];
  /** Option 24, sent when asked for. */
  domains: string[];
  /** Answer a SOLICIT with Rapid Commit by a REPLY (RFC 8415 §18.3.1). */
  rapidCommit: boolean;
  /** Option 7 in ADVERTISE (0 to 255; 255 makes the client take this server at once); 0: not sent. */
  preference: number;
  /** Seconds a DECLINEd address stays out of the pools. */
  declineTime: number;
  /** Option 103 (RFC 8910): the captive-portal API URI, sent when asked for. */
  captivePortal?: string;
  /** OPTION_V6_DNR (RFC 9463 §4): encrypted DNS resolvers, one option each, sent when asked for. */
  dnr?: DnrInstance[];
}

/** Counters of one DHCPv6 server. */
export interface Dhcpv6ServerStats {
  /** SOLICIT messages received. */
  solicitReceived: number;
  /** REQUEST messages received. */
  requestReceived: number;
  /** CONFIRM messages received. */
  confirmReceived: number;
  /** RENEW messages received. */
  renewReceived: number;
  /** REBIND messages received. */
  rebindReceived: number;
  /** RELEASE messages received. */
  releaseReceived: number;
  /** DECLINE messages received. */
  declineReceived: number;
  /** INFORMATION-REQUEST messages received. */
  informationRequestReceived: number;
  /** ADVERTISE messages sent. */
  advertisesSent: number;
  /** REPLY messages sent. */
  repliesSent: number;
  /** IAs answered with NoAddrsAvail or NoPrefixAvail (the pools are used up). */
  poolExhausted: number;
  /** Messages that do not parse (short header, option overrun). */
  malformedDropped: number;
  /** Relayed messages for a link this interface does not serve (the innermost relay's link-address is on none of its prefixes). */
  relayOtherLinkDropped: number;
  /** Messages of a type a server does not take (ADVERTISE, REPLY, RECONFIGURE, RELAY-REPL, unknown). */
  unknownMessageTypeDropped: number;
  /** Messages without a Client Identifier where one is required, or with a Server Identifier where none may be (RFC 8415 §16). */
  invalidDropped: number;
  /** Messages whose Server Identifier names another server. */
  otherServerDropped: number;
  /** Solicit, Confirm, Rebind and Information-request sent to a unicast address (RFC 8415 §16). */
  unicastDropped: number;
  /** CONFIRMs with no addresses in them (RFC 8415 §18.3.3: no reply). */
  confirmWithoutAddressDropped: number;
  /** Messages that arrived while the interface had no usable link-local address to answer from. */
  noLinkLocalDropped: number;
  /** REPLYs not sent because a lease could not be written to the lease store. */
  leaseWriteFailedDropped: number;
  /** Replies the stack could not send (no buffer, link down). */
  sendFailed: number;
}

function newStats(): Dhcpv6ServerStats {
  return {
    solicitReceived: 0,
    requestReceived: 0,
    confirmReceived: 0,
    renewReceived: 0,
    rebindReceived: 0,
    releaseReceived: 0,
    declineReceived: 0,
    informationRequestReceived: 0,
    advertisesSent: 0,
    repliesSent: 0,
    poolExhausted: 0,
    malformedDropped: 0,
    relayOtherLinkDropped: 0,
    unknownMessageTypeDropped: 0,
    invalidDropped: 0,
    otherServerDropped: 0,
    unicastDropped: 0,
    confirmWithoutAddressDropped: 0,
    noLinkLocalDropped: 0,
    leaseWriteFailedDropped: 0,
    sendFailed: 0,
  };
}

/** A DHCPv6 lease as `show leases` lists it. */
export interface Dhcpv6LeaseInfo extends LeaseRecord {
  interface: string;
  expired: boolean;
}

/** What the server needs of a stack (its public layers). */
export interface Dhcpv6ServerHost {
  readonly udp: Udp;
  readonly ipv6: Ipv6;
  readonly clock: Clock;
}

type IaKind = "na" | "pd";

/** One lease: an address (`len` 128) or a delegated prefix. */
interface Binding {
  key: string;
  value: bigint;
  len: number;
  rec: LeaseRecord;
}

interface Offer {
  key: string;
  until: number;
}

/** What the client sent, and where to answer. */
interface Request {
  type: number;
  xid: number;
  options: Dhcpv6OptionView[];
  duid: Uint8Array;
  duidHex: string;
  mac: string;
  src: Uint8Array;
  srcPort: number;
  oro: number[];
  /** The relays it came through, outermost first (empty: from the link itself). */
  relays: RelayHop[];
  /** Its Client FQDN option (RFC 4704), read: the flags and the host label; null without one. */
  fqdn: { flags: number; host: string } | null;
  /** Where the answer goes: the client, or the outermost relay's port 547. */
  dst: Uint8Array;
  dstPort: number;
  /** The next hop towards the client (a delegated prefix's route). */
  via: Uint8Array;
}

/** One RELAY-FORW a message came in: what its RELAY-REPL repeats. */
interface RelayHop {
  hopCount: number;
  link: Uint8Array;
  peer: Uint8Array;
  interfaceId: Uint8Array | null;
}

/** The counter of each message type a server takes. */
const RECEIVED: Readonly<Record<number, keyof Dhcpv6ServerStats>> = {
  [Dhcpv6MessageType.SOLICIT]: "solicitReceived",
  [Dhcpv6MessageType.REQUEST]: "requestReceived",
  [Dhcpv6MessageType.CONFIRM]: "confirmReceived",
  [Dhcpv6MessageType.RENEW]: "renewReceived",
  [Dhcpv6MessageType.REBIND]: "rebindReceived",
  [Dhcpv6MessageType.RELEASE]: "releaseReceived",
  [Dhcpv6MessageType.DECLINE]: "declineReceived",
  [Dhcpv6MessageType.INFORMATION_REQUEST]: "informationRequestReceived",
};

/** Relays a message may have come through (RFC 8415 §7.6 HOP_COUNT_LIMIT is 8). */
const MAX_RELAYS = 32;

/** One IA of a request, read. */
interface IaRequest {
  kind: IaKind;
  iaid: number;
  /** The addresses or prefixes the client listed (hints, or what it holds). */
  held: { value: bigint; len: number }[];
}

/** What goes back in one IA: granted values, zero-lifetime ones, or a status. */
interface IaAnswer {
  kind: IaKind;
  iaid: number;
  grant: { value: bigint; len: number; preferred: number; valid: number }[];
  status: { code: number; message: string } | null;
}

const MASK64 = 0xffff_ffff_ffff_ffffn;
const toBig = (b: Uint8Array): bigint => {
  const v = new DataView(b.buffer, b.byteOffset, 16);
  return (v.getBigUint64(0) << 64n) | v.getBigUint64(8);
};
const fromBig = (x: bigint): Uint8Array => {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, x >> 64n);
  v.setBigUint64(8, x & MASK64);
  return b;
};
const text = (value: bigint, len: number): string =>
  len === 128 ? formatIpv6(fromBig(value)) : `${formatIpv6(fromBig(value))}/${len}`;
/** Parse a lease record's address back (`addr` or `prefix/len`); null when it is not IPv6. */
const untext = (s: string): { value: bigint; len: number } | null => {
  const slash = s.indexOf("/");
  try {
    if (slash < 0) return { value: toBig(parseIpv6(s)), len: 128 };
    const len = Number(s.slice(slash + 1));
    if (!Number.isInteger(len) || len < 1 || len > 128) return null;
    return { value: toBig(parseIpv6(s.slice(0, slash))), len };
  } catch {
    return null;
  }
};

const MAX_U32 = 0xffffffff;
/** RFC 8910 §2.2: DHCPv6 option 103. */
const CAPTIVE_PORTAL_OPTION = 103;
/** RFC 4704 §4: DHCPv6 option 39, the Client FQDN. */
const CLIENT_FQDN_OPTION = 39;
/** RFC 4704 §4.1 flags: S (the server does the AAAA update), O (it overrode the client's S). */
const FQDN_S = 0x01, FQDN_O = 0x02;

/**
 * The flags and host label of a Client FQDN option (RFC 4704 §4): a
 * fully qualified name, or a partial one without the terminating zero
 * (§4.2); the host is its first label. Null when the name does not parse,
 * is empty (the client asks the server for one: this server has none to
 * give) or its first label is not a hostname.
 */
function parseClientFqdn(data: Uint8Array): { flags: number; host: string } | null {
  if (data.length < 2) return null;
  const name = data.subarray(1);
  const names = decodeDomainList(name) ?? decodeDomainList(Uint8Array.of(...name, 0));
  if (names === null || names.length !== 1) return null;
  const host = names[0]!.split(".")[0]!;
  return isLeaseHostname(host) ? { flags: data[0]!, host } : null;
}

/**
 * The DHCPv6 server of one interface.
 *
 * @example
 * ```ts
 * import { Stack, ManualClock } from "../../mod.ts";
 * import { MemoryLink } from "../../../link/mod.ts";
 * import { parseIpv6 } from "../../wire/mod.ts";
 * import { Dhcpv6Server } from "./server6.ts";
 * import { MemoryLeaseStore } from "./lease_store.ts";
 * const clock = new ManualClock();
 * const [a] = MemoryLink.pair({ clock });
 * const s = new Stack({ clock });
 * const nic = s.addNic(a, { name: "lan0", mac: new Uint8Array([2, 0, 0, 0, 0, 1]), ipv6: true });
 * const srv = new Dhcpv6Server(s, nic, {
 *   pools: [{ start: parseIpv6("2001:db8::100"), end: parseIpv6("2001:db8::1ff") }],
 *   pdPools: [], preferredLifetime: 3600, validLifetime: 7200, dnsServers: [], domains: [],
 *   rapidCommit: false, preference: 0, declineTime: 600,
 * }, { store: new MemoryLeaseStore(), wallClock: () => clock.now() });
 * console.assert(srv.leases().length === 0);
 * srv.close();
 * ```
 */
export class Dhcpv6Server {
  readonly stats: Dhcpv6ServerStats = newStats();
  /** This server's DUID (DUID-LL of the interface's MAC). */
  readonly duid: Uint8Array;
  readonly #ep: UdpEndpoint;
  /** Lease text (`addr` or `prefix/len`) → binding. */
  readonly #byValue = new Map<string, Binding>();
  /** `na|pd:duid:iaid` → its binding. */
  readonly #byClient = new Map<string, Binding>();
  /** Client key → value text offered in an ADVERTISE, held for it. */
  readonly #offers = new Map<string, { text: string; until: number }>();
  readonly #offered = new Map<string, Offer>();
  /** Routes of delegated prefixes: lease text → its expiry timer. */
  readonly #pdTimers = new Map<string, Timer>();
  /** Next never-used index per pool (addresses) and per PD pool. */
  #cursors: bigint[] = [];
  #pdCursors: bigint[] = [];
  /** One writer for every reply (header() starts it over). */
  readonly #writer = new Dhcpv6Writer(new Uint8Array(1500));
  /** Two for RELAY-REPL wrapping, used in turn (each wraps the other's bytes). */
  readonly #relayWriters = [
    new Dhcpv6Writer(new Uint8Array(4096)),
    new Dhcpv6Writer(new Uint8Array(4096)),
  ];
  readonly #store: LeaseStore;
  readonly #commits: GroupCommit<
    { payload: Uint8Array; dst: Uint8Array; port: number; src: Uint8Array }
  >;
  readonly #wall: () => number;
  #settings!: Dhcpv6ServerSettings;

  constructor(
    readonly host: Dhcpv6ServerHost,
    readonly nic: Nic,
    settings: Dhcpv6ServerSettings,
    opts: { store: LeaseStore; wallClock: () => number },
  ) {
    if (host.ipv6.nicState(nic) === undefined) {
      throw new Error(`a DHCPv6 server needs IPv6 on interface "${nic.name}"`);
    }
    this.#store = opts.store;
    this.#wall = opts.wallClock;
    this.#commits = new GroupCommit(host.clock, opts.store, (h) => {
      const ok = this.#ep.send(h.dst, h.port, h.payload, { nic: this.nic, src: h.src });
      if (ok) this.stats.repliesSent++;
      else this.stats.sendFailed++;
    }, (n) => this.stats.leaseWriteFailedDropped += n);
    this.duid = duidLl(nic.mac);
    this.configure(settings);
    const now = this.#wall();
    for (const rec of this.#store.load()) {
      const v = untext(rec.address);
      if (v === null || (rec.ia !== "na" && rec.ia !== "pd")) continue;
      this.#bind(v.value, v.len, rec);
      if (rec.ia === "pd" && rec.state === "bound" && rec.expires > now) this.#route(rec);
    }
    host.ipv6.joinGroup(nic, ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
    this.#ep = host.udp.bindSocket({
      family: 6,
      port: DHCPV6_SERVER_PORT,
      device: nic,
      onDatagram: (d) => this.#receive(d),
    });
  }

  /** Take new settings (a reload); leases stay. */
  configure(settings: Dhcpv6ServerSettings): void {
    this.#settings = settings;
    // The search domain the lease names are in may be another now.
    this.#version++;
    this.#cursors = settings.pools.map(() => 0n);
    this.#pdCursors = settings.pdPools.map(() => 0n);
  }

  get settings(): Dhcpv6ServerSettings {
    return this.#settings;
  }

  /** Every lease record (bound, released, declined), addresses first, for `show leases`. */
  leases(): Dhcpv6LeaseInfo[] {
    const now = this.#wall();
    return [...this.#byValue.values()]
      .sort((a, b) =>
        (a.len === 128 ? 0 : 1) - (b.len === 128 ? 0 : 1) ||
        (a.value < b.value ? -1 : a.value > b.value ? 1 : a.len - b.len)
      )
      .map((b) => ({ ...b.rec, interface: this.nic.name, expired: b.rec.expires <= now }));
  }

  /** Leases bound and not expired, by kind. */
  activeLeases(kind: IaKind): number {
    const now = this.#wall();
    let n = 0;
    for (const b of this.#byValue.values()) {
      if (b.rec.ia === kind && b.rec.state === "bound" && b.rec.expires > now) n++;
    }
    return n;
  }

  close(): void {
    this.#commits.flush();
    for (const t of this.#pdTimers.values()) t.cancel();
    this.#pdTimers.clear();
    this.host.ipv6.routes.removeWhere((r) => r.source === "dhcp" && r.nicId === this.nic.id);
    this.host.ipv6.leaveGroup(this.nic, ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
    this.#ep.close();
    this.#store.close();
  }

  // ------------------------------------------------------------ receive

  #receive(d: UdpDatagram): void {
    const s = this.stats;
    const data = d.buffer.data;
    const outer = parseDhcpv6(data.subarray(d.payloadOffset, d.payloadOffset + d.payloadLength));
    if (typeof outer === "string") {
      s.malformedDropped++;
      return;
    }
    // RFC 8415 §19: unwrap RELAY-FORW down to the client's message.
    const relays: RelayHop[] = [];
    let inner = outer;
    while ("hopCount" in inner) {
      if (inner.msgType !== Dhcpv6MessageType.RELAY_FORW) {
        s.unknownMessageTypeDropped++;
        return;
      }
      const rm = findOption(inner.options, Dhcpv6Option.RELAY_MSG);
      const next = rm === undefined || relays.length >= MAX_RELAYS ? "truncated" : parseDhcpv6(rm);
      if (typeof next === "string") {
        s.malformedDropped++;
        return;
      }
      relays.push({
        hopCount: inner.hopCount,
        link: inner.linkAddress.slice(),
        peer: inner.peerAddress.slice(),
        interfaceId: findOption(inner.options, Dhcpv6Option.INTERFACE_ID)?.slice() ?? null,
      });
      inner = next;
    }
    const m = inner;
    const T = Dhcpv6MessageType;
    const relayed = relays.length > 0;
    // A relay may unicast to the server; the client's own unicast rules are for direct messages.
    const multicast = relayed || data[d.dst6Offset] === 0xff;
    const cid = findOption(m.options, Dhcpv6Option.CLIENTID);
    const sid = findOption(m.options, Dhcpv6Option.SERVERID);
    const ours = sid !== undefined && sameDuid(sid, this.duid);
    const counter = RECEIVED[m.msgType];
    if (counter === undefined) {
      s.unknownMessageTypeDropped++;
      return;
    }
    s[counter]++;
    // RFC 8415 §16: which identifiers each message must (not) carry.
    const needsSid = m.msgType === T.REQUEST || m.msgType === T.RENEW ||
      m.msgType === T.RELEASE || m.msgType === T.DECLINE;
    const info = m.msgType === T.INFORMATION_REQUEST;
    if ((!info && (cid === undefined || cid.length === 0)) || (needsSid && sid === undefined)) {
      s.invalidDropped++;
      return;
    }
    if (!needsSid && !info && sid !== undefined) {
      s.invalidDropped++;
      return;
    }
    if (sid !== undefined && !ours) {
      s.otherServerDropped++;
      return;
    }
    if (!multicast && !needsSid) {
      s.unicastDropped++;
      return;
    }
    const src = data.slice(d.src6Offset, d.src6Offset + 16);
    if (relayed) {
      const link = relays.at(-1)!.link;
      if (!link.every((b) => b === 0) && !this.#onLink(toBig(link))) {
        s.relayOtherLinkDropped++;
        return;
      }
    }
    const duid = cid?.slice() ?? new Uint8Array(0);
    const mac = duidMac(duid);
    const oro = findOption(m.options, Dhcpv6Option.ORO);
    const fqdn = findOption(m.options, CLIENT_FQDN_OPTION);
    const r: Request = {
      type: m.msgType,
      xid: m.xid,
      options: m.options,
      duid,
      duidHex: hexColon(duid),
      mac: mac !== null ? formatMac(mac) : "",
      src: relayed ? relays.at(-1)!.peer : src,
      srcPort: d.srcPort,
      oro: oro !== undefined ? parseOro(oro) : [],
      // RFC 4704 §5: a client sends it in SOLICIT, REQUEST, RENEW and REBIND only.
      fqdn: fqdn !== undefined && (m.msgType === T.SOLICIT || m.msgType === T.REQUEST ||
          m.msgType === T.RENEW || m.msgType === T.REBIND)
        ? parseClientFqdn(fqdn)
        : null,
      relays,
      dst: src,
      dstPort: relayed ? DHCPV6_SERVER_PORT : d.srcPort,
      // A prefix delegated through a relay is routed via the relay next to us.
      via: src,
    };
    const from = this.host.ipv6.linkLocalOf(this.nic);
    if (from === null) {
      s.noLinkLocalDropped++;
      return;
    }
    if (!multicast) {
      // §18.3.2: this server sends no Server Unicast option, so unicast is refused.
      return this.#statusOnly(r, from, Dhcpv6Status.USE_MULTICAST, "use multicast");
    }
    const ias = this.#readIas(r);
    if (ias === null) {
      s.malformedDropped++;
      return;
    }
    switch (m.msgType) {
      case T.SOLICIT: {
        const rapid = this.#settings.rapidCommit &&
          findOption(m.options, Dhcpv6Option.RAPID_COMMIT) !== undefined;
        return rapid ? this.#grant(r, ias, from, true) : this.#advertise(r, ias, from);
      }
      case T.REQUEST:
        return this.#grant(r, ias, from, false);
      case T.RENEW:
      case T.REBIND:
        return this.#extend(r, ias, from);
      case T.RELEASE:
        return this.#release(r, ias, from);
      case T.DECLINE:
        return this.#decline(r, ias, from);
      case T.CONFIRM:
        return this.#confirm(r, ias, from);
      case T.INFORMATION_REQUEST:
        return this.#send(r, from, Dhcpv6MessageType.REPLY, [], null, false);
    }
  }

  /** The IA_NAs and IA_PDs of a message; null when one does not parse. */
  #readIas(r: Request): IaRequest[] | null {
    const out: IaRequest[] = [];
    for (const o of r.options) {
      if (o.code !== Dhcpv6Option.IA_NA && o.code !== Dhcpv6Option.IA_PD) continue;
      const ia = parseIa(o.data);
      if (typeof ia === "string") return null;
      const kind: IaKind = o.code === Dhcpv6Option.IA_NA ? "na" : "pd";
      const held: IaRequest["held"] = [];
      for (const io of ia.options) {
        if (kind === "na" && io.code === Dhcpv6Option.IAADDR) {
          const a = parseIaAddr(io.data);
          if (typeof a === "string") return null;
          held.push({ value: toBig(a.address), len: 128 });
        } else if (kind === "pd" && io.code === Dhcpv6Option.IAPREFIX) {
          const p = parseIaPrefix(io.data);
          if (typeof p === "string") return null;
          if (p.prefixLen > 128) return null;
          held.push({ value: toBig(ipv6Masked(p.prefix, p.prefixLen)), len: p.prefixLen });
        }
      }
      out.push({ kind, iaid: ia.iaid, held });
    }
    return out;
  }

  #key(r: Request, ia: IaRequest): string {
    return `${ia.kind}:${r.duidHex}:${ia.iaid}`;
  }

  // ------------------------------------------------------------ exchanges

  /** SOLICIT → ADVERTISE: what a REQUEST would get, held for the client, nothing written. */
  #advertise(r: Request, ias: IaRequest[], from: Uint8Array): void {
    const now = this.#wall();
    const answers: IaAnswer[] = [];
    for (const ia of ias) {
      const key = this.#key(r, ia);
      const v = this.#allocate(key, ia, now);
      if (v === null) {
        answers.push(this.#exhausted(ia));
        continue;
      }
      this.#holdOffer(key, text(v.value, v.len), now);
      answers.push(this.#answer(ia, [v]));
    }
    this.#send(r, from, Dhcpv6MessageType.ADVERTISE, answers, null, false);
  }

  /** REQUEST (or SOLICIT with Rapid Commit) → REPLY with the leases written. */
  #grant(r: Request, ias: IaRequest[], from: Uint8Array, rapid: boolean): void {
    const now = this.#wall();
    const answers: IaAnswer[] = [];
    let wrote = false;
    for (const ia of ias) {
      const key = this.#key(r, ia);
      const v = this.#allocate(key, ia, now);
      if (v === null) {
        answers.push(this.#exhausted(ia));
        continue;
      }
      const res = this.#commitLease(r, ia, key, v, now);
      if (res === null) return;
      wrote = true;
      answers.push(this.#answer(ia, [v]));
    }
    this.#send(r, from, Dhcpv6MessageType.REPLY, answers, null, wrote, rapid);
  }

  /**
   * RENEW and REBIND (RFC 8415 §18.3.4, §18.3.5): the client's binding is
   * extended; what it lists that is not its own goes back with lifetimes
   * 0; with no binding, a free value it lists (or a new one) is bound, as
   * Kea does, else NoBinding (RENEW) or zero lifetimes (REBIND).
   */
  #extend(r: Request, ias: IaRequest[], from: Uint8Array): void {
    const now = this.#wall();
    const answers: IaAnswer[] = [];
    let wrote = false;
    for (const ia of ias) {
      const key = this.#key(r, ia);
      const a: IaAnswer = { kind: ia.kind, iaid: ia.iaid, grant: [], status: null };
      const b = this.#byClient.get(key);
      let v: { value: bigint; len: number } | null = null;
      if (
        b !== undefined && b.rec.state === "bound" &&
        this.#availableTo(key, ia.kind, b.value, b.len, now)
      ) {
        v = { value: b.value, len: b.len };
      } else {
        v = this.#allocate(key, ia, now);
      }
      for (const h of ia.held) {
        if (v === null || h.value !== v.value || h.len !== v.len) {
          a.grant.push({ ...h, preferred: 0, valid: 0 });
        }
      }
      if (v !== null) {
        if (this.#commitLease(r, ia, key, v, now) === null) return;
        wrote = true;
        a.grant.unshift(this.#lifetimes(v));
      } else if (r.type === Dhcpv6MessageType.RENEW && ia.held.length === 0) {
        a.status = { code: Dhcpv6Status.NO_BINDING, message: "no binding for this IA" };
      } else if (ia.held.length === 0) {
        answers.push(this.#exhausted(ia));
        continue;
      }
      answers.push(a);
    }
    this.#send(r, from, Dhcpv6MessageType.REPLY, answers, null, wrote);
  }

  /** RELEASE (§18.3.7): the client's values are given back (kept for affinity). */
  #release(r: Request, ias: IaRequest[], from: Uint8Array): void {
    this.#giveBack(r, ias, from, "released", 0);
  }

  /** DECLINE (§18.3.8): the address is in use by someone else; kept out of the pools. */
  #decline(r: Request, ias: IaRequest[], from: Uint8Array): void {
    this.#giveBack(r, ias, from, "declined", this.#settings.declineTime * 1000);
  }

  /**
   * RELEASE and DECLINE: each IA's binding, when it lists it, takes `state`
   * until `forMs` from now; an IA without one gets NoBinding; the REPLY says
   * Success.
   */
  #giveBack(
    r: Request,
    ias: IaRequest[],
    from: Uint8Array,
    state: "released" | "declined",
    forMs: number,
  ): void {
    const now = this.#wall();
    const answers: IaAnswer[] = [];
    for (const ia of ias) {
      const b = this.#byClient.get(this.#key(r, ia));
      if (
        b === undefined || b.rec.state !== "bound" ||
        !ia.held.some((h) => h.value === b.value && h.len === b.len)
      ) {
        answers.push({
          kind: ia.kind,
          iaid: ia.iaid,
          grant: [],
          status: { code: Dhcpv6Status.NO_BINDING, message: "no binding for this IA" },
        });
        continue;
      }
      if (!this.#commit(b.value, b.len, { ...b.rec, state, expires: now + forMs })) return;
    }
    this.#send(r, from, Dhcpv6MessageType.REPLY, answers, {
      code: Dhcpv6Status.SUCCESS,
      message: state,
    }, true);
  }

  /** CONFIRM (§18.3.3): are the client's addresses on this link? */
  #confirm(r: Request, ias: IaRequest[], from: Uint8Array): void {
    const addrs = ias.filter((ia) => ia.kind === "na").flatMap((ia) => ia.held);
    if (addrs.length === 0) {
      this.stats.confirmWithoutAddressDropped++;
      return;
    }
    const onLink = addrs.every((a) => this.#onLink(a.value));
    this.#send(
      r,
      from,
      Dhcpv6MessageType.REPLY,
      [],
      onLink
        ? { code: Dhcpv6Status.SUCCESS, message: "all addresses on link" }
        : { code: Dhcpv6Status.NOT_ON_LINK, message: "not on link" },
      false,
    );
  }

  #statusOnly(r: Request, from: Uint8Array, code: number, message: string): void {
    this.#send(r, from, Dhcpv6MessageType.REPLY, [], { code, message }, false);
  }

  // ------------------------------------------------------------ leases

  #lifetimes(v: { value: bigint; len: number }): IaAnswer["grant"][number] {
    const st = this.#settings;
    return { ...v, preferred: st.preferredLifetime, valid: st.validLifetime };
  }

  #answer(ia: IaRequest, vs: { value: bigint; len: number }[]): IaAnswer {
    return { kind: ia.kind, iaid: ia.iaid, grant: vs.map((v) => this.#lifetimes(v)), status: null };
  }

  #exhausted(ia: IaRequest): IaAnswer {
    this.stats.poolExhausted++;
    return {
      kind: ia.kind,
      iaid: ia.iaid,
      grant: [],
      status: ia.kind === "na"
        ? { code: Dhcpv6Status.NO_ADDRS_AVAIL, message: "no addresses available" }
        : { code: Dhcpv6Status.NO_PREFIX_AVAIL, message: "no prefixes available" },
    };
  }

  /** Bind `v` to the client's IA in the store and the tables; null (counted) when the store failed. */
  #commitLease(
    r: Request,
    ia: IaRequest,
    key: string,
    v: { value: bigint; len: number },
    now: number,
  ): LeaseRecord | null {
    const old = this.#byClient.get(key);
    const rec: LeaseRecord = {
      address: text(v.value, v.len),
      mac: r.mac,
      clientId: r.duidHex,
      // An address lease is named by its Client FQDN; a RENEW without one keeps the name.
      hostname: ia.kind === "na" ? (r.fqdn?.host ?? old?.rec.hostname ?? null) : null,
      expires: now + this.#settings.validLifetime * 1000,
      state: "bound",
      iaid: ia.iaid,
      ia: ia.kind,
      ...(ia.kind === "pd" ? { via: formatIpv6(r.via) } : {}),
    };
    if (!this.#commit(v.value, v.len, rec)) return null;
    if (
      old !== undefined && (old.value !== v.value || old.len !== v.len) && old.rec.state === "bound"
    ) {
      this.#commit(old.value, old.len, { ...old.rec, state: "released", expires: now });
    }
    this.#dropOffer(key);
    return rec;
  }

  #commit(value: bigint, len: number, rec: LeaseRecord): boolean {
    try {
      this.#store.commit(
        rec,
        () => [...this.#byValue.values()].map((b) => b.rec),
        this.#byValue.size + (this.#byValue.has(rec.address) ? 0 : 1),
      );
    } catch {
      this.stats.leaseWriteFailedDropped++;
      return false;
    }
    this.#bind(value, len, rec);
    if (rec.ia === "pd") {
      if (rec.state === "bound") this.#route(rec);
      else this.#unroute(rec.address);
    }
    return true;
  }

  /** Bumped on every change of the lease tables or the settings (for caches of what they hold). */
  get version(): number {
    return this.#version;
  }
  #version = 0;

  #bind(value: bigint, len: number, rec: LeaseRecord): void {
    this.#version++;
    const t = text(value, len);
    const prev = this.#byValue.get(t);
    if (prev !== undefined && this.#byClient.get(prev.key) === prev) {
      this.#byClient.delete(prev.key);
    }
    const key = `${rec.ia}:${rec.clientId}:${rec.iaid}`;
    const b: Binding = { key, value, len, rec };
    this.#byValue.set(t, b);
    if (rec.state !== "declined") this.#byClient.set(key, b);
  }

  /** Route a bound delegated prefix to the router that holds it, until its lease ends. */
  #route(rec: LeaseRecord): void {
    const v = untext(rec.address);
    if (v === null || rec.via === undefined) return;
    let gw: Uint8Array;
    try {
      gw = parseIpv6(rec.via);
    } catch {
      return;
    }
    const prefix = fromBig(v.value);
    const rt = this.host.ipv6.routes;
    rt.remove(prefix, v.len, (r) => r.source === "dhcp" && r.nicId === this.nic.id);
    rt.add({
      prefix,
      prefixLen: v.len,
      type: "unicast",
      nicId: this.nic.id,
      gateway: gw,
      metric: 1024,
      source: "dhcp",
    });
    this.#pdTimers.get(rec.address)?.cancel();
    const ms = Math.max(0, rec.expires - this.#wall());
    this.#pdTimers.set(rec.address, this.host.clock.schedule(ms, () => this.#lapse(rec.address)));
  }

  #unroute(t: string): void {
    this.#pdTimers.get(t)?.cancel();
    this.#pdTimers.delete(t);
    const v = untext(t);
    if (v === null) return;
    this.host.ipv6.routes.remove(
      fromBig(v.value),
      v.len,
      (r) => r.source === "dhcp" && r.nicId === this.nic.id,
    );
  }

  /** A delegated prefix's timer: if its lease has really ended (not renewed since), drop its route. */
  #lapse(t: string): void {
    this.#pdTimers.delete(t);
    const b = this.#byValue.get(t);
    if (b !== undefined && b.rec.state === "bound" && b.rec.expires > this.#wall()) {
      this.#route(b.rec);
      return;
    }
    this.#unroute(t);
  }

  #onLink(a: bigint): boolean {
    const st = this.host.ipv6.nicState(this.nic);
    for (const x of st?.addresses ?? []) {
      if (x.origin === "link-local" || x.prefixLen >= 128) continue;
      const shift = BigInt(128 - x.prefixLen);
      if ((a >> shift) === (toBig(x.address) >> shift)) return true;
    }
    return false;
  }

  #inPools(kind: IaKind, value: bigint, len: number): boolean {
    if (kind === "na") {
      return len === 128 &&
        this.#settings.pools.some((p) => value >= toBig(p.start) && value <= toBig(p.end));
    }
    return this.#settings.pdPools.some((p) => {
      if (len !== p.delegatedLen) return false;
      const shift = BigInt(128 - p.prefixLen);
      return (value >> shift) === (toBig(p.prefix) >> shift);
    });
  }

  /** No one else holds the value (a live lease, a live decline, an offer), and it is not one of the interface's own. */
  #freeFor(
    key: string,
    value: bigint,
    len: number,
    now: number,
    bytes: Uint8Array = fromBig(value),
    t: string = len === 128 ? formatIpv6(bytes) : `${formatIpv6(bytes)}/${len}`,
  ): boolean {
    const off = this.#offered.get(t);
    if (off !== undefined && off.key !== key && off.until > now) return false;
    if (len === 128 && this.host.ipv6.local.get(bytes) !== undefined) return false;
    const b = this.#byValue.get(t);
    if (b === undefined) return true;
    if (b.rec.state === "declined") return b.rec.expires <= now;
    if (b.key === key) return true;
    return b.rec.state === "released" || b.rec.expires <= now;
  }

  #availableTo(key: string, kind: IaKind, value: bigint, len: number, now: number): boolean {
    return this.#inPools(kind, value, len) && this.#freeFor(key, value, len, now);
  }

  /** The value for an IA: what it holds, what it was offered, its hint, a never-used one, the oldest ended one. */
  #allocate(key: string, ia: IaRequest, now: number): { value: bigint; len: number } | null {
    const k = ia.kind;
    const held = this.#byClient.get(key);
    if (held !== undefined && this.#availableTo(key, k, held.value, held.len, now)) {
      return { value: held.value, len: held.len };
    }
    const off = this.#offers.get(key);
    if (off !== undefined) {
      const v = untext(off.text);
      if (v !== null && this.#availableTo(key, k, v.value, v.len, now)) return v;
    }
    for (const h of ia.held) {
      if (this.#availableTo(key, k, h.value, h.len, now)) return h;
    }
    return this.#neverUsed(key, k, now) ?? this.#oldestReclaimable(key, k, now);
  }

  #neverUsed(key: string, kind: IaKind, now: number): { value: bigint; len: number } | null {
    if (kind === "na") {
      const pools = this.#settings.pools;
      for (let i = 0; i < pools.length; i++) {
        const start = toBig(pools[i]!.start);
        const size = toBig(pools[i]!.end) - start + 1n;
        // Bounded: a few more than the leases held, so a huge pool is not walked whole.
        const tries = BigInt(this.#byValue.size + this.#offered.size + 2);
        for (let n = 0n; n < size && n < tries; n++) {
          const c = this.#cursors[i]!;
          this.#cursors[i] = (c + 1n) % size;
          const v = start + c;
          const bytes = fromBig(v);
          const t = formatIpv6(bytes);
          if (!this.#byValue.has(t) && this.#freeFor(key, v, 128, now, bytes, t)) {
            return { value: v, len: 128 };
          }
        }
      }
      return null;
    }
    const pools = this.#settings.pdPools;
    for (let i = 0; i < pools.length; i++) {
      const p = pools[i]!;
      const base = toBig(ipv6Masked(p.prefix, p.prefixLen));
      const size = 1n << BigInt(p.delegatedLen - p.prefixLen);
      const step = 1n << BigInt(128 - p.delegatedLen);
      const tries = BigInt(this.#byValue.size + this.#offered.size + 2);
      for (let n = 0n; n < size && n < tries; n++) {
        const c = this.#pdCursors[i]!;
        this.#pdCursors[i] = (c + 1n) % size;
        const v = base + c * step;
        if (
          !this.#byValue.has(text(v, p.delegatedLen)) && this.#freeFor(key, v, p.delegatedLen, now)
        ) {
          return { value: v, len: p.delegatedLen };
        }
      }
    }
    return null;
  }

  #oldestReclaimable(
    key: string,
    kind: IaKind,
    now: number,
  ): { value: bigint; len: number } | null {
    let best: Binding | null = null;
    for (const b of this.#byValue.values()) {
      if (!this.#availableTo(key, kind, b.value, b.len, now)) continue;
      if (best === null || b.rec.expires < best.rec.expires) best = b;
    }
    return best === null ? null : { value: best.value, len: best.len };
  }

  #holdOffer(key: string, t: string, now: number): void {
    this.#dropOffer(key);
    this.#offers.set(key, { text: t, until: now + OFFER_HOLD_MS });
    this.#offered.set(t, { key, until: now + OFFER_HOLD_MS });
    if (this.#offers.size > 4096) {
      for (const [k, o] of this.#offers) if (o.until <= now) this.#dropOffer(k);
    }
  }

  #dropOffer(key: string): void {
    const o = this.#offers.get(key);
    if (o === undefined) return;
    this.#offers.delete(key);
    if (this.#offered.get(o.text)?.key === key) this.#offered.delete(o.text);
  }

  // ------------------------------------------------------------ reply

  /** Build and send (or hold for the group commit, when `durable`) one ADVERTISE or REPLY. */
  #send(
    r: Request,
    from: Uint8Array,
    type: number,
    answers: IaAnswer[],
    status: { code: number; message: string } | null,
    durable: boolean,
    rapid = false,
  ): void {
    const st = this.#settings;
    const w = this.#writer;
    w.header(type, r.xid);
    w.option(Dhcpv6Option.SERVERID, this.duid);
    if (r.duid.length > 0) w.option(Dhcpv6Option.CLIENTID, r.duid);
    if (rapid) w.option(Dhcpv6Option.RAPID_COMMIT);
    if (status !== null) w.status(status.code, status.message);
    if (type === Dhcpv6MessageType.ADVERTISE && st.preference > 0) {
      w.open(Dhcpv6Option.PREFERENCE).u8(st.preference).close();
    }
    for (const a of answers) {
      const pd = a.kind === "pd";
      const pref = a.grant[0]?.preferred ?? 0;
      w.open(pd ? Dhcpv6Option.IA_PD : Dhcpv6Option.IA_NA).u32(a.iaid);
      // RFC 8415 §21.4: T1 0.5 and T2 0.8 of the shortest preferred lifetime.
      w.u32(Math.min(MAX_U32, Math.floor(pref * 0.5))).u32(
        Math.min(MAX_U32, Math.floor(pref * 0.8)),
      );
      for (const g of a.grant) {
        if (pd) {
          w.open(Dhcpv6Option.IAPREFIX).u32(g.preferred).u32(g.valid).u8(g.len)
            .raw(fromBig(g.value)).close();
        } else {
          w.open(Dhcpv6Option.IAADDR).raw(fromBig(g.value)).u32(g.preferred).u32(g.valid).close();
        }
      }
      if (a.status !== null) w.status(a.status.code, a.status.message);
      w.close();
    }
    // RFC 8415 §18.3.7/§18.3.8: the REPLY to a RELEASE or DECLINE carries no configuration.
    const config = r.type !== Dhcpv6MessageType.RELEASE && r.type !== Dhcpv6MessageType.DECLINE;
    if (config && r.oro.includes(Dhcpv6Option.DNS_SERVERS) && st.dnsServers.length > 0) {
      w.open(Dhcpv6Option.DNS_SERVERS);
      for (const s of st.dnsServers) w.raw(s);
      w.close();
    }
    if (config && r.oro.includes(CAPTIVE_PORTAL_OPTION) && st.captivePortal !== undefined) {
      w.option(CAPTIVE_PORTAL_OPTION, new TextEncoder().encode(st.captivePortal));
    }
    // RFC 9463 §4.2: a client asks for OPTION_V6_DNR in its ORO; others do not get it.
    if (config && r.oro.includes(DHCPV6_DNR_OPTION)) {
      for (const d of st.dnr ?? []) w.option(DHCPV6_DNR_OPTION, encodeDhcpv6Dnr(d));
    }
    if (config && r.oro.includes(Dhcpv6Option.DOMAIN_LIST) && st.domains.length > 0) {
      w.option(Dhcpv6Option.DOMAIN_LIST, encodeDomainList(st.domains));
    }
    if (config && r.fqdn !== null) {
      // RFC 4704 §6: the name the server uses (the host in the first search domain, else a
      // partial name) and S set: the server answers for it (O too when the client had not
      // asked), as dnsmasq forces the update, since the client has no server to update.
      const domain = st.domains[0];
      const name = domain !== undefined ? `${r.fqdn.host}.${domain}` : r.fqdn.host;
      const enc = encodeDomainList([name]);
      w.open(CLIENT_FQDN_OPTION).u8((r.fqdn.flags & FQDN_S) !== 0 ? FQDN_S : FQDN_S | FQDN_O)
        .raw(domain !== undefined ? enc : enc.subarray(0, enc.length - 1)).close();
    }
    let payload = w.bytes();
    // Through relays: one RELAY-REPL per RELAY-FORW, innermost first (RFC 8415 §19.3).
    for (let i = r.relays.length - 1; i >= 0; i--) {
      const h = r.relays[i]!;
      const rw = this.#relayWriters[i % 2]!;
      rw.relayHeader(Dhcpv6MessageType.RELAY_REPL, h.hopCount, h.link, h.peer);
      if (h.interfaceId !== null) rw.option(Dhcpv6Option.INTERFACE_ID, h.interfaceId);
      rw.option(Dhcpv6Option.RELAY_MSG, payload);
      payload = rw.bytes();
    }
    if (durable) {
      this.#commits.hold({ payload: payload.slice(), dst: r.dst, port: r.dstPort, src: from });
      return;
    }
    if (!this.#ep.send(r.dst, r.dstPort, payload, { nic: this.nic, src: from })) {
      this.stats.sendFailed++;
    } else if (type === Dhcpv6MessageType.ADVERTISE) this.stats.advertisesSent++;
    else this.stats.repliesSent++;
  }
}
