/**
 * Compiled chains against the plain linear walk: random rule sets (seeded)
 * of every match kind the parser accepts — addresses and prefixes of both
 * families, interfaces and `+` prefixes, protocols, ports, ranges and
 * multiport lists, TCP flags, ICMP types, ctstate, marks, limits, comments,
 * named sets, each with `!` where iptables takes it — with jumps into user
 * chains, RETURN, LOG, MARK and REJECT, run through two firewalls built
 * from one config: one walking its chains' compiled index, one testing
 * every rule in turn. Every packet's verdict and mark, every rule's and
 * policy's counters, the LOG lines and the firewall counters must be
 * identical. Sets change and the clock moves between packets.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { parseRule, RuleError } from "../../../config/rule.ts";
import { Firewall, parseSetEntry } from "../../../stack/firewall/mod.ts";
import { SeededRandom } from "../../../stack/random.ts";
import { parseIpv4, parseIpv6 } from "../../../stack/wire/mod.ts";
import { triangle } from "../../topology/_topology.ts";
import { type Pkt, run } from "./_packets.ts";

/** Addresses packets use and rules' prefixes are cut from. */
const V4 = [
  "192.0.2.1",
  "192.0.2.10",
  "192.0.2.200",
  "198.51.100.1",
  "198.51.100.10",
  "198.51.100.77",
  "203.0.113.5",
  "203.0.113.250",
];
const V6 = [
  "2001:db8::1",
  "2001:db8::10",
  "2001:db8:1::5",
  "2001:db8:1:2::3",
  "2001:db8:ff::1",
  "fd00::1",
  "fd00:1::9",
];
const V4_LENS = [8, 16, 20, 24, 25, 28, 32, 32, 32];
const V6_LENS = [16, 32, 48, 56, 64, 96, 127, 128, 128];
const PORTS = [22, 53, 80, 443, 1000, 1001, 1005, 8080, 40000, 65535];
const IFACES = ["lan0", "wan0"];
const USER = ["u0", "u1", "u2", "u3"];

/** The sets every rule set defines (names, types, families and entries drawn from the pools). */
const SETS: { name: string; type: string; family?: number; entries: string[] }[] = [
  { name: "ip4", type: "hash:ip", family: 4, entries: ["192.0.2.10", "203.0.113.5"] },
  { name: "ip6", type: "hash:ip", family: 6, entries: ["2001:db8::10", "fd00::1"] },
  { name: "net", type: "hash:net", entries: ["198.51.100.0/24", "2001:db8:1::/48"] },
  {
    name: "ipport",
    type: "hash:ip,port",
    entries: ["198.51.100.10,tcp:80", "192.0.2.10,udp:53", "2001:db8::10,443"],
  },
  { name: "netif", type: "hash:net,iface", entries: ["192.0.2.0/24,lan0", "2001:db8::/32,wan0"] },
];

class Gen {
  readonly r: SeededRandom;
  constructor(seed: number) {
    this.r = new SeededRandom(seed);
  }
  int(n: number): number {
    return this.r.uint32() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.r.float() < p;
  }
  not(p = 0.2): string {
    return this.chance(p) ? "! " : "";
  }
}

