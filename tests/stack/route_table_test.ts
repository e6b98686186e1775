import assert from "node:assert/strict";
import {
  flowHashV4,
  flowHashV6,
  type Ipv4Route,
  Ipv4RouteTable,
  type Ipv6Route,
  Ipv6RouteTable,
  isRouteGroup,
  type RouteType,
} from "../../stack/route_table.ts";
import { formatIpv4, parseIpv4, parseIpv6 } from "../../stack/wire/ip_address.ts";
import { SeededRandom } from "../../stack/random.ts";

// ---------------------------------------------------------------- helpers

function cidr4(text: string): [number, number] {
  const [a, l] = text.split("/");
  return [parseIpv4(a!), Number(l)];
}

function r4(
  to: string,
  o: Partial<Omit<Ipv4Route, "gateway">> & { via?: string } = {},
): Ipv4Route {
  const [prefix, prefixLen] = cidr4(to);
  return {
    prefix,
    prefixLen,
    type: o.type ?? "unicast",
    nicId: o.nicId ?? 1,
    gateway: o.via === undefined ? null : parseIpv4(o.via),
    metric: o.metric ?? 0,
    source: o.source ?? "static",
  };
}

function r6(
  to: string,
  o: Partial<Omit<Ipv6Route, "gateway">> & { via?: string } = {},
): Ipv6Route {
  const [a, l] = to.split("/");
  const r: Ipv6Route = {
    prefix: parseIpv6(a!),
    prefixLen: Number(l),
    type: o.type ?? "unicast",
    nicId: o.nicId ?? 1,
    gateway: o.via === undefined ? null : parseIpv6(o.via),
    metric: o.metric ?? 0,
    source: o.source ?? "static",
  };
  if (o.preference !== undefined) r.preference = o.preference;
  if (o.expiresAt !== undefined) r.expiresAt = o.expiresAt;
  return r;
}

function describe4(r: Ipv4Route | null): string {
  if (r === null) return "none";
  return `${formatIpv4(r.prefix)}/${r.prefixLen} ${r.type} nic${r.nicId} via ${
    r.gateway === null ? "-" : formatIpv4(r.gateway)
  } m${r.metric}`;
}

