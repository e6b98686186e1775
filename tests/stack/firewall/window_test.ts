/**
 * TCP window tracking in conntrack, as Linux's tcp_in_window: segments a
 * router passes are judged against the windows both ends announced
 * (scaled when both SYNs offer RFC 7323 window scaling); out-of-window
 * segments are INVALID and counted, unless `tcp_be_liberal`.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import type { Firewall } from "../../../stack/firewall/mod.ts";
import { triangle } from "../../topology/_topology.ts";
import { drive, pattern, tcpLab } from "../transport/_tcp_lab.ts";
import { F, firewallFrom, SACK_PERM, TcpFlow, WSCALE } from "./_fw.ts";

const H1 = "192.0.2.10", H2 = "198.51.100.10";

/** INVALID dropped by a rule of its own (so its counter shows it), replies and new LAN flows accepted. */
const STATEFUL = `
[firewall.filter]
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate INVALID -j DROP",
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -m conntrack --ctstate NEW -j ACCEPT",
] }
`;

function setup(extra = "") {
  const t = triangle();
  const fw = firewallFrom(t.r, extra + STATEFUL);
  const flow = new TcpFlow(fw, [
    { addr: H1, port: 40000, nic: t.rLan },
    { addr: H2, port: 80, nic: t.rWan },
  ]);
  return { ...t, fw, flow };
}

/** Packets the INVALID rule dropped. */
function invalidDrops(fw: Firewall): number {
  return fw.filter.builtins.get("forward")!.rules[0]!.packets;
}

/** SYN, SYN-ACK (window `serverWin`), ACK; options per side. */
function handshake(
  flow: TcpFlow,
  o: { serverWin?: number; client?: number[]; server?: number[] } = {},
): void {
  assert.ok(flow.send(0, F.SYN, { options: o.client }), "SYN");
  assert.ok(flow.send(1, F.SYN | F.ACK, { win: o.serverWin, options: o.server }), "SYN-ACK");
  assert.ok(flow.send(0, F.ACK), "ACK");
}

Deno.test("window tracking: data within the receiver's window passes, beyond it is INVALID and counted", () => {
  const { fw, flow } = setup();
  handshake(flow, { serverWin: 1000 });
  const start = flow.next[0];
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 1000 }), "exactly the window");
  // The right edge the server allowed is start + 1000; a segment past it is no TCP's.
  assert.equal(flow.send(0, F.ACK | F.PSH, { payload: 100, seq: start + 5000 }), false);
  assert.equal(fw.conntrack.stats.tcpOutOfWindow, 1);
  assert.equal(fw.conntrack.stats.invalid, 1);
  assert.equal(invalidDrops(fw), 1);
  // The connection goes on: the server acknowledges, the window moves.
  assert.ok(flow.send(1, F.ACK, { win: 1000 }));
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 1000 }), "the next window");
  assert.equal(fw.conntrack.stats.tcpOutOfWindow, 1);
});

Deno.test("window tracking: an ACK of data never sent is INVALID", async (t) => {
  for (const [name, ack] of [["far beyond", 100_000], ["one byte beyond", 1]] as const) {
    await t.step(name, () => {
      const { fw, flow } = setup();
      handshake(flow);
      assert.ok(flow.send(1, F.ACK | F.PSH, { payload: 100 }));
      assert.equal(flow.send(0, F.ACK, { ack: flow.next[1] + ack }), false);
      assert.equal(fw.conntrack.stats.tcpOutOfWindow, 1);
      assert.ok(flow.send(0, F.ACK), "the right ACK passes");
    });
  }
});

Deno.test("window tracking: the window is scaled only when both SYNs offer it (RFC 7323)", async (t) => {
  const cases = [
    { name: "both offer shift 7", server: WSCALE(7), passes: true },
    { name: "only the client offers it", server: undefined, passes: false },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { fw, flow } = setup();
      handshake(flow, { client: WSCALE(7), server: c.server, serverWin: 512 });
      // The server's first scaled window: 512 << 7 = 65536 bytes, or just 512.
      assert.ok(flow.send(1, F.ACK, { win: 512 }));
      const at = flow.next[0] + 60_000;
      assert.equal(flow.send(0, F.ACK | F.PSH, { payload: 500, seq: at }), c.passes);
      assert.equal(fw.conntrack.stats.tcpOutOfWindow, c.passes ? 0 : 1);
    });
  }
});

