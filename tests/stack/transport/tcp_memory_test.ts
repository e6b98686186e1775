/**
 * Memory of idle connections: 10,000 established connection pairs between
 * two stacks, measured as the heap's growth after a full GC, per side; and
 * no idle connection holds a ring buffer (the store is made on first use
 * and dropped when it empties).
 */
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import type { TcpConnection } from "../../../stack/transport/mod.ts";
import { parseIpv4 } from "../../../stack/wire/mod.ts";
import { stackPair } from "./_tcp_peer.ts";

/** A full GC: V8's gc() when it can be exposed at run time, else garbage until the heap settles. */
function collect(): void {
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as (() => void) | undefined;
    if (typeof gc === "function") {
      gc();
      gc();
      return;
    }
  } catch {
    // fall through
  }
  for (let i = 0; i < 20; i++) {
    let junk: unknown[] = [];
    for (let j = 0; j < 100_000; j++) junk.push({ j });
    junk = [];
    void junk;
  }
}

const N = 10_000;

Deno.test(`memory: ${N.toLocaleString("en")} idle established connections`, () => {
  const lab = stackPair();
  const { clock, a, b } = lab;
  const server: TcpConnection[] = [];
  const l = b.tcp.listen({ port: 9 });
  l.onAcceptable = () => {
    for (let c = l.accept(); c !== null; c = l.accept()) server.push(c);
  };
  const remote = parseIpv4("192.0.2.2");
  clock.advance(1000);
  collect();
  const before = Deno.memoryUsage().heapUsed;
  const client: TcpConnection[] = [];
  // In batches: the memory link carries at most 1024 frames at a time.
  for (let i = 0; i < N; i += 250) {
    for (let j = i; j < Math.min(N, i + 250); j++) client.push(a.tcp.connect({ remote, port: 9 }));
    clock.advance(1);
  }
  clock.advance(5000); // delayed ACKs and every handshake timer are done
  assert.equal(client.length, N);
  assert.equal(server.length, N, "every connection was accepted");
  assert.equal(b.stats.tcp.synCookiesSent, 0, "no SYN cookies were needed");
  for (const c of [...client, ...server]) {
    const i = c.info();
    assert.equal(i.state, "ESTAB");
    assert.equal(i.bufferBytes, 0, "an idle connection holds no ring store");
  }
  collect();
  const after = Deno.memoryUsage().heapUsed;
  const perSide = (after - before) / (2 * N);
  console.log(`heap per idle connection (one side): ${perSide.toFixed(0)} bytes`);
  assert.ok(perSide > 0, "the measure saw the connections");
  assert.ok(perSide <= 4096, `${perSide.toFixed(0)} bytes per idle connection side (goal ≤ 4 KiB)`);
  // A connection that moved data gives its store back once idle again.
  const c0 = client[0]!, s0 = server[0]!;
  c0.setNoDelay(true);
  assert.equal(c0.write(new Uint8Array(10_000)), 10_000);
  assert.ok(c0.info().bufferBytes > 0);
  clock.advance(100);
  assert.equal(s0.readable, 10_000);
  assert.ok(s0.info().bufferBytes > 0);
  s0.read(new Uint8Array(10_000));
  clock.advance(100);
  assert.equal(c0.info().bufferBytes, 0, "the send ring is released once acknowledged");
  assert.equal(s0.info().bufferBytes, 0, "the receive ring is released once read");
  lab.close();
});
