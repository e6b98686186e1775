/**
 * A network interface of the stack: a {@link LinkEndpoint}, its MAC and
 * MTU, its counters, and the dispatch of received frames by EtherType.
 *
 * @module
 */
import type { LinkEndpoint, NetworkDispatcher } from "./link_endpoint.ts";
import { newNicStats, type NicStats } from "./stats.ts";
import { ETHERNET_HEADER_LEN, EthernetFrame, EtherType } from "./wire/ethernet.ts";
import { formatMac, macEqual } from "./wire/mac_address.ts";
import type { PacketBuffer } from "./wire/packet_buffer.ts";

/** What the stack does with a frame of one EtherType after the NIC checked the Ethernet header. */
export interface FrameHandler {
  handleFrame(nic: Nic, pkt: PacketBuffer): void;
}

/** Options of {@link Nic}. */
export interface NicOptions {
  /** tapir's name for the interface (`lan0`). */
  name: string;
  /** Its MAC address. */
  mac: Uint8Array;
  /** Its IP MTU; defaults to the link's. */
  mtu?: number;
}

/**
 * One interface. It implements {@link NetworkDispatcher} for its link:
 * each frame is counted, checked and handed to the handler of its
 * EtherType; frames for EtherTypes without a handler are dropped and
 * counted.
 */
export class Nic implements NetworkDispatcher {
  readonly id: number;
  readonly name: string;
  readonly link: LinkEndpoint;
  readonly mac: Uint8Array;
  readonly stats: NicStats = newNicStats();
  #mtu: number;
  #up = true;
  #eth = new EthernetFrame();
  /** Handlers by EtherType, filled in by the stack's protocols. */
  ipv4: FrameHandler | null = null;
  arp: FrameHandler | null = null;
  ipv6: FrameHandler | null = null;
  /** Called for every frame dropped for an unknown EtherType (the stack's total). */
  onUnknownEtherType: (() => void) | null = null;
  /** Group MAC addresses this NIC accepts besides broadcast (e.g. IPv6 multicast). */
  readonly groupMacs: Uint8Array[] = [];
  /** Accept frames for any destination MAC (a sniffer or bridge would). */
  promiscuous = false;

  constructor(id: number, link: LinkEndpoint, opts: NicOptions) {
    this.id = id;
    this.link = link;
    this.name = opts.name;
    this.mac = opts.mac;
    this.#mtu = opts.mtu ?? link.mtu();
  }

  /** The interface's IP MTU. */
  mtu(): number {
    return this.#mtu;
  }

  setMtu(mtu: number): void {
    this.#mtu = mtu;
  }

  /** False once the link failed or the NIC was closed. */
  isUp(): boolean {
    return this.#up && this.link.isUp();
  }

  deliverFrame(pkt: PacketBuffer): void {
    const s = this.stats;
    const len = pkt.end - pkt.start;
    s.framesReceived++;
    s.bytesReceived += len;
    if (len < ETHERNET_HEADER_LEN) {
      s.runtFramesReceived++;
      return;
    }
    const eth = this.#eth.reset(pkt, pkt.start);
    if (!this.promiscuous && !this.#acceptsDst(pkt)) {
      s.notForUsFramesReceived++;
      return;
    }
    pkt.networkOffset = pkt.start + ETHERNET_HEADER_LEN;
    switch (eth.etherType()) {
      case EtherType.IPV4:
        s.ipv4FramesReceived++;
        if (this.ipv4 !== null) return this.ipv4.handleFrame(this, pkt);
        break;
      case EtherType.ARP:
        s.arpFramesReceived++;
        if (this.arp !== null) return this.arp.handleFrame(this, pkt);
        break;
      case EtherType.IPV6:
        s.ipv6FramesReceived++;
        if (this.ipv6 !== null) return this.ipv6.handleFrame(this, pkt);
        break;
      case EtherType.VLAN:
      case EtherType.QINQ:
        s.vlanTaggedFramesDropped++;
        return;
    }
    s.unknownEtherTypeFramesDropped++;
    this.onUnknownEtherType?.();
  }

  linkDown(_reason: string): void {
    this.#up = false;
  }

  /** Send a whole frame; counts it, or counts the error when the link refuses. */
  send(pkt: PacketBuffer): boolean {
    if (!this.#up) {
      this.stats.txErrors++;
      return false;
    }
    const ok = this.link.writePacket(pkt);
    if (ok) {
      this.stats.framesSent++;
      this.stats.bytesSent += pkt.end - pkt.start;
    } else {
      this.stats.txErrors++;
    }
    return ok;
  }

  /** Stop using the link and close it. */
  close(): void {
    this.#up = false;
    this.link.attach(null);
    this.link.close();
  }

  toString(): string {
    return `${this.name} (${formatMac(this.mac)})`;
  }

  #acceptsDst(pkt: PacketBuffer): boolean {
    const d = pkt.data;
    const o = pkt.start;
    if ((d[o]! & 1) === 0) return macEqual(d, this.mac, o, 0);
    if (d[o] === 0xff && d[o + 1] === 0xff && d[o + 2] === 0xff) return true; // broadcast
    // IPv6 multicast (33:33:…) is filtered by the IPv6 layer against its groups.
    if (d[o] === 0x33 && d[o + 1] === 0x33) return true;
    for (const g of this.groupMacs) if (macEqual(d, g, o, 0)) return true;
    return false;
  }
}
