import assert from "node:assert/strict";
import { CtStatus, TCP_CT_STATE_NAMES } from "../../../stack/firewall/mod.ts";
import type { Conn, Firewall } from "../../../stack/firewall/mod.ts";
import { Conntrack } from "../../../stack/firewall/conntrack.ts";
import { ManualClock, SeededRandom } from "../../../stack/mod.ts";
import { triangle } from "../../topology/_topology.ts";
import { F, firewallFrom, forwardThrough, icmpEcho, icmpError, tcp, TcpFlow, udp } from "./_fw.ts";

const CT_ONLY = `
[firewall.filter]
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -m conntrack --ctstate NEW -j ACCEPT",
] }
`;

function setup() {
  const t = triangle();
  const fw = firewallFrom(t.r, CT_ONLY);
  return { ...t, fw };
}

function only(fw: Firewall): Conn {
  const all = [...fw.conntrack.entries()];
  assert.equal(all.length, 1, "one connection");
  return all[0]!;
}

const H1 = "192.0.2.10", H2 = "198.51.100.10";

Deno.test("conntrack follows every TCP transition of a handshake and close, then times out", async (t) => {
  const { fw, rLan, rWan, clock } = setup();
  const flow = new TcpFlow(fw, [
    { addr: H1, port: 40000, nic: rLan },
    { addr: H2, port: 80, nic: rWan },
  ]);
  const out = (flags: number) => flow.send(0, flags);
  const back = (flags: number) => flow.send(1, flags);
  const steps: [string, () => boolean, string, number][] = [
    ["SYN", () => out(F.SYN), "SYN_SENT", 120_000],
    ["SYN-ACK", () => back(F.SYN | F.ACK), "SYN_RECV", 60_000],
    ["ACK", () => out(F.ACK), "ESTABLISHED", 5 * 86_400_000],
    ["FIN from the client", () => out(F.FIN | F.ACK), "FIN_WAIT", 120_000],
    ["ACK of the FIN", () => back(F.ACK), "CLOSE_WAIT", 60_000],
    ["FIN from the server", () => back(F.FIN | F.ACK), "LAST_ACK", 30_000],
    ["last ACK", () => out(F.ACK), "TIME_WAIT", 120_000],
  ];
  for (const [name, send, state, timeout] of steps) {
    await t.step(`${name} → ${state}`, () => {
      assert.ok(send(), `${name} passes`);
      const c = only(fw);
      assert.equal(TCP_CT_STATE_NAMES[c.tcpState], state);
      assert.equal(c.expires - clock.now(), timeout);
    });
  }
  await t.step("assured after the handshake", () => assert.ok(only(fw).has(CtStatus.ASSURED)));
  await t.step("TIME_WAIT expires after 120 s", () => {
    clock.advance(119_999);
    assert.equal(fw.conntrack.size, 1);
    clock.advance(1);
    assert.equal(fw.conntrack.size, 0);
    assert.equal(fw.conntrack.stats.expired, 1);
  });
});

Deno.test("conntrack TCP timeouts per state", async (t) => {
  const cases: { name: string; flags: number[][]; state: string; timeout: number }[] = [
    { name: "SYN_SENT", flags: [[0, F.SYN]], state: "SYN_SENT", timeout: 120_000 },
    {
      name: "SYN_RECV",
      flags: [[0, F.SYN], [1, F.SYN | F.ACK]],
      state: "SYN_RECV",
      timeout: 60_000,
    },
    {
      name: "ESTABLISHED",
      flags: [[0, F.SYN], [1, F.SYN | F.ACK], [0, F.ACK]],
      state: "ESTABLISHED",
      timeout: 5 * 86_400_000,
    },
    {
      name: "CLOSE after RST",
      flags: [[0, F.SYN], [1, F.SYN | F.ACK], [0, F.ACK], [1, F.RST]],
      state: "CLOSE",
      timeout: 10_000,
    },
    {
      name: "SYN_SENT2 (simultaneous open)",
      flags: [[0, F.SYN], [1, F.SYN]],
      state: "SYN_SENT2",
      timeout: 120_000,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { fw, rLan, rWan, clock } = setup();
      const flow = new TcpFlow(fw, [
        { addr: H1, port: 40000, nic: rLan },
        { addr: H2, port: 80, nic: rWan },
      ]);
      for (const [dir, flags] of c.flags) assert.ok(flow.send(dir as 0 | 1, flags!));
      assert.equal(TCP_CT_STATE_NAMES[only(fw).tcpState], c.state);
      clock.advance(c.timeout - 1);
      assert.equal(fw.conntrack.size, 1, "still there just before the timeout");
      clock.advance(1);
      assert.equal(fw.conntrack.size, 0, "gone at the timeout");
    });
  }
});

