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
  // No target: an accounting rule, as iptables takes it.
  ["-p tcp", { table: "filter", chain: "input" }, {
    family: 0,
    protocol: { value: 6, invert: false },
  }],
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
  // #15: the 0/0 and netmask address forms, --icmp-type any, -f.
  ["-s 0/0 -d 0/0 -j ACCEPT", {}, { family: 0, target: { kind: "ACCEPT" } }],
  ["-s 192.0.2.0/255.255.255.0 -j DROP", {}, {
    family: 4,
    source: { value: "192.0.2.0/24", invert: false },
    target: { kind: "DROP" },
  }],
  ["-p icmp --icmp-type any -j ACCEPT", {}, {
    family: 4,
    protocol: { value: 1, invert: false },
    icmpType: { value: { type: 255 }, invert: false },
    target: { kind: "ACCEPT" },
  }],
  ["! -f -j ACCEPT", {}, { family: 4, fragment: { invert: true }, target: { kind: "ACCEPT" } }],
  [
    "-p tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name SSH",
    { matchOnly: true },
    {
      family: 0,
      protocol: { value: 6, invert: false },
      destinationPorts: { value: [{ min: 22, max: 22 }], invert: false },
      ctState: { value: ["NEW"], invert: false },
      recent: {
        name: "SSH",
        mode: "set",
        seconds: 0,
        reap: false,
        hitcount: 0,
        rttl: false,
        side: "src",
        invert: false,
      },
      stateful: ["recent"],
    },
  ],
  [
    "-m recent ! --update --seconds 60 --hitcount 4 --rttl --rdest --reap --mask 255.255.255.0 -j DROP",
    {},
    {
      family: 4,
      recent: {
        name: "DEFAULT",
        mode: "update",
        seconds: 60,
        reap: true,
        hitcount: 4,
        rttl: true,
        side: "dst",
        invert: true,
        mask: { family: 4, address: 0xffffff00 },
      },
      stateful: ["recent"],
      target: { kind: "DROP" },
    },
  ],
  [
    "-m addrtype --dst-type LOCAL,BROADCAST ! --src-type MULTICAST --limit-iface-in -j ACCEPT",
    { table: "filter", chain: "input" },
    {
      family: 0,
      addrType: {
        limitIn: true,
        limitOut: false,
        dst: { value: 4 | 8, invert: false },
        src: { value: 32, invert: true },
      },
      target: { kind: "ACCEPT" },
    },
  ],
  ["-m iprange ! --src-range 192.0.2.10-192.0.2.20 -j DROP", {}, {
    family: 4,
    ipRange: {
      src: {
        value: { from: { family: 4, address: 0xc000020a }, to: { family: 4, address: 0xc0000214 } },
        invert: true,
      },
    },
    target: { kind: "DROP" },
  }],
  [
    "-p tcp --syn -m connlimit --connlimit-above 10 --connlimit-mask 24 -j REJECT --reject-with tcp-reset",
    { table: "filter", chain: "input" },
    {
      family: 0,
      protocol: { value: 6, invert: false },
      tcpFlags: { value: { mask: 0x17, comp: 0x02 }, invert: false },
      connlimit: { limit: 10, above: true, side: "src", invert: false, prefixLen: 24 },
      stateful: ["connlimit"],
      target: { kind: "REJECT", reason: "tcp-reset" },
    },
  ],
  [
    "-m hashlimit --hashlimit-upto 5/min --hashlimit-burst 10 --hashlimit-mode srcip,dstport --hashlimit-name h1 --hashlimit-htable-expire 30000 -j ACCEPT",
    {},
    {
      family: 0,
      hashlimit: {
        name: "h1",
        count: 5,
        unit: "minute",
        perSecond: 5 / 60,
        burst: 10,
        above: false,
        mode: ["srcip", "dstport"],
        expireMs: 30000,
        max: 65536,
      },
      stateful: ["hashlimit"],
      target: { kind: "ACCEPT" },
    },
  ],
  ["-m statistic --mode random ! --probability 0.25 -j DROP", {}, {
    family: 0,
    statistic: { mode: "random", probability: 0.25, invert: true },
    stateful: ["statistic"],
    target: { kind: "DROP" },
  }],
  ["-m statistic --mode nth --every 3 --packet 1 -j ACCEPT", {}, {
    family: 0,
    statistic: { mode: "nth", every: 3, packet: 1, invert: false },
    stateful: ["statistic"],
    target: { kind: "ACCEPT" },
  }],
  ["-m pkttype ! --pkt-type broadcast -m length --length 0:64 -j ACCEPT", {}, {
    family: 0,
    pktType: { value: "broadcast", invert: true },
    length: { value: { min: 0, max: 64 }, invert: false },
    target: { kind: "ACCEPT" },
  }],
  ["-m mac ! --mac-source 02:00:5e:00:00:01 -j DROP", { table: "filter", chain: "input" }, {
    family: 0,
    macSource: { value: Uint8Array.of(2, 0, 0x5e, 0, 0, 1), invert: true },
    target: { kind: "DROP" },
  }],
  ["-m mark --mark 1 -m connmark ! --mark 0x2/0xff -j ACCEPT", {}, {
    family: 0,
    mark: { value: { value: 1, mask: 0xffffffff }, invert: false },
    connmark: { value: { value: 2, mask: 0xff }, invert: true },
    target: { kind: "ACCEPT" },
  }],
  ["-j MARK --set-xmark 0x1/0xff", {}, {
    family: 0,
    target: { kind: "MARK", value: 1, mask: 0xff },
  }],
  ["-j MARK --set-mark 0x1/0xf0", {}, {
    family: 0,
    target: { kind: "MARK", value: 1, mask: 0xf1 },
  }],
  ["-j MARK --and-mark 0x3", {}, {
    family: 0,
    target: { kind: "MARK", value: 0, mask: 0xfffffffc },
  }],
  ["-j MARK --or-mark 4", {}, { family: 0, target: { kind: "MARK", value: 4, mask: 4 } }],
  ["-j MARK --xor-mark 5", {}, { family: 0, target: { kind: "MARK", value: 5, mask: 0 } }],
  ["-j CONNMARK --save-mark --mask 0xff", { table: "mangle", chain: "postrouting" }, {
    family: 0,
    target: { kind: "CONNMARK", mode: "save", value: 0, ctMask: 0xff, nfMask: 0xff },
  }],
  ["-j CONNMARK --restore-mark --nfmask 0xf --ctmask 0xff", {
    table: "mangle",
    chain: "prerouting",
  }, {
    family: 0,
    target: { kind: "CONNMARK", mode: "restore", value: 0, ctMask: 0xff, nfMask: 0xf },
  }],
  ["-j CONNMARK --set-mark 7", {}, {
    family: 0,
    target: { kind: "CONNMARK", mode: "set", value: 7, ctMask: 0xffffffff, nfMask: 0xffffffff },
  }],
  ["-j DSCP --set-dscp-class EF", { table: "mangle", chain: "forward" }, {
    family: 0,
    target: { kind: "DSCP", dscp: 0x2e },
  }],
  ["-j TOS --set-tos Minimize-Delay", { table: "mangle", chain: "output" }, {
    family: 0,
    target: { kind: "TOS", value: 0x10, mask: 0x3f },
  }],
  ["-j TOS --and-tos 0x0f", { table: "mangle", chain: "output" }, {
    family: 0,
    target: { kind: "TOS", value: 0, mask: 0xf0 },
  }],
  ["-j TTL --ttl-dec 1", { table: "mangle", chain: "prerouting" }, {
    family: 4,
    target: { kind: "TTL", op: "dec", value: 1 },
  }],
  ["-j HL --hl-set 64", { table: "mangle", chain: "postrouting" }, {
    family: 6,
    target: { kind: "HL", op: "set", value: 64 },
  }],
  ["-p udp --dport 53 -j CT --notrack", { table: "raw", chain: "prerouting" }, {
    family: 0,
    protocol: { value: 17, invert: false },
    destinationPorts: { value: [{ min: 53, max: 53 }], invert: false },
    target: { kind: "NOTRACK" },
  }],
  [
    "-p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
    { table: "mangle", chain: "forward" },
    {
      family: 0,
      protocol: { value: 6, invert: false },
      tcpFlags: { value: { mask: 0x06, comp: 0x02 }, invert: false },
      target: { kind: "TCPMSS", mss: "pmtu" },
    },
  ],
];

