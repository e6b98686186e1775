/**
 * DHCPv4 messages and option values against byte vectors written by hand
 * from RFC 2131 §2, RFC 2132, RFC 3396, RFC 3397 and RFC 3442.
 */
import assert from "node:assert/strict";
import {
  decodeClasslessRoutes,
  decodeIpv4List,
  decodeText,
  decodeUint,
  DHCPV4_MIN_LEN,
  Dhcpv4Message,
  Dhcpv4Option as O,
  encodeClasslessRoutes,
  encodeDomainSearch,
  encodeIpv4List,
  parseIpv4,
  writeDhcpv4,
} from "../../../stack/wire/mod.ts";
import { AT, hex, toHex } from "./_helpers.ts";

/** A DISCOVER from 02:00:00:00:01:01, xid 0x3903f326, broadcast flag, PRL 1,3,6. */
const DISCOVER = hex(
  "01 01 06 00", // op BOOTREQUEST, htype Ethernet, hlen 6, hops 0
  "39 03 f3 26", // xid
  "00 05 80 00", // secs 5, flags BROADCAST
  "00000000 00000000 00000000 00000000", // ciaddr yiaddr siaddr giaddr
  "020000000101 00000000000000000000", // chaddr (16)
  "00".repeat(64 + 128), // sname, file
  "63 82 53 63", // magic cookie
  "35 01 01", // 53 DISCOVER
  "37 03 01 03 06", // 55 PRL
  "ff", // END
);

Deno.test("dhcpv4: the view reads every fixed field and the options", () => {
  const b = new Uint8Array(AT + DISCOVER.length + 8).fill(0xa5);
  b.set(DISCOVER, AT);
  const m = new Dhcpv4Message(b, AT, DISCOVER.length);
  assert.equal(m.op(), 1);
  assert.equal(m.htype(), 1);
  assert.equal(m.hlen(), 6);
  assert.equal(m.xid(), 0x3903f326);
  assert.equal(m.secs(), 5);
  assert.equal(m.flags(), 0x8000);
  assert.equal(toHex(m.chaddr().subarray(0, 6)), "020000000101");
  const o = m.options();
  assert.ok(typeof o !== "string");
  assert.deepEqual([...o.keys()], [53, 55]);
  assert.deepEqual([...o.get(55)!], [1, 3, 6]);
});

Deno.test("dhcpv4: the writer makes the same bytes, padded to 300", () => {
  const out = new Uint8Array(400).fill(0xa5);
  const n = writeDhcpv4(out, 10, {
    op: 1,
    xid: 0x3903f326,
    secs: 5,
    flags: 0x8000,
    chaddr: new Uint8Array([2, 0, 0, 0, 1, 1]),
  }, [[O.MESSAGE_TYPE, new Uint8Array([1])], [
    O.PARAMETER_REQUEST_LIST,
    new Uint8Array([1, 3, 6]),
  ]]);
  assert.equal(n, DHCPV4_MIN_LEN);
  assert.equal(toHex(out.subarray(10, 10 + DISCOVER.length)), toHex(DISCOVER));
  assert.ok(out.subarray(10 + DISCOVER.length, 10 + n).every((x) => x === 0), "zero padding");
  assert.equal(out[10 + n], 0xa5, "nothing written past the message");
});

Deno.test("dhcpv4: an option longer than 255 bytes is split, and split options are joined (RFC 3396)", () => {
  const long = new Uint8Array(300).map((_, i) => i & 0xff);
  const out = new Uint8Array(700);
  const n = writeDhcpv4(out, 0, { op: 2, xid: 1, chaddr: new Uint8Array(6) }, [[O.MESSAGE, long]]);
  assert.deepEqual([out[240], out[241], out[242 + 255], out[243 + 255]], [56, 255, 56, 45]);
  const o = new Dhcpv4Message(out, 0, n).options();
  assert.ok(typeof o !== "string");
  assert.deepEqual(o.get(O.MESSAGE), long);
});

