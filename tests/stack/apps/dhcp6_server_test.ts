/**
 * The DHCPv6 server on a memory link with a manual clock: a client stack
 * on the far end sends messages built with the wire writer from its
 * link-local address and reads the server's answers with the wire reader.
 */
import assert from "node:assert/strict";
import { type MemoryEndpoint, MemoryLink } from "../../../link/mod.ts";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { applyConfig } from "../../../config/reload.ts";
import {
  Dhcpv6Server,
  type Dhcpv6ServerSettings,
  type LeaseStore,
  ManualClock,
  MemoryLeaseStore,
  Stack,
} from "../../../stack/mod.ts";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  decodeDomainList,
  type Dhcpv6Message,
  Dhcpv6MessageType as T,
  Dhcpv6Option as O,
  type Dhcpv6RelayMessage,
  Dhcpv6Status,
  Dhcpv6Writer,
  duidLl,
  findOption,
  formatIpv6,
  parseDhcpv6,
  parseIa,
  parseIaAddr,
  parseIaPrefix,
  parseIpv6,
  parseStatus,
} from "../../../stack/wire/mod.ts";

const ip6 = parseIpv6;
const SERVER_MAC = new Uint8Array([2, 0, 0, 0, 0, 1]);

function settings(over: Partial<Dhcpv6ServerSettings> = {}): Dhcpv6ServerSettings {
  return {
    pools: [{ start: ip6("2001:db8::100"), end: ip6("2001:db8::101") }],
    pdPools: [{ prefix: ip6("2001:db8:100::"), prefixLen: 48, delegatedLen: 56 }],
    preferredLifetime: 3600,
    validLifetime: 7200,
    dnsServers: [ip6("2001:db8::53")],
    domains: ["lan.example"],
    rapidCommit: false,
    preference: 0,
    declineTime: 600,
    ...over,
  };
}

/** A server on lan0 (2001:db8::1/64) and a client stack on the far end of the wire. */
function lab(
  over: Partial<Dhcpv6ServerSettings> = {},
  store: LeaseStore = new MemoryLeaseStore(),
  clock = new ManualClock(1_000_000),
) {
  const [srvEp, cliEp] = MemoryLink.pair({ clock });
  const stack = new Stack({ clock, hostname: "srv" });
  const nic = stack.addNic(srvEp, { name: "lan0", mac: SERVER_MAC, ipv6: { forwarding: true } });
  stack.ipv6.addAddress(nic, ip6("2001:db8::1"), 64);
  const cs = new Stack({ clock, hostname: "cli" });
  const cnic = cs.addNic(cliEp, {
    name: "eth0",
    mac: new Uint8Array([2, 0, 0, 0, 1, 1]),
    ipv6: true,
  });
  clock.advance(5000); // DAD of both link-locals and the server's address
  const server = new Dhcpv6Server(stack, nic, settings(over), {
    store,
    wallClock: () => clock.now(),
  });
  const replies: Dhcpv6Message[] = [];
  const ep = cs.udp.bindSocket({
    family: 6,
    port: 546,
    device: cnic,
    onDatagram: (d) => {
      const m = parseDhcpv6(
        d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength),
      );
      assert.equal(typeof m, "object");
      assert.equal(d.srcPort, 547);
      // From the server's link-local address.
      assert.equal(d.buffer.data[d.src6Offset], 0xfe);
      replies.push(m as Dhcpv6Message);
    },
  });
  const clientLl = cs.ipv6.linkLocalOf(cnic)!;
  /** Send `payload` to ff02::1:2 (or `dst`) and run the clock's next turn (the group commit). */
  const send = (payload: Uint8Array, dst: Uint8Array = ALL_DHCP_RELAY_AGENTS_AND_SERVERS) => {
    assert.ok(ep.send(dst, 547, payload, { nic: cnic, src: clientLl }));
    clock.advance(1);
  };
  const take = (): Dhcpv6Message[] => replies.splice(0);
  const close = () => {
    server.close();
    stack.close();
    cs.close();
  };
  const serverLl = stack.ipv6.linkLocalOf(nic)!;
  const stats = () => server.stats;
  return {
    clock,
    stack,
    nic,
    cs,
    cnic,
    server,
    store,
    send,
    take,
    clientLl,
    serverLl,
    stats,
    close,
  };
}

