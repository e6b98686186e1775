/**
 * TCP for both families: the demultiplexer (connections by 4-tuple,
 * listeners by local address and port with wildcards), listen queues with
 * SYN cookies when a SYN queue overflows, ISNs per RFC 6528, segment
 * building (options, partial checksums the link or the output path
 * completes, super-frames of up to 64 KiB for links with TSO), resets for
 * segments nobody wants (RFC 9293 §3.5.2), and Path MTU news from ICMP.
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Ipv4 } from "../../ipv4/ipv4.ts";
import type { Ipv6 } from "../../ipv6/ipv6.ts";
import type { Random } from "../../random.ts";
import type { Clock, Timer } from "../../clock.ts";
import type { StackStats } from "../../stats.ts";
import { IpProtocol, type Ipv4Packet } from "../../wire/ipv4.ts";
import { Icmpv4Code, Icmpv4Type } from "../../wire/icmpv4.ts";
import { Icmpv6Code, Icmpv6Type } from "../../wire/icmpv6.ts";
import type { Icmpv4Event } from "../../ipv4/icmp.ts";
import type { Icmpv6Event } from "../../ipv6/icmp.ts";
import type { Ipv6Packet } from "../../wire/ipv6.ts";
import {
  parseTcpOptions,
  TcpFlags,
  TcpOptions,
  tcpOptionsLen,
  writeTcpOptions,
} from "../../wire/tcp.ts";
import type { TcpOptionsOut } from "../../wire/tcp.ts";
import {
  finishChecksum,
  foldSum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "../../wire/checksum.ts";
import { ipv4IsLimitedBroadcast, ipv4IsMulticast, ipv6IsMulticast } from "../../wire/ip_address.ts";
import { ETHERNET_HEADER_LEN } from "../../wire/ethernet.ts";
import {
  type BufferPool,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  HEADROOM,
  type PacketBuffer,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
} from "../../wire/packet_buffer.ts";
import { sendTcpReset } from "../../ip/tcp_reset.ts";
import { EPHEMERAL_PORT_MAX, EPHEMERAL_PORT_MIN, type IpAddr } from "../udp.ts";
import {
  DEFAULT_TCP_SETTINGS,
  TcpConnection,
  type TcpCounters,
  type TcpHost,
  type TcpSegment,
  type TcpSettings,
  TcpState,
} from "./connection.ts";
import { seqAdd } from "./seq.ts";

const { SYN, RST, ACK, FIN } = TcpFlags;
const TCP_HEADER_LEN = 20;
/** Largest IP packet; a super-frame's headers and payload fit under it. */
const MAX_IP_LEN = 65_535;
/** Loopback's MTU (as Linux's lo). */
const LOOPBACK_MTU = 65_536;

/** A listening socket: SYNs for its address and port make connections it queues for accept(). */
export class TcpListener {
  /** Connections that completed the handshake, waiting for accept(). */
  readonly acceptQueue: TcpConnection[] = [];
  /** Children in SYN-RECEIVED. */
  synCount = 0;
  /** Called when a connection joins the accept queue. */
  onAcceptable: (() => void) | null = null;
  closed = false;
  /** Clock ms of the last SYN-queue overflow (cookies are checked for a while after). */
  lastOverflow = -Infinity;
  /** Connections taken with accept(). */
  accepted = 0;

  /** @internal */
  constructor(
    readonly tcp: Tcp,
    readonly family: 0 | 4 | 6,
    readonly address: IpAddr | null,
    readonly port: number,
    readonly backlog: number,
    readonly device: Nic | null,
  ) {}

  /** The next established connection, or null. */
  accept(): TcpConnection | null {
    const c = this.acceptQueue.shift() ?? null;
    if (c !== null) {
      c.parent = null;
      this.accepted++;
    }
    return c;
  }

  /** Stop listening; queued connections are reset, as Linux does on close(). */
  close(): void {
    this.tcp.unlisten(this);
  }
}

/** Where {@link Tcp.connect} goes. */
export interface TcpOpenOptions {
  remote: IpAddr;
  port: number;
  /** Local address (default: chosen by the route, RFC 6724 for IPv6). */
  local?: IpAddr;
  /** Local port (default: ephemeral). */
  localPort?: number;
  /** Leave by this interface. */
  device?: Nic | null;
}

/** Where {@link Tcp.listen} binds. */
export interface TcpBindOptions {
  /** 4 or 6; 0 with a null address takes both families ("::" with bindv6only=0). */
  family?: 0 | 4 | 6;
  address?: IpAddr | null;
  port: number;
  /** Accept queue length (listen()'s backlog; capped at somaxconn). Default somaxconn. */
  backlog?: number;
  device?: Nic | null;
}

