/**
 * UDP (RFC 768) for IPv4 and IPv6 in one implementation: the port
 * demultiplexer (local address and port, optionally the remote address and
 * port and the interface, with wildcards; the most specific binding wins),
 * checksum rules of both families (RFC 768: 0 means none over IPv4; RFC
 * 8200 §8.1: mandatory over IPv6), Port Unreachable when nothing listens
 * (RFC 1122 §4.1.3.1, RFC 4443 §3.1; never for multicast or broadcast), and
 * the send path services need: a chosen interface, a chosen link-layer
 * destination with no ARP/NDP, and any source, 0.0.0.0 included.
 *
 * Sockets here take a synchronous callback per datagram (the buffer is
 * valid only during the call): built-in services pay no Promise per
 * packet. {@link ./datagram.ts} builds the Deno-shaped API on it.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Ipv4 } from "../ipv4/ipv4.ts";
import type { Ipv6 } from "../ipv6/ipv6.ts";
import type { Random } from "../random.ts";
import type { StackStats } from "../stats.ts";
import { IpProtocol, type Ipv4Packet, writeIpv4Header } from "../wire/ipv4.ts";
import { IPV6_HEADER_LEN, type Ipv6Packet, writeIpv6Header } from "../wire/ipv6.ts";
import { Icmpv4Code, Icmpv4Type } from "../wire/icmpv4.ts";
import { Icmpv6Code, Icmpv6Type } from "../wire/icmpv6.ts";
import {
  finishChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "../wire/checksum.ts";
import { ipv4IsLimitedBroadcast, ipv4IsMulticast, ipv6IsMulticast } from "../wire/ip_address.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";
import {
  type BufferPool,
  HEADROOM,
  type PacketBuffer,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
} from "../wire/packet_buffer.ts";

const UDP_HEADER_LEN = 8;
/** `::`, the IPv6 source left for the output path to choose (only read). */
const UNSPECIFIED6 = new Uint8Array(16);
/** Linux's default ip_local_port_range. */
export const EPHEMERAL_PORT_MIN = 32768;
export const EPHEMERAL_PORT_MAX = 60999;

/** An IP address as the stack keeps it: a number (IPv4) or 16 bytes (IPv6). */
export type IpAddr = number | Uint8Array;

/** A datagram handed to a socket's callback (valid only during the call). */
export interface UdpDatagram {
  family: 4 | 6;
  /** IPv4 source and destination (family 4), else 0. */
  src: number;
  dst: number;
  /** IPv6: offsets of the 16-byte source and destination in `buffer.data` (family 6), else -1. */
  src6Offset: number;
  dst6Offset: number;
  srcPort: number;
  dstPort: number;
  buffer: PacketBuffer;
  payloadOffset: number;
  payloadLength: number;
  /** The interface it arrived on (null: from this host, by loopback). */
  nic: Nic | null;
}

/** Where a socket is bound. */
export interface UdpBindOptions {
  /** 4 or 6; 0 (the default for a wildcard) takes both, as Linux's `::` with bindv6only=0. */
  family?: 0 | 4 | 6;
  /** Local address; null or absent: any (0.0.0.0 / ::). */
  address?: IpAddr | null;
  /** Local port; 0 picks an ephemeral one. */
  port: number;
  /** Only datagrams from this remote address and port (a "connected" socket). */
  remote?: { address: IpAddr; port: number };
  /** Only datagrams that arrive on this interface, and send out of it (SO_BINDTODEVICE). */
  device?: Nic | null;
  /** Share the address and port with other sockets that also set it (SO_REUSEADDR/PORT). */
  reuse?: boolean;
  /** Called for each datagram, synchronously. */
  onDatagram: (d: UdpDatagram) => void;
}

/** How one datagram is sent. */
export interface UdpSendOptions {
  /** Leave by this interface (default: the socket's device, else the route's). */
  nic?: Nic;
  /** Write this link-layer destination instead of resolving the next hop (broadcast or a MAC). */
  linkDst?: Uint8Array;
  /** Source address (default: the socket's, else chosen by the route); 0 / :: is kept as it is. */
  src?: IpAddr;
  /** TTL / hop limit (default the layer's). */
  ttl?: number;
}

/** A bound UDP socket. */
export class UdpEndpoint {
  /** @internal */
  constructor(
    readonly udp: Udp,
    readonly family: 0 | 4 | 6,
    readonly address: IpAddr | null,
    readonly port: number,
    readonly remote: { address: IpAddr; port: number } | null,
    readonly device: Nic | null,
    readonly reuse: boolean,
    readonly onDatagram: (d: UdpDatagram) => void,
  ) {}
  closed = false;

