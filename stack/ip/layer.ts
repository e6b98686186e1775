/**
 * The parts both IP layers build alike: the loopback queue, the reassembler
 * with its timeout error, the last step onto the link (Ethernet header, a
 * named or group destination, or the neighbor cache), detaching a NIC, and
 * the options of a local send.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { NeighborCache } from "../neighbor_cache.ts";
import type { Timer } from "../clock.ts";
import { LoopbackQueue } from "../loopback.ts";
import { Reassembler } from "../reassembly.ts";
import { ETHERNET_HEADER_LEN, type EthernetFrame } from "../wire/ethernet.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import type { StackContext } from "./context.ts";
import { type IcmpErrorCore, sendAboutBytes } from "./icmp_error.ts";

/** How a locally built packet is sent (both families' `output`). */
export interface IpOutputOptions {
  /** The egress NIC (needed for link-local and multicast destinations). */
  nic?: Nic;
  /** The link-layer destination: no ARP/NDP (a DHCP reply to a client's MAC, a broadcast). */
  linkDst?: Uint8Array;
  /** Keep an unspecified source (RFC 2131 §4.1: a client without an address sends from it). */
  keepSource?: boolean;
  /** IPv4: skip the OUTPUT hook (a packet the firewall itself builds). */
  skipHooks?: boolean;
  /** IPv6: never fragment, send as is (Packet Too Big probes). */
  noFragment?: boolean;
}

/**
 * A loopback queue whose packets skip PREROUTING (as netfilter) and go
 * straight to local delivery.
 */
export function loopbackFor(stack: StackContext, deliverLocal: (b: PacketBuffer) => void) {
  return new LoopbackQueue(stack.clock, stack.pool, stack.stats, deliverLocal);
}

/** The reassembly settings both families have. */
export interface ReassemblySettings {
  reassemblyTimeoutMs: number;
  reassemblyMemory: number;
}

/**
 * A reassembler for datagrams of at most 65 535 bytes whose timeout sends
 * Time Exceeded code 1 about the first fragment, when it arrived (RFC 792 /
 * RFC 1122 §3.3.2, RFC 8200 §4.5).
 *
 * @param fixedHeaderLen bytes of header the 65 535 does not count (IPv6's 40)
 */
export function reassemblerFor(
  stack: StackContext,
  settings: ReassemblySettings,
  icmp: IcmpErrorCore,
  timeExceeded: { type: number; code: number },
  fixedHeaderLen?: number,
): Reassembler<string> {
  return new Reassembler<string>({
    clock: stack.clock,
    pool: stack.pool,
    timeoutMs: settings.reassemblyTimeoutMs,
    memoryLimit: settings.reassemblyMemory,
    maxDatagramLen: 65_535,
    fixedHeaderLen,
    onTimeout: (_key, first) => {
      if (first !== null) sendAboutBytes(icmp, first.bytes, timeExceeded.type, timeExceeded.code);
    },
  });
}

/**
 * The last step of every packet leaving by `outNic`: the Ethernet header in
 * front of the IP header, then the destination the sender named
 * (`pkt.linkDst`), else `groupMac` (broadcast, multicast), else the
 * neighbor's MAC, resolving it first when unknown.
 */
export function sendOnLink<K extends string | number>(
  eth: EthernetFrame,
  outNic: Nic,
  pkt: PacketBuffer,
  ipOff: number,
  etherType: number,
  groupMac: Uint8Array | null,
  neighbors: NeighborCache<K>,
  nextHop: K,
): void {
  pkt.start = ipOff - ETHERNET_HEADER_LEN;
  eth.reset(pkt, pkt.start);
  eth.setSrc(outNic.mac);
  eth.setEtherType(etherType);
  const named = pkt.linkDst ?? groupMac;
  if (named !== null) {
    eth.setDst(named);
    outNic.send(pkt);
    return;
  }
  const mac = neighbors.lookup(nextHop);
  if (mac !== null) {
    eth.setDst(mac);
    outNic.send(pkt);
    return;
  }
  neighbors.resolve(nextHop, pkt);
}

/** What a family keeps per NIC, as far as detaching it goes. */
export interface DetachableNicState<A> {
  readonly addresses: readonly { readonly address: A }[];
  readonly neighbors: { flush(): void };
}

/**
 * Stop a family on `nic` (it is being removed), as Linux does when a device
 * goes away: its addresses go (with what hangs on them), its neighbor cache
 * is flushed, every route out of it is removed.
 */
export function detachNicState<A>(
  states: Map<number, DetachableNicState<A>>,
  nic: Nic,
  removeAddress: (nic: Nic, a: A) => void,
  routes: { removeWhere(pred: (r: { nicId: number }) => boolean): unknown },
): void {
  const st = states.get(nic.id);
  if (st === undefined) return;
  for (const a of [...st.addresses]) removeAddress(nic, a.address);
  st.neighbors.flush();
  routes.removeWhere((r) => r.nicId === nic.id);
  states.delete(nic.id);
}

/**
 * Sweep a family's neighbor caches now and then, as Linux runs its
 * periodic neighbour GC (every base_reachable_time / 2): FAILED entries and
 * STALE ones unused for gc_stale_time go. Without it a flood's FAILED
 * entries stay until the table is full.
 */
export class NeighborGc {
  #timer: Timer | null = null;

  constructor(
    readonly stack: StackContext,
    readonly caches: () => Iterable<{ readonly neighbors: { gc(): number } }>,
  ) {}

  /** Keep sweeping (idempotent). */
  start(): void {
    if (this.#timer !== null) return;
    const every = Math.max(1000, this.stack.neighborConfig.baseReachableTimeMs / 2);
    this.#timer = this.stack.clock.schedule(every, () => {
      this.#timer = null;
      for (const st of this.caches()) st.neighbors.gc();
      this.start();
    });
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }
}