interface Ask {
  xid?: number;
  duid?: Uint8Array | null;
  serverId?: Uint8Array;
  na?: { iaid: number; addr?: string }[];
  pd?: { iaid: number; prefix?: string; len?: number }[];
  oro?: number[];
  rapid?: boolean;
}

const CLIENT_DUID = duidLl(new Uint8Array([2, 0, 0, 0, 1, 1]));

function msg(type: number, a: Ask = {}): Uint8Array {
  const w = new Dhcpv6Writer(new Uint8Array(1024));
  w.header(type, a.xid ?? 0xabcdef);
  const duid = a.duid === undefined ? CLIENT_DUID : a.duid;
  if (duid !== null) w.option(O.CLIENTID, duid);
  if (a.serverId !== undefined) w.option(O.SERVERID, a.serverId);
  w.open(O.ELAPSED_TIME).u16(0).close();
  if (a.rapid) w.option(O.RAPID_COMMIT);
  if (a.oro !== undefined) {
    w.open(O.ORO);
    for (const c of a.oro) w.u16(c);
    w.close();
  }
  for (const n of a.na ?? []) {
    w.open(O.IA_NA).u32(n.iaid).u32(0).u32(0);
    if (n.addr !== undefined) {
      w.open(O.IAADDR).raw(ip6(n.addr)).u32(0).u32(0).close();
    }
    w.close();
  }
  for (const p of a.pd ?? []) {
    w.open(O.IA_PD).u32(p.iaid).u32(0).u32(0);
    if (p.prefix !== undefined) {
      w.open(O.IAPREFIX).u32(0).u32(0).u8(p.len ?? 56).raw(ip6(p.prefix)).close();
    }
    w.close();
  }
  return w.bytes().slice();
}

/** The IAs of a reply: addresses / prefixes with lifetimes, and an IA-level status. */
function ias(m: Dhcpv6Message) {
  const out: {
    kind: "na" | "pd";
    iaid: number;
    t1: number;
    t2: number;
    values: { text: string; preferred: number; valid: number }[];
    status: number | null;
  }[] = [];
  for (const o of m.options) {
    if (o.code !== O.IA_NA && o.code !== O.IA_PD) continue;
    const ia = parseIa(o.data);
    assert.equal(typeof ia, "object");
    if (typeof ia === "string") continue;
    const values = [];
    for (const io of ia.options) {
      if (io.code === O.IAADDR) {
        const a = parseIaAddr(io.data);
        if (typeof a === "string") throw new Error(a);
        values.push({ text: formatIpv6(a.address), preferred: a.preferred, valid: a.valid });
      } else if (io.code === O.IAPREFIX) {
        const p = parseIaPrefix(io.data);
        if (typeof p === "string") throw new Error(p);
        values.push({
          text: `${formatIpv6(p.prefix)}/${p.prefixLen}`,
          preferred: p.preferred,
          valid: p.valid,
        });
      }
    }
    const st = findOption(ia.options, O.STATUS_CODE);
    out.push({
      kind: o.code === O.IA_NA ? "na" : "pd",
      iaid: ia.iaid,
      t1: ia.t1,
      t2: ia.t2,
      values,
      status: st !== undefined ? parseStatus(st)!.code : null,
    });
  }
  return out;
}

const topStatus = (m: Dhcpv6Message) => {
  const s = findOption(m.options, O.STATUS_CODE);
  return s === undefined ? null : parseStatus(s)!.code;
};

function sum(o: object): number {
  return Object.values(o).reduce((a: number, b) => a + (b as number), 0);
}

