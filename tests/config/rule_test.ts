import assert from "node:assert/strict";
import {
  parseRule,
  type Rule,
  type RuleContext,
  RuleError,
  tokenizeRule,
} from "../../config/mod.ts";
import { formatCidr, formatIpAddress } from "../../stack/wire/mod.ts";

/** The rule with addresses as text, so cases read like the rule. */
function plain(r: Rule): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k === "text") continue;
    if ((k === "source" || k === "destination") && v) {
      out[k] = { value: formatCidr(v.value), invert: v.invert };
    } else if (k === "target" && v && "address" in v) {
      out[k] = { ...v, address: formatIpAddress(v.address) };
    } else out[k] = v;
  }
  return out;
}

const GOOD: [string, RuleContext, Record<string, unknown>][] = [
  ["-j ACCEPT", {}, { family: 0, target: { kind: "ACCEPT" } }],
  [
    "-s 192.0.2.0/24 ! -d 192.0.2.7 -j DROP",
    {},
    {
      family: 4,
      source: { value: "192.0.2.0/24", invert: false },
      destination: { value: "192.0.2.7/32", invert: true },
      target: { kind: "DROP" },
    },
  ],
  [
    "-i lan+ ! -o wan0 -j ACCEPT",
    { table: "filter", chain: "forward" },
    {
      family: 0,
      inInterface: { value: { name: "lan", prefix: true }, invert: false },
      outInterface: { value: { name: "wan0", prefix: false }, invert: true },
      target: { kind: "ACCEPT" },
    },
  ],
  [
    "-p tcp --sport 1024:65535 --dport 22 -j ACCEPT",
    {},
    {
      family: 0,
      protocol: { value: 6, invert: false },
      sourcePorts: { value: [{ min: 1024, max: 65535 }], invert: false },
      destinationPorts: { value: [{ min: 22, max: 22 }], invert: false },
      target: { kind: "ACCEPT" },
    },
  ],
  [
    "-p udp -m multiport --dports 53,67:68,123 -j ACCEPT",
    {},
    {
      family: 0,
      protocol: { value: 17, invert: false },
      destinationPorts: {
        value: [{ min: 53, max: 53 }, { min: 67, max: 68 }, { min: 123, max: 123 }],
        invert: false,
      },
      target: { kind: "ACCEPT" },
    },
  ],
  [
    "-p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
    { table: "filter", chain: "forward" },
    {
      family: 0,
      protocol: { value: 6, invert: false },
      tcpFlags: { value: { mask: 0x06, comp: 0x02 }, invert: false },
      target: { kind: "TCPMSS", mss: "pmtu" },
    },
  ],
  [
    "-p tcp ! --syn -j DROP",
    {},
    {
      family: 0,
      protocol: { value: 6, invert: false },
      tcpFlags: { value: { mask: 0x17, comp: 0x02 }, invert: true },
      target: { kind: "DROP" },
    },
  ],
  [
    "-p icmp --icmp-type echo-request -j ACCEPT",
    {},
    {
      family: 4,
      protocol: { value: 1, invert: false },
      icmpType: { value: { type: 8 }, invert: false },
      target: { kind: "ACCEPT" },
    },
  ],
  [
    "-p ipv6-icmp --icmpv6-type 1/4 -j ACCEPT",
    {},
    {
      family: 6,
      protocol: { value: 58, invert: false },
      icmpType: { value: { type: 1, code: 4 }, invert: false },
      target: { kind: "ACCEPT" },
    },
  ],
  [
    "-p icmpv6 --icmpv6-type neighbour-solicitation -j ACCEPT",
    { family: 6 },
    {
      family: 6,
      protocol: { value: 58, invert: false },
      icmpType: { value: { type: 135 }, invert: false },
      target: { kind: "ACCEPT" },
    },
  ],
  [
    "-m conntrack ! --ctstate NEW,established -j ACCEPT",
    {},
    {
      family: 0,
      ctState: { value: ["NEW", "ESTABLISHED"], invert: true },
      target: { kind: "ACCEPT" },
    },
  ],
  [
    "-m state --state RELATED -j ACCEPT",
    {},
    { family: 0, ctState: { value: ["RELATED"], invert: false }, target: { kind: "ACCEPT" } },
  ],
  [
    `-m limit --limit 6/min --limit-burst 10 -m comment --comment "rate \\"limited\\" log" -j LOG --log-prefix 'in: ' --log-level info`,
    {},
    {
      family: 0,
      limit: { count: 6, unit: "minute", perSecond: 0.1, burst: 10 },
      comment: `rate "limited" log`,
      target: { kind: "LOG", prefix: "in: ", level: 6 },
    },
  ],
  [
    "-m mark --mark 0x10/0xff -j MARK --set-mark 7",
    {},
    {
      family: 0,
      mark: { value: { value: 16, mask: 255 }, invert: false },
      target: { kind: "MARK", value: 7, mask: 0xffffffff },
    },
  ],
  ["-p 47 -j DROP", {}, {
    family: 0,
    protocol: { value: 47, invert: false },
    target: { kind: "DROP" },
  }],
  [
    "-p tcp -j REJECT --reject-with tcp-reset",
    { table: "filter", chain: "input" },
    {
      family: 0,
      protocol: { value: 6, invert: false },
      target: { kind: "REJECT", reason: "tcp-reset" },
    },
  ],
  [
    "-j REJECT --reject-with icmp6-adm-prohibited",
    { table: "filter", chain: "input" },
    { family: 6, target: { kind: "REJECT", reason: "admin-prohibited" } },
  ],
  [
    "-j REJECT",
    { table: "filter", chain: "input", family: 4 },
    { family: 4, target: { kind: "REJECT", reason: "port-unreachable" } },
  ],
  [
    "-o wan0 -p udp -j SNAT --to-source 198.51.100.2:1024-2047",
    { table: "nat", chain: "postrouting" },
    {
      family: 4,
      outInterface: { value: { name: "wan0", prefix: false }, invert: false },
      protocol: { value: 17, invert: false },
      target: { kind: "SNAT", address: "198.51.100.2", ports: { min: 1024, max: 2047 } },
    },
  ],
  [
    "-p tcp --dport 80 -j DNAT --to-destination [2001:db8::8]:8080",
    { table: "nat", chain: "prerouting" },
    {
      family: 6,
      protocol: { value: 6, invert: false },
      destinationPorts: { value: [{ min: 80, max: 80 }], invert: false },
      target: { kind: "DNAT", address: "2001:db8::8", ports: { min: 8080, max: 8080 } },
    },
  ],
  [
    "-p tcp -j MASQUERADE --to-ports 1024-65535",
    { table: "nat", chain: "postrouting" },
    {
      family: 0,
      protocol: { value: 6, invert: false },
      target: { kind: "MASQUERADE", ports: { min: 1024, max: 65535 } },
    },
  ],
  [
    "-p udp --dport 53 -j NOTRACK",
    { table: "raw", chain: "prerouting" },
    {
      family: 0,
      protocol: { value: 17, invert: false },
      destinationPorts: { value: [{ min: 53, max: 53 }], invert: false },
      target: { kind: "NOTRACK" },
    },
  ],
  ["-j my-chain", {}, { family: 0, target: { kind: "JUMP", chain: "my-chain" } }],
  ["-s ! 192.0.2.1 -j RETURN", {}, {
    family: 4,
    source: { value: "192.0.2.1/32", invert: true },
    target: { kind: "RETURN" },
  }],
  ["-p icmp", { matchOnly: true }, { family: 4, protocol: { value: 1, invert: false } }],
];

