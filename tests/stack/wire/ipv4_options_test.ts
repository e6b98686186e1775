import assert from "node:assert/strict";
import { Ipv4Packet, writeIpv4Header } from "../../../stack/wire/ipv4.ts";
import {
  copiedOptions,
  echoReplyOptions,
  findIpv4Option,
  IPV4_OPTIONS_OK,
  Ipv4OptionIterator,
  type Ipv4OptionsResult,
  Ipv4OptionType,
  processForwardingOptions,
  validateIpv4Options,
} from "../../../stack/wire/ipv4_options.ts";
import { parseIpv4 } from "../../../stack/wire/ip_address.ts";
import { AT, blankBuffer, hex, toHex } from "./_helpers.ts";

const A = parseIpv4("192.0.2.1");
const B = parseIpv4("198.51.100.2");
const OUT = parseIpv4("203.0.113.1");

/** An IPv4 header with `options` (raw, padded to 4 by writeIpv4Header) and no payload. */
function packet(options: Uint8Array): Ipv4Packet {
  const hl = 20 + ((options.length + 3) & ~3);
  const p = blankBuffer(hl);
  writeIpv4Header(p, AT, { src: A, dst: B, protocol: 1, payloadLen: 0, options });
  const ip = new Ipv4Packet().reset(p, AT);
  assert.equal(ip.check(), true);
  return ip;
}

function optionBytes(ip: Ipv4Packet): string {
  return toHex(ip.buf.data.subarray(ip.optionsOffset(), ip.off + ip.headerLen()));
}

const fail = (pointer: number): Ipv4OptionsResult => ({ ok: false, pointer });

// Options from RFC 791 §3.1 (formats) with the pointers gVisor's
// processIPOptions returns (counted from the IP header; options start at 20).
const validation: { name: string; options: Uint8Array; want: Ipv4OptionsResult }[] = [
  {
    name: "validateIpv4Options() accepts an empty Record Route",
    options: hex("070b04", "00000000", "00000000"), // RR length 11, pointer 4, 2 slots
    want: IPV4_OPTIONS_OK,
  },
  {
    name: "validateIpv4Options() accepts a full Record Route",
    options: hex("070b0c", "c0000201", "c0000202"), // pointer 12 > length 11
    want: IPV4_OPTIONS_OK,
  },
  {
    name: "validateIpv4Options() rejects a Record Route pointer below 4",
    options: hex("070b03", "00000000", "00000000"),
    want: fail(22),
  },
  {
    name: "validateIpv4Options() rejects a Record Route pointer not at a slot",
    options: hex("070b05", "00000000", "00000000"),
    want: fail(22),
  },
  {
    name: "validateIpv4Options() rejects a Record Route with no room for one address",
    options: hex("0706", "04", "000000"), // length 6 < 3 + 4
    want: fail(21),
  },
  {
    name: "validateIpv4Options() rejects a Record Route with a partial slot left",
    options: hex("070a08", "00000000", "000000"), // pointer 8, length 10: 3 bytes left
    want: fail(22),
  },
  {
    name: "validateIpv4Options() accepts a Timestamp with flags 0",
    options: hex("440c0500", "00000000", "00000000"),
    want: IPV4_OPTIONS_OK,
  },
  {
    name: "validateIpv4Options() accepts a Timestamp with flags 1",
    options: hex("440c0501", "00000000", "00000000"),
    want: IPV4_OPTIONS_OK,
  },
  {
    name: "validateIpv4Options() accepts a Timestamp with flags 3",
    options: hex("440c0503", "cb007101", "00000000"),
    want: IPV4_OPTIONS_OK,
  },
  {
    name: "validateIpv4Options() rejects a Timestamp pointer below 5",
    options: hex("440c0400", "00000000", "00000000"),
    want: fail(22),
  },
  {
    name: "validateIpv4Options() rejects Timestamp flags 2",
    options: hex("440c0502", "00000000", "00000000"),
    want: fail(23),
  },
  {
    name: "validateIpv4Options() rejects a Timestamp pointer between entries",
    options: hex("440c0701", "00000000", "00000000"), // flags 1: entries of 8 bytes
    want: fail(22),
  },
  {
    name: "validateIpv4Options() rejects a Timestamp shorter than its header",
    options: hex("4403", "05", "00"),
    want: fail(21),
  },
  {
    name: "validateIpv4Options() accepts Router Alert value 0",
    options: hex("94040000"),
    want: IPV4_OPTIONS_OK,
  },
  {
    name: "validateIpv4Options() rejects Router Alert value 1 (RFC 2113 §2.1)",
    options: hex("94040001"),
    want: fail(22),
  },
  {
    name: "validateIpv4Options() rejects Router Alert length 5",
    options: hex("9405000000", "000000"),
    want: fail(21),
  },
  {
    name: "validateIpv4Options() rejects an option length below 2",
    options: hex("01", "8201", "00"),
    want: fail(21),
  },
  {
    name: "validateIpv4Options() rejects an option length past the header",
    options: hex("8209", "000000000000"), // 9 > the 8 bytes left
    want: fail(20),
  },
  {
    name: "validateIpv4Options() rejects a type byte without its length byte",
    options: hex("010101", "82"),
    want: fail(23),
  },
  {
    name: "validateIpv4Options() rejects a repeated option",
    options: hex("94040000", "94040000"),
    want: fail(24),
  },
  {
    name: "validateIpv4Options() accepts repeated NOPs, unknown options and bytes after End",
    options: hex("0101", "9904abcd", "820b000000000000000000", "00", "ff", "0000"),
    want: IPV4_OPTIONS_OK,
  },
];