Deno.test("DHCPv6: SOLICIT/ADVERTISE/REQUEST/REPLY gives an address and a routed prefix", () => {
  const l = lab();
  l.send(
    msg(T.SOLICIT, { na: [{ iaid: 1 }], pd: [{ iaid: 2 }], oro: [O.DNS_SERVERS, O.DOMAIN_LIST] }),
  );
  const [adv, ...more] = l.take();
  assert.equal(more.length, 0);
  assert.equal(adv!.msgType, T.ADVERTISE);
  assert.equal(adv!.xid, 0xabcdef);
  assert.deepEqual(findOption(adv!.options, O.SERVERID), duidLl(SERVER_MAC));
  assert.deepEqual(findOption(adv!.options, O.CLIENTID), CLIENT_DUID);
  assert.equal(findOption(adv!.options, O.RECONF_ACCEPT), undefined);
  assert.deepEqual(ias(adv!), [
    {
      kind: "na",
      iaid: 1,
      t1: 1800,
      t2: 2880,
      values: [{ text: "2001:db8::100", preferred: 3600, valid: 7200 }],
      status: null,
    },
    {
      kind: "pd",
      iaid: 2,
      t1: 1800,
      t2: 2880,
      values: [{ text: "2001:db8:100::/56", preferred: 3600, valid: 7200 }],
      status: null,
    },
  ]);
  assert.deepEqual(findOption(adv!.options, O.DNS_SERVERS), ip6("2001:db8::53"));
  assert.deepEqual(decodeDomainList(findOption(adv!.options, O.DOMAIN_LIST)!), ["lan.example"]);
  // An ADVERTISE promises nothing: no lease is written.
  assert.equal(l.server.leases().length, 0);
  assert.equal(l.stats().advertisesSent, 1);

  l.send(msg(T.REQUEST, {
    serverId: l.server.duid,
    na: [{ iaid: 1, addr: "2001:db8::100" }],
    pd: [{ iaid: 2, prefix: "2001:db8:100::", len: 56 }],
  }));
  const [rep] = l.take();
  assert.equal(rep!.msgType, T.REPLY);
  assert.deepEqual(ias(rep!).map((i) => i.values.map((v) => v.text)), [
    ["2001:db8::100"],
    ["2001:db8:100::/56"],
  ]);
  // No ORO this time: no DNS options.
  assert.equal(findOption(rep!.options, O.DNS_SERVERS), undefined);
  const leases = l.server.leases();
  assert.deepEqual(leases.map((x) => [x.address, x.ia, x.iaid, x.state, x.mac]), [
    ["2001:db8::100", "na", 1, "bound", "02:00:00:00:01:01"],
    ["2001:db8:100::/56", "pd", 2, "bound", "02:00:00:00:01:01"],
  ]);
  assert.equal(leases[0]!.expires, l.clock.now() - 1 + 7200_000);
  assert.equal(leases[0]!.clientId, "00:03:00:01:02:00:00:00:01:01");
  // The delegated prefix is routed to the client's link-local address.
  const r = l.stack.ipv6.routes.find(ip6("2001:db8:100::"), 56);
  assert.equal(r.length, 1);
  assert.equal(r[0]!.source, "dhcp");
  assert.equal(r[0]!.nicId, l.nic.id);
  assert.equal(formatIpv6(r[0]!.gateway!), formatIpv6(l.clientLl));
  assert.equal(l.server.activeLeases("na"), 1);
  assert.equal(l.server.activeLeases("pd"), 1);
  l.close();
});

