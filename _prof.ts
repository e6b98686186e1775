import { parseConfig } from "./config/mod.ts";
import { Firewall } from "./stack/firewall/mod.ts";
import { parseIpv4 } from "./stack/wire/mod.ts";
import { settle, triangle } from "./tests/topology/_topology.ts";
import { ping } from "./stack/mod.ts";
const RULES = [
  ...Array.from({ length: 98 }, (_, i) => `"-p tcp --dport ${1000 + i} -j DROP"`),
  `"-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"`,
  `"-i lan0 -o wan0 -j ACCEPT"`,
];
const TOML = `
[firewall]
conntrack = { max = 65536 }
[firewall.filter]
forward = { policy = "drop", rules = [${RULES.join(", ")}] }
[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`;
const t = triangle();
const fw = new Firewall(t.r, parseConfig(TOML).firewall);
fw.install();
t.r.firewall = fw;
await settle(t.clock, ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 1 }, () => {}));
let received = 0;
t.h2.udp.bind(9, () => received++);
const sock = t.h1.udp.bind(40000, () => {});
const payload = new Uint8Array(64);
const dst = parseIpv4("198.51.100.10");
const t0 = performance.now();
for (let k = 0; k < 3000; k++) {
  for (let i = 0; i < 64; i++) sock.send(dst, 9, payload);
  t.clock.advance(0);
}
console.log(received, (performance.now() - t0).toFixed(0), "ms");
