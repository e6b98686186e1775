import assert from "node:assert/strict";
import {
  RECLAIM_INTERVAL_MS,
  RECLAIM_MIN_ENTRIES,
  reclaimDue,
  type ReclaimState,
  reclaimWatch,
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
  heldBefore: 70_000,
  heldPeak: 70_000,
};

Deno.test("reclaimDue: after traffic once trimIdleMs has passed, never when it is 0", () => {
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000 }), true);
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000, lastTrim: 95_000 }), false);
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000, trimIdleMs: 0 }), false);
  assert.equal(reclaimDue({ ...idle, lastTraffic: -Infinity, lastTrim: -Infinity }), false);
  // Traffic since (a neighbour's probe) does not hold back what the tables let go of.
  assert.equal(reclaimDue({ ...idle, lastTraffic: 99_000, lastTrim: 95_000, held: 0 }), true);
  assert.equal(
    reclaimDue({
      ...idle,
      lastTraffic: 99_000,
      lastTrim: 95_000,
      held: 60_000,
      heldBefore: 60_000,
    }),
    false,
    "less than a quarter",
  );
});

Deno.test("reclaimDue: idle, again once the tables let go of a quarter (and of RECLAIM_MIN_ENTRIES) and stop falling, or of half while falling", () => {
  /** Idle, the tables at `held` at this look and the one before. */
  const at = (held: number, extra: Partial<ReclaimState> = {}) => ({
    ...idle,
    held,
    heldBefore: held,
    ...extra,
  });
  assert.equal(reclaimDue(idle), false, "nothing expired");
  assert.equal(reclaimDue(at(70_000 - 17_000)), false, "less than a quarter");
  assert.equal(reclaimDue(at(70_000 - 17_500)), true, "a quarter");
  assert.equal(reclaimDue(at(0)), true);
  assert.equal(reclaimDue({ ...at(0), held: undefined }), false, "tables not watched");
  // Still falling: wait for the wave of expiries to end, unless it lasts trimIdleMs
  // or half of the entries are gone.
  assert.equal(reclaimDue(at(50_000, { heldBefore: 55_000, lastTrim: idle.now - 5_000 })), false);
  assert.equal(reclaimDue(at(50_000, { heldBefore: 55_000, lastTrim: idle.now - 10_000 })), true);
  assert.equal(reclaimDue(at(35_001, { heldBefore: 40_000, lastTrim: idle.now - 5_000 })), false);
  assert.equal(reclaimDue(at(35_000, { heldBefore: 40_000, lastTrim: idle.now - 5_000 })), true);
  // The halves go on as the table empties (heldPeak is what was left at the last one).
  const wave = { heldPeak: 35_000, lastTrim: idle.now - RECLAIM_INTERVAL_MS };
  assert.equal(reclaimDue(at(17_501, { ...wave, heldBefore: 20_000 })), false);
  assert.equal(reclaimDue(at(17_500, { ...wave, heldBefore: 20_000 })), true);
  // A quarter of a small table is not worth a collection.
  const small = { heldPeak: RECLAIM_MIN_ENTRIES + 100 };
  assert.equal(reclaimDue(at(101, small)), false);
  assert.equal(reclaimDue(at(100, small)), true);
  // At most once per RECLAIM_INTERVAL_MS, however fast the tables empty.
  assert.equal(reclaimDue(at(0, { lastTrim: idle.now - RECLAIM_INTERVAL_MS + 1 })), false);
  assert.equal(reclaimDue(at(0, { lastTrim: idle.now - RECLAIM_INTERVAL_MS })), true);
  // More entries than at the last time is no reason.
  assert.equal(reclaimDue(at(90_000)), false);
});

Deno.test("reclaimWatch: looks again while the tables are big, or while what they let go is not collected", () => {
  assert.equal(reclaimWatch(undefined, 0), false, "tables not watched");
  assert.equal(reclaimWatch(RECLAIM_MIN_ENTRIES, 0), true);
  assert.equal(
    reclaimWatch(RECLAIM_MIN_ENTRIES - 1, 0),
    false,
    "small tables: sleep until traffic",
  );
  // 2,000 entries expired at once since the last collection: one more look finds them.
  assert.equal(reclaimWatch(4, 2_004), true);
  // Collected (heldPeak is what is left): sleep.
  assert.equal(reclaimWatch(4, 4), false);
  assert.equal(reclaimWatch(4, 4 + RECLAIM_MIN_ENTRIES - 1), false);
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