function prefix4(g: Gen): string {
  const len = g.pick(V4_LENS);
  const a = parseIpv4(g.pick(V4)) & (len === 0 ? 0 : (0xffffffff << (32 - len)));
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${len}`;
}

function prefix6(g: Gen): string {
  const len = g.pick(V6_LENS);
  const a = parseIpv6(g.pick(V6));
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, len - 8 * i));
    a[i]! &= (0xff << (8 - bits)) & 0xff;
  }
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((a[i]! << 8) | a[i + 1]!).toString(16));
  return `${w.join(":")}/${len}`;
}

function portSpec(g: Gen): string {
  const a = g.pick(PORTS), b = g.pick(PORTS);
  switch (g.int(4)) {
    case 0:
      return `${Math.min(a, b)}:${Math.max(a, b)}`;
    case 1:
      return `${a}:${Math.min(65535, a + g.int(8))}`;
    default:
      return String(a);
  }
}

function portList(g: Gen): string {
  const n = 1 + g.int(4);
  return Array.from({ length: n }, () => portSpec(g)).join(",");
}

/**
 * Matches the other firewall work may add, tried through the parser: each
 * one the parser takes goes into the mix (a rule the compiler does not
 * know is tested in order — what this test then checks).
 */
const EXTRA_MATCHES = [
  "-m iprange --src-range 192.0.2.5-192.0.2.20",
  "-m iprange ! --dst-range 198.51.100.1-198.51.100.50",
  "-m length --length 40:100",
  "-m length ! --length 0:60",
  "-m addrtype --dst-type LOCAL",
  "-m addrtype ! --src-type UNICAST",
  "-m pkttype --pkt-type unicast",
  "-m statistic --mode nth --every 3 --packet 1",
  "-m statistic --mode random --probability 0.5",
  "-m recent --name r1 --set",
  "-m recent --name r1 --rcheck --seconds 5",
  "-m recent --name r1 --update --hitcount 2",
  "-m connlimit --connlimit-above 2",
  "-m hashlimit --hashlimit-upto 5/second --hashlimit-burst 2 --hashlimit-name h1 --hashlimit-mode srcip",
  "-f",
  "! -f",
  "-p icmp --icmp-type any",
  "-s 0/0",
  "-m mac --mac-source 02:00:00:00:00:01",
  "-m connmark --mark 0x1",
  "-m connmark ! --mark 0x0/0x3",
  "-p icmpv6 --icmpv6-type any",
  "-m ttl --ttl-gt 10",
  "-m hl --hl-lt 60",
];

/** One random rule for a chain (`builtin`: which hook it sits in; `jumps`: user chains it may jump to). */
function rule(
  g: Gen,
  family: 0 | 4 | 6,
  chain: string,
  jumps: string[],
  extras: string[],
): string {
  const parts: string[] = [];
  // The rule's own family: a shared chain holds both kinds.
  let fam = family !== 0 ? family : g.chance(0.3) ? 4 : g.chance(0.4) ? 6 : 0;
  if (fam !== 0 && g.chance(0.5)) {
    parts.push(`${g.not()}-s ${fam === 4 ? prefix4(g) : prefix6(g)}`);
  }
  if (fam !== 0 && g.chance(0.5)) {
    parts.push(`${g.not()}-d ${fam === 4 ? prefix4(g) : prefix6(g)}`);
  }
  const canIn = chain !== "output", canOut = chain !== "input";
  if (canIn && g.chance(0.35)) {
    const n = g.pick([...IFACES, "lan+", "w+", "eth0", "lo", "+"]);
    parts.push(`${n === "+" ? "" : g.not()}-i ${n}`);
  }
  if (canOut && g.chance(0.3)) {
    const n = g.pick([...IFACES, "lan+", "wa+", "eth1"]);
    parts.push(`${g.not()}-o ${n}`);
  }
  const protos = ["tcp", "tcp", "udp", "udp", "47", "all"];
  if (fam !== 6) protos.push("icmp");
  if (fam !== 4) protos.push("icmpv6");
  if (g.chance(0.6)) {
    const p = g.pick(protos);
    const neg = p === "all" ? "" : g.not(0.15);
    parts.push(`${neg}-p ${p}`);
    if (p === "icmp") fam = 4;
    if (p === "icmpv6") fam = 6;
    if (neg === "" && (p === "tcp" || p === "udp")) {
      const dport = g.chance(0.5), sport = g.chance(0.25);
      if (dport) parts.push(`${g.not()}--dport ${portSpec(g)}`);
      if (sport) parts.push(`${g.not()}--sport ${portSpec(g)}`);
      if (g.chance(0.2)) {
        const which = g.pick(
          ["--ports", ...(dport ? [] : ["--dports"]), ...(sport ? [] : ["--sports"])],
        );
        parts.push(`-m multiport ${g.not()}${which} ${portList(g)}`);
      }
      if (p === "tcp" && g.chance(0.25)) {
        parts.push(g.chance(0.5) ? `${g.not()}--syn` : `${g.not()}--tcp-flags SYN,ACK,FIN SYN`);
      }
      if (p === "tcp" && chain !== "input" && g.chance(0.02)) {
        // Rewrites a SYN's MSS, goes on.
        parts.push("-j TCPMSS --set-mss 1300");
        return parts.join(" ");
      }
    }
    if (neg === "" && p === "icmp" && g.chance(0.6)) {
      parts.push(
        `${g.not()}--icmp-type ${
          g.pick(["echo-request", "echo-reply", "destination-unreachable", "3/3", "8/0"])
        }`,
      );
    }
    if (neg === "" && p === "icmpv6" && g.chance(0.6)) {
      parts.push(
        `${g.not()}--icmpv6-type ${
          g.pick(["echo-request", "echo-reply", "destination-unreachable", "128", "1/4"])
        }`,
      );
    }
  }
  if (g.chance(0.15)) {
    const s = [["NEW"], ["ESTABLISHED"], ["RELATED", "ESTABLISHED"], ["INVALID"], ["UNTRACKED"], [
      "NEW",
      "INVALID",
    ]];
    parts.push(
      g.chance(0.5)
        ? `-m conntrack ${g.not()}--ctstate ${g.pick(s).join(",")}`
        : `-m state ${g.not()}--state ${g.pick(s).join(",")}`,
    );
  }
  if (g.chance(0.1)) {
    parts.push(`-m mark ${g.not()}--mark ${g.pick(["0x1", "0x2/0x2", "0x0/0xf"])}`);
  }
  if (g.chance(0.06)) {
    parts.push(`-m limit --limit ${1 + g.int(20)}/second --limit-burst ${1 + g.int(4)}`);
  }
  if (g.chance(0.05)) parts.push(`-m comment --comment c${g.int(9)}`);
  if (g.chance(0.15)) {
    const sets = SETS.filter((s) => s.family === undefined || fam === 0 || s.family === fam);
    const s = g.pick(sets);
    const dirs = s.type.includes(",")
      ? g.pick(["src,dst", "dst,dst", "src,src", "dst", "src"])
      : g.pick(["src", "dst"]);
    parts.push(`-m set ${g.not()}--match-set ${s.name} ${dirs}`);
  }
  if (extras.length > 0 && g.chance(0.15)) parts.push(g.pick(extras));
  const targets = ["ACCEPT", "DROP", "LOG", "LOG", "MARK", "MARK", "RETURN", "REJECT"];
  for (const j of jumps) targets.push(`JUMP ${j}`, `JUMP ${j}`);
  const t = g.pick(targets);
  if (t === "LOG") parts.push(`-j LOG --log-prefix L${g.int(99)}:`);
  else if (t === "MARK") {
    parts.push(`-j MARK --set-mark ${g.pick(["0x1", "0x2", "0x3/0x1", "0x0"])}`);
  } else if (t.startsWith("JUMP ")) parts.push(`-j ${t.slice(5)}`);
  else parts.push(`-j ${t}`);
  return parts.join(" ");
}

/** The extra matches this parser takes in a forward rule. */
function acceptedExtras(): string[] {
  return EXTRA_MATCHES.filter((m) => {
    try {
      parseRule(`${m} -j ACCEPT`, { table: "filter", chain: "forward", builtin: true, family: 0 });
      return true;
    } catch (e) {
      if (e instanceof RuleError) return false;
      throw e;
    }
  });
}

/** A random `[firewall]` config: shared filter chains, both families' own, user chains, sets. */
function config(g: Gen, extras: string[]): string {
  const out: string[] = [];
  for (const s of SETS) {
    out.push(`[firewall.sets.${s.name}]`, `type = "${s.type}"`);
    if (s.family !== undefined) out.push(`family = ${s.family}`);
    out.push(`entries = ${JSON.stringify(s.entries)}`);
  }
  const sets = new Map(SETS.map((x) => [x.name, { family: (x.family ?? 0) as 0 | 4 | 6 }]));
  const chain = (family: 0 | 4 | 6, name: string, jumps: string[], n: number, policy: boolean) => {
    const builtin = !USER.includes(name);
    // A rule the parser refuses where it sits (an extra match of the wrong
    // family or chain, say) is drawn again.
    const valid = () => {
      for (;;) {
        const r = rule(g, family, name, jumps, extras);
        try {
          parseRule(r, { table: "filter", chain: name, builtin, family, sets });
          return r;
        } catch (e) {
          if (!(e instanceof RuleError)) throw e;
        }
      }
    };
    const rules = Array.from({ length: n }, () => JSON.stringify(valid()));
    const pol = policy ? `policy = "${g.pick(["accept", "drop"])}", ` : "";
    return `${name} = { ${pol}rules = [\n  ${rules.join(",\n  ")}\n] }`;
  };
  out.push("[firewall.filter]");
  for (const c of ["input", "forward", "output"]) {
    out.push(chain(0, c, USER, 10 + g.int(60), true));
  }
  USER.forEach((u, i) => out.push(chain(0, u, USER.slice(i + 1), 5 + g.int(30), false)));
  out.push("[firewall.ipv4.filter]", chain(4, "forward", [], g.int(30), true));
  out.push("[firewall.ipv6.filter]", chain(6, "forward", [], g.int(30), true));
  return out.join("\n") + "\n";
}

function randomPacket(g: Gen, recent: Pkt[]): Pkt {
  if (recent.length > 0 && g.chance(0.35)) {
    // The answer of an earlier packet: a flow conntrack knows.
    const o = g.pick(recent);
    return {
      ...o,
      src: o.dst,
      dst: o.src,
      sport: o.dport,
      dport: o.sport,
      flags: o.proto === 6 ? g.pick([0x12, 0x10, 0x18, 0x11, 0x04]) : 0,
      icmpType: o.icmpType === 8 ? 0 : o.icmpType === 128 ? 129 : o.icmpType,
      path: o.path === "fwd" ? "rev" : o.path === "rev" ? "fwd" : o.path === "in" ? "out" : "in",
    };
  }
  const family = g.chance(0.5) ? 4 : 6;
  const pool = family === 4 ? V4 : V6;
  const proto = g.pick(family === 4 ? [6, 6, 17, 17, 1, 47] : [6, 6, 17, 17, 58, 47]);
  const icmp = family === 4
    ? g.pick([[8, 0], [0, 0], [3, 3], [3, 1], [11, 0], [13, 0]])
    : g.pick([[128, 0], [129, 0], [1, 4], [1, 0], [2, 0], [3, 0]]);
  const dport = g.chance(0.7) ? g.pick(PORTS) : g.int(65536);
  return {
    family,
    src: g.pick(pool),
    dst: g.pick(pool),
    proto,
    // Some flows have one port both ways (DNS, NTP): `--ports` holds both.
    sport: g.chance(0.15) ? dport : g.chance(0.5) ? g.pick(PORTS) : 1024 + g.int(64000),
    dport,
    flags: g.pick([0x02, 0x02, 0x12, 0x10, 0x11, 0x04, 0x29, 0]),
    icmpType: icmp[0]!,
    icmpCode: icmp[1]!,
    path: g.pick(["fwd", "fwd", "fwd", "rev", "rev", "in", "out"]),
  };
}

/** A set change both firewalls make at the same point. */
function changeSets(g: Gen, fws: Firewall[]): void {
  const s = g.pick(SETS);
  const fam = s.family ?? (g.chance(0.5) ? 4 : 6);
  const addr = g.pick(fam === 4 ? V4 : V6);
  const text = s.type === "hash:ip"
    ? addr
    : s.type === "hash:net"
    ? (fam === 4 ? prefix4(g) : prefix6(g))
    : s.type === "hash:ip,port"
    ? `${addr},${g.pick(["tcp", "udp"])}:${g.pick(PORTS)}`
    : `${fam === 4 ? prefix4(g) : prefix6(g)},${g.pick(IFACES)}`;
  const add = g.chance(0.6);
  const timeout = g.chance(0.3) ? 1 + g.int(3000) : undefined;
  for (const fw of fws) {
    const set = fw.sets.get(s.name)!;
    const e = parseSetEntry(set.type, set.family, text);
    if (add) set.add(e, timeout);
    else set.delete(e);
  }
}

const ROUNDS = 24;
const PACKETS = 400;

Deno.test(`compiled chains give the linear walk's verdicts and counters (${ROUNDS} random rule sets, ${PACKETS} packets each, both families)`, () => {
  const extras = acceptedExtras();
  let matched = 0, dropped = 0, indexed = 0, always = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const g = new Gen(1000 + round);
    const text = config(g, extras);
    const spec = () => parseConfig(text).firewall;
    const ta = triangle(), tb = triangle();
    const compiled = new Firewall(ta.r, spec(), { compile: { indexFrom: 0 } });
    const linear = new Firewall(tb.r, spec(), { linear: true });
    const logs: string[][] = [[], []];
    compiled.logSink = (l) => logs[0]!.push(l);
    linear.logSink = (l) => logs[1]!.push(l);
    for (const t of [compiled.filter, compiled.filter6]) {
      for (const c of [...t.builtins.values(), ...t.userChains]) {
        assert.ok(c.index !== null || c.rules.length === 0);
        indexed += (c.index?.summary.rules ?? 0) - (c.index?.summary.always ?? 0);
        always += c.index?.summary.always ?? 0;
      }
    }
    const recent: Pkt[] = [];
    for (let i = 0; i < PACKETS; i++) {
      if (g.chance(0.03)) changeSets(g, [compiled, linear]);
      if (g.chance(0.05)) {
        const ms = g.int(1500);
        ta.clock.advance(ms);
        tb.clock.advance(ms);
      }
      const p = randomPacket(g, recent);
      if (p.path === "fwd" || p.path === "out") recent.push(p);
      if (recent.length > 50) recent.shift();
      const a = run(compiled, ta, p), b = run(linear, tb, p);
      assert.deepEqual(a, b, `round ${round}, packet ${i}: ${JSON.stringify(p)}`);
      if (!a[0]) dropped++;
    }
    assert.equal(compiled.dump(), linear.dump(), `round ${round}: counters`);
    assert.deepEqual(compiled.stats, linear.stats, `round ${round}`);
    assert.deepEqual(logs[0], logs[1], `round ${round}: LOG lines`);
    assert.equal(compiled.connections().length, linear.connections().length);
    for (const t of [compiled.filter, compiled.filter6]) {
      for (const r of t.rules()) if (r.packets > 0) matched++;
    }
  }
  // The mix exercised both outcomes, many rules, and the index (not only "always").
  assert.ok(dropped > ROUNDS * PACKETS * 0.1 && dropped < ROUNDS * PACKETS * 0.9, `${dropped}`);
  assert.ok(matched > ROUNDS * 20, `${matched} rules matched`);
  assert.ok(indexed > always, `${indexed} indexed, ${always} always`);
});

