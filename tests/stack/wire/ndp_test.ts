import assert from "node:assert/strict";
import {
  decodeDnsNames,
  encodeDnsNames,
  NdpOptionError,
  NdpOptionIterator,
  NdpOptionType,
  NdpPacket,
  NdpPreference,
  NdpRepr,
  parseNdpOptions,
  validateNdpOptions,
  writeNdpPacket,
} from "../../../stack/wire/ndp.ts";
import { Icmpv6Packet } from "../../../stack/wire/icmpv6.ts";
import { parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { parseMac } from "../../../stack/wire/mac_address.ts";
import { PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

const ip6 = parseIpv6;

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors_ipv6.py; each
// is a whole IPv6 packet, so the checksums are scapy's over the pseudo header.
// scapy 2.5.0: IPv6(src='fe80::1', dst='ff02::2', hlim=255)/ICMPv6ND_RS()/ICMPv6NDOptSrcLLAddr(lladdr='02:00:00:00:00:01')
const RS = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0010", // payload length 16
  "3a", // next header 58
  "ff", // hop limit 255
  "fe800000000000000000000000000001", // source fe80::1
  "ff020000000000000000000000000002", // destination ff02::2
  "85", // ICMPv6 type 133
  "00", // code 0
  "7a2c", // checksum
  "00000000", // reserved
  "0101", // option 1 (Source Link-Layer Address), length 8
  "020000000001", //   02:00:00:00:00:01
);

// scapy 2.5.0: IPv6(src='fe80::ff', dst='ff02::1', hlim=255)/ICMPv6ND_RA(chlim=64, M=1, O=1, prf=3, routerlifetime=1800, reachabletime=30000, retranstimer=1000)/ICMPv6NDOptSrcLLAddr(lladdr='02:00:00:00:00:ff')/ICMPv6NDOptMTU(mtu=1500)/ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=86400, preferredlifetime=14400, prefix='2001:db8:10::')/ICMPv6NDOptRouteInfo(plen=48, prf=1, rtlifetime=3600, prefix='2001:db8:ff::', len=2)/ICMPv6NDOptRouteInfo(plen=0, prf=3, rtlifetime=600, prefix='::', len=1)/ICMPv6NDOptRouteInfo(plen=96, prf=0, rtlifetime=60, prefix='2001:db8:ee::1:0:0')/ICMPv6NDOptRDNSS(lifetime=600, dns=['2001:db8:10::53', '2001:db8:10::54'])/ICMPv6NDOptDNSSL(lifetime=600, searchlist=['example.net', 'lab.example.org'])
const RA = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "00c0", // payload length 192
  "3a", // next header 58
  "ff", // hop limit 255
  "fe8000000000000000000000000000ff", // source fe80::ff
  "ff020000000000000000000000000001", // destination ff02::1
  "86", // ICMPv6 type 134
  "00", // code 0
  "cc8a", // checksum
  "40", // cur hop limit 64
  "d8", // flags M=1 O=1 Prf=3
  "0708", // router lifetime 1800
  "00007530", // reachable time 30000
  "000003e8", // retrans timer 1000
  "0101", // option 1 (Source Link-Layer Address), length 8
  "0200000000ff", //   02:00:00:00:00:ff
  "05010000", // option 5 (MTU), length 8, reserved
  "000005dc", //   MTU 1500
  "030440c0", // option 3 (Prefix Information), length 32, prefix length 64, L=1 A=1
  "00015180", //   valid lifetime 86400
  "00003840", //   preferred lifetime 14400
  "00000000", //   reserved
  "20010db8001000000000000000000000", //   prefix 2001:db8:10::
  "18023008", // option 24 (Route Information), length 16, prefix length 48, preference 1
  "00000e10", //   route lifetime 3600
  "20010db800ff0000", //   prefix bytes (8)
  "18010018", // option 24 (Route Information), length 8, prefix length 0, preference 3
  "00000258", //   route lifetime 600
  "18036000", // option 24 (Route Information), length 24, prefix length 96, preference 0
  "0000003c", //   route lifetime 60
  "20010db800ee00000000000100000000", //   prefix bytes (16)
  "19050000", // option 25 (RDNSS), length 40, reserved
  "00000258", //   lifetime 600
  "20010db8001000000000000000000053", //   server 2001:db8:10::53
  "20010db8001000000000000000000054", //   server 2001:db8:10::54
  "1f050000", // option 31 (DNSSL), length 40, reserved
  "00000258", //   lifetime 600
  "076578616d706c65036e657400036c6162076578616d706c65036f7267000000", //   domain names (DNS wire encoding) and padding
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='ff02::1:ff00:2', hlim=255)/ICMPv6ND_NS(tgt='2001:db8::2')/ICMPv6NDOptSrcLLAddr(lladdr='02:00:00:00:00:01')
const NS = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "3a", // next header 58
  "ff", // hop limit 255
  "20010db8000000000000000000000001", // source 2001:db8::1
  "ff0200000000000000000001ff000002", // destination ff02::1:ff00:2
  "87", // ICMPv6 type 135
  "00", // code 0
  "1c27", // checksum
  "00000000", // reserved
  "20010db8000000000000000000000002", // target 2001:db8::2
  "0101", // option 1 (Source Link-Layer Address), length 8
  "020000000001", //   02:00:00:00:00:01
);

