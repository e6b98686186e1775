/**
 * Bulk transfers through the memory link's fault injector (link/faults.ts):
 * 10 MB with 2 % loss, reordering and duplication in both directions
 * arrive intact, recovered by SACK/RACK with few or no RTOs.
 */
import assert from "node:assert/strict";
import type { LinkFaults } from "../../../link/mod.ts";
import { readAll, stackPair, writeAll } from "./_tcp_peer.ts";
import { drive, pattern } from "./_tcp_lab.ts";

const FAULTS: LinkFaults = {
  loss: 0.02,
  reorder: 0.02,
  reorderDelayMs: 4,
  duplicate: 0.01,
  delayMs: 5,
};

async function sha256(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(b)));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

for (const [family, host] of [[4, "192.0.2.2"], [6, "2001:db8::2"]] as const) {
  Deno.test(`10 MB under 2 % loss, reordering and duplication arrive intact (IPv${family})`, async () => {
    const lab = stackPair({
      faults: { aToB: { ...FAULTS, seed: 11 }, bToA: { ...FAULTS, seed: 12 } },
    });
    const l = lab.b.listen({ hostname: family === 4 ? "0.0.0.0" : "::", port: 9 });
    const accepted = l.accept();
    const c = await drive(lab.clock, lab.a.connect({ hostname: host, port: 9 }), 30_000);
    const s = await drive(lab.clock, accepted, 30_000);
    const data = pattern(10 * 1024 * 1024, family);
    const t0 = lab.clock.now();
    const [, got] = await drive(
      lab.clock,
      Promise.all([writeAll(c, data).then(() => c.closeWrite()), readAll(s)]),
      600_000,
    );
    const simMs = lab.clock.now() - t0;
    assert.equal(got.length, data.length);
    assert.equal(await sha256(got), await sha256(data));
    const f = lab.ab.stats, r = lab.ba.stats;
    assert.ok(f.faultLossDrops > 100, `data lost: ${f.faultLossDrops}`);
    assert.ok(f.faultReordered > 100, `data reordered: ${f.faultReordered}`);
    assert.ok(f.faultDuplicates > 50, `data duplicated: ${f.faultDuplicates}`);
    assert.ok(r.faultLossDrops > 10, `ACKs lost: ${r.faultLossDrops}`);
    const st = lab.a.stats.tcp;
    assert.ok(st.retransmittedSegments >= f.faultLossDrops * 0.9, "lost data was resent");
    assert.ok(
      st.retransmittedSegments < f.faultLossDrops * 2 + 50,
      `few spurious retransmissions: ${st.retransmittedSegments} for ${f.faultLossDrops} losses`,
    );
    assert.ok(lab.b.stats.tcp.dsacksSent > 0, "duplicates were reported as D-SACKs");
    assert.ok(st.sackRecoveries > 0);
    assert.ok(
      st.timeouts < st.sackRecoveries / 4,
      `mostly recovered without RTOs (${st.timeouts})`,
    );
    const mbps = (data.length * 8) / (simMs / 1000) / 1e6;
    // At 2 % loss and a 10 ms RTT the Mathis bound is about 10 Mbit/s for Reno; CUBIC does better.
    assert.ok(mbps > 10, `simulated goodput ${mbps.toFixed(1)} Mbit/s in ${simMs} ms`);
    c.close();
    s.close();
    l.close();
    lab.close();
  });
}

Deno.test("reordering alone: D-SACKs widen RACK's reordering window, few spurious retransmissions (RFC 8985 §6.2)", async () => {
  const lab = stackPair({
    faults: {
      aToB: { reorder: 0.03, reorderDelayMs: 4, delayMs: 5, seed: 3 },
      bToA: { delayMs: 5 },
    },
  });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const data = pattern(4_000_000, 8);
  const [, got] = await drive(
    lab.clock,
    Promise.all([writeAll(c, data).then(() => c.closeWrite()), readAll(s)]),
    60_000,
  );
  assert.deepEqual(got, data);
  const st = lab.a.stats.tcp;
  const reordered = lab.ab.stats.faultReordered;
  assert.ok(reordered > 50, `${reordered} segments reordered`);
  // Reordered by 4 ms against a 10 ms min RTT: longer than min_RTT/4, so only a
  // window that grows with D-SACKs keeps them from being taken for losses.
  assert.ok(st.retransmittedSegments <= 10, `${st.retransmittedSegments} spurious retransmissions`);
  assert.ok(st.sackRecoveries <= 8, `${st.sackRecoveries} recoveries for no loss`);
  assert.ok(st.dsacksReceived >= 1, "the spurious ones were reported by D-SACK");
  c.close();
  s.close();
  l.close();
  lab.close();
});
