import assert from "node:assert/strict";
import {
  type CandidateAddress,
  commonPrefixLen,
  compareSourceAddresses,
  DEFAULT_POLICY_TABLE,
  type DestinationRoute,
  labelOf,
  NO_LABEL,
  policyLookup,
  policyTable,
  precedenceOf,
  selectionScope,
  selectSourceAddress,
  sortDestinations,
  sortDestinationsDetailed,
  type SourceSelectionOptions,
} from "../../../stack/ipv6/address_selection.ts";
import { AddressParseError, formatIpv6, parseIpv6 } from "../../../stack/wire/ip_address.ts";

// ---------------------------------------------------------------- helpers

/** IPv6 text, or IPv4 text (taken as IPv4-mapped, as RFC 6724 §2.1 does). */
function ip(text: string): Uint8Array {
  return text.includes(":") ? parseIpv6(text) : parseIpv6(`::ffff:${text}`);
}

/** Text back: IPv4-mapped addresses print as plain IPv4 so results read like the RFC. */
function show(a: Uint8Array | null | undefined): string {
  if (a === null || a === undefined) return "none";
  const s = formatIpv6(a);
  return s.startsWith("::ffff:") && s.includes(".") ? s.slice(7) : s;
}

interface CandOpts {
  prefixLen?: number;
  nicId?: number;
  state?: CandidateAddress["state"];
  temporary?: boolean;
}

/** A candidate: /64 for IPv6, /24 (120 on the mapped form) for IPv4, preferred, on NIC 1. */
function cand(text: string, o: CandOpts = {}): CandidateAddress {
  const c: CandidateAddress = {
    address: ip(text),
    prefixLen: o.prefixLen ?? (text.includes(":") ? 64 : 120),
    nicId: o.nicId ?? 1,
    state: o.state ?? "preferred",
  };
  if (o.temporary !== undefined) c.temporary = o.temporary;
  return c;
}

const dep = (text: string) => cand(text, { state: "deprecated" });
const tmp = (text: string) => cand(text, { temporary: true });

// ---------------------------------------------------------------- policy table

Deno.test("DEFAULT_POLICY_TABLE gives RFC 6724 §2.1's precedence and label", async (t) => {
  const rows: [string, number, number][] = [
    ["::1", 50, 0],
    ["2001:db8::1", 40, 1],
    ["fe80::1", 40, 1],
    ["ff02::1", 40, 1],
    ["::ffff:192.0.2.1", 35, 4],
    ["2002:c633:6401::1", 30, 2],
    ["2001::1", 5, 5],
    ["2001:0:ffff::1", 5, 5],
    ["fd00::1", 3, 13],
    ["fc00::1", 3, 13],
    ["::192.0.2.1", 1, 3],
    ["fec0::1", 1, 11],
    ["3ffe:1::1", 1, 12],
  ];
  for (const [a, prec, label] of rows) {
    await t.step(`${a} → precedence ${prec}, label ${label}`, () => {
      assert.equal(precedenceOf(ip(a)), prec);
      assert.equal(labelOf(ip(a)), label);
    });
  }
  await t.step("the table has the nine rows of §2.1", () => {
    assert.equal(DEFAULT_POLICY_TABLE.length, 9);
  });
});

Deno.test("a custom policy table is looked up by longest match", async (t) => {
  const table = policyTable([["2001:db8::/32", 45, 20], ["2001:db8:1::/48", 46, 21]]);
  await t.step("the longer row wins", () => {
    assert.equal(policyLookup(table, ip("2001:db8:1::5"))?.label, 21);
    assert.equal(policyLookup(table, ip("2001:db8:2::5"))?.label, 20);
  });
  await t.step("no row matches: precedence 0, NO_LABEL", () => {
    assert.equal(policyLookup(table, ip("2001:db9::1")), null);
    assert.equal(precedenceOf(ip("2001:db9::1"), table), 0);
    assert.equal(labelOf(ip("2001:db9::1"), table), NO_LABEL);
  });
  await t.step("an IPv4 prefix is rejected", () => {
    assert.throws(() => policyTable([["192.0.2.0/24", 1, 1]]), RangeError);
  });
  await t.step("host bits set are rejected", () => {
    assert.throws(() => policyTable([["2001:db8::1/32", 1, 1]]), AddressParseError);
  });
});