Deno.test("conntrack refreshes without rescheduling: traffic keeps an entry alive", () => {
  const { fw, rLan, rWan, clock } = setup();
  const out = () =>
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 5000, dport: 53 }), rLan, rWan);
  assert.ok(out());
  for (let i = 0; i < 10; i++) {
    clock.advance(20_000);
    assert.ok(out());
  }
  assert.equal(fw.conntrack.size, 1);
  clock.advance(29_999);
  assert.equal(fw.conntrack.size, 1);
  clock.advance(1);
  assert.equal(fw.conntrack.size, 0);
});

Deno.test("conntrack marks INVALID what fits no state, and filters it", async (t) => {
  const cases = [
    {
      name: "SYN-ACK without a connection",
      b: () => tcp({ src: H1, dst: H2, sport: 1, dport: 2, flags: F.SYN | F.ACK }),
    },
    {
      name: "RST without a connection",
      b: () => tcp({ src: H1, dst: H2, sport: 1, dport: 2, flags: F.RST }),
    },
    {
      name: "FIN without a connection",
      b: () => tcp({ src: H1, dst: H2, sport: 1, dport: 2, flags: F.FIN }),
    },
    {
      name: "echo reply without a request",
      b: () => icmpEcho({ src: H1, dst: H2, type: 0, id: 7 }),
    },
    {
      name: "ICMP error quoting nothing tracked",
      b: () =>
        icmpError(
          { src: H1, dst: H2, type: 3, code: 3 },
          udp({ src: H2, dst: H1, sport: 9, dport: 9 }),
        ),
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { fw, rLan, rWan } = setup();
      assert.equal(forwardThrough(fw, c.b(), rLan, rWan), false);
      assert.equal(fw.conntrack.stats.invalid, 1);
      assert.equal(fw.conntrack.size, 0);
    });
  }
});

Deno.test("conntrack UDP: 30 s unreplied, 120 s and assured once answered", () => {
  const { fw, rLan, rWan, clock } = setup();
  assert.ok(forwardThrough(fw, udp({ src: H1, dst: H2, sport: 5000, dport: 53 }), rLan, rWan));
  const c = only(fw);
  assert.equal(c.expires - clock.now(), 30_000);
  assert.ok(!c.has(CtStatus.ASSURED));
  // A new packet from outside is dropped (policy), the reply passes.
  assert.equal(
    forwardThrough(fw, udp({ src: H2, dst: H1, sport: 53, dport: 5001 }), rWan, rLan),
    false,
  );
  assert.ok(forwardThrough(fw, udp({ src: H2, dst: H1, sport: 53, dport: 5000 }), rWan, rLan));
  assert.ok(c.has(CtStatus.ASSURED) && c.has(CtStatus.SEEN_REPLY));
  assert.equal(c.expires - clock.now(), 120_000);
  clock.advance(120_000);
  assert.equal(fw.conntrack.size, 0);
});

Deno.test("conntrack ICMP echo: 30 s, replies ESTABLISHED, errors RELATED", () => {
  const { fw, rLan, rWan, clock } = setup();
  const req = icmpEcho({ src: H1, dst: H2, id: 77 });
  assert.ok(forwardThrough(fw, req, rLan, rWan));
  assert.equal(only(fw).expires - clock.now(), 30_000);
  assert.ok(forwardThrough(fw, icmpEcho({ src: H2, dst: H1, type: 0, id: 77 }), rWan, rLan));
  // An error quoting the request comes back RELATED and is accepted.
  const err = icmpError(
    { src: "198.51.100.99", dst: H1, type: 11, code: 0 },
    icmpEcho({ src: H1, dst: H2, id: 77 }),
  );
  assert.ok(forwardThrough(fw, err, rWan, rLan));
  clock.advance(30_000);
  assert.equal(fw.conntrack.size, 0);
});