Deno.test("DHCPv6: Rapid Commit answers a SOLICIT with a REPLY only when configured", () => {
  const off = lab();
  off.send(msg(T.SOLICIT, { na: [{ iaid: 1 }], rapid: true }));
  assert.equal(off.take()[0]!.msgType, T.ADVERTISE);
  assert.equal(off.server.leases().length, 0);
  off.close();

  const on = lab({ rapidCommit: true, preference: 255 });
  on.send(msg(T.SOLICIT, { na: [{ iaid: 1 }], rapid: true }));
  const [rep] = on.take();
  assert.equal(rep!.msgType, T.REPLY);
  assert.notEqual(findOption(rep!.options, O.RAPID_COMMIT), undefined);
  assert.equal(on.server.leases()[0]!.state, "bound");
  // Without the client's Rapid Commit option: an ADVERTISE with the preference.
  on.send(msg(T.SOLICIT, { duid: duidLl(new Uint8Array([2, 0, 0, 0, 1, 2])), na: [{ iaid: 1 }] }));
  const [adv] = on.take();
  assert.equal(adv!.msgType, T.ADVERTISE);
  assert.deepEqual(findOption(adv!.options, O.PREFERENCE), new Uint8Array([255]));
  assert.equal(ias(adv!)[0]!.values[0]!.text, "2001:db8::101");
  on.close();
});

Deno.test("DHCPv6: RENEW extends, RELEASE gives back (route gone), the client gets the same address again", () => {
  const l = lab();
  const ask = { na: [{ iaid: 7 }], pd: [{ iaid: 8 }] };
  l.send(msg(T.SOLICIT, { ...ask, rapid: true }));
  l.take();
  l.send(msg(T.REQUEST, { ...ask, serverId: l.server.duid }));
  l.take();
  const first = l.server.leases()[0]!.expires;
  l.clock.advance(1800_000);
  l.send(msg(T.RENEW, {
    serverId: l.server.duid,
    na: [{ iaid: 7, addr: "2001:db8::100" }],
    pd: [{ iaid: 8, prefix: "2001:db8:100::", len: 56 }],
  }));
  const [ren] = l.take();
  assert.equal(ren!.msgType, T.REPLY);
  assert.deepEqual(ias(ren!).map((i) => i.values[0]!.text), ["2001:db8::100", "2001:db8:100::/56"]);
  assert.equal(l.server.leases()[0]!.expires, first + 1800_000 + 1);

  // A RENEW of an IA the server has no binding for, listing nothing: NoBinding.
  l.send(msg(T.RENEW, { serverId: l.server.duid, na: [{ iaid: 99 }] }));
  const [nb] = l.take();
  // It is granted a new address, as Kea does, while the pool has one.
  assert.equal(ias(nb!)[0]!.status, null);
  assert.equal(ias(nb!)[0]!.values[0]!.text, "2001:db8::101");

  l.send(msg(T.RELEASE, {
    serverId: l.server.duid,
    oro: [O.DNS_SERVERS],
    na: [{ iaid: 7, addr: "2001:db8::100" }],
    pd: [{ iaid: 8, prefix: "2001:db8:100::", len: 56 }],
  }));
  const [rel] = l.take();
  assert.equal(topStatus(rel!), Dhcpv6Status.SUCCESS);
  // No configuration in the REPLY to a RELEASE, even when asked (RFC 8415 §18.3.7).
  assert.equal(findOption(rel!.options, O.DNS_SERVERS), undefined);
  assert.deepEqual(
    l.server.leases().map((x) => [x.address, x.state]),
    [["2001:db8::100", "released"], ["2001:db8::101", "bound"], ["2001:db8:100::/56", "released"]],
  );
  assert.equal(l.stack.ipv6.routes.find(ip6("2001:db8:100::"), 56).length, 0);
  // A RELEASE of what it no longer holds: NoBinding inside the IA.
  l.send(msg(T.RELEASE, { serverId: l.server.duid, na: [{ iaid: 7, addr: "2001:db8::100" }] }));
  assert.equal(ias(l.take()[0]!)[0]!.status, Dhcpv6Status.NO_BINDING);
  // Affinity: the same IA gets its address and prefix back.
  l.send(msg(T.SOLICIT, ask));
  assert.deepEqual(ias(l.take()[0]!).map((i) => i.values[0]!.text), [
    "2001:db8::100",
    "2001:db8:100::/56",
  ]);
  l.close();
});

