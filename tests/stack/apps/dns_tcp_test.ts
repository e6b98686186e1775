/**
 * The DNS forwarder over TCP (RFC 1035 §4.2.2, RFC 7766) and its TCP
 * retry of truncated answers (RFC 7766 §5), on memory links with the
 * manual clock:
 *
 *   client 192.0.2.10 ── lan0 192.0.2.1  gw  wan0 198.51.100.1 ── resolver 198.51.100.53 (and .54)
 *
 * The resolver is scripted on UDP and TCP port 53: `big.example.com` TXT
 * is about 900 bytes (over 512, under 1232), `huge.example.com` TXT about
 * 3 KB; over UDP it answers TC with only the first record when the answer
 * exceeds the query's size (512, or its EDNS payload size), over TCP in
 * full. The client speaks TCP through the stack's synchronous connection
 * API, with its own framing (2-byte length) written here, not the
 * forwarder's.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { type MemoryEndpoint, MemoryLink } from "../../../link/mod.ts";
import {
  DnsForwarder,
  type DnsForwarderSettings,
  ManualClock,
  type Stack,
} from "../../../stack/mod.ts";
import {
  type DnsMessage,
  DnsType,
  DnsWriter,
  parseDns,
  parseIpAddress,
  parseIpv4,
} from "../../../stack/wire/mod.ts";
import type { TcpConnection } from "../../../stack/transport/tcp/connection.ts";
import type { TcpListener } from "../../../stack/transport/tcp/tcp.ts";

const A = (s: string) => parseIpv4(s);
const TC = 0x0200;

/** `n` TXT records of one 200-byte string each, for `name`. */
function txtAnswer(
  w: DnsWriter,
  id: number,
  name: string,
  n: number,
  o: { tc?: boolean; opt?: number | null; rd?: number },
) {
  const records = o.tc ? 1 : n;
  w.header({
    id,
    flags: 0x8180 | (o.tc ? TC : 0) | (o.rd ?? 0x0100),
    qd: 1,
    an: records,
    ar: o.opt != null ? 1 : 0,
  }).question(name, DnsType.TXT);
  for (let i = 0; i < records; i++) {
    const rdata = new Uint8Array(201);
    rdata[0] = 200;
    rdata.fill(0x61 + i, 1);
    w.record(name, DnsType.TXT, 300, rdata);
  }
  if (o.opt != null) w.opt(o.opt);
}

/** What a query asks, for the resolver's script. */
interface Seen {
  transport: "udp" | "tcp";
  server: string;
  name: string;
  id: number;
  udpSize: number | null;
}

/** A client TCP connection and the answers it read (its own framing). */
interface TcpPeer {
  c: TcpConnection;
  answers: DnsMessage[];
  closedWith: () => Error | null | undefined;
  send(msg: Uint8Array): void;
}