Deno.test("conntrack table limit: early drop of unassured entries, every drop counted, memory flat", () => {
  const t = setup();
  const { fw, rLan, rWan, r } = t;
  r.firewall!.close();
  const fw2 = firewallFrom(
    r,
    `[firewall]\nconntrack = { max = 1024 }\n[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
  );
  void fw;
  const N = 100_000;
  let heapMid = 0;
  const buf = udp({ src: H1, dst: H2, sport: 1, dport: 53 });
  const srcs = Array.from({ length: 128 }, (_, i) => `192.0.2.${10 + i}`);
  for (let i = 0; i < N; i++) {
    const b = udp({ src: srcs[i & 127]!, dst: H2, sport: 1024 + (i >> 7), dport: 53 }, buf);
    assert.ok(forwardThrough(fw2, b, rLan, rWan));
    if (i === N / 2) heapMid = Deno.memoryUsage().heapUsed;
  }
  assert.equal(fw2.conntrack.size, 1024);
  assert.equal(fw2.conntrack.stats.inserted, N);
  assert.equal(fw2.conntrack.stats.earlyDropped, N - 1024);
  // Timers of evicted entries are cancelled, not left to pile up.
  assert.ok(t.clock.pending() <= 1024 + 16, `${t.clock.pending()} timers pending`);
  const heapEnd = Deno.memoryUsage().heapUsed;
  // Flat: the second half adds far less than a table's worth per flow.
  assert.ok(heapEnd - heapMid < 16 * 1024 * 1024, `heap grew ${heapEnd - heapMid} bytes`);
});

Deno.test("conntrack table full of assured entries drops new flows and counts them", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall]\nconntrack = { max = 4 }\n[firewall.filter]\nforward = { rules = ["-j ACCEPT"] }\n`,
  );
  for (let i = 0; i < 4; i++) {
    assert.ok(
      forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1000 + i, dport: 53 }), t.rLan, t.rWan),
    );
    assert.ok(
      forwardThrough(fw, udp({ src: H2, dst: H1, sport: 53, dport: 1000 + i }), t.rWan, t.rLan),
    );
  }
  assert.equal(
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 2000, dport: 53 }), t.rLan, t.rWan),
    false,
  );
  assert.equal(fw.conntrack.stats.tableFullDropped, 1);
  assert.equal(fw.conntrack.size, 4);
});

Deno.test("conntrack expiry heap: 2,000 entries with random timeouts, refreshed later and earlier, removed, each expires at its deadline", () => {
  const clock = new ManualClock();
  const r = new SeededRandom(9);
  const ct = new Conntrack(clock, 4096);
  const deadline = new Map<Conn, number>();
  const expiredAt = new Map<Conn, number>();
  ct.onRemove = (c) => expiredAt.set(c, clock.now());
  const conns: Conn[] = [];
  for (let i = 0; i < 2000; i++) {
    const c = ct.create(17, 1, 2, 1000 + i, 53);
    ct.refresh(c, 1 + (r.uint32() % 50_000));
    assert.ok(ct.confirm(c));
    conns.push(c);
    deadline.set(c, c.expires);
  }
  // Later (the entry goes back in when its old deadline comes) and earlier (moved up now).
  clock.advance(1000);
  for (const c of conns) {
    if (expiredAt.has(c)) continue;
    const k = r.uint32() % 3;
    if (k === 0) ct.refresh(c, 1 + (r.uint32() % 100_000));
    else if (k === 1) ct.refresh(c, 1 + (r.uint32() % 500));
    else continue;
    deadline.set(c, c.expires);
  }
  // Some leave early.
  const removed = new Set(conns.filter((_, i) => i % 7 === 0 && !expiredAt.has(conns[i]!)));
  for (const c of removed) ct.remove(c);
  const removedAt = clock.now();
  for (let t = 0; t < 110; t++) clock.advance(1000);
  assert.equal(ct.size, 0);
  for (const c of conns) {
    const at = expiredAt.get(c);
    assert.ok(at !== undefined);
    if (removed.has(c)) assert.equal(at, removedAt);
    else assert.equal(at, deadline.get(c), "expired at its deadline, not before or after");
  }
  assert.equal(ct.stats.expired, conns.length - removed.size);
});
