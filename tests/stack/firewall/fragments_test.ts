/**
 * IPv4 fragments through the firewall: a later fragment carries no ports,
 * so it takes the state (and the NAT binding) of its first fragment, as
 * nf_conntrack does after defragmenting; a later fragment whose first one
 * was never seen is UNTRACKED and counted.
 */
import assert from "node:assert/strict";
import { firewallFrom } from "./_fw.ts";
import { ADDR, routerLab } from "../../topology/_topology.ts";
import type { RouterLab } from "../../topology/_topology.ts";
import { ipv4, PROTO, readIpv4, udp } from "../../topology/_packets.ts";

const STATEFUL = `[firewall.filter]
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT",
] }
`;

/** Send one UDP datagram from `src` to `dst` as fragments of `cut` bytes. */
function sendFragmented(
  t: RouterLab,
  from: "a" | "b",
  src: string,
  dst: string,
  id: number,
  ports: [number, number],
  len: number,
  cut = 512,
  skipFirst = false,
): number {
  const seg = udp(src, dst, ports[0], ports[1], len);
  let n = 0;
  for (let off = 0; off < seg.length; off += cut) {
    n++;
    if (skipFirst && off === 0) continue;
    t[from].sendIp(ipv4({
      src,
      dst,
      protocol: PROTO.UDP,
      id,
      fragOffset: off,
      mf: off + cut < seg.length,
      payload: seg.subarray(off, off + cut),
    }));
  }
  return n;
}

Deno.test("IPv4 fragments: later fragments follow their first one under a stateful drop policy", () => {
  const t = routerLab();
  const f = firewallFrom(t.r, STATEFUL);
  const n = sendFragmented(t, "a", ADDR.a, ADDR.b, 4242, [20311, 7777], 1400);
  t.clock.advance(1);
  const got = t.b.ipv4().map((fr) => readIpv4(fr, 14));
  assert.equal(n, 3);
  assert.equal(got.length, 3, "all three fragments forwarded");
  assert.deepEqual(got.map((p) => p.fragOffset), [0, 512, 1024]);
  assert.ok(got.every((p) => p.checksumOk && p.id === 4242));
  assert.equal(f.stats.laterFragmentsUntracked, 0);

  // The reply, fragmented too, is ESTABLISHED in all its fragments.
  sendFragmented(t, "b", ADDR.b, ADDR.a, 99, [7777, 20311], 1400);
  t.clock.advance(1);
  assert.equal(t.a.ipv4().length, 3, "reply fragments pass as ESTABLISHED");
});

Deno.test("IPv4 fragments: a stray later fragment is UNTRACKED, meets the policy, and is counted once", () => {
  const t = routerLab();
  const f = firewallFrom(t.r, STATEFUL);
  sendFragmented(t, "a", ADDR.a, ADDR.b, 7, [1000, 2000], 1400, 512, true);
  t.clock.advance(1);
  assert.equal(t.b.ipv4().length, 0, "no first fragment, so no state: dropped");
  assert.equal(f.stats.laterFragmentsUntracked, 2);
  // A fragment with the same id but another protocol or source does not
  // borrow the flow's state.
  sendFragmented(t, "a", ADDR.a, ADDR.b, 8, [1000, 2000], 1400);
  t.clock.advance(1);
  assert.equal(t.b.ipv4().length, 3);
  const before = f.stats.laterFragmentsUntracked;
  const seg = udp(ADDR.b, ADDR.a, 1, 2, 1400);
  t.b.sendIp(ipv4({
    src: ADDR.b,
    dst: ADDR.a,
    protocol: PROTO.UDP,
    id: 8,
    fragOffset: 512,
    mf: true,
    payload: seg.subarray(512, 1024),
  }));
  t.clock.advance(1);
  assert.equal(t.a.ipv4().length, 0, "same id, other direction's addresses: no state");
  assert.equal(f.stats.laterFragmentsUntracked, before + 1);
});

Deno.test("IPv4 fragments: MASQUERADE rewrites the source of every fragment", () => {
  const t = routerLab();
  firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -p udp -j MASQUERADE --to-ports 31000"] }\n`,
  );
  sendFragmented(t, "a", ADDR.a, ADDR.b, 4242, [20311, 7777], 1400);
  t.clock.advance(1);
  const got = t.b.ipv4().map((fr) => readIpv4(fr, 14));
  assert.equal(got.length, 3);
  for (const p of got) {
    assert.equal(p.src, "198.51.100.1", `fragment at ${p.fragOffset} masqueraded`);
    assert.ok(p.checksumOk, `fragment at ${p.fragOffset} has a valid header checksum`);
  }
  const first = got[0]!.payload;
  assert.equal((first[0]! << 8) | first[1]!, 31000, "the first fragment's source port is mapped");
  // Later fragments' payload bytes are untouched (only the header changes).
  const seg = udp(ADDR.a, ADDR.b, 20311, 7777, 1400);
  assert.deepEqual(got[1]!.payload, seg.subarray(512, 1024));
  assert.deepEqual(got[2]!.payload, seg.subarray(1024));
});

Deno.test("REJECT answers only a packet whose transport checksum it verified (Linux nf_reject)", () => {
  const t = routerLab();
  const f = firewallFrom(
    t.r,
    `[firewall.filter]\nforward = { rules = ["-p udp --dport 7777 -j REJECT --reject-with icmp-host-unreachable"] }\n`,
  );
  const good = udp(ADDR.a, ADDR.b, 5000, 7777, 100);
  t.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.b, protocol: PROTO.UDP, payload: good }));
  t.clock.advance(1);
  assert.equal(t.a.icmp(3).length, 1, "a whole, valid datagram is answered");
  assert.equal(f.stats.rejectsSent, 1);

  const bad = good.slice();
  bad[20] = bad[20]! ^ 0xff;
  t.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.b, protocol: PROTO.UDP, payload: bad }));
  t.clock.advance(1);
  assert.equal(t.a.icmp(3).length, 1, "a corrupted one is dropped without an answer");
  assert.equal(f.stats.rejectsSent, 1);
  assert.equal(f.stats.dropped, 2);

  // A first fragment's checksum covers the rest of the datagram: no answer
  // (the kernel answers only when conntrack reassembled it first).
  sendFragmented(t, "a", ADDR.a, ADDR.b, 31, [5001, 7777], 1400);
  t.clock.advance(1);
  assert.equal(t.a.icmp(3).length, 1);
  assert.equal(f.stats.rejectsSent, 1);
  assert.equal(t.b.ipv4().length, 2, "later fragments have no ports: the rule misses them");
});
