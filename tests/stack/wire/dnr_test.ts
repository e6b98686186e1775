/**
 * DNR (RFC 9463) options against the hand-assembled vectors of
 * `_dnr_vectors.ts` (neither scapy 2.5.0 nor tshark 4.0 knows them): each
 * is checked against the encoder (emitted into 0xa5 bytes where a buffer
 * is involved) and against the parser.
 */
import assert from "node:assert/strict";
import {
  DHCPV4_DNR_OPTION,
  DHCPV6_DNR_OPTION,
  encodeDhcpv4Dnr,
  encodeDhcpv6Dnr,
  encodeSvcParams,
  parseDhcpv4Dnr,
  parseDhcpv6Dnr,
  parseSvcParams,
} from "../../../stack/wire/dnr.ts";
import {
  ndpOptionLen,
  NdpOptionType,
  parseNdpOptions,
  writeNdpOption,
} from "../../../stack/wire/ndp.ts";
import { DHCPV4_OPTIONS_OFFSET, Dhcpv4Message, writeDhcpv4 } from "../../../stack/wire/dhcpv4.ts";
import { AT, blankBuffer, frameOf, hex, toHex } from "./_helpers.ts";
import {
  ADN_ONLY,
  DHCPV4_LIST,
  DHCPV4_TWO,
  DHCPV6_DOH,
  DOH,
  DOT,
  RA_ADN_ONLY,
  RA_DOT,
} from "./_dnr_vectors.ts";

Deno.test("DNR RA option (RFC 9463 §6.1): DoT and ADN-only vectors, written and parsed", async (t) => {
  for (
    const [name, inst, lifetime, bytes] of [
      ["DoT, port 853", DOT, 1800, RA_DOT],
      ["ADN-only, infinite lifetime", ADN_ONLY, 0xffffffff, RA_ADN_ONLY],
    ] as const
  ) {
    await t.step(name, () => {
      const o = { kind: "dnr" as const, lifetime, instance: inst };
      assert.equal(ndpOptionLen(o), bytes.length);
      const buf = blankBuffer(bytes.length);
      assert.equal(writeNdpOption(buf, AT, o), bytes.length);
      assert.equal(toHex(frameOf(buf)), toHex(bytes));
      const parsed = parseNdpOptions(bytes, 0, bytes.length);
      assert.deepEqual(parsed, [o]);
    });
  }
});

Deno.test("DNR RA option: malformed ones are left out, not thrown on", async (t) => {
  const bad: [string, Uint8Array][] = [
    ["priority 0 (alias mode)", RA_DOT.slice().fill(0, 2, 4)],
    [
      "Addr Length not a multiple of 16",
      (() => {
        const b = RA_DOT.slice();
        b[24] = 0x0f; // Addr Length 15
        return b;
      })(),
    ],
    [
      "ADN Length past the option",
      (() => {
        const b = RA_DOT.slice();
        b[9] = 0xff;
        return b;
      })(),
    ],
    [
      "non-zero padding",
      (() => {
        const b = RA_DOT.slice();
        b[63] = 1;
        return b;
      })(),
    ],
    ["shorter than 16 bytes", hex("9001", "0001", "00000708")],
  ];
  for (const [name, b] of bad) {
    await t.step(name, () => {
      const r = parseNdpOptions(b, 0, b.length);
      assert.ok(r === null || !r.some((o) => o.kind === "dnr"), JSON.stringify(r));
    });
  }
  assert.equal(NdpOptionType.DNR, 144);
});

Deno.test("OPTION_V6_DNR (RFC 9463 §4.1): DoH vector, encoded and parsed; ADN-only ends after the ADN", () => {
  const data = encodeDhcpv6Dnr(DOH);
  assert.equal(DHCPV6_DNR_OPTION, 144);
  assert.equal(toHex(data), toHex(DHCPV6_DOH.subarray(4)));
  assert.deepEqual(parseDhcpv6Dnr(DHCPV6_DOH.subarray(4)), DOH);
  // ADN-only: Service Priority, ADN Length, ADN, nothing after.
  const only = hex("0002", "0012", "087265736f6c766572076578616d706c6500");
  assert.equal(toHex(encodeDhcpv6Dnr(ADN_ONLY)), toHex(only));
  assert.deepEqual(parseDhcpv6Dnr(only), ADN_ONLY);
  // Malformed: the SvcParams' length runs past the end; no alpn.
  assert.equal(parseDhcpv6Dnr(DHCPV6_DOH.subarray(4, DHCPV6_DOH.length - 1)), null);
  const noAlpn = encodeDhcpv6Dnr(DOH).slice(0, 4 + 13 + 2 + 32);
  assert.equal(parseDhcpv6Dnr(noAlpn), null, "addresses without SvcParams: alpn is required");
});

Deno.test("OPTION_V4_DNR (RFC 9463 §5.1): two instances, encoded, written as option 162 and parsed", () => {
  const list = DHCPV4_LIST;
  const data = encodeDhcpv4Dnr(list);
  assert.equal(toHex(data), toHex(DHCPV4_TWO.subarray(2)));
  assert.deepEqual(parseDhcpv4Dnr(data), list);
  // Through the DHCPv4 message writer: code, length, data, then END.
  const out = new Uint8Array(1024).fill(0xa5);
  writeDhcpv4(out, 0, { op: 2, xid: 1, chaddr: new Uint8Array(6) }, [[DHCPV4_DNR_OPTION, data]]);
  const at = DHCPV4_OPTIONS_OFFSET;
  assert.equal(toHex(out.subarray(at, at + DHCPV4_TWO.length + 1)), toHex(DHCPV4_TWO) + "ff");
  // Over 255 bytes: split into instances of option 162 (RFC 3396), joined again by the parser.
  const many = Array.from({ length: 12 }, (_, i) => ({ ...list[0]!, priority: i + 1 }));
  const long = encodeDhcpv4Dnr(many);
  assert.ok(long.length > 255);
  writeDhcpv4(out, 0, { op: 2, xid: 1, chaddr: new Uint8Array(6) }, [[DHCPV4_DNR_OPTION, long]]);
  assert.deepEqual([out[at], out[at + 1], out[at + 257]], [162, 255, 162]);
  const opts = new Dhcpv4Message(out, 0, out.length).options();
  assert.ok(typeof opts !== "string");
  assert.deepEqual(parseDhcpv4Dnr(opts.get(DHCPV4_DNR_OPTION)!), many);
  // An instance whose length overruns the option.
  const cut = data.slice(0, 20);
  assert.equal(parseDhcpv4Dnr(cut), null);
});

Deno.test("SvcParams: alpn, port, dohpath in key order; out-of-order keys rejected", () => {
  const sp = encodeSvcParams({ alpn: ["h2"], port: 443, dohpath: "/q{?dns}" });
  assert.equal(
    toHex(sp),
    toHex(hex(
      "0001",
      "0003",
      "026832", // alpn "h2"
      "0003",
      "0002",
      "01bb", // port 443
      "0007",
      "0008",
      "2f717b3f646e737d", // dohpath "/q{?dns}"
    )),
  );
  assert.deepEqual(parseSvcParams(sp), { alpn: ["h2"], port: 443, dohpath: "/q{?dns}" });
  assert.equal(parseSvcParams(hex("0003", "0002", "01bb", "0001", "0003", "026832")), null);
});