// scapy 2.5.0: IPv6(src='::', dst='ff02::1:ff00:1', hlim=255)/ICMPv6ND_NS(tgt='2001:db8::1')/ICMPv6NDOptUnknown(type=14, len=1, data=b'\x01\x02\x03\x04\x05\x06')
const NS_DAD_NONCE = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "3a", // next header 58
  "ff", // hop limit 255
  "00000000000000000000000000000000", // source ::
  "ff0200000000000000000001ff000001", // destination ff02::1:ff00:1
  "87", // ICMPv6 type 135
  "00", // code 0
  "35d8", // checksum
  "00000000", // reserved
  "20010db8000000000000000000000001", // target 2001:db8::1
  "0e01010203040506", // option 14 (Nonce), length 8
);

// scapy 2.5.0: IPv6(src='2001:db8::2', dst='2001:db8::1', hlim=255)/ICMPv6ND_NA(R=1, S=1, O=0, tgt='2001:db8::2')/ICMPv6NDOptDstLLAddr(lladdr='02:00:00:00:00:02')
const NA = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "3a", // next header 58
  "ff", // hop limit 255
  "20010db8000000000000000000000002", // source 2001:db8::2
  "20010db8000000000000000000000001", // destination 2001:db8::1
  "88", // ICMPv6 type 136
  "00", // code 0
  "2a71", // checksum
  "c0000000", // flags R=1 S=1 O=0, reserved
  "20010db8000000000000000000000002", // target 2001:db8::2
  "0201", // option 2 (Target Link-Layer Address), length 8
  "020000000002", //   02:00:00:00:00:02
);

// scapy 2.5.0: IPv6(src='fe80::ff', dst='2001:db8::1', hlim=255)/ICMPv6ND_Redirect(tgt='fe80::2', dst='2001:db8:1::2')/ICMPv6NDOptDstLLAddr(lladdr='02:00:00:00:00:02')/ICMPv6NDOptRedirectedHdr(pkt=IPv6(src='2001:db8::1', dst='2001:db8:1::2', plen=0, nh=59))
const REDIRECT = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0060", // payload length 96
  "3a", // next header 58
  "ff", // hop limit 255
  "fe8000000000000000000000000000ff", // source fe80::ff
  "20010db8000000000000000000000001", // destination 2001:db8::1
  "89", // ICMPv6 type 137
  "00", // code 0
  "1e2c", // checksum
  "00000000", // reserved
  "fe800000000000000000000000000002", // target fe80::2
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "0201", // option 2 (Target Link-Layer Address), length 8
  "020000000002", //   02:00:00:00:00:02
  "0406000000000000", // option 4 (Redirected Header), length 48, reserved
  //   redirected packet:
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0000", // payload length 0
  "3b", // next header 59
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
);