Deno.test("selectionScope follows RFC 6724 §3.1 and §3.2", async (t) => {
  const rows: [string, number][] = [
    ["ff01::1", 0x1],
    ["ff02::1", 0x2],
    ["ff05::1", 0x5],
    ["ff08::1", 0x8],
    ["ff0e::1", 0xe],
    ["fe80::1", 0x2],
    ["::1", 0x2],
    ["fec0::1", 0x5],
    ["fd00::1", 0xe],
    ["2001:db8::1", 0xe],
    ["127.0.0.1", 0x2],
    ["169.254.13.78", 0x2],
    ["10.1.2.3", 0xe],
    ["198.51.100.121", 0xe],
  ];
  for (const [a, scope] of rows) {
    await t.step(`Scope(${a}) = ${scope}`, () => assert.equal(selectionScope(ip(a)), scope));
  }
});

Deno.test("commonPrefixLen stops at the source's prefix length (RFC 6724 §2.2)", async (t) => {
  const rows: [string, number, string, number][] = [
    ["fe80::1", 64, "fe80::2", 64],
    ["2001:db8:1::2", 64, "2001:db8:1::1", 64],
    ["2001:db8:1::2", 128, "2001:db8:1::1", 126],
    ["2001:db8:1::2", 64, "2001:db8:3::1", 46],
    ["2001:db8:3f44::2", 64, "2001:db8:3ffe::1", 40],
    ["2001:db8:1::2", 48, "2001:db8:1::1", 48],
  ];
  for (const [s, len, d, want] of rows) {
    await t.step(`CommonPrefixLen(${s}/${len}, ${d}) = ${want}`, () => {
      assert.equal(commonPrefixLen(ip(s), len, ip(d)), want);
    });
  }
});

// ---------------------------------------------------------------- §10.1

interface SourceExample {
  name: string;
  dst: string;
  cands: CandidateAddress[];
  want: string;
  /** The deciding rule as compareSourceAddresses reports it for (winner, loser). */
  rule: number;
  opts?: SourceSelectionOptions;
}

// RFC 6724 §10.1, in the RFC's order; the step names give each example's text.
const SOURCE_EXAMPLES: SourceExample[] = [
  {
    name:
      "Destination: 2001:db8:1::1; Candidate Source Addresses: 2001:db8:3::1 or fe80::1; Result: 2001:db8:3::1 (prefer appropriate scope)",
    dst: "2001:db8:1::1",
    cands: [cand("2001:db8:3::1"), cand("fe80::1")],
    want: "2001:db8:3::1",
    rule: 2,
  },
  {
    name:
      "Destination: ff05::1; Candidate Source Addresses: 2001:db8:3::1 or fe80::1; Result: 2001:db8:3::1 (prefer appropriate scope)",
    dst: "ff05::1",
    cands: [cand("2001:db8:3::1"), cand("fe80::1")],
    want: "2001:db8:3::1",
    rule: 2,
  },
  {
    name:
      "Destination: 2001:db8:1::1; Candidate Source Addresses: 2001:db8:1::1 (deprecated) or 2001:db8:2::1; Result: 2001:db8:1::1 (prefer same address)",
    dst: "2001:db8:1::1",
    cands: [dep("2001:db8:1::1"), cand("2001:db8:2::1")],
    want: "2001:db8:1::1",
    rule: 1,
  },
  {
    name:
      "Destination: fe80::1; Candidate Source Addresses: fe80::2 (deprecated) or 2001:db8:1::1; Result: fe80::2 (prefer appropriate scope)",
    dst: "fe80::1",
    cands: [dep("fe80::2"), cand("2001:db8:1::1")],
    want: "fe80::2",
    rule: 2,
  },
  {
    name:
      "Destination: 2001:db8:1::1; Candidate Source Addresses: 2001:db8:1::2 or 2001:db8:3::2; Result: 2001:db8:1::2 (longest matching prefix)",
    dst: "2001:db8:1::1",
    cands: [cand("2001:db8:1::2"), cand("2001:db8:3::2")],
    want: "2001:db8:1::2",
    rule: 8,
  },
  {
    // Rule 4 is a no-op (no Mobile IPv6): nothing marks a home address, so
    // rule 8 decides and the care-of address wins — a documented deviation.
    name:
      "Destination: 2001:db8:1::1; Candidate Source Addresses: 2001:db8:1::2 (care-of address) or 2001:db8:3::2 (home address); Result: 2001:db8:3::2 (prefer home address) — rule 4 is a no-op here, so rule 8 picks 2001:db8:1::2",
    dst: "2001:db8:1::1",
    cands: [cand("2001:db8:1::2"), cand("2001:db8:3::2")],
    want: "2001:db8:1::2",
    rule: 8,
  },
  {
    name:
      "Destination: 2002:c633:6401::1; Candidate Source Addresses: 2002:c633:6401::d5e3:7953:13eb:22e8 (temporary) or 2001:db8:1::2; Result: 2002:c633:6401::d5e3:7953:13eb:22e8 (prefer matching label)",
    dst: "2002:c633:6401::1",
    cands: [tmp("2002:c633:6401::d5e3:7953:13eb:22e8"), cand("2001:db8:1::2")],
    want: "2002:c633:6401::d5e3:7953:13eb:22e8",
    rule: 6,
  },
  {
    name:
      "Destination: 2001:db8:1::d5e3:0:0:1; Candidate Source Addresses: 2001:db8:1::2 or 2001:db8:1::d5e3:7953:13eb:22e8 (temporary); Result: 2001:db8:1::d5e3:7953:13eb:22e8 (prefer temporary address)",
    dst: "2001:db8:1::d5e3:0:0:1",
    cands: [cand("2001:db8:1::2"), tmp("2001:db8:1::d5e3:7953:13eb:22e8")],
    want: "2001:db8:1::d5e3:7953:13eb:22e8",
    rule: 7,
  },
];