function addrEqual(a: IpAddr, b: IpAddr): boolean {
  if (typeof a === "number" || typeof b === "number") return a === b;
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

function at16(a: IpAddr, d: Uint8Array, off: number): boolean {
  if (typeof a === "number") return false;
  for (let i = 0; i < 16; i++) if (a[i] !== d[off + i]) return false;
  return true;
}

function mix(h: number, w: number): number {
  h = Math.imul(h ^ w, 0x01000193);
  return h ^ (h >>> 15);
}

/** The context TCP needs of a stack. */
export interface TcpContext {
  readonly clock: Clock;
  readonly random: Random;
  readonly pool: BufferPool;
  readonly stats: StackStats;
  readonly nics: ReadonlyMap<number, Nic>;
}

/** TCP of one stack, both families. */
export class Tcp implements TcpHost {
  readonly settings: TcpSettings;
  readonly counters: TcpCounters;
  readonly #buckets = new Map<number, TcpConnection>();
  #count = 0;
  readonly #listeners = new Map<number, TcpListener[]>();
  readonly #seg: TcpSegment;
  readonly #opts = new TcpOptions();
  readonly #sackOut: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  readonly #optOut: TcpOptionsOut & { ts: { val: number; ecr: number } } = {
    ts: { val: 0, ecr: 0 },
  };
  readonly #key: Uint32Array;
  #nextEphemeral: number;
  #challengeTokens: number;
  #challengeSecond = -1;
  /** Per-connection timestamp offsets come from this keyed hash too (RFC 7323 §7.1). */
  readonly #tsKey: number;

  constructor(
    readonly ctx: TcpContext,
    readonly ipv4: Ipv4,
    readonly ipv6: Ipv6,
    settings: Partial<TcpSettings> = {},
  ) {
    this.settings = { ...DEFAULT_TCP_SETTINGS, ...settings };
    this.counters = ctx.stats.tcp;
    const r = ctx.random;
    this.#key = new Uint32Array([r.uint32(), r.uint32(), r.uint32(), r.uint32()]);
    this.#tsKey = r.uint32();
    const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
    this.#nextEphemeral = EPHEMERAL_PORT_MIN + (r.uint32() % span);
    this.#challengeTokens = this.settings.challengeAckLimit;
    this.#seg = {
      seq: 0,
      ack: 0,
      flags: 0,
      window: 0,
      opts: this.#opts,
      data: new Uint8Array(0),
      payloadOffset: 0,
      payloadLength: 0,
      nic: null,
      ce: false,
    };
    ipv4.icmp.listeners.add((e) => this.#icmp4(e));
    ipv6.icmp.listeners.add((e) => this.#icmp6(e));
    ipv4.transports.set(IpProtocol.TCP, (nic, pkt, ip) => this.#receive4(nic, pkt, ip));
    ipv6.transports.set(
      IpProtocol.TCP,
      (nic, pkt, ip, off, len) => this.#receive6(nic, pkt, ip, off, len),
    );
  }

  // ------------------------------------------------------------ TcpHost

  now(): number {
    return this.ctx.clock.now();
  }

  schedule(ms: number, fn: () => void): Timer {
    return this.ctx.clock.schedule(ms, fn);
  }

  challengeAckAllowed(): boolean {
    const sec = Math.floor(this.now() / 1000);
    if (sec !== this.#challengeSecond) {
      this.#challengeSecond = sec;
      this.#challengeTokens = this.settings.challengeAckLimit;
    }
    if (this.#challengeTokens <= 0) return false;
    this.#challengeTokens--;
    return true;
  }

  gsoMax(c: TcpConnection): number {
    const nic = this.#pathNic(c);
    if (nic === null) return MAX_IP_LEN - 60 - 60; // loopback: one big segment
    if (!nic.link.capabilities.offloads) return 0;
    return MAX_IP_LEN - (c.family === 4 ? 20 : 40) - 60;
  }

  established(c: TcpConnection): void {
    const l = c.parent as TcpListener | null;
    if (l === null) return;
    l.synCount--;
    if (l.closed) {
      c.parent = null;
      c.abort();
      return;
    }
    if (l.acceptQueue.length >= l.backlog) this.counters.listenOverflows++;
    l.acceptQueue.push(c);
    l.onAcceptable?.();
  }

  remove(c: TcpConnection): void {
    if (c.removed) return;
    c.removed = true;
    const head = this.#buckets.get(c.hash);
    if (head === c) {
      if (c.nextInBucket === null) this.#buckets.delete(c.hash);
      else this.#buckets.set(c.hash, c.nextInBucket);
    } else {
      for (let p = head ?? null; p !== null; p = p.nextInBucket) {
        if (p.nextInBucket === c) {
          p.nextInBucket = c.nextInBucket;
          break;
        }
      }
    }
    c.nextInBucket = null;
    this.#count--;
    const l = c.parent as TcpListener | null;
    if (l !== null) {
      c.parent = null;
      const i = l.acceptQueue.indexOf(c);
      if (i >= 0) l.acceptQueue.splice(i, 1);
      else l.synCount--;
    }
  }

  // ------------------------------------------------------------ API

  /** Connections in the table (every state but LISTEN). */
  *connections(): IterableIterator<TcpConnection> {
    for (const head of this.#buckets.values()) {
      for (let c: TcpConnection | null = head; c !== null; c = c.nextInBucket) yield c;
    }
  }

  /** Every listener. */
  *listeners(): IterableIterator<TcpListener> {
    for (const list of this.#listeners.values()) yield* list;
  }

  /** Number of connections in the table. */
  get size(): number {
    return this.#count;
  }

  /**
   * Listen on an address and port.
   *
   * @throws Deno.errors.AddrInUse when a listener or connection holds the port on an overlapping address
   * @throws Deno.errors.AddrNotAvailable when `address` is not one of this stack's
   */
  listen(o: TcpBindOptions): TcpListener {
    const address = o.address ?? null;
    const family: 0 | 4 | 6 = address === null
      ? (o.family ?? 0)
      : typeof address === "number"
      ? 4
      : 6;
    if (address !== null && !this.#isLocal(address)) {
      throw new Deno.errors.AddrNotAvailable(
        "Cannot assign requested address: it is not an address of this stack",
      );
    }
    const device = o.device ?? null;
    let port = o.port;
    if (port === 0) {
      port = this.#ephemeral(() => true, (p) => this.#listenClash(p, family, address, device));
    } else if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`Invalid port ${port}: expected 0-65535`);
    } else if (this.#listenClash(port, family, address, device)) {
      throw new Deno.errors.AddrInUse("Address already in use");
    }
    const backlog = Math.max(
      1,
      Math.min(o.backlog ?? this.settings.somaxconn, this.settings.somaxconn),
    );
    const l = new TcpListener(this, family, address, port, backlog, device);
    const list = this.#listeners.get(port);
    if (list === undefined) this.#listeners.set(port, [l]);
    else list.push(l);
    return l;
  }

  #listenClash(
    port: number,
    family: 0 | 4 | 6,
    address: IpAddr | null,
    device: Nic | null,
  ): boolean {
    // Listeners bound to different devices (SO_BINDTODEVICE) share a port, as in Linux's
    // inet_bind_conflict and tapir's UDP.
    return (this.#listeners.get(port) ?? []).some((e) =>
      (e.family === 0 || family === 0 || e.family === family) &&
      (e.address === null || address === null || addrEqual(e.address, address)) &&
      (e.device === null || device === null || e.device === device)
    );
  }

  /** @internal */
  unlisten(l: TcpListener): void {
    if (l.closed) return;
    l.closed = true;
    const list = this.#listeners.get(l.port);
    if (list !== undefined) {
      const i = list.indexOf(l);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#listeners.delete(l.port);
    }
    for (const c of l.acceptQueue.splice(0)) {
      c.parent = null;
      c.abort();
    }
    for (const c of [...this.connections()]) {
      if (c.parent === l) c.abort();
    }
  }

  /**
   * Open a connection (the SYN leaves now). The connection's events say
   * when it is established or why it failed.
   *
   * @throws Deno.errors.AddrNotAvailable when no route or source address exists for `remote`
   * @throws Deno.errors.AddrInUse when the 4-tuple is taken or no ephemeral port is free
   */
  connect(o: TcpOpenOptions): TcpConnection {
    const family = typeof o.remote === "number" ? 4 : 6;
    const device = o.device ?? null;
    const path = this.#route(o.remote, device);
    if (path === undefined) {
      throw new Deno.errors.AddrNotAvailable(
        "No route to the destination (Network is unreachable)",
      );
    }
    let local = o.local ?? null;
    if (local !== null && (typeof local === "number") !== (family === 4)) {
      throw new TypeError("The local and remote addresses are of different families");
    }
    if (local !== null && !this.#isLocal(local)) {
      throw new Deno.errors.AddrNotAvailable(
        "Cannot assign requested address: it is not an address of this stack",
      );
    }
    if (local === null) {
      local = this.#source(o.remote, path.nic);
      if (local === null) {
        throw new Deno.errors.AddrNotAvailable("No source address for the destination");
      }
    }
    const lAddr = local;
    let lport = o.localPort ?? 0;
    if (lport === 0) {
      lport = this.#ephemeral(
        () => true,
        (p) => this.#find(lAddr, p, o.remote, o.port) !== null,
      );
    } else if (this.#find(lAddr, lport, o.remote, o.port) !== null) {
      throw new Deno.errors.AddrInUse("Address already in use");
    }
    const c = this.#newConnection(family, lAddr, lport, o.remote, o.port, device);
    c.pathNic = path.nic;
    c.openActive(this.#isn(c), this.#advMss(c, path.nic));
    return c;
  }

  /** Close every connection and listener (the stack is shutting down). */
  close(): void {
    for (const l of [...this.listeners()]) l.close();
    for (const c of [...this.connections()]) c.abort();
  }

  // ------------------------------------------------------------ helpers

  #isLocal(a: IpAddr): boolean {
    return typeof a === "number" ? this.ipv4.isLocal(a) : this.ipv6.local.get(a, 0) !== undefined;
  }

  /** The egress for `dst` (nic null: local, loopback), or undefined when there is no route. */
  #route(dst: IpAddr, device: Nic | null): { nic: Nic | null } | undefined {
    if (this.#isLocal(dst)) return { nic: null };
    if (device !== null) return { nic: device };
    if (typeof dst === "number") {
      const r = this.ipv4.routes.lookup(dst, 0);
      const n = r === null ? undefined : this.ctx.nics.get(r.nicId);
      return n === undefined ? undefined : { nic: n };
    }
    const r = this.ipv6.routes.lookup(dst, 0, 0);
    if (r === null || r.type !== "unicast") return undefined;
    const n = this.ctx.nics.get(r.nicId);
    return n === undefined ? undefined : { nic: n };
  }

  #source(dst: IpAddr, nic: Nic | null): IpAddr | null {
    if (nic === null) return dst;
    if (typeof dst === "number") {
      const r = this.ipv4.routes.lookup(dst, 0);
      return this.ipv4.sourceFor(nic, r?.gateway ?? dst);
    }
    return this.ipv6.selectSource(dst, 0, nic);
  }

  /** @internal The NIC a connection leaves by (cached at open; only offload choices depend on it). */
  #pathNic(c: TcpConnection): Nic | null {
    return c.pathNic;
  }

  /** MSS to announce: the path MTU less the IP and TCP headers (RFC 9293 §3.7.1, RFC 8201). */
  #advMss(c: TcpConnection, nic: Nic | null): number {
    const ipHl = c.family === 4 ? 20 : 40;
    let mtu = nic === null ? LOOPBACK_MTU : nic.mtu();
    if (nic !== null && c.family === 6) mtu = this.ipv6.pathMtu(nic, c.remote as Uint8Array, 0);
    return Math.min(65535, mtu - ipHl - TCP_HEADER_LEN);
  }

  #ephemeral(_ok: () => boolean, taken: (p: number) => boolean): number {
    const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
    for (let i = 0; i < span; i++) {
      const p = this.#nextEphemeral;
      this.#nextEphemeral = p >= EPHEMERAL_PORT_MAX ? EPHEMERAL_PORT_MIN : p + 1;
      if (!taken(p)) return p;
    }
    throw new Deno.errors.AddrInUse("No free ephemeral TCP port");
  }

  #hashOf(local: IpAddr, lport: number, remote: IpAddr, rport: number): number {
    let h = this.#key[0]!;
    if (typeof remote === "number") {
      h = mix(h, remote);
      h = mix(h, local as number);
    } else {
      const l = local as Uint8Array;
      for (let i = 0; i < 16; i += 4) {
        h = mix(
          h,
          (remote[i]! << 24) | (remote[i + 1]! << 16) | (remote[i + 2]! << 8) | remote[i + 3]!,
        );
        h = mix(h, (l[i]! << 24) | (l[i + 1]! << 16) | (l[i + 2]! << 8) | l[i + 3]!);
      }
    }
    return mix(h, (rport << 16) | lport) >>> 0;
  }

  #find(local: IpAddr, lport: number, remote: IpAddr, rport: number): TcpConnection | null {
    const h = this.#hashOf(local, lport, remote, rport);
    for (let c = this.#buckets.get(h) ?? null; c !== null; c = c.nextInBucket) {
      if (
        c.localPort === lport && c.remotePort === rport && addrEqual(c.local, local) &&
        addrEqual(c.remote, remote)
      ) {
        return c;
      }
    }
    return null;
  }

  #newConnection(
    family: 4 | 6,
    local: IpAddr,
    lport: number,
    remote: IpAddr,
    rport: number,
    device: Nic | null,
  ): TcpConnection {
    const h = this.#hashOf(local, lport, remote, rport);
    const c = new TcpConnection(
      this,
      family,
      local,
      lport,
      remote,
      rport,
      device,
      this.#tsOffsetFor(h),
    );
    c.hash = h;
    c.nextInBucket = this.#buckets.get(h) ?? null;
    this.#buckets.set(h, c);
    this.#count++;
    return c;
  }

  /** RFC 7323 §7.1: a per-connection random timestamp offset. */
  #tsOffsetFor(hash: number): number {
    return mix(this.#tsKey, hash) >>> 0;
  }

  /** RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock. */
  #isn(c: TcpConnection): number {
    const f = mix(mix(c.hash, this.#key[1]!), this.#key[2]!);
    return (f + Math.floor(this.now() * 250)) >>> 0;
  }

  // ------------------------------------------------------------ output

  emit(c: TcpConnection, seq: number, flags: number, dataPos: number, dataLen: number): boolean {
    const o = this.#optOut;
    o.mss = undefined;
    o.wscale = undefined;
    o.sackPermitted = undefined;
    o.sackCount = 0;
    o.sack = undefined;
    const syn = (flags & SYN) !== 0;
    let ts = false;
    let sackWithheld = false;
    if (syn) {
      const active = c.state === TcpState.SYN_SENT;
      o.mss = c.advMss;
      if (active ? c.wantWs : c.wsOk) o.wscale = c.rcvWscale;
      o.sackPermitted = active ? c.wantSack : c.sackOk;
      ts = active ? c.wantTs : c.tsOk;
    } else {
      ts = c.tsOk;
      if (c.sackOk) {
        // SACK blocks go only in the room a segment leaves under the path MSS
        // (c.mss is net of the timestamps; each segment of a super-frame is
        // c.mss long), so a segment never outgrows the MTU: a full-size one
        // carries none, and its ACK stays pending so that a pure ACK with the
        // blocks follows (#maybeAck after #output), as RFC 2018 §4 wants them sent.
        const max = ts ? 3 : 4;
        const room = c.mss - Math.min(dataLen, c.mss);
        const fit = room < 12 ? 0 : Math.min(max, (room - 4) >> 3);
        o.sackCount = fit > 0 ? c.sackBlocks(this.#sackOut, fit) : 0;
        o.sack = this.#sackOut;
        sackWithheld = o.sackCount < Math.min(max, c.ooo.length >> 1);
      }
    }
    if (ts) {
      o.ts.val = c.tsValue();
      o.ts.ecr = c.state === TcpState.SYN_SENT ? 0 : c.tsRecent;
    }
    const opt = ts ? o : withoutTs(o);
    const hl = TCP_HEADER_LEN + tcpOptionsLen(opt);
    const window = (flags & RST) !== 0 ? 0 : c.windowField(syn);
    const ack = (flags & ACK) !== 0 ? c.rcvNxt : 0;
    const ok = this.#build(c, seq, ack, flags, window, hl, opt, dataPos, dataLen);
    if (ok && (flags & ACK) !== 0 && !sackWithheld) c.ackSent();
    return ok;
  }

  emitReset(c: TcpConnection, seq: number, ack: number): void {
    const flags = ack >= 0 ? RST | ACK : RST;
    const o = this.#optOut;
    o.mss = undefined;
    o.wscale = undefined;
    o.sackPermitted = undefined;
    o.sackCount = 0;
    if (this.#build(c, seq, ack >= 0 ? ack : 0, flags, 0, TCP_HEADER_LEN, null, 0, 0)) {
      this.counters.resetsSent++;
    }
  }

  #build(
    c: TcpConnection,
    seq: number,
    ack: number,
    flags: number,
    window: number,
    hl: number,
    opts: TcpOptionsOut | null,
    dataPos: number,
    dataLen: number,
  ): boolean {
    const b = this.ctx.pool.get();
    if (b === null) {
      this.ctx.stats.bufferPoolExhausted++;
      return false;
    }
    try {
      const d = b.data, v = b.view;
      const ipOff = HEADROOM + ETHERNET_HEADER_LEN;
      const tcpLen = hl + dataLen;
      let t: number;
      let sum: number;
      if (c.family === 4) {
        // The IPv4 header; the output path fills its checksum.
        d[ipOff] = 0x45;
        d[ipOff + 1] = c.ipEcn;
        v.setUint16(ipOff + 2, 20 + tcpLen);
        v.setUint16(ipOff + 4, this.ipv4.nextId());
        v.setUint16(ipOff + 6, 0x4000); // DF: PMTU discovery (RFC 1191)
        d[ipOff + 8] = this.ipv4.settings.defaultTtl;
        d[ipOff + 9] = IpProtocol.TCP;
        v.setUint16(ipOff + 10, 0);
        v.setUint32(ipOff + 12, c.local as number);
        v.setUint32(ipOff + 16, c.remote as number);
        t = ipOff + 20;
        sum = ipv4PseudoHeaderSum(c.local as number, c.remote as number, IpProtocol.TCP, tcpLen);
      } else {
        v.setUint32(ipOff, (0x60000000 | (c.ipEcn << 20)) >>> 0);
        v.setUint16(ipOff + 4, tcpLen);
        d[ipOff + 6] = IpProtocol.TCP;
        d[ipOff + 7] = this.ipv6.settings.defaultHopLimit;
        d.set(c.local as Uint8Array, ipOff + 8);
        d.set(c.remote as Uint8Array, ipOff + 24);
        t = ipOff + 40;
        sum = ipv6PseudoHeaderSum(d, ipOff + 8, ipOff + 24, IpProtocol.TCP, tcpLen);
      }
      v.setUint16(t, c.localPort);
      v.setUint16(t + 2, c.remotePort);
      v.setUint32(t + 4, seq >>> 0);
      v.setUint32(t + 8, ack >>> 0);
      d[t + 12] = (hl >> 2) << 4;
      d[t + 13] = flags;
      v.setUint16(t + 14, window);
      v.setUint16(t + 16, 0);
      v.setUint16(t + 18, 0);
      if (opts !== null && hl > TCP_HEADER_LEN) writeTcpOptions(d, t + TCP_HEADER_LEN, opts);
      if (dataLen > 0) c.sendRing.copyOut(dataPos, d, t + hl, dataLen);
      b.start = HEADROOM;
      b.end = t + tcpLen;
      const nic = c.pathNic;
      const offload = nic === null || nic.link.capabilities.offloads;
      if (offload) {
        // Partial checksum: the pseudo-header sum in place; the link (or the
        // output path, for a link without offloads) completes it.
        v.setUint16(t + 16, foldSum(sum));
        b.vnetFlags = VNET_F_NEEDS_CSUM;
        b.csumStart = t - b.start;
        b.csumOffset = 16;
        if (dataLen > c.mss) {
          b.gsoType = c.family === 4 ? GSO_TCPV4 : GSO_TCPV6;
          b.gsoSize = c.mss;
          b.gsoHdrLen = t + hl - b.start;
        } else {
          b.gsoType = GSO_NONE;
        }
      } else {
        v.setUint16(t + 16, finishChecksum(onesSum(d, t, tcpLen, sum)));
      }
      const out = c.device !== null ? { nic: c.device } : {};
      return c.family === 4 ? this.ipv4.output(b, ipOff, out) : this.ipv6.output(b, ipOff, out);
    } finally {
      this.ctx.pool.put(b);
    }
  }

  // ------------------------------------------------------------ receive

  #receive4(nic: Nic | null, pkt: PacketBuffer, ip: Ipv4Packet): void {
    const l4 = ip.off + ip.headerLen();
    const end = Math.min(ip.off + ip.totalLength(), pkt.end);
    const len = end - l4;
    const dst = ip.dst();
    if (len < TCP_HEADER_LEN || ipv4IsMulticast(dst) || ipv4IsLimitedBroadcast(dst)) {
      this.counters.malformedReceived++;
      return;
    }
    if (
      (pkt.vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) === 0 &&
      finishChecksum(
          onesSum(pkt.data, l4, len, ipv4PseudoHeaderSum(ip.src(), dst, IpProtocol.TCP, len)),
        ) !== 0
    ) {
      this.counters.checksumErrors++;
      return;
    }
    const src = ip.src();
    const v = pkt.view;
    const sport = v.getUint16(l4), dport = v.getUint16(l4 + 2);
    if (!this.#parse(pkt, l4, len, nic)) return;
    const seg = this.#seg;
    seg.ce = (ip.dscpEcn() & 3) === 3;
    const h = this.#hashOf(dst, dport, src, sport);
    let c: TcpConnection | null = null;
    for (let x = this.#buckets.get(h) ?? null; x !== null; x = x.nextInBucket) {
      if (x.localPort === dport && x.remotePort === sport && x.local === dst && x.remote === src) {
        c = x;
        break;
      }
    }
    if (c !== null && !this.#timeWaitReuse(c)) {
      c.segmentArrives(seg);
      return;
    }
    const l = this.#listenerFor(4, dport, (a) => a === dst, nic);
    if (l !== null) {
      this.#listenInput(l, 4, dst, dport, src, sport, nic);
      return;
    }
    this.counters.noSocketReceived++;
    if (
      sendTcpReset(4, this.ipv4, this.ipv4.settings.defaultTtl, nic, pkt, ip.off, l4, end)
    ) {
      this.ctx.stats.ipv4.tcpResetsSent++;
    }
  }

  #receive6(nic: Nic | null, pkt: PacketBuffer, ip: Ipv6Packet, l4: number, len: number): void {
    const d = pkt.data;
    if (len < TCP_HEADER_LEN || ipv6IsMulticast(d, ip.dstOffset())) {
      this.counters.malformedReceived++;
      return;
    }
    if (
      (pkt.vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) === 0 &&
      finishChecksum(
          onesSum(
            d,
            l4,
            len,
            ipv6PseudoHeaderSum(d, ip.srcOffset(), ip.dstOffset(), IpProtocol.TCP, len),
          ),
        ) !== 0
    ) {
      this.counters.checksumErrors++;
      return;
    }
    const v = pkt.view;
    const sport = v.getUint16(l4), dport = v.getUint16(l4 + 2);
    if (!this.#parse(pkt, l4, len, nic)) return;
    this.#seg.ce = (ip.trafficClass() & 3) === 3;
    const so = ip.srcOffset(), dOff = ip.dstOffset();
    let h = this.#key[0]!;
    for (let i = 0; i < 16; i += 4) {
      h = mix(h, v.getInt32(so + i));
      h = mix(h, v.getInt32(dOff + i));
    }
    h = mix(h, (sport << 16) | dport) >>> 0;
    let c: TcpConnection | null = null;
    for (let x = this.#buckets.get(h) ?? null; x !== null; x = x.nextInBucket) {
      if (
        x.localPort === dport && x.remotePort === sport && at16(x.local, d, dOff) &&
        at16(x.remote, d, so)
      ) {
        c = x;
        break;
      }
    }
    if (c !== null && !this.#timeWaitReuse(c)) {
      c.segmentArrives(this.#seg);
      return;
    }
    const l = this.#listenerFor(6, dport, (a) => at16(a, d, dOff), nic);
    if (l !== null) {
      this.#listenInput(l, 6, d.slice(dOff, dOff + 16), dport, d.slice(so, so + 16), sport, nic);
      return;
    }
    this.counters.noSocketReceived++;
    if (
      sendTcpReset(6, this.ipv6, this.ipv6.settings.defaultHopLimit, nic, pkt, ip.off, l4, l4 + len)
    ) {
      this.ctx.stats.ipv6.tcpResetsSent++;
    }
  }

  /** Fill {@link #seg} from the segment at `l4`; false (counted) when its header is malformed. */
  #parse(pkt: PacketBuffer, l4: number, len: number, nic: Nic | null): boolean {
    const d = pkt.data, v = pkt.view;
    const hl = (d[l4 + 12]! >> 4) << 2;
    if (hl < TCP_HEADER_LEN || hl > len || !parseTcpOptionsInto(d, l4, hl, this.#opts)) {
      this.counters.malformedReceived++;
      return false;
    }
    const seg = this.#seg;
    seg.seq = v.getUint32(l4 + 4);
    seg.ack = v.getUint32(l4 + 8);
    seg.flags = d[l4 + 13]!;
    seg.window = v.getUint16(l4 + 14);
    seg.data = d;
    seg.payloadOffset = l4 + hl;
    seg.payloadLength = len - hl;
    seg.nic = nic;
    return true;
  }

  /** RFC 6191: a new SYN may take a TIME-WAIT connection's place when it is newer. */
  #timeWaitReuse(c: TcpConnection): boolean {
    const seg = this.#seg;
    if (c.state !== TcpState.TIME_WAIT || (seg.flags & (SYN | ACK | RST)) !== SYN) return false;
    if (!c.timeWaitReusable(seg)) return false;
    c.dropTimeWait();
    this.counters.timeWaitReused++;
    return true;
  }

  #listenerFor(
    family: 4 | 6,
    port: number,
    isAddr: (a: IpAddr) => boolean,
    nic: Nic | null,
  ): TcpListener | null {
    const list = this.#listeners.get(port);
    if (list === undefined) return null;
    let best: TcpListener | null = null;
    let bestScore = -1;
    for (const l of list) {
      if (l.family !== 0 && l.family !== family) continue;
      let score = 0;
      if (l.address !== null) {
        if ((typeof l.address === "number") !== (family === 4) || !isAddr(l.address)) continue;
        score += 2;
      }
      if (l.device !== null) {
        if (l.device !== nic) continue;
        score += 1;
      }
      if (score > bestScore) {
        best = l;
        bestScore = score;
      }
    }
    return best;
  }

  /** RFC 9293 §3.10.7.2: a segment for a LISTEN socket. */
  #listenInput(
    l: TcpListener,
    family: 4 | 6,
    local: IpAddr,
    lport: number,
    remote: IpAddr,
    rport: number,
    nic: Nic | null,
  ): void {
    const seg = this.#seg;
    const f = seg.flags;
    if ((f & RST) !== 0) {
      this.counters.listenSegmentsDropped++;
      return;
    }
    if ((f & ACK) !== 0) {
      // The last ACK of a handshake we kept no state for: a SYN cookie?
      const cookie = (f & SYN) === 0 && this.settings.syncookies
        ? this.#cookieAccept(l, family, local, lport, remote, rport, nic)
        : "none";
      if (cookie === "taken") return;
      // A cookie that did not check is counted as such; any other ACK opens nothing.
      if (cookie === "none") this.counters.listenSegmentsDropped++;
      this.#resetFor(family, local, lport, remote, rport, seg.ack, -1, nic);
      return;
    }
    if ((f & SYN) === 0 || (f & FIN) !== 0) {
      this.counters.listenSegmentsDropped++;
      return;
    }
    if (l.acceptQueue.length >= l.backlog) {
      // Linux drops the SYN while the accept queue is full (ListenOverflows + ListenDrops).
      this.counters.listenOverflows++;
      this.counters.listenDrops++;
      return;
    }
    if (l.synCount >= Math.min(l.backlog, this.settings.maxSynBacklog)) {
      l.lastOverflow = this.now();
      if (this.settings.syncookies) {
        this.#cookieSynAck(family, local, lport, remote, rport, nic);
      } else {
        this.counters.listenDrops++;
      }
      return;
    }
    const c = this.#newConnection(family, local, lport, remote, rport, l.device);
    const path = this.#route(remote, l.device);
    c.pathNic = path?.nic ?? nic;
    c.parent = l;
    l.synCount++;
    c.openPassive(seg, this.#isn(c), this.#advMss(c, c.pathNic));
  }

  /** A bare reset from `local` to `remote` (no connection state). */
  #resetFor(
    family: 4 | 6,
    local: IpAddr,
    lport: number,
    remote: IpAddr,
    rport: number,
    seq: number,
    ack: number,
    nic: Nic | null,
  ): void {
    const c = new TcpConnection(this, family, local, lport, remote, rport, null, 0);
    c.pathNic = nic;
    this.emitReset(c, seq, ack);
  }

  // ------------------------------------------------------------ SYN cookies

  /** MSS values a cookie can carry (Linux's msstab). */
  static readonly COOKIE_MSS_V4: readonly number[] = [536, 1300, 1440, 1460];
  static readonly COOKIE_MSS_V6: readonly number[] = [1220, 1420, 1440, 8940];

  #cookieHash(
    local: IpAddr,
    lport: number,
    remote: IpAddr,
    rport: number,
    count: number,
    peerIsn: number,
  ): number {
    let h = mix(this.#hashOf(local, lport, remote, rport), this.#key[3]!);
    h = mix(h, count);
    h = mix(h, peerIsn);
    return h >>> 0;
  }

  /**
   * Answer a SYN with no state (the SYN queue is full): the ISN encodes a
   * minute counter (5 bits), an MSS index (3 bits) and a keyed hash of the
   * 4-tuple, the counter and the peer's ISN (24 bits). Window scale and SACK
   * ride in the low bits of the timestamp, as Linux does; without
   * timestamps they are not offered.
   */
  #cookieSynAck(
    family: 4 | 6,
    local: IpAddr,
    lport: number,
    remote: IpAddr,
    rport: number,
    nic: Nic | null,
  ): void {
    const seg = this.#seg;
    const tab = family === 4 ? Tcp.COOKIE_MSS_V4 : Tcp.COOKIE_MSS_V6;
    const peerMss = seg.opts.mss > 0 ? seg.opts.mss : tab[0]!;
    let idx = 0;
    for (let i = tab.length - 1; i >= 0; i--) {
      if (tab[i]! <= peerMss) {
        idx = i;
        break;
      }
    }
    const count = Math.floor(this.now() / 60_000) & 0x1f;
    const h = this.#cookieHash(local, lport, remote, rport, count, seg.seq);
    const isn = ((count << 27) | (idx << 24) | (h & 0xffffff)) >>> 0;
    const c = new TcpConnection(this, family, local, lport, remote, rport, null, 0);
    c.hash = this.#hashOf(local, lport, remote, rport);
    c.pathNic = this.#route(remote, null)?.nic ?? nic;
    const path = c.pathNic;
    c.advMss = this.#advMss(c, path);
    c.irs = seg.seq;
    c.rcvNxt = seqAdd(seg.seq, 1);
    c.rcvAdv = c.rcvNxt;
    const o = seg.opts;
    const tsOk = this.settings.timestamps && o.hasTimestamps;
    const optsOut: TcpOptionsOut = { mss: c.advMss };
    if (tsOk) {
      const ws = this.settings.windowScaling && o.wscale >= 0 ? o.wscale : 0xf;
      const sack = this.settings.sack && o.sackPermitted ? 1 : 0;
      // Low 6 bits: the peer's window scale (0xf: none) and SACK-permitted.
      // The connection made from the cookie continues this clock (its offset), so PAWS holds.
      const tsNow = Math.floor(this.now()) + this.#tsOffsetFor(c.hash);
      const val = ((tsNow & ~0x3f) | (sack << 4) | ws) >>> 0;
      optsOut.ts = { val, ecr: o.tsVal };
      optsOut.sackPermitted = sack === 1;
      if (ws !== 0xf) optsOut.wscale = this.#ourWscale();
    }
    const hl = TCP_HEADER_LEN + tcpOptionsLen(optsOut);
    if (
      this.#build(
        c,
        isn,
        c.rcvNxt,
        SYN | ACK,
        Math.min(65535, this.settings.rmemDefault),
        hl,
        optsOut,
        0,
        0,
      )
    ) {
      this.counters.synCookiesSent++;
    }
  }

  #ourWscale(): number {
    let s = 0;
    while (s < 14 && (65535 << s) < this.settings.rmemMax) s++;
    return s;
  }

  #cookieAccept(
    l: TcpListener,
    family: 4 | 6,
    local: IpAddr,
    lport: number,
    remote: IpAddr,
    rport: number,
    nic: Nic | null,
  ): "taken" | "failed" | "none" {
    const seg = this.#seg;
    // Only while cookies were in use (two minutes after the SYN queue last overflowed).
    if (this.now() - l.lastOverflow > 120_000) return "none";
    const cookie = seqAdd(seg.ack, -1);
    const count = cookie >>> 27;
    const idx = (cookie >>> 24) & 0x7;
    const nowCount = Math.floor(this.now() / 60_000) & 0x1f;
    const age = (nowCount - count + 32) & 0x1f;
    const tab = family === 4 ? Tcp.COOKIE_MSS_V4 : Tcp.COOKIE_MSS_V6;
    const peerIsn = seqAdd(seg.seq, -1);
    if (
      age > 1 || idx >= tab.length ||
      (this.#cookieHash(local, lport, remote, rport, count, peerIsn) & 0xffffff) !==
        (cookie & 0xffffff)
    ) {
      this.counters.synCookiesFailed++;
      return "failed";
    }
    if (l.acceptQueue.length >= l.backlog) {
      this.counters.listenOverflows++;
      this.counters.listenDrops++;
      return "taken"; // dropped: the peer retransmits its ACK
    }
    this.counters.synCookiesReceived++;
    let wscale = -1;
    let sackOk = false;
    if (seg.opts.hasTimestamps) {
      const bits = seg.opts.tsEcr & 0x3f;
      wscale = (bits & 0xf) === 0xf ? -1 : bits & 0xf;
      sackOk = (bits & 0x10) !== 0;
    }
    const c = this.#newConnection(family, local, lport, remote, rport, l.device);
    c.pathNic = this.#route(remote, l.device)?.nic ?? nic;
    const advMss = this.#advMss(c, c.pathNic);
    c.openFromCookie(seg, cookie, tab[idx]!, advMss, wscale, sackOk);
    l.acceptQueue.push(c);
    c.parent = l;
    l.onAcceptable?.();
    // The ACK is the new connection's first segment (it may carry data already),
    // as the final ACK of a handshake with state is (Linux's tcp_child_process).
    c.segmentArrives(seg);
    return "taken";
  }

  // ------------------------------------------------------------ ICMP

  /** ICMPv4 errors quoting a TCP segment of ours (RFC 1122 §4.2.3.9, RFC 1191). */
  #icmp4(e: Icmpv4Event): void {
    if (e.type !== Icmpv4Type.DEST_UNREACHABLE || e.quotedProtocol !== IpProtocol.TCP) return;
    const d = e.buffer.data, v = e.buffer.view;
    const q = e.payloadOffset;
    const ql4 = q + ((d[q]! & 0x0f) << 2);
    if (ql4 + 8 > e.buffer.end) return;
    const local = v.getUint32(q + 12), remote = v.getUint32(q + 16);
    const seq = v.getUint32(ql4 + 4);
    const c = this.#inFlight(local, e.quotedSrcPort, remote, e.quotedDstPort, seq);
    if (c === null) return;
    if (e.code === Icmpv4Code.FRAGMENTATION_NEEDED) {
      // RFC 1191 §4: a router that names no MTU (0): take the next plateau below 576.
      c.pathMtuLowered(e.mtu >= 68 ? e.mtu : 576);
      return;
    }
    // Linux (tcp_v4_err): a hard error ends a connection still in its handshake; an
    // established one only notes it (RFC 1122 §4.2.3.9: soft errors must not abort).
    const err = e.code === Icmpv4Code.PORT_UNREACHABLE || e.code === Icmpv4Code.PROTOCOL_UNREACHABLE
      ? new Deno.errors.ConnectionRefused("Connection refused (ICMP unreachable)")
      : new Deno.errors.NetworkUnreachable("No route to host (ICMP unreachable)");
    c.icmpError(err);
  }

  /** ICMPv6 errors quoting a TCP segment of ours (RFC 4443 §3, RFC 8201). */
  #icmp6(e: Icmpv6Event): void {
    if (e.quotedDstOffset < 0 || e.quotedNextHeader !== IpProtocol.TCP) return;
    const isPtb = e.type === Icmpv6Type.PACKET_TOO_BIG;
    if (!isPtb && e.type !== Icmpv6Type.DEST_UNREACHABLE) return;
    const d = e.buffer.data, v = e.buffer.view;
    const q = e.quotedDstOffset - 24;
    const ql4 = q + 40;
    if (ql4 + 8 > e.buffer.end) return;
    const local = d.slice(q + 8, q + 24), remote = d.slice(q + 24, q + 40);
    const c = this.#inFlight(local, e.quotedSrcPort, remote, e.quotedDstPort, v.getUint32(ql4 + 4));
    if (c === null) return;
    if (isPtb) {
      c.pathMtuLowered(e.mtu);
      return;
    }
    const err = e.code === Icmpv6Code.PORT_UNREACHABLE
      ? new Deno.errors.ConnectionRefused("Connection refused (ICMPv6 unreachable)")
      : e.code === Icmpv6Code.ADMIN_PROHIBITED
      ? new Deno.errors.PermissionDenied("Communication administratively prohibited (ICMPv6)")
      : new Deno.errors.NetworkUnreachable("No route to host (ICMPv6 unreachable)");
    c.icmpError(err);
  }

  /**
   * The connection an ICMP error is about, when the quoted sequence is one
   * it has in flight (RFC 5927 §4.1: otherwise the error may be forged).
   */
  #inFlight(
    local: IpAddr,
    lport: number,
    remote: IpAddr,
    rport: number,
    seq: number,
  ): TcpConnection | null {
    const c = this.#find(local, lport, remote, rport);
    if (c === null) return null;
    if (((seq - c.sndUna) | 0) < 0 || ((seq - c.sndMax) | 0) >= 0) return null;
    return c;
  }
}

function parseTcpOptionsInto(d: Uint8Array, off: number, hl: number, out: TcpOptions): boolean {
  if (hl === TCP_HEADER_LEN) {
    out.clear();
    return true;
  }
  return parseTcpOptions(d, off, hl, out);
}

const NO_TS: TcpOptionsOut = {};
function withoutTs(o: TcpOptionsOut): TcpOptionsOut {
  NO_TS.mss = o.mss;
  NO_TS.wscale = o.wscale;
  NO_TS.sackPermitted = o.sackPermitted;
  NO_TS.sack = o.sack;
  NO_TS.sackCount = o.sackCount;
  NO_TS.ts = undefined;
  return NO_TS;
}
