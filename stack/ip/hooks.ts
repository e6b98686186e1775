/**
 * Firewall hooks, one shape for both families, placed where netfilter
 * places them: PREROUTING after validation, INPUT before the upper layer,
 * FORWARD after the routing decision, OUTPUT for local packets,
 * POSTROUTING after routing, before fragmentation and the link.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";

/** A firewall hook: returns false to drop the packet (the layer counts it). */
export type IpHook = (
  pkt: PacketBuffer,
  ipOff: number,
  inNic: Nic | null,
  outNic: Nic | null,
) => boolean;

/** Hook points, as netfilter names them. */
export interface IpHooks {
  prerouting: IpHook | null;
  input: IpHook | null;
  forward: IpHook | null;
  output: IpHook | null;
  postrouting: IpHook | null;
}

/** Listeners of an IPv4 address leaving a NIC (MASQUERADE forgets its connections). */
export type AddressRemovedListener = (nic: Nic, address: number) => void;