Deno.test("RFC 6724 §10.1 source address selection examples", async (t) => {
  for (const ex of SOURCE_EXAMPLES) {
    await t.step(ex.name, () => {
      const d = ip(ex.dst);
      // Both orders, so the first-listed tie-break cannot hide a wrong rule.
      for (const cands of [ex.cands, [...ex.cands].reverse()]) {
        assert.equal(show(selectSourceAddress(d, cands, ex.opts)?.address), show(ip(ex.want)));
      }
      const win = ex.cands.find((c) => show(c.address) === show(ip(ex.want)))!;
      const lose = ex.cands.find((c) => c !== win)!;
      assert.equal(compareSourceAddresses(d, win, lose, ex.opts), -ex.rule);
      assert.equal(compareSourceAddresses(d, lose, win, ex.opts), ex.rule);
    });
  }
});

// ---------------------------------------------------------------- §5 rules, one at a time

interface SourceRuleCase {
  name: string;
  dst: string;
  a: CandidateAddress;
  b: CandidateAddress;
  opts?: SourceSelectionOptions;
  /** compareSourceAddresses(dst, a, b): negative prefers a, positive b; |n| is the rule. */
  want: number;
}

const SOURCE_RULES: SourceRuleCase[] = [
  {
    name: "rule 1: the destination itself wins, even deprecated and of another scope",
    dst: "fe80::1",
    a: dep("fe80::1"),
    b: cand("fe80::2"),
    want: -1,
  },
  {
    name: "rule 2: global over link-local for a global destination",
    dst: "2001:db8:9::1",
    a: cand("fe80::1"),
    b: cand("2001:db8:1::1"),
    want: 2,
  },
  {
    name: "rule 2: link-local over global for a link-local destination",
    dst: "fe80::9",
    a: cand("fe80::1"),
    b: cand("2001:db8:1::1"),
    want: -2,
  },
  {
    name: "rule 2: the smallest scope not below the destination's (site for ff05::1)",
    dst: "ff05::1",
    a: cand("fec0::1"),
    b: cand("2001:db8:1::1"),
    want: -2,
  },
  {
    name: "rule 2: both below the destination's scope, the larger wins",
    dst: "2001:db8:9::1",
    a: cand("fe80::1"),
    b: cand("fec0::1"),
    want: 2,
  },
  {
    name: "rule 2: link-local for an interface-local multicast destination",
    dst: "ff01::1",
    a: cand("fe80::1"),
    b: cand("2001:db8:1::1"),
    want: -2,
  },
  {
    name: "rule 2: an IPv4 link-local source loses to a global one (§3.2)",
    dst: "198.51.100.1",
    a: cand("169.254.1.1"),
    b: cand("192.0.2.1"),
    want: 2,
  },
  {
    name: "rule 3: a preferred address over a deprecated one",
    dst: "2001:db8:9::1",
    a: dep("2001:db8:9::2"),
    b: cand("2001:db8:1::2"),
    want: 3,
  },
  {
    name: "rule 5: an address of the outgoing NIC, ahead of a longer prefix",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1::2", { nicId: 1 }),
    b: cand("2001:db8:2::2", { nicId: 2 }),
    opts: { outNicId: 2 },
    want: 5,
  },
  {
    name: "rule 5 is skipped when the outgoing NIC is unknown",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1::2", { nicId: 1 }),
    b: cand("2001:db8:2::2", { nicId: 2 }),
    want: -8,
  },
  {
    name: "rule 5.5: an address in a prefix the next hop advertised",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1::2"),
    b: cand("2001:db8:2::2"),
    opts: { nextHopPrefixes: [{ address: ip("2001:db8:2::"), prefixLen: 64 }] },
    want: 5.5,
  },
  {
    name: "rule 6: a 6to4 source for a 6to4 destination (label 2)",
    dst: "2002:c633:6402::1",
    a: cand("2001:db8:1::2"),
    b: cand("2002:c633:6401::2"),
    want: 6,
  },
  {
    name: "rule 6: a ULA source for a ULA destination (label 13)",
    dst: "fd00:1::1",
    a: cand("fd00:2::1"),
    b: cand("2001:db8:1::2"),
    want: -6,
  },
  {
    name: "rule 6: labels from a custom policy table",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1:ffff::2"),
    b: cand("2001:db8:2::2"),
    opts: {
      policy: policyTable([["::/0", 40, 1], ["2001:db8:1::/48", 40, 7], [
        "2001:db8:2::/48",
        40,
        7,
      ]]),
    },
    // Label(D) = 7; both sources have label 7, so rule 6 ties and rule 8 decides.
    want: -8,
  },
  {
    name: "rule 6: a custom table that splits the labels decides before rule 8",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1::2"),
    b: cand("2001:db8:2::2"),
    opts: {
      policy: policyTable([["::/0", 40, 1], ["2001:db8:2::/48", 40, 1], [
        "2001:db8:1::/48",
        40,
        9,
      ]]),
    },
    want: -6,
  },
  {
    name: "rule 7: a temporary address by default (RFC 6724's default)",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1::2"),
    b: tmp("2001:db8:1::3"),
    want: 7,
  },
  {
    name: "rule 7 reversed (preferTemporary: false, like Linux's use_tempaddr=1)",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1::2"),
    b: tmp("2001:db8:1::3"),
    opts: { preferTemporary: false },
    want: -7,
  },
  {
    name: "rule 8: the longer common prefix",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:3::2"),
    b: cand("2001:db8:1::2"),
    want: 8,
  },
  {
    name: "rule 8: CommonPrefixLen is capped at the source's prefix length",
    dst: "2001:db8:1::1",
    // 126 bits in common, but its subnet is a /48: counts 48.
    a: cand("2001:db8:1::2", { prefixLen: 48 }),
    // 64 bits in common within its /64.
    b: cand("2001:db8:1:0:8000::2"),
    want: 8,
  },
  {
    name: "no rule decides: a tie",
    dst: "2001:db8:1::1",
    a: cand("2001:db8:1::2"),
    b: cand("2001:db8:1::3"),
    want: 0,
  },
];