  /** Send `payload` to `dst`:`dstPort` from this socket; false when it could not leave. */
  send(dst: IpAddr, dstPort: number, payload: Uint8Array, opts: UdpSendOptions = {}): boolean {
    return this.udp.sendDatagram(this, dst, dstPort, payload, opts);
  }

  /** Stop receiving; the port is free again. */
  close(): void {
    this.udp.unbind(this);
  }
}

function addrEqual(a: IpAddr, b: IpAddr): boolean {
  if (typeof a === "number" || typeof b === "number") return a === b;
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

function addrAt(a: IpAddr, v4: number, d: Uint8Array, off: number): boolean {
  if (typeof a === "number") return off < 0 && a === v4;
  if (off < 0) return false;
  for (let i = 0; i < 16; i++) if (a[i] !== d[off + i]) return false;
  return true;
}

/** UDP of one stack, both families. */
export class Udp {
  readonly #ports = new Map<number, UdpEndpoint[]>();
  readonly #dg: UdpDatagram = {
    family: 4,
    src: 0,
    dst: 0,
    src6Offset: -1,
    dst6Offset: -1,
    srcPort: 0,
    dstPort: 0,
    buffer: null as unknown as PacketBuffer,
    payloadOffset: 0,
    payloadLength: 0,
    nic: null,
  };
  #nextEphemeral: number;

  constructor(
    readonly ctx: {
      pool: BufferPool;
      stats: StackStats;
      random: Random;
      nics: ReadonlyMap<number, Nic>;
    },
    readonly ipv4: Ipv4,
    readonly ipv6: Ipv6,
  ) {
    const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
    this.#nextEphemeral = EPHEMERAL_PORT_MIN + (ctx.random.uint32() % span);
    ipv4.transports.set(IpProtocol.UDP, (nic, pkt, ip) => this.#receive4(nic, pkt, ip));
    ipv6.transports.set(
      IpProtocol.UDP,
      (nic, pkt, ip, off, len) => this.#receive6(nic, pkt, ip, off, len),
    );
  }

  /**
   * Bind a socket.
   *
   * @throws Deno.errors.AddrInUse when another socket holds an overlapping binding
   * @throws Deno.errors.AddrNotAvailable when `address` is not one of this stack's
   */
  bindSocket(o: UdpBindOptions): UdpEndpoint {
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
    const reuse = o.reuse ?? false;
    let port = o.port;
    const clash = (p: number) =>
      (this.#ports.get(p) ?? []).some((e) =>
        !(reuse && e.reuse) &&
        (e.family === 0 || family === 0 || e.family === family) &&
        (e.address === null || address === null || addrEqual(e.address, address)) &&
        (e.device === null || device === null || e.device === device)
      );
    if (port === 0) {
      const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
      for (let i = 0; i < span && port === 0; i++) {
        const c = this.#nextEphemeral;
        this.#nextEphemeral = c >= EPHEMERAL_PORT_MAX ? EPHEMERAL_PORT_MIN : c + 1;
        if (!clash(c)) port = c;
      }
      if (port === 0) throw new Deno.errors.AddrInUse("No free ephemeral UDP port");
    } else if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`Invalid port ${port}: expected 0-65535`);
    } else if (clash(port)) {
      throw new Deno.errors.AddrInUse("Address already in use");
    }
    const ep = new UdpEndpoint(
      this,
      family,
      address,
      port,
      o.remote ?? null,
      device,
      reuse,
      o.onDatagram,
    );
    const list = this.#ports.get(port);
    if (list === undefined) this.#ports.set(port, [ep]);
    else list.push(ep);
    return ep;
  }

  /** @internal Remove `ep` from the demultiplexer. */
  unbind(ep: UdpEndpoint): void {
    if (ep.closed) return;
    ep.closed = true;
    const list = this.#ports.get(ep.port);
    if (list === undefined) return;
    const i = list.indexOf(ep);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#ports.delete(ep.port);
  }

  /**
   * Bind `port` on every address of both families with a callback (the
   * form traceroute and the lab's probes use; 0 picks an ephemeral port).
   */
  bind(port: number, onDatagram: (d: UdpDatagram) => void): UdpEndpoint {
    return this.bindSocket({ port, onDatagram });
  }

  /** Send one datagram from `srcPort` with no socket (probes that bound their port already). */
  send(
    srcPort: number,
    dst: IpAddr,
    dstPort: number,
    payload: Uint8Array,
    opts: UdpSendOptions = {},
  ): boolean {
    return this.#send(srcPort, null, dst, dstPort, payload, opts, opts.src);
  }

  #isLocal(a: IpAddr): boolean {
    return typeof a === "number" ? this.ipv4.isLocal(a) : this.ipv6.local.get(a, 0) !== undefined;
  }

  /** @internal */
  sendDatagram(
    ep: UdpEndpoint,
    dst: IpAddr,
    dstPort: number,
    payload: Uint8Array,
    opts: UdpSendOptions,
  ): boolean {
    if (ep.closed) return false;
    const fam = typeof dst === "number" ? 4 : 6;
    const src = opts.src ??
      (ep.address !== null && (typeof ep.address === "number") === (fam === 4)
        ? ep.address
        : undefined);
    return this.#send(ep.port, ep.device, dst, dstPort, payload, opts, src);
  }

  /** One datagram from `srcPort` with `opts`, from `src` (undefined: chosen by the route). */
  #send(
    srcPort: number,
    device: Nic | null,
    dst: IpAddr,
    dstPort: number,
    payload: Uint8Array,
    opts: UdpSendOptions,
    src: IpAddr | undefined,
  ): boolean {
    const s = this.ctx.stats.udp;
    const len = UDP_HEADER_LEN + payload.length;
    // A source of the other family than the destination cannot be sent.
    const mixed = src !== undefined && (typeof src === "number") !== (typeof dst === "number");
    if (len > 65_535 || mixed) {
      s.sendFailed++;
      return false;
    }
    const b = this.ctx.pool.get();
    if (b === null) {
      this.ctx.stats.bufferPoolExhausted++;
      s.sendFailed++;
      return false;
    }
    try {
      const nic = opts.nic ?? device ?? undefined;
      const ipOff = HEADROOM + ETHERNET_HEADER_LEN;
      let u: number;
      let sum: number;
      const keepSource = src !== undefined;
      if (typeof dst === "number") {
        const src4 = typeof src === "number" ? src : this.#sourceV4(dst, nic) ?? 0;
        writeIpv4Header(b, ipOff, {
          src: src4,
          dst,
          protocol: IpProtocol.UDP,
          payloadLen: len,
          ttl: opts.ttl ?? this.ipv4.settings.defaultTtl,
          id: this.ipv4.nextId(),
        });
        u = ipOff + 20;
        sum = ipv4PseudoHeaderSum(src4, dst, IpProtocol.UDP, len);
      } else {
        writeIpv6Header(b, ipOff, {
          src: src instanceof Uint8Array ? src : UNSPECIFIED6,
          dst,
          nextHeader: IpProtocol.UDP,
          payloadLen: len,
          hopLimit: opts.ttl ?? this.ipv6.settings.defaultHopLimit,
        });
        u = ipOff + IPV6_HEADER_LEN;
        sum = ipv6PseudoHeaderSum(b.data, ipOff + 8, ipOff + 24, IpProtocol.UDP, len);
      }
      const v = b.view;
      v.setUint16(u, srcPort);
      v.setUint16(u + 2, dstPort);
      v.setUint16(u + 4, len);
      v.setUint16(u + 6, 0);
      b.data.set(payload, u + UDP_HEADER_LEN);
      const c = finishChecksum(onesSum(b.data, u, len, sum));
      // RFC 768 / RFC 8200 §8.1: a computed 0 is sent as 0xffff.
      v.setUint16(u + 6, c === 0 ? 0xffff : c);
      b.start = HEADROOM;
      b.end = u + len;
      const out = { nic, linkDst: opts.linkDst, keepSource };
      const ok = typeof dst === "number"
        ? this.ipv4.output(b, ipOff, out)
        : this.ipv6.output(b, ipOff, out);
      if (ok) s.datagramsSent++;
      else s.sendFailed++;
      return ok;
    } finally {
      this.ctx.pool.put(b);
    }
  }

  /** The source for `dst` out of `nic` (or the route's NIC), as the IPv4 output path would pick. */
  #sourceV4(dst: number, nic: Nic | undefined): number | null {
    if (this.ipv4.isLocal(dst)) return dst;
    if (nic !== undefined) return this.ipv4.sourceFor(nic, dst);
    const r = this.ipv4.routes.lookup(dst, 0);
    const n = r === null ? undefined : this.ctx.nics.get(r.nicId);
    return n === undefined ? null : this.ipv4.sourceFor(n, r!.gateway ?? dst);
  }

  // ------------------------------------------------------------ receive

  #receive4(nic: Nic | null, pkt: PacketBuffer, ip: Ipv4Packet): void {
    const s = this.ctx.stats.udp;
    s.datagramsReceived++;
    const u = ip.off + ip.headerLen();
    const avail = pkt.end - u;
    const v = pkt.view;
    const len = avail >= UDP_HEADER_LEN ? v.getUint16(u + 4) : 0;
    if (avail < UDP_HEADER_LEN || len < UDP_HEADER_LEN || len > avail) {
      s.malformedReceived++;
      return;
    }
    // A checksum the kernel left for the "device" (NEEDS_CSUM) or already
    // checked (DATA_VALID) is trusted; 0 means none (RFC 768).
    const csum = v.getUint16(u + 6);
    if (
      csum !== 0 && (pkt.vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) === 0 &&
      finishChecksum(
          onesSum(pkt.data, u, len, ipv4PseudoHeaderSum(ip.src(), ip.dst(), IpProtocol.UDP, len)),
        ) !== 0
    ) {
      s.checksumErrors++;
      return;
    }
    const d = this.#dg;
    d.family = 4;
    d.src = ip.src();
    d.dst = ip.dst();
    d.src6Offset = -1;
    d.dst6Offset = -1;
    if (this.#deliver(d, nic, pkt, u, len)) return;
    s.unknownPortReceived++;
    if (!ipv4IsMulticast(d.dst) && !ipv4IsLimitedBroadcast(d.dst)) {
      this.ipv4.icmp.sendErrorAbout(
        pkt,
        ip.off,
        nic,
        Icmpv4Type.DEST_UNREACHABLE,
        Icmpv4Code.PORT_UNREACHABLE,
        0,
      );
    }
  }

  #receive6(nic: Nic | null, pkt: PacketBuffer, ip: Ipv6Packet, u: number, avail: number): void {
    const s = this.ctx.stats.udp;
    s.datagramsReceived++;
    const v = pkt.view;
    const len = avail >= UDP_HEADER_LEN ? v.getUint16(u + 4) : 0;
    if (avail < UDP_HEADER_LEN || len < UDP_HEADER_LEN || len > avail) {
      s.malformedReceived++;
      return;
    }
    // RFC 8200 §8.1: the UDP checksum is mandatory over IPv6; 0 is invalid.
    if (
      v.getUint16(u + 6) === 0 ||
      ((pkt.vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) === 0 &&
        finishChecksum(
            onesSum(
              pkt.data,
              u,
              len,
              ipv6PseudoHeaderSum(pkt.data, ip.srcOffset(), ip.dstOffset(), IpProtocol.UDP, len),
            ),
          ) !== 0)
    ) {
      s.checksumErrors++;
      return;
    }
    const d = this.#dg;
    d.family = 6;
    d.src = 0;
    d.dst = 0;
    d.src6Offset = ip.srcOffset();
    d.dst6Offset = ip.dstOffset();
    if (this.#deliver(d, nic, pkt, u, len)) return;
    s.unknownPortReceived++;
    if (ipv6IsMulticast(pkt.data, ip.dstOffset())) return;
    this.ipv6.icmp.sendErrorAbout(
      pkt,
      ip.off,
      nic,
      Icmpv6Type.DEST_UNREACHABLE,
      Icmpv6Code.PORT_UNREACHABLE,
      0,
    );
  }

  /** Find the most specific socket for the datagram in `d` and call it; false when none. */
  #deliver(d: UdpDatagram, nic: Nic | null, pkt: PacketBuffer, u: number, len: number): boolean {
    const v = pkt.view;
    const dstPort = v.getUint16(u + 2);
    const list = this.#ports.get(dstPort);
    if (list === undefined) return false;
    const srcPort = v.getUint16(u);
    const data = pkt.data;
    let best: UdpEndpoint | null = null;
    let bestScore = -1;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.family !== 0 && e.family !== d.family) continue;
      let score = 0;
      if (e.address !== null) {
        if (!addrAt(e.address, d.dst, data, d.dst6Offset)) continue;
        score += 2;
      }
      if (e.device !== null) {
        if (e.device !== nic) continue;
        score += 1;
      }
      if (e.remote !== null) {
        if (e.remote.port !== srcPort || !addrAt(e.remote.address, d.src, data, d.src6Offset)) {
          continue;
        }
        score += 4;
      }
      if (score > bestScore) {
        best = e;
        bestScore = score;
      }
    }
    if (best === null) return false;
    d.srcPort = srcPort;
    d.dstPort = dstPort;
    d.buffer = pkt;
    d.payloadOffset = u + UDP_HEADER_LEN;
    d.payloadLength = len - UDP_HEADER_LEN;
    d.nic = nic;
    best.onDatagram(d);
    return true;
  }
}