Deno.test("the index files rules by their most selective key and tests none it need not", () => {
  const rules: string[] = [];
  for (let i = 0; i < 1000; i++) {
    rules.push(`"-s 10.${i >> 8}.${i & 255}.1 -p tcp -j DROP"`);
    rules.push(`"-i lan0 -p udp --dport ${2000 + i} -j DROP"`);
  }
  rules.push(`"-m conntrack --ctstate ESTABLISHED -j ACCEPT"`);
  rules.push(`"! -s 10.0.0.0/8 -j LOG"`);
  const t = triangle();
  const fw = new Firewall(
    t.r,
    parseConfig(`[firewall.ipv4.filter]\nforward = { rules = [${rules.join(",")}] }\n`).firewall,
  );
  const ix = fw.filter.builtins.get("forward")!.index!;
  assert.deepEqual(ix.summary, {
    rules: 2002,
    always: 2,
    byDestination: 0,
    bySource: 1000,
    byPort: 1000,
    byInterface: 0,
    byProtocol: 0,
    destinationLengths: 0,
    sourceLengths: 1,
  });
  // A packet from 10.0.7.1 to UDP port 2005 gets the two always-rules, its
  // source's rule and its port's rule: four candidates of 2002.
  const p = { family: 4, src: parseIpv4("10.0.7.1"), dst: parseIpv4("198.51.100.10"), proto: 17 };
  const pos = new Int32Array(ix.maxLists), end = new Int32Array(ix.maxLists);
  const info = {
    ...p,
    hasPorts: true,
    sport: 999,
    dport: 2005,
    inNic: t.rLan,
    outNic: t.rWan,
    pkt: null,
    srcOff: 0,
    dstOff: 0,
  };
  // deno-lint-ignore no-explicit-any
  const k = ix.gather(info as any, pos, end);
  const got: number[] = [];
  for (let j = 0; j < k; j++) for (let q = pos[j]!; q < end[j]!; q++) got.push(ix.members[q]!);
  assert.deepEqual(got.sort((a, b) => a - b), [11, 14, 2000, 2001]);
});