Deno.test("RFC 6724 §5 source rules, each in isolation", async (t) => {
  for (const c of SOURCE_RULES) {
    await t.step(c.name, () => {
      const d = ip(c.dst);
      assert.equal(compareSourceAddresses(d, c.a, c.b, c.opts), c.want);
      assert.equal(compareSourceAddresses(d, c.b, c.a, c.opts), c.want === 0 ? 0 : -c.want);
      const winner = c.want <= 0 ? c.a : c.b;
      assert.equal(selectSourceAddress(d, [c.a, c.b], c.opts), winner);
      if (c.want !== 0) assert.equal(selectSourceAddress(d, [c.b, c.a], c.opts), winner);
    });
  }
  await t.step("a tie keeps the candidate listed first", () => {
    const a = cand("2001:db8:1::2"), b = cand("2001:db8:1::3");
    assert.equal(selectSourceAddress(ip("2001:db8:1::1"), [b, a]), b);
  });
  await t.step("the best of several: scope, then deprecation, then prefix", () => {
    const cands = [
      cand("fe80::1"),
      dep("2001:db8:1::5"),
      cand("2001:db8:3::2"),
      cand("2001:db8:1:0:ffff::2"),
      cand("fd00::2"),
    ];
    assert.equal(
      show(selectSourceAddress(ip("2001:db8:1::1"), cands)?.address),
      "2001:db8:1:0:ffff::2",
    );
  });
});

// ---------------------------------------------------------------- candidate set (§4)

