/**
 * The lease journal: appends survive a reopen, a torn last line is
 * skipped, the newest record per address wins, and compaction keeps the
 * live set.
 */
import assert from "node:assert/strict";
import { FileLeaseStore, type LeaseRecord, parseLeaseJournal } from "../../../stack/mod.ts";

const rec = (i: number, state: LeaseRecord["state"] = "bound", expires = 1000): LeaseRecord => ({
  address: `192.0.2.${i}`,
  mac: `02:00:00:00:01:${i.toString(16).padStart(2, "0")}`,
  clientId: null,
  hostname: null,
  expires,
  state,
});

Deno.test("lease journal: the newest record per address; bad lines counted", () => {
  const text = [rec(1), rec(2), { ...rec(1), state: "released" }].map((r) => JSON.stringify(r))
    .join("\n") + '\n{"address":"192.0.2.9","mac"';
  const { records, badLines } = parseLeaseJournal(text);
  assert.equal(badLines, 1);
  assert.deepEqual(records.map((r) => [r.address, r.state]), [
    ["192.0.2.1", "released"],
    ["192.0.2.2", "bound"],
  ]);
  assert.equal(parseLeaseJournal('{"address":1}\n').badLines, 1, "a record of the wrong shape");
});

Deno.test("FileLeaseStore: commits survive a reopen; a torn append is dropped; compaction", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir_leases_" });
  const path = `${dir}/sub/lan0.dhcp4.leases`;
  try {
    const live = new Map<string, LeaseRecord>();
    const s = new FileLeaseStore(path);
    assert.deepEqual(s.load(), []);
    for (let i = 1; i <= 3; i++) {
      live.set(rec(i).address, rec(i));
      s.commit(rec(i), () => [...live.values()]);
    }
    s.close();
    // A crash in the middle of an append leaves half a line.
    await Deno.writeTextFile(path, '{"address":"192.0.2.4","ma', { append: true });
    const t = new FileLeaseStore(path);
    assert.deepEqual(t.load().map((r) => r.address), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert.equal(t.badLines, 1);
    assert.equal((await Deno.readTextFile(path)).split("\n").filter(Boolean).length, 3);
    // Many changes to one address: the journal is compacted, the newest state kept.
    for (let k = 0; k < 200; k++) {
      const r = rec(1, "bound", 2000 + k);
      live.set(r.address, r);
      t.commit(r, () => [...live.values()]);
    }
    const lines = (await Deno.readTextFile(path)).split("\n").filter(Boolean).length;
    assert.ok(lines <= 2 * 3 + 64 + 1, `compacted to ${lines} lines`);
    t.close();
    const u = new FileLeaseStore(path);
    const got = u.load();
    assert.equal(got.find((r) => r.address === "192.0.2.1")?.expires, 2199);
    assert.equal(got.length, 3);
    u.close();
    assert.equal(
      [...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name).join(),
      "lan0.dhcp4.leases",
      "no temporary file left",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FileLeaseStore: the commit that compacts keeps its own record (the server's tables are updated after it)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir_leases_" });
  const path = `${dir}/l.leases`;
  try {
    const live = new Map<string, LeaseRecord>();
    const s = new FileLeaseStore(path);
    s.load();
    let compactedAt = -1;
    for (let k = 0; k < 300 && compactedAt < 0; k++) {
      // A new address every 10th commit, else a renewal of address 1.
      const r = k % 10 === 9 ? rec(2 + k, "bound", 5000 + k) : rec(1, "bound", 2000 + k);
      const before = (await Deno.readTextFile(path)).split("\n").filter(Boolean).length;
      s.commit(r, () => [...live.values()], live.size + (live.has(r.address) ? 0 : 1));
      const after = (await Deno.readTextFile(path)).split("\n").filter(Boolean).length;
      live.set(r.address, r); // as the server does: its tables change once the store has it
      if (after < before) compactedAt = k;
    }
    assert.ok(compactedAt > 0, "a compaction happened");
    s.close();
    const got = new FileLeaseStore(path);
    const loaded = new Map(got.load().map((r) => [r.address, r]));
    got.close();
    assert.equal(loaded.size, live.size);
    for (const [a, r] of live) assert.equal(loaded.get(a)?.expires, r.expires, a);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
