/**
 * MLDv2 as a listener (RFC 3810): state-change reports when a group is
 * joined (§6.1), answers to general queries (§6.2), queries from a
 * non-link-local source ignored (§5.1.14).
 */
import assert from "node:assert/strict";
import { ManualClock, SeededRandom, Stack } from "../../stack/mod.ts";
import { formatIpv6, ipv6SolicitedNode, parseIpv6 } from "../../stack/wire/mod.ts";
import { assertDelta, Hub, rawMac, type TappedFrame, watch } from "./_topology.ts";
import {
  hbh,
  icmp6,
  ip6,
  NH,
  RawHost6,
  readIcmp6,
  readIpv6,
  routerAlert,
  T6,
} from "./_topology6.ts";

interface Report {
  at: number;
  records: { type: number; group: string }[];
}

/** MLDv2 reports in `frames`, checked for the RFC 3810 §5.2 envelope. */
function reports(frames: TappedFrame[]): Report[] {
  const out: Report[] = [];
  for (const f of frames) {
    const ip = readIpv6(f.bytes);
    if (ip.proto !== NH.ICMP6 || ip.l4[0] !== T6.MLD2_REPORT) continue;
    const m = readIcmp6(f.bytes);
    assert.equal(ip.dst, "ff02::16", "reports go to all MLDv2 routers");
    assert.equal(ip.hopLimit, 1, "hop limit 1");
    assert.deepEqual(ip.ext, [NH.HBH], "a Hop-by-Hop header");
    const h = f.bytes.subarray(ip.extOff[0]!, ip.extOff[0]! + 8);
    assert.ok(
      h.subarray(2).join(",").includes(routerAlert(0).join(",")),
      `a Router Alert (MLD) option in ${h.join(",")}`,
    );
    const n = m.rest & 0xffff;
    const records: Report["records"] = [];
    let p = 0;
    for (let i = 0; i < n; i++) {
      const r = m.body.subarray(p);
      records.push({ type: r[0]!, group: formatIpv6(r, 4) });
      p += 20 + ((r[2]! << 8) | r[3]!) * 16 + r[1]! * 4;
    }
    out.push({ at: f.at, records });
  }
  return out;
}

function lab() {
  const clock = new ManualClock();
  const hub = new Hub(clock, "lan");
  const h = new Stack({ clock, random: new SeededRandom(5), hostname: "h" });
  const nic = h.addNic(hub.port("h"), { name: "eth0", ipv6: true });
  const x = new RawHost6(hub.port("x"), rawMac(0x0e), ["fe80::e"]);
  return { clock, hub, h, nic, x };
}

/** An MLDv2 general query (RFC 3810 §5.1) from `src`. */
function query(src: string, maxRespMs: number): Uint8Array {
  const body = new Uint8Array(20); // multicast address ::, S/QRV, QQIC, no sources
  body[16] = 2;
  body[17] = 125;
  return ip6({
    src,
    dst: "ff02::1",
    proto: NH.ICMP6,
    hopLimit: 1,
    ext: [hbh(...routerAlert(0))],
    payload: icmp6(src, "ff02::1", T6.MLD_QUERY, 0, maxRespMs << 16, body),
  });
}

const T = "2001:db8:1::10";
const SN_T = "ff02::1:ff00:10";
const CHANGE_TO_EXCLUDE = 4;
const MODE_IS_EXCLUDE = 2;

Deno.test("MLDv2 (RFC 3810)", async (t) => {
  await t.step(
    "joining a group (a new address's solicited-node group): CHANGE_TO_EXCLUDE, sent twice",
    () => {
      const l = lab();
      l.clock.advance(5_000);
      const since = l.hub.log.length;
      l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
      l.clock.advance(5_000);
      const rs = reports(l.hub.frames("h", since)).filter((r) =>
        r.records.some((x) => x.group === SN_T)
      );
      assert.equal(rs.length, 2, "the report and one retransmission (Robustness 2)");
      for (const r of rs) assert.deepEqual(r.records, [{ type: CHANGE_TO_EXCLUDE, group: SN_T }]);
      assert.ok(rs[1]!.at - rs[0]!.at <= 1_000, "within the Unsolicited Report Interval");
    },
  );
  await t.step("ff02::1 is never reported", () => {
    const l = lab();
    l.clock.advance(5_000);
    const all = reports(l.hub.frames("h")).flatMap((r) => r.records.map((x) => x.group));
    assert.ok(all.length > 0, "the link-local's solicited-node group is reported");
    assert.ok(!all.includes("ff02::1"));
  });
  await t.step(
    "the first report of a new NIC comes from ::, later ones from the link-local",
    () => {
      const l = lab();
      l.clock.advance(5_000);
      const srcs = l.hub.frames("h").filter((f) => readIpv6(f.bytes).l4[0] === T6.MLD2_REPORT)
        .map((f) => readIpv6(f.bytes).src);
      assert.equal(srcs[0], "::");
    },
  );
  await t.step(
    "a general query from a link-local router: MODE_IS_EXCLUDE within the max response delay",
    () => {
      const l = lab();
      l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
      l.clock.advance(5_000);
      const since = l.hub.log.length;
      const d = watch(l.h);
      l.x.sendMulticast(query("fe80::e", 1_000), "ff02::1");
      l.clock.advance(1_000);
      const rs = reports(l.hub.frames("h", since));
      assert.equal(rs.length, 1);
      const groups = rs[0]!.records.map((r) => r.group).sort();
      const ll = l.h.ipv6.linkLocalOf(l.nic)!;
      const llSn = formatIpv6(ipv6SolicitedNode(ll));
      assert.deepEqual(groups, [llSn, SN_T].sort(), "every joined group but ff02::1");
      assert.ok(rs[0]!.records.every((r) => r.type === MODE_IS_EXCLUDE));
      assert.equal(readIpv6(l.hub.frames("h", since)[0]!.bytes).src, formatIpv6(ll));
      assertDelta(d(), { "mld.queriesReceived": 1, "mld.reportsSent": 1 });
    },
  );
  await t.step("a query from a global source is ignored", () => {
    const l = lab();
    l.clock.advance(5_000);
    const since = l.hub.log.length;
    const d = watch(l.h);
    l.x.sendMulticast(query("2001:db8:1::e", 1_000), "ff02::1");
    l.clock.advance(2_000);
    assert.equal(reports(l.hub.frames("h", since)).length, 0);
    assertDelta(d(), { "mld.invalidQueriesDropped": 1, "mld.queriesReceived": 0 });
  });
});
