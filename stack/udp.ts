/**
 * UDP (RFC 768) for local traffic: bound sockets with a receive callback,
 * checksum verification, and Port Unreachable when nothing listens
 * (RFC 1122 §4.1.3.1), which is how `traceroute` to tapir ends.
 *
 * @module
 */
import type { Nic } from "./nic.ts";
import type { Ipv4 } from "./ipv4/ipv4.ts";
import { IpProtocol, type Ipv4Packet, writeIpv4Header } from "./wire/ipv4.ts";
import { Icmpv4Code, Icmpv4Type } from "./wire/icmpv4.ts";
import { finishChecksum, ipv4PseudoHeaderSum, onesSum } from "./wire/checksum.ts";
import { ipv4IsLimitedBroadcast, ipv4IsMulticast } from "./wire/ip_address.ts";
import { ETHERNET_HEADER_LEN } from "./wire/ethernet.ts";
import { HEADROOM, type PacketBuffer } from "./wire/packet_buffer.ts";
import { VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM } from "./wire/packet_buffer.ts";

/** A datagram handed to a socket (valid only during the callback). */
export interface UdpDatagram {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  buffer: PacketBuffer;
  payloadOffset: number;
  payloadLength: number;
}

/** A bound UDP socket. */
export interface UdpSocket {
  readonly port: number;
  /** Send `payload` from this socket's port. */
  send(
    dst: number,
    dstPort: number,
    payload: Uint8Array,
    opts?: { ttl?: number; src?: number },
  ): boolean;
  close(): void;
}

/** UDP over IPv4 for one stack. */
export class Udp {
  #sockets: Map<number, (d: UdpDatagram) => void> = new Map();
  #dg: UdpDatagram = {
    src: 0,
    dst: 0,
    srcPort: 0,
    dstPort: 0,
    buffer: null as unknown as PacketBuffer,
    payloadOffset: 0,
    payloadLength: 0,
  };
  #nextEphemeral = 32768;

  constructor(readonly ipv4: Ipv4) {
    ipv4.transports.set(IpProtocol.UDP, (nic, pkt, ip) => this.receive(nic, pkt, ip));
  }

  /**
   * Bind `port` (0 picks an ephemeral one, 32768–60999 like Linux).
   *
   * @throws Error when the port is taken
   */
  bind(port: number, onDatagram: (d: UdpDatagram) => void): UdpSocket {
    let p = port;
    if (p === 0) {
      for (let i = 0; i < 28232 && p === 0; i++) {
        const c = this.#nextEphemeral;
        this.#nextEphemeral = c >= 60999 ? 32768 : c + 1;
        if (!this.#sockets.has(c)) p = c;
      }
      if (p === 0) throw new Error("no free ephemeral UDP port");
    } else if (this.#sockets.has(p)) {
      throw new Error(`UDP port ${p} is in use`);
    }
    this.#sockets.set(p, onDatagram);
    return {
      port: p,
      send: (dst, dstPort, payload, opts) => this.send(p, dst, dstPort, payload, opts),
      close: () => this.#sockets.delete(p),
    };
  }

  /** Build and send one datagram. */
  send(
    srcPort: number,
    dst: number,
    dstPort: number,
    payload: Uint8Array,
    opts: { ttl?: number; src?: number } = {},
  ): boolean {
    const pool = this.ipv4.stack.pool;
    const b = pool.get();
    if (b === null) {
      this.ipv4.stack.stats.bufferPoolExhausted++;
      return false;
    }
    try {
      const ipOff = HEADROOM + ETHERNET_HEADER_LEN;
      const len = 8 + payload.length;
      let src = opts.src ?? 0;
      if (src === 0) {
        const r = this.ipv4.routes.lookup(dst, 0);
        const nic = r !== null ? this.ipv4.stack.nics.get(r.nicId) : undefined;
        src = this.ipv4.local.has(dst)
          ? dst
          : nic !== undefined
          ? this.ipv4.sourceFor(nic, r!.gateway ?? dst) ?? 0
          : 0;
      }
      writeIpv4Header(b, ipOff, {
        src,
        dst,
        protocol: IpProtocol.UDP,
        payloadLen: len,
        ttl: opts.ttl ?? this.ipv4.settings.defaultTtl,
        id: this.ipv4.nextId(),
      });
      const u = ipOff + 20;
      const v = b.view;
      v.setUint16(u, srcPort);
      v.setUint16(u + 2, dstPort);
      v.setUint16(u + 4, len);
      v.setUint16(u + 6, 0);
      b.data.set(payload, u + 8);
      const c = finishChecksum(
        onesSum(b.data, u, len, ipv4PseudoHeaderSum(src, dst, IpProtocol.UDP, len)),
      );
      v.setUint16(u + 6, c === 0 ? 0xffff : c);
      b.start = ipOff - ETHERNET_HEADER_LEN;
      b.end = u + len;
      this.ipv4.stack.stats.udp.datagramsSent++;
      return this.ipv4.output(b, ipOff);
    } finally {
      pool.put(b);
    }
  }

  /** Local delivery of a UDP datagram. */
  receive(nic: Nic | null, pkt: PacketBuffer, ip: Ipv4Packet): void {
    const s = this.ipv4.stack.stats.udp;
    s.datagramsReceived++;
    const u = ip.off + ip.headerLen();
    const avail = pkt.end - u;
    if (avail < 8) {
      s.malformedReceived++;
      return;
    }
    const v = pkt.view;
    const len = v.getUint16(u + 4);
    if (len < 8 || len > avail) {
      s.malformedReceived++;
      return;
    }
    const csum = v.getUint16(u + 6);
    // A checksum the kernel left for the "device" (NEEDS_CSUM) or already
    // checked (DATA_VALID) is trusted; 0 means none (RFC 768).
    if (csum !== 0 && (pkt.vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) === 0) {
      const sum = onesSum(
        pkt.data,
        u,
        len,
        ipv4PseudoHeaderSum(ip.src(), ip.dst(), IpProtocol.UDP, len),
      );
      if (finishChecksum(sum) !== 0) {
        s.checksumErrors++;
        return;
      }
    }
    const dstPort = v.getUint16(u + 2);
    const handler = this.#sockets.get(dstPort);
    if (handler === undefined) {
      s.unknownPortReceived++;
      const dst = ip.dst();
      if (!ipv4IsMulticast(dst) && !ipv4IsLimitedBroadcast(dst)) {
        this.ipv4.icmp.sendErrorAbout(
          pkt,
          ip.off,
          nic,
          Icmpv4Type.DEST_UNREACHABLE,
          Icmpv4Code.PORT_UNREACHABLE,
          0,
        );
      }
      return;
    }
    const d = this.#dg;
    d.src = ip.src();
    d.dst = ip.dst();
    d.srcPort = v.getUint16(u);
    d.dstPort = dstPort;
    d.buffer = pkt;
    d.payloadOffset = u + 8;
    d.payloadLength = len - 8;
    handler(d);
  }
}
