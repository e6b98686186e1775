/**
 * The Deno-shaped UDP API (`stack.listenDatagram`) on the virtual lab's
 * memory links, both families, on a manual clock: a "server" b and a
 * "client" a with two interfaces (eth0 to b, eth1 to c).
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { MemoryLink } from "../../../link/mod.ts";
import { ManualClock, type Stack } from "../../../stack/mod.ts";
import type { PacketBuffer } from "../../../stack/wire/mod.ts";
import { settle } from "../../topology/_topology.ts";

function lab() {
  const clock = new ManualClock();
  const [ab, ba] = MemoryLink.pair({ clock, names: ["a:eth0", "b:eth0"] });
  const [ac, ca] = MemoryLink.pair({ clock, names: ["a:eth1", "c:eth0"] });
  const frames: { link: string; bytes: Uint8Array }[] = [];
  const tap = (name: string, ep: typeof ab) => {
    const w = ep.writePacket.bind(ep);
    ep.writePacket = (p: PacketBuffer) => {
      frames.push({ link: name, bytes: p.data.slice(p.start, p.end) });
      return w(p);
    };
    return ep;
  };
  const node = (text: string, links: (typeof ab)[]) => {
    let i = 0;
    return buildStack(parseConfig(text), { clock, openLink: () => links[i++]! }).stack;
  };
  const a = node(
    `[router]\nhostname = "a"\n[[interface]]\nname = "eth0"\naddresses = ["192.0.2.1/24", "2001:db8::1/64"]\n` +
      `[[interface]]\nname = "eth1"\naddresses = ["198.51.100.1/24"]\n`,
    [tap("a:eth0", ab), tap("a:eth1", ac)],
  );
  const b = node(
    `[router]\nhostname = "b"\n[[interface]]\nname = "eth0"\naddresses = ["192.0.2.2/24", "2001:db8::2/64"]\n`,
    [ba],
  );
  const c = node(
    `[router]\nhostname = "c"\n[[interface]]\nname = "eth0"\naddresses = ["198.51.100.2/24"]\n`,
    [ca],
  );
  clock.advance(5000); // DAD
  frames.length = 0;
  return { clock, a, b, c, frames };
}

const enc = new TextEncoder(), dec = new TextDecoder();

/** An echo server written as one would against Deno.listenDatagram. */
async function echo(conn: ReturnType<Stack["listenDatagram"]>): Promise<void> {
  for await (const [data, from] of conn) await conn.send(data, from);
}

Deno.test("listenDatagram: an echo service answers both families, with Deno's addresses", async () => {
  const { clock, a, b } = lab();
  const server = b.listenDatagram({ hostname: "::", port: 7, transport: "udp" });
  const done = echo(server);
  for (const [dst, hostname] of [["192.0.2.2", "0.0.0.0"], ["2001:db8::2", "::"]] as const) {
    const client = a.listenDatagram({ hostname, port: 0, transport: "udp" });
    assert.ok(client.addr.port >= 32768 && client.addr.port <= 60999, String(client.addr.port));
    for (let i = 0; i < 5; i++) {
      const n = await client.send(enc.encode(`hello ${i}`), {
        transport: "udp",
        hostname: dst,
        port: 7,
      });
      assert.equal(n, 7);
      const [data, from] = await settle(clock, client.receive());
      assert.equal(dec.decode(data), `hello ${i}`);
      assert.deepEqual(from, { transport: "udp", hostname: dst, port: 7 });
    }
    client.close();
  }
  server.close();
  await done;
  a.close();
  b.close();
});

Deno.test("listenDatagram: AddrInUse, AddrNotAvailable, BadResource as Deno throws them", async () => {
  const { a } = lab();
  const s1 = a.listenDatagram({ hostname: "0.0.0.0", port: 5353, transport: "udp" });
  assert.throws(() => a.listenDatagram({ port: 5353, transport: "udp" }), Deno.errors.AddrInUse);
  assert.throws(
    () => a.listenDatagram({ hostname: "192.0.2.1", port: 5353, transport: "udp" }),
    Deno.errors.AddrInUse,
  );
  // Different families and devices do not clash; an IPv6 address does not clash with 0.0.0.0.
  const s2 = a.listenDatagram({ hostname: "2001:db8::1", port: 5353, transport: "udp" });
  assert.throws(
    () => a.listenDatagram({ hostname: "203.0.113.9", port: 5000, transport: "udp" }),
    Deno.errors.AddrNotAvailable,
  );
  const pending = s1.receive();
  s1.close();
  await assert.rejects(pending, Deno.errors.BadResource);
  await assert.rejects(
    s1.send(new Uint8Array(1), { transport: "udp", hostname: "192.0.2.2", port: 9 }),
    Deno.errors.BadResource,
  );
  assert.throws(() => s1.close(), Deno.errors.BadResource);
  // The port is free again.
  a.listenDatagram({ port: 5353, transport: "udp" }).close();
  s2.close();
  a.close();
});

Deno.test("a datagram to a closed port gets port unreachable; to a bound-elsewhere socket too", () => {
  const { clock, a, b } = lab();
  // b's socket is bound to an interface the datagram does not arrive on.
  b.udp.bindSocket({ port: 9999, device: null, address: null, family: 6, onDatagram: () => {} });
  const before = { ...b.stats.udp };
  const icmpIn = a.stats.icmpv4.messagesReceived;
  a.udp.send(40000, 0xc0000202, 9999, new Uint8Array(4));
  clock.advance(100);
  assert.equal(b.stats.udp.unknownPortReceived - before.unknownPortReceived, 1);
  assert.equal(a.stats.icmpv4.messagesReceived - icmpIn, 1);
  a.close();
  b.close();
});