const cases: { name: string; bytes: Uint8Array; repr: NdpRepr }[] = [
  {
    name: "NdpRepr parses and emits a Router Solicitation with a source link-layer address",
    bytes: RS,
    repr: {
      kind: "routerSolicitation",
      options: [{ kind: "sourceLinkLayerAddress", mac: parseMac("02:00:00:00:00:01") }],
    },
  },
  {
    name: "NdpRepr parses and emits a Router Advertisement with every RA option",
    bytes: RA,
    repr: {
      kind: "routerAdvertisement",
      curHopLimit: 64,
      managed: true,
      other: true,
      preference: NdpPreference.LOW,
      routerLifetime: 1800,
      reachableTime: 30000,
      retransTimer: 1000,
      options: [
        { kind: "sourceLinkLayerAddress", mac: parseMac("02:00:00:00:00:ff") },
        { kind: "mtu", mtu: 1500 },
        {
          kind: "prefixInformation",
          prefixLength: 64,
          onLink: true,
          autonomous: true,
          validLifetime: 86400,
          preferredLifetime: 14400,
          prefix: ip6("2001:db8:10::"),
        },
        {
          kind: "routeInformation",
          prefixLength: 48,
          preference: NdpPreference.HIGH,
          lifetime: 3600,
          prefix: ip6("2001:db8:ff::"),
        },
        {
          kind: "routeInformation",
          prefixLength: 0,
          preference: NdpPreference.LOW,
          lifetime: 600,
          prefix: ip6("::"),
        },
        {
          kind: "routeInformation",
          prefixLength: 96,
          preference: NdpPreference.MEDIUM,
          lifetime: 60,
          prefix: ip6("2001:db8:ee::1:0:0"),
        },
        {
          kind: "rdnss",
          lifetime: 600,
          addresses: [ip6("2001:db8:10::53"), ip6("2001:db8:10::54")],
        },
        { kind: "dnssl", lifetime: 600, domains: ["example.net", "lab.example.org"] },
      ],
    },
  },
  {
    name: "NdpRepr parses and emits a Neighbor Solicitation",
    bytes: NS,
    repr: {
      kind: "neighborSolicitation",
      target: ip6("2001:db8::2"),
      options: [{ kind: "sourceLinkLayerAddress", mac: parseMac("02:00:00:00:00:01") }],
    },
  },
  {
    name: "NdpRepr parses and emits a DAD Neighbor Solicitation with a Nonce (RFC 7527)",
    bytes: NS_DAD_NONCE,
    repr: {
      kind: "neighborSolicitation",
      target: ip6("2001:db8::1"),
      options: [{ kind: "nonce", nonce: hex("010203040506") }],
    },
  },
  {
    name: "NdpRepr parses and emits a solicited router Neighbor Advertisement",
    bytes: NA,
    repr: {
      kind: "neighborAdvertisement",
      router: true,
      solicited: true,
      override: false,
      target: ip6("2001:db8::2"),
      options: [{ kind: "targetLinkLayerAddress", mac: parseMac("02:00:00:00:00:02") }],
    },
  },
  {
    name: "NdpRepr parses and emits a Redirect with a Redirected Header",
    bytes: REDIRECT,
    repr: {
      kind: "redirect",
      target: ip6("fe80::2"),
      destination: ip6("2001:db8:1::2"),
      options: [
        { kind: "targetLinkLayerAddress", mac: parseMac("02:00:00:00:00:02") },
        { kind: "redirectedHeader", data: REDIRECT.slice(96) },
      ],
    },
  },
];

Deno.test("NdpRepr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const ndp = new NdpPacket().reset(bufferWith(c.bytes), AT + 40);
      assert.equal(ndp.check(), true);
      assert.equal(new Icmpv6Packet().reset(ndp.buf, AT + 40).verifyChecksum(AT), true);
      assert.deepStrictEqual(NdpRepr.parse(ndp, AT), c.repr);
      const len = NdpRepr.bufferLen(c.repr);
      assert.equal(len, c.bytes.length - 40);
      const out = blankBuffer(40 + len);
      out.data.set(c.bytes.subarray(0, 40), AT);
      NdpRepr.emit(c.repr, out, AT + 40, AT);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + 40 + len], 0xa5);
      // The whole-packet builder writes the same bytes (hop limit 255).
      const whole = blankBuffer(40 + len);
      const n = writeNdpPacket(whole, AT, c.bytes.slice(8, 24), c.bytes.slice(24, 40), c.repr);
      assert.equal(n, c.bytes.length);
      assert.equal(toHex(frameOf(whole)), toHex(c.bytes));
    });
  }
});

