import assert from "node:assert/strict";
import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import { MemoryLink } from "../../link/mod.ts";
import { ManualClock } from "../../stack/mod.ts";
import { HEADROOM, PacketBuffer } from "../../stack/wire/mod.ts";

Deno.test("an exception escaping the dispatcher is counted and logged: the first with its trace, then rate-limited", () => {
  const records: LogRecord[] = [];
  resetSync();
  configureSync({
    sinks: { mem: (r) => records.push(r) },
    loggers: [{ category: ["tapir"], lowestLevel: "error", sinks: ["mem"] }],
  });
  try {
    const clock = new ManualClock();
    const [a, b] = MemoryLink.pair({ clock, names: ["a", "b"] });
    let n = 0;
    b.attach({
      deliverFrame: (_p: PacketBuffer) => {
        n++;
        throw new Error(`boom ${n}`);
      },
    });
    a.attach({ deliverFrame: () => {} });
    const p = new PacketBuffer();
    const send = () => {
      p.setFrame(HEADROOM, 60);
      a.writePacket(p);
      clock.advance(1);
    };
    for (let i = 0; i < 5; i++) send();
    assert.equal(n, 5, "delivery went on after each exception");
    assert.equal(b.stats.dispatchErrors, 5);
    assert.equal(records.length, 1, "only the first is logged within the interval");
    const first = String(records[0]!.properties.trace);
    assert.match(first, /Error: boom 1\n\s+at /, "with its stack trace");
    clock.advance(10_000);
    send();
    assert.equal(records.length, 2);
    assert.equal(records[1]!.properties.n, 5, "the line says how many there were");
    assert.match(String(records[1]!.properties.error), /boom 6/);
  } finally {
    resetSync();
  }
});
