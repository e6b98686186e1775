import assert from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import { buildStack } from "../../config/build.ts";
import { applyConfig } from "../../config/reload.ts";
import { MemoryLink } from "../../link/mod.ts";
import { ManualClock } from "../../stack/mod.ts";
import { formatIpv4, formatIpv6 } from "../../stack/wire/mod.ts";
import { triangle } from "../topology/_topology.ts";
import { firewallFrom, forwardThrough, IP_OFF, tuple, udp } from "../stack/firewall/_fw.ts";

const BASE = `[router]
hostname = "gw"
forwarding = true

[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]

[interface.ra]
enabled = true
prefixes = [{ prefix = "2001:db8:1::/64" }]

[[interface]]
name = "wan0"
addresses = ["198.51.100.2/24"]

[[route]]
to = "0.0.0.0/0"
via = "198.51.100.1"
`;

function build(text: string) {
  const clock = new ManualClock();
  const sent: Uint8Array[] = [];
  const built = buildStack(parseConfig(text), {
    clock,
    openLink: (iface) => {
      const [a, b] = MemoryLink.pair({ clock });
      if (iface.name === "lan0") {
        b.attach({ deliverFrame: (f) => sent.push(f.data.slice(f.start, f.end)) });
      }
      return a;
    },
  });
  clock.advance(5000); // DAD of the link-locals, the first RAs
  return { ...built, clock, sent };
}

function routesText(stack: ReturnType<typeof build>["stack"]): string[] {
  return [
    ...stack.ipv4.routes.routes().map((r) =>
      `${formatIpv4(r.prefix)}/${r.prefixLen} ${r.source}${
        r.gateway === null ? "" : ` via ${formatIpv4(r.gateway)}`
      }`
    ),
    ...stack.ipv6.routes.routes().filter((r) => r.source === "static").map((r) =>
      `${formatIpv6(r.prefix)}/${r.prefixLen} ${r.source}`
    ),
  ].sort();
}

Deno.test("reload replaces static routes, adds and removes addresses, flips forwarding", () => {
  const b = build(BASE);
  const next = BASE.replace('via = "198.51.100.1"', 'via = "198.51.100.254"')
    .replace('"198.51.100.2/24"]', '"198.51.100.2/24", "203.0.113.1/24"]')
    .replace('"192.0.2.1/24", ', "") + `
[[route]]
to = "2001:db8:ff::/48"
type = "blackhole"
`;
  const r = applyConfig(b.stack, b.nics, parseConfig(BASE), parseConfig(next));
  assert.deepEqual(r.notApplied, []);
  assert.ok(
    r.applied.some((l) => l.includes("address 192.0.2.1/24 removed")),
    r.applied.join("\n"),
  );
  assert.ok(r.applied.some((l) => l.includes("address 203.0.113.1/24 added")));
  assert.equal(b.stack.ipv4.isLocal(0xc0000201), false);
  assert.equal(b.stack.ipv4.isLocal(0xcb007101), true);
  assert.deepEqual(routesText(b.stack), [
    "0.0.0.0/0 static via 198.51.100.254",
    "198.51.100.0/24 connected",
    "2001:db8:ff::/48 static",
    "203.0.113.0/24 connected",
  ]);
  const wan = b.nics.get("wan0")!;
  const off = applyConfig(
    b.stack,
    b.nics,
    parseConfig(next),
    parseConfig(next.replace("forwarding = true", "forwarding = false")),
  );
  assert.equal(b.stack.ipv4.nicState(wan)!.forwarding, false);
  assert.ok(off.applied.includes("interface wan0: IPv4 forwarding off"), off.applied.join("\n"));
  b.stack.close();
});

Deno.test("reload with new RA settings sends an RA with them at once", () => {
  const b = build(BASE);
  const before = b.stack.ra.stats.unsolicitedSent;
  const next = BASE.replace(
    'prefixes = [{ prefix = "2001:db8:1::/64" }]',
    'prefixes = [{ prefix = "2001:db8:2::/64" }]',
  )
    .replace('"2001:db8:1::1/64"', '"2001:db8:2::1/64"');
  b.sent.length = 0;
  const r = applyConfig(b.stack, b.nics, parseConfig(BASE), parseConfig(next));
  assert.ok(r.applied.includes("interface lan0: router advertisements with the new settings"));
  // The RA left during the reload (the memory link delivers it a tick later).
  assert.equal(b.stack.ra.stats.unsolicitedSent, before + 1);
  b.clock.advance(1);
  const ra = b.sent.find((f) => f[12] === 0x86 && f[13] === 0xdd && f[14 + 40] === 134);
  assert.ok(ra !== undefined, "an RA went out on lan0");
  const hex = [...ra!].map((x) => x.toString(16).padStart(2, "0")).join("");
  // The Prefix Information option carries 2001:db8:2::/64.
  assert.ok(hex.includes("20010db8000200000000000000000000"), hex);
  b.stack.close();
});