Deno.test("parseRule() builds the AST of each supported rule", async (t) => {
  for (const [text, ctx, want] of GOOD) {
    await t.step(text, () => assert.deepEqual(plain(parseRule(text, ctx)), want));
  }
});

const BAD: [string, RuleContext, string][] = [
  ["-p tcp --foo 1 -j ACCEPT", {}, `unsupported option "--foo"`],
  ["-g other", {}, `unsupported option "-g"`],
  ["-f -j DROP", {}, `unsupported option "-f"`],
  ["lan0 -j DROP", {}, `unexpected "lan0"`],
  ["-m recent --name x -j DROP", {}, `unsupported match module "recent"`],
  ["--dport 22 -j ACCEPT", {}, `option "--dport" needs "-p tcp" or "-p udp" before it`],
  ["-p icmp --dport 22 -j ACCEPT", {}, `option "--dport" needs "-p tcp" or "-p udp"`],
  ["-p tcp --dports 1,2 -j ACCEPT", {}, `option "--dports" needs "-m multiport"`],
  ["--ctstate NEW -j ACCEPT", {}, `option "--ctstate" needs "-m conntrack"`],
  ["-m conntrack --ctstate NEW,BOGUS -j ACCEPT", {}, `unknown state "BOGUS"`],
  ["-m state --state SNAT -j ACCEPT", {}, `unknown state "SNAT"`],
  ["-p tcp --dport 70000 -j ACCEPT", {}, `port "70000" is out of range`],
  ["-p tcp --dport ssh -j ACCEPT", {}, `service names are not supported`],
  ["-p tcp --dport 30:20 -j ACCEPT", {}, `runs backwards`],
  ["-p foo -j ACCEPT", {}, `unknown protocol "foo"`],
  ["-s 192.0.2.300 -j DROP", {}, `Cannot parse address "192.0.2.300": octet 4 is out of range`],
  ["-s 192.0.2.1/24 -j DROP", {}, `host bits are set`],
  ["-s 192.0.2.1,192.0.2.2 -j DROP", {}, `address lists`],
  [
    "-p icmp --icmp-type packet-too-big -j ACCEPT",
    {},
    `unknown ICMP type "packet-too-big" (it is an ICMPv6 type name)`,
  ],
  ["-p icmpv6 --icmp-type echo-request -j ACCEPT", {}, `option "--icmp-type" needs "-p icmp"`],
  ["-p tcp --tcp-flags SYN,BOGUS SYN -j DROP", {}, `unknown TCP flag "BOGUS"`],
  ["-p udp --syn -j DROP", {}, `option "--syn" needs "-p tcp"`],
  ["-m limit --limit 5/fortnight -j ACCEPT", {}, `bad --limit unit "fortnight"`],
  ['-m comment --comment "unterminated -j ACCEPT', {}, "unterminated quote"],
  ["-m mark --mark 1/2/3 -j ACCEPT", {}, `bad mark "1/2/3"`],
  [
    "-s 192.0.2.0/24 -d 2001:db8::/32 -j DROP",
    {},
    `rule mixes IPv4 ("-s 192.0.2.0/24") and IPv6 ("-d 2001:db8::/32")`,
  ],
  ["-p icmp -j ACCEPT", { family: 6 }, `"-p icmp" is IPv4 but this is an ipv6 table`],
  ["-d 2001:db8::1 -j ACCEPT", { family: 4 }, `is IPv6 but this is an ipv4 table`],
  [
    "-j REJECT --reject-with icmp-host-unreachable",
    { family: 6 },
    `is IPv4 but this is an ipv6 table`,
  ],
  ["-j REJECT --reject-with icmp-bogus", {}, `unknown --reject-with "icmp-bogus"`],
  ["-j REJECT --reject-with tcp-reset", {}, `"--reject-with tcp-reset" needs "-p tcp"`],
  ["-j ACCEPT --log-prefix x", {}, `option "--log-prefix" is not valid with target ACCEPT`],
  ["-j LOG --log-level 9", {}, `--log-level "9" is out of range`],
  ["-j MARK", {}, `target MARK needs "--set-mark`],
  ["-j SNAT", { table: "nat", chain: "postrouting" }, `target SNAT needs "--to-source ADDRESS"`],
  [
    "-j SNAT --to-source 192.0.2.1:80",
    { table: "nat", chain: "postrouting" },
    `needs "-p tcp" or "-p udp"`,
  ],
  [
    "-j DNAT --to-destination 192.0.2.1-192.0.2.9",
    { table: "nat", chain: "prerouting" },
    `address ranges`,
  ],
  [
    "-j TCPMSS --set-mss 1400",
    { table: "filter", chain: "forward" },
    `target TCPMSS needs "-p tcp"`,
  ],
  ["-p tcp -j TCPMSS", { table: "filter", chain: "forward" }, `exactly one of`],
  [
    "-j SNAT --to-source 192.0.2.1",
    { table: "nat", chain: "prerouting" },
    `target SNAT is not allowed in the nat prerouting chain`,
  ],
  [
    "-j DNAT --to-destination 192.0.2.1",
    { table: "nat", chain: "postrouting" },
    `target DNAT is not allowed`,
  ],
  [
    "-j REDIRECT",
    { table: "filter", chain: "input" },
    `target REDIRECT is not allowed in the filter input chain`,
  ],
  ["-j NOTRACK", { table: "filter", chain: "input" }, `target NOTRACK is not allowed`],
  ["-j REJECT", { table: "nat", chain: "prerouting" }, `target REJECT is not allowed`],
  ["-j DROP", { table: "nat", chain: "prerouting" }, `target DROP is not allowed in the nat table`],
  [
    "-i lan0 -j ACCEPT",
    { table: "filter", chain: "output" },
    `"-i" cannot be used in the output chain`,
  ],
  [
    "-o lan0 -j ACCEPT",
    { table: "filter", chain: "input" },
    `"-o" cannot be used in the input chain`,
  ],
  ["-p tcp", { table: "filter", chain: "input" }, `rule has no target`],
  ["-p icmp -j ACCEPT", { matchOnly: true }, `a match-only rule takes no target`],
  ["-s", {}, `option "-s" needs a value`],
  ["-s 192.0.2.1 -s 192.0.2.2 -j DROP", {}, `option "-s" given twice`],
  ["! -j ACCEPT", {}, `"!" cannot be used with "-j"`],
  ["-j ACCEPT !", {}, `"!" at the end of the rule negates nothing`],
  ["-j bad.chain", {}, `bad target "bad.chain"`],
];

Deno.test("parseRule() rejects bad rules naming the bad token", async (t) => {
  for (const [text, ctx, frag] of BAD) {
    await t.step(text, () => {
      assert.throws(
        () => parseRule(text, ctx),
        (e: unknown) => {
          assert.ok(e instanceof RuleError, String(e));
          assert.ok(e.message.includes(frag), `"${e.message}" lacks "${frag}"`);
          return true;
        },
      );
    });
  }
});

Deno.test("tokenizeRule() splits like a shell", () => {
  assert.deepEqual(tokenizeRule(`-m comment --comment "a b" -j LOG --log-prefix 'x y: '`), [
    "-m",
    "comment",
    "--comment",
    "a b",
    "-j",
    "LOG",
    "--log-prefix",
    "x y: ",
  ]);
  assert.deepEqual(tokenizeRule(`a\\ b "c\\"d" ''`), ["a b", `c"d`, ""]);
});
