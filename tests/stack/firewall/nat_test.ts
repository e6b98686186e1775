import assert from "node:assert/strict";
import { triangle } from "../../topology/_topology.ts";
import { internetChecksum } from "../../../stack/wire/checksum.ts";
import {
  checksumsOk,
  F,
  firewallFrom,
  forwardThrough,
  icmpEcho,
  icmpError,
  IP_OFF,
  tcp,
  tuple,
  udp,
} from "./_fw.ts";

const H1 = "192.0.2.10", H2 = "198.51.100.10", R_WAN = "198.51.100.1";

Deno.test("SNAT keeps tuples unique within the port range and drops when it is exhausted", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -p udp -j SNAT --to-source ${R_WAN}:1000-1001"] }\n`,
  );
  const seen: string[] = [];
  for (const sport of [5000, 5001]) {
    const b = udp({ src: H1, dst: H2, sport, dport: 53 });
    assert.ok(forwardThrough(fw, b, t.rLan, t.rWan));
    assert.ok(checksumsOk(b));
    seen.push(tuple(b));
  }
  assert.deepEqual(
    seen.map((s) => s.split(">")[0]).sort(),
    [`${R_WAN}:1000`, `${R_WAN}:1001`],
  );
  const third = udp({ src: H1, dst: H2, sport: 5002, dport: 53 });
  assert.equal(forwardThrough(fw, third, t.rLan, t.rWan), false);
  assert.equal(fw.stats.natPortsExhausted, 1);
  assert.equal(fw.conntrack.size, 2);
  // The same ports towards another destination are free (tuples are per destination).
  assert.ok(
    forwardThrough(
      fw,
      udp({ src: H1, dst: "198.51.100.20", sport: 5002, dport: 53 }),
      t.rLan,
      t.rWan,
    ),
  );
  // Replies are translated back.
  for (const s of seen) {
    const port = Number(s.split(">")[0]!.split(":")[1]);
    const reply = udp({ src: H2, dst: R_WAN, sport: 53, dport: port });
    assert.ok(fw.prerouting(reply, IP_OFF, t.rWan, null));
    assert.ok(checksumsOk(reply));
    const orig = seen.indexOf(s) === 0 ? 5000 : 5001;
    assert.equal(tuple(reply), `${H2}:53>${H1}:${orig}`);
  }
});

Deno.test("MASQUERADE keeps the source port when free, picks another on a clash", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
  );
  const a = udp({ src: H1, dst: H2, sport: 40000, dport: 53 });
  const b = udp({ src: "192.0.2.11", dst: H2, sport: 40000, dport: 53 });
  assert.ok(forwardThrough(fw, a, t.rLan, t.rWan));
  assert.ok(forwardThrough(fw, b, t.rLan, t.rWan));
  assert.equal(tuple(a), `${R_WAN}:40000>${H2}:53`);
  const bPort = Number(tuple(b).split(">")[0]!.split(":")[1]);
  assert.notEqual(bPort, 40000);
  assert.ok(bPort >= 1024 && bPort <= 65535);
  assert.ok(checksumsOk(a) && checksumsOk(b));
  assert.match(fw.dump(), /\[2:\d+\] -A POSTROUTING -o wan0 -j MASQUERADE/);
  // Flushed when the address goes.
  assert.equal(fw.addressRemoved(t.rWan, 0xc6336401), 2);
  assert.equal(fw.conntrack.size, 0);
});

Deno.test("NAT of ICMP echo rewrites the identifier on a clash and restores it on replies", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
  );
  const a = icmpEcho({ src: H1, dst: H2, id: 9 });
  const b = icmpEcho({ src: "192.0.2.11", dst: H2, id: 9 });
  assert.ok(forwardThrough(fw, a, t.rLan, t.rWan));
  assert.ok(forwardThrough(fw, b, t.rLan, t.rWan));
  const idB = b.view.getUint16(IP_OFF + 24);
  assert.equal(a.view.getUint16(IP_OFF + 24), 9);
  assert.notEqual(idB, 9);
  assert.ok(checksumsOk(a) && checksumsOk(b));
  const reply = icmpEcho({ src: H2, dst: R_WAN, type: 0, id: idB });
  assert.ok(fw.prerouting(reply, IP_OFF, t.rWan, null));
  assert.equal(tuple(reply), `${H2}:9>192.0.2.11:9`);
  assert.ok(checksumsOk(reply));
});