Deno.test("the candidate set of RFC 6724 §4", async (t) => {
  await t.step("a tentative address is never chosen, even when it is the destination", () => {
    const cands = [cand("2001:db8:1::1", { state: "tentative" }), cand("2001:db8:2::1")];
    assert.equal(show(selectSourceAddress(ip("2001:db8:1::1"), cands)?.address), "2001:db8:2::1");
  });
  await t.step("a duplicate (DAD-failed) address is never chosen", () => {
    const cands = [cand("2001:db8:1::2", { state: "duplicate" }), cand("fe80::1")];
    assert.equal(show(selectSourceAddress(ip("2001:db8:1::1"), cands)?.address), "fe80::1");
  });
  await t.step("only tentative and duplicate addresses: no source", () => {
    const cands = [
      cand("2001:db8:1::2", { state: "tentative" }),
      cand("fe80::2", { state: "duplicate" }),
    ];
    assert.equal(selectSourceAddress(ip("2001:db8:1::1"), cands), null);
  });
  await t.step("no candidates: no source", () => {
    assert.equal(selectSourceAddress(ip("2001:db8:1::1"), []), null);
  });
  await t.step("a deprecated address is still a candidate when it is all there is", () => {
    assert.equal(
      show(selectSourceAddress(ip("2001:db8:1::1"), [dep("2001:db8:1::2")])?.address),
      "2001:db8:1::2",
    );
  });
  await t.step("a smaller-scope address stays a candidate (rule 2 only ranks it)", () => {
    assert.equal(
      show(selectSourceAddress(ip("2001:db8:1::1"), [cand("fe80::1")])?.address),
      "fe80::1",
    );
  });
  await t.step("IPv4-mapped candidates serve IPv4 destinations only", () => {
    const cands = [cand("192.0.2.10"), cand("2001:db8:1::2")];
    assert.equal(show(selectSourceAddress(ip("198.51.100.1"), cands)?.address), "192.0.2.10");
    assert.equal(show(selectSourceAddress(ip("2001:db8:9::1"), cands)?.address), "2001:db8:1::2");
    assert.equal(selectSourceAddress(ip("198.51.100.1"), [cand("2001:db8:1::2")]), null);
  });
  await t.step("a link-local destination takes a source of the outgoing NIC only", () => {
    const cands = [cand("fe80::1", { nicId: 1 }), cand("fe80::2", { nicId: 2 })];
    assert.equal(
      show(selectSourceAddress(ip("fe80::9"), cands, { outNicId: 2 })?.address),
      "fe80::2",
    );
    assert.equal(
      show(selectSourceAddress(ip("ff02::1"), cands, { outNicId: 2 })?.address),
      "fe80::2",
    );
    assert.equal(selectSourceAddress(ip("fe80::9"), cands, { outNicId: 3 }), null);
  });
  await t.step("a global destination may take a source of another NIC", () => {
    const cands = [cand("2001:db8:1::2", { nicId: 1 }), cand("fe80::2", { nicId: 2 })];
    assert.equal(
      show(selectSourceAddress(ip("2001:db8:9::1"), cands, { outNicId: 2 })?.address),
      "2001:db8:1::2",
    );
  });
});

// ---------------------------------------------------------------- §10.2

interface DestinationExample {
  name: string;
  cands: CandidateAddress[];
  dsts: string[];
  /** [destination, its source] best first. */
  want: [string, string][];
}

