/**
 * The DHCPv6 client against tapir's DHCPv6 server on a memory link, with
 * the manual clock: the exchange, the address and prefix installed, RENEW
 * at T1, REBIND at T2 when the server is gone, expiry, RELEASE, Rapid
 * Commit, and the retransmission schedule of RFC 8415 §15.
 */
import assert from "node:assert/strict";
import { MemoryLink } from "../../../link/mod.ts";
import { haveTshark, pcap, tshark } from "../wire/_pcap.ts";
import {
  Dhcpv6Client,
  type Dhcpv6ClientSettings,
  type Dhcpv6DelegatedPrefix,
  Dhcpv6Server,
  type Dhcpv6ServerSettings,
  ManualClock,
  MemoryLeaseStore,
  Stack,
} from "../../../stack/mod.ts";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  type Dhcpv6Message,
  Dhcpv6MessageType as T,
  Dhcpv6Option as O,
  Dhcpv6Writer,
  findOption,
  formatIpv6,
  type PacketBuffer,
  parseDhcpv6,
  parseIpv6,
} from "../../../stack/wire/mod.ts";

const ip6 = parseIpv6;

function lab(
  srv: Partial<Dhcpv6ServerSettings> = {},
  cli: Partial<Dhcpv6ClientSettings> = { iaNa: true, iaPd: true, prefixHint: 56 },
) {
  const clock = new ManualClock(1_000_000);
  const [se, ce] = MemoryLink.pair({ clock });
  /** Message types on the wire, in order, client's and server's. */
  const wire: string[] = [];
  /** Those frames whole, for tshark. */
  const frames: Uint8Array[] = [];
  let cut = false;
  for (const [ep, who] of [[se, "s"], [ce, "c"]] as const) {
    const w = ep.writePacket.bind(ep);
    ep.writePacket = (p: PacketBuffer) => {
      const f = p.data.subarray(p.start, p.end);
      // Ethernet + IPv6 (no extension headers) + UDP to 546/547.
      if (f[12] === 0x86 && f[13] === 0xdd && f[20] === 17) {
        const port = (f[56]! << 8) | f[57]!;
        if (port === 546 || port === 547) {
          const m = parseDhcpv6(f.subarray(62));
          if (typeof m !== "string") {
            wire.push(`${who}${m.msgType}@${clock.now()}`);
            frames.push(f.slice());
          }
        }
      }
      if (cut) return true;
      return w(p);
    };
  }
  const ss = new Stack({ clock, hostname: "srv" });
  const snic = ss.addNic(se, { name: "lan0", ipv6: { forwarding: true } });
  ss.ipv6.addAddress(snic, ip6("2001:db8:1::1"), 64);
  const cs = new Stack({ clock, hostname: "cli" });
  const cnic = cs.addNic(ce, { name: "wan0", ipv6: true });
  clock.advance(5_000);
  const store = new MemoryLeaseStore();
  const server = new Dhcpv6Server(ss, snic, {
    pools: [{ start: ip6("2001:db8:1::100"), end: ip6("2001:db8:1::1ff") }],
    pdPools: [{ prefix: ip6("2001:db8:100::"), prefixLen: 48, delegatedLen: 56 }],
    preferredLifetime: 1000,
    validLifetime: 2000,
    dnsServers: [ip6("2001:db8:1::53")],
    domains: ["lan.example"],
    rapidCommit: false,
    preference: 0,
    declineTime: 600,
    ...srv,
  }, { store, wallClock: () => clock.now() });
  const client = new Dhcpv6Client(cs, cnic, cli);
  const prefixes: (string | null)[] = [];
  client.onPrefix.add((p: Dhcpv6DelegatedPrefix | null) =>
    prefixes.push(p === null ? null : `${formatIpv6(p.prefix)}/${p.prefixLen}`)
  );
  const addrs = () =>
    (cs.ipv6.nicState(cnic)?.addresses ?? [])
      .filter((a) => a.origin === "dhcp")
      .map((a) => `${formatIpv6(a.address)}/${a.prefixLen}`);
  return {
    clock,
    ss,
    cs,
    cnic,
    server,
    client,
    store,
    wire,
    frames,
    prefixes,
    addrs,
    cutWire: (on: boolean) => (cut = on),
    close() {
      client.close();
      server.close();
      cs.close();
      ss.close();
    },
  };
}