Deno.test("dhcpv4: malformed messages are named", () => {
  const m = (b: Uint8Array) => new Dhcpv4Message(b, 0, b.length).options();
  assert.equal(m(DISCOVER.slice(0, 239)), "short");
  const noCookie = DISCOVER.slice();
  noCookie[239] = 0x64;
  assert.equal(m(noCookie), "badCookie");
  // 55 says 3 bytes, 2 remain.
  assert.equal(m(DISCOVER.slice(0, 246)), "optionTruncated");
  const overlong = DISCOVER.slice();
  overlong[244] = 250;
  assert.equal(m(overlong), "optionTruncated");
  const badOv = DISCOVER.slice();
  badOv.set([52, 1, 4, 255], 243);
  assert.equal(m(badOv), "badOverload");
  // Overload into `sname` whose options overload again.
  const twice = DISCOVER.slice();
  twice.set([52, 1, 2, 255], 243);
  twice.set([52, 1, 1, 255], 44);
  assert.equal(m(twice), "badOverload");
  // No END: tolerated.
  const noEnd = DISCOVER.slice(0, DISCOVER.length - 1);
  const o = m(noEnd);
  assert.ok(typeof o !== "string" && o.get(53)![0] === 1);
});

Deno.test("dhcpv4: option overload reads `file` and then `sname`", () => {
  const b = DISCOVER.slice();
  b.set([52, 1, 3, 255], 243); // options replaced from the PRL on
  b.set([12, 4, ...new TextEncoder().encode("host"), 255], 108); // file: hostname
  b.set([15, 3, ...new TextEncoder().encode("lan"), 255], 44); // sname: domain
  const o = new Dhcpv4Message(b, 0, b.length).options();
  assert.ok(typeof o !== "string");
  assert.equal(decodeText(o.get(12)!), "host");
  assert.equal(decodeText(o.get(15)!), "lan");
  assert.equal(o.has(52), false);
});

Deno.test("dhcpv4: RFC 3442 classless routes round-trip with the RFC's encodings", () => {
  const routes = [
    { prefix: parseIpv4("10.0.0.0"), prefixLen: 8, router: parseIpv4("10.0.0.1") },
    { prefix: parseIpv4("10.17.0.0"), prefixLen: 16, router: parseIpv4("10.229.0.128") },
    { prefix: parseIpv4("10.27.129.0"), prefixLen: 24, router: parseIpv4("10.229.0.128") },
    { prefix: 0, prefixLen: 0, router: parseIpv4("192.0.2.1") },
  ];
  const b = encodeClasslessRoutes(routes);
  assert.equal(
    toHex(b),
    "08 0a 0a000001".replace(/ /g, "") + "10 0a11 0ae50080".replace(/ /g, "") +
      "18 0a1b81 0ae50080".replace(/ /g, "") + "00 c0000201".replace(/ /g, ""),
  );
  assert.deepEqual(decodeClasslessRoutes(b), routes);
  assert.equal(decodeClasslessRoutes(new Uint8Array([33, 1, 2, 3, 4, 5, 6, 7, 8])), null);
  assert.equal(decodeClasslessRoutes(new Uint8Array([24, 10, 0])), null);
});

Deno.test("dhcpv4: RFC 3397 search list, address lists and integers", () => {
  assert.equal(
    toHex(encodeDomainSearch(["eng.example.", "x"])),
    "03656e67076578616d706c6500017800",
  );
  assert.equal(toHex(encodeIpv4List([parseIpv4("192.0.2.53"), 1])), "c000023500000001");
  assert.deepEqual(decodeIpv4List(hex("c0000235")), [parseIpv4("192.0.2.53")]);
  assert.equal(decodeIpv4List(hex("c00002")), null);
  assert.equal(decodeUint(hex("00000e10"), 4), 3600);
  assert.equal(decodeUint(hex("0e10"), 4), null);
  assert.equal(decodeText(hex("686f737400")), "host");
});