Deno.test("NdpPacket and NdpOptionIterator read the Router Advertisement in place", () => {
  const p = bufferWith(RA);
  const ndp = new NdpPacket().reset(p, AT + 40);
  assert.deepStrictEqual(
    [
      ndp.curHopLimit(),
      ndp.managed(),
      ndp.other(),
      ndp.routerPreference(),
      ndp.routerLifetime(),
      ndp.reachableTime(),
      ndp.retransTimer(),
    ],
    [64, true, true, NdpPreference.LOW, 1800, 30000, 1000],
  );
  assert.equal(ndp.optionsOffset(), AT + 56);
  const it = new NdpOptionIterator().resetFrom(ndp);
  const seen: string[] = [];
  const prefix = new Uint8Array(16);
  while (it.next()) {
    assert.equal(it.wellFormed(), true);
    switch (it.type) {
      case NdpOptionType.SOURCE_LINK_LAYER_ADDRESS:
        seen.push(
          `lla ${
            toHex(p.data.subarray(it.linkLayerAddressOffset(), it.linkLayerAddressOffset() + 6))
          }`,
        );
        break;
      case NdpOptionType.MTU:
        seen.push(`mtu ${it.mtu()}`);
        break;
      case NdpOptionType.PREFIX_INFORMATION:
        seen.push(
          `pi ${it.prefixLength()} ${it.onLink()} ${it.autonomous()} ${it.validLifetime()} ${it.preferredLifetime()} ${
            toHex(p.data.subarray(it.prefixOffset(), it.prefixOffset() + 4))
          }`,
        );
        break;
      case NdpOptionType.ROUTE_INFORMATION:
        it.copyRoutePrefix(prefix);
        seen.push(
          `rio ${it.prefixLength()} ${it.routePreference()} ${it.lifetime()} ${toHex(prefix)}`,
        );
        break;
      case NdpOptionType.RDNSS:
        seen.push(
          `rdnss ${it.lifetime()} ${it.rdnssCount()} ${p.data[it.rdnssAddressOffset(1) + 15]}`,
        );
        break;
      case NdpOptionType.DNSSL:
        seen.push(
          `dnssl ${it.lifetime()} ${
            decodeDnsNames(p.data, it.bodyOffset(), it.bodyOffset() + it.bodyLength())
          }`,
        );
        break;
    }
  }
  assert.equal(it.error, NdpOptionError.NONE);
  assert.deepStrictEqual(seen, [
    "lla 0200000000ff",
    "mtu 1500",
    "pi 64 true true 86400 14400 20010db8",
    "rio 48 1 3600 20010db800ff00000000000000000000",
    "rio 0 3 600 00000000000000000000000000000000",
    "rio 96 0 60 20010db800ee00000000000100000000",
    "rdnss 600 2 84",
    "dnssl 600 example.net,lab.example.org",
  ]);
  const na = new NdpPacket().reset(bufferWith(NA), AT + 40);
  assert.deepStrictEqual([na.router(), na.solicited(), na.override()], [true, true, false]);
  assert.equal(na.targetOffset(), AT + 48);
  const rd = new NdpPacket().reset(bufferWith(REDIRECT), AT + 40);
  assert.equal(rd.destinationOffset(), AT + 64);
  assert.equal(rd.optionsOffset(), AT + 80);
  const nonce = new NdpOptionIterator().resetFrom(
    new NdpPacket().reset(bufferWith(NS_DAD_NONCE), AT + 40),
  );
  assert.equal(nonce.next(), true);
  assert.deepStrictEqual([nonce.type, nonce.nonceOffset() - AT, nonce.nonceLength()], [14, 66, 6]);
});

Deno.test("validateNdpOptions enforces RFC 4861 §4.6 lengths", async (t) => {
  const rows: { name: string; opts: Uint8Array; ok: boolean; error: number; at: number }[] = [
    { name: "validateNdpOptions accepts no options", opts: hex(""), ok: true, error: 0, at: -1 },
    {
      name: "validateNdpOptions accepts two options",
      opts: hex("0101020000000001", "05010000000005dc"),
      ok: true,
      error: 0,
      at: -1,
    },
    {
      name: "validateNdpOptions rejects a zero-length option",
      opts: hex("0101020000000001", "0500000000000000"),
      ok: false,
      error: NdpOptionError.ZERO_LENGTH,
      at: 8,
    },
    {
      name: "validateNdpOptions rejects an option that runs past the message",
      opts: hex("0102020000000001"),
      ok: false,
      error: NdpOptionError.OVERRUN,
      at: 0,
    },
    {
      name: "validateNdpOptions rejects a single trailing byte",
      opts: hex("0101020000000001", "01"),
      ok: false,
      error: NdpOptionError.OVERRUN,
      at: 8,
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      assert.equal(validateNdpOptions(r.opts, 0, r.opts.length), r.ok);
      const it = new NdpOptionIterator().reset(r.opts, 0, r.opts.length);
      while (it.next()) { /* walk */ }
      assert.equal(it.error, r.error);
      assert.equal(it.errorOffset, r.at);
      assert.equal(parseNdpOptions(r.opts, 0, r.opts.length) === null, !r.ok);
    });
  }
});

