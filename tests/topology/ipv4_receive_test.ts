/**
 * The IPv4 receive path of a router: validation and martians (RFC 1812
 * §5.2.2, §5.3.7), Ethernet padding, reassembly of traffic to the stack
 * itself (RFC 791, RFC 1122 §3.3.2), and UDP (RFC 768, RFC 1122 §4.1.3.1).
 */
import assert from "node:assert/strict";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import { ping, traceroute } from "../../stack/mod.ts";
import { ADDR, assertDelta, hostLab, routerLab, settle, watch } from "./_topology.ts";
import {
  echoRequest,
  expectIcmp,
  expectIpv4,
  ipv4,
  type Ipv4Spec,
  PROTO,
  readIpv4,
  udp,
} from "./_packets.ts";

interface DropCase {
  name: string;
  /** The IPv4 bytes a sends (to r's MAC). */
  bytes: () => Uint8Array;
  counters: Record<string, number>;
}

function udpTo(spec: Partial<Ipv4Spec> = {}): Uint8Array {
  const src = spec.src ?? ADDR.a;
  const dst = spec.dst ?? ADDR.b;
  return ipv4({ src, dst, protocol: PROTO.UDP, payload: udp(src, dst, 40000, 9, 32), ...spec });
}

const DROPS: DropCase[] = [
  {
    name: "loopback source",
    bytes: () => udpTo({ src: "127.0.0.1" }),
    counters: { "ipv4.invalidAddressesReceived": 1 },
  },
  {
    name: "multicast source",
    bytes: () => udpTo({ src: "239.1.2.3" }),
    counters: { "ipv4.invalidAddressesReceived": 1 },
  },
  {
    name: "class E source",
    bytes: () => udpTo({ src: "250.0.0.1" }),
    counters: { "ipv4.invalidAddressesReceived": 1 },
  },
  {
    name: "loopback destination",
    bytes: () => udpTo({ dst: "127.0.0.1" }),
    counters: { "ipv4.invalidAddressesReceived": 1 },
  },
  {
    name: "bad header checksum",
    bytes: () => udpTo({ checksum: 0x1234 }),
    counters: { "ipv4.checksumErrors": 1 },
  },
  {
    name: "Total Length beyond the frame (truncated)",
    bytes: () => udpTo({ totalLength: 200 }),
    counters: { "ipv4.malformedPacketsReceived": 1 },
  },
  {
    name: "Total Length below the header length",
    bytes: () => udpTo({ totalLength: 16 }),
    counters: { "ipv4.malformedPacketsReceived": 1 },
  },
  {
    name: "IHL below 5",
    bytes: () => udpTo({ ihl: 4 }),
    counters: { "ipv4.malformedPacketsReceived": 1 },
  },
  {
    name: "IHL beyond Total Length",
    bytes: () => udpTo({ ihl: 15, totalLength: 40 }),
    counters: { "ipv4.malformedPacketsReceived": 1 },
  },
  {
    name: "version 6 in an IPv4 frame",
    bytes: () => udpTo({ version: 6 }),
    counters: { "ipv4.malformedPacketsReceived": 1 },
  },
  {
    name: "shorter than an IPv4 header",
    bytes: () => udpTo().subarray(0, 19),
    counters: { "ipv4.malformedPacketsReceived": 1 },
  },
];

Deno.test("invalid IPv4 packets are dropped and counted", async (t) => {
  for (const c of DROPS) {
    await t.step(c.name, () => {
      const lab = routerLab();
      const d = watch(lab.r);
      lab.a.sendIp(c.bytes());
      lab.clock.advance(0);
      lab.clock.advance(0);
      assert.equal(lab.b.ipv4().length, 0, "not forwarded");
      assert.equal(lab.a.ipv4().length, 0, "no answer");
      assertDelta(d(), {
        "ipv4.packetsReceived": 1,
        "ipv4.forwarding.packets": 0,
        "ipv4.packetsDelivered": 0,
        "icmpv4.errorsSent": 0,
        ...c.counters,
      });
    });
  }
});

