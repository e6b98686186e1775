import assert from "node:assert/strict";
import {
  RECLAIM_LOOK_MS,
  RECLAIM_MIN_ENTRIES,
  reclaimDue,
  type ReclaimState,
} from "../../link/driver.ts";
import { ADDR, routerLab } from "../topology/_topology.ts";
import { ipv4, PROTO, udp } from "../topology/_packets.ts";
import { firewallFrom } from "../stack/firewall/_fw.ts";

const idle: ReclaimState = {
  now: 100_000,
  lastTraffic: 50_000,
  lastTrim: 60_000,
  trimIdleMs: 10_000,
  held: 70_000,
  heldAtTrim: 70_000,
};

Deno.test("reclaimDue: after traffic at most once per trimIdleMs, never when it is 0", () => {
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000 }), true);
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000, lastTrim: 95_000 }), false);
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000, trimIdleMs: 0 }), false);
  assert.equal(reclaimDue({ ...idle, lastTraffic: -Infinity, lastTrim: -Infinity }), false);
  // Traffic since, and the tables emptied: the trimIdleMs limit holds.
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000, lastTrim: 95_000, held: 0 }), false);
});

Deno.test("reclaimDue: idle, again once the tables let go of a quarter (and of RECLAIM_MIN_ENTRIES)", () => {
  assert.equal(reclaimDue(idle), false, "nothing expired");
  assert.equal(reclaimDue({ ...idle, held: 70_000 - 17_000 }), false, "less than a quarter");
  assert.equal(reclaimDue({ ...idle, held: 70_000 - 17_500 }), true, "a quarter");
  assert.equal(reclaimDue({ ...idle, held: 0 }), true);
  assert.equal(reclaimDue({ ...idle, held: undefined }), false, "tables not watched");
  // A quarter of a small table is not worth a collection.
  const small = { ...idle, heldAtTrim: RECLAIM_MIN_ENTRIES + 100 };
  assert.equal(reclaimDue({ ...small, held: 101 }), false);
  assert.equal(reclaimDue({ ...small, held: 100 }), true);
  // At most once per RECLAIM_LOOK_MS, however fast the tables empty.
  assert.equal(reclaimDue({ ...idle, held: 0, lastTrim: idle.now - RECLAIM_LOOK_MS + 1 }), false);
  assert.equal(reclaimDue({ ...idle, held: 0, lastTrim: idle.now - RECLAIM_LOOK_MS }), true);
  // More entries than at the last time is no reason.
  assert.equal(reclaimDue({ ...idle, held: 90_000 }), false);
});

Deno.test("Stack.tableEntries counts conntrack and neighbour entries, and falls as their timers expire", () => {
  const t = routerLab();
  firewallFrom(t.r, `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`);
  const base = t.r.tableEntries();
  assert.equal(base, 2, "r knows a and b (the lab's ARP warm-up)");
  for (let i = 0; i < 50; i++) {
    t.a.sendIp(ipv4({
      src: ADDR.a,
      dst: ADDR.b,
      protocol: PROTO.UDP,
      payload: udp(ADDR.a, ADDR.b, 2000 + i, 53, 8),
    }));
  }
  t.clock.advance(1);
  assert.equal(t.b.ipv4().length, 50, "all 50 flows forwarded");
  assert.equal(t.r.firewall!.conntrack.size, 50);
  assert.equal(t.r.tableEntries(), base + 50);
  // Unreplied UDP entries live 30 s (nf_conntrack_udp_timeout).
  t.clock.advance(31_000);
  assert.equal(t.r.firewall!.conntrack.size, 0);
  assert.ok(t.r.tableEntries() <= base, `${t.r.tableEntries()} entries left`);
});
