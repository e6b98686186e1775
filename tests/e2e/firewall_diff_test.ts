/**
 * tapir against the kernel's iptables/ip6tables (issue #15, "differential
 * test against the kernel"): the same rule strings go to tapir's config
 * and to `iptables-restore`/`ip6tables-restore` (sets to `ipset`) of a
 * kernel router in the same topology, the same probe battery (hand-built
 * frames from fixtures/fw_diff_agent.py: TCP SYN/ACK/FIN/XMAS, UDP, ICMP
 * echo, fragments, TTL 1, spoofed LAN sources) goes through each, and per
 * probe what the server saw (addresses and ports, after NAT) and what came
 * back to the client (SYN-ACK, RST, ICMP errors and what they quote) must
 * be identical. A second test: `tapir set add` blocks a UDP stream at the
 * next packet, a reload keeps the entry, `tapir set del` lets it through.
 *
 *   tc (192.0.2.10, .20; 2001:db8:1::10, ::20) ── lan0 tapir wan0 ── ts (198.51.100.10, 2001:db8:2::10)
 *   kc (the same)                               ── lan0 kernel wan0 ── ks (the same)
 */
import assert from "node:assert/strict";
import { queryControl } from "../../cmd/control.ts";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  REPO,
  requireTool,
  run,
  startTapir,
  type Tapir,
  type Topology,
  waitFor,
  withTopology,
} from "./harness.ts";

const id = String(Deno.pid % 100000);
const LAN_TAP = `tdl${id}`, WAN_TAP = `tdw${id}`;
const AGENT = `${REPO}/tests/e2e/fixtures/fw_diff_agent.py`;
const CLIENT_MAC = "02:00:00:c1:00:10";
const C4 = "192.0.2.10", C4B = "192.0.2.20", R4 = "192.0.2.1", W4 = "198.51.100.1";
const S4 = "198.51.100.10", V4 = "203.0.113.80";
const C6 = "2001:db8:1::10", C6B = "2001:db8:1::20", R6 = "2001:db8:1::1", W6 = "2001:db8:2::1";
const S6 = "2001:db8:2::10", V6 = "2001:db8:3::80";
export const TOOLS = ["ping", "iptables", "ip6tables", "ipset", "/usr/bin/python3"];

/** A builtin chain (lower-case name, policy) or a user chain (any other name). */
interface Chain {
  policy?: "ACCEPT" | "DROP";
  rules: string[];
}
type Table = Record<string, Chain>;
type Tables = Partial<Record<"filter" | "nat" | "mangle" | "raw", Table>>;
interface NamedSet {
  name: string;
  type: string;
  family: 4 | 6;
  entries: string[];
}
/** One probe of fw_diff_agent.py (token, sport, seq and id are filled in per rule set). */
interface Probe {
  kind: "tcp" | "udp" | "udpfrag" | "echo";
  dst: string;
  src?: string;
  dport?: number;
  sport?: number;
  flags?: string;
  ack?: number;
  seq?: number;
  id?: number;
  size?: number;
  ttl?: number;
  token?: string;
}
interface RuleSet {
  name: string;
  /** Shared tables: the same rules for both families. */
  shared?: Tables;
  ipv4?: Tables;
  ipv6?: Tables;
  sets?: NamedSet[];
  /** Probes beyond the standard battery. */
  extra?: Probe[];
}

const BUILTIN: Record<string, string[]> = {
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  raw: ["PREROUTING", "OUTPUT"],
};

/** The standard battery of one family. */
function battery(v: 4 | 6): Probe[] {
  const [s, r, cb] = v === 4 ? [S4, R4, C4B] : [S6, R6, C6B];
  return [
    { kind: "tcp", dst: s, dport: 80 },
    { kind: "tcp", dst: s, dport: 22 },
    { kind: "tcp", dst: s, dport: 443 },
    { kind: "tcp", dst: s, dport: 8080 },
    { kind: "udp", dst: s, dport: 53 },
    { kind: "udp", dst: s, dport: 5353 },
    { kind: "udp", dst: s, dport: 9999 },
    { kind: "echo", dst: s },
    { kind: "echo", dst: r },
    { kind: "tcp", dst: r, dport: 22 },
    { kind: "udp", dst: r, dport: 9999 },
    { kind: "udpfrag", dst: s, dport: 7777, size: 1400 },
    { kind: "tcp", dst: s, dport: 80, flags: "A", ack: 12345 },
    { kind: "tcp", dst: s, dport: 80, flags: "F" },
    { kind: "tcp", dst: s, dport: 80, flags: "FPU" },
    { kind: "echo", dst: s, src: cb },
    { kind: "tcp", dst: s, dport: 80, src: cb },
    { kind: "udp", dst: s, dport: 9999, ttl: 1 },
  ];
}