Deno.test("DHCPv6: pools run out into NoAddrsAvail / NoPrefixAvail inside the IA", () => {
  const l = lab({ pdPools: [{ prefix: ip6("2001:db8:100::"), prefixLen: 56, delegatedLen: 56 }] });
  const ask = { na: [{ iaid: 1 }], pd: [{ iaid: 1 }] };
  const got: [number, number | null][][] = [];
  for (let i = 1; i <= 3; i++) {
    const duid = duidLl(new Uint8Array([2, 0, 0, 0, 2, i]));
    l.send(msg(T.REQUEST, { duid, serverId: l.server.duid, ...ask }));
    got.push(ias(l.take()[0]!).map((x) => [x.values.length, x.status]));
  }
  assert.deepEqual(got, [
    [[1, null], [1, null]],
    [[1, null], [0, Dhcpv6Status.NO_PREFIX_AVAIL]],
    [[0, Dhcpv6Status.NO_ADDRS_AVAIL], [0, Dhcpv6Status.NO_PREFIX_AVAIL]],
  ]);
  assert.equal(l.stats().poolExhausted, 3);
  assert.equal(l.server.activeLeases("na"), 2);
  assert.equal(l.server.activeLeases("pd"), 1);
  l.close();
});

Deno.test("DHCPv6: DECLINE keeps the address out of the pools for decline_time", () => {
  const l = lab({ pools: [{ start: ip6("2001:db8::100"), end: ip6("2001:db8::100") }] });
  const a = { na: [{ iaid: 1 }] };
  l.send(msg(T.REQUEST, { ...a, serverId: l.server.duid }));
  assert.equal(ias(l.take()[0]!)[0]!.values[0]!.text, "2001:db8::100");
  l.send(msg(T.DECLINE, { serverId: l.server.duid, na: [{ iaid: 1, addr: "2001:db8::100" }] }));
  assert.equal(topStatus(l.take()[0]!), Dhcpv6Status.SUCCESS);
  assert.equal(l.server.leases()[0]!.state, "declined");
  const other = duidLl(new Uint8Array([2, 0, 0, 0, 3, 3]));
  l.send(msg(T.SOLICIT, { duid: other, na: [{ iaid: 1 }] }));
  assert.equal(ias(l.take()[0]!)[0]!.status, Dhcpv6Status.NO_ADDRS_AVAIL);
  l.clock.advance(600_000);
  l.send(msg(T.SOLICIT, { duid: other, na: [{ iaid: 1 }] }));
  assert.equal(ias(l.take()[0]!)[0]!.values[0]!.text, "2001:db8::100");
  l.close();
});

Deno.test("DHCPv6: CONFIRM says whether the addresses are on this link; without any, silence", () => {
  const l = lab();
  l.send(msg(T.CONFIRM, { na: [{ iaid: 1, addr: "2001:db8::77" }] }));
  assert.equal(topStatus(l.take()[0]!), Dhcpv6Status.SUCCESS);
  l.send(msg(T.CONFIRM, { na: [{ iaid: 1, addr: "2001:db8:ffff::77" }] }));
  assert.equal(topStatus(l.take()[0]!), Dhcpv6Status.NOT_ON_LINK);
  l.send(msg(T.CONFIRM, { na: [{ iaid: 1 }] }));
  assert.equal(l.take().length, 0);
  assert.equal(l.stats().confirmWithoutAddressDropped, 1);
  l.close();
});

