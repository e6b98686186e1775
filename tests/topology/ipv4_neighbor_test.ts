/**
 * Neighbor resolution through the stack: ARP (RFC 826) requests and
 * replies, the resolution queue, Host Unreachable when resolution fails
 * (RFC 1812 §5.2.7.1), gratuitous ARP (RFC 5227 §3) and static entries.
 */
import assert from "node:assert/strict";
import { formatMac, parseIpv4 } from "../../stack/wire/mod.ts";
import { ping } from "../../stack/mod.ts";
import {
  ADDR,
  assertDelta,
  hostLab,
  RawHost,
  rawMac,
  routerLab,
  settle,
  watch,
} from "./_topology.ts";
import {
  eth,
  expectIcmp,
  expectIpv4,
  ipv4,
  isArp,
  PROTO,
  readArp,
  readIpv4,
  udp,
} from "./_packets.ts";

const ABSENT = "198.51.100.99";

function udpTo(dst: string, id: number): Uint8Array {
  return ipv4({
    src: ADDR.a,
    dst,
    protocol: PROTO.UDP,
    id,
    payload: udp(ADDR.a, dst, 40000, 9, 16),
  });
}

Deno.test("neighbor resolution on a router", async (t) => {
  await t.step("ping to an absent host: Host Unreachable after 3 ARP requests (3 s)", async () => {
    const lab = hostLab();
    const t0 = lab.clock.now();
    const res = await settle(
      lab.clock,
      ping(lab.h1, { dst: parseIpv4(ABSENT), count: 1, timeoutMs: 5000 }),
    );
    assert.equal(res.received, 0);
    assert.deepEqual(
      res.errors.map((e) => [e.from, e.type, e.code]),
      [[ADDR.rLan, 3, 1]],
      "Destination Host Unreachable from the router",
    );
    const requests = lab.wan.frames("r").filter((f) =>
      isArp(f.bytes) && readArp(f.bytes).targetIp === ABSENT
    );
    assert.deepEqual(requests.map((f) => f.at - t0), [0, 1000, 2000], "3 requests, 1 s apart");
    for (const f of requests) {
      assert.equal(eth(f.bytes).dst, "ff:ff:ff:ff:ff:ff");
      assert.equal(readArp(f.bytes).op, 1);
      assert.equal(readArp(f.bytes).senderIp, ADDR.rWan);
    }
    const err = lab.lan.frames("r").find((f) => f.bytes[23] === PROTO.ICMP);
    assert.ok(err !== undefined);
    assert.equal(err.at - t0, 3000, "the error leaves when resolution fails, at 3 s");
    expectIcmp(err.bytes, { type: 3, code: 1, src: ADDR.rLan, dst: ADDR.a });
  });

  await t.step("the router's own ping to an absent host reports Host Unreachable", async () => {
    const lab = hostLab();
    const res = await settle(
      lab.clock,
      ping(lab.r, { dst: parseIpv4(ABSENT), count: 2, timeoutMs: 5000 }),
    );
    assert.equal(res.received, 0);
    // Linux: "From 198.51.100.1 icmp_seq=1 Destination Host Unreachable".
    assert.deepEqual(
      res.errors.map((e) => [e.seq, e.from, e.type, e.code]),
      [[1, ADDR.rWan, 3, 1], [2, ADDR.rWan, 3, 1]],
    );
  });

  await t.step("packets wait in a bounded queue; the oldest are dropped and counted", () => {
    const lab = routerLab({ stack: { neighbor: { queueLen: 3 } } });
    const d = watch(lab.r);
    for (let id = 0; id < 5; id++) lab.a.sendIp(udpTo(ABSENT, id));
    lab.clock.advance(0);
    assertDelta(d(), {
      "neigh.wan0.packetsQueued": 5,
      "neigh.wan0.queuedPacketsDropped": 2,
      "neigh.wan0.multicastProbesSent": 1,
    });
    assert.equal(lab.a.icmp().length, 0, "nothing yet");
    lab.clock.advance(2999);
    assert.equal(lab.a.icmp().length, 0, "nothing before 3 s");
    lab.clock.advance(1);
    lab.clock.advance(0);
    const errs = lab.a.icmp(3).map((f) => expectIcmp(f, { type: 3, code: 1, src: ADDR.rLan }));
    assert.deepEqual(errs.map((m) => readIpv4(m.body).id), [2, 3, 4], "the 3 newest, in order");
    assertDelta(d(), {
      "neigh.wan0.multicastProbesSent": 3,
      "neigh.wan0.resolutionsFailed": 1,
      "neigh.wan0.queuedPacketsFailed": 3,
    });
  });

  await t.step("queued packets go out when the reply arrives", () => {
    const lab = routerLab();
    for (let id = 0; id < 3; id++) lab.a.sendIp(udpTo(ABSENT, id));
    lab.clock.advance(1500);
    // The host shows up and answers the second request.
    const late = new RawHost(lab.wan.port("late"), rawMac(0x99), parseIpv4(ABSENT));
    lab.clock.advance(1000);
    assert.equal(late.arpAnswered, 1);
    const got = late.ipv4().map((f) => expectIpv4(f, { ttl: 63, dst: ABSENT }).id);
    assert.deepEqual(got, [0, 1, 2]);
    assert.equal(eth(late.ipv4()[0]!).src, formatMac(lab.rWan.mac));
    lab.clock.advance(10_000);
    assert.equal(lab.a.icmp().length, 0, "no Host Unreachable");
  });

  await t.step("a cold router resolves the next hop first, then forwards", () => {
    const lab = routerLab({ cold: true });
    lab.a.sendIp(udpTo(ADDR.b, 1));
    lab.clock.advance(0);
    lab.clock.advance(0);
    lab.clock.advance(0);
    assert.equal(lab.b.arpAnswered, 1);
    assert.equal(lab.b.ipv4().length, 1);
  });

  await t.step("ARP requests for the router's address are answered", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    lab.a.arpFor(parseIpv4(ADDR.rLan));
    lab.a.arpFor(parseIpv4("192.0.2.77"));
    lab.clock.advance(0);
    const replies = lab.a.received.filter(isArp);
    assert.equal(replies.length, 1, "one reply, for r's address only");
    const a = readArp(replies[0]!);
    assert.deepEqual(a, {
      op: 2,
      senderMac: formatMac(lab.rLan.mac),
      senderIp: ADDR.rLan,
      targetMac: formatMac(lab.a.mac),
      targetIp: ADDR.a,
    });
    assert.equal(eth(replies[0]!).dst, formatMac(lab.a.mac));
    assertDelta(d(), { "arp.requestsAnswered": 1, "arp.requestsNotForUs": 1 });
  });

  await t.step("a request for the WAN address on the LAN is not answered (no proxy ARP)", () => {
    const lab = routerLab();
    lab.a.arpFor(parseIpv4(ADDR.rWan));
    lab.clock.advance(0);
    assert.equal(lab.a.received.filter(isArp).length, 0);
  });

  await t.step("a gratuitous ARP goes out when an address is added", () => {
    const lab = routerLab();
    const from = lab.lan.log.length;
    const d = watch(lab.r);
    lab.r.ipv4.addAddress(lab.rLan, parseIpv4("192.0.2.5"), 24);
    const frames = lab.lan.frames("r", from);
    assert.equal(frames.length, 1);
    const f = frames[0]!.bytes;
    assert.equal(eth(f).dst, "ff:ff:ff:ff:ff:ff");
    assert.equal(eth(f).src, formatMac(lab.rLan.mac));
    const a = readArp(f);
    assert.equal(a.op, 1);
    assert.equal(a.senderIp, "192.0.2.5");
    assert.equal(a.targetIp, "192.0.2.5", "RFC 5227 announcement: sender = target");
    assert.equal(a.senderMac, formatMac(lab.rLan.mac));
    assertDelta(d(), { "arp.gratuitousSent": 1 });
  });

  await t.step("a static neighbor is used without ARP", () => {
    const lab = routerLab({ cold: true });
    const mac = new Uint8Array([0x02, 0xaa, 0, 0, 0, 0x50]);
    lab.r.ipv4.nicState(lab.rWan)!.neighbors.addStatic(parseIpv4("198.51.100.50"), mac);
    const from = lab.wan.log.length;
    lab.a.sendIp(udpTo("198.51.100.50", 7));
    lab.clock.advance(0);
    const out = lab.wan.frames("r", from);
    assert.equal(out.filter((f) => isArp(f.bytes)).length, 0, "no ARP");
    assert.equal(out.length, 1);
    assert.equal(eth(out[0]!.bytes).dst, formatMac(mac));
    expectIpv4(out[0]!.bytes, { id: 7, ttl: 63 });
  });
});
