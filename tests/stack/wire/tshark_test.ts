/**
 * Cross-check with Wireshark's dissectors: build one of every packet kind
 * the IPv4-side views and Reprs make, write them into a classic pcap file,
 * and ask tshark for malformed frames, bad checksums and expert warnings.
 * Without tshark the test is ignored, except under CI=true.
 */
import assert from "node:assert/strict";
import { writeEthernetHeader } from "../../../stack/wire/ethernet.ts";
import { PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { parseIpv4 } from "../../../stack/wire/ip_address.ts";
import { BROADCAST_MAC, parseMac } from "../../../stack/wire/mac_address.ts";
import { ArpOp, ArpRepr } from "../../../stack/wire/arp.ts";
import {
  IpProtocol,
  type Ipv4HeaderFields,
  ipv4HeaderLen,
  writeIpv4Header,
} from "../../../stack/wire/ipv4.ts";
import { Icmpv4Code, Icmpv4Repr } from "../../../stack/wire/icmpv4.ts";
import { UdpPacket, UdpRepr } from "../../../stack/wire/udp.ts";
import { TcpFlags, TcpRepr } from "../../../stack/wire/tcp.ts";
import { hex } from "./_helpers.ts";

const MAC_A = parseMac("02:00:00:00:00:01");
const MAC_B = parseMac("02:00:00:00:00:02");
const A = parseIpv4("192.0.2.1");
const B = parseIpv4("198.51.100.2");
const R = parseIpv4("203.0.113.1");

const HDR = 64;

/** Ethernet + `len` bytes written by `write`, padded to 60 bytes. */
function ethernet(
  etherType: number,
  dst: Uint8Array,
  len: number,
  write: (b: PacketBuffer, off: number) => void,
): Uint8Array {
  const b = new PacketBuffer(HDR + 14 + len + 64);
  writeEthernetHeader(b, HDR, dst, MAC_A, etherType);
  b.setFrame(HDR, 14 + len);
  write(b, HDR + 14);
  const n = Math.max(60, 14 + len);
  return b.data.slice(HDR, HDR + n);
}

/** An IPv4 packet (no link header) with a payload written by `write`. */
function ipv4(
  f: Omit<Ipv4HeaderFields, "payloadLen">,
  payloadLen: number,
  write: (b: PacketBuffer, off: number) => void,
): Uint8Array {
  const hl = ipv4HeaderLen(f.options?.length ?? 0);
  const b = new PacketBuffer(hl + payloadLen + 16);
  b.setFrame(0, hl + payloadLen);
  writeIpv4Header(b, 0, { ...f, payloadLen });
  write(b, hl);
  return b.data.slice(0, hl + payloadLen);
}

function ipFrame(ip: Uint8Array): Uint8Array {
  return ethernet(0x0800, MAC_B, ip.length, (b, off) => b.data.set(ip, off));
}

function udpIp(
  f: Omit<Ipv4HeaderFields, "payloadLen" | "protocol">,
  payload: Uint8Array,
): Uint8Array {
  const repr = { srcPort: 40000, dstPort: 33434, payload };
  return ipv4({ ...f, protocol: IpProtocol.UDP }, UdpRepr.bufferLen(repr), (b, off) => {
    UdpRepr.emit(repr, b, off, { src: f.src, dst: f.dst });
  });
}

function icmpIp(
  f: Omit<Ipv4HeaderFields, "payloadLen" | "protocol">,
  repr: Icmpv4Repr,
): Uint8Array {
  return ipv4({ ...f, protocol: IpProtocol.ICMP }, Icmpv4Repr.bufferLen(repr), (b, off) => {
    Icmpv4Repr.emit(repr, b, off);
  });
}

/** The quote of an ICMP error: the IP header and 8 bytes of payload (RFC 792). */
function quote(ip: Uint8Array): Uint8Array {
  return ip.slice(0, ((ip[0]! & 15) << 2) + 8);
}

function buildFrames(): { name: string; frame: Uint8Array }[] {
  const frames: { name: string; frame: Uint8Array }[] = [];
  const add = (name: string, frame: Uint8Array) => frames.push({ name, frame });
  const payload = new TextEncoder().encode("tapir wire cross-check");
  const original = udpIp({ src: A, dst: B, ttl: 1, id: 0x1111, dontFragment: true }, payload);

  for (const op of [ArpOp.REQUEST, ArpOp.REPLY]) {
    const repr: ArpRepr = {
      op,
      senderMac: MAC_A,
      senderIp: A,
      targetMac: op === ArpOp.REQUEST ? new Uint8Array(6) : MAC_B,
      targetIp: parseIpv4("192.0.2.2"),
    };
    add(
      `ARP op ${op}`,
      ethernet(
        0x0806,
        op === ArpOp.REQUEST ? BROADCAST_MAC : MAC_B,
        28,
        (b, off) => ArpRepr.emit(repr, b, off),
      ),
    );
  }
  add(
    "ICMP echo request with Record Route",
    ipFrame(icmpIp({ src: A, dst: B, id: 1, options: hex("070b04", "0000000000000000") }, {
      kind: "echoRequest",
      ident: 7,
      seq: 1,
      data: payload,
    })),
  );
  add(
    "ICMP echo reply with Timestamp",
    ipFrame(icmpIp({ src: B, dst: A, id: 2, options: hex("440c0901", "cb007101", "0036ee80") }, {
      kind: "echoReply",
      ident: 7,
      seq: 1,
      data: payload,
    })),
  );
  add(
    "UDP with Router Alert",
    ipFrame(udpIp({ src: A, dst: B, id: 3, options: hex("94040000") }, payload)),
  );
  const unreachable: [string, number, number][] = [
    ["net unreachable", Icmpv4Code.NET_UNREACHABLE, 0],
    ["host unreachable", Icmpv4Code.HOST_UNREACHABLE, 0],
    ["protocol unreachable", Icmpv4Code.PROTOCOL_UNREACHABLE, 0],
    ["port unreachable", Icmpv4Code.PORT_UNREACHABLE, 0],
    ["fragmentation needed", Icmpv4Code.FRAGMENTATION_NEEDED, 1400],
    ["admin prohibited", Icmpv4Code.ADMIN_PROHIBITED, 0],
  ];
  for (const [name, code, mtu] of unreachable) {
    add(
      `ICMP ${name}`,
      ipFrame(icmpIp({ src: R, dst: A, id: 4, ttl: 64 }, {
        kind: "destinationUnreachable",
        code,
        nextHopMtu: mtu,
        data: quote(original),
      })),
    );
  }
  for (const code of [Icmpv4Code.TTL_EXCEEDED, Icmpv4Code.REASSEMBLY_TIME_EXCEEDED]) {
    add(
      `ICMP time exceeded ${code}`,
      ipFrame(
        icmpIp({ src: R, dst: A, id: 5 }, { kind: "timeExceeded", code, data: quote(original) }),
      ),
    );
  }
  const badRr = udpIp(
    { src: A, dst: B, id: 6, options: hex("070b02", "0000000000000000") },
    payload,
  );
  add(
    "ICMP parameter problem",
    ipFrame(icmpIp({ src: R, dst: A, id: 7 }, {
      kind: "parameterProblem",
      code: Icmpv4Code.POINTER_INDICATES_ERROR,
      pointer: 22,
      data: quote(badRr),
    })),
  );
  add("UDP", ipFrame(udpIp({ src: A, dst: B, id: 8 }, payload)));
  const syn: TcpRepr = {
    srcPort: 40000,
    dstPort: 80,
    seq: 1000,
    ack: 0,
    flags: TcpFlags.SYN,
    window: 64240,
    urgent: 0,
    mss: 1460,
    payload: new Uint8Array(0),
  };
  add(
    "TCP SYN with MSS",
    ipFrame(
      ipv4(
        { src: A, dst: B, id: 9, dontFragment: true, protocol: IpProtocol.TCP },
        TcpRepr.bufferLen(syn),
        (b, off) => {
          TcpRepr.emit(syn, b, off, { src: A, dst: B });
        },
      ),
    ),
  );

  // A UDP datagram of 8 + 40 bytes split at 32 bytes (a multiple of 8).
  const whole = new PacketBuffer(64);
  const big = { srcPort: 40000, dstPort: 33434, payload: new Uint8Array(40).map((_, i) => i) };
  whole.setFrame(0, 48);
  UdpRepr.emit(big, whole, 0, { src: A, dst: B });
  assert.equal(new UdpPacket().reset(whole, 0).verifyChecksumV4(A, B), true);
  const parts: [number, number, boolean][] = [[0, 32, true], [32, 16, false]];
  for (const [offset, len, more] of parts) {
    add(
      `IPv4 fragment at ${offset}`,
      ipFrame(
        ipv4(
          {
            src: A,
            dst: B,
            id: 0xabcd,
            protocol: IpProtocol.UDP,
            moreFragments: more,
            fragmentOffset: offset,
          },
          len,
          (b, off) => {
            b.data.set(whole.data.subarray(offset, offset + len), off);
          },
        ),
      ),
    );
  }
  return frames;
}

/** A classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET). */
function pcap(frames: Uint8Array[]): Uint8Array {
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true); // magic
  v.setUint16(4, 2, true); // version 2.4
  v.setUint16(6, 4, true);
  v.setUint32(16, 65_535, true); // snaplen
  v.setUint32(20, 1, true); // LINKTYPE_ETHERNET
  let at = 24;
  frames.forEach((f, i) => {
    v.setUint32(at, 1_700_000_000 + i, true);
    v.setUint32(at + 4, 0, true);
    v.setUint32(at + 8, f.length, true);
    v.setUint32(at + 12, f.length, true);
    out.set(f, at + 16);
    at += 16 + f.length;
  });
  return out;
}

