/**
 * Per-packet metadata, producer side: IPv4 and IPv6 receive (and local
 * output) record the upper-layer protocol and offset and the fragment bits
 * on the packet once, before PREROUTING / OUTPUT, as DESIGN "The datapath"
 * asks.
 */
import assert from "node:assert/strict";
import {
  FRAG_FIRST,
  FRAG_LATER,
  FRAG_MORE,
  FRAG_NONE,
  type PacketBuffer,
} from "../../../stack/wire/mod.ts";
import { ADDR, routerLab } from "../../topology/_topology.ts";
import { ipv4, udp } from "../../topology/_packets.ts";
import {
  ADDR6,
  destOpts,
  frag,
  hbh,
  ip6,
  NH,
  routerLab6,
  udp6,
} from "../../topology/_topology6.ts";

interface Seen {
  proto: number;
  l4: number;
  frag: number;
}

function record(into: Seen[]) {
  return (pkt: PacketBuffer, ipOff: number) => {
    into.push({ proto: pkt.l4Protocol, l4: pkt.l4Offset - ipOff, frag: pkt.fragment });
    return true;
  };
}

Deno.test("IPv4 receive records protocol, upper-layer offset and fragment bits before PREROUTING", async (t) => {
  const cases = [
    { name: "UDP, no options", pkt: {}, want: { proto: 17, l4: 20, frag: FRAG_NONE } },
    {
      name: "UDP with 4 option bytes",
      pkt: { options: [1, 1, 1, 0] },
      want: { proto: 17, l4: 24, frag: FRAG_NONE },
    },
    {
      name: "first fragment",
      pkt: { mf: true },
      want: { proto: 17, l4: 20, frag: FRAG_FIRST | FRAG_MORE },
    },
    {
      name: "middle fragment",
      pkt: { mf: true, fragOffset: 64 },
      want: { proto: 17, l4: 20, frag: FRAG_LATER | FRAG_MORE },
    },
    {
      name: "last fragment",
      pkt: { fragOffset: 64 },
      want: { proto: 17, l4: 20, frag: FRAG_LATER },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const lab = routerLab();
      const seen: Seen[] = [];
      lab.r.ipv4.hooks.prerouting = record(seen);
      lab.a.sendIp(ipv4({
        src: ADDR.a,
        dst: ADDR.b,
        protocol: 17,
        payload: udp(ADDR.a, ADDR.b, 40000, 9, new Uint8Array(16)),
        ...c.pkt,
      }));
      lab.clock.advance(0);
      assert.deepEqual(seen, [c.want]);
    });
  }
});

Deno.test("IPv6 receive walks the chain once and records the upper layer before PREROUTING", async (t) => {
  const body = () => udp6(ADDR6.a, ADDR6.b, 40000, 9, 16);
  const cases = [
    { name: "UDP right after the header", ext: [], want: { proto: 17, l4: 40, frag: FRAG_NONE } },
    {
      name: "Hop-by-Hop, Destination Options, UDP",
      ext: [hbh(), destOpts()],
      want: { proto: 17, l4: 56, frag: FRAG_NONE },
    },
    {
      name: "first fragment",
      ext: [frag(0, true, 7)],
      want: { proto: 17, l4: 48, frag: FRAG_FIRST | FRAG_MORE },
    },
    {
      name: "atomic fragment",
      ext: [frag(0, false, 7)],
      want: { proto: 17, l4: 48, frag: FRAG_NONE },
    },
    {
      name: "later fragment: no upper-layer header",
      ext: [frag(64, false, 7)],
      want: { proto: 17, l4: -1, frag: FRAG_LATER },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const lab = routerLab6();
      const seen: Seen[] = [];
      lab.r.ipv6.hooks.prerouting = (pkt, ipOff) => {
        seen.push({
          proto: pkt.l4Protocol,
          l4: pkt.l4Offset < 0 ? -1 : pkt.l4Offset - ipOff,
          frag: pkt.fragment,
        });
        return true;
      };
      lab.a.send(ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: body(), ext: c.ext }));
      lab.clock.advance(0);
      assert.deepEqual(seen, [c.want]);
    });
  }
});
