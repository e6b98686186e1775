/**
 * IPv4 under an ARP flood from random senders (issue #16), on the manual
 * clock: with the neighbour table full, a request from a sender the table
 * cannot take is answered only when that sender asked in the last 2–4 s.
 */
import assert from "node:assert/strict";
import { parseIpv4 } from "../../../stack/wire/mod.ts";
import { ADDR, assertDelta, routerLab, watch } from "../../topology/_topology.ts";
import { isArp, readArp } from "../../topology/_packets.ts";

/** 192.0.2.<100 + i>: a random sender of the flood. */
const sender = (i: number) => parseIpv4(`192.0.2.${100 + i}`);

Deno.test("ARP requests from senders the full table cannot take are answered only when they repeat", () => {
  const lab = routerLab({ stack: { neighbor: { maxEntries: 16 } } });
  const nic = lab.rLan;
  const ask = (i: number) => lab.a.sendArp(1, sender(i), new Uint8Array(6), parseIpv4(ADDR.rLan));
  const answers = () => lab.a.received.filter(isArp).map(readArp);
  // Fill the table.
  for (let i = 0; i < 40; i++) ask(i);
  lab.clock.advance(10);
  let d = watch(lab.r);
  lab.a.received.length = 0;
  for (let i = 50; i < 150; i++) ask(i);
  lab.clock.advance(10);
  assertDelta(d(), {
    "arp.requestsAnswered": 0,
    "arp.requestsUnanswered": 100,
    [`neigh.${nic.name}.tableFullDrops`]: 100,
  });
  assert.equal(answers().length, 0);
  // The sender asks again after its retransmit time: answered, to its MAC.
  lab.clock.advance(1000);
  d = watch(lab.r);
  ask(120);
  lab.clock.advance(10);
  assertDelta(d(), { "arp.requestsAnswered": 1, "arp.requestsUnanswered": 0 });
  const got = answers();
  assert.equal(got.length, 1);
  assert.equal(got[0]!.targetIp, "192.0.2.220");
  assert.equal(got[0]!.op, 2);
  // 5 s on, the flood's entries are old enough for the forced GC (as
  // Linux's neigh_forced_gc): a sender gets an entry and its answer.
  lab.clock.advance(5000);
  d = watch(lab.r);
  ask(130);
  lab.clock.advance(10);
  const x = d();
  assertDelta(x, { "arp.requestsAnswered": 1, "arp.requestsUnanswered": 0 });
  assert.ok((x[`neigh.${nic.name}.entriesEvicted`] ?? 0) > 0, "an entry was evicted for it");
  // A neighbour in the table (a) is answered at once; so is a probe (RFC 5227, sender 0.0.0.0).
  d = watch(lab.r);
  lab.a.arpFor(parseIpv4(ADDR.rLan));
  lab.a.sendArp(1, 0, new Uint8Array(6), parseIpv4(ADDR.rLan));
  lab.clock.advance(10);
  assertDelta(d(), { "arp.requestsAnswered": 2, "arp.requestsUnanswered": 0 });
});