Deno.test("reload reports what needs a restart and leaves it as it runs", () => {
  const b = build(BASE);
  const next = BASE.replace('hostname = "gw"', 'hostname = "gw2"') + `
[[interface]]
name = "dmz0"
addresses = ["203.0.113.1/24"]
`;
  const r = applyConfig(b.stack, b.nics, parseConfig(BASE), parseConfig(next));
  assert.deepEqual(r.notApplied.sort(), ["interface dmz0 added", "router.hostname changed"]);
  assert.equal(b.stack.nics.size, 2);
  b.stack.close();
});

Deno.test("Firewall.reconfigure keeps NAT bindings and the counters of unchanged rules", () => {
  const t = triangle();
  const nat = `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`;
  const fw = firewallFrom(t.r, nat);
  const a = udp({ src: "192.0.2.10", dst: "198.51.100.10", sport: 40000, dport: 53 });
  assert.ok(forwardThrough(fw, a, t.rLan, t.rWan));
  const mapped = Number(tuple(a).split(">")[0]!.split(":")[1]);
  const next = parseConfig(
    nat + `[firewall.filter]\nforward = { rules = ["-p tcp --dport 25 -j DROP"] }\n`,
  );
  fw.reconfigure(next.firewall);
  assert.equal(fw.conntrack.size, 1);
  assert.match(fw.dump(), /\[1:\d+\] -A POSTROUTING -o wan0 -j MASQUERADE/);
  assert.match(fw.dump(), /\[0:0\] -A FORWARD -p tcp( -m tcp)? --dport 25 -j DROP/);
  // The reply to the binding made before the reload is still translated back.
  const reply = udp({ src: "198.51.100.10", dst: "198.51.100.1", sport: 53, dport: mapped });
  assert.ok(fw.prerouting(reply, IP_OFF, t.rWan, null));
  assert.equal(tuple(reply), "198.51.100.10:53>192.0.2.10:40000");
  // The new rule is in force.
  const smtp = udp({ src: "192.0.2.10", dst: "198.51.100.10", sport: 40001, dport: 25 });
  assert.ok(forwardThrough(fw, smtp, t.rLan, t.rWan), "UDP to 25 is not the TCP rule's");
});

Deno.test("reload adds and removes interfaces when it can open links", () => {
  const b = build(BASE);
  const removed: string[] = [];
  const opened: string[] = [];
  const next = BASE.replace(
    `[[interface]]
name = "wan0"
addresses = ["198.51.100.2/24"]

[[route]]
to = "0.0.0.0/0"
via = "198.51.100.1"
`,
    `[[interface]]
name = "dmz0"
addresses = ["203.0.113.1/24"]
`,
  );
  const wan = b.nics.get("wan0")!;
  const r = applyConfig(b.stack, b.nics, parseConfig(BASE), parseConfig(next), {
    openLink: (iface) => {
      opened.push(iface.name);
      return MemoryLink.pair({ clock: b.clock })[0];
    },
    removed: (name) => removed.push(name),
  });
  assert.deepEqual(r.notApplied, []);
  assert.ok(r.applied.includes("interface wan0 removed"), r.applied.join("\n"));
  assert.ok(r.applied.includes("interface dmz0 added"));
  assert.deepEqual(opened, ["dmz0"]);
  assert.deepEqual(removed, ["wan0"]);
  assert.equal(b.stack.nicByName("wan0"), undefined);
  assert.equal(b.stack.ipv4.nicState(wan), undefined);
  assert.equal(b.stack.ipv4.isLocal(0xc6336402), false);
  assert.equal(b.stack.ipv4.isLocal(0xcb007101), true);
  // Every route out of wan0 went with it; dmz0's connected route came.
  assert.deepEqual(routesText(b.stack), ["192.0.2.0/24 connected", "203.0.113.0/24 connected"]);
  // The new NIC runs: its link-local passes DAD.
  b.clock.advance(5000);
  const dmz = b.stack.nicByName("dmz0")!;
  assert.ok(b.stack.ipv6.nicState(dmz)!.addresses.every((a) => a.state === "preferred"));
  b.stack.close();
});
