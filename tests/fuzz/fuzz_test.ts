/**
 * The fuzz campaign's share of the normal test run: a fixed seed, a few
 * seconds of mutated frames into an IPv4 router with conntrack, NAT and
 * filter rules, a DHCPv4 server and the DNS forwarder, and an IPv6 router
 * with a stateful filter and a DHCPv6 server. No exception may
 * escape the stack, and no buffer may stay held once the timers ran out.
 * `deno task fuzz --seconds N --seed S` runs it long.
 */
import assert from "node:assert/strict";
import { fuzz } from "./_fuzz.ts";

Deno.test("fuzz: mutated frames of every kind, fixed seed, no exception and no buffer kept", () => {
  const r = fuzz(20261203, { ms: 8_000 });
  assert.equal(r.failure, null, JSON.stringify(r.failure, null, 2));
  assert.ok(r.frames > 10_000, `only ${r.frames} frames`);
  // The mutations get past the checks: every deep path was reached.
  for (const [what, n] of Object.entries(r.reached)) assert.ok(n > 0, `${what}: ${n}`);
});