Deno.test("DHCPv6 client: four messages, then an address (/128, dhcp), a prefix, DNS, a discard route", () => {
  const l = lab();
  l.clock.advance(3_000);
  assert.equal(l.client.state, "bound");
  assert.deepEqual(l.wire.map((w) => w.split("@")[0]), ["c1", "s2", "c3", "s7"]);
  assert.deepEqual(l.addrs(), ["2001:db8:1::100/128"]);
  const lease = l.client.lease!;
  assert.equal(formatIpv6(lease.prefix!.prefix), "2001:db8:100::");
  assert.equal(lease.prefix!.prefixLen, 56);
  assert.deepEqual(lease.dnsServers.map((a) => formatIpv6(a)), ["2001:db8:1::53"]);
  assert.deepEqual(lease.domains, ["lan.example"]);
  assert.equal(lease.t1, 500);
  assert.equal(lease.t2, 800);
  assert.deepEqual(l.prefixes, ["2001:db8:100::/56"]);
  const r = l.cs.ipv6.routes.find(ip6("2001:db8:100::"), 56);
  assert.deepEqual(r.map((x) => [x.type, x.source]), [["unreachable", "dhcp"]]);
  // The server routes the prefix to the client's link-local address.
  const sr = l.ss.ipv6.routes.find(ip6("2001:db8:100::"), 56);
  assert.equal(formatIpv6(sr[0]!.gateway!), formatIpv6(l.cs.ipv6.linkLocalOf(l.cnic)!));
  // The address passes DAD on the WAN link.
  l.clock.advance(3_000);
  assert.equal(
    l.cs.ipv6.nicState(l.cnic)!.addresses.find((a) => a.origin === "dhcp")!.state,
    "preferred",
  );
  l.close();
});

Deno.test("DHCPv6 client: RENEW at T1; with the server gone, REBIND at T2, then the lease ends", () => {
  const l = lab();
  l.clock.advance(3_000);
  const bound = l.client.lease!.start;
  l.wire.length = 0;
  // T1 = 500 s after the REQUEST: a RENEW (5), answered; the lease starts over.
  l.clock.advance(bound + 500_000 - l.clock.now() - 1);
  assert.equal(l.wire.length, 0);
  l.clock.advance(2);
  assert.deepEqual(l.wire.map((w) => w.split("@")[0]), ["c5", "s7"]);
  assert.equal(l.client.state, "bound");
  const renewed = l.client.lease!.start;
  assert.ok(renewed >= bound + 500_000);
  assert.equal(l.client.lease!.address!.validUntil, renewed + 2_000_000);

  // The server stops answering: RENEWs from T1 (retransmitted, 10 s doubling), REBINDs from T2.
  l.cutWire(true);
  l.wire.length = 0;
  l.clock.advance(renewed + 800_000 - l.clock.now() + 1);
  const kinds = l.wire.map((w) => w.split("@")[0]);
  assert.ok(kinds.length >= 5, kinds.join());
  assert.ok(kinds.slice(0, -1).every((k) => k === "c5"), kinds.join());
  assert.equal(kinds.at(-1), "c6");
  assert.equal(l.client.state, "rebinding");
  // Retransmission gaps grow (RFC 8415 §15: about double each time, at most 600 s).
  const times = l.wire.filter((w) => w.startsWith("c5")).map((w) => Number(w.split("@")[1]));
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  assert.ok(gaps[0]! >= 9_000 && gaps[0]! <= 11_000, String(gaps));
  for (let i = 1; i < gaps.length; i++) {
    assert.ok(gaps[i]! > gaps[i - 1]! * 1.6 || gaps[i]! >= 540_000, String(gaps));
  }
  // Elapsed Time (RFC 8415 §21.9): 0 in the first RENEW, then the exchange's age in 1/100 s.
  const elapsed = l.frames.map((f) => parseDhcpv6(f.subarray(62)) as Dhcpv6Message)
    .filter((m) => m.msgType === T.RENEW)
    .map((m) => {
      const e = findOption(m.options, O.ELAPSED_TIME)!;
      return (e[0]! << 8) | e[1]!;
    });
  assert.equal(elapsed[1], 0, String(elapsed)); // [0] is the answered RENEW at T1
  assert.ok(elapsed[2]! >= 900 && elapsed[2]! <= 1100, String(elapsed));
  assert.ok(elapsed[3]! > elapsed[2]!, String(elapsed));
  // The valid lifetime ends: address, route and prefix go; SOLICIT again.
  l.clock.advance(renewed + 2_000_000 - l.clock.now() + 1);
  assert.equal(l.client.stats.leasesExpired, 1);
  assert.deepEqual(l.addrs(), []);
  assert.equal(l.cs.ipv6.routes.find(ip6("2001:db8:100::"), 56).length, 0);
  assert.deepEqual(l.prefixes, ["2001:db8:100::/56", "2001:db8:100::/56", null]);
  assert.equal(l.client.state, "soliciting");
  l.close();
});