const STATEFUL = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT",
];
const NDP_IN = [
  "-p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT",
  "-p ipv6-icmp --icmpv6-type neighbour-advertisement -j ACCEPT",
];
const times = <T>(n: number, p: T): T[] => Array.from({ length: n }, () => ({ ...p }));

export const RULE_SETS: RuleSet[] = [
  { name: "no rules but an empty nat table", ipv4: { nat: {} }, ipv6: { nat: {} } },
  {
    name: "stateful forward, policy drop",
    shared: { filter: { forward: { policy: "DROP", rules: STATEFUL } } },
  },
  {
    name: "forward allow-list by port",
    shared: {
      filter: {
        forward: {
          policy: "DROP",
          rules: [STATEFUL[0]!, "-p tcp --dport 80 -j ACCEPT", "-p udp --dport 5353 -j ACCEPT"],
        },
      },
    },
  },
  {
    name: "multiport drops",
    shared: {
      filter: {
        forward: {
          rules: [
            "-p tcp -m multiport --dports 22,443 -j DROP",
            "-p udp -m multiport --dports 53,9990:9999 -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "IPv4 REJECT --reject-with variants",
    ipv4: {
      filter: {
        forward: {
          rules: [
            "-p tcp --dport 22 -j REJECT --reject-with tcp-reset",
            "-p tcp --dport 443 -j REJECT --reject-with icmp-host-prohibited",
            "-p tcp --dport 8080 -j REJECT --reject-with icmp-proto-unreachable",
            "-p udp --dport 53 -j REJECT --reject-with icmp-net-unreachable",
            "-p udp --dport 5353 -j REJECT",
            "-p icmp --icmp-type echo-request -j REJECT --reject-with icmp-admin-prohibited",
            "-p udp --dport 7777 -j REJECT --reject-with icmp-host-unreachable",
          ],
        },
      },
    },
  },
  {
    name: "IPv6 REJECT --reject-with variants",
    ipv6: {
      filter: {
        forward: {
          rules: [
            "-p tcp --dport 22 -j REJECT --reject-with tcp-reset",
            "-p tcp --dport 443 -j REJECT --reject-with icmp6-adm-prohibited",
            "-p tcp --dport 8080 -j REJECT --reject-with icmp6-no-route",
            "-p udp --dport 53 -j REJECT --reject-with icmp6-addr-unreachable",
            "-p udp --dport 5353 -j REJECT",
            "-p ipv6-icmp --icmpv6-type echo-request -j REJECT --reject-with icmp6-port-unreachable",
          ],
        },
      },
    },
  },
  {
    name: "IPv4 input policy drop",
    ipv4: {
      filter: {
        input: {
          policy: "DROP",
          rules: [
            "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-p icmp --icmp-type echo-request -j ACCEPT",
          ],
        },
      },
    },
  },
  {
    name: "IPv6 input policy drop, NDP allowed",
    ipv6: {
      filter: {
        input: {
          policy: "DROP",
          rules: [...NDP_IN, "-p tcp --dport 22 -j REJECT --reject-with tcp-reset"],
        },
      },
    },
  },
  {
    name: "IPv4 output drops the router's own errors and resets",
    ipv4: {
      filter: {
        output: {
          rules: [
            "-p icmp --icmp-type port-unreachable -j DROP",
            "-p icmp --icmp-type time-exceeded -j DROP",
            "-p tcp --tcp-flags RST RST -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "IPv6 output drops the router's own errors",
    ipv6: {
      filter: {
        output: {
          rules: [
            "-p ipv6-icmp --icmpv6-type destination-unreachable -j DROP",
            "-p ipv6-icmp --icmpv6-type time-exceeded -j DROP",
            "-p ipv6-icmp --icmpv6-type echo-reply -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "user chains with RETURN",
    shared: {
      filter: {
        forward: { rules: ["-i lan0 -j from_lan"] },
        from_lan: {
          rules: [
            "-p tcp --dport 22 -j DROP",
            "-p udp -j udp_in",
            "-p tcp --dport 443 -j RETURN",
            "-p tcp -j REJECT --reject-with tcp-reset",
          ],
        },
        udp_in: {
          rules: ["-p udp --dport 53 -j REJECT", "-p udp --dport 5353 -j RETURN", "-j DROP"],
        },
      },
    },
  },
  {
    name: "iprange",
    ipv4: {
      filter: {
        forward: {
          rules: [
            "-m iprange --src-range 192.0.2.15-192.0.2.25 -j DROP",
            "-m iprange --dst-range 198.51.100.5-198.51.100.9 -j DROP",
          ],
        },
      },
    },
    ipv6: {
      filter: {
        forward: {
          rules: [
            "-p tcp -m iprange --src-range 2001:db8:1::15-2001:db8:1::25 -j REJECT --reject-with tcp-reset",
            "-m iprange ! --dst-range 2001:db8:2::1-2001:db8:2::ff -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "recent: the third new SSH connection in 60 s is dropped",
    shared: {
      filter: {
        forward: {
          rules: [
            // tapir demands a target where iptables takes a rule without one: --set last, with -j ACCEPT.
            "-p tcp --dport 22 -m conntrack --ctstate NEW -m recent --name ssh --rcheck --seconds 60 --hitcount 2 -j DROP",
            "-p tcp --dport 22 -m conntrack --ctstate NEW -m recent --name ssh --set -j ACCEPT",
          ],
        },
      },
    },
    extra: [
      ...times(4, { kind: "tcp", dst: S4, dport: 22 } as Probe),
      ...times(4, { kind: "tcp", dst: S6, dport: 22 } as Probe),
    ],
  },
  {
    name: "limit: echo requests 1/s, burst 3",
    ipv4: {
      filter: {
        forward: {
          rules: [
            "-p icmp --icmp-type echo-request -m limit --limit 1/second --limit-burst 3 -j ACCEPT",
            "-p icmp --icmp-type echo-request -j DROP",
          ],
        },
      },
    },
    ipv6: {
      filter: {
        forward: {
          rules: [
            "-p ipv6-icmp --icmpv6-type echo-request -m limit --limit 1/s --limit-burst 3 -j ACCEPT",
            "-p ipv6-icmp --icmpv6-type echo-request -j DROP",
          ],
        },
      },
    },
    extra: [
      ...times(5, { kind: "echo", dst: S4 } as Probe),
      ...times(5, { kind: "echo", dst: S6 } as Probe),
    ],
  },
  {
    name: "tcp-flags and --syn",
    shared: {
      filter: {
        forward: {
          rules: [
            "-p tcp --tcp-flags ALL FIN,PSH,URG -j DROP",
            "-p tcp --tcp-flags ALL NONE -j DROP",
            "-p tcp ! --syn -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset",
          ],
        },
      },
    },
    extra: [{ kind: "tcp", dst: S4, dport: 80, flags: "" }, {
      kind: "tcp",
      dst: S6,
      dport: 80,
      flags: "",
    }, { kind: "tcp", dst: S4, dport: 80, flags: "SF" }],
  },
  {
    name: "conntrack INVALID dropped",
    shared: { filter: { forward: { rules: ["-m conntrack --ctstate INVALID -j DROP"] } } },
  },
  {
    name: "state match: only NEW from the LAN, ESTABLISHED back",
    shared: {
      filter: {
        forward: {
          policy: "DROP",
          rules: [
            "-m state --state ESTABLISHED -j ACCEPT",
            "-i lan0 -m state --state NEW -p tcp --syn -j ACCEPT",
            "-i lan0 -p udp -m state --state NEW -j ACCEPT",
          ],
        },
      },
    },
  },
  {
    name: "ICMP types in forward",
    ipv4: {
      filter: {
        forward: {
          rules: [
            "-p icmp --icmp-type echo-reply -j DROP",
            "-p icmp --icmp-type destination-unreachable -j DROP",
          ],
        },
      },
    },
    ipv6: {
      filter: {
        forward: {
          rules: [
            "-p ipv6-icmp --icmpv6-type port-unreachable -j DROP",
            "-p ipv6-icmp --icmpv6-type 129 -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "--icmp-type any and -p ipv6-icmp",
    ipv4: { filter: { forward: { rules: ["-p icmp --icmp-type any -j DROP"] } } },
    ipv6: { filter: { forward: { rules: ["-p ipv6-icmp -j DROP"] } } },
  },
  {
    name: "negated addresses and ports",
    ipv4: {
      filter: {
        forward: {
          rules: [
            "-i lan0 ! -s 192.0.2.10 -j DROP",
            "-p tcp ! --dport 80 -d 198.51.100.10 -j REJECT --reject-with tcp-reset",
          ],
        },
      },
    },
    ipv6: {
      filter: {
        forward: {
          rules: [
            "-i lan0 ! -s 2001:db8:1::10 -p tcp ! --dport 80 -j DROP",
            "! -p tcp -i lan0 -s 2001:db8:1::20 -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "SNAT",
    ipv4: { nat: { postrouting: { rules: [`-o wan0 -j SNAT --to-source ${W4}`] } } },
  },
  {
    name: "MASQUERADE",
    ipv4: { nat: { postrouting: { rules: ["-o wan0 -s 192.0.2.0/24 -j MASQUERADE"] } } },
  },
  {
    name: "NAT66 MASQUERADE",
    ipv6: { nat: { postrouting: { rules: ["-o wan0 -s 2001:db8:1::/64 -j MASQUERADE"] } } },
  },
  {
    name: "NAT66 SNAT",
    ipv6: {
      nat: {
        postrouting: {
          rules: [
            `-o wan0 -p tcp -j SNAT --to-source ${W6}`,
            `-o wan0 -p udp -j SNAT --to-source [${W6}]`,
          ],
        },
      },
    },
  },
  {
    name: "MASQUERADE with --to-ports",
    ipv4: {
      nat: {
        postrouting: {
          rules: [
            "-o wan0 -p tcp -j MASQUERADE --to-ports 30000-30000",
            "-o wan0 -p udp -j MASQUERADE --to-ports 31000",
          ],
        },
      },
    },
  },
  {
    name: "DNAT port forward",
    ipv4: {
      nat: {
        prerouting: {
          rules: [
            `-d ${V4} -p tcp --dport 8080 -j DNAT --to-destination ${S4}:80`,
            `-d ${V4} -j DNAT --to-destination ${S4}`,
          ],
        },
      },
    },
    extra: [
      { kind: "tcp", dst: V4, dport: 8080 },
      { kind: "tcp", dst: V4, dport: 443 },
      { kind: "udp", dst: V4, dport: 5353 },
      { kind: "udp", dst: V4, dport: 9999 },
      { kind: "echo", dst: V4 },
    ],
  },
  {
    name: "NAT66 DNAT port forward",
    ipv6: {
      nat: {
        prerouting: {
          rules: [
            `-d ${V6} -p tcp --dport 8080 -j DNAT --to-destination [${S6}]:80`,
            `-d ${V6} -j DNAT --to-destination ${S6}`,
          ],
        },
      },
    },
    extra: [
      { kind: "tcp", dst: V6, dport: 8080 },
      { kind: "tcp", dst: V6, dport: 443 },
      { kind: "udp", dst: V6, dport: 5353 },
      { kind: "udp", dst: V6, dport: 9999 },
      { kind: "echo", dst: V6 },
    ],
  },
  {
    name: "REDIRECT to the router's ports",
    ipv4: {
      nat: {
        prerouting: {
          rules: [
            "-i lan0 -p tcp --dport 8080 -j REDIRECT --to-ports 2222",
            "-i lan0 -p udp --dport 9999 -j REDIRECT --to-ports 9998",
          ],
        },
      },
    },
    ipv6: {
      nat: {
        prerouting: {
          rules: [
            "-i lan0 -p tcp --dport 8080 -j REDIRECT --to-ports 2222",
            "-i lan0 -p udp --dport 9999 -j REDIRECT",
          ],
        },
      },
    },
  },
  {
    name: "gateway: MASQUERADE behind a stateful drop policy, both families",
    shared: {
      filter: { forward: { policy: "DROP", rules: [STATEFUL[0]!, "-i lan0 -o wan0 -j ACCEPT"] } },
    },
    ipv4: { nat: { postrouting: { rules: ["-o wan0 -j MASQUERADE"] } } },
    ipv6: { nat: { postrouting: { rules: ["-o wan0 -j MASQUERADE"] } } },
  },
  {
    name: "named sets: hash:ip and hash:net",
    sets: [{ name: "ban4", type: "hash:ip", family: 4, entries: [C4B] }, {
      name: "nets6",
      type: "hash:net",
      family: 6,
      entries: ["2001:db8:1::20/127"],
    }],
    ipv4: { filter: { forward: { rules: ["-m set --match-set ban4 src -j DROP"] } } },
    ipv6: {
      filter: {
        forward: {
          rules: [
            "-m set --match-set nets6 src -p tcp -j REJECT --reject-with tcp-reset",
            "-m set --match-set nets6 src -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "named sets: hash:ip,port",
    sets: [{
      name: "svc4",
      type: "hash:ip,port",
      family: 4,
      entries: [`${S4},tcp:22`, `${S4},udp:53`],
    }, { name: "svc6", type: "hash:ip,port", family: 6, entries: [`${S6},tcp:443`] }],
    ipv4: { filter: { forward: { rules: ["-m set --match-set svc4 dst,dst -j REJECT"] } } },
    ipv6: { filter: { forward: { rules: ["-m set ! --match-set svc6 dst,dst -p tcp -j DROP"] } } },
  },
  {
    name: "mac source",
    shared: {
      filter: {
        forward: {
          rules: [
            `-m mac --mac-source ${CLIENT_MAC} -p tcp --dport 443 -j DROP`,
            "-m mac ! --mac-source 02:00:00:00:00:01 -p udp --dport 53 -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "length and fragments",
    ipv4: {
      filter: {
        forward: { rules: ["-p udp -m length --length 1000:65535 -j DROP", "-f -j DROP"] },
      },
    },
    ipv6: { filter: { forward: { rules: ["-p udp -m length --length 0:100 -j DROP"] } } },
  },
  {
    name: "raw NOTRACK and UNTRACKED",
    shared: {
      raw: {
        prerouting: {
          rules: ["-p udp --dport 53 -j CT --notrack", "-p tcp --dport 443 -j NOTRACK"],
        },
      },
      filter: {
        forward: {
          rules: [
            "-m conntrack --ctstate UNTRACKED -p tcp -j REJECT --reject-with tcp-reset",
            "-m conntrack --ctstate UNTRACKED -j DROP",
          ],
        },
      },
    },
  },
  {
    name: "statistic nth and connlimit",
    ipv4: {
      filter: {
        forward: {
          rules: [
            "-p icmp -m statistic --mode nth --every 2 --packet 0 -j DROP",
            "-p tcp --syn --dport 80 -m connlimit --connlimit-above 2 -j DROP",
          ],
        },
      },
    },
    ipv6: {
      filter: {
        forward: {
          rules: [
            "-p ipv6-icmp --icmpv6-type echo-request -m statistic --mode nth --every 3 --packet 1 -j DROP",
          ],
        },
      },
    },
    extra: [
      ...times(4, { kind: "echo", dst: S4 } as Probe),
      ...times(4, { kind: "echo", dst: S6 } as Probe),
      ...times(4, { kind: "tcp", dst: S4, dport: 80, src: "192.0.2.30" } as Probe),
    ],
  },
  {
    name: "addrtype and mangle MARK matched in filter",
    shared: {
      mangle: { prerouting: { rules: ["-p udp --dport 53 -j MARK --set-mark 0x7"] } },
      filter: {
        forward: {
          rules: [
            "-m mark --mark 0x7 -j DROP",
            "-m addrtype --dst-type UNICAST -p tcp --dport 443 -j DROP",
          ],
        },
        input: { rules: ["-m addrtype --dst-type LOCAL -p tcp -j REJECT --reject-with tcp-reset"] },
      },
    },
  },
];

/** tapir's TOML for `rs`. */
function tapirConfig(rs: RuleSet): string {
  const lines = [`[router]
hostname = "fwdiff"
forwarding = true
icmp = { rate_limit = 100000, burst = 10000 }

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"
addresses = ["${R4}/24", "${R6}/64"]

[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
addresses = ["${W4}/24", "${W6}/64"]
`];
  for (const s of rs.sets ?? []) {
    lines.push(
      `[firewall.sets.${s.name}]\ntype = "${s.type}"\nfamily = ${s.family}\nentries = ${
        JSON.stringify(s.entries)
      }\n`,
    );
  }
  const scopes: [string, Tables | undefined][] = [["", rs.shared], ["ipv4.", rs.ipv4], [
    "ipv6.",
    rs.ipv6,
  ]];
  for (const [prefix, tables] of scopes) {
    for (const [table, chains] of Object.entries(tables ?? {})) {
      if (Object.keys(chains).length === 0) continue;
      lines.push(`[firewall.${prefix}${table}]`);
      for (const [chain, c] of Object.entries(chains)) {
        const policy = c.policy ? `policy = "${c.policy.toLowerCase()}", ` : "";
        lines.push(`${chain} = { ${policy}rules = ${JSON.stringify(c.rules)} }`);
      }
      lines.push("");
    }
  }
  return lines.join("\n");
}

/** `iptables-restore` text of `rs` for family `v`: every table, so the previous set is flushed. */
function kernelRules(rs: RuleSet, v: 4 | 6): string {
  const own = v === 4 ? rs.ipv4 : rs.ipv6;
  const out: string[] = [];
  for (const table of ["raw", "mangle", "nat", "filter"] as const) {
    const chains: Record<string, Chain> = {};
    for (const t of [rs.shared?.[table], own?.[table]]) {
      for (const [name, c] of Object.entries(t ?? {})) {
        const k = BUILTIN[table]!.includes(name.toUpperCase()) ? name.toUpperCase() : name;
        const prev = chains[k];
        chains[k] = {
          policy: c.policy ?? prev?.policy,
          rules: [...(prev?.rules ?? []), ...c.rules],
        };
      }
    }
    out.push(`*${table}`);
    for (const b of BUILTIN[table]!) out.push(`:${b} ${chains[b]?.policy ?? "ACCEPT"} [0:0]`);
    for (const k of Object.keys(chains)) {
      if (!BUILTIN[table]!.includes(k)) out.push(`:${k} - [0:0]`);
    }
    for (const [k, c] of Object.entries(chains)) for (const r of c.rules) out.push(`-A ${k} ${r}`);
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}

async function sh(ns: Netns, cmd: string, timeoutMs = 20_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

/** One router under test with its client and server. */
interface Side {
  name: string;
  client: Netns;
  clientDev: string;
  server: Netns;
  serverLog: string;
  routerMac: string;
}

/** Namespace sysctls that keep the kernel's ICMP error rate limits out of the comparison. */
const NO_ICMP_LIMIT = "sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0; " +
  "sysctl -qw net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=10000 2>/dev/null; true";

/** Client and server around a router namespace's lan/wan devices (already in `client`/`server`). */
async function ends(
  topo: Topology,
  name: string,
  client: Netns,
  clientDev: string,
  server: Netns,
  serverDev: string,
  dir: string,
): Promise<Omit<Side, "routerMac">> {
  await client.ip("link", "set", "dev", clientDev, "address", CLIENT_MAC);
  for (const a of [`${C4}/24`, `${C4B}/24`]) await client.ip("addr", "add", a, "dev", clientDev);
  for (const a of [`${C6}/64`, `${C6B}/64`]) {
    await client.ip("addr", "add", a, "dev", clientDev, "nodad");
  }
  await client.ip("link", "set", clientDev, "up");
  await client.ip("route", "add", "default", "via", R4);
  await client.ip("-6", "route", "add", "default", "via", R6);
  await server.ip("addr", "add", `${S4}/24`, "dev", serverDev);
  await server.ip("addr", "add", `${S6}/64`, "dev", serverDev, "nodad");
  await server.ip("link", "set", serverDev, "up");
  await server.ip("route", "add", "default", "via", W4);
  await server.ip("-6", "route", "add", "default", "via", W6);
  // The client's own errors (to replies nobody asked for) cross the router too: never rate-limited.
  await sh(server, NO_ICMP_LIMIT);
  await sh(client, NO_ICMP_LIMIT);
  const serverLog = `${dir}/${name}-server.jsonl`;
  Deno.writeTextFileSync(serverLog, "");
  server.spawn(["/usr/bin/python3", AGENT, "server", serverDev, serverLog]);
  void topo;
  return { name, client, clientDev, server, serverLog };
}

async function routerMac(side: Omit<Side, "routerMac">): Promise<string> {
  let mac = "";
  await waitFor(`${side.name}: the router answers`, async () => {
    const p = await sh(side.client, `ping -n -c 1 -W 1 ${R4} && ping -6 -n -c 1 -W 1 ${R6}`, 5000);
    if (p.code !== 0) return false;
    const n = JSON.parse((await side.client.ip("-j", "neigh", "show", R4)).stdout);
    mac = n[0]?.lladdr ?? "";
    return mac !== "";
  }, 20_000);
  return mac;
}

/** The probes of rule set `n` with their tokens, ports, sequence numbers and ids. */
export function probesOf(n: number, rs: RuleSet): Probe[] {
  const all = [...battery(4), ...battery(6), ...(rs.extra ?? [])];
  return all.map((p, i) => ({
    ...p,
    token: `TPZ${String(n).padStart(3, "0")}-${String(i).padStart(3, "0")}`,
    sport: p.sport ?? 20000 + n * 100 + i,
    seq: (n * 1000 + i) * 1000 + 1,
    id: 1000 + n * 100 + i,
  }));
}

/** What each end saw of each probe: `server: ...` and `client: ...` lines, sorted. */
export async function battery_(side: Side, probes: Probe[], dir: string): Promise<string[][]> {
  const file = `${dir}/${side.name}-probes.json`;
  Deno.writeTextFileSync(file, JSON.stringify({ src4: C4, src6: C6, probes }));
  const logStart = Deno.statSync(side.serverLog).size;
  const r = await side.client.exec(
    [
      "/usr/bin/python3",
      AGENT,
      "client",
      side.clientDev,
      CLIENT_MAC,
      side.routerMac,
      side.routerMac,
      file,
      "0.35",
    ],
    { timeoutMs: 20_000, check: false },
  );
  assert.equal(r.code, 0, `${side.name} client agent: ${r.stderr}`);
  const answers = JSON.parse(r.stdout) as Record<string, string[]>;
  await new Promise((res) => setTimeout(res, 50));
  const text = Deno.readTextFileSync(side.serverLog);
  const lines = new TextEncoder().encode(text).slice(logStart);
  const seen = new TextDecoder().decode(lines).split("\n").filter((l) => l !== "").map((l) =>
    JSON.parse(l)
  );
  return probes.map((p, i) => {
    const server: string[] = [];
    for (const d of seen) {
      if (d.sock !== undefined) {
        if (d.token === p.token) server.push(`server: sock${d.sock} from ${d.src}:${d.sport}`);
      } else if (
        p.kind === "tcp" ? d.proto === 6 && d.seq === p.seq : d.payload?.startsWith(p.token)
      ) {
        server.push(
          d.sport === undefined
            ? `server: echo ${d.src}>${d.dst} id ${d.id}`
            : `server: ${
              d.proto === 6 ? `tcp ${d.flags}` : "udp"
            } ${d.src}:${d.sport}>${d.dst}:${d.dport}`,
        );
      }
    }
    return [...server.sort(), ...(answers[String(i)] ?? []).map((a) => `client: ${a}`).sort()];
  });
}

export function probeText(p: Probe): string {
  const what = p.kind === "echo" ? "echo" : p.kind === "tcp" ? `tcp ${p.flags ?? "S"}` : p.kind;
  return `${what} ${p.src ?? "client"}:${p.sport}>${p.dst}${p.dport ? `:${p.dport}` : ""}${
    p.ttl ? ` ttl ${p.ttl}` : ""
  }`;
}

export async function loadKernel(kr: Netns, rs: RuleSet): Promise<void> {
  for (const s of rs.sets ?? []) {
    const r = await kr.exec([
      "ipset",
      "create",
      s.name,
      s.type,
      "family",
      s.family === 4 ? "inet" : "inet6",
      "-exist",
    ]);
    assert.equal(r.code, 0, r.stderr);
    for (const e of s.entries) await kr.exec(["ipset", "add", s.name, e, "-exist"]);
  }
  for (const v of [4, 6] as const) {
    const r = await kr.exec([v === 4 ? "iptables-restore" : "ip6tables-restore"], {
      stdin: kernelRules(rs, v),
      check: false,
    });
    assert.equal(r.code, 0, `kernel ${v}: ${r.stderr}\n${kernelRules(rs, v)}`);
  }
}

export async function loadTapir(tapir: Tapir, rs: RuleSet): Promise<void> {
  Deno.writeTextFileSync(tapir.configPath, tapirConfig(rs));
  const a = await queryControl(tapir.controlPath, "reload") as { ok: boolean; errors?: string[] };
  assert.ok(a.ok, `tapir reload: ${JSON.stringify(a)}\n${tapirConfig(rs)}`);
}

/** The two routers, their ends, and a temp dir; `fn` runs with them. */
export async function withRouters(
  topo: Topology,
  fn: (
    sides: { tapir: Tapir; kr: Netns; tapirSide: Side; kernelSide: Side; dir: string },
  ) => Promise<void>,
): Promise<void> {
  const dir = topo.tempDir();
  const tr = await topo.netns("tr"), tc = await topo.netns("tc"), ts = await topo.netns("ts");
  const kr = await topo.netns("kr"), kc = await topo.netns("kc"), ks = await topo.netns("ks");
  const tapir = await startTapir({ config: tapirConfig(RULE_SETS[0]!), ns: tr, topo });
  await moveTapToNs(LAN_TAP, tr, tc, { up: false });
  await moveTapToNs(WAN_TAP, tr, ts, { up: false });
  const kcDev = `kdc${id}`, ksDev = `kds${id}`;
  await kr.ip("link", "add", "lan0", "type", "veth", "peer", "name", kcDev, "netns", kc.name);
  await kr.ip("link", "add", "wan0", "type", "veth", "peer", "name", ksDev, "netns", ks.name);
  await kr.ip("addr", "add", `${R4}/24`, "dev", "lan0");
  await kr.ip("addr", "add", `${R6}/64`, "dev", "lan0", "nodad");
  await kr.ip("addr", "add", `${W4}/24`, "dev", "wan0");
  await kr.ip("addr", "add", `${W6}/64`, "dev", "wan0", "nodad");
  await kr.ip("link", "set", "lan0", "up");
  await kr.ip("link", "set", "wan0", "up");
  await sh(kr, `sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1; ${NO_ICMP_LIMIT}`);
  const t = await ends(topo, "tapir", tc, LAN_TAP, ts, WAN_TAP, dir);
  const k = await ends(topo, "kernel", kc, kcDev, ks, ksDev, dir);
  const tapirSide = { ...t, routerMac: await routerMac(t) };
  const kernelSide = { ...k, routerMac: await routerMac(k) };
  // Every neighbor resolved once, both ways, on both sides.
  for (const s of [tapirSide, kernelSide]) {
    for (const [src, dst] of [[C4, S4], [C4B, S4], [C6, S6], [C6B, S6]]) {
      await sh(s.client, `ping -n -c 1 -W 2 -I ${src} ${dst}`, 5000);
    }
  }
  await fn({ tapir, kr, tapirSide, kernelSide, dir });
}

/** `tapir ARGS --control SOCK` as a user runs it; the result and the wall-clock time it returned. */
async function tapirCli(tapir: Tapir, ...args: string[]) {
  const r = await run([
    Deno.execPath(),
    "run",
    "-A",
    `${REPO}/main.ts`,
    ...args,
    "--control",
    tapir.controlPath,
  ], { timeoutMs: 15_000, check: false });
  return { ...r, at: Date.now() / 1000 };
}

/** `seq t_sent t_recv` lines of the receiver's log. */
function received(log: string): { seq: number; sent: number; recv: number }[] {
  return Deno.readTextFileSync(log).split("\n").filter((l) => l !== "").map((l) => {
    const [seq, sent, recv] = l.split(" ").map(Number);
    return { seq: seq!, sent: sent!, recv: recv! };
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name:
    "firewall differential e2e: every rule set, loaded into tapir and into the kernel's iptables, treats every probe the same",
  ignore: ignoreUnlessReady("firewall differential e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tfd", async (topo) => {
      await withRouters(topo, async ({ tapir, kr, tapirSide, kernelSide, dir }) => {
        const diffs: string[] = [];
        let probes = 0;
        for (const [n, rs] of RULE_SETS.entries()) {
          await Promise.all([loadTapir(tapir, rs), loadKernel(kr, rs)]);
          const ps = probesOf(n, rs);
          probes += ps.length;
          const [tp, kp] = await Promise.all([
            battery_(tapirSide, ps, dir),
            battery_(kernelSide, ps, dir),
          ]);
          for (const [i, p] of ps.entries()) {
            const a = tp[i]!.join("; ") || "nothing", b = kp[i]!.join("; ") || "nothing";
            if (a !== b) {
              diffs.push(`${n} ${rs.name} | ${probeText(p)} | tapir: ${a} | kernel: ${b}`);
            }
          }
          // Each probe's outcome is something (the battery's captures work).
          assert.ok(kp.some((o) => o.length > 0), `set ${n}: the kernel side saw nothing at all`);
        }
        assert.ok(probes > 1000, `${probes} probes`);
        assert.deepEqual(diffs, [], `${diffs.length} of ${probes} probes differ`);
      });
    });
  },
});

Deno.test({
  name:
    "firewall sets e2e: `tapir set add` blocks a flowing UDP stream at the next packet, a reload keeps it",
  ignore: ignoreUnlessReady("firewall sets e2e", ["ping", "/usr/bin/python3"]),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of ["ping", "/usr/bin/python3"]) if (!(await requireTool(tool))) return;
    await withTopology("tfs", async (topo) => {
      const dir = topo.tempDir();
      const tr = await topo.netns("tr"), tc = await topo.netns("tc"), ts = await topo.netns("ts");
      const config = tapirConfig({
        name: "banned",
        sets: [{ name: "banned", type: "hash:ip", family: 4, entries: ["192.0.2.99"] }],
        ipv4: { filter: { forward: { rules: ["-m set --match-set banned src -j DROP"] } } },
      });
      const tapir = await startTapir({ config, ns: tr, topo });
      await moveTapToNs(LAN_TAP, tr, tc, { up: false });
      await moveTapToNs(WAN_TAP, tr, ts, { up: false });
      const side = await ends(topo, "tapir", tc, LAN_TAP, ts, WAN_TAP, dir);
      await routerMac(side);
      const log = `${dir}/stream.log`;
      Deno.writeTextFileSync(log, "");
      ts.spawn(["/usr/bin/python3", AGENT, "recv", "6000", log]);
      await sleep(300);
      // 20 ms apart, 15 s at most.
      const INTERVAL = 0.02;
      tc.spawn(["/usr/bin/python3", AGENT, "stream", LAN_TAP, S4, "6000", String(INTERVAL), "750"]);
      await waitFor("the stream reaches the server", () => received(log).length >= 25, 5000);

      await t.step(
        "set add: no datagram sent after the command returned gets through",
        async () => {
          const add = await tapirCli(tapir, "set", "add", "banned", C4);
          assert.equal(add.code, 0, add.stdout + add.stderr);
          await sleep(600);
          const got = received(log);
          const late = got.filter((p) => p.sent > add.at);
          const after = got.filter((p) => p.recv > add.at);
          const before = got.filter((p) => p.recv <= add.at);
          console.log(
            `set add: ${before.length} datagrams before, ${after.length} arrived after the command returned (${late.length} sent after it)`,
          );
          assert.ok(before.length >= 25, `the stream flowed: ${before.length}`);
          assert.equal(late.length, 0, `sent after the add and delivered: ${JSON.stringify(late)}`);
          assert.ok(after.length <= 1, `more than one packet interval: ${JSON.stringify(after)}`);
        },
      );

      await t.step("reload: the entry is still listed and still blocks", async () => {
        // A changed file (a comment rule), so the reload really swaps the firewall.
        Deno.writeTextFileSync(
          tapir.configPath,
          config.replace(
            '"-m set --match-set banned src -j DROP"',
            '"-m set --match-set banned src -j DROP", "-m comment --comment reloaded -j ACCEPT"',
          ),
        );
        const r = await tapirCli(tapir, "reload");
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const l = await tapirCli(tapir, "set", "list", "banned", "--json");
        assert.equal(l.code, 0, l.stderr);
        const entries = (JSON.parse(l.stdout) as { entries: { entry: string }[] }).entries.map((
          e,
        ) => e.entry);
        assert.ok(entries.includes(C4), `listed after the reload: ${entries}`);
        assert.ok(entries.includes("192.0.2.99"), `the config's entry: ${entries}`);
        const n0 = received(log).length;
        await sleep(600);
        assert.equal(received(log).length, n0, "a datagram got through after the reload");
      });

      await t.step("set del: the stream flows again", async () => {
        const del = await tapirCli(tapir, "set", "del", "banned", C4);
        assert.equal(del.code, 0, del.stdout + del.stderr);
        await sleep(600);
        const back = received(log).filter((p) => p.sent > del.at);
        assert.ok(back.length >= 10, `after the del: ${back.length} datagrams`);
        const again = await tapirCli(tapir, "set", "del", "banned", C4);
        assert.equal(again.code, 1, "del of an entry that is not there exits 1");
      });
    });
  },
});
