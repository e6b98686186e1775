/**
 * Firewall benchmark: UDP forwarding through a router on memory links
 * (h1 → r → h2), plain versus with conntrack, MASQUERADE and 100 filter
 * rules evaluated per packet (98 that do not match, then the conntrack
 * rule), and the cost of new flows through the NAT — made (no per-source
 * budget), or dropped because their source's budget is spent.
 *
 * `deno bench bench/firewall_bench.ts`
 *
 * @module
 */
import { parseConfig } from "../config/mod.ts";
import { Firewall } from "../stack/firewall/mod.ts";
import { parseIpv4 } from "../stack/wire/mod.ts";
import { settle, triangle } from "../tests/topology/_topology.ts";
import { ping } from "../stack/mod.ts";

/** 100 filter rules: 98 that do not match (`proto`, other ports), then conntrack and the LAN rule. */
const rules = (proto: string) => [
  ...Array.from({ length: 98 }, (_, i) => `"-p ${proto} --dport ${1000 + i} -j DROP"`),
  `"-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"`,
  `"-i lan0 -o wan0 -j ACCEPT"`,
];
const toml = (proto: string, budget: number) => `
[firewall]
conntrack = { max = 65536, per_source_rate = ${budget}, per_source_burst = 1 }
[firewall.filter]
forward = { policy = "drop", rules = [${rules(proto).join(", ")}] }
[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`;

/**
 * `ruleProto`: the protocol the 98 non-matching rules name (null: no
 * firewall); `budget`: new connections a second per source (0: no limit).
 */
async function setup(ruleProto: string | null, budget = 0) {
  const t = triangle();
  if (ruleProto !== null) {
    const fw = new Firewall(t.r, parseConfig(toml(ruleProto, budget)).firewall);
    fw.install();
    t.r.firewall = fw;
  }
  // Resolve ARP both ways first.
  await settle(t.clock, ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 1 }, () => {}));
  let received = 0;
  t.h2.udp.bind(9, () => received++);
  const sock = t.h1.udp.bind(40000, () => {});
  const payload = new Uint8Array(64);
  const dst = parseIpv4("198.51.100.10");
  return {
    t,
    received: () => received,
    send(n: number, port = 9) {
      for (let i = 0; i < n; i++) sock.send(dst, port, payload);
      t.clock.advance(0);
    },
    sendFrom(srcPort: number) {
      t.h1.udp.send(srcPort, dst, 9, payload);
      t.clock.advance(0);
    },
  };
}

const plain = await setup(null);
const fw = await setup("tcp");
// The rules name UDP, the flow's own protocol: each is tested up to its port.
const fwUdp = await setup("udp");
// One new connection a second: the ping and the first flow spend it; the clock stands still.
const spent = await setup("tcp", 1);
for (const s of [plain, fw, fwUdp]) {
  s.send(4);
  if (s.received() !== 4) throw new Error(`setup broken: ${s.received()} of 4 delivered`);
}
spent.sendFrom(1);
if (spent.received() !== 0) throw new Error("setup broken: a flow over budget was delivered");
let flowPort = 1024;

Deno.bench("forward UDP, no firewall (64 packets)", { group: "forward", baseline: true }, () => {
  plain.send(64);
});

Deno.bench(
  "forward UDP, conntrack + MASQUERADE + 100 rules (64 packets)",
  { group: "forward" },
  () => {
    fw.send(64);
  },
);

Deno.bench(
  "forward UDP, conntrack + MASQUERADE + 100 rules naming UDP (64 packets)",
  { group: "forward" },
  () => {
    fwUdp.send(64);
  },
);

Deno.bench("new UDP flow through NAT (one packet each)", { group: "flows", baseline: true }, () => {
  fw.sendFrom(flowPort);
  flowPort = flowPort >= 65000 ? 1024 : flowPort + 1;
});

let spentPort = 1024;
Deno.bench(
  "new UDP flow over its source's budget, dropped (one packet each)",
  { group: "flows" },
  () => {
    spent.sendFrom(spentPort);
    spentPort = spentPort >= 65000 ? 1024 : spentPort + 1;
  },
);
