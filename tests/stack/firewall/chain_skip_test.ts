/**
 * The chain walk skips a run of rules that require another protocol in one
 * step. Whatever the mix of rules, the verdict and every rule's counters
 * are those of testing each rule in turn (the reference here uses
 * CompiledRule.matches rule by rule, as iptables does).
 */
import assert from "node:assert/strict";
import { triangle } from "../../topology/_topology.ts";
import { firewallFrom, forwardThrough, icmpEcho, tcp, udp } from "./_fw.ts";
import type { PacketBuffer } from "../../../stack/wire/mod.ts";
import { PacketInfo } from "../../../stack/firewall/match.ts";

const H1 = "192.0.2.10", H2 = "198.51.100.10";

const RULES = [
  "-p tcp --dport 1 -j DROP",
  "-p tcp --dport 2 -j DROP",
  "-p udp --dport 3 -j DROP",
  "-p udp --dport 4 -j DROP",
  "-p tcp --dport 5 -j DROP",
  "! -p tcp -m mark --mark 0x7 -j DROP",
  "-p icmp --icmp-type 13 -j DROP",
  "-p tcp --dport 6 -j DROP",
  "-p udp --dport 7 -j ACCEPT",
  "-p tcp --dport 8 -j ACCEPT",
  "-p tcp -j LOG --log-prefix t",
  "-p udp --dport 9 -j ACCEPT",
  "-p icmp -j ACCEPT",
];

const PACKETS: [string, () => PacketBuffer][] = [
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].flatMap((port): [string, () => PacketBuffer][] => [
    [`tcp ${port}`, () => tcp({ src: H1, dst: H2, sport: 40000, dport: port, flags: 2 })],
    [`udp ${port}`, () => udp({ src: H1, dst: H2, sport: 40000, dport: port })],
  ]),
  ["icmp echo", () => icmpEcho({ src: H1, dst: H2, id: 7 })],
  ["icmp timestamp", () => icmpEcho({ src: H1, dst: H2, id: 8, type: 13 })],
];

Deno.test("a chain walk that skips protocol runs gives each rule's verdict and counters", () => {
  const t = triangle();
  const quoted = RULES.map((r) => `"${r}"`).join(", ");
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.filter]\nforward = { policy = "drop", rules = [${quoted}] }\n`,
  );
  const chain = fw.filter.builtins.get("forward")!;
  const expected = chain.rules.map(() => 0);
  const p = new PacketInfo();
  for (const [name, make] of PACKETS) {
    // The reference: every rule in turn, the first terminal match decides.
    const b = make();
    p.load(b, b.networkOffset, t.rLan, t.rWan);
    let verdict = false;
    let decided = false;
    for (let i = 0; i < chain.rules.length && !decided; i++) {
      const r = chain.rules[i]!;
      if (!r.matches(p)) continue;
      expected[i]!++;
      const k = r.rule.target!.kind;
      if (k === "ACCEPT" || k === "DROP") {
        verdict = k === "ACCEPT";
        decided = true;
      }
    }
    assert.equal(forwardThrough(fw, make(), t.rLan, t.rWan), verdict, name);
  }
  assert.deepEqual(chain.rules.map((r) => r.packets), expected);
  // Every rule was hit at least once, so the runs were walked into as well as over.
  assert.ok(expected.every((n, i) => n > 0 || RULES[i]!.includes("--mark")), String(expected));
});