Deno.test("ICMP errors about a NATed flow are translated, quoted packet included", async (t) => {
  const cases = [
    {
      name: "time exceeded about UDP",
      make: () => udp({ src: H1, dst: H2, sport: 5000, dport: 53 }),
    },
    {
      name: "time exceeded about an echo request",
      make: () => icmpEcho({ src: H1, dst: H2, id: 5 }),
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const tri = triangle();
      const fw = firewallFrom(
        tri.r,
        `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j SNAT --to-source ${R_WAN}"] }\n`,
      );
      // A second host first, so the flow under test gets a translated port/id.
      assert.ok(forwardThrough(fw, c.make(), tri.rLan, tri.rWan));
      const other = c.name.includes("UDP")
        ? udp({ src: "192.0.2.11", dst: H2, sport: 5000, dport: 53 })
        : icmpEcho({ src: "192.0.2.11", dst: H2, id: 5 });
      assert.ok(forwardThrough(fw, other, tri.rLan, tri.rWan));
      const translated = tuple(other);
      assert.notEqual(translated.split(">")[0], `${R_WAN}:${c.name.includes("UDP") ? 5000 : 5}`);
      // A router beyond wan0 reports TTL exceeded about the translated packet.
      const err = icmpError({ src: "198.51.100.99", dst: R_WAN, type: 11, code: 0 }, other);
      assert.ok(fw.prerouting(err, IP_OFF, tri.rWan, null));
      assert.ok(fw.forward(err, IP_OFF, tri.rWan, tri.rLan));
      assert.ok(fw.postrouting(err, IP_OFF, null, tri.rLan));
      assert.equal(err.view.getUint32(IP_OFF + 16), 0xc000020b, "outer destination is the host");
      assert.equal(err.view.getUint32(IP_OFF + 12), 0xc6336463, "outer source unchanged");
      const inner = IP_OFF + 28;
      const want = c.name.includes("UDP") ? `192.0.2.11:5000>${H2}:53` : `192.0.2.11:5>${H2}:5`;
      assert.equal(tuple(err, inner), want);
      assert.ok(checksumsOk(err), "outer checksums");
      const d = err.data;
      assert.equal(internetChecksum(d, inner, 20), 0, "inner IP header checksum");
    });
  }
});

Deno.test("DNAT in OUTPUT rewrites a locally generated packet's destination", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\noutput = { rules = ["-d 203.0.113.5 -p udp --dport 53 -j DNAT --to-destination ${H2}:5353"] }\n`,
  );
  const b = udp({ src: R_WAN, dst: "203.0.113.5", sport: 3000, dport: 53 });
  assert.ok(fw.output(b, IP_OFF, null, t.rWan));
  assert.ok(fw.postrouting(b, IP_OFF, null, t.rWan));
  assert.equal(tuple(b), `${R_WAN}:3000>${H2}:5353`);
  assert.ok(checksumsOk(b));
  // The reply's source is translated back in POSTROUTING... for local delivery, INPUT.
  const reply = udp({ src: H2, dst: R_WAN, sport: 5353, dport: 3000 });
  assert.ok(fw.prerouting(reply, IP_OFF, t.rWan, null));
  assert.ok(fw.input(reply, IP_OFF, t.rWan, null));
  assert.equal(tuple(reply), `203.0.113.5:53>${R_WAN}:3000`);
  assert.ok(checksumsOk(reply));
});

Deno.test("UDP checksum 0 stays 0 through NAT", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
  );
  const b = udp({ src: H1, dst: H2, sport: 7, dport: 7 });
  b.view.setUint16(IP_OFF + 26, 0);
  assert.ok(forwardThrough(fw, b, t.rLan, t.rWan));
  assert.equal(b.view.getUint16(IP_OFF + 26), 0);
  assert.ok(checksumsOk(b));
});

Deno.test("SNAT to one port: a new SYN evicts a closed connection whose sequence it passed (Linux 6.5+)", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -p tcp -j MASQUERADE --to-ports 30000-30000"] }\n`,
  );
  const out = (sport: number, flags: number, seq: number) =>
    tcp({ src: H1, dst: H2, sport, dport: 80, flags, seq, ack: flags & F.ACK ? 5001 : 0 });
  const syn = out(1000, F.SYN, 1000);
  assert.ok(forwardThrough(fw, syn, t.rLan, t.rWan));
  assert.equal(tuple(syn), `${R_WAN}:30000>${H2}:80`);
  const synAck = tcp({
    src: H2,
    dst: R_WAN,
    sport: 80,
    dport: 30000,
    flags: F.SYN | F.ACK,
    seq: 5000,
    ack: 1001,
  });
  assert.ok(fw.prerouting(synAck, IP_OFF, t.rWan, null));
  assert.ok(forwardThrough(fw, out(1000, F.ACK, 1001), t.rLan, t.rWan));
  // While the first connection is established the one port is taken.
  assert.equal(forwardThrough(fw, out(1001, F.SYN, 9000), t.rLan, t.rWan), false);
  assert.equal(fw.stats.natPortsExhausted, 1);
  // Reset: the entry is in CLOSE. A SYN whose sequence is behind the old
  // connection's may not take its tuple (replies could belong to either).
  assert.ok(forwardThrough(fw, out(1000, F.RST | F.ACK, 1001), t.rLan, t.rWan));
  assert.equal(forwardThrough(fw, out(1002, F.SYN, 500), t.rLan, t.rWan), false);
  assert.equal(fw.stats.natPortsExhausted, 2);
  // One that passed it evicts the closed entry and gets the port.
  const next = out(1003, F.SYN, 9000);
  assert.ok(forwardThrough(fw, next, t.rLan, t.rWan));
  assert.equal(tuple(next), `${R_WAN}:30000>${H2}:80`);
  assert.equal(fw.conntrack.size, 1);
  const reply = tcp({
    src: H2,
    dst: R_WAN,
    sport: 80,
    dport: 30000,
    flags: F.SYN | F.ACK,
    seq: 7000,
    ack: 9001,
  });
  assert.ok(fw.prerouting(reply, IP_OFF, t.rWan, null));
  assert.equal(tuple(reply), `${H2}:80>${H1}:1003`, "replies go to the new connection");
});