function describe6(r: Ipv6Route | null): string {
  if (r === null) return "none";
  const hex = (b: Uint8Array | null) =>
    b === null ? "-" : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex(r.prefix)}/${r.prefixLen} ${r.type} nic${r.nicId} via ${
    hex(r.gateway)
  } m${r.metric} p${r.preference ?? 0}`;
}

// ---------------------------------------------------------------- reference

/** The obviously-correct model: a list in insertion order, scanned linearly. */
class Reference<R extends Ipv4Route | Ipv6Route> {
  list: R[] = [];
  constructor(
    readonly contains: (r: R, dst: Uint8Array | number) => boolean,
    readonly sameHop: (a: R, b: R) => boolean,
    readonly samePrefix: (a: R, b: R) => boolean,
  ) {}

  add(r: R): void {
    const i = this.list.findIndex((o) =>
      this.samePrefix(o, r) && o.metric === r.metric && this.sameHop(o, r)
    );
    if (i >= 0) this.list.splice(i, 1);
    this.list.push(r);
  }

  remove(pred: (r: R) => boolean): number {
    const before = this.list.length;
    this.list = this.list.filter((r) => !pred(r));
    return before - this.list.length;
  }

  lookup(dst: Uint8Array | number, hash: number): R | null {
    let best = -1;
    for (const r of this.list) if (this.contains(r, dst) && r.prefixLen > best) best = r.prefixLen;
    if (best < 0) return null;
    const cands = this.list.filter((r) => r.prefixLen === best && this.contains(r, dst));
    const pref = (r: R) => ("preference" in r ? r.preference ?? 0 : 0);
    cands.sort((a, b) => a.metric - b.metric || pref(b) - pref(a));
    const first = cands[0]!;
    if (first.type !== "unicast") return first;
    let n = 1;
    while (
      n < cands.length && cands[n]!.type === "unicast" && cands[n]!.metric === first.metric &&
      pref(cands[n]!) === pref(first)
    ) n++;
    return cands[(hash >>> 0) % n]!;
  }
}

function mask4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function masked6(a: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, len - 8 * i));
    out[i] = a[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function contains6(p: Uint8Array, len: number, a: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16 && 8 * i < len; i++) {
    const bits = Math.min(8, len - 8 * i);
    const m = (0xff << (8 - bits)) & 0xff;
    if ((p[i]! & m) !== (a[off + i]! & m)) return false;
  }
  return true;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------- IPv4

Deno.test("Ipv4RouteTable.lookup() takes the longest prefix", async (t) => {
  const table = new Ipv4RouteTable();
  table.add(r4("0.0.0.0/0", { nicId: 1, via: "198.51.100.1" }));
  table.add(r4("192.0.0.0/8", { nicId: 2 }));
  table.add(r4("192.0.2.0/24", { nicId: 3 }));
  table.add(r4("192.0.2.128/25", { nicId: 4 }));
  table.add(r4("192.0.2.129/32", { nicId: 5 }));
  table.add(r4("192.0.2.64/26", { nicId: 6 }));
  table.add(r4("203.0.113.0/24", { nicId: 7 }));
  table.add(r4("203.0.112.0/23", { nicId: 8 }));
  table.add(r4("198.51.100.0/22", { nicId: 9 }));
  const cases: [string, number][] = [
    ["8.8.8.8", 1],
    ["192.1.2.3", 2],
    ["192.0.2.1", 3],
    ["192.0.2.130", 4],
    ["192.0.2.129", 5],
    ["192.0.2.128", 4],
    ["192.0.2.64", 6],
    ["192.0.2.127", 6],
    ["192.0.2.63", 3],
    ["203.0.113.255", 7],
    ["203.0.112.1", 8],
    ["198.51.103.255", 9],
    ["198.51.104.0", 1],
    ["255.255.255.255", 1],
    ["0.0.0.0", 1],
  ];
  for (const [dst, nic] of cases) {
    await t.step(`${dst} goes to nic ${nic}`, () => {
      assert.equal(table.lookup(parseIpv4(dst))?.nicId, nic);
    });
  }
  await t.step("no default route: unmatched is null", () => {
    assert.equal(table.remove(0, 0), 1);
    assert.equal(table.lookup(parseIpv4("8.8.8.8")), null);
    assert.equal(table.lookup(parseIpv4("192.0.2.1"))?.nicId, 3);
  });
  await t.step("host bits in an added prefix are cleared", () => {
    const t2 = new Ipv4RouteTable();
    t2.add(r4("192.0.2.77/24"));
    assert.equal(t2.routes()[0]!.prefix, parseIpv4("192.0.2.0"));
    assert.equal(t2.remove(parseIpv4("192.0.2.0"), 24), 1);
  });
  await t.step("invalid prefix length throws on add, returns 0 on remove", () => {
    const t2 = new Ipv4RouteTable();
    assert.throws(() => t2.add(r4("192.0.2.0/33")), RangeError);
    assert.equal(t2.remove(0, 40), 0);
  });
});

Deno.test("Ipv4RouteTable.remove() exposes the covering prefix", async (t) => {
  const cases: { name: string; routes: string[]; remove: string; dst: string; want: string }[] = [
    {
      name: "/24 removed falls back to /16",
      routes: ["10.1.0.0/16", "10.1.2.0/24"],
      remove: "10.1.2.0/24",
      dst: "10.1.2.3",
      want: "10.1.0.0/16",
    },
    {
      name: "/32 removed falls back to /8 across two levels",
      routes: ["10.0.0.0/8", "10.1.2.3/32"],
      remove: "10.1.2.3/32",
      dst: "10.1.2.3",
      want: "10.0.0.0/8",
    },
    {
      name: "middle /20 removed: /24 stays, rest of /20 goes to /12",
      routes: ["10.0.0.0/12", "10.1.0.0/20", "10.1.2.0/24"],
      remove: "10.1.0.0/20",
      dst: "10.1.3.1",
      want: "10.0.0.0/12",
    },
    {
      name: "middle /20 removed: the /24 under it is unaffected",
      routes: ["10.0.0.0/12", "10.1.0.0/20", "10.1.2.0/24"],
      remove: "10.1.0.0/20",
      dst: "10.1.2.1",
      want: "10.1.2.0/24",
    },
    {
      name: "/8 removed under a /27: /27 stays",
      routes: ["0.0.0.0/0", "10.0.0.0/8", "10.9.9.32/27"],
      remove: "10.0.0.0/8",
      dst: "10.9.9.40",
      want: "10.9.9.32/27",
    },
    {
      name: "/8 removed: default route takes the rest",
      routes: ["0.0.0.0/0", "10.0.0.0/8", "10.9.9.32/27"],
      remove: "10.0.0.0/8",
      dst: "10.9.9.1",
      want: "0.0.0.0/0",
    },
    {
      name: "default route removed under everything",
      routes: ["0.0.0.0/0", "10.0.0.0/8"],
      remove: "0.0.0.0/0",
      dst: "11.0.0.1",
      want: "none",
    },
    {
      name: "/25 removed, sibling /25 stays",
      routes: ["10.0.0.0/24", "10.0.0.0/25", "10.0.0.128/25"],
      remove: "10.0.0.0/25",
      dst: "10.0.0.1",
      want: "10.0.0.0/24",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const table = new Ipv4RouteTable();
      for (const r of c.routes) table.add(r4(r));
      const [p, l] = cidr4(c.remove);
      assert.equal(table.remove(p, l), 1);
      const got = table.lookup(parseIpv4(c.dst));
      assert.equal(got === null ? "none" : `${formatIpv4(got.prefix)}/${got.prefixLen}`, c.want);
    });
  }
  await t.step("removing everything frees every child table", () => {
    const table = new Ipv4RouteTable();
    for (const r of ["10.1.2.3/32", "10.1.2.0/24", "10.1.0.0/16", "10.1.2.128/25"]) {
      table.add(r4(r));
    }
    assert.ok(table.trieChunks > 0);
    table.removeWhere(() => true);
    assert.equal(table.size, 0);
    assert.equal(table.trieChunks, 0);
    assert.equal(table.lookup(parseIpv4("10.1.2.3")), null);
  });
});

Deno.test("Ipv4RouteTable metrics, route types and replacement", async (t) => {
  await t.step("lower metric wins; removing it exposes the next", () => {
    const table = new Ipv4RouteTable();
    table.add(r4("192.0.2.0/24", { nicId: 1, metric: 100 }));
    table.add(r4("192.0.2.0/24", { nicId: 2, metric: 10 }));
    table.add(r4("192.0.2.0/24", { nicId: 3, metric: 50 }));
    assert.equal(table.size, 3);
    assert.equal(table.lookup(parseIpv4("192.0.2.9"))?.nicId, 2);
    assert.equal(table.remove(parseIpv4("192.0.2.0"), 24, (r) => r.metric === 10), 1);
    assert.equal(table.lookup(parseIpv4("192.0.2.9"))?.nicId, 3);
    assert.equal(table.remove(parseIpv4("192.0.2.0"), 24, (r) => r.nicId === 3), 1);
    assert.equal(table.lookup(parseIpv4("192.0.2.9"))?.nicId, 1);
  });
  await t.step("a longer prefix beats a better metric", () => {
    const table = new Ipv4RouteTable();
    table.add(r4("192.0.0.0/16", { nicId: 1, metric: 0 }));
    table.add(r4("192.0.2.0/24", { nicId: 2, metric: 1000 }));
    assert.equal(table.lookup(parseIpv4("192.0.2.9"))?.nicId, 2);
  });
  const types: RouteType[] = ["unicast", "blackhole", "unreachable", "prohibit", "local"];
  for (const type of types) {
    await t.step(`type ${type} is returned as stored`, () => {
      const table = new Ipv4RouteTable();
      table.add(r4("0.0.0.0/0", { nicId: 1 }));
      table.add(r4("203.0.113.0/24", { type, nicId: type === "unicast" ? 2 : 0 }));
      const got = table.lookup(parseIpv4("203.0.113.7"))!;
      assert.equal(got.type, type);
      assert.equal(got.source, "static");
    });
  }
  await t.step("same prefix, metric, nic and gateway replaces", () => {
    const table = new Ipv4RouteTable();
    table.add(r4("192.0.2.0/24", { nicId: 1, via: "198.51.100.1", source: "static" }));
    table.add(r4("192.0.2.0/24", { nicId: 1, via: "198.51.100.1", source: "ra" }));
    assert.equal(table.size, 1);
    assert.equal(table.lookup(parseIpv4("192.0.2.1"))?.source, "ra");
  });
  await t.step("a blackhole at the best metric wins alone over unicast peers", () => {
    const table = new Ipv4RouteTable();
    table.add(r4("192.0.2.0/24", { type: "blackhole", nicId: 0 }));
    table.add(r4("192.0.2.0/24", { nicId: 1, via: "198.51.100.1" }));
    for (let h = 0; h < 10; h++) {
      assert.equal(table.lookup(parseIpv4("192.0.2.1"), h)?.type, "blackhole");
    }
  });
  await t.step("the stored route is a copy of the argument", () => {
    const table = new Ipv4RouteTable();
    const r = r4("192.0.2.0/24", { nicId: 1 });
    table.add(r);
    r.nicId = 9;
    assert.equal(table.lookup(parseIpv4("192.0.2.1"))?.nicId, 1);
  });
  await t.step("find() lists one prefix's routes, best first", () => {
    const table = new Ipv4RouteTable();
    table.add(r4("192.0.2.0/24", { nicId: 1, metric: 9 }));
    table.add(r4("192.0.2.0/24", { nicId: 2, metric: 3 }));
    assert.deepEqual(table.find(parseIpv4("192.0.2.0"), 24).map((r) => r.nicId), [2, 1]);
    assert.deepEqual(table.find(parseIpv4("192.0.2.0"), 25), []);
  });
  await t.step("routes() sorts by prefix, length, metric", () => {
    const table = new Ipv4RouteTable();
    for (
      const [to, m] of [["198.51.100.0/24", 5], ["192.0.2.0/24", 7], ["192.0.2.0/24", 2], [
        "0.0.0.0/0",
        0,
      ], ["192.0.2.0/25", 0]] as const
    ) {
      table.add(r4(to, { metric: m, nicId: m + 1 }));
    }
    assert.deepEqual(
      table.routes().map((r) => `${formatIpv4(r.prefix)}/${r.prefixLen}/${r.metric}`),
      ["0.0.0.0/0/0", "192.0.2.0/24/2", "192.0.2.0/24/7", "192.0.2.0/25/0", "198.51.100.0/24/5"],
    );
  });
});

Deno.test("Ipv4RouteTable ECMP spreads flows over equal-cost routes", async (t) => {
  for (const n of [2, 3]) {
    await t.step(`${n}-way group`, () => {
      const table = new Ipv4RouteTable();
      for (let i = 0; i < n; i++) {
        table.add(r4("0.0.0.0/0", { nicId: i + 1, via: `198.51.100.${i + 1}`, metric: 10 }));
      }
      table.add(r4("0.0.0.0/0", { nicId: 9, via: "198.51.100.9", metric: 20 }));
      assert.equal(table.size, n + 1);
      const rnd = new SeededRandom(42 + n);
      const counts = new Map<number, number>();
      for (let i = 0; i < 1000; i++) {
        const h = flowHashV4(rnd.uint32(), rnd.uint32(), 6, rnd.uint32() & 0xffff, 443);
        const r = table.lookup(parseIpv4("203.0.113.5"), h)!;
        assert.equal(table.lookup(parseIpv4("203.0.113.5"), h), r, "same hash, same member");
        counts.set(r.nicId, (counts.get(r.nicId) ?? 0) + 1);
      }
      assert.equal(counts.size, n, `every member used: ${[...counts]}`);
      assert.ok(!counts.has(9), "the worse metric is never used");
      for (const [nic, c] of counts) assert.ok(c >= 200, `nic ${nic} got ${c} of 1000`);
    });
  }
  await t.step("removing one member shrinks the group", () => {
    const table = new Ipv4RouteTable();
    table.add(r4("0.0.0.0/0", { nicId: 1, via: "198.51.100.1" }));
    table.add(r4("0.0.0.0/0", { nicId: 2, via: "198.51.100.2" }));
    table.remove(0, 0, (r) => r.nicId === 1);
    for (let h = 0; h < 20; h++) assert.equal(table.lookup(1, h)?.nicId, 2);
  });
  await t.step("candidates(): one route bare, an equal-cost group as its members", () => {
    const table = new Ipv4RouteTable();
    table.add(r4("192.0.2.0/24", { nicId: 1 }));
    table.add(r4("0.0.0.0/0", { nicId: 1, via: "198.51.100.1" }));
    table.add(r4("0.0.0.0/0", { nicId: 2, via: "198.51.100.2" }));
    const one = table.candidates(parseIpv4("192.0.2.7"));
    assert.ok(!isRouteGroup(one));
    assert.equal(one, table.lookup(parseIpv4("192.0.2.7"), 12345));
    const group = table.candidates(parseIpv4("203.0.113.5"));
    assert.ok(isRouteGroup(group));
    assert.deepEqual(group.map((r) => r.nicId), [1, 2]);
    for (let h = 0; h < 4; h++) {
      assert.equal(table.lookup(parseIpv4("203.0.113.5"), h), group[h % 2]);
    }
    assert.equal(table.candidates(parseIpv4("0.0.0.0")), group);
    assert.equal(new Ipv4RouteTable().candidates(1), null);
  });
  await t.step("flowHashV4 is stable and depends on every field", () => {
    const base = flowHashV4(1, 2, 6, 3, 4);
    assert.equal(flowHashV4(1, 2, 6, 3, 4), base);
    assert.ok(base >= 0 && base <= 0xffffffff);
    for (
      const h of [
        flowHashV4(9, 2, 6, 3, 4),
        flowHashV4(1, 9, 6, 3, 4),
        flowHashV4(1, 2, 17, 3, 4),
        flowHashV4(1, 2, 6, 9, 4),
        flowHashV4(1, 2, 6, 3, 9),
        flowHashV4(1, 2, 6, 3, 4, 7),
      ]
    ) assert.notEqual(h, base);
  });
});

Deno.test("Ipv4RouteTable.removeWhere() removes by NIC", async (t) => {
  const table = new Ipv4RouteTable();
  table.add(r4("0.0.0.0/0", { nicId: 1, via: "198.51.100.1", metric: 10 }));
  table.add(r4("0.0.0.0/0", { nicId: 2, via: "203.0.113.1", metric: 20 }));
  table.add(r4("198.51.100.0/24", { nicId: 1, source: "connected" }));
  table.add(r4("203.0.113.0/24", { nicId: 2, source: "connected" }));
  table.add(r4("192.0.2.0/24", { nicId: 1, via: "198.51.100.7" }));
  table.add(r4("192.0.2.0/24", { nicId: 2, via: "203.0.113.7", metric: 5 }));
  await t.step("removes only that NIC's routes", () => {
    assert.equal(table.removeWhere((r) => r.nicId === 1), 3);
    assert.equal(table.size, 3);
    assert.ok(table.routes().every((r) => r.nicId === 2));
  });
  await t.step("lookups fall to what is left", () => {
    assert.equal(table.lookup(parseIpv4("198.51.100.9"))?.nicId, 2);
    assert.equal(table.lookup(parseIpv4("198.51.100.9"))?.prefixLen, 0);
    assert.equal(table.lookup(parseIpv4("192.0.2.1"))?.metric, 5);
  });
  await t.step("nothing matches: 0", () => {
    assert.equal(table.removeWhere((r) => r.nicId === 77), 0);
  });
});

// ---------------------------------------------------------------- IPv6

Deno.test("Ipv6RouteTable.lookup() takes the longest prefix", async (t) => {
  const table = new Ipv6RouteTable();
  table.add(r6("::/0", { nicId: 1, via: "fe80::1" }));
  table.add(r6("2001:db8::/32", { nicId: 2 }));
  table.add(r6("2001:db8:10::/48", { nicId: 3 }));
  table.add(r6("2001:db8:10:1::/64", { nicId: 4 }));
  table.add(r6("2001:db8:10:1::42/128", { nicId: 5 }));
  table.add(r6("2001:db8:10:1::40/126", { nicId: 6 }));
  table.add(r6("fd00::/8", { nicId: 7 }));
  table.add(r6("2001:db8:8000::/33", { nicId: 8 }));
  table.add(r6("2001:db8:10:1:8000::/65", { nicId: 9 }));
  const cases: [string, number][] = [
    ["2001:db9::1", 1],
    ["2001:db8:1::1", 2],
    ["2001:db8:10:2::1", 3],
    ["2001:db8:10:1::1", 4],
    ["2001:db8:10:1::42", 5],
    ["2001:db8:10:1::41", 6],
    ["2001:db8:10:1::43", 6],
    ["2001:db8:10:1::44", 4],
    ["fd12:3456::1", 7],
    ["2001:db8:ffff::1", 8],
    ["2001:db8:7fff::1", 2],
    ["2001:db8:10:1:8000::1", 9],
    ["2001:db8:10:1:7fff::1", 4],
    ["::", 1],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1],
  ];
  for (const [dst, nic] of cases) {
    await t.step(`${dst} goes to nic ${nic}`, () => {
      assert.equal(table.lookup(parseIpv6(dst), 0)?.nicId, nic);
    });
  }
  await t.step("the address is read in place at an offset", () => {
    const pkt = new Uint8Array(40);
    pkt.set(parseIpv6("2001:db8:10:1::42"), 24);
    assert.equal(table.lookup(pkt, 24)?.nicId, 5);
  });
  await t.step("a truncated buffer does not throw", () => {
    assert.doesNotThrow(() => table.lookup(new Uint8Array(3), 0));
  });
  await t.step("removing exposes the covering prefix", () => {
    assert.equal(table.remove(parseIpv6("2001:db8:10:1::42"), 128), 1);
    assert.equal(table.lookup(parseIpv6("2001:db8:10:1::42"), 0)?.nicId, 6);
    assert.equal(table.remove(parseIpv6("2001:db8:10:1::40"), 126), 1);
    assert.equal(table.lookup(parseIpv6("2001:db8:10:1::42"), 0)?.nicId, 4);
    assert.equal(table.remove(parseIpv6("2001:db8:10::"), 48), 1);
    assert.equal(table.lookup(parseIpv6("2001:db8:10:2::1"), 0)?.nicId, 2);
    assert.equal(table.lookup(parseIpv6("2001:db8:10:1::1"), 0)?.nicId, 4);
    assert.equal(table.remove(parseIpv6("::"), 0), 1);
    assert.equal(table.lookup(parseIpv6("2001:db9::1"), 0), null);
  });
  await t.step("removing everything frees every child table", () => {
    table.removeWhere(() => true);
    assert.equal(table.size, 0);
    assert.equal(table.trieChunks, 0);
  });
});

Deno.test("Ipv6RouteTable metrics, preference, types, ECMP, expiry", async (t) => {
  const dst = parseIpv6("2001:db8:1::5");
  await t.step("lower metric wins; removing it exposes the next", () => {
    const table = new Ipv6RouteTable();
    table.add(r6("2001:db8:1::/48", { nicId: 1, metric: 1024 }));
    table.add(r6("2001:db8:1::/48", { nicId: 2, metric: 256 }));
    assert.equal(table.lookup(dst, 0)?.nicId, 2);
    assert.equal(table.remove(parseIpv6("2001:db8:1::"), 48, (r) => r.metric === 256), 1);
    assert.equal(table.lookup(dst, 0)?.nicId, 1);
  });
  await t.step("higher RFC 4191 preference wins at equal metric", () => {
    const table = new Ipv6RouteTable();
    table.add(r6("::/0", { nicId: 1, via: "fe80::1", metric: 1024, preference: -1 }));
    table.add(r6("::/0", { nicId: 2, via: "fe80::2", metric: 1024, preference: 1 }));
    table.add(r6("::/0", { nicId: 3, via: "fe80::3", metric: 1024 }));
    for (let h = 0; h < 10; h++) assert.equal(table.lookup(dst, 0, h)?.nicId, 2);
  });
  const types: RouteType[] = ["unicast", "blackhole", "unreachable", "prohibit", "local"];
  for (const type of types) {
    await t.step(`type ${type} is returned as stored`, () => {
      const table = new Ipv6RouteTable();
      table.add(r6("2001:db8:1::/48", { type, nicId: 0 }));
      assert.equal(table.lookup(dst, 0)?.type, type);
    });
  }
  for (const n of [2, 3]) {
    await t.step(`${n}-way ECMP over link-local gateways`, () => {
      const table = new Ipv6RouteTable();
      for (let i = 0; i < n; i++) {
        table.add(r6("::/0", { nicId: i + 1, via: `fe80::${i + 1}`, metric: 1024 }));
      }
      table.add(r6("::/0", { nicId: 1, via: "fe80::1", metric: 1024, source: "ra" }));
      assert.equal(table.size, n, "same gateway replaces");
      const rnd = new SeededRandom(7 + n);
      const pkt = new Uint8Array(40);
      const counts = new Map<number, number>();
      for (let i = 0; i < 1000; i++) {
        for (let j = 8; j < 40; j++) pkt[j] = rnd.uint32() & 255;
        const h = flowHashV6(pkt, 8, 24, 6, rnd.uint32() & 0xffff, 443, 0);
        const r = table.lookup(pkt, 24, h)!;
        assert.equal(table.lookup(pkt, 24, h), r);
        counts.set(r.nicId, (counts.get(r.nicId) ?? 0) + 1);
      }
      assert.equal(counts.size, n);
      for (const [nic, c] of counts) assert.ok(c >= 200, `nic ${nic} got ${c} of 1000`);
    });
  }
  await t.step("removeWhere by NIC", () => {
    const table = new Ipv6RouteTable();
    table.add(r6("2001:db8:1::/48", { nicId: 1 }));
    table.add(r6("2001:db8:1::/48", { nicId: 2, via: "fe80::2" }));
    table.add(r6("2001:db8::/32", { nicId: 1 }));
    assert.equal(table.removeWhere((r) => r.nicId === 1), 2);
    assert.equal(table.lookup(dst, 0)?.nicId, 2);
    assert.equal(table.lookup(parseIpv6("2001:db8:2::1"), 0), null);
  });
  await t.step("removeExpired drops lapsed RA routes", () => {
    const table = new Ipv6RouteTable();
    table.add(r6("::/0", { nicId: 1, via: "fe80::1", source: "ra", expiresAt: 1000 }));
    table.add(r6("2001:db8:1::/48", { nicId: 2, source: "ra", expiresAt: 5000 }));
    table.add(r6("2001:db8::/32", { nicId: 3 }));
    assert.equal(table.removeExpired(999), 0);
    assert.equal(table.removeExpired(1000), 1);
    assert.equal(table.lookup(parseIpv6("2001:db9::1"), 0), null);
    assert.equal(table.removeExpired(10_000), 1);
    assert.equal(table.lookup(dst, 0)?.nicId, 3);
  });
  await t.step("flowHashV6 depends on addresses, ports and flow label", () => {
    const b = new Uint8Array(40);
    b.set(parseIpv6("2001:db8::1"), 8);
    b.set(parseIpv6("2001:db8::2"), 24);
    const base = flowHashV6(b, 8, 24, 6, 1, 2, 3);
    assert.equal(flowHashV6(b, 8, 24, 6, 1, 2, 3), base);
    assert.notEqual(flowHashV6(b, 24, 8, 6, 1, 2, 3), base);
    assert.notEqual(flowHashV6(b, 8, 24, 6, 1, 2, 4), base);
    assert.notEqual(flowHashV6(b, 8, 24, 6, 5, 2, 3), base);
  });
});

// ---------------------------------------------------------------- property tests

/** An address near one of a few templates, so that prefixes overlap often. */
function nearV4(rnd: SeededRandom, templates: number[]): number {
  if (rnd.uint32() % 8 === 0) return rnd.uint32();
  let a = templates[rnd.uint32() % templates.length]!;
  const flips = rnd.uint32() % 4;
  for (let i = 0; i < flips; i++) a ^= 1 << (rnd.uint32() % 32);
  return a >>> 0;
}

function lenV4(rnd: SeededRandom): number {
  const fav = [0, 8, 15, 16, 17, 23, 24, 25, 31, 32];
  return rnd.uint32() % 2 === 0 ? fav[rnd.uint32() % fav.length]! : rnd.uint32() % 33;
}

Deno.test("Ipv4RouteTable matches a linear-scan reference under random changes", async (t) => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    await t.step(`seed ${seed}`, () => {
      const rnd = new SeededRandom(seed);
      const templates = Array.from({ length: 3 }, () => rnd.uint32());
      const table = new Ipv4RouteTable();
      const ref = new Reference<Ipv4Route>(
        (r, d) => ((((d as number) ^ r.prefix) & mask4(r.prefixLen)) >>> 0) === 0,
        (a, b) => a.nicId === b.nicId && a.gateway === b.gateway,
        (a, b) => a.prefix === b.prefix && a.prefixLen === b.prefixLen,
      );
      const types: RouteType[] = ["unicast", "unicast", "unicast", "blackhole", "local"];
      for (let op = 0; op < 3000; op++) {
        const k = rnd.uint32() % 100;
        if (k < 60 || ref.list.length === 0) {
          const len = lenV4(rnd);
          const r: Ipv4Route = {
            prefix: (nearV4(rnd, templates) & mask4(len)) >>> 0,
            prefixLen: len,
            type: types[rnd.uint32() % types.length]!,
            nicId: 1 + rnd.uint32() % 3,
            gateway: rnd.uint32() % 4 === 0 ? null : 0xc6336400 + rnd.uint32() % 3,
            metric: rnd.uint32() % 3,
            source: "static",
          };
          table.add(r);
          ref.add(r);
        } else if (k < 90) {
          const victim = ref.list[rnd.uint32() % ref.list.length]!;
          const byNic = rnd.uint32() % 2 === 0;
          const same = (r: Ipv4Route) =>
            r.prefix === victim.prefix && r.prefixLen === victim.prefixLen &&
            (!byNic || r.nicId === victim.nicId);
          const want = ref.remove(same);
          const got = table.remove(
            victim.prefix,
            victim.prefixLen,
            byNic ? (r) => r.nicId === victim.nicId : undefined,
          );
          assert.equal(got, want, `op ${op}: remove count`);
        } else if (k < 93) {
          const nic = 1 + rnd.uint32() % 3;
          const metric = rnd.uint32() % 3;
          const pred = (r: Ipv4Route) => r.nicId === nic && r.metric === metric;
          assert.equal(table.removeWhere(pred), ref.remove(pred), `op ${op}: removeWhere`);
        }
        assert.equal(table.size, ref.list.length, `op ${op}: size`);
        // Probe: random addresses near the templates, and the edges of stored prefixes.
        for (let i = 0; i < 12; i++) {
          let d: number;
          if (i < 6 || ref.list.length === 0) d = nearV4(rnd, templates);
          else {
            const r = ref.list[rnd.uint32() % ref.list.length]!;
            d = i % 2 === 0 ? r.prefix : (r.prefix | ~mask4(r.prefixLen)) >>> 0;
          }
          const h = rnd.uint32();
          assert.equal(
            describe4(table.lookup(d, h)),
            describe4(ref.lookup(d, h)),
            `op ${op}: lookup ${formatIpv4(d)} hash ${h}`,
          );
        }
      }
      const sorted = table.routes();
      assert.equal(sorted.length, ref.list.length);
      for (let i = 1; i < sorted.length; i++) {
        const a = sorted[i - 1]!, b = sorted[i]!;
        assert.ok(
          a.prefix < b.prefix || (a.prefix === b.prefix &&
            (a.prefixLen < b.prefixLen || (a.prefixLen === b.prefixLen && a.metric <= b.metric))),
        );
      }
      table.removeWhere(() => true);
      assert.equal(table.trieChunks, 0, "all child tables folded back");
    });
  }
});

function nearV6(rnd: SeededRandom, templates: Uint8Array[]): Uint8Array {
  const a = new Uint8Array(16);
  if (rnd.uint32() % 8 === 0) {
    for (let i = 0; i < 16; i++) a[i] = rnd.uint32() & 255;
    return a;
  }
  a.set(templates[rnd.uint32() % templates.length]!);
  const flips = rnd.uint32() % 4;
  for (let i = 0; i < flips; i++) {
    const bit = rnd.uint32() % 128;
    a[bit >>> 3]! ^= 0x80 >>> (bit & 7);
  }
  return a;
}

function lenV6(rnd: SeededRandom): number {
  const fav = [0, 16, 17, 20, 32, 48, 56, 64, 65, 127, 128];
  return rnd.uint32() % 2 === 0 ? fav[rnd.uint32() % fav.length]! : rnd.uint32() % 129;
}

Deno.test("Ipv6RouteTable matches a linear-scan reference under random changes", async (t) => {
  for (const seed of [11, 12, 13, 14, 15, 16]) {
    await t.step(`seed ${seed}`, () => {
      const rnd = new SeededRandom(seed);
      const templates = Array.from({ length: 3 }, () => nearV6(rnd, [new Uint8Array(16)]));
      for (const tp of templates) for (let i = 0; i < 16; i++) tp[i] = rnd.uint32() & 255;
      const table = new Ipv6RouteTable();
      const ref = new Reference<Ipv6Route>(
        (r, d) => contains6(r.prefix, r.prefixLen, d as Uint8Array, 0),
        (a, b) => a.nicId === b.nicId && sameBytes(a.gateway, b.gateway),
        (a, b) => a.prefixLen === b.prefixLen && sameBytes(a.prefix, b.prefix),
      );
      const gws = [parseIpv6("fe80::1"), parseIpv6("fe80::2"), null];
      const types: RouteType[] = ["unicast", "unicast", "unicast", "unreachable"];
      const pkt = new Uint8Array(48);
      for (let op = 0; op < 2000; op++) {
        const k = rnd.uint32() % 100;
        if (k < 60 || ref.list.length === 0) {
          const len = lenV6(rnd);
          const r: Ipv6Route = {
            prefix: masked6(nearV6(rnd, templates), len),
            prefixLen: len,
            type: types[rnd.uint32() % types.length]!,
            nicId: 1 + rnd.uint32() % 3,
            gateway: gws[rnd.uint32() % gws.length]!,
            metric: rnd.uint32() % 2,
            source: "ra",
          };
          if (rnd.uint32() % 3 === 0) r.preference = (rnd.uint32() % 3) - 1;
          table.add(r);
          ref.add(r);
        } else if (k < 90) {
          const victim = ref.list[rnd.uint32() % ref.list.length]!;
          const same = (r: Ipv6Route) =>
            r.prefixLen === victim.prefixLen && sameBytes(r.prefix, victim.prefix);
          assert.equal(
            table.remove(victim.prefix, victim.prefixLen),
            ref.remove(same),
            `op ${op}: remove`,
          );
        } else if (k < 93) {
          const nic = 1 + rnd.uint32() % 3;
          const pred = (r: Ipv6Route) => r.nicId === nic && r.metric === 0;
          assert.equal(table.removeWhere(pred), ref.remove(pred), `op ${op}: removeWhere`);
        }
        assert.equal(table.size, ref.list.length, `op ${op}: size`);
        for (let i = 0; i < 10; i++) {
          let d: Uint8Array;
          if (i < 5 || ref.list.length === 0) d = nearV6(rnd, templates);
          else {
            const r = ref.list[rnd.uint32() % ref.list.length]!;
            d = r.prefix.slice();
            if (i % 2 === 1) {
              for (let b = r.prefixLen; b < 128; b++) d[b >>> 3]! |= 0x80 >>> (b & 7);
            }
          }
          const off = rnd.uint32() % 32;
          pkt.set(d, off);
          const h = rnd.uint32();
          assert.equal(
            describe6(table.lookup(pkt, off, h)),
            describe6(ref.lookup(d, h)),
            `op ${op}: lookup`,
          );
        }
      }
      table.removeWhere(() => true);
      assert.equal(table.trieChunks, 0, "all child tables folded back");
    });
  }
});
