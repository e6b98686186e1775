/**
 * `tapir show sockets`: the control socket's answer and its `ss -tani`
 * text, from two in-memory stacks with a listener and a connection.
 */
import assert from "node:assert/strict";
import { controlAnswer } from "../../cmd/control.ts";
import { formatSockets } from "../../cmd/_show_text.ts";
import { drive, tcpLab } from "../stack/transport/_tcp_lab.ts";

Deno.test("show sockets: listeners and connections as ss -tani shows them", async () => {
  const lab = tcpLab();
  const { clock, a, b } = lab;
  const l4 = b.listen({ hostname: "0.0.0.0", port: 80 });
  const l6 = b.listen({ hostname: "2001:db8::2", port: 443, backlog: 16 });
  const accepted = l4.accept();
  const conn = await drive(clock, a.connect({ hostname: "192.0.2.2", port: 80 }));
  const server = await drive(clock, accepted);
  await conn.write(new Uint8Array(1000));
  await drive(clock, server.read(new Uint8Array(10)), 1000); // 10 read, 990 left queued
  clock.advance(100);

  // deno-lint-ignore no-explicit-any
  const answer = controlAnswer(b, "sockets") as any;
  const rows = answer.tcp as { state: string; local: string; peer: string; recv_q: number }[];
  assert.deepEqual(rows.map((r) => [r.state, r.local, r.peer]), [
    ["LISTEN", "0.0.0.0:80", "0.0.0.0:*"],
    ["LISTEN", "[2001:db8::2]:443", "[::]:*"],
    ["ESTAB", "192.0.2.2:80", `192.0.2.1:${conn.localAddr.port}`],
  ]);
  assert.equal(rows[2]!.recv_q, 990);
  const text = formatSockets(answer);
  const lines = text.trimEnd().split("\n");
  assert.match(lines[0]!, /^State\s+Recv-Q\s+Send-Q\s+Local Address:Port\s+Peer Address:Port$/);
  assert.match(lines[1]!, /^LISTEN\s+0\s+4096\s+0\.0\.0\.0:80\s+0\.0\.0\.0:\*$/);
  assert.match(lines[2]!, /^LISTEN\s+0\s+16\s+\[2001:db8::2\]:443\s+\[::\]:\*$/);
  assert.match(lines[3]!, /^ESTAB\s+990\s+0\s+192\.0\.2\.2:80\s+192\.0\.2\.1:\d+$/);
  assert.match(lines[4]!, /^\t cubic wscale:7,7 ts sack rto:\d+ rtt:[\d.]+\/[\d.]+ mss:1448 /);
  assert.match(lines[4]!, /bytes_received:1000 /);

  server.close(); // unread bytes: a reset, as Linux
  clock.advance(10);
  conn.close();
  l4.close();
  l6.close();
  clock.advance(1000);
  assert.equal(formatSockets(controlAnswer(b, "sockets")), "no TCP sockets\n");
  lab.close();
});