Deno.test("window tracking: a retransmission of acknowledged data is let through, not counted (Linux IGNORE)", () => {
  const { fw, flow } = setup();
  handshake(flow, { serverWin: 1000 });
  const first = flow.next[0];
  for (let i = 0; i < 4; i++) {
    assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 500 }));
    assert.ok(flow.send(1, F.ACK, { win: 1000 }));
  }
  // A copy of the first segment, more than a window old: the server drops it itself.
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 500, seq: first }));
  assert.equal(fw.conntrack.stats.tcpOutOfWindow, 0);
  assert.equal(fw.conntrack.stats.invalid, 0);
});

Deno.test("window tracking: SACK blocks beyond what was sent are INVALID when SACK is permitted", () => {
  const { fw, flow } = setup();
  handshake(flow, { client: SACK_PERM, server: SACK_PERM });
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 1000 }));
  const sack = (left: number, right: number) => [
    1,
    1,
    5,
    10,
    ...[left, right].flatMap((n) => [n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]),
  ];
  const end = flow.next[0];
  // The server acknowledges up to end - 500 and SACKs past what the client sent.
  assert.equal(
    flow.send(1, F.ACK, { ack: end - 500, options: sack(end - 200, end + 4000) }),
    false,
  );
  assert.equal(fw.conntrack.stats.tcpOutOfWindow, 1);
  assert.ok(flow.send(1, F.ACK, { ack: end - 500, options: sack(end - 200, end) }));
});

Deno.test("window tracking: a reset below what the peer acknowledged is INVALID (RFC 5961 §3.2)", () => {
  const { fw, flow } = setup();
  handshake(flow);
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 1000 }));
  assert.ok(flow.send(1, F.ACK));
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 10 }));
  assert.ok(flow.send(1, F.ACK));
  const conn = [...fw.conntrack.entries()][0]!;
  assert.equal(flow.send(0, F.RST, { seq: flow.next[0] - 5000 }), false);
  assert.equal(fw.conntrack.stats.invalid, 1);
  assert.ok(flow.send(0, F.RST), "the reset at the expected sequence number passes");
  assert.equal(conn.expires - fw.conntrack.clock.now(), 10_000, "CLOSE");
});

Deno.test("window tracking: data in flight gets the unacknowledged timeout (300 s) until acknowledged", () => {
  const { fw, flow, clock } = setup();
  handshake(flow);
  const c = [...fw.conntrack.entries()][0]!;
  assert.equal(c.expires - clock.now(), 5 * 86_400_000);
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 100 }));
  assert.equal(c.expires - clock.now(), 300_000);
  assert.ok(flow.send(1, F.ACK));
  assert.equal(c.expires - clock.now(), 5 * 86_400_000);
});

Deno.test("window tracking: a connection picked up mid-stream is tracked liberally", () => {
  const { fw, flow, clock } = setup();
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 100 }), "picked up");
  const c = [...fw.conntrack.entries()][0]!;
  assert.equal(c.expires - clock.now(), 300_000, "not ESTABLISHED's five days while unanswered");
  assert.ok(flow.send(1, F.ACK, { win: 100 }));
  assert.ok(flow.send(0, F.ACK | F.PSH, { payload: 100, seq: flow.next[0] + 1_000_000 }));
  assert.equal(fw.conntrack.stats.tcpOutOfWindow, 0);
});

Deno.test("window tracking: tcp_be_liberal lets out-of-window segments through; a reload turns it off", () => {
  const { fw, flow } = setup("[firewall]\nconntrack = { tcp_be_liberal = true }\n");
  handshake(flow, { serverWin: 1000 });
  const far = () => flow.send(0, F.ACK | F.PSH, { payload: 100, seq: flow.next[0] + 50_000 });
  assert.ok(far(), "liberal");
  assert.equal(fw.conntrack.stats.tcpOutOfWindow, 0);
  assert.equal(invalidDrops(fw), 0);
  fw.reconfigure(parseConfig(STATEFUL).firewall);
  assert.equal(far(), false, "strict after the reload");
  assert.equal(fw.conntrack.stats.tcpOutOfWindow, 1);
  assert.equal(fw.conntrack.size, 1, "the connection is kept across the reload");
});