Deno.test("interface binding: a socket bound to eth1 sees nothing that arrives on eth0", async () => {
  const { clock, a, b, c } = lab();
  const onEth1 = a.listenDatagram({ port: 6000, transport: "udp", interface: "eth1" });
  // Linux's rule: a second socket on the port must be bound to another device.
  assert.throws(
    () => a.listenDatagram({ hostname: "192.0.2.1", port: 6000, transport: "udp" }),
    Deno.errors.AddrInUse,
  );
  const fromB = b.listenDatagram({ port: 0, transport: "udp" });
  const fromC = c.listenDatagram({ port: 0, transport: "udp" });
  const unknown = a.stats.udp.unknownPortReceived;
  await fromB.send(enc.encode("b"), { transport: "udp", hostname: "192.0.2.1", port: 6000 });
  clock.advance(100);
  assert.equal(a.stats.udp.unknownPortReceived, unknown + 1, "eth0's datagram found no socket");
  await fromC.send(enc.encode("c"), { transport: "udp", hostname: "198.51.100.1", port: 6000 });
  const got = await settle(clock, onEth1.receiveFrom());
  assert.equal(dec.decode(got.data), "c");
  assert.equal(got.interface, "eth1");
  assert.deepEqual(got.local, { transport: "udp", hostname: "198.51.100.1", port: 6000 });
  // Another device's socket may share the port.
  const onEth0 = a.listenDatagram({ port: 6000, transport: "udp", interface: "eth0" });
  await fromB.send(enc.encode("b2"), { transport: "udp", hostname: "192.0.2.1", port: 6000 });
  const got2 = await settle(clock, onEth0.receiveFrom());
  assert.equal(dec.decode(got2.data), "b2");
  for (const x of [onEth1, onEth0, fromB, fromC]) x.close();
  a.close();
  b.close();
  c.close();
});

Deno.test("sendTo: 0.0.0.0:68 → 255.255.255.255:67 to ff:ff:ff:ff:ff:ff leaves only the chosen interface", async () => {
  const { clock, a, c, frames } = lab();
  const server = c.listenDatagram({ port: 67, transport: "udp" });
  const client = a.listenDatagram({ port: 68, transport: "udp", interface: "eth1" });
  await client.sendTo(enc.encode("DISCOVER"), {
    transport: "udp",
    hostname: "255.255.255.255",
    port: 67,
  }, {
    source: "0.0.0.0",
    linkAddress: "ff:ff:ff:ff:ff:ff",
  });
  const got = await settle(clock, server.receiveFrom());
  assert.equal(dec.decode(got.data), "DISCOVER");
  assert.deepEqual(got.remote, { transport: "udp", hostname: "0.0.0.0", port: 68 });
  assert.deepEqual(got.local, { transport: "udp", hostname: "255.255.255.255", port: 67 });
  assert.deepEqual(frames.map((f) => f.link), ["a:eth1"], "one frame, on eth1 only");
  const f = frames[0]!.bytes;
  assert.deepEqual([...f.subarray(0, 6)], [255, 255, 255, 255, 255, 255]);
  assert.deepEqual([...f.subarray(14 + 12, 14 + 16)], [0, 0, 0, 0], "source 0.0.0.0");
  // To a MAC, with no ARP: a unicast frame to an address nobody resolved.
  frames.length = 0;
  await client.sendTo(enc.encode("OFFER"), {
    transport: "udp",
    hostname: "198.51.100.77",
    port: 68,
  }, {
    linkAddress: "02:00:00:00:00:77",
    interface: "eth1",
  });
  assert.equal(frames.length, 1);
  assert.deepEqual([...frames[0]!.bytes.subarray(0, 6)], [2, 0, 0, 0, 0, 0x77]);
  assert.equal((frames[0]!.bytes[12]! << 8) | frames[0]!.bytes[13]!, 0x0800, "IPv4, not ARP");
  server.close();
  client.close();
  a.close();
  c.close();
});

Deno.test("a full receive queue drops and counts, never grows without bound", async () => {
  const { clock, a, b } = lab();
  const server = b.listenDatagram({ port: 7000, transport: "udp", queueLength: 2 });
  const client = a.listenDatagram({ port: 0, transport: "udp" });
  for (let i = 0; i < 5; i++) {
    await client.send(new Uint8Array([i]), { transport: "udp", hostname: "192.0.2.2", port: 7000 });
  }
  clock.advance(100);
  assert.equal(b.stats.udp.receiveQueueFullDropped, 3);
  assert.deepEqual([...(await server.receive())[0]], [0]);
  assert.deepEqual([...(await server.receive())[0]], [1]);
  server.close();
  client.close();
  a.close();
  b.close();
});

Deno.test("multicast: a socket that joined a group receives what is sent to it", async () => {
  const { clock, a, b } = lab();
  const server = b.listenDatagram({ port: 5000, transport: "udp" });
  const m = await server.joinMulticastV4("239.1.2.3", "192.0.2.2");
  const client = a.listenDatagram({ port: 0, transport: "udp", interface: "eth0" });
  await client.send(enc.encode("m"), { transport: "udp", hostname: "239.1.2.3", port: 5000 });
  const got = await settle(clock, server.receiveFrom());
  assert.deepEqual(got.local, { transport: "udp", hostname: "239.1.2.3", port: 5000 });
  await m.leave();
  // Left: the NIC no longer accepts the group's MAC.
  const nic = b.nicByName("eth0")!;
  const dropped = nic.stats.notForUsFramesReceived;
  await client.send(enc.encode("m"), { transport: "udp", hostname: "239.1.2.3", port: 5000 });
  clock.advance(100);
  assert.equal(nic.stats.notForUsFramesReceived, dropped + 1);
  server.close();
  client.close();
  a.close();
  b.close();
});