// RFC 6724 §10.2, in the RFC's order; the step names give each example's text.
const DESTINATION_EXAMPLES: DestinationExample[] = [
  {
    name:
      "Candidate Source Addresses: 2001:db8:1::2 or fe80::1 or 169.254.13.78; Destination Address List: 2001:db8:1::1 or 198.51.100.121; Result: 2001:db8:1::1 (src 2001:db8:1::2) then 198.51.100.121 (src 169.254.13.78) (prefer matching scope)",
    cands: [cand("2001:db8:1::2"), cand("fe80::1"), cand("169.254.13.78", { prefixLen: 112 })],
    dsts: ["2001:db8:1::1", "198.51.100.121"],
    want: [["2001:db8:1::1", "2001:db8:1::2"], ["198.51.100.121", "169.254.13.78"]],
  },
  {
    name:
      "Candidate Source Addresses: fe80::1 or 198.51.100.117; Destination Address List: 2001:db8:1::1 or 198.51.100.121; Result: 198.51.100.121 (src 198.51.100.117) then 2001:db8:1::1 (src fe80::1) (prefer matching scope)",
    cands: [cand("fe80::1"), cand("198.51.100.117")],
    dsts: ["2001:db8:1::1", "198.51.100.121"],
    want: [["198.51.100.121", "198.51.100.117"], ["2001:db8:1::1", "fe80::1"]],
  },
  {
    name:
      "Candidate Source Addresses: 2001:db8:1::2 or fe80::1 or 10.1.2.4; Destination Address List: 2001:db8:1::1 or 10.1.2.3; Result: 2001:db8:1::1 (src 2001:db8:1::2) then 10.1.2.3 (src 10.1.2.4) (prefer higher precedence)",
    cands: [cand("2001:db8:1::2"), cand("fe80::1"), cand("10.1.2.4")],
    dsts: ["2001:db8:1::1", "10.1.2.3"],
    want: [["2001:db8:1::1", "2001:db8:1::2"], ["10.1.2.3", "10.1.2.4"]],
  },
  {
    name:
      "Candidate Source Addresses: 2001:db8:1::2 or fe80::2; Destination Address List: 2001:db8:1::1 or fe80::1; Result: fe80::1 (src fe80::2) then 2001:db8:1::1 (src 2001:db8:1::2) (prefer smaller scope)",
    cands: [cand("2001:db8:1::2"), cand("fe80::2")],
    dsts: ["2001:db8:1::1", "fe80::1"],
    want: [["fe80::1", "fe80::2"], ["2001:db8:1::1", "2001:db8:1::2"]],
  },
  {
    // Rule 4 is a no-op (no Mobile IPv6): 2001:db8:1::1 takes 2001:db8:1::2
    // by source rule 8, and destination rule 8 then puts fe80::1 first.
    name:
      "Candidate Source Addresses: 2001:db8:1::2 (care-of address) or 2001:db8:3::1 (home address) or fe80::2 (care-of address); Destination Address List: 2001:db8:1::1 or fe80::1; Result: 2001:db8:1::1 (src 2001:db8:3::1) then fe80::1 (src fe80::2) (prefer home address) — rule 4 is a no-op here, so fe80::1 (src fe80::2) then 2001:db8:1::1 (src 2001:db8:1::2)",
    cands: [cand("2001:db8:1::2"), cand("2001:db8:3::1"), cand("fe80::2")],
    dsts: ["2001:db8:1::1", "fe80::1"],
    want: [["fe80::1", "fe80::2"], ["2001:db8:1::1", "2001:db8:1::2"]],
  },
  {
    name:
      "Candidate Source Addresses: 2001:db8:1::2 or fe80::2 (deprecated); Destination Address List: 2001:db8:1::1 or fe80::1; Result: 2001:db8:1::1 (src 2001:db8:1::2) then fe80::1 (src fe80::2) (avoid deprecated addresses)",
    cands: [cand("2001:db8:1::2"), dep("fe80::2")],
    dsts: ["2001:db8:1::1", "fe80::1"],
    want: [["2001:db8:1::1", "2001:db8:1::2"], ["fe80::1", "fe80::2"]],
  },
  {
    name:
      "Candidate Source Addresses: 2001:db8:1::2 or 2001:db8:3f44::2 or fe80::2; Destination Address List: 2001:db8:1::1 or 2001:db8:3ffe::1; Result: 2001:db8:1::1 (src 2001:db8:1::2) then 2001:db8:3ffe::1 (src 2001:db8:3f44::2) (longest matching prefix)",
    cands: [cand("2001:db8:1::2"), cand("2001:db8:3f44::2"), cand("fe80::2")],
    dsts: ["2001:db8:1::1", "2001:db8:3ffe::1"],
    want: [["2001:db8:1::1", "2001:db8:1::2"], ["2001:db8:3ffe::1", "2001:db8:3f44::2"]],
  },
  {
    name:
      "Candidate Source Addresses: 2002:c633:6401::2 or fe80::2; Destination Address List: 2002:c633:6401::1 or 2001:db8:1::1; Result: 2002:c633:6401::1 (src 2002:c633:6401::2) then 2001:db8:1::1 (src 2002:c633:6401::2) (prefer matching label)",
    cands: [cand("2002:c633:6401::2"), cand("fe80::2")],
    dsts: ["2002:c633:6401::1", "2001:db8:1::1"],
    want: [["2002:c633:6401::1", "2002:c633:6401::2"], ["2001:db8:1::1", "2002:c633:6401::2"]],
  },
  {
    name:
      "Candidate Source Addresses: 2002:c633:6401::2 or 2001:db8:1::2 or fe80::2; Destination Address List: 2002:c633:6401::1 or 2001:db8:1::1; Result: 2001:db8:1::1 (src 2001:db8:1::2) then 2002:c633:6401::1 (src 2002:c633:6401::2) (prefer higher precedence)",
    cands: [cand("2002:c633:6401::2"), cand("2001:db8:1::2"), cand("fe80::2")],
    dsts: ["2002:c633:6401::1", "2001:db8:1::1"],
    want: [["2001:db8:1::1", "2001:db8:1::2"], ["2002:c633:6401::1", "2002:c633:6401::2"]],
  },
];

