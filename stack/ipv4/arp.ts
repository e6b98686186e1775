/**
 * ARP (RFC 826) for the stack: answers requests for our addresses, feeds
 * the per-NIC neighbor cache (NUD states shared with NDP), sends requests
 * for resolution and probes, and gratuitous ARP when an address comes up.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Ipv4Layer as Ipv4 } from "./_layer.ts";
import { ArpOp, ArpPacket, ArpRepr } from "../wire/arp.ts";
import { EtherType, writeEthernetHeader } from "../wire/ethernet.ts";
import { ipv4CidrContains } from "../wire/ip_address.ts";
import { BROADCAST_MAC } from "../wire/mac_address.ts";
import { HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";
import { RepeatFilter } from "../repeat_filter.ts";

const ZERO_MAC = new Uint8Array(6);

/** Sees every well-formed ARP request and reply (`sha` is valid only during the call). */
export type ArpWatcher = (nic: Nic, op: number, spa: number, sha: Uint8Array, tpa: number) => void;

/** ARP for one stack. */
export class Arp {
  #arp = new ArpPacket();
  #mac = new Uint8Array(6);
  /** Senders the full table could not enter, seen in the last 2–4 s. */
  #senders: RepeatFilter | null = null;
  /** Address conflict detection (RFC 5227): the DHCP client watches while it probes. */
  readonly watchers: Set<ArpWatcher> = new Set();

  constructor(readonly ipv4: Ipv4) {}

  /** An ARP frame arrived on `nic`. */
  receive(nic: Nic, pkt: PacketBuffer): void {
    const s = this.ipv4.stack.stats.arp;
    s.packetsReceived++;
    const a = this.#arp.reset(pkt, pkt.networkOffset);
    if (!a.check()) {
      s.malformedReceived++;
      return;
    }
    const st = this.ipv4.nicState(nic);
    if (st === undefined) return;
    const op = a.op();
    // Linux arp_process: only requests and replies.
    if (op !== ArpOp.REQUEST && op !== ArpOp.REPLY) {
      s.unknownOpDropped++;
      return;
    }
    // RFC 1812 §3.3.2: a sender that claims a broadcast or multicast MAC is not believed.
    if ((pkt.data[a.shaOffset()]! & 1) !== 0) {
      s.groupSenderDropped++;
      return;
    }
    const spa = a.spa();
    const tpa = a.tpa();
    const mac = this.#mac;
    mac.set(pkt.data.subarray(a.shaOffset(), a.shaOffset() + 6));
    for (const w of this.watchers) w(nic, op, spa, mac, tpa);
    const forUs = st.addresses.some((x) => x.address === tpa);
    // RFC 826 "merge": update an existing entry for the sender; create one
    // only when the packet is for us. An ARP probe (sender 0.0.0.0) teaches
    // nothing (RFC 5227).
    let entered = true;
    if (spa !== 0) {
      if (op === ArpOp.REPLY && forUs) {
        st.neighbors.handleAdvertisement(spa, mac, { solicited: true, override: true });
      } else {
        entered = st.neighbors.handleSolicitation(spa, mac, forUs && op === ArpOp.REQUEST);
      }
    }
    if (op !== ArpOp.REQUEST) {
      // Every reply, a probe's answer from 0.0.0.0 too.
      s.repliesReceived++;
      return;
    }
    if (!forUs) {
      s.requestsNotForUs++;
      return;
    }
    // A sender the full table cannot take: Linux's arp_process answers only
    // a neighbour neigh_event_ns could enter. tapir answers one that asked
    // in the last 2–4 s, as a host does after its retransmit time (1 s), so
    // a flood of requests from random senders costs no write per packet
    // and a host that comes meanwhile resolves us on its second request
    // (as NDP, ndp.ts).
    if (!entered) {
      const stack = this.ipv4.stack;
      const f = this.#senders ??= new RepeatFilter(stack.random);
      // The sender's MAC and address, adjacent in the packet (sha, spa).
      if (!f.repeated(stack.clock.now(), pkt.data, a.shaOffset(), 10, pkt.data, 0, 0)) {
        s.requestsUnanswered++;
        return;
      }
    }
    s.requestsAnswered++;
    this.#send(nic, ArpOp.REPLY, tpa, mac, spa, mac);
  }

  /** Send a request for `target`: broadcast, or unicast to `unicastTo` when probing. */
  sendRequest(nic: Nic, target: number, unicastTo: Uint8Array | null): void {
    const st = this.ipv4.nicState(nic);
    if (st === undefined || st.addresses.length === 0) return;
    let src = st.addresses[0]!.address;
    for (const a of st.addresses) {
      if (ipv4CidrContains(a, target)) {
        src = a.address;
        break;
      }
    }
    this.ipv4.stack.stats.arp.requestsSent++;
    this.#send(nic, ArpOp.REQUEST, src, ZERO_MAC, target, unicastTo ?? BROADCAST_MAC);
  }

  /** RFC 5227 §2.1.1 probe for `target`: a broadcast request from 0.0.0.0. */
  sendProbe(nic: Nic, target: number): void {
    this.ipv4.stack.stats.arp.requestsSent++;
    this.#send(nic, ArpOp.REQUEST, 0, ZERO_MAC, target, BROADCAST_MAC);
  }

  /** Announce `address` (RFC 5227 §3 ARP announcement: a request with sender = target). */
  sendGratuitous(nic: Nic, address: number): void {
    this.ipv4.stack.stats.arp.gratuitousSent++;
    this.#send(nic, ArpOp.REQUEST, address, ZERO_MAC, address, BROADCAST_MAC);
  }

  #send(nic: Nic, op: number, spa: number, tha: Uint8Array, tpa: number, ethDst: Uint8Array): void {
    const pool = this.ipv4.stack.pool;
    const b = pool.get();
    if (b === null) {
      this.ipv4.stack.stats.bufferPoolExhausted++;
      return;
    }
    writeEthernetHeader(b, HEADROOM, ethDst, nic.mac, EtherType.ARP);
    ArpRepr.emit(
      { op, senderMac: nic.mac, senderIp: spa, targetMac: tha, targetIp: tpa },
      b,
      HEADROOM + 14,
    );
    // Pad to the Ethernet minimum (60 bytes without FCS).
    b.data.fill(0, HEADROOM + 42, HEADROOM + 60);
    b.start = HEADROOM;
    b.end = HEADROOM + 60;
    nic.send(b);
    pool.put(b);
  }
}