Deno.test("Ethernet padding is trimmed", async (t) => {
  await t.step("a 28-byte echo request in a 60-byte frame is answered", () => {
    const lab = routerLab();
    const req = ipv4({
      src: ADDR.a,
      dst: ADDR.rLan,
      protocol: PROTO.ICMP,
      payload: echoRequest(0x77, 1, 0),
    });
    assert.equal(req.length, 28);
    lab.a.sendIp(req, { pad: true });
    assert.equal(lab.lan.log.at(-1)!.bytes.length, 60, "padded on the wire");
    lab.clock.advance(0);
    const m = expectIcmp(lab.a.icmp(0)[0]!, {
      type: 0,
      code: 0,
      rest: (0x77 << 16) | 1,
      src: ADDR.rLan,
      dst: ADDR.a,
    });
    assert.equal(m.ip.totalLength, 28);
    assert.equal(m.body.length, 0);
  });

  await t.step("a padded short UDP packet is forwarded without the padding", () => {
    const lab = routerLab();
    const p = ipv4({
      src: ADDR.a,
      dst: ADDR.b,
      protocol: PROTO.UDP,
      payload: udp(ADDR.a, ADDR.b, 1, 2, 0),
    });
    lab.a.sendIp(p, { pad: true });
    lab.clock.advance(0);
    const [f] = lab.b.ipv4();
    assert.ok(f !== undefined);
    const ip = expectIpv4(f, { totalLength: 28, ttl: 63 });
    assert.deepEqual(ip.payload, p.subarray(20));
  });
});

Deno.test("TTL is not checked for packets to the router itself", () => {
  const lab = routerLab();
  lab.a.sendIp(
    ipv4({
      src: ADDR.a,
      dst: ADDR.rWan,
      ttl: 1,
      protocol: PROTO.ICMP,
      payload: echoRequest(3, 4, 8),
    }),
  );
  lab.clock.advance(0);
  expectIcmp(lab.a.icmp()[0]!, { type: 0, src: ADDR.rWan, dst: ADDR.a, rest: (3 << 16) | 4 });
});

Deno.test("reassembly of traffic to the stack itself", async (t) => {
  await t.step("ping -s 4000 to the router: request and reply are fragmented", async () => {
    const lab = hostLab();
    const res = await settle(
      lab.clock,
      ping(lab.h1, { dst: parseIpv4(ADDR.rLan), size: 4000, count: 2 }),
    );
    assert.equal(res.received, 2);
    assert.equal(res.replies[0]!.bytes, 4008);
    const fromR = lab.lan.frames("r").filter((f) => f.bytes[23] === PROTO.ICMP);
    assert.equal(fromR.length, 6, "each reply is 3 fragments");
    for (const f of fromR) assert.ok(expectIpv4(f.bytes).totalLength <= 1500);
    assert.equal(lab.r.stats.icmpv4.echoRequestsAnswered, 2);
  });

  const first = () =>
    ipv4({
      src: ADDR.a,
      dst: ADDR.rLan,
      protocol: PROTO.ICMP,
      id: 0x5151,
      mf: true,
      payload: echoRequest(1, 1, 1472).subarray(0, 1480),
    });

  await t.step("a missing fragment: Time Exceeded code 1 after 30 s", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    const f0 = first();
    lab.a.sendIp(f0);
    lab.clock.advance(29_999);
    assert.equal(lab.a.icmp().length, 0, "nothing before the timeout");
    lab.clock.advance(1);
    const errs = lab.a.icmp();
    assert.equal(errs.length, 1);
    const m = expectIcmp(errs[0]!, { type: 11, code: 1, rest: 0, src: ADDR.rLan, dst: ADDR.a });
    const q = readIpv4(m.body);
    assert.equal(q.id, 0x5151);
    assert.ok(q.mf && q.fragOffset === 0, "quotes the first fragment");
    assert.deepEqual(m.body, f0.subarray(0, 548));
    assertDelta(d(), { "icmpv4.errorsSent": 1, "icmpv4.echoRequestsAnswered": 0 });
    assert.equal(lab.r.ipv4.reassembler.size(), 0, "the datagram is gone");
  });

  await t.step("no Time Exceeded when fragment 0 never arrived", () => {
    const lab = routerLab();
    lab.a.sendIp(
      ipv4({
        src: ADDR.a,
        dst: ADDR.rLan,
        protocol: PROTO.ICMP,
        id: 0x5152,
        fragOffset: 1480,
        payload: new Uint8Array(100),
      }),
    );
    lab.clock.advance(31_000);
    assert.equal(lab.a.icmp().length, 0);
    assert.equal(lab.r.ipv4.reassembler.size(), 0);
  });

  await t.step("fragments arriving in reverse order are reassembled and answered", () => {
    const lab = routerLab();
    const whole = echoRequest(9, 9, 2000);
    const base = { src: ADDR.a, dst: ADDR.rLan, protocol: PROTO.ICMP, id: 0x5153 };
    lab.a.sendIp(ipv4({ ...base, fragOffset: 1480, payload: whole.subarray(1480) }));
    lab.a.sendIp(ipv4({ ...base, mf: true, payload: whole.subarray(0, 1480) }));
    lab.clock.advance(0);
    lab.clock.advance(0);
    const replies = lab.a.ipv4().map((f) => readIpv4(f, 14));
    assert.equal(replies.length, 2, "the 2028-byte reply comes in two fragments");
    assert.equal(replies[0]!.payload[0], 0, "echo reply");
  });
});