Deno.test("config: [firewall.conntrack] tcp_be_liberal is a boolean, false by default", () => {
  assert.equal(parseConfig("").firewall.conntrack.tcpBeLiberal, false);
  assert.equal(
    parseConfig("[firewall.conntrack]\ntcp_be_liberal = true\n").firewall.conntrack.tcpBeLiberal,
    true,
  );
  assert.throws(
    () => parseConfig('[firewall.conntrack]\ntcp_be_liberal = "yes"\n'),
    /firewall\.conntrack\.tcp_be_liberal.*expected a boolean/s,
  );
});

// Real TCP through the window checks: tapir's own TCP (window scaling,
// SACK, timestamps, GSO super-frames with offloads) on a link that loses,
// reorders and duplicates frames, with the firewall dropping INVALID.
for (const offloads of [false, true]) {
  for (const [family, host] of [[4, "192.0.2.2"], [6, "2001:db8::2"]] as const) {
    Deno.test(`window tracking: IPv${family} transfer over a lossy link, offloads ${offloads}: nothing out of window`, async () => {
      const lab = tcpLab({ offloads, seed: 7 });
      const { clock, a, b } = lab;
      const fw = firewallFrom(
        b,
        `[firewall.filter]
input = { policy = "drop", rules = [
  "-m conntrack --ctstate INVALID -j DROP",
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-p tcp --dport 7 -j ACCEPT",
  "-p icmp -j ACCEPT",
  "-p ipv6-icmp -j ACCEPT",
] }
`,
      );
      // With offloads a few 64 KiB super-frames carry it all: lose more of them.
      const p = offloads ? 0.15 : 0.03;
      const faults = { loss: p, reorder: p, duplicate: p, delayMs: 2 };
      lab.ab.setFaults(faults);
      lab.ba.setFaults({ ...faults, seed: 9 });
      const l = b.listen({ hostname: family === 4 ? "0.0.0.0" : "::", port: 7 });
      const data = pattern(400_000);
      const server = (async () => {
        const c = await l.accept();
        const buf = new Uint8Array(65536);
        let got = 0;
        for (;;) {
          const n = await c.read(buf);
          if (n === null) break;
          got += n;
        }
        let off = 0;
        while (off < data.length) off += await c.write(data.subarray(off));
        await c.closeWrite();
        c.close();
        return got;
      })();
      const client = (async () => {
        const c = await a.connect({ hostname: host, port: 7 });
        let off = 0;
        while (off < data.length) off += await c.write(data.subarray(off));
        await c.closeWrite();
        const buf = new Uint8Array(65536);
        let got = 0;
        for (;;) {
          const n = await c.read(buf);
          if (n === null) break;
          got += n;
        }
        c.close();
        return got;
      })();
      assert.equal(await drive(clock, client, 120_000), data.length, "the client got it all back");
      assert.equal(await drive(clock, server, 1000), data.length);
      const ct = family === 4 ? fw.conntrack : fw.conntrack6;
      const lost = lab.ab.stats.faultLossDrops + lab.ba.stats.faultLossDrops;
      const dups = lab.ab.stats.faultDuplicates + lab.ba.stats.faultDuplicates;
      assert.ok(lost > 0 && dups > 0, `the link lost ${lost} and duplicated ${dups} frames`);
      const input = (family === 4 ? fw.filter : fw.filter6).builtins.get("input")!;
      const established = input.rules[1]!.packets;
      assert.ok(established > 20, `${established} packets judged ESTABLISHED`);
      assert.equal(ct.stats.tcpOutOfWindow, 0);
      assert.equal(input.rules[0]!.packets, 0, "no INVALID dropped");
      l.close();
      clock.advance(1000);
      lab.close();
    });
  }
}