Deno.test("DHCPv6: INFORMATION-REQUEST gets the DNS options it asks for and no IA", () => {
  const l = lab();
  l.send(msg(T.INFORMATION_REQUEST, { duid: null, oro: [O.DNS_SERVERS] }));
  const [rep] = l.take();
  assert.equal(rep!.msgType, T.REPLY);
  assert.equal(findOption(rep!.options, O.CLIENTID), undefined);
  assert.deepEqual(findOption(rep!.options, O.DNS_SERVERS), ip6("2001:db8::53"));
  assert.equal(findOption(rep!.options, O.DOMAIN_LIST), undefined);
  assert.equal(ias(rep!).length, 0);
  l.close();
});

Deno.test("DHCPv6: each bad message is dropped with exactly one counter (or UseMulticast)", () => {
  const l = lab();
  const cases: [string, Uint8Array, keyof ReturnType<typeof l.stats>, Uint8Array?][] = [
    ["no client id", msg(T.SOLICIT, { duid: null, na: [{ iaid: 1 }] }), "invalidDropped"],
    ["server id in a SOLICIT", msg(T.SOLICIT, { serverId: l.server.duid }), "invalidDropped"],
    ["REQUEST without server id", msg(T.REQUEST, { na: [{ iaid: 1 }] }), "invalidDropped"],
    [
      "another server's id",
      msg(T.REQUEST, { serverId: duidLl(new Uint8Array([2, 9, 9, 9, 9, 9])) }),
      "otherServerDropped",
    ],
    ["SOLICIT to unicast", msg(T.SOLICIT, { na: [{ iaid: 1 }] }), "unicastDropped", l.serverLl],
    ["truncated", new Uint8Array([1, 0, 0]), "malformedDropped"],
    ["option overrun", new Uint8Array([1, 0, 0, 1, 0, 1, 0, 9, 0]), "malformedDropped"],
    [
      "IA_NA too short",
      new Uint8Array([1, 0, 0, 1, 0, 1, 0, 2, 0, 3, 0, 3, 0, 4, 1, 2, 3, 4]),
      "malformedDropped",
    ],
    ["an ADVERTISE", msg(T.ADVERTISE), "unknownMessageTypeDropped"],
    [
      "RELAY-FORW without a Relay Message",
      Uint8Array.from({ length: 34 }, (_, i) => i === 0 ? 12 : 0),
      "malformedDropped",
    ],
  ];
  for (const [what, payload, counter, dst] of cases) {
    const before = { ...l.stats() };
    l.send(payload, dst);
    assert.equal(l.take().length, 0, what);
    const after = l.stats();
    assert.equal(after[counter] - before[counter], 1, what);
    // Exactly one drop counter moved (a *Received counter may count the message too).
    const drops = (s: ReturnType<typeof l.stats>) =>
      sum(Object.fromEntries(Object.entries(s).filter(([k]) => k.endsWith("Dropped"))));
    assert.equal(drops(after) - drops(before), 1, what);
  }
  // A REQUEST sent to the server's unicast address: answered with UseMulticast, nothing bound.
  l.send(msg(T.REQUEST, { serverId: l.server.duid, na: [{ iaid: 1 }] }), l.serverLl);
  const [um] = l.take();
  assert.equal(topStatus(um!), Dhcpv6Status.USE_MULTICAST);
  assert.equal(l.server.leases().length, 0);
  l.close();
});

Deno.test("DHCPv6: leases and prefix routes survive a restart; a prefix's route ends with its lease", () => {
  const clock = new ManualClock(1_000_000);
  const store = new MemoryLeaseStore();
  const l = lab({}, store, clock);
  l.send(msg(T.SOLICIT, { rapid: true, na: [{ iaid: 1 }], pd: [{ iaid: 2 }] }));
  l.send(msg(T.REQUEST, { serverId: l.server.duid, na: [{ iaid: 1 }], pd: [{ iaid: 2 }] }));
  l.take();
  l.server.close();
  assert.equal(l.stack.ipv6.routes.find(ip6("2001:db8:100::"), 56).length, 0);
  const again = new Dhcpv6Server(l.stack, l.nic, settings(), {
    store,
    wallClock: () => clock.now(),
  });
  assert.deepEqual(again.leases().map((x) => x.address), ["2001:db8::100", "2001:db8:100::/56"]);
  assert.equal(l.stack.ipv6.routes.find(ip6("2001:db8:100::"), 56).length, 1);
  // The lease runs out (7200 s, no RENEW): the route goes.
  clock.advance(7199_000);
  assert.equal(l.stack.ipv6.routes.find(ip6("2001:db8:100::"), 56).length, 1);
  clock.advance(1_000);
  assert.equal(l.stack.ipv6.routes.find(ip6("2001:db8:100::"), 56).length, 0);
  again.close();
  l.stack.close();
  l.cs.close();
});

