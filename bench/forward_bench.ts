/**
 * `Deno.bench` of the per-packet IPv4 forward path on memory links, no FFI:
 * a 64-byte-payload UDP frame copied into the receive buffer (as a TAP read
 * would), `lan.deliverFrame(pkt)` → validation → route lookup → TTL and
 * checksum → Ethernet rewrite → `writePacket` on a counting no-op sink
 * (see {@link forwardRig}).
 *
 *     deno bench bench/forward_bench.ts
 *
 * @module
 */
import { forwardRig } from "./forward_alloc_bench.ts";
import { HEADROOM } from "../stack/wire/packet_buffer.ts";

const rig = forwardRig();
const { pkt, template } = rig;

Deno.bench({
  name: "IPv4 forward: deliverFrame → writePacket (64 B UDP), x1000",
  group: "forward",
  baseline: true,
  fn: () => {
    for (let i = 0; i < 1000; i++) rig.inject();
  },
});

Deno.bench({
  name: "frame copy into the receive buffer only (the injection's own cost), x1000",
  group: "forward",
  fn: () => {
    for (let i = 0; i < 1000; i++) {
      pkt.data.set(template, HEADROOM);
      pkt.setFrame(HEADROOM, template.length);
    }
  },
});

const rig1400 = forwardRig({ payload: 1400 });
Deno.bench({
  name: "IPv4 forward: deliverFrame → writePacket (1400 B UDP), x1000",
  group: "forward",
  fn: () => {
    for (let i = 0; i < 1000; i++) rig1400.inject();
  },
});
