import assert from "node:assert/strict";
import { ping, traceroute } from "../../stack/mod.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import { settle, triangle } from "./_topology.ts";

Deno.test("ping across a router on memory links", async () => {
  const t = triangle();
  const lines: string[] = [];
  const r = await settle(
    t.clock,
    ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 3 }, (l) => lines.push(l)),
  );
  assert.equal(r.received, 3, lines.join("\n"));
  assert.equal(r.replies[0]!.ttl, 63);
});

Deno.test("traceroute across a router lists the router then the host", async () => {
  const t = triangle();
  const lines: string[] = [];
  const hops = await settle(
    t.clock,
    traceroute(t.h1, { dst: parseIpv4("198.51.100.10") }, (l) => lines.push(l)),
  );
  assert.deepEqual(
    hops.map((h) => h.from[0]),
    ["192.0.2.1", "198.51.100.10"],
    lines.join("\n"),
  );
});
