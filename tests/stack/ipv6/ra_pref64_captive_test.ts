/**
 * PREF64 (RFC 8781) and captive portal (RFC 8910) in tapir's RAs: from
 * `[interface.ra]` to the wire, byte for byte as the RFCs lay them out,
 * read back by tapir's own parser and dissected by tshark.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { MemoryLink } from "../../../link/mod.ts";
import { ManualClock } from "../../../stack/mod.ts";
import {
  formatIpv6,
  type PacketBuffer,
  parseNdpOptions,
  PREF64_LENGTHS,
} from "../../../stack/wire/mod.ts";
import { haveTshark, pcap, tshark } from "../wire/_pcap.ts";

const CONFIG = (ra: string) =>
  `[router]\nforwarding = { ipv4 = false, ipv6 = true }\n[[interface]]\nname = "lan0"\naddresses = ["2001:db8:1::1/64"]\n` +
  `[interface.ra]\nenabled = true\nprefixes = [{ prefix = "2001:db8:1::/64" }]\n${ra}`;

/** The first RA frame lan0 sends. */
function firstRa(ra: string): Uint8Array {
  const clock = new ManualClock();
  const [mine, theirs] = MemoryLink.pair({ clock });
  const frames: Uint8Array[] = [];
  theirs.attach({
    deliverFrame(p: PacketBuffer) {
      const f = p.data.slice(p.start, p.end);
      // IPv6, ICMPv6 (no extension headers), type 134.
      if (f[12] === 0x86 && f[13] === 0xdd && f[20] === 58 && f[54] === 134) frames.push(f);
    },
  });
  const built = buildStack(parseConfig(CONFIG(ra)), { clock, openLink: () => mine });
  clock.advance(10_000);
  built.stack.close();
  assert.ok(frames.length > 0, "an RA was sent");
  return frames[0]!;
}

/** The options of an RA frame (after the 16-byte RA body). */
const optionsOf = (f: Uint8Array) => parseNdpOptions(f, 54 + 16, f.length)!;

Deno.test("RA: PREF64 as RFC 8781 §4 lays it out (scaled lifetime, PLC, 96 bits of prefix)", () => {
  const f = firstRa(`pref64 = { prefix = "64:ff9b::/96", lifetime = "30m" }\n`);
  const opts = optionsOf(f);
  const p = opts.find((o) => o.kind === "pref64");
  assert.ok(p !== undefined && p.kind === "pref64");
  assert.deepEqual([p.lifetime, p.prefixLength, formatIpv6(p.prefix)], [1800, 96, "64:ff9b::"]);
  // The bytes: type 38, length 2, (1800/8 = 225) << 3 | PLC 0, then 64:ff9b:0:0:0:0.
  const at = f.indexOf(38, 54 + 16);
  assert.deepEqual([...f.subarray(at, at + 16)], [
    38,
    2,
    0x07,
    0x08,
    0x00,
    0x64,
    0xff,
    0x9b,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  // Each length has its code.
  assert.deepEqual(PREF64_LENGTHS, [96, 64, 56, 48, 40, 32]);
  const g = optionsOf(firstRa(`pref64 = "2001:db8:64::/48"\n`)).find((o) => o.kind === "pref64");
  assert.ok(g !== undefined && g.kind === "pref64");
  assert.deepEqual([g.prefixLength, formatIpv6(g.prefix)], [48, "2001:db8:64::"]);
});

Deno.test("RA: the captive-portal URI, NUL-padded to 8 bytes (RFC 8910 §2.3)", () => {
  const uri = "https://portal.example/api";
  const f = firstRa(`captive_portal = "${uri}"\n`);
  const c = optionsOf(f).find((o) => o.kind === "captivePortal");
  assert.ok(c !== undefined && c.kind === "captivePortal");
  assert.equal(c.uri, uri);
  const at = f.indexOf(37, 54 + 16);
  // 2 + 26 bytes → 32: length 4, two NULs of padding.
  assert.deepEqual([f[at], f[at + 1]], [37, 4]);
  assert.equal(new TextDecoder().decode(f.subarray(at + 2, at + 28)), uri);
  assert.deepEqual([...f.subarray(at + 28, at + 32)], [0, 0, 0, 0]);
});

Deno.test("[interface.ra] pref64 and captive_portal: errors at their key paths", () => {
  const err = (ra: string) => {
    try {
      parseConfig(CONFIG(ra));
    } catch (e) {
      return (e as { errors: { path: string; message: string }[] }).errors[0]!;
    }
    return null;
  };
  const e1 = err(`pref64 = "64:ff9b::/80"\n`)!;
  assert.equal(e1.path, "interface[0].ra.pref64");
  assert.match(e1.message, /\/96, \/64, \/56, \/48, \/40 or \/32/);
  const e2 = err(`captive_portal = "http://portal.example/"\n`)!;
  assert.equal(e2.path, "interface[0].ra.captive_portal");
  assert.match(e2.message, /https:\/\//);
  assert.equal(err(`captive_portal = "urn:ietf:params:capport:unrestricted"\n`), null);
});

const CI = Deno.env.get("CI") === "true";
const tsharkFound = await haveTshark();

Deno.test({
  name: "RA: tshark dissects PREF64 and captive portal as sent, nothing malformed",
  ignore: !tsharkFound && !CI,
  async fn() {
    assert.equal(tsharkFound, true, "tshark is required under CI=true");
    const f = firstRa(
      `pref64 = { prefix = "64:ff9b::/96", lifetime = "30m" }\ncaptive_portal = "https://portal.example/api"\n`,
    );
    const dir = await Deno.makeTempDir({ prefix: "tapir_ra_" });
    try {
      await Deno.writeFile(`${dir}/ra.pcap`, pcap([f]));
      const out = await tshark([
        "-r",
        `${dir}/ra.pcap`,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "icmpv6.opt.pref64.scaled_lifetime",
        "-e",
        "icmpv6.opt.pref64.plc",
        "-e",
        "icmpv6.opt.pref64.prefix",
        "-e",
        "icmpv6.opt.captive_portal",
      ]);
      assert.deepEqual(out.trim().split("|"), [
        "225",
        "0x0000", // PLC 0: /96
        "64:ff9b::",
        "https://portal.example/api",
      ]);
      const bad = await tshark([
        "-r",
        `${dir}/ra.pcap`,
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "_ws.expert.message",
      ]);
      assert.equal(bad.trim(), "", bad);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