/** Frames from a byte buffer: whole messages out, the rest kept. */
function deframe(buf: Uint8Array, out: Uint8Array[]): Uint8Array {
  let off = 0;
  while (buf.length - off >= 2) {
    const len = (buf[off]! << 8) | buf[off + 1]!;
    if (buf.length - off < 2 + len) break;
    out.push(buf.slice(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return buf.slice(off);
}

function frame(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + msg.length);
  out[0] = msg.length >> 8;
  out[1] = msg.length & 255;
  out.set(msg, 2);
  return out;
}

function query(
  name: string,
  type: number = DnsType.A,
  id = 0x4242,
  edns: number | null = null,
): Uint8Array {
  const w = new DnsWriter(new Uint8Array(512));
  w.header({ id, flags: 0x0100, qd: 1, ar: edns !== null ? 1 : 0 }).question(name, type);
  if (edns !== null) w.opt(edns);
  return w.bytes().slice();
}

/** Read everything `c` has into `acc`, parse whole frames. */
function drain(c: TcpConnection, state: { buf: Uint8Array }, answers: DnsMessage[]) {
  const tmp = new Uint8Array(65536);
  for (;;) {
    const n = c.read(tmp);
    if (n === 0) break;
    const b = new Uint8Array(state.buf.length + n);
    b.set(state.buf);
    b.set(tmp.subarray(0, n), state.buf.length);
    state.buf = b;
  }
  const msgs: Uint8Array[] = [];
  state.buf = deframe(state.buf, msgs);
  for (const m of msgs) {
    const p = parseDns(m);
    if (typeof p !== "string") answers.push(p);
  }
}

function lab(settings: Partial<DnsForwarderSettings> = {}, twoLans = false) {
  const clock = new ManualClock(1_000_000);
  const [cl, gl] = MemoryLink.pair({ clock, names: ["client:eth0", "gw:lan0"] });
  const [gw, rw] = MemoryLink.pair({ clock, names: ["gw:wan0", "resolver:eth0"] });
  const [c2, gl2] = MemoryLink.pair({ clock, names: ["client2:eth0", "gw:lan1"] });
  const node = (text: string, links: MemoryEndpoint[]) => {
    let i = 0;
    return buildStack(parseConfig(text), { clock, openLink: () => links[i++]! }).stack;
  };
  const client = node(
    `[[interface]]\nname = "eth0"\naddresses = ["192.0.2.10/24"]\n[[route]]\nto = "0.0.0.0/0"\nvia = "192.0.2.1"\n`,
    [cl],
  );
  const client2 = node(
    `[[interface]]\nname = "eth0"\naddresses = ["203.0.113.10/24"]\n[[route]]\nto = "0.0.0.0/0"\nvia = "203.0.113.1"\n`,
    [c2],
  );
  const g = node(
    `[router]\nforwarding = { ipv4 = true, ipv6 = false }\n[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24"]\n` +
      `[[interface]]\nname = "wan0"\naddresses = ["198.51.100.1/24"]\n` +
      `[[interface]]\nname = "lan1"\naddresses = ["203.0.113.1/24"]\n`,
    [gl, gw, gl2],
  );
  const resolver = node(
    `[[interface]]\nname = "eth0"\naddresses = ["198.51.100.53/24", "198.51.100.54/24"]\n[[route]]\nto = "0.0.0.0/0"\nvia = "198.51.100.1"\n`,
    [rw],
  );
  clock.advance(3_000);
  const nic = (n: string) => [...g.nics.values()].find((x) => x.name === n)!;
  const fwd = new DnsForwarder(g, twoLans ? [nic("lan0"), nic("lan1")] : [nic("lan0")], {
    servers: [parseIpAddress("198.51.100.53"), parseIpAddress("198.51.100.54")],
    hosts: [{ name: "nas.lan", addresses: [parseIpAddress("192.0.2.20")] }],
    local: ["lan"],
    ...settings,
  });
  const seen: Seen[] = [];
  /** TCP answers held back (released by the test) per server address, when set. */
  const hold = { on: false, queue: [] as (() => void)[] };
  /** Build the resolver's answer to `q` for a transport with `limit` bytes (Infinity: TCP). */
  const answer = (q: DnsMessage, limit: number): Uint8Array => {
    const w = new DnsWriter(new Uint8Array(8192));
    const name = q.questions[0]!.name;
    const lc = name.toLowerCase();
    const n = lc === "big.example.com" ? 4 : lc === "huge.example.com" ? 15 : 0;
    const opt = q.edns !== null ? 1232 : null;
    if (n > 0) {
      txtAnswer(w, q.id, name, n, { opt });
      if (w.length > limit) txtAnswer(w, q.id, name, n, { tc: true, opt });
    } else {
      w.header({ id: q.id, flags: 0x8180, qd: 1, an: 1 }).question(name, DnsType.A);
      w.record(name, DnsType.A, 60, new Uint8Array([203, 0, 113, 7]));
    }
    return w.bytes().slice();
  };
  const rep = resolver.udp.bindSocket({
    family: 4,
    port: 53,
    onDatagram: (d) => {
      const q = parseDns(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
      if (typeof q === "string") return;
      const server = `198.51.100.${d.dst & 255}`;
      seen.push({
        transport: "udp",
        server,
        name: q.questions[0]!.name,
        id: q.id,
        udpSize: q.edns?.udpSize ?? null,
      });
      const limit = q.edns !== null ? Math.max(512, q.edns.udpSize) : 512;
      rep.send(d.src, d.srcPort, answer(q, limit), { src: d.dst });
    },
  });
  let tl: TcpListener | null = null;
  /** The resolver's TCP service: on (all its addresses, or one), or off (SYNs get RST). */
  const resolverTcp = (on: boolean, only?: string) => {
    tl?.close();
    tl = null;
    if (!on) return;
    const l = resolver.tcp.listen({
      family: 4,
      address: only !== undefined ? A(only) : null,
      port: 53,
    });
    tl = l;
    l.onAcceptable = () => {
      for (let c = l.accept(); c !== null; c = l.accept()) {
        const conn = c;
        const st: { buf: Uint8Array } = { buf: new Uint8Array(0) };
        conn.events = {
          onReadable: () => {
            const tmp = new Uint8Array(4096);
            for (let k = conn.read(tmp); k > 0; k = conn.read(tmp)) {
              const b = new Uint8Array(st.buf.length + k);
              b.set(st.buf);
              b.set(tmp.subarray(0, k), st.buf.length);
              st.buf = b;
            }
            const msgs: Uint8Array[] = [];
            st.buf = deframe(st.buf, msgs);
            for (const m of msgs) {
              const q = parseDns(m);
              if (typeof q === "string") continue;
              seen.push({
                transport: "tcp",
                server: `198.51.100.${(conn.local as number) & 255}`,
                name: q.questions[0]!.name,
                id: q.id,
                udpSize: q.edns?.udpSize ?? null,
              });
              const send = () => conn.write(frame(answer(q, Infinity)));
              if (hold.on) hold.queue.push(send);
              else send();
            }
          },
        };
      }
    };
  };
  resolverTcp(true);
  const udpAnswers: DnsMessage[] = [];
  const cep = client.udp.bindSocket({
    family: 4,
    port: 5353,
    onDatagram: (d) => {
      const m = parseDns(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
      if (typeof m !== "string") udpAnswers.push(m);
    },
  });
  /** Ask over UDP; the answers that came within `ms`. */
  const askUdp = (bytes: Uint8Array, ms = 100): DnsMessage[] => {
    const n = udpAnswers.length;
    cep.send(A("192.0.2.1"), 53, bytes);
    clock.advance(ms);
    return udpAnswers.slice(n);
  };
  /** Open a TCP connection from the client (or client2) to the forwarder. */
  const connect = (from: Stack = client, to = "192.0.2.1"): TcpPeer => {
    const c = from.tcp.connect({ remote: A(to), port: 53 });
    c.setNoDelay(true);
    const answers: DnsMessage[] = [];
    const st: { buf: Uint8Array } = { buf: new Uint8Array(0) };
    let closed: Error | null | undefined = undefined;
    c.events = {
      onReadable: () => drain(c, st, answers),
      onClosed: (e) => closed = e,
    };
    return {
      c,
      answers,
      closedWith: () => closed,
      send: (msg) => {
        assert.equal(c.write(msg), msg.length);
      },
    };
  };
  const close = () => {
    fwd.close();
    for (const s of [client, client2, g, resolver]) (s as Stack).close();
  };
  return { clock, g, client, client2, fwd, seen, hold, resolverTcp, askUdp, connect, close };
}

Deno.test("DNS over TCP: one query on a connection, forwarded over TCP (as dnsmasq), then from the cache", () => {
  const l = lab();
  const t = l.connect();
  l.clock.advance(50);
  t.send(frame(query("www.example.com", DnsType.A, 0x1111)));
  l.clock.advance(100);
  assert.equal(t.answers.length, 1);
  assert.equal(t.answers[0]!.id, 0x1111);
  assert.deepEqual(t.answers[0]!.answers.map((r) => r.type), [DnsType.A]);
  assert.deepEqual(l.seen.map((s) => s.transport), ["tcp"], "a TCP query goes upstream over TCP");
  // The same question again on the same connection: the cache, not the resolver.
  t.send(frame(query("www.example.com", DnsType.A, 0x2222)));
  l.clock.advance(50);
  assert.equal(t.answers.length, 2);
  assert.equal(t.answers[1]!.id, 0x2222);
  assert.equal(l.seen.length, 1);
  const s = l.fwd.stats;
  assert.equal(s.tcpConnectionsAccepted, 1);
  assert.equal(s.tcpQueriesReceived, 2);
  assert.equal(s.tcpForwarded, 1);
  assert.equal(s.cacheHits, 1);
  // A local name over TCP, answered by the forwarder itself.
  t.send(frame(query("nas.lan", DnsType.A, 0x3333)));
  l.clock.advance(50);
  assert.equal(t.answers[2]!.id, 0x3333);
  assert.equal(t.answers[2]!.answers.length, 1);
  assert.equal(l.fwd.tcpClients, 1);
  l.close();
});

Deno.test("DNS over TCP: pipelined queries in one segment are each answered, the quick ones first (RFC 7766 §6.2.1.1)", () => {
  const l = lab();
  const t = l.connect();
  l.clock.advance(50);
  // The resolver's TCP answers wait until released: the forwarded one comes last.
  l.hold.on = true;
  const msgs = [
    query("www.example.com", DnsType.A, 1),
    query("nas.lan", DnsType.A, 2),
    query("nope.lan", DnsType.A, 3),
  ];
  const all = new Uint8Array(msgs.reduce((n, m) => n + 2 + m.length, 0));
  let off = 0;
  for (const m of msgs) {
    all.set(frame(m), off);
    off += 2 + m.length;
  }
  t.send(all);
  l.clock.advance(100);
  assert.deepEqual(
    t.answers.map((a) => a.id),
    [2, 3],
    "the local answers, before the forwarded one",
  );
  assert.equal(t.answers[1]!.rcode, 3, "nope.lan: NXDOMAIN");
  assert.equal(l.hold.queue.length, 1);
  l.hold.queue.shift()!();
  l.clock.advance(100);
  assert.deepEqual(t.answers.map((a) => a.id), [2, 3, 1]);
  assert.equal(t.answers[2]!.answers[0]!.type, DnsType.A);
  l.close();
});

Deno.test("DNS over TCP: a query split across segments, even inside its length prefix, is put back together", () => {
  const l = lab();
  const t = l.connect();
  l.clock.advance(50);
  const q1 = frame(query("nas.lan", DnsType.A, 7));
  const q2 = frame(query("nas.lan", DnsType.A, 8));
  const bytes = new Uint8Array(q1.length + q2.length);
  bytes.set(q1);
  bytes.set(q2, q1.length);
  // Cuts: after 1 byte (inside q1's prefix), in q1's body, across q1/q2 with q2's first
  // prefix byte, and the rest: each write its own segment (no Nagle), delivered apart.
  const cuts = [1, 9, q1.length + 1, bytes.length];
  let from = 0;
  const segsBefore = l.client.stats.tcp.segmentsSent;
  for (const to of cuts) {
    t.send(bytes.subarray(from, to));
    from = to;
    l.clock.advance(20);
    if (to < q1.length) assert.equal(t.answers.length, 0, "no answer before the whole message");
  }
  l.clock.advance(100);
  assert.ok(
    l.client.stats.tcp.segmentsSent - segsBefore >= 4,
    "the pieces went as separate segments",
  );
  assert.deepEqual(t.answers.map((a) => a.id), [7, 8]);
  assert.equal(l.fwd.stats.malformedDropped, 0);
  // A message shorter than a header is dropped and counted; the connection carries on.
  t.send(frame(new Uint8Array(5)));
  t.send(frame(query("nas.lan", DnsType.A, 9)));
  l.clock.advance(50);
  assert.equal(l.fwd.stats.malformedDropped, 1);
  assert.deepEqual(t.answers.map((a) => a.id), [7, 8, 9]);
  l.close();
});

Deno.test("DNS TC retry: a truncated UDP answer is asked again over TCP, cached whole, cut to the client's size, and whole over TCP", async (st) => {
  const l = lab();
  await st.step(
    "no EDNS: the client gets TC (header and question), the resolver got UDP then TCP",
    () => {
      const [a] = l.askUdp(query("big.example.com", DnsType.TXT, 0x0101));
      assert.ok(a);
      assert.equal(a.id, 0x0101);
      assert.ok((a.flags & TC) !== 0, "TC set");
      assert.equal(a.answers.length, 0, "no partial RRset: our own cut, not the upstream's");
      assert.equal(a.questions[0]!.name, "big.example.com");
      assert.equal(a.edns, null, "no OPT to a client that sent none");
      assert.deepEqual(l.seen.map((s) => [s.transport, s.server, s.name]), [
        ["udp", "198.51.100.53", "big.example.com"],
        ["tcp", "198.51.100.53", "big.example.com"],
      ], "the same server, over TCP");
      const s = l.fwd.stats;
      assert.equal(s.tcRetries, 1);
      assert.equal(s.truncatedAnswers, 1);
      assert.equal(s.tcpForwarded, 1);
      assert.equal(l.fwd.cacheEntries, 1, "the full answer is cached");
    },
  );
  await st.step("the client retries over TCP: the whole answer, from the cache", () => {
    const t = l.connect();
    l.clock.advance(50);
    t.send(frame(query("big.example.com", DnsType.TXT, 0x0202)));
    l.clock.advance(50);
    const [a] = t.answers;
    assert.ok(a);
    assert.equal(a.flags & TC, 0);
    assert.equal(a.answers.length, 4);
    assert.ok(a.length > 512 && a.length < 1232, `${a.length} bytes`);
    assert.equal(l.seen.length, 2, "not asked upstream again");
    assert.equal(l.fwd.stats.cacheHits, 1);
  });
  await st.step("a UDP client offering 1232 bytes gets the cached answer whole over UDP", () => {
    const [a] = l.askUdp(query("big.example.com", DnsType.TXT, 0x0303, 1232));
    assert.ok(a);
    assert.equal(a.flags & TC, 0);
    assert.equal(a.answers.length, 4);
    assert.equal(l.seen.length, 2);
  });
  await st.step(
    "an answer over 1232 bytes: TC with the OPT kept for an EDNS client; whole over TCP",
    () => {
      const [a] = l.askUdp(query("huge.example.com", DnsType.TXT, 0x0404, 4096));
      assert.ok(a);
      assert.ok((a.flags & TC) !== 0);
      assert.equal(a.answers.length, 0);
      assert.ok(a.edns !== null, "RFC 6891 §7: the OPT record stays in a truncated answer");
      // Upstream was offered at most 1232 (dnsmasq's edns-packet-max), not the client's 4096.
      assert.deepEqual(l.seen.slice(2).map((s) => [s.transport, s.udpSize]), [
        ["udp", 1232],
        ["tcp", 1232],
      ]);
      const t = l.connect();
      l.clock.advance(50);
      t.send(frame(query("huge.example.com", DnsType.TXT, 0x0505, 4096)));
      l.clock.advance(50);
      assert.equal(t.answers[0]!.answers.length, 15);
      assert.ok(t.answers[0]!.length > 3000);
      assert.equal(l.seen.length, 4);
    },
  );
  l.close();
});

Deno.test("DNS TC retry: when the TCP retry fails, the client gets the upstream's truncated answer as it came", () => {
  const l = lab();
  l.resolverTcp(false); // the resolver resets TCP connections now
  const [a] = l.askUdp(query("big.example.com", DnsType.TXT, 0x0606));
  assert.ok(a);
  assert.equal(a.id, 0x0606);
  assert.ok((a.flags & TC) !== 0);
  assert.equal(a.answers.length, 1, "the upstream's own truncated answer (its first record)");
  const s = l.fwd.stats;
  assert.equal(s.tcRetries, 1);
  assert.equal(s.tcRetryFailed, 1);
  assert.equal(s.truncatedAnswers, 0);
  assert.equal(l.fwd.cacheEntries, 0, "a truncated answer is not cached");
  l.close();
});

Deno.test("DNS over TCP: a client's TCP query goes to the next server when one times out or refuses TCP", () => {
  const l = lab({ servers: [parseIpAddress("198.51.100.99"), parseIpAddress("198.51.100.53")] });
  // 198.51.100.99 is nobody: ARP goes unanswered and the attempt times out (2 s); then .53 answers.
  const t = l.connect();
  l.clock.advance(50);
  t.send(frame(query("www.example.com", DnsType.A, 0x0707)));
  l.clock.advance(1_000);
  assert.equal(t.answers.length, 0);
  l.clock.advance(2_000);
  assert.equal(t.answers.length, 1);
  assert.equal(t.answers[0]!.id, 0x0707);
  assert.equal(l.fwd.stats.upstreamTimeouts, 1);
  assert.equal(l.fwd.stats.tcpUpstreamFailed, 0);
  // Refused outright (RST from .54, which serves UDP only): the next server at once.
  l.fwd.configure({
    ...l.fwd.settings,
    servers: [parseIpAddress("198.51.100.54"), parseIpAddress("198.51.100.53")],
  });
  l.resolverTcp(true, "198.51.100.53");
  l.seen.length = 0;
  t.send(frame(query("other.example.com", DnsType.A, 0x0808)));
  l.clock.advance(100);
  assert.equal(t.answers[1]?.id, 0x0808);
  assert.equal(l.fwd.stats.tcpUpstreamFailed, 1);
  assert.deepEqual(l.seen.map((x) => [x.transport, x.server]), [["tcp", "198.51.100.53"]]);
  l.close();
});

Deno.test("DNS over TCP: an idle connection is closed after tcpIdleMs; queries and pending answers keep it open", () => {
  const l = lab({ tcpIdleMs: 10_000 });
  const idle = l.connect();
  l.clock.advance(50);
  const busy = l.connect();
  l.clock.advance(50);
  busy.send(frame(query("nas.lan", DnsType.A, 1)));
  l.clock.advance(8_000);
  busy.send(frame(query("nas.lan", DnsType.A, 2)));
  // A partial message does not count as activity.
  idle.send(new Uint8Array([0, 40, 1, 2]));
  l.clock.advance(2_100);
  assert.ok(idle.c.readEof, "the idle one got a FIN");
  assert.equal(l.fwd.stats.tcpIdleClosed, 1);
  assert.ok(!busy.c.readEof, "the busy one is still open at 10 s");
  assert.deepEqual(busy.answers.map((a) => a.id), [1, 2]);
  // An answer outstanding upstream keeps it open past the timeout.
  l.hold.on = true;
  busy.send(frame(query("www.example.com", DnsType.A, 3)));
  l.clock.advance(3_000);
  assert.equal(busy.answers.length, 2, "still waiting upstream");
  l.clock.advance(1_100);
  assert.equal(
    l.fwd.stats.upstreamTimeouts,
    2,
    "the held query timed out on both servers (2 s each)",
  );
  assert.equal(busy.answers.at(-1)!.id, 3, "SERVFAIL after both upstreams timed out");
  assert.equal(busy.answers.at(-1)!.rcode, 2);
  // Idle counts from that answer (4 s after the query), not from the query.
  l.clock.advance(9_000);
  assert.ok(!busy.c.readEof, "open 13 s after its last query");
  l.clock.advance(1_100);
  assert.ok(busy.c.readEof);
  assert.equal(l.fwd.stats.tcpIdleClosed, 2);
  assert.equal(l.fwd.tcpClients, 0);
  l.close();
});

Deno.test("DNS over TCP: past maxTcpClients a connection is reset and counted; a freed slot takes the next", () => {
  const l = lab({ maxTcpClients: 2 });
  const a = l.connect();
  const b = l.connect();
  l.clock.advance(50);
  const c = l.connect();
  l.clock.advance(50);
  assert.ok(c.closedWith() instanceof Deno.errors.ConnectionReset, String(c.closedWith()));
  assert.equal(l.fwd.stats.tcpClientsRefused, 1);
  assert.equal(l.fwd.stats.tcpConnectionsAccepted, 2);
  for (const [t, id] of [[a, 1], [b, 2]] as const) {
    t.send(frame(query("nas.lan", DnsType.A, id)));
  }
  l.clock.advance(50);
  assert.deepEqual([a.answers[0]!.id, b.answers[0]!.id], [1, 2]);
  // A client closes: its slot is free.
  a.c.close();
  l.clock.advance(50);
  assert.equal(l.fwd.tcpClients, 1);
  const d = l.connect();
  l.clock.advance(50);
  d.send(frame(query("nas.lan", DnsType.A, 4)));
  l.clock.advance(50);
  assert.equal(d.answers[0]!.id, 4);
  assert.equal(l.fwd.stats.tcpClientsRefused, 1);
  l.close();
});

Deno.test("DNS over TCP: at most TCP_PIPELINE queries of a connection are outstanding; the rest wait in the stream", () => {
  const l = lab();
  const t = l.connect();
  l.clock.advance(50);
  l.hold.on = true;
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 20; i++) parts.push(frame(query(`n${i}.example.com`, DnsType.A, 100 + i)));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  t.send(all);
  l.clock.advance(100);
  assert.equal(l.seen.length, 16, "16 forwarded, 4 not read yet");
  for (const f of l.hold.queue.splice(0)) f();
  l.clock.advance(100);
  assert.equal(l.seen.length, 20);
  for (const f of l.hold.queue.splice(0)) f();
  l.clock.advance(100);
  assert.deepEqual(t.answers.map((a) => a.id).sort((x, y) => x - y), parts.map((_, i) => 100 + i));
  l.close();
});

Deno.test("DNS over TCP: an answer for a client that reset its connection is dropped and counted", () => {
  const l = lab();
  const t = l.connect();
  l.clock.advance(50);
  l.hold.on = true;
  t.send(frame(query("www.example.com", DnsType.A, 1)));
  l.clock.advance(50);
  t.c.abort();
  l.clock.advance(50);
  assert.equal(l.fwd.tcpClients, 0);
  l.hold.queue.shift()!();
  l.clock.advance(50);
  assert.equal(l.fwd.stats.tcpClientGoneDropped, 1);
  assert.equal(l.fwd.stats.answersForwarded, 1);
  l.close();
});

Deno.test("DNS over TCP: a forwarder on two interfaces listens on TCP 53 of both", () => {
  const l = lab({}, true);
  for (
    const [from, to, id] of [[l.client, "192.0.2.1", 1], [l.client2, "203.0.113.1", 2]] as const
  ) {
    const t = l.connect(from, to);
    l.clock.advance(50);
    t.send(frame(query("nas.lan", DnsType.A, id)));
    l.clock.advance(50);
    assert.equal(t.answers[0]?.id, id);
  }
  assert.equal(l.fwd.stats.tcpConnectionsAccepted, 2);
  l.close();
});

Deno.test("[dns]: tcp_idle_timeout and tcp_clients, their defaults and errors at their key paths", () => {
  const cfg = (dns: string) =>
    parseConfig(`[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24"]\n[dns]\n${dns}`);
  const errors = (dns: string): string[] => {
    try {
      cfg(dns);
    } catch (e) {
      return (e as { errors: { path: string; message: string }[] }).errors.map((x) =>
        `${x.path}: ${x.message}`
      );
    }
    return [];
  };
  const d = cfg(`interfaces = ["lan0"]\n`).dns.settings;
  assert.equal(d.tcpIdleMs, 10_000);
  assert.equal(d.maxTcpClients, 20);
  const s = cfg(`interfaces = ["lan0"]\ntcp_idle_timeout = "30s"\ntcp_clients = 5\n`).dns.settings;
  assert.equal(s.tcpIdleMs, 30_000);
  assert.equal(s.maxTcpClients, 5);
  // Both wrong at once: both reported.
  const e = errors(`interfaces = ["lan0"]\ntcp_idle_timeout = "10ms"\ntcp_clients = 0\n`);
  assert.equal(e.length, 2, e.join("\n"));
  assert.match(e.find((x) => x.startsWith("dns.tcp_idle_timeout"))!, /^dns\.tcp_idle_timeout: /);
  assert.match(e.find((x) => x.startsWith("dns.tcp_clients"))!, /^dns\.tcp_clients: /);
});

Deno.test("DNS cache: an answer cached from an EDNS query loses its OPT for a query without one, and gains one the other way (RFC 6891 §6.1.1, §7)", () => {
  const l = lab();
  // big.example.com comes with OPT when asked with it (the resolver mirrors the query).
  const [first] = l.askUdp(query("big.example.com", DnsType.TXT, 1, 1232));
  assert.ok(first?.edns !== null && first!.answers.length === 4);
  const [bare] = l.askUdp(query("big.example.com", DnsType.TXT, 2), 100);
  assert.equal(bare!.edns, null, "no OPT for a query without one");
  assert.ok((bare!.flags & TC) !== 0, "and cut to 512 bytes");
  // The other way round: cached without OPT (a query without EDNS), asked with EDNS and DO.
  const [plain] = l.askUdp(query("www.example.com", DnsType.A, 3));
  assert.equal(plain!.edns, null);
  const w = new DnsWriter(new Uint8Array(512));
  w.header({ id: 4, flags: 0x0100, qd: 1, ar: 1 }).question("www.example.com", DnsType.A);
  w.opt(1232, false);
  const [withOpt] = l.askUdp(w.bytes().slice());
  assert.equal(l.fwd.stats.cacheHits, 2);
  assert.ok(withOpt!.edns !== null, "an OPT for a query with one");
  assert.equal(withOpt!.edns!.udpSize, 1232);
  assert.equal(withOpt!.answers.length, 1);
  l.close();
});
