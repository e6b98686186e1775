/**
 * The IPv4 layer as its helpers (ARP, ICMP, the TCP reset) see it: the
 * narrow interface they depend on, declared below the layer class so that
 * no helper imports the class that builds it.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { NeighborCache } from "../neighbor_cache.ts";
import type { StackContext } from "../ip/context.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";

/** An IPv4 address assigned to a NIC. */
export interface Ipv4InterfaceAddress {
  readonly address: number;
  readonly prefixLen: number;
  /** The subnet's directed broadcast address (none for /31 and /32). */
  readonly broadcast: number | null;
}

/** Per-NIC IPv4 state. */
export interface Ipv4NicState {
  addresses: Ipv4InterfaceAddress[];
  forwarding: boolean;
  sendRedirects: boolean;
  neighbors: NeighborCache<number>;
  /** Multicast groups joined by sockets (beyond all-hosts), with reference counts. */
  groups: Map<number, number>;
}

/** Settings of the IPv4 layer. */
export interface Ipv4Settings {
  defaultTtl: number;
  reassemblyTimeoutMs: number;
  reassemblyMemory: number;
}

/** What ARP, ICMP and the TCP reset use of the IPv4 layer. */
export interface Ipv4Layer {
  readonly stack: StackContext;
  readonly settings: Ipv4Settings;
  /** Local addresses → the NIC they are on. */
  readonly local: Map<number, Nic>;
  nicState(nic: Nic): Ipv4NicState | undefined;
  sourceFor(nic: Nic, dst: number): number | null;
  nextId(): number;
  output(
    pkt: PacketBuffer,
    ipOff: number,
    opts?: { nic?: Nic; skipHooks?: boolean; linkDst?: Uint8Array; keepSource?: boolean },
  ): boolean;
}
