/**
 * The fuzz campaign's share of the normal test run: a fixed seed, a few
 * seconds of mutated frames, a third each into an IPv4 router with
 * conntrack, NAT and filter rules, a DHCPv4 server and the DNS forwarder,
 * an IPv6 router with a stateful filter and a DHCPv6 server, and a host
 * (SLAAC, DHCPv4 and DHCPv6 clients, a UDP socket, a TCP listener and an
 * established TCP connection per family). No exception may escape the
 * stack, and no buffer may stay held once the timers ran out.
 * `deno task fuzz --seconds N --seed S` runs it long.
 */
import assert from "node:assert/strict";
import { fuzz } from "./_fuzz.ts";

Deno.test("fuzz: mutated frames of every kind, fixed seed, no exception and no buffer kept", () => {
  const r = fuzz(20261203, { ms: 8_000 });
  assert.equal(r.failure, null, JSON.stringify(r.failure, null, 2));
  assert.ok(r.frames > 10_000, `only ${r.frames} frames`);
  // The mutations get past the checks: every deep path of each target was reached,
  // the host's among them (its connections' established path, RAs, DHCP replies).
  for (const [what, n] of Object.entries(r.reached)) assert.ok(n > 0, `${what}: ${n}`);
  assert.ok(Object.keys(r.reached).some((k) => k.startsWith("host TCP segments")));
});
