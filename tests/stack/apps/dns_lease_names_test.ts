/**
 * DHCP lease names in the DNS forwarder, on a memory link with the manual
 * clock: a gateway built from a config with `[interface.dhcp]`,
 * `[interface.dhcp6]` and `[dns]` on lan0, and a host whose tapir DHCPv4
 * client sends its hostname while a scripted DHCPv6 client on the same
 * stack sends Client FQDN options (RFC 4704) built with the wire writer:
 *
 *   host (DHCPv4 "host", DHCPv6 FQDN) ── lan0 192.0.2.1 2001:db8:1::1  gw
 *
 * The host asks the gateway's port 53 for A, AAAA and PTR.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { applyConfig } from "../../../config/reload.ts";
import { MemoryLink } from "../../../link/mod.ts";
import {
  type Dhcpv4Client,
  type Dhcpv6Server,
  type DnsForwarder,
  ManualClock,
  reverseName,
} from "../../../stack/mod.ts";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  decodeDomainList,
  type Dhcpv6Message,
  Dhcpv6MessageType as T,
  Dhcpv6Option as O,
  Dhcpv6Writer,
  DnsRcode,
  DnsType,
  DnsWriter,
  duidLl,
  encodeDomainList,
  findOption,
  formatIpv4,
  formatIpv6,
  parseDhcpv6,
  parseDns,
  parseIa,
  parseIaAddr,
  parseIpv4,
  readDnsName,
} from "../../../stack/wire/mod.ts";

const FQDN = 39;

const GW = `
[router]
hostname = "gw"
[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
[interface.dhcp]
pools = ["192.0.2.100-192.0.2.110"]
domain = "lan"
conflict_probe = "0s"
[interface.dhcp6]
pools = ["2001:db8:1::100-2001:db8:1::1ff"]
search = ["lan"]
[dns]
interfaces = ["lan0"]
local = ["lan"]
servers = []
`;

const HOST = `
[router]
hostname = "host"
[[interface]]
name = "eth0"
addresses = ["dhcp"]
[interface.dhcp_client]
probes = 1
`;

/** A Client FQDN option's data: flags, then the name (`partial`: without the terminating zero, RFC 4704 §4.2). */
function fqdnOption(flags: number, name: string, partial: boolean): Uint8Array {
  const enc = encodeDomainList([name]);
  return Uint8Array.of(flags, ...(partial ? enc.subarray(0, enc.length - 1) : enc));
}

function lab(gwConfig = GW) {
  const clock = new ManualClock(1_000_000);
  const [gl, hl] = MemoryLink.pair({ clock, names: ["gw:lan0", "host:eth0"] });
  const gwConfigParsed = parseConfig(gwConfig);
  const built = buildStack(gwConfigParsed, { clock, openLink: () => gl });
  const gw = built.stack;
  /** Reload the gateway with another config text. */
  const reload = (text: string) => {
    const r = applyConfig(gw, built.nics, gwConfigParsed, parseConfig(text));
    assert.deepEqual(r.notApplied, []);
  };
  const host = buildStack(parseConfig(HOST), { clock, openLink: () => hl }).stack;
  clock.advance(10_000);
  const h4 = host.services.get("dhcp4-client:eth0") as Dhcpv4Client;
  assert.ok(h4.lease !== null, "the host's DHCPv4 lease");
  const eth0 = [...host.nics.values()][0]!;
  const replies: Dhcpv6Message[] = [];
  const ep6 = host.udp.bindSocket({
    family: 6,
    port: 546,
    device: eth0,
    onDatagram: (d) => {
      const m = parseDhcpv6(
        d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength),
      );
      if (typeof m === "object" && !("hopCount" in m)) replies.push(m);
    },
  });
  const ll = host.ipv6.linkLocalOf(eth0)!;
  /** One DHCPv6 exchange step: send, run the clock (group commit), the replies. */
  const dhcp6 = (
    type: number,
    o: {
      duid: Uint8Array;
      fqdn?: Uint8Array;
      serverId?: Uint8Array;
      addr?: Uint8Array;
    },
  ): Dhcpv6Message[] => {
    const w = new Dhcpv6Writer(new Uint8Array(512));
    w.header(type, 0x1234);
    w.option(O.CLIENTID, o.duid);
    if (o.serverId !== undefined) w.option(O.SERVERID, o.serverId);
    w.open(O.ELAPSED_TIME).u16(0).close();
    if (o.fqdn !== undefined) w.option(FQDN, o.fqdn);
    w.open(O.IA_NA).u32(1).u32(0).u32(0);
    if (o.addr !== undefined) w.open(O.IAADDR).raw(o.addr).u32(0).u32(0).close();
    w.close();
    ep6.send(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 547, w.bytes().slice(), { nic: eth0, src: ll });
    clock.advance(10);
    return replies.splice(0);
  };
  /** SOLICIT then REQUEST: the address granted, and both answers. */
  const bind6 = (duid: Uint8Array, fqdn?: Uint8Array) => {
    const [adv] = dhcp6(T.SOLICIT, { duid, fqdn });
    assert.equal(adv?.msgType, T.ADVERTISE);
    const serverId = findOption(adv.options, O.SERVERID)!;
    const [rep] = dhcp6(T.REQUEST, { duid, fqdn, serverId, addr: iaAddr(adv) });
    assert.equal(rep?.msgType, T.REPLY);
    return { addr: iaAddr(rep), adv, rep, serverId };
  };
  const answers: { rcode: number; aa: boolean; data: string[] }[] = [];
  const ep = host.udp.bindSocket({
    family: 4,
    port: 0,
    onDatagram: (d) => {
      const b = d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength);
      const m = parseDns(b);
      if (typeof m === "string") return;
      answers.push({
        rcode: m.rcode,
        aa: (m.flags & 0x0400) !== 0,
        data: m.answers.map((r) => {
          const rd = b.subarray(r.rdataOffset, r.rdataOffset + r.rdataLength);
          if (r.type === DnsType.A) return [...rd].join(".");
          if (r.type === DnsType.AAAA) return formatIpv6(rd);
          const n = readDnsName(b, r.rdataOffset);
          return typeof n === "string" ? `bad: ${n}` : n.name;
        }),
      });
    },
  });
  /** One query to the gateway's port 53; its answer. */
  const ask = (name: string, type: number) => {
    const w = new DnsWriter(new Uint8Array(512));
    w.header({ id: 7, flags: 0x0100, qd: 1 }).question(name, type);
    const n = answers.length;
    ep.send(parseIpv4("192.0.2.1"), 53, w.bytes());
    clock.advance(50);
    assert.equal(answers.length, n + 1, `one answer to ${name}`);
    return answers[n]!;
  };
  const fwd = gw.services.get("dns") as DnsForwarder;
  const srv6 = gw.services.get("dhcp6:lan0") as Dhcpv6Server;
  const close = () => {
    ep.close();
    ep6.close();
    gw.close();
    host.close();
  };
  return { clock, gw, host, h4, fwd, srv6, dhcp6, bind6, ask, reload, close };
}