function sorted(
  dsts: string[],
  cands: CandidateAddress[],
  opts?: Parameters<typeof sortDestinationsDetailed>[2],
): [string, string][] {
  return sortDestinationsDetailed(dsts.map(ip), cands, opts).map((e) => [
    show(e.address),
    show(e.source?.address),
  ]);
}

Deno.test("RFC 6724 §10.2 destination address selection examples", async (t) => {
  for (const ex of DESTINATION_EXAMPLES) {
    await t.step(ex.name, () => {
      // Both input orders: rule 10 must not be what decides.
      assert.deepEqual(sorted(ex.dsts, ex.cands), ex.want);
      assert.deepEqual(sorted([...ex.dsts].reverse(), ex.cands), ex.want);
    });
  }
});

// ---------------------------------------------------------------- §6 rules, one at a time

interface DestinationRuleCase {
  name: string;
  cands: CandidateAddress[];
  dsts: string[];
  routes?: Record<string, DestinationRoute | null>;
  policy?: ReturnType<typeof policyTable>;
  want: string[];
}

const DESTINATION_RULES: DestinationRuleCase[] = [
  {
    name: "rule 1: an unreachable destination goes last",
    cands: [cand("2001:db8:1::2")],
    dsts: ["2001:db8:1::1", "2001:db8:1::9"],
    routes: { "2001:db8:1::1": null, "2001:db8:1::9": { nicId: 1 } },
    want: ["2001:db8:1::9", "2001:db8:1::1"],
  },
  {
    name: "rule 1: a destination with no source goes last (IPv4 only, ahead of IPv6's precedence)",
    cands: [cand("192.0.2.10")],
    dsts: ["2001:db8:1::1", "198.51.100.1"],
    want: ["198.51.100.1", "2001:db8:1::1"],
  },
  {
    name: "rule 2: matching scope beats precedence",
    cands: [cand("fe80::1"), cand("192.0.2.10")],
    dsts: ["2001:db8:9::1", "203.0.113.5"],
    want: ["203.0.113.5", "2001:db8:9::1"],
  },
  {
    name: "rule 3: a deprecated source goes after a preferred one, ahead of precedence",
    cands: [dep("2001:db8:1::2"), cand("192.0.2.10")],
    dsts: ["2001:db8:1::1", "192.0.2.1"],
    want: ["192.0.2.1", "2001:db8:1::1"],
  },
  {
    name: "rule 3: link-local destinations on two NICs, one source deprecated",
    cands: [dep("fe80::1"), cand("fe80::2", { nicId: 2 })],
    dsts: ["fe80::a", "fe80::b"],
    routes: { "fe80::a": { nicId: 1 }, "fe80::b": { nicId: 2 } },
    want: ["fe80::b", "fe80::a"],
  },
  {
    name: "rule 5: a matching label beats precedence (6to4 source)",
    cands: [cand("2002:c633:6401::2")],
    dsts: ["2001:db8:1::1", "2002:c633:6402::1"],
    want: ["2002:c633:6402::1", "2001:db8:1::1"],
  },
  {
    name: "rule 6: higher precedence (global over ULA)",
    cands: [cand("fd00:1::2"), cand("2001:db8:1::2")],
    dsts: ["fd00:1::1", "2001:db8:1::1"],
    want: ["2001:db8:1::1", "fd00:1::1"],
  },
  {
    name: "rule 6: a custom table can raise ULA over global",
    cands: [cand("fd00:1::2"), cand("2001:db8:1::2")],
    dsts: ["2001:db8:1::1", "fd00:1::1"],
    policy: policyTable([["::/0", 40, 1], ["fc00::/7", 45, 14]]),
    want: ["fd00:1::1", "2001:db8:1::1"],
  },
  {
    name: "rule 8: smaller scope (link-local multicast before global multicast)",
    cands: [cand("fe80::2"), cand("2001:db8:1::2")],
    dsts: ["ff0e::1", "ff02::1"],
    want: ["ff02::1", "ff0e::1"],
  },
  {
    name: "rule 9: longest matching prefix (IPv6)",
    cands: [cand("2001:db8:1::2"), cand("2001:db8:2::2")],
    dsts: ["2001:db8:3::1", "2001:db8:1::1"],
    want: ["2001:db8:1::1", "2001:db8:3::1"],
  },
  {
    name: "rule 9: longest matching prefix (IPv4, same family)",
    cands: [cand("198.51.100.2")],
    dsts: ["192.0.2.1", "198.51.100.1"],
    want: ["198.51.100.1", "192.0.2.1"],
  },
  {
    name: "two unreachable destinations are still ordered by rule 8",
    cands: [cand("2001:db8:1::2"), cand("fe80::2")],
    dsts: ["2001:db8:1::1", "fe80::1"],
    routes: { "2001:db8:1::1": null, "fe80::1": null },
    want: ["fe80::1", "2001:db8:1::1"],
  },
];