Deno.test("DHCPv6 client: close() RELEASEs; the server marks both leases released", () => {
  const l = lab();
  l.clock.advance(3_000);
  l.client.close();
  l.clock.advance(10);
  assert.equal(l.client.stats.releasesSent, 1);
  assert.deepEqual(
    l.server.leases().map((x) => [x.address, x.state]),
    [["2001:db8:1::100", "released"], ["2001:db8:100::/56", "released"]],
  );
  assert.deepEqual(l.addrs(), []);
  assert.deepEqual(l.prefixes, ["2001:db8:100::/56", null]);
  l.server.close();
  l.cs.close();
  l.ss.close();
});

Deno.test("DHCPv6 client: Rapid Commit takes two messages when the server allows it", () => {
  const l = lab({ rapidCommit: true }, {
    iaNa: true,
    iaPd: false,
    rapidCommit: true,
    prefixHint: null,
  });
  l.clock.advance(3_000);
  assert.deepEqual(l.wire.map((w) => w.split("@")[0]), ["c1", "s7"]);
  assert.equal(l.client.state, "bound");
  assert.equal(l.client.lease!.prefix, null);
  l.close();
});

Deno.test("DHCPv6 client: with no server, SOLICITs back off from 1 s towards an hour", () => {
  const l = lab();
  l.cutWire(true);
  l.clock.advance(600_000);
  const times = l.wire.filter((w) => w.startsWith(`c${T.SOLICIT}`)).map((w) =>
    Number(w.split("@")[1])
  );
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  // §15: the first RT is above IRT (1 s, +0..10 %), then about doubling.
  assert.ok(gaps[0]! >= 1_000 && gaps[0]! <= 1_100, String(gaps));
  for (let i = 1; i < gaps.length; i++) {
    assert.ok(gaps[i]! >= gaps[i - 1]! * 1.7 && gaps[i]! <= gaps[i - 1]! * 2.3, String(gaps));
  }
  assert.ok(times.length >= 9 && times.length <= 11, String(times.length));
  l.close();
});

Deno.test("DHCPv6 client: an address that fails DAD is DECLINEd; the next exchange gets another", () => {
  const l = lab({}, { iaNa: true, iaPd: false, prefixHint: null, rapidCommit: false });
  // Stop right after the REPLY: the address is tentative (DAD running).
  for (let i = 0; i < 3000 && l.client.state !== "bound"; i++) l.clock.advance(1);
  assert.equal(l.client.state, "bound");
  const st = l.cs.ipv6.nicState(l.cnic)!;
  const a = st.addresses.find((x) => x.origin === "dhcp")!;
  assert.equal(a.state, "tentative");
  // Another host answers for it.
  l.cs.ipv6.ndp.dadFailed(l.cnic, a, "a neighbor advertised it");
  l.clock.advance(10);
  assert.equal(l.client.stats.declinesSent, 1);
  assert.equal(l.client.state, "declined");
  assert.deepEqual(l.addrs(), []);
  assert.deepEqual(l.server.leases().map((x) => [x.address, x.state]), [
    ["2001:db8:1::100", "declined"],
  ]);
  // After the pause: a new exchange, another address.
  l.clock.advance(15_000);
  assert.equal(l.client.state, "bound");
  assert.deepEqual(l.addrs(), ["2001:db8:1::101/128"]);
  l.close();
});

const CI = Deno.env.get("CI") === "true";
const tsharkFound = await haveTshark();