function iaAddr(m: Dhcpv6Message): Uint8Array {
  const ia = parseIa(findOption(m.options, O.IA_NA)!);
  if (typeof ia === "string") throw new Error(ia);
  const a = parseIaAddr(findOption(ia.options, O.IAADDR)!);
  if (typeof a === "string") throw new Error(a);
  return a.address.slice();
}

/** The Client FQDN option of an answer: its flags and the name, and whether it was fully qualified. */
function fqdnOf(m: Dhcpv6Message): { flags: number; name: string; full: boolean } | null {
  const o = findOption(m.options, FQDN);
  if (o === undefined) return null;
  const full = decodeDomainList(o.subarray(1));
  const names = full ?? decodeDomainList(Uint8Array.of(...o.subarray(1), 0));
  assert.ok(names !== null && names.length === 1, `one name in ${[...o]}`);
  return { flags: o[0]!, name: names[0]!, full: full !== null };
}

Deno.test("DNS forwarder: a DHCPv6 client's FQDN names its address (AAAA and ip6.arpa PTR), next to its DHCPv4 name", () => {
  const t = lab();
  const duid = duidLl(new Uint8Array([2, 0, 0, 0, 0, 0x42]));
  // A partial name, S clear (the client does not ask the server to update): RFC 4704 §4.2.
  const { addr, adv, rep } = t.bind6(duid, fqdnOption(0, "host", true));
  const a6 = formatIpv6(addr);
  const a4 = formatIpv4(t.h4.lease!.address);
  // The server answers with the name it uses (in its first search domain) and S and O set:
  // it answers for the name itself, overriding the client's S (as dnsmasq does).
  for (const m of [adv, rep]) {
    assert.deepEqual(fqdnOf(m), { flags: 0x03, name: "host.lan", full: true });
  }
  assert.equal(t.srv6.leases().find((l) => l.address === a6)?.hostname, "host");
  // Asked at once, without waiting for the lease-name cache's 10 s: the server's version moved.
  assert.deepEqual(t.ask("host.lan", DnsType.AAAA), {
    rcode: DnsRcode.NOERROR,
    aa: true,
    data: [a6],
  });
  assert.deepEqual(t.ask("HOST.lan", DnsType.A).data, [a4]);
  assert.deepEqual(t.ask("host", DnsType.AAAA).data, [a6]);
  assert.deepEqual(t.ask(reverseName({ family: 6, address: addr }), DnsType.PTR), {
    rcode: DnsRcode.NOERROR,
    aa: true,
    data: ["host.lan"],
  });
  assert.deepEqual(
    t.ask(reverseName({ family: 4, address: t.h4.lease!.address }), DnsType.PTR).data,
    [
      "host.lan",
    ],
  );

  // A RENEW without the option keeps the name; one with it answers it again.
  const serverId = t.srv6.duid;
  const [renew] = t.dhcp6(T.RENEW, { duid, serverId, addr });
  assert.equal(renew?.msgType, T.REPLY);
  assert.equal(fqdnOf(renew), null, "no Client FQDN asked, none answered");
  assert.deepEqual(t.ask("host.lan", DnsType.AAAA).data, [a6]);

  // RELEASE: the AAAA and its PTR go at once; the DHCPv4 name stays (NODATA for AAAA).
  const [rel] = t.dhcp6(T.RELEASE, { duid, serverId, addr });
  assert.equal(rel?.msgType, T.REPLY);
  assert.deepEqual(t.ask("host.lan", DnsType.AAAA), {
    rcode: DnsRcode.NOERROR,
    aa: true,
    data: [],
  });
  assert.deepEqual(t.ask("host.lan", DnsType.A).data, [a4]);
  // Not a local name any more: forwarded, and with no upstream, SERVFAIL.
  assert.deepEqual(t.ask(reverseName({ family: 6, address: addr }), DnsType.PTR), {
    rcode: DnsRcode.SERVFAIL,
    aa: false,
    data: [],
  });
  t.close();
});