Deno.test("UDP", async (t) => {
  await t.step("a datagram to a closed port gets Port Unreachable from the host", () => {
    const lab = hostLab();
    const sock = lab.h1.udp.bind(0, () => {});
    sock.send(parseIpv4(ADDR.b), 9, new Uint8Array(10));
    for (let i = 0; i < 5; i++) lab.clock.advance(0);
    const err = lab.lan.frames("r").find((f) => f.bytes[23] === PROTO.ICMP);
    assert.ok(err !== undefined, "an ICMP error came back");
    const m = expectIcmp(err.bytes, { type: 3, code: 3, src: ADDR.b, dst: ADDR.a, rest: 0 });
    const q = readIpv4(m.body);
    assert.equal(q.protocol, PROTO.UDP);
    assert.equal((m.body[20]! << 8) | m.body[21]!, sock.port, "quotes the source port");
    assert.equal(lab.h2.stats.udp.unknownPortReceived, 1);
  });

  await t.step("a bound socket receives the datagram and can answer", () => {
    const lab = hostLab();
    const got: { src: number; srcPort: number; payload: number[] }[] = [];
    const server = lab.h2.udp.bind(5000, (dg) => {
      got.push({
        src: dg.src,
        srcPort: dg.srcPort,
        payload: [
          ...dg.buffer.data.subarray(dg.payloadOffset, dg.payloadOffset + dg.payloadLength),
        ],
      });
      server.send(dg.src, dg.srcPort, new Uint8Array([9, 9]));
    });
    const back: number[][] = [];
    const client = lab.h1.udp.bind(0, (dg) => {
      back.push([
        ...dg.buffer.data.subarray(dg.payloadOffset, dg.payloadOffset + dg.payloadLength),
      ]);
    });
    client.send(parseIpv4(ADDR.b), 5000, new Uint8Array([1, 2, 3]));
    for (let i = 0; i < 10; i++) lab.clock.advance(0);
    assert.deepEqual(got, [{ src: parseIpv4(ADDR.a), srcPort: client.port, payload: [1, 2, 3] }]);
    assert.deepEqual(back, [[9, 9]]);
  });

  await t.step("a bad UDP checksum is dropped and counted, without an error", () => {
    const lab = routerLab();
    const u = udp(ADDR.a, ADDR.rLan, 40000, 9, 16);
    u[6]! ^= 0xff;
    lab.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.rLan, protocol: PROTO.UDP, payload: u }));
    lab.clock.advance(0);
    assert.equal(lab.a.icmp().length, 0);
    assert.equal(lab.r.stats.udp.checksumErrors, 1);
  });

  await t.step("a zero UDP checksum means none (RFC 768)", () => {
    const lab = routerLab();
    const got: number[] = [];
    lab.r.udp.bind(7000, (dg) => got.push(dg.payloadLength));
    const u = udp(ADDR.a, ADDR.rLan, 40000, 7000, 16);
    u[6] = 0;
    u[7] = 0;
    lab.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.rLan, protocol: PROTO.UDP, payload: u }));
    lab.clock.advance(0);
    assert.deepEqual(got, [16]);
  });

  for (const dst of [ADDR.rLan, ADDR.rWan]) {
    await t.step(
      `traceroute to the router's ${dst} ends at hop 1 with Port Unreachable`,
      async () => {
        const lab = hostLab();
        const hops = await settle(lab.clock, traceroute(lab.h1, { dst: parseIpv4(dst) }));
        assert.equal(hops.length, 1);
        assert.deepEqual(hops[0]!.from, [dst]);
        assert.equal(hops[0]!.type, 3);
        assert.equal(hops[0]!.code, 3);
      },
    );
  }
});