Deno.test("[interface.dhcp6] starts the server; a reload reconfigures it keeping leases, or stops it", () => {
  const clock = new ManualClock(1_000_000);
  const text = (dhcp6: string) =>
    `[router]\nhostname = "gw"\n[[interface]]\nname = "lan0"\naddresses = ["2001:db8:1::1/64"]\nforwarding = true\n${dhcp6}`;
  const first = parseConfig(
    text(
      `[interface.dhcp6]\npools = ["2001:db8:1::100-2001:db8:1::1ff"]\npd_pools = [{ prefix = "2001:db8:100::/48", delegated_len = 60 }]\nrapid_commit = true\ndns_servers = ["2001:db8:1::53"]\n`,
    ),
  );
  let far: MemoryEndpoint | null = null;
  const built = buildStack(first, {
    clock,
    openLink: () => {
      const [mine, theirs] = MemoryLink.pair({ clock });
      far = theirs;
      return mine;
    },
  });
  const server = built.stack.services.get("dhcp6:lan0");
  assert.ok(server instanceof Dhcpv6Server);
  assert.equal(server.settings.pdPools[0]!.delegatedLen, 60);
  // A client on the wire.
  const cs = new Stack({ clock, hostname: "cli" });
  const cnic = cs.addNic(far!, { name: "eth0", ipv6: true });
  clock.advance(5000);
  const got: Dhcpv6Message[] = [];
  const ep = cs.udp.bindSocket({
    family: 6,
    port: 546,
    device: cnic,
    onDatagram: (d) =>
      got.push(
        parseDhcpv6(
          d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength),
        ) as Dhcpv6Message,
      ),
  });
  ep.send(
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
    547,
    msg(T.SOLICIT, { rapid: true, na: [{ iaid: 1 }], pd: [{ iaid: 2 }] }),
    { nic: cnic, src: cs.ipv6.linkLocalOf(cnic)! },
  );
  clock.advance(1);
  assert.equal(got.length, 1);
  assert.deepEqual(ias(got[0]!).map((i) => i.values[0]!.text), [
    "2001:db8:1::100",
    "2001:db8:100::/60",
  ]);
  assert.equal(server.leases().length, 2);

  const second = parseConfig(
    text(`[interface.dhcp6]\npools = ["2001:db8:1::200-2001:db8:1::2ff"]\n`),
  );
  const r = applyConfig(built.stack, built.nics, first, second);
  assert.ok(
    r.applied.includes("interface lan0: DHCPv6 server reconfigured (leases kept)"),
    String(r.applied),
  );
  assert.equal(built.stack.services.get("dhcp6:lan0"), server);
  assert.equal(server.leases().length, 2);
  assert.equal(server.settings.pools[0]!.start[15], 0);
  assert.equal(server.settings.pdPools.length, 0);

  const third = parseConfig(text(""));
  const r3 = applyConfig(built.stack, built.nics, second, third);
  assert.ok(
    r3.applied.includes("interface lan0: DHCPv6 server stopped (leases kept)"),
    String(r3.applied),
  );
  assert.equal(built.stack.services.get("dhcp6:lan0"), undefined);
  // Its delegated prefix's route went with it.
  assert.equal(built.stack.ipv6.routes.find(ip6("2001:db8:100::"), 60).length, 0);
  built.stack.close();
  cs.close();
});