async function haveTshark(): Promise<boolean> {
  try {
    const r = await new Deno.Command("tshark", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

const CI = Deno.env.get("CI") === "true";
const tsharkFound = await haveTshark();
if (!tsharkFound && !CI) {
  console.log("tshark_test.ts: ignored because tshark is not installed (apt-get install tshark)");
}

async function tshark(args: string[]): Promise<string> {
  const r = await new Deno.Command("tshark", { args, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr).split("\n").filter((l) =>
    l !== "" && !l.includes("Running as user")
  ).join("\n");
  assert.equal(r.success, true, `tshark failed: ${err}`);
  return out;
}

Deno.test({
  name: "tshark dissects every IPv4-side packet kind without malformed frames or bad checksums",
  ignore: !tsharkFound && !CI,
  async fn() {
    assert.equal(tsharkFound, true, "tshark is required under CI=true");
    const frames = buildFrames();
    const dir = await Deno.makeTempDir({ prefix: "tapir_tshark_" });
    const file = `${dir}/wire.pcap`;
    try {
      await Deno.writeFile(file, pcap(frames.map((f) => f.frame)));
      const checks = [
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
      ];
      // Every frame dissected, with the protocols we built.
      const summary = await tshark([
        "-r",
        file,
        ...checks,
        "-T",
        "fields",
        "-e",
        "frame.protocols",
      ]);
      const lines = summary.trim().split("\n");
      assert.equal(lines.length, frames.length);
      for (const [i, f] of frames.entries()) {
        const want = f.name.startsWith("ARP") ? "eth:ethertype:arp" : "eth:ethertype:ip";
        assert.ok(lines[i]!.startsWith(want), `${f.name}: ${lines[i]}`);
      }
      assert.match(lines[frames.length - 1]!, /udp/, "the fragments reassemble into UDP");
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
      // The quoted datagram of the Parameter Problem carries the very error it
      // reports (Record Route pointer 2); tshark rightly warns about that one.
      const expected = /^ICMP parameter problem: \d+\tPointer points before first address$/;
      assert.deepStrictEqual(named.filter((l) => !expected.test(l)), []);
      assert.equal(named.length, 1, "tshark saw the quoted bad pointer");
      const expert = await tshark(["-r", file, ...checks, "-z", "expert,warn", "-q"]);
      // (tshark's expert tap leaves out what it finds inside ICMP quotes.)
      assert.doesNotMatch(expert, /^(Errors|Warns) \(/m, expert);

      // Negative control: the same run does flag a corrupted UDP checksum.
      const udp = frames.find((f) => f.name === "UDP")!.frame.slice();
      udp[14 + 20 + 6] = udp[14 + 20 + 6]! ^ 0x01;
      await Deno.writeFile(file, pcap([udp]));
      const control = await tshark(["-r", file, ...checks, "-z", "expert,warn", "-q"]);
      assert.match(control, /^Errors \(1\)/m, control);
      assert.match(control, /UDP\s+Bad checksum/, control);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
