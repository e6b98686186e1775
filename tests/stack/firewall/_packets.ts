/**
 * Packets of both families for firewall tests, run through a router's
 * hooks the way its layers call them: forwarded (either way), to the
 * router, from the router.
 */
import type { Firewall } from "../../../stack/firewall/mod.ts";
import type { Nic } from "../../../stack/mod.ts";
import { HEADROOM, PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { parseIpv4, parseIpv6 } from "../../../stack/wire/mod.ts";
import type { Triangle } from "../../topology/_topology.ts";

/** Where the packets' IP headers start. */
export const IP_OFF = HEADROOM + 14;

/** A packet: its family, fields, and where it goes through the router. */
export interface Pkt {
  family: 4 | 6;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  flags: number;
  icmpType: number;
  icmpCode: number;
  /** lan→wan, wan→lan, to the router, from the router. */
  path: "fwd" | "rev" | "in" | "out";
}

/** The packet's bytes at IP_OFF (checksums are not the firewall's business; they are left 0). */
export function build(p: Pkt): PacketBuffer {
  const b = new PacketBuffer();
  const d = b.data, v = b.view;
  const l4 = p.proto === 6 ? 20 : p.proto === 17 ? 8 : p.proto === 47 ? 4 : 8;
  const payload = 12;
  let off: number;
  if (p.family === 4) {
    d[IP_OFF] = 0x45;
    v.setUint16(IP_OFF + 2, 20 + l4 + payload);
    v.setUint16(IP_OFF + 4, 0x4321);
    d[IP_OFF + 8] = 64;
    d[IP_OFF + 9] = p.proto;
    v.setUint32(IP_OFF + 12, parseIpv4(p.src));
    v.setUint32(IP_OFF + 16, parseIpv4(p.dst));
    off = IP_OFF + 20;
  } else {
    d[IP_OFF] = 0x60;
    v.setUint16(IP_OFF + 4, l4 + payload);
    d[IP_OFF + 6] = p.proto;
    d[IP_OFF + 7] = 64;
    d.set(parseIpv6(p.src), IP_OFF + 8);
    d.set(parseIpv6(p.dst), IP_OFF + 24);
    off = IP_OFF + 40;
  }
  if (p.proto === 6 || p.proto === 17) {
    v.setUint16(off, p.sport);
    v.setUint16(off + 2, p.dport);
    if (p.proto === 6) {
      v.setUint32(off + 4, 1000);
      v.setUint32(off + 8, (p.flags & 0x10) !== 0 ? 5000 : 0);
      d[off + 12] = 0x50;
      d[off + 13] = p.flags;
      v.setUint16(off + 14, 65535);
    } else v.setUint16(off + 4, 8 + payload);
  } else if (p.proto === 1 || p.proto === 58) {
    d[off] = p.icmpType;
    d[off + 1] = p.icmpCode;
    v.setUint16(off + 4, p.sport);
  }
  b.start = IP_OFF - 14;
  b.end = off + l4 + payload;
  b.networkOffset = IP_OFF;
  return b;
}

/** Run a packet through a firewall's hooks as the router would; the verdict and the mark. */
export function run(fw: Firewall, t: Triangle, p: Pkt): [boolean, number] {
  const b = build(p);
  const v6 = p.family === 6;
  const lan = t.rLan, wan = t.rWan;
  const [inNic, outNic]: [Nic | null, Nic | null] = p.path === "fwd"
    ? [lan, wan]
    : p.path === "rev"
    ? [wan, lan]
    : p.path === "in"
    ? [lan, null]
    : [null, wan];
  let ok: boolean;
  if (p.path === "in") {
    ok = v6
      ? fw.prerouting6(b, IP_OFF, inNic, null) && fw.input6(b, IP_OFF, inNic, null)
      : fw.prerouting(b, IP_OFF, inNic, null) && fw.input(b, IP_OFF, inNic, null);
  } else if (p.path === "out") {
    ok = v6
      ? fw.output6(b, IP_OFF, null, outNic) && fw.postrouting6(b, IP_OFF, null, outNic)
      : fw.output(b, IP_OFF, null, outNic) && fw.postrouting(b, IP_OFF, null, outNic);
  } else {
    ok = v6
      ? fw.prerouting6(b, IP_OFF, inNic, null) && fw.forward6(b, IP_OFF, inNic, outNic) &&
        fw.postrouting6(b, IP_OFF, null, outNic)
      : fw.prerouting(b, IP_OFF, inNic, null) && fw.forward(b, IP_OFF, inNic, outNic) &&
        fw.postrouting(b, IP_OFF, null, outNic);
  }
  return [ok, b.mark];
}