Deno.test("validateIpv4Options() returns the Parameter Problem pointer", async (t) => {
  for (const c of validation) {
    await t.step(c.name, () => {
      assert.deepStrictEqual(validateIpv4Options(packet(c.options)), c.want);
    });
  }
});

// RFC 791 §3.1 "Record Route" and "Internet Timestamp": the host writes at
// pointer−1 and advances the pointer by the entry size.
const processing: {
  name: string;
  options: Uint8Array;
  want: Ipv4OptionsResult;
  after: string;
}[] = [
  {
    name: "processForwardingOptions() records the outgoing address in Record Route",
    options: hex("070b04", "00000000", "00000000", "00"),
    want: IPV4_OPTIONS_OK,
    after: "070b08" + "cb007101" + "00000000" + "00",
  },
  {
    name: "processForwardingOptions() leaves a full Record Route alone",
    options: hex("070b0c", "c0000201", "c0000202", "00"),
    want: IPV4_OPTIONS_OK,
    after: "070b0c" + "c0000201" + "c0000202" + "00",
  },
  {
    name: "processForwardingOptions() writes a timestamp (flags 0)",
    options: hex("440c0500", "00000000", "00000000"),
    want: IPV4_OPTIONS_OK,
    after: "440c0900" + "0036ee80" + "00000000",
  },
  {
    name: "processForwardingOptions() writes address and timestamp (flags 1)",
    options: hex("440c0501", "00000000", "00000000"),
    want: IPV4_OPTIONS_OK,
    after: "440c0d01" + "cb007101" + "0036ee80",
  },
  {
    name: "processForwardingOptions() writes a timestamp for its prespecified address (flags 3)",
    options: hex("44140503", "cb007101", "00000000", "c0000202", "00000000"),
    want: IPV4_OPTIONS_OK,
    after: "44140d03" + "cb007101" + "0036ee80" + "c0000202" + "00000000",
  },
  {
    name: "processForwardingOptions() skips a prespecified address that is not its own",
    options: hex("440c0503", "c0000202", "00000000"),
    want: IPV4_OPTIONS_OK,
    after: "440c0503" + "c0000202" + "00000000",
  },
  {
    name: "processForwardingOptions() increments the overflow count of a full Timestamp",
    options: hex("44080900", "00000001"),
    want: IPV4_OPTIONS_OK,
    after: "44080910" + "00000001",
  },
  {
    name: "processForwardingOptions() rejects a Timestamp whose overflow count overflows",
    options: hex("440809f0", "00000001"),
    want: fail(23),
    after: "440809f0" + "00000001",
  },
  {
    name: "processForwardingOptions() rejects a bad Record Route pointer without writing",
    options: hex("070b03", "00000000", "00000000", "00"),
    want: fail(22),
    after: "070b03" + "00000000" + "00000000" + "00",
  },
  {
    name: "processForwardingOptions() fills Record Route and Timestamp together",
    options: hex("0707", "04", "00000000", "01", "44080500", "00000000"),
    want: IPV4_OPTIONS_OK,
    after: "0707" + "08" + "cb007101" + "01" + "44080900" + "0036ee80",
  },
];