Deno.test("DHCPv6 server: a fully qualified FQDN in another domain names the host by its first label; a bad name is not kept", () => {
  const t = lab();
  // Fully qualified, S set (the client asks the server to update): S back, no O.
  const other = t.bind6(
    duidLl(new Uint8Array([2, 0, 0, 0, 0, 0x43])),
    fqdnOption(0x01, "printer.elsewhere.example", false),
  );
  assert.deepEqual(fqdnOf(other.rep), { flags: 0x01, name: "printer.lan", full: true });
  assert.deepEqual(t.ask("printer.lan", DnsType.AAAA).data, [formatIpv6(other.addr)]);
  assert.equal(t.ask("printer.elsewhere.example", DnsType.AAAA).rcode, DnsRcode.SERVFAIL);
  // Not a hostname (RFC 952/1123 letters, digits, hyphens): leased, but without a name.
  const bad = t.bind6(
    duidLl(new Uint8Array([2, 0, 0, 0, 0, 0x44])),
    fqdnOption(0, "bad_name", true),
  );
  assert.equal(fqdnOf(bad.rep), null);
  assert.equal(t.srv6.leases().find((l) => l.address === formatIpv6(bad.addr))?.hostname, null);
  assert.deepEqual(t.ask("bad_name.lan", DnsType.AAAA), {
    rcode: DnsRcode.NXDOMAIN,
    aa: true,
    data: [],
  });
  // A name whose labels run past the option's end is no name either.
  const cut = t.bind6(
    duidLl(new Uint8Array([2, 0, 0, 0, 0, 0x45])),
    Uint8Array.of(0, 9, ...new TextEncoder().encode("short")),
  );
  assert.equal(fqdnOf(cut.rep), null);
  assert.equal(t.srv6.leases().find((l) => l.address === formatIpv6(cut.addr))?.hostname, null);
  t.close();
});

Deno.test("DHCPv6 server: without a search domain the name is answered partial, and the lease's name is bare", () => {
  const t = lab(GW.replace(`search = ["lan"]`, ""));
  const nas = t.bind6(
    duidLl(new Uint8Array([2, 0, 0, 0, 0, 0x46])),
    fqdnOption(0, "nas.home.arpa", false),
  );
  assert.deepEqual(fqdnOf(nas.adv), { flags: 0x03, name: "nas", full: false });
  assert.deepEqual(fqdnOf(nas.rep), { flags: 0x03, name: "nas", full: false });
  assert.deepEqual(t.ask("nas", DnsType.AAAA).data, [formatIpv6(nas.addr)]);
  // The DHCPv6 server has no domain: "nas.lan" is not its name (lan is local: NXDOMAIN).
  assert.equal(t.ask("nas.lan", DnsType.AAAA).rcode, DnsRcode.NXDOMAIN);
  assert.deepEqual(t.ask(reverseName({ family: 6, address: nas.addr }), DnsType.PTR).data, [
    "nas",
  ]);
  t.close();
});

Deno.test("DNS forwarder: a reload that changes the DHCPv6 search domain renames the leases at once", () => {
  const t = lab(GW.replace(`local = ["lan"]`, `local = ["lan", "home.arpa"]`));
  const { addr } = t.bind6(
    duidLl(new Uint8Array([2, 0, 0, 0, 0, 0x47])),
    fqdnOption(0, "tv", true),
  );
  assert.deepEqual(t.ask("tv.lan", DnsType.AAAA).data, [formatIpv6(addr)]);
  t.reload(
    GW.replace(`local = ["lan"]`, `local = ["lan", "home.arpa"]`).replace(
      `search = ["lan"]`,
      `search = ["home.arpa"]`,
    ),
  );
  // No 10 s wait: the server's version moved with its settings.
  assert.deepEqual(t.ask("tv.home.arpa", DnsType.AAAA).data, [formatIpv6(addr)]);
  assert.deepEqual(t.ask("tv.lan", DnsType.AAAA).data, []);
  assert.deepEqual(t.ask(reverseName({ family: 6, address: addr }), DnsType.PTR).data, [
    "tv.home.arpa",
  ]);
  t.close();
});
