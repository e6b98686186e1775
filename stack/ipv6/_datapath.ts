/**
 * What the IPv6 datapath (receive.ts, forward.ts, output.ts) uses of the
 * layer that holds it, declared below the layer class as `_layer.ts` is
 * for the helpers, and the two small walks both directions share.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { IpHooks } from "../ip/hooks.ts";
import type { Dropper } from "../ip/drop.ts";
import type { Ipv6RouteTable } from "../route_table.ts";
import type { Reassembler } from "../reassembly.ts";
import { IPV6_HEADER_LEN, type Ipv6Packet } from "../wire/ipv6.ts";
import {
  Ipv6NextHeader,
  type Ipv6OptionIterator,
  Ipv6OptionType,
  type Ipv6UpperLayer,
} from "../wire/ipv6_ext.ts";
import { FRAG_LATER, FRAG_NONE, type PacketBuffer } from "../wire/packet_buffer.ts";
import type { Ipv6AddressMap } from "./addr_map.ts";
import type { Ipv6DropReason } from "./drops.ts";
import type { Ipv6Layer } from "./_layer.ts";

/** The layer as its datapath sees it. */
export interface Ipv6Datapath extends Ipv6Layer {
  readonly hooks: IpHooks;
  readonly drops: Dropper<Ipv6DropReason>;
  readonly routes: Ipv6RouteTable;
  readonly reassembler: Reassembler<string>;
  /** Path MTUs learned from Packet Too Big (RFC 8201). */
  readonly pmtu: Ipv6AddressMap<{ mtu: number; expires: number }>;
  reassembledNow: PacketBuffer | null;
  readonly ndp: Ipv6Layer["ndp"] & {
    sendRedirect(nic: Nic, pkt: PacketBuffer, ipOff: number, target: Uint8Array): void;
  };
  nextFragmentId(): number;
  deliverLocal(nic: Nic | null, pkt: PacketBuffer, ipOff: number, reassembled: boolean): void;
}

/**
 * Walk the header chain once and record on the packet the upper-layer
 * protocol and offset and the fragment bits, as netfilter walks it
 * ({@link Ipv6UpperLayer}: the firewall then takes them from the packet).
 * A later fragment has no upper-layer header: its protocol is the
 * Fragment header's Next Header, its offset -1. A chain that runs past the
 * packet leaves -1 in both.
 */
export function recordUpperLayer(upper: Ipv6UpperLayer, pkt: PacketBuffer, ip: Ipv6Packet): void {
  const nh = ip.nextHeader();
  pkt.fragment = FRAG_NONE;
  // The common cases without walking a chain.
  if (nh === 6 || nh === 17 || nh === Ipv6NextHeader.ICMPV6) {
    pkt.l4Protocol = nh;
    pkt.l4Offset = ip.off + IPV6_HEADER_LEN;
    return;
  }
  const u = upper.find(pkt.data, ip.off, ip.endOffset());
  pkt.fragment = u.fragment;
  pkt.l4Protocol = u.truncated ? -1 : u.proto;
  pkt.l4Offset = u.truncated || (u.fragment & FRAG_LATER) !== 0 ? -1 : u.offset;
}

/** Router Alert options in the Hop-by-Hop header at `off` (`len` bytes). */
export function routerAlerts(
  it: Ipv6OptionIterator,
  d: Uint8Array,
  off: number,
  len: number,
  ipOff: number,
): number {
  const o = it.reset(d, off, len, ipOff);
  let n = 0;
  while (o.next()) if (o.type === Ipv6OptionType.ROUTER_ALERT) n++;
  return n;
}