Deno.test("processForwardingOptions() fills Record Route and Timestamp in place", async (t) => {
  const now = 3_600_000; // 01:00:00.000 UTC in ms since midnight = 0x0036ee80
  for (const c of processing) {
    await t.step(c.name, () => {
      const ip = packet(c.options);
      assert.deepStrictEqual(processForwardingOptions(ip, OUT, now), c.want);
      assert.equal(optionBytes(ip), c.after);
      assert.equal(ip.verifyChecksum(), true);
    });
  }
});

Deno.test("copiedOptions() keeps only options with the copied flag", async (t) => {
  // RR (not copied), NOP, Router Alert (0x94, copied), Security (0x82, copied).
  const opts = hex("070704", "00000000", "01", "94040000", "820b", "000000000000000000");
  await t.step("copiedOptions() writes Router Alert and Security, padded to 16 bytes", () => {
    const dst = new Uint8Array(40).fill(0xa5);
    const n = copiedOptions(packet(opts), dst, 4);
    assert.equal(n, 16);
    assert.equal(toHex(dst.subarray(4, 4 + n)), "94040000" + "820b000000000000000000" + "00");
    assert.equal(dst[3], 0xa5);
    assert.equal(dst[20], 0xa5);
  });
  await t.step("copiedOptions() measures with a null destination", () => {
    assert.equal(copiedOptions(packet(opts), null), 16);
  });
  await t.step("copiedOptions() writes nothing for Record Route and Timestamp alone", () => {
    assert.equal(copiedOptions(packet(hex("070704", "00000000", "00")), null), 0);
  });
  await t.step("copiedOptions() returns -1 for malformed options", () => {
    assert.equal(copiedOptions(packet(hex("8209", "000000000000")), null), -1);
  });
});

Deno.test("echoReplyOptions() carries Record Route and Timestamp (RFC 1122 §3.2.2.6)", async (t) => {
  const opts = hex("94040000", "070704", "00000000", "440c0500", "0000000000000000");
  await t.step("echoReplyOptions() copies RR and TS, drops Router Alert", () => {
    const dst = new Uint8Array(40);
    const n = echoReplyOptions(packet(opts), dst, 0);
    assert.equal(n, 20);
    assert.equal(toHex(dst.subarray(0, n)), "07070400000000" + "440c05000000000000000000" + "00");
  });
  await t.step("echoReplyOptions() then processForwardingOptions() records this host", () => {
    const dst = new Uint8Array(40);
    const n = echoReplyOptions(packet(opts), dst, 0);
    const reply = packet(dst.subarray(0, n));
    assert.deepStrictEqual(processForwardingOptions(reply, OUT, 1), IPV4_OPTIONS_OK);
    assert.equal(optionBytes(reply), "070708cb007101" + "440c090000000001" + "00000000" + "00");
  });
});

Deno.test("Ipv4OptionIterator walks options without allocating", async (t) => {
  await t.step("Ipv4OptionIterator yields NOP, Router Alert and stops at End", () => {
    const it = new Ipv4OptionIterator().reset(packet(hex("01", "940400", "00", "00", "9904")));
    const seen: [number, number][] = [];
    while (it.next()) seen.push([it.type, it.length]);
    assert.deepStrictEqual(seen, [[1, 1], [148, 4]]);
    assert.equal(it.errorPointer, -1);
  });
  await t.step("Ipv4OptionIterator reports a bad length at the option's type byte", () => {
    const it = new Ipv4OptionIterator().reset(packet(hex("0101", "0700")));
    assert.equal(it.next(), true);
    assert.equal(it.next(), true);
    assert.equal(it.next(), false);
    assert.equal(it.errorPointer, 22);
  });
  await t.step("findIpv4Option() finds Router Alert", () => {
    const ip = packet(hex("01", "94040000", "000000"));
    assert.equal(findIpv4Option(ip, Ipv4OptionType.ROUTER_ALERT), AT + 21);
    assert.equal(findIpv4Option(ip, Ipv4OptionType.RECORD_ROUTE), -1);
  });
});