Deno.test("NdpOptionIterator.wellFormed() rejects lengths that do not fit the type", async (t) => {
  const rows: [string, Uint8Array][] = [
    [
      "Prefix Information of 24 bytes",
      hex("0303400000000000", "0000000000000000", "0000000000000000"),
    ],
    ["MTU of 16 bytes", hex("0502000000000500", "0000000000000000")],
    ["Route Information of 8 bytes for a /64 (RFC 4191 §2.3)", hex("1801400000000000")],
    ["Route Information of 16 bytes for a /96", hex("1802600000000000", "20010db800000000")],
    ["Route Information with prefix length 129", hex("1803810000000000", "00".repeat(16))],
    ["RDNSS of 16 bytes (no whole address)", hex("1902000000000000", "0000000000000000")],
    ["DNSSL of 8 bytes", hex("1f01000000000000")],
  ];
  for (const [name, opt] of rows) {
    await t.step(`NdpOptionIterator ignores ${name}`, () => {
      const it = new NdpOptionIterator().reset(opt, 0, opt.length);
      assert.equal(it.next(), true);
      assert.equal(it.wellFormed(), false);
      // Ignored by parse, yet the message stays valid.
      assert.deepStrictEqual(parseNdpOptions(opt, 0, opt.length), []);
    });
  }
});

Deno.test("NdpRepr.parse() rejects malformed messages without throwing", async (t) => {
  await t.step("NdpPacket.check() rejects a Neighbor Solicitation shorter than 24 bytes", () => {
    const p = bufferWith(NS.slice(0, 40 + 23));
    const ndp = new NdpPacket().reset(p, AT + 40);
    assert.equal(ndp.check(), false);
    assert.equal(NdpRepr.parse(ndp, AT), null);
  });
  await t.step("NdpPacket.check() rejects a non-NDP type", () => {
    const b = NS.slice();
    b[40] = 128;
    assert.equal(new NdpPacket().reset(bufferWith(b), AT + 40).check(), false);
  });
  await t.step("NdpRepr.parse() rejects code 1 (RFC 4861 §7.1.1)", () => {
    const p = bufferWith(NS);
    const icmp = new Icmpv6Packet().reset(p, AT + 40);
    icmp.setCode(1);
    icmp.fillChecksum(AT);
    assert.equal(NdpRepr.parse(new NdpPacket().reset(p, AT + 40), AT), null);
  });
  await t.step("NdpRepr.parse() rejects a bad checksum", () => {
    const b = RA.slice();
    b[45] = b[45]! ^ 0x80;
    assert.equal(NdpRepr.parse(new NdpPacket().reset(bufferWith(b), AT + 40), AT), null);
  });
  await t.step("NdpRepr.parse() rejects a zero-length option", () => {
    const p = bufferWith(NS);
    p.data[AT + 64 + 1] = 0;
    new Icmpv6Packet().reset(p, AT + 40).fillChecksum(AT);
    assert.equal(NdpRepr.parse(new NdpPacket().reset(p, AT + 40), AT), null);
  });
});

Deno.test("DNS name encoding for DNSSL (RFC 8106 §5.2)", async (t) => {
  await t.step("encodeDnsNames writes labels and a root byte per name", () => {
    assert.equal(toHex(encodeDnsNames(["example.net."])), "076578616d706c65036e657400");
  });
  await t.step("encodeDnsNames throws on an empty name or a long label", () => {
    assert.throws(() => encodeDnsNames([""]), RangeError);
    assert.throws(() => encodeDnsNames(["a".repeat(64) + ".net"]), RangeError);
  });
  await t.step("decodeDnsNames rejects a label past the end and compression", () => {
    const b = hex("076578616d706c");
    assert.equal(decodeDnsNames(b, 0, b.length), null);
    const c = hex("c00c000000000000");
    assert.equal(decodeDnsNames(c, 0, c.length), null);
  });
  await t.step("writeNdpPacket pads DNSSL to 8 bytes with zeros", () => {
    const p = new PacketBuffer(256);
    const repr: NdpRepr = {
      kind: "routerAdvertisement",
      curHopLimit: 0,
      managed: false,
      other: false,
      preference: 0,
      routerLifetime: 0,
      reachableTime: 0,
      retransTimer: 0,
      options: [{ kind: "dnssl", lifetime: 1, domains: ["a.b"] }],
    };
    const n = writeNdpPacket(p, 0, ip6("fe80::1"), ip6("ff02::1"), repr);
    assert.equal(n, 40 + 16 + 16);
    assert.equal(toHex(p.data.subarray(56, 72)), "1f02000000000001" + "0161016200000000");
  });
});