Deno.test("DHCPv6: through a relay agent — RELAY-FORW unwrapped, the answer in a RELAY-REPL to the relay's port 547, Interface-Id echoed", () => {
  const l = lab();
  const got: Uint8Array[] = [];
  const relayEp = l.cs.udp.bindSocket({
    family: 6,
    port: 547,
    device: l.cnic,
    onDatagram: (d) =>
      got.push(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength)),
  });
  const forward = (inner: Uint8Array, link: string, ifid?: Uint8Array) => {
    const w = new Dhcpv6Writer(new Uint8Array(1024));
    w.relayHeader(T.RELAY_FORW, 0, ip6(link), ip6("fe80::c1"));
    if (ifid !== undefined) w.option(O.INTERFACE_ID, ifid);
    w.option(O.RELAY_MSG, inner);
    assert.ok(relayEp.send(l.serverLl, 547, w.bytes(), { nic: l.cnic, src: l.clientLl }));
    l.clock.advance(1);
  };
  const ifid = new TextEncoder().encode("port7");
  forward(msg(T.SOLICIT, { na: [{ iaid: 1 }], pd: [{ iaid: 2 }] }), "2001:db8::ff", ifid);
  assert.equal(got.length, 1);
  const rr = parseDhcpv6(got[0]!);
  assert.ok(typeof rr !== "string" && "hopCount" in rr);
  assert.equal(rr.msgType, T.RELAY_REPL);
  assert.equal(formatIpv6(rr.linkAddress), "2001:db8::ff");
  assert.equal(formatIpv6(rr.peerAddress), "fe80::c1");
  assert.deepEqual(findOption(rr.options, O.INTERFACE_ID), ifid);
  const adv = parseDhcpv6(findOption(rr.options, O.RELAY_MSG)!) as Dhcpv6Message;
  assert.equal(adv.msgType, T.ADVERTISE);
  assert.deepEqual(ias(adv).map((i) => i.values[0]!.text), ["2001:db8::100", "2001:db8:100::/56"]);
  // REQUEST through the relay: bound; the prefix routed via the relay.
  forward(
    msg(T.REQUEST, { serverId: l.server.duid, na: [{ iaid: 1 }], pd: [{ iaid: 2 }] }),
    "2001:db8::ff",
  );
  assert.equal(got.length, 2);
  const rr2 = parseDhcpv6(got[1]!) as Dhcpv6RelayMessage;
  const rep = parseDhcpv6(findOption(rr2.options, O.RELAY_MSG)!) as Dhcpv6Message;
  assert.equal(rep.msgType, T.REPLY);
  const route = l.stack.ipv6.routes.find(ip6("2001:db8:100::"), 56)[0]!;
  assert.equal(formatIpv6(route.gateway!), formatIpv6(l.clientLl));
  // A relay for a link this interface does not serve: dropped, counted.
  const before = l.stats().relayOtherLinkDropped;
  forward(msg(T.SOLICIT, { na: [{ iaid: 1 }] }), "2001:db8:77::1");
  assert.equal(got.length, 2);
  assert.equal(l.stats().relayOtherLinkDropped, before + 1);
  relayEp.close();
  l.close();
});

Deno.test("DHCPv6: the captive-portal URI (option 103, RFC 8910) when the ORO asks for it", () => {
  const l = lab({ captivePortal: "https://portal.example/api" });
  l.send(msg(T.INFORMATION_REQUEST, { duid: null, oro: [103] }));
  const [rep] = l.take();
  assert.equal(
    new TextDecoder().decode(findOption(rep!.options, 103)!),
    "https://portal.example/api",
  );
  l.send(msg(T.INFORMATION_REQUEST, { duid: null, oro: [O.DNS_SERVERS] }));
  assert.equal(findOption(l.take()[0]!.options, 103), undefined);
  l.close();
});
