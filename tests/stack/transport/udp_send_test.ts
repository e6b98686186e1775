/**
 * UDP's send path (stack/transport/udp.ts): which source a datagram leaves
 * from (a socket's bound address, `src` given, the route's, `0.0.0.0` and
 * `::` kept as given), what cannot be sent (a source of the other family),
 * and that the checksum verifies on both families. Two stacks on a memory
 * link, a manual clock; what b receives is what a sent.
 *
 *   a eth0 192.0.2.1, 2001:db8::1, 192.0.2.9 ──── b eth0 192.0.2.2, 2001:db8::2
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { MemoryLink } from "../../../link/mod.ts";
import { ManualClock } from "../../../stack/mod.ts";
import {
  finishChecksum,
  formatIpv4,
  formatIpv6,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
  parseIpv4,
  parseIpv6,
} from "../../../stack/wire/mod.ts";

interface Seen {
  src: string;
  dst: string;
  srcPort: number;
  payload: string;
  /** The UDP checksum verifies (RFC 768, RFC 8200 §8.1). */
  checksumOk: boolean;
}

function lab() {
  const clock = new ManualClock();
  const [ab, ba] = MemoryLink.pair({ clock, names: ["a:eth0", "b:eth0"] });
  const node = (text: string, link: typeof ab) =>
    buildStack(parseConfig(text), { clock, openLink: () => link }).stack;
  const a = node(
    `[[interface]]\nname = "eth0"\naddresses = ["192.0.2.1/24", "2001:db8::1/64", "192.0.2.9/24"]\n`,
    ab,
  );
  const b = node(
    `[[interface]]\nname = "eth0"\naddresses = ["192.0.2.2/24", "2001:db8::2/64"]\n`,
    ba,
  );
  clock.advance(5000); // DAD
  const seen: Seen[] = [];
  b.udp.bindSocket({
    family: 0,
    port: 9000,
    onDatagram: (d) => {
      const data = d.buffer.data;
      const u = d.payloadOffset - 8, len = d.payloadLength + 8;
      const sum = d.family === 4
        ? ipv4PseudoHeaderSum(d.src, d.dst, 17, len)
        : ipv6PseudoHeaderSum(data, d.src6Offset, d.dst6Offset, 17, len);
      seen.push({
        src: d.family === 4
          ? formatIpv4(d.src)
          : formatIpv6(data.slice(d.src6Offset, d.src6Offset + 16)),
        dst: d.family === 4
          ? formatIpv4(d.dst)
          : formatIpv6(data.slice(d.dst6Offset, d.dst6Offset + 16)),
        srcPort: d.srcPort,
        payload: new TextDecoder().decode(
          data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength),
        ),
        checksumOk: finishChecksum(onesSum(data, u, len, sum)) === 0,
      });
    },
  });
  /** Run the send, deliver, and return what b received. */
  const got = (send: () => boolean): { ok: boolean; seen: Seen[] } => {
    const n = seen.length;
    const ok = send();
    clock.advance(10);
    return { ok, seen: seen.slice(n) };
  };
  return { a, b, got };
}

const p = (s: string) => new TextEncoder().encode(s);
const B4 = parseIpv4("192.0.2.2"), B6 = parseIpv6("2001:db8::2");

Deno.test("UDP send: a socket's bound address is the source; `src` overrides it; a wildcard socket takes the route's", () => {
  const { a, got } = lab();
  const bound = a.udp.bindSocket({
    address: parseIpv4("192.0.2.9"),
    port: 4000,
    onDatagram: () => {},
  });
  assert.deepEqual(got(() => bound.send(B4, 9000, p("bound"))), {
    ok: true,
    seen: [{
      src: "192.0.2.9",
      dst: "192.0.2.2",
      srcPort: 4000,
      payload: "bound",
      checksumOk: true,
    }],
  });
  const r = got(() => bound.send(B4, 9000, p("given"), { src: parseIpv4("192.0.2.1") }));
  assert.equal(r.seen[0]!.src, "192.0.2.1");
  const any = a.udp.bindSocket({ port: 4001, onDatagram: () => {} });
  assert.deepEqual(got(() => any.send(B4, 9000, p("v4"))).seen.map((s) => [s.src, s.checksumOk]), [
    ["192.0.2.1", true],
  ]);
  assert.deepEqual(got(() => any.send(B6, 9000, p("v6"))).seen.map((s) => [s.src, s.checksumOk]), [
    ["2001:db8::1", true],
  ]);
  // A socket bound to an IPv4 address sending to IPv6: not its address, one the output path picks.
  assert.deepEqual(got(() => bound.send(B6, 9000, p("x"))).seen.map((s) => s.src), ["2001:db8::1"]);
  // The same rules with a reused options object, rewritten between sends.
  const o: { src: number | Uint8Array; nic: undefined } = {
    src: parseIpv4("192.0.2.9"),
    nic: undefined,
  };
  assert.equal(got(() => any.send(B4, 9000, p("o1"), o)).seen[0]!.src, "192.0.2.9");
  o.src = parseIpv6("2001:db8::1");
  assert.equal(got(() => any.send(B6, 9000, p("o2"), o)).seen[0]!.src, "2001:db8::1");
});

Deno.test("UDP send: a source of the other family fails and is counted; 0.0.0.0 and :: given are kept", () => {
  const { a, got } = lab();
  const s = a.udp.bindSocket({ port: 4002, onDatagram: () => {} });
  const failed = a.stats.udp.sendFailed;
  assert.deepEqual(got(() => s.send(B6, 9000, p("mixed"), { src: parseIpv4("192.0.2.1") })), {
    ok: false,
    seen: [],
  });
  assert.deepEqual(got(() => s.send(B4, 9000, p("mixed"), { src: parseIpv6("2001:db8::1") })), {
    ok: false,
    seen: [],
  });
  assert.equal(a.stats.udp.sendFailed, failed + 2);
  // RFC 2131 §4.1: a client without an address sends from 0.0.0.0; the stack leaves it.
  const zero = got(() => a.udp.send(68, B4, 9000, p("zero"), { src: 0 }));
  assert.deepEqual(zero.seen.map((x) => [x.src, x.srcPort, x.checksumOk]), [["0.0.0.0", 68, true]]);
  const none = got(() => a.udp.send(547, B6, 9000, p("none"), { src: new Uint8Array(16) }));
  assert.deepEqual(none.seen.map((x) => [x.src, x.checksumOk]), [["::", true]]);
  // Without `src` the socketless send takes the route's source.
  assert.equal(got(() => a.udp.send(4003, B4, 9000, p("r"))).seen[0]!.src, "192.0.2.1");
});

Deno.test("UDP send: the payload is copied as given, a view into a larger buffer included", () => {
  const { a, got } = lab();
  const s = a.udp.bindSocket({ port: 4004, onDatagram: () => {} });
  const big = p("xxhello worldyy");
  for (const dst of [B4, B6]) {
    const r = got(() => s.send(dst, 9000, big.subarray(2, 13)));
    assert.deepEqual(r.seen.map((x) => [x.payload, x.checksumOk]), [["hello world", true]]);
  }
  // A closed socket sends nothing.
  s.close();
  assert.deepEqual(got(() => s.send(B4, 9000, p("late"))), { ok: false, seen: [] });
});