Deno.test({
  name: "DHCPv6 client and server: tshark dissects every message they build, none malformed",
  ignore: !tsharkFound && !CI,
  async fn() {
    assert.equal(tsharkFound, true, "tshark is required under CI=true");
    const l = lab({ preference: 7 });
    l.clock.advance(3_000); // SOLICIT, ADVERTISE (preference), REQUEST, REPLY
    l.clock.advance(l.client.lease!.start + 500_000 - l.clock.now() + 1); // RENEW, REPLY
    l.cutWire(true);
    const s = l.client.lease!.start;
    l.clock.advance(s + 800_000 - l.clock.now() + 1); // RENEWs, a REBIND unanswered
    l.cutWire(false);
    l.clock.advance(700_000); // a REBIND answered
    assert.equal(l.client.state, "bound");
    l.client.close(); // RELEASE, REPLY (status)
    l.clock.advance(10);
    const dir = await Deno.makeTempDir({ prefix: "tapir_dhcp6_" });
    try {
      await Deno.writeFile(`${dir}/d.pcap`, pcap(l.frames));
      const checks = ["-o", "udp.check_checksum:TRUE"];
      const out = await tshark([
        "-r",
        `${dir}/d.pcap`,
        ...checks,
        "-T",
        "fields",
        "-e",
        "dhcpv6.msgtype",
        "-e",
        "dhcpv6.iaprefix.pref_addr",
      ]);
      const rows = out.trim().split("\n").map((r) => r.split("\t"));
      const types = [...new Set(rows.map((r) => r[0]))].sort((a, b) => Number(a) - Number(b));
      assert.deepEqual(types, ["1", "2", "3", "5", "6", "7", "8"]);
      assert.ok(rows.some((r) => r[1]?.startsWith("2001:db8:100::")), out);
      const bad = await tshark([
        "-r",
        `${dir}/d.pcap`,
        ...checks,
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
      ]);
      assert.equal(bad.trim(), "", `tshark found problems:\n${bad}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    l.server.close();
    l.cs.close();
    l.ss.close();
  },
});

Deno.test("DHCPv6 client: in a REPLY listing a withdrawn address (lifetime 0) before the new one, it takes the new one", () => {
  const l = lab({}, { iaNa: true, iaPd: false, prefixHint: null, rapidCommit: false });
  l.server.close();
  // A scripted server on the far end (listening on ff02::1:2, which the closed server left).
  l.ss.ipv6.joinGroup([...l.ss.nics.values()][0]!, ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
  const sid = new Uint8Array([0, 3, 0, 1, 2, 9, 9, 9, 9, 9]);
  const ep = l.ss.udp.bindSocket({
    family: 6,
    port: 547,
    onDatagram: (d) => {
      const m = parseDhcpv6(
        d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength),
      ) as Dhcpv6Message;
      const w = new Dhcpv6Writer(new Uint8Array(512));
      w.header(m.msgType === T.SOLICIT ? T.ADVERTISE : T.REPLY, m.xid);
      w.option(O.SERVERID, sid).option(O.CLIENTID, findOption(m.options, O.CLIENTID)!);
      if (m.msgType === T.SOLICIT) w.open(O.PREFERENCE).u8(255).close();
      w.open(O.IA_NA).u32(l.client.iaid).u32(0).u32(0);
      if (m.msgType === T.SOLICIT) {
        w.open(O.IAADDR).raw(ip6("2001:db8:1::a")).u32(100).u32(200).close();
      } else {
        w.open(O.IAADDR).raw(ip6("2001:db8:1::a")).u32(0).u32(0).close();
        w.open(O.IAADDR).raw(ip6("2001:db8:1::b")).u32(100).u32(200).close();
      }
      w.close();
      const src = l.ss.ipv6.linkLocalOf([...l.ss.nics.values()][0]!)!;
      const dst = d.buffer.data.slice(d.src6Offset, d.src6Offset + 16);
      ep.send(dst, d.srcPort, w.bytes(), { src, nic: [...l.ss.nics.values()][0]! });
    },
  });
  l.clock.advance(3_000);
  assert.equal(l.client.state, "bound");
  assert.equal(formatIpv6(l.client.lease!.address!.address), "2001:db8:1::b");
  assert.deepEqual(l.addrs(), ["2001:db8:1::b/128"]);
  ep.close();
  l.client.close();
  l.cs.close();
  l.ss.close();
});

Deno.test("DHCPv6 client: it asks for no Reconfigure (no RECONF_ACCEPT sent) and drops a RECONFIGURE, counted once", () => {
  const l = lab();
  l.clock.advance(3_000);
  assert.equal(l.client.state, "bound");
  // None of its messages offered Reconfigure Accept.
  for (const f of l.frames) {
    const m = parseDhcpv6(f.subarray(62)) as Dhcpv6Message;
    assert.equal(findOption(m.options, O.RECONF_ACCEPT), undefined);
  }
  const before = { ...l.client.stats };
  const w = new Dhcpv6Writer(new Uint8Array(256));
  w.header(T.RECONFIGURE, 0).option(O.SERVERID, l.server.duid).option(O.CLIENTID, l.client.duid);
  w.open(O.RECONF_MSG).u8(T.RENEW).close();
  const nic = [...l.ss.nics.values()][0]!;
  const ep = l.ss.udp.bindSocket({ family: 6, port: 0, onDatagram: () => {} });
  ep.send(l.cs.ipv6.linkLocalOf(l.cnic)!, 546, w.bytes(), {
    nic,
    src: l.ss.ipv6.linkLocalOf(nic)!,
  });
  l.clock.advance(10);
  assert.equal(l.client.stats.reconfigureDropped - before.reconfigureDropped, 1);
  const moved = Object.keys(before).filter((k) =>
    k.endsWith("Dropped") &&
    l.client.stats[k as keyof typeof before] !== before[k as keyof typeof before]
  );
  assert.deepEqual(moved, ["reconfigureDropped"]);
  assert.equal(l.client.stats.renewsSent, before.renewsSent);
  assert.equal(l.client.state, "bound");
  ep.close();
  l.close();
});
