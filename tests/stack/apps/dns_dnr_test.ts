/**
 * DNR (RFC 9463) from the config to the wire: `dnr = [...]` in
 * `[interface.ra]`, `[interface.dhcp6]` and `[interface.dhcp]`, checked
 * against the hand-assembled vectors of tests/stack/wire/_dnr_vectors.ts
 * (an RA frame tapir sends, a DHCPv6 REPLY it sends to an ORO asking for
 * option 144, the DHCPv4 option 162 it is set to send), and `tapir check`'s
 * errors at their key paths.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { MemoryLink } from "../../../link/mod.ts";
import { Dhcpv6Server, ManualClock, MemoryLeaseStore, Stack } from "../../../stack/mod.ts";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  type Dhcpv6Message,
  Dhcpv6MessageType,
  Dhcpv6Option,
  Dhcpv6Writer,
  findOption,
  type PacketBuffer,
  parseDhcpv6,
  parseIpv6,
} from "../../../stack/wire/mod.ts";
import { DHCPV4_TWO, DHCPV6_DOH, DOH, RA_DOT } from "../wire/_dnr_vectors.ts";
import { toHex } from "../wire/_helpers.ts";

const LAN = `[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24", "2001:db8:1::1/64"]\n`;
/** The instances of the vectors, as TOML. */
const DOT_TOML =
  `{ priority = 1, adn = "dot.example", addresses = ["2001:db8::53"], alpn = ["dot"], port = 853, lifetime = "30m" }`;
const DOH_TOML =
  `{ priority = 1, adn = "doh.example", addresses = ["2001:db8::1", "2001:db8::2"], alpn = ["h2", "h3"], dohpath = "/dns-query{?dns}" }`;

Deno.test("DNR in RAs: [interface.ra] dnr goes out as option 144, byte for byte the RFC 9463 §6.1 vector", () => {
  const clock = new ManualClock();
  const [mine, theirs] = MemoryLink.pair({ clock });
  const frames: Uint8Array[] = [];
  theirs.attach({
    deliverFrame(p: PacketBuffer) {
      const f = p.data.slice(p.start, p.end);
      // IPv6, ICMPv6 without extension headers, type 134 (RA).
      if (f[12] === 0x86 && f[13] === 0xdd && f[20] === 58 && f[54] === 134) frames.push(f);
    },
  });
  const text = `[router]\nforwarding = { ipv4 = false, ipv6 = true }\n${LAN}` +
    `[interface.ra]\nenabled = true\nprefixes = [{ prefix = "2001:db8:1::/64" }]\ndnr = [${DOT_TOML}]\n`;
  const built = buildStack(parseConfig(text), { clock, openLink: () => mine });
  clock.advance(10_000);
  built.stack.close();
  assert.ok(frames.length > 0, "an RA was sent");
  const f = frames[0]!;
  const at = f.indexOf(144, 54 + 16);
  assert.ok(at > 0, "option 144 in the RA");
  assert.equal(toHex(f.subarray(at, at + RA_DOT.length)), toHex(RA_DOT));
});

Deno.test("DNR in DHCPv6: OPTION_V6_DNR in the REPLY when the ORO asks for 144 (RFC 9463 §4), not otherwise", () => {
  const cfg = parseConfig(
    `${LAN}[interface.dhcp6]\nenabled = true\npools = [{ start = "2001:db8:1::100", end = "2001:db8:1::1ff" }]\ndnr = [${DOH_TOML}]\n`,
  );
  const st = cfg.interfaces[0]!.dhcp6.settings;
  assert.deepEqual(st.dnr, [DOH]);
  const clock = new ManualClock(1_000_000);
  const [srvEp, cliEp] = MemoryLink.pair({ clock });
  const stack = new Stack({ clock });
  const nic = stack.addNic(srvEp, {
    name: "lan0",
    mac: new Uint8Array([2, 0, 0, 0, 0, 1]),
    ipv6: { forwarding: true },
  });
  stack.ipv6.addAddress(nic, parseIpv6("2001:db8:1::1"), 64);
  const cs = new Stack({ clock });
  const cnic = cs.addNic(cliEp, {
    name: "eth0",
    mac: new Uint8Array([2, 0, 0, 0, 1, 1]),
    ipv6: true,
  });
  clock.advance(5000);
  const server = new Dhcpv6Server(stack, nic, st, {
    store: new MemoryLeaseStore(),
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
      if (typeof m !== "string" && "xid" in m) replies.push(m);
    },
  });
  const ask = (oro: number[]): Dhcpv6Message => {
    const w = new Dhcpv6Writer(new Uint8Array(512));
    w.header(Dhcpv6MessageType.INFORMATION_REQUEST, 0x123456);
    w.open(Dhcpv6Option.ELAPSED_TIME).u16(0).close();
    w.open(Dhcpv6Option.ORO);
    for (const c of oro) w.u16(c);
    w.close();
    ep.send(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 547, w.bytes().slice(), {
      nic: cnic,
      src: cs.ipv6.linkLocalOf(cnic)!,
    });
    clock.advance(5);
    const r = replies.shift();
    assert.ok(r, "a REPLY");
    return r;
  };
  const with144 = ask([Dhcpv6Option.DNS_SERVERS, 144]);
  const d = findOption(with144.options, 144);
  assert.ok(d !== undefined, "option 144 in the REPLY");
  assert.equal(toHex(d), toHex(DHCPV6_DOH.subarray(4)));
  assert.equal(findOption(ask([Dhcpv6Option.DNS_SERVERS]).options, 144), undefined);
  server.close();
  stack.close();
  cs.close();
});