Deno.test("parseRule() builds the AST of each supported rule", async (t) => {
  for (const [text, ctx, want] of GOOD) {
    await t.step(text, () => assert.deepEqual(plain(parseRule(text, ctx)), want));
  }
});

const BAD: [string, RuleContext, string][] = [
  ["-p tcp --foo 1 -j ACCEPT", {}, `unsupported option "--foo"`],
  ["-g other", {}, `unsupported option "-g"`],
  ["lan0 -j DROP", {}, `unexpected "lan0"`],
  ["-m recent --name x -j DROP", {}, `"-m recent" needs one of "--set"`],
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
  ["-j MARK", {}, `target MARK needs exactly one of "--set-mark"`],
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
  ["-p icmp -j ACCEPT", { matchOnly: true }, `a match-only rule takes no target`],
  ["-s", {}, `option "-s" needs a value`],
  ["-s 192.0.2.1 -s 192.0.2.2 -j DROP", {}, `option "-s" given twice`],
  ["! -j ACCEPT", {}, `"!" cannot be used with "-j"`],
  ["-j ACCEPT !", {}, `"!" at the end of the rule negates nothing`],
  ["-j bad.chain", {}, `bad target "bad.chain"`],
  // #15: modules and targets without meaning in tapir say why.
  [
    "-m physdev --physdev-in eth0 -j ACCEPT",
    {},
    `match module "physdev" has no meaning in tapir: tapir has no bridges`,
  ],
  [
    "-m helper --helper ftp -j ACCEPT",
    {},
    `"helper" has no meaning in tapir: tapir has no connection tracking helpers`,
  ],
  [
    "-m owner --uid-owner 0 -j ACCEPT",
    {},
    `"owner" has no meaning in tapir: tapir does not know the process`,
  ],
  [
    "-j TPROXY --on-port 1",
    {},
    `target "TPROXY" has no meaning in tapir: tapir has no transparent`,
  ],
  ["-j ULOG", {}, `target "ULOG" has no meaning in tapir: ULOG is gone from Linux since 3.17`],
  ["-j NFQUEUE --queue-num 1", {}, `target "NFQUEUE" has no meaning in tapir`],
  ["-j CT --zone 1", { table: "raw", chain: "prerouting" }, `CT "--zone" has no meaning in tapir`],
  ["-j CT", { table: "raw", chain: "prerouting" }, `target CT needs "--notrack"`],
  ["-j CT --notrack", { table: "filter", chain: "input" }, `target NOTRACK is not allowed`],
  [
    "-j TTL --ttl-set 1",
    { table: "filter", chain: "forward" },
    `target TTL is not allowed in the filter forward chain (only in the mangle table)`,
  ],
  ["-j TTL --ttl-dec 0", { table: "mangle", chain: "forward" }, `--ttl-dec "0" is out of range`],
  ["-j HL --hl-set 1", { family: 4 }, `"-j HL" is IPv6 but this is an ipv4 table`],
  ["-m recent --set --seconds 5 -j DROP", {}, `go with "--rcheck" or "--update" (not "--set")`],
  ["-m recent --rcheck --reap -j DROP", {}, `"--reap" needs "--seconds"`],
  ["-m recent --rcheck --hitcount 300 -j DROP", {}, `--hitcount "300" is out of range`],
  ["--rcheck -j DROP", {}, `option "--rcheck" needs "-m recent" before it`],
  ["-m addrtype -j DROP", {}, `"-m addrtype" needs "--src-type" or "--dst-type"`],
  ["-m addrtype --src-type FOO -j DROP", {}, `unknown address type "FOO"`],
  [
    "-m addrtype --dst-type LOCAL --limit-iface-in -j DROP",
    { table: "filter", chain: "output" },
    `"--limit-iface-in" cannot be used in the output chain`,
  ],
  ["-m iprange --src-range 192.0.2.9-192.0.2.1 -j DROP", {}, `runs backwards`],
  ["-m iprange --src-range 192.0.2.1-2001:db8::1 -j DROP", {}, `mixes IPv4 and IPv6`],
  ["-m iprange -j DROP", {}, `"-m iprange" needs "--src-range" or "--dst-range"`],
  [
    "-m connlimit --connlimit-mask 24 -j DROP",
    {},
    `needs "--connlimit-above" or "--connlimit-upto"`,
  ],
  ["-m hashlimit --hashlimit-upto 5/s -j ACCEPT", {}, `"-m hashlimit" needs "--hashlimit-name"`],
  ["-m hashlimit --hashlimit-upto 1kb/s --hashlimit-name x -j ACCEPT", {}, `hashlimit in bytes`],
  [
    "-m hashlimit --hashlimit-name x -j ACCEPT",
    {},
    `needs "--hashlimit-upto" or "--hashlimit-above"`,
  ],
  [
    "-m hashlimit --hashlimit-upto 5/s --hashlimit-mode srcmac --hashlimit-name x -j ACCEPT",
    {},
    `bad --hashlimit-mode "srcmac"`,
  ],
  ["-m statistic --mode random -j DROP", {}, `"--mode random" needs "--probability"`],
  [
    "-m statistic --mode nth --every 2 --packet 2 -j DROP",
    {},
    `"--packet" must be below "--every" (2)`,
  ],
  ["-m statistic --mode random --probability 1.5 -j DROP", {}, `is not a number from 0 to 1`],
  [
    "-m statistic --mode nth --probability 0.5 --every 2 -j DROP",
    {},
    `"--probability" goes with "--mode random"`,
  ],
  ["-m mac --mac-source 02:00 -j DROP", {}, `bad --mac-source "02:00"`],
  [
    "-m mac --mac-source 02:00:00:00:00:01 -j DROP",
    { table: "filter", chain: "output" },
    `"--mac-source" cannot be used in the output chain`,
  ],
  ["-m length --length 100:50 -j DROP", {}, `--length "100:50" runs backwards`],
  ["-m pkttype --pkt-type anycast -j DROP", {}, `bad --pkt-type "anycast"`],
  ["--mark 1 -j DROP", {}, `option "--mark" needs "-m mark" or "-m connmark" before it`],
  ["! -s 0/0 -j DROP", {}, `"! -s 0/0" would match nothing`],
  ["-s 192.0.2.0/255.0.255.0 -j DROP", {}, `is not contiguous`],
  ["-j CONNMARK --save-mark --set-mark 1", {}, `target CONNMARK needs exactly one of`],
  [
    "-j CONNMARK --set-mark 1 --mask 0xff",
    {},
    `"--mask" goes with "--save-mark" or "--restore-mark"`,
  ],
  [
    "-j DSCP --set-dscp 64",
    { table: "mangle", chain: "forward" },
    `--set-dscp "64" is out of range`,
  ],
  [
    "-j DSCP --set-dscp-class AF99",
    { table: "mangle", chain: "forward" },
    `unknown DSCP class "AF99"`,
  ],
  ["-j MARK --set-mark 1 --or-mark 2", {}, `target MARK needs exactly one of`],
  ["-p icmpv6 --icmpv6-type any -j ACCEPT", {}, `unknown ICMPv6 type "any"`],
  ["-f -d 2001:db8::1 -j DROP", {}, `rule mixes IPv4 ("-f") and IPv6`],
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