Deno.test("RFC 6724 §6 destination rules, each in isolation", async (t) => {
  for (const c of DESTINATION_RULES) {
    await t.step(c.name, () => {
      const opts: Parameters<typeof sortDestinations>[2] = {};
      if (c.policy !== undefined) opts.policy = c.policy;
      if (c.routes !== undefined) {
        const routes = c.routes;
        opts.route = (d) => {
          const r = routes[show(d)];
          assert.notEqual(r, undefined, `no route given for ${show(d)}`);
          return r!;
        };
      }
      for (const dsts of [c.dsts, [...c.dsts].reverse()]) {
        assert.deepEqual(sortDestinations(dsts.map(ip), c.cands, opts).map(show), c.want);
      }
    });
  }
  await t.step("rule 10: equal destinations keep the given order", () => {
    const cands = [cand("2001:db8:1::2")];
    for (const dsts of [["2001:db8:1::a", "2001:db8:1::b"], ["2001:db8:1::b", "2001:db8:1::a"]]) {
      assert.deepEqual(sortDestinations(dsts.map(ip), cands).map(show), dsts);
    }
  });
  await t.step("the result holds the caller's own arrays, in a new list", () => {
    const dsts = [ip("2001:db8:1::1"), ip("fe80::1")];
    const out = sortDestinations(dsts, [cand("2001:db8:1::2"), cand("fe80::2")]);
    assert.notEqual(out, dsts);
    assert.equal(out[0], dsts[1]);
    assert.equal(out[1], dsts[0]);
  });
  await t.step("details report reachability and Source(D)", () => {
    const out = sortDestinationsDetailed(
      [ip("2001:db8:1::1"), ip("2001:db8:2::1")],
      [cand("2001:db8:1::2")],
      { route: (d) => (show(d) === "2001:db8:2::1" ? null : { nicId: 1 }) },
    );
    assert.deepEqual(out.map((e) => [show(e.address), show(e.source?.address), e.reachable]), [
      ["2001:db8:1::1", "2001:db8:1::2", true],
      ["2001:db8:2::1", "none", false],
    ]);
  });
  await t.step("the route's NIC and next-hop prefixes steer Source(D)", () => {
    const cands = [cand("2001:db8:1::2", { nicId: 1 }), cand("2001:db8:2::2", { nicId: 2 })];
    const viaNic2 = sortDestinationsDetailed([ip("2001:db8:1::1")], cands, {
      route: () => ({ nicId: 2 }),
    });
    assert.equal(show(viaNic2[0]!.source?.address), "2001:db8:2::2");
    const viaHop = sortDestinationsDetailed([ip("2001:db8:9::1")], cands, {
      route: () => ({
        nicId: 3,
        nextHopPrefixes: [{ address: ip("2001:db8:1::"), prefixLen: 64 }],
      }),
    });
    assert.equal(show(viaHop[0]!.source?.address), "2001:db8:1::2");
  });
  await t.step("preferTemporary is passed on to source selection", () => {
    const cands = [cand("2001:db8:1::2"), tmp("2001:db8:1::3")];
    const d = [ip("2001:db8:1::1")];
    assert.equal(show(sortDestinationsDetailed(d, cands)[0]!.source?.address), "2001:db8:1::3");
    assert.equal(
      show(sortDestinationsDetailed(d, cands, { preferTemporary: false })[0]!.source?.address),
      "2001:db8:1::2",
    );
  });
  await t.step("an empty list sorts to an empty list", () => {
    assert.deepEqual(sortDestinations([], [cand("2001:db8:1::2")]), []);
  });
});
