/**
 * The IPv6 layer as its helpers (ICMPv6, NDP, MLD) see it: the narrow
 * interface they depend on, declared below the layer class so that no
 * helper imports the class that builds it, and the per-NIC and per-address
 * state types both sides share.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Timer } from "../clock.ts";
import type { NeighborCache } from "../neighbor_cache.ts";
import type { TokenBucket } from "../token_bucket.ts";
import type { StackContext } from "../ip/context.ts";
import type { Ipv6Packet } from "../wire/ipv6.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import type { Ipv6AddressMap, Ipv6KeyInterner } from "./addr_map.ts";

/** DAD and lifetime states of an address (RFC 4862 §5.5.4; "duplicate" is Linux's dadfailed). */
export type Ipv6AddressState = "tentative" | "preferred" | "deprecated" | "duplicate";

/** An IPv6 address on a NIC. */
export interface Ipv6InterfaceAddress {
  readonly address: Uint8Array;
  readonly prefixLen: number;
  state: Ipv6AddressState;
  /** Where it came from. */
  readonly origin: "static" | "link-local" | "slaac" | "dhcp";
  /** Clock time the address stops being valid / preferred (Infinity: never). */
  validUntil: number;
  preferredUntil: number;
  /** DAD in progress: the nonce of our NS (RFC 7527), NS still to send, the timer. */
  dadNonce: Uint8Array | null;
  dadTransmitsLeft: number;
  dadTimer: Timer | null;
}

/** Per-NIC IPv6 state. */
export interface Ipv6NicState {
  readonly nic: Nic;
  readonly addresses: Ipv6InterfaceAddress[];
  forwarding: boolean;
  sendRedirects: boolean;
  readonly neighbors: NeighborCache<string>;
  /** Multicast groups joined, with reference counts. */
  readonly groups: Ipv6AddressMap<number>;
  /** Current hop limit for packets we originate on this link. */
  hopLimit: number;
}

/** Settings of the IPv6 layer. */
export interface Ipv6Settings {
  defaultHopLimit: number;
  reassemblyTimeoutMs: number;
  reassemblyMemory: number;
  dadTransmits: number;
  retransTimerMs: number;
}

/** A transport protocol's receive function for IPv6 local delivery. */
export type Ipv6TransportHandler = (
  nic: Nic | null,
  pkt: PacketBuffer,
  ip: Ipv6Packet,
  l4Off: number,
  l4Len: number,
) => void;

/** What ICMPv6, NDP and MLD use of the IPv6 layer. */
export interface Ipv6Layer {
  readonly stack: StackContext;
  readonly settings: Ipv6Settings;
  /** Local unicast addresses → their NIC and record. */
  readonly local: Ipv6AddressMap<{ nic: Nic; addr: Ipv6InterfaceAddress }>;
  /** The NIC whose Subnet-Router anycast address (RFC 4291 §2.6.1) is at `a[off]`, or undefined. */
  anycastNic(a: Uint8Array, off?: number): Nic | undefined;
  readonly transports: Map<number, Ipv6TransportHandler>;
  readonly checksumFixers: Map<number, (pkt: PacketBuffer, ipOff: number) => void>;
  readonly keys: Ipv6KeyInterner;
  /** The packet being delivered when it was reassembled from fragments, else null. */
  readonly reassembledNow: PacketBuffer | null;
  readonly ndp: {
    receive(nic: Nic, pkt: PacketBuffer, ip: Ipv6Packet, off: number, len: number): void;
  };
  readonly mld: {
    receiveQuery(nic: Nic, pkt: PacketBuffer, ip: Ipv6Packet, off: number, len: number): void;
  };
  readonly icmp: { readonly bucket: TokenBucket };
  nicState(nic: Nic): Ipv6NicState | undefined;
  linkLocalOf(nic: Nic): Uint8Array | null;
  selectSource(dst: Uint8Array, dstOff: number, outNic: Nic | null): Uint8Array | null;
  addressChanged(nic: Nic, a: Ipv6InterfaceAddress): void;
  learnPathMtu(dst: Uint8Array, off: number, mtu: number): void;
  output(
    pkt: PacketBuffer,
    ipOff: number,
    opts?: { nic?: Nic; noFragment?: boolean; linkDst?: Uint8Array; keepSource?: boolean },
  ): boolean;
}