Deno.test("DNR in DHCPv4: [interface.dhcp] dnr becomes option 162 (RFC 9463 §5.1), a custom option sent when the PRL asks for it", () => {
  const cfg = parseConfig(
    `${LAN}[interface.dhcp]\nenabled = true\npools = [{ start = "192.0.2.100", end = "192.0.2.199" }]\ndnr = [\n` +
      `  { priority = 1, adn = "dot.example", addresses = ["192.0.2.53"], alpn = ["dot"] },\n` +
      `  { priority = 2, adn = "resolver.example" },\n]\n`,
  );
  assert.deepEqual(
    cfg.interfaces[0]!.dhcp.settings.options.map((o) => [o.code, toHex(o.value), o.alwaysSend]),
    [[162, toHex(DHCPV4_TWO.subarray(2)), false]],
  );
});

Deno.test("DNR config: every error at once, at its key path", () => {
  const errors = (body: string): string[] => {
    try {
      parseConfig(`${LAN}${body}`);
    } catch (e) {
      return (e as { errors: { path: string; message: string }[] }).errors.map((x) =>
        `${x.path}: ${x.message}`
      );
    }
    return [];
  };
  const e = errors(
    `[interface.ra]\nenabled = true\ndnr = [\n` +
      `  { priority = 0, adn = "a.example", addresses = ["2001:db8::53"], alpn = ["dot"] },\n` +
      `  { priority = 1, addresses = ["192.0.2.53"], alpn = ["dot"] },\n` +
      `  { priority = 1, adn = "a.example", addresses = ["2001:db8::53"] },\n` +
      `  { priority = 1, adn = "a.example", addresses = ["2001:db8::53"], alpn = ["h2"] },\n` +
      `  { priority = 1, adn = "a.example", addresses = ["2001:db8::53"], alpn = ["h2"], dohpath = "dns-query" },\n` +
      `  { priority = 1, adn = "a.example", alpn = ["dot"] },\n` +
      `  { priority = 1, adn = "a.example", addresses = ["ff02::1"], alpn = ["dot"], colour = "red" },\n` +
      `]\n` +
      `[interface.dhcp]\nenabled = true\npools = [{ start = "192.0.2.100", end = "192.0.2.199" }]\n` +
      `dnr = [{ priority = 1, adn = "a.example", addresses = ["2001:db8::53"], alpn = ["dot"], lifetime = "1h" }]\n`,
  );
  const want = [
    /^interface\[0\]\.ra\.dnr\[0\]\.priority: /,
    /^interface\[0\]\.ra\.dnr\[1\]\.adn: "adn" is required/,
    /^interface\[0\]\.ra\.dnr\[1\]\.addresses\[0\]: expected an IPv6 address/,
    /^interface\[0\]\.ra\.dnr\[2\]\.alpn: "alpn" is required/,
    /^interface\[0\]\.ra\.dnr\[3\]\.dohpath: "dohpath" is required for DoH/,
    /^interface\[0\]\.ra\.dnr\[4\]\.dohpath: expected a path template/,
    /^interface\[0\]\.ra\.dnr\[5\]\.alpn: "alpn" needs "addresses"/,
    /^interface\[0\]\.ra\.dnr\[6\]\.addresses\[0\]: ff02::1: an unspecified, loopback or multicast/,
    /^interface\[0\]\.ra\.dnr\[6\]\.colour: /,
    /^interface\[0\]\.dhcp\.dnr\[0\]\.addresses\[0\]: expected an IPv4 address/,
    /^interface\[0\]\.dhcp\.dnr\[0\]\.lifetime: /,
  ];
  for (const w of want) assert.ok(e.some((x) => w.test(x)), `${w}\nin:\n${e.join("\n")}`);
  assert.equal(e.length, want.length, e.join("\n"));
});
