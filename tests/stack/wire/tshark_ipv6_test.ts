/**
 * Cross-check with Wireshark's dissectors: build one of every ICMPv6, NDP
 * and MLD message kind the IPv6-side views and Reprs make, plus UDP in
 * IPv6 fragments behind a Hop-by-Hop header, write them into a classic
 * pcap file, and ask tshark for malformed frames, bad checksums and expert
 * warnings. Without tshark the test is ignored, except under CI=true.
 */
import assert from "node:assert/strict";
import { writeEthernetHeader } from "../../../stack/wire/ethernet.ts";
import { PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { ipv6MulticastMac, parseMac } from "../../../stack/wire/mac_address.ts";
import { IPV6_HEADER_LEN, writeIpv6Header } from "../../../stack/wire/ipv6.ts";
import { writeFragmentHeader } from "../../../stack/wire/ipv6_ext.ts";
import { Icmpv6Code, Icmpv6Repr } from "../../../stack/wire/icmpv6.ts";
import { type NdpRepr, writeNdpPacket } from "../../../stack/wire/ndp.ts";
import {
  MldRecordType,
  type MldRepr,
  writeMldPacket,
  writeRouterAlertHopByHop,
} from "../../../stack/wire/mld.ts";
import { UdpPacket, UdpRepr } from "../../../stack/wire/udp.ts";
import { haveTshark, pcap, tshark } from "./_pcap.ts";

const MAC_A = parseMac("02:00:00:00:00:01");
const MAC_B = parseMac("02:00:00:00:00:02");
const A = parseIpv6("2001:db8::1");
const B = parseIpv6("2001:db8:1::2");
const R = parseIpv6("2001:db8::ff");
const LLA = parseIpv6("fe80::1");
const LLR = parseIpv6("fe80::ff");

/** Ethernet + an IPv6 packet, padded to 60 bytes; multicast destinations get 33:33 MACs. */
function frame(ip: Uint8Array): Uint8Array {
  const dst = ip[24] === 0xff ? ipv6MulticastMac(ip, 24) : MAC_B;
  const b = new PacketBuffer(14 + ip.length + 64);
  writeEthernetHeader(b, 0, dst, MAC_A, 0x86dd);
  b.data.set(ip, 14);
  return b.data.slice(0, Math.max(60, 14 + ip.length));
}

/** An IPv6 packet whose payload `write` fills; returns its bytes. */
function packet(len: number, write: (b: PacketBuffer) => void): Uint8Array {
  const b = new PacketBuffer(IPV6_HEADER_LEN + len + 64);
  b.setFrame(0, IPV6_HEADER_LEN + len);
  write(b);
  return b.data.slice(0, IPV6_HEADER_LEN + len);
}

function icmp(src: Uint8Array, dst: Uint8Array, repr: Icmpv6Repr): Uint8Array {
  const len = Icmpv6Repr.bufferLen(repr);
  return packet(len, (b) => {
    writeIpv6Header(b, 0, { src, dst, nextHeader: 58, payloadLen: len });
    Icmpv6Repr.emit(repr, b, IPV6_HEADER_LEN, 0);
  });
}

function udp(src: Uint8Array, dst: Uint8Array, payload: Uint8Array, hopLimit = 64): Uint8Array {
  const repr = { srcPort: 40000, dstPort: 33434, payload };
  const len = UdpRepr.bufferLen(repr);
  return packet(len, (b) => {
    writeIpv6Header(b, 0, { src, dst, nextHeader: 17, payloadLen: len, hopLimit });
    UdpRepr.emit(repr, b, IPV6_HEADER_LEN);
    new UdpPacket().reset(b, IPV6_HEADER_LEN).fillChecksumV6(b.data, b.data, 8, 24);
  });
}

function ndp(src: Uint8Array, dst: Uint8Array, repr: NdpRepr): Uint8Array {
  const b = new PacketBuffer(512);
  const n = writeNdpPacket(b, 0, src, dst, repr);
  return b.data.slice(0, n);
}

function mld(src: Uint8Array, dst: Uint8Array, repr: MldRepr): Uint8Array {
  const b = new PacketBuffer(512);
  const n = writeMldPacket(b, 0, src, dst, repr);
  return b.data.slice(0, n);
}

function buildFrames(): { name: string; frame: Uint8Array }[] {
  const frames: { name: string; frame: Uint8Array }[] = [];
  const add = (name: string, ip: Uint8Array) => frames.push({ name, frame: frame(ip) });
  const payload = new TextEncoder().encode("tapir wire cross-check");
  const original = udp(A, B, payload, 1);

  add("UDP", udp(A, B, payload));
  add("echo request", icmp(A, B, { kind: "echoRequest", ident: 7, seq: 1, data: payload }));
  add("echo reply", icmp(B, A, { kind: "echoReply", ident: 7, seq: 1, data: payload }));
  for (let code = 0; code <= 6; code++) {
    add(
      `destination unreachable ${code}`,
      icmp(R, A, { kind: "destinationUnreachable", code, data: original }),
    );
  }
  add("packet too big", icmp(R, A, { kind: "packetTooBig", mtu: 1280, data: original }));
  for (const code of [Icmpv6Code.HOP_LIMIT_EXCEEDED, Icmpv6Code.REASSEMBLY_TIME_EXCEEDED]) {
    add(`time exceeded ${code}`, icmp(R, A, { kind: "timeExceeded", code, data: original }));
  }
  const pps: [number, number][] = [
    [Icmpv6Code.ERRONEOUS_HEADER_FIELD, 4],
    [Icmpv6Code.UNRECOGNIZED_NEXT_HEADER, 6],
    [Icmpv6Code.UNRECOGNIZED_OPTION, 42],
  ];
  for (const [code, pointer] of pps) {
    add(
      `parameter problem ${code}`,
      icmp(R, A, { kind: "parameterProblem", code, pointer, data: original }),
    );
  }

  const allRouters = parseIpv6("ff02::2");
  const allNodes = parseIpv6("ff02::1");
  add(
    "router solicitation",
    ndp(LLA, allRouters, {
      kind: "routerSolicitation",
      options: [{ kind: "sourceLinkLayerAddress", mac: MAC_A }],
    }),
  );
  add(
    "router advertisement",
    ndp(LLR, allNodes, {
      kind: "routerAdvertisement",
      curHopLimit: 64,
      managed: false,
      other: true,
      preference: 1,
      routerLifetime: 1800,
      reachableTime: 0,
      retransTimer: 0,
      options: [
        { kind: "sourceLinkLayerAddress", mac: MAC_B },
        { kind: "mtu", mtu: 1500 },
        {
          kind: "prefixInformation",
          prefixLength: 64,
          onLink: true,
          autonomous: true,
          validLifetime: 86400,
          preferredLifetime: 14400,
          prefix: parseIpv6("2001:db8:10::"),
        },
        {
          kind: "routeInformation",
          prefixLength: 0,
          preference: 3,
          lifetime: 600,
          prefix: parseIpv6("::"),
        },
        {
          kind: "routeInformation",
          prefixLength: 48,
          preference: 1,
          lifetime: 3600,
          prefix: parseIpv6("2001:db8:ff::"),
        },
        {
          kind: "routeInformation",
          prefixLength: 96,
          preference: 0,
          lifetime: 60,
          prefix: parseIpv6("2001:db8:ee::1:0:0"),
        },
        { kind: "rdnss", lifetime: 600, addresses: [parseIpv6("2001:db8:10::53")] },
        { kind: "dnssl", lifetime: 600, domains: ["example.net", "lab.example.org"] },
      ],
    }),
  );
  add(
    "neighbor solicitation",
    ndp(A, parseIpv6("ff02::1:ff00:2"), {
      kind: "neighborSolicitation",
      target: parseIpv6("2001:db8::2"),
      options: [{ kind: "sourceLinkLayerAddress", mac: MAC_A }],
    }),
  );
  add(
    "DAD neighbor solicitation with nonce",
    ndp(parseIpv6("::"), parseIpv6("ff02::1:ff00:1"), {
      kind: "neighborSolicitation",
      target: A,
      options: [{ kind: "nonce", nonce: new Uint8Array([1, 2, 3, 4, 5, 6]) }],
    }),
  );
  add(
    "neighbor advertisement",
    ndp(parseIpv6("2001:db8::2"), A, {
      kind: "neighborAdvertisement",
      router: true,
      solicited: true,
      override: true,
      target: parseIpv6("2001:db8::2"),
      options: [{ kind: "targetLinkLayerAddress", mac: MAC_B }],
    }),
  );
  add(
    "redirect",
    ndp(LLR, A, {
      kind: "redirect",
      target: parseIpv6("fe80::2"),
      destination: B,
      options: [
        { kind: "targetLinkLayerAddress", mac: MAC_B },
        // RFC 4861 §4.6.3: as much of the redirected packet as fits, padded to 8.
        { kind: "redirectedHeader", data: original.slice(0, 64) },
      ],
    }),
  );

  add(
    "MLDv2 general query",
    mld(LLR, allNodes, {
      kind: "queryV2",
      maxResponseCode: 10000,
      group: parseIpv6("::"),
      suppress: false,
      qrv: 2,
      qqic: 125,
      sources: [],
    }),
  );
  add(
    "MLDv2 group-and-source query",
    mld(LLR, parseIpv6("ff0e::101"), {
      kind: "queryV2",
      maxResponseCode: 1000,
      group: parseIpv6("ff0e::101"),
      suppress: true,
      qrv: 2,
      qqic: 125,
      sources: [A, B],
    }),
  );
  add(
    "MLDv2 report",
    mld(LLA, parseIpv6("ff02::16"), {
      kind: "reportV2",
      records: [
        { type: MldRecordType.MODE_IS_INCLUDE, group: parseIpv6("ff0e::101"), sources: [R] },
        { type: MldRecordType.MODE_IS_EXCLUDE, group: parseIpv6("ff0e::102"), sources: [] },
        { type: MldRecordType.CHANGE_TO_INCLUDE_MODE, group: parseIpv6("ff0e::103"), sources: [A] },
        {
          type: MldRecordType.CHANGE_TO_EXCLUDE_MODE,
          group: parseIpv6("ff02::1:ff00:1"),
          sources: [],
        },
        { type: MldRecordType.ALLOW_NEW_SOURCES, group: parseIpv6("ff0e::104"), sources: [B] },
        { type: MldRecordType.BLOCK_OLD_SOURCES, group: parseIpv6("ff0e::104"), sources: [A, B] },
      ],
    }),
  );
  add(
    "MLDv1 query",
    mld(LLR, allNodes, { kind: "queryV1", maxResponseDelay: 10000, group: parseIpv6("::") }),
  );
  add(
    "MLDv1 report",
    mld(LLA, parseIpv6("ff0e::101"), { kind: "reportV1", group: parseIpv6("ff0e::101") }),
  );
  add("MLDv1 done", mld(LLA, allRouters, { kind: "done", group: parseIpv6("ff0e::101") }));

  // A UDP datagram of 8 + 40 bytes behind Hop-by-Hop (Router Alert) and
  // Fragment headers, split after 32 bytes of the fragmentable part.
  const whole = udp(A, B, new Uint8Array(40).map((_, i) => i));
  const body = whole.subarray(IPV6_HEADER_LEN);
  const parts: [number, number, boolean][] = [[0, 32, true], [32, 16, false]];
  for (const [offset, len, more] of parts) {
    add(
      `HBH + fragment at ${offset}`,
      packet(16 + len, (b) => {
        writeIpv6Header(b, 0, { src: A, dst: B, nextHeader: 0, payloadLen: 16 + len });
        writeRouterAlertHopByHop(b, 40, 44, 2);
        writeFragmentHeader(b, 48, {
          nextHeader: 17,
          fragmentOffset: offset,
          moreFragments: more,
          identification: 0xabcdef01,
        });
        b.data.set(body.subarray(offset, offset + len), 56);
      }),
    );
  }
  return frames;
}

const CI = Deno.env.get("CI") === "true";
const tsharkFound = await haveTshark();
if (!tsharkFound && !CI) {
  console.log(
    "tshark_ipv6_test.ts: ignored because tshark is not installed (apt-get install tshark)",
  );
}

Deno.test({
  name: "tshark dissects every IPv6-side packet kind without malformed frames or bad checksums",
  ignore: !tsharkFound && !CI,
  async fn() {
    assert.equal(tsharkFound, true, "tshark is required under CI=true");
    const frames = buildFrames();
    const dir = await Deno.makeTempDir({ prefix: "tapir_tshark6_" });
    const file = `${dir}/wire6.pcap`;
    try {
      await Deno.writeFile(file, pcap(frames.map((f) => f.frame)));
      const checks = ["-o", "udp.check_checksum:TRUE"];
      // Every frame dissected as IPv6; every ICMPv6 checksum verified good.
      const summary = await tshark([
        "-r",
        file,
        ...checks,
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-e",
        "frame.protocols",
        "-e",
        "icmpv6.checksum.status",
        "-e",
        "udp.checksum.status",
      ]);
      const lines = summary.trim().split("\n");
      assert.equal(lines.length, frames.length);
      for (const [i, f] of frames.entries()) {
        const [protocols, icmpStatus, udpStatus] = lines[i]!.split(";");
        assert.ok(protocols!.startsWith("eth:ethertype:ipv6"), `${f.name}: ${lines[i]}`);
        if (protocols!.includes("icmpv6")) {
          // 1 is "Good"; errors quote UDP, whose checksum is good too.
          assert.equal(icmpStatus!.split(",")[0], "1", `${f.name}: ${lines[i]}`);
        }
        if (f.name === "UDP") assert.equal(udpStatus, "1", `${f.name}: ${lines[i]}`);
      }
      const last = lines[frames.length - 1]!;
      assert.match(last, /ipv6\.hopopts:ipv6\.fraghdr:udp/, "the fragments reassemble into UDP");
      assert.match(last, /;1$/, "the reassembled UDP checksum is good");
      // No malformed frame, no expert warning or error (bad checksums are errors).
      const bad = await tshark([
        "-r",
        file,
        ...checks,
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
      ]);
      const named = bad.trim().split("\n").filter((l) => l !== "").map((l) => {
        const n = Number(l.split("\t")[0]);
        return `${frames[n - 1]?.name}: ${l}`;
      });
      assert.deepStrictEqual(named, []);
      const expert = await tshark(["-r", file, ...checks, "-z", "expert,warn", "-q"]);
      assert.doesNotMatch(expert, /^(Errors|Warns) \(/m, expert);

      // Negative control: the same run does flag a corrupted ICMPv6 checksum.
      const echo = frames.find((f) => f.name === "echo request")!.frame.slice();
      echo[14 + 40 + 3] = echo[14 + 40 + 3]! ^ 0x01;
      await Deno.writeFile(file, pcap([echo]));
      const control = await tshark(["-r", file, ...checks, "-z", "expert,warn", "-q"]);
      // (tshark 4.0 files a bad ICMPv6 checksum as a warning, a bad UDP one as an error.)
      assert.match(control, /^(Errors|Warns) \(1\)/m, control);
      assert.match(control, /ICMPv6\s+Bad checksum/, control);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
