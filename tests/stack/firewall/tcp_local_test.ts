/**
 * The firewall sees tapir's own TCP like any other traffic: conntrack
 * learns connections through INPUT and OUTPUT, so an INPUT policy of drop
 * with an ESTABLISHED rule lets a local client's replies in, and REJECT
 * --reject-with tcp-reset refuses a connect (both families).
 */
import assert from "node:assert/strict";
import { drive, tcpLab } from "../transport/_tcp_lab.ts";
import { firewallFrom } from "./_fw.ts";

const RULES = `
[firewall.filter]
input = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-p tcp --dport 80 -j ACCEPT",
  "-p tcp --dport 81 -j REJECT --reject-with tcp-reset",
  "-p icmp -j ACCEPT",
  "-p ipv6-icmp -j ACCEPT",
] }
`;

for (
  const [family, peer, self] of [[4, "192.0.2.1", "192.0.2.2"], [
    6,
    "2001:db8::1",
    "2001:db8::2",
  ]] as const
) {
  Deno.test(`firewall and local TCP, IPv${family}: conntrack learns it, REJECT tcp-reset refuses`, async () => {
    const lab = tcpLab();
    const { clock, a, b } = lab;
    firewallFrom(b, RULES);
    // b as a client: its SYN leaves by OUTPUT (NEW), the SYN-ACK comes back ESTABLISHED.
    const la = a.listen({ hostname: family === 4 ? "0.0.0.0" : "::", port: 5000 });
    const acc = la.accept();
    const c = await drive(clock, b.connect({ hostname: peer, port: 5000 }));
    const s = await drive(clock, acc);
    await s.write(new TextEncoder().encode("hello"));
    const buf = new Uint8Array(16);
    assert.equal(await drive(clock, c.read(buf)), 5);
    const tracked = b.firewall!.connections() as { protocol?: string; state?: string }[];
    assert.ok(
      JSON.stringify(tracked).includes("5000"),
      `conntrack holds the connection: ${JSON.stringify(tracked)}`,
    );
    // A port INPUT does not accept: the SYN is dropped, the connect times out.
    const dropped = a.connect({ hostname: self, port: 82 });
    await assert.rejects(drive(clock, dropped, 200_000, 100), Deno.errors.TimedOut);
    // The REJECTed port answers with a reset: ConnectionRefused.
    await assert.rejects(
      drive(clock, a.connect({ hostname: self, port: 81 })),
      Deno.errors.ConnectionRefused,
    );
    // The accepted port works through the policy.
    const lb = b.listen({ hostname: family === 4 ? "0.0.0.0" : "::", port: 80 });
    const acc2 = lb.accept();
    const c2 = await drive(clock, a.connect({ hostname: self, port: 80 }));
    const s2 = await drive(clock, acc2);
    await c2.write(new Uint8Array(3000));
    let got = 0;
    while (got < 3000) got += (await drive(clock, s2.read(new Uint8Array(4096))))!;
    assert.equal(got, 3000);
    for (const x of [c, s, c2, s2]) x.close();
    la.close();
    lb.close();
    clock.advance(1000);
    lab.close();
  });
}