Deno.test("a --ports rule filed under both ports is taken once when they are equal", () => {
  const t = triangle();
  const rules = [
    "-p udp -m multiport --ports 53,123 -j MARK --set-mark 0x1/0x1",
    ...Array.from({ length: 10 }, (_, i) => `-p udp --dport ${2000 + i} -j DROP`),
    "-m mark --mark 0x1 -j ACCEPT",
  ];
  const fw = new Firewall(
    t.r,
    parseConfig(
      `[firewall.filter]\nforward = { policy = "drop", rules = ${JSON.stringify(rules)} }\n`,
    )
      .firewall,
    { compile: { indexFrom: 0 } },
  );
  const chain = fw.filter.builtins.get("forward")!;
  assert.equal(chain.index!.summary.byPort, 11);
  const p: Pkt = {
    family: 4,
    src: "192.0.2.10",
    dst: "198.51.100.10",
    proto: 17,
    sport: 53,
    dport: 53,
    flags: 0,
    icmpType: 0,
    icmpCode: 0,
    path: "fwd",
  };
  assert.deepEqual(run(fw, t, p), [true, 1]);
  assert.deepEqual(chain.rules.map((r) => r.packets), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
});

Deno.test("a reload keeps the counters of rules that stay, in changed and unchanged chains", () => {
  const t = triangle();
  const cfg = (fwd: string[], input: string[]) =>
    parseConfig(
      `[firewall.filter]\nforward = { rules = ${JSON.stringify(fwd)} }\ninput = { rules = ${
        JSON.stringify(input)
      } }\n`,
    ).firewall;
  const fw = new Firewall(
    t.r,
    cfg(["-p udp -j LOG", "-p udp -j LOG", "-p tcp -j DROP"], ["-j LOG"]),
  );
  const p: Pkt = {
    family: 4,
    src: "192.0.2.10",
    dst: "198.51.100.10",
    proto: 17,
    sport: 1,
    dport: 2,
    flags: 0,
    icmpType: 0,
    icmpCode: 0,
    path: "fwd",
  };
  run(fw, t, p);
  run(fw, t, { ...p, path: "in", dst: "192.0.2.1" });
  const counts = () =>
    [fw.filter.builtins.get("forward")!, fw.filter.builtins.get("input")!].map((c) =>
      c.rules.map((r) => r.packets)
    );
  assert.deepEqual(counts(), [[1, 1, 0], [1]]);
  run(fw, t, p);
  // forward changes (a rule in front, one of the two equal rules goes); input stays.
  fw.reconfigure(cfg(["-p icmp -j DROP", "-p udp -j LOG", "-p tcp -j DROP"], ["-j LOG"]));
  assert.deepEqual(counts(), [[0, 2, 0], [1]]);
});
