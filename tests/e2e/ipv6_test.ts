/**
 * IPv6 against the Linux kernel: two host namespaces, tapir routing between
 * them, the kernel's ping, traceroute, tracepath, ip neigh, ndisc6, DAD,
 * and scapy-crafted packets for the receive path's answers.
 *
 *   h1 (2001:db8:1::2/64) ── tapir lan0 2001:db8:1::1 | wan0 2001:db8:2::1 (mtu 1280) ── h2 (2001:db8:2::2/64)
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  REPO,
  requireTool,
  run,
  startTapir,
  type Tapir,
  waitFor,
  withTopology,
} from "./harness.ts";

const id = String(Deno.pid % 100000);
const LAN_TAP = `t6l${id}`;
const WAN_TAP = `t6w${id}`;

const CONFIG = `
[router]
hostname = "e2e-ipv6"
forwarding = true

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]

[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
mtu = 1280
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
`;

async function sh(ns: Netns, cmd: string, timeoutMs = 20_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

interface Addresses {
  [nic: string]: { ipv6: string[]; mac: string };
}

async function addresses(tapir: Tapir): Promise<Addresses> {
  const r = await run([
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    `${REPO}/main.ts`,
    "show",
    "addresses",
    "--control",
    tapir.controlPath,
    "--json",
  ]);
  return JSON.parse(r.stdout);
}

const IPV6_TOOLS = ["ping", "traceroute", "tracepath", "ndisc6", "tshark", "scapy"];

Deno.test({
  name: "IPv6 e2e: tapir routes, answers NDP and ICMPv6 like the kernel expects",
  ignore: ignoreUnlessReady("IPv6 e2e", IPV6_TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of IPV6_TOOLS) {
      if (!(await requireTool(tool))) return;
    }
    await withTopology("tpe6", async (topo) => {
      const r = await topo.netns("r");
      const h1 = await topo.netns("h1");
      const h2 = await topo.netns("h2");
      const tapir = await startTapir({ config: CONFIG, ns: r, topo, capture: true });
      await moveTapToNs(LAN_TAP, r, h1, { address: "2001:db8:1::2/64" });
      await moveTapToNs(WAN_TAP, r, h2, { address: "2001:db8:2::2/64", mtu: 1280 });
      await h1.ip("-6", "route", "add", "default", "via", "2001:db8:1::1");
      await h2.ip("-6", "route", "add", "default", "via", "2001:db8:2::1");
      // tapir's own DAD (≤ 1 s delay + 1 s) and the kernel's link-local DAD.
      await waitFor("tapir's IPv6 addresses to pass DAD", async () => {
        const a = await addresses(tapir);
        return a.lan0!.ipv6.every((x) => !x.includes("tentative")) &&
          a.wan0!.ipv6.every((x) => !x.includes("tentative"));
      }, 10_000);
      await waitFor("h1 link-local to pass DAD", async () => {
        const x = await sh(h1, `ip -6 addr show dev ${LAN_TAP} tentative`);
        return x.stdout.trim() === "";
      }, 10_000);

      await t.step("ping -6 h1 → h2 and h2 → h1 through tapir", async () => {
        const a = await sh(h1, "ping -6 -n -c 3 -i 0.2 -W 2 2001:db8:2::2");
        assert.match(a.stdout, /3 received/, a.stdout + a.stderr);
        assert.match(a.stdout, /ttl=63/);
        const b = await sh(h2, "ping -6 -n -c 3 -i 0.2 -W 2 2001:db8:1::2");
        assert.match(b.stdout, /3 received/, b.stdout + b.stderr);
      });

      await t.step("ping -6 to tapir's global and link-local addresses", async () => {
        const g = await sh(h1, "ping -6 -n -c 2 -i 0.2 -W 2 2001:db8:1::1");
        assert.match(g.stdout, /2 received/, g.stdout + g.stderr);
        const ll = (await addresses(tapir)).lan0!.ipv6.find((x) => x.startsWith("fe80:"))!.split(
          "/",
        )[0]!;
        const l = await sh(h1, `ping -6 -n -c 2 -i 0.2 -W 2 ${ll}%${LAN_TAP}`);
        assert.match(l.stdout, /2 received/, l.stdout + l.stderr);
      });

      await t.step("the kernel sees tapir REACHABLE and ndisc6 resolves it", async () => {
        await sh(h1, "ping -6 -n -c 1 -W 2 2001:db8:1::1");
        const n = await sh(h1, `ip -6 neigh show dev ${LAN_TAP}`);
        assert.match(n.stdout, /2001:db8:1::1 lladdr \S+ router REACHABLE/, n.stdout);
        const mac = (await addresses(tapir)).lan0!.mac;
        const d = await sh(h1, `ndisc6 -1 -n 2001:db8:1::1 ${LAN_TAP}`);
        assert.equal(d.code, 0, d.stdout + d.stderr);
        assert.match(
          d.stdout.toLowerCase(),
          new RegExp(`target link-layer address: ${mac}`),
          d.stdout,
        );
      });

      await t.step("traceroute -6 -n lists tapir then the far host", async () => {
        const tr = await sh(h1, "traceroute -6 -n -q 1 -w 2 -m 5 2001:db8:2::2", 30_000);
        const hops = tr.stdout.split("\n").slice(1).filter((l) => l.trim() !== "")
          .map((l) => l.trim().split(/\s+/)[1]);
        assert.deepEqual(hops, ["2001:db8:1::1", "2001:db8:2::2"], tr.stdout + tr.stderr);
      });

      await t.step("tracepath -6 -n reports pmtu 1280 (tapir sent Packet Too Big)", async () => {
        await h1.ip("-6", "route", "flush", "cache");
        const before =
          ((await tapir.stats()).stack as { ipv6: { forwarding: { packetTooBig: number } } }).ipv6
            .forwarding.packetTooBig;
        const tp = await sh(h1, "tracepath -6 -n -m 5 2001:db8:2::2", 30_000);
        assert.match(tp.stdout, /pmtu 1280/, tp.stdout + tp.stderr);
        const after =
          ((await tapir.stats()).stack as { ipv6: { forwarding: { packetTooBig: number } } }).ipv6
            .forwarding.packetTooBig;
        assert.ok(after > before, "tapir counted a Packet Too Big");
      });

      await t.step(
        "ping -6 -s 4000 to tapir is answered (reassembled, reply fragmented)",
        async () => {
          const p = await sh(h1, "ping -6 -n -c 2 -i 0.3 -W 2 -s 4000 2001:db8:1::1");
          assert.match(p.stdout, /2 received/, p.stdout + p.stderr);
          assert.match(p.stdout, /4008 bytes from 2001:db8:1::1/);
        },
      );

      await t.step("the kernel's DAD sees tapir's address as taken (dadfailed)", async () => {
        await h1.ip("-6", "addr", "add", "2001:db8:1::1/64", "dev", LAN_TAP);
        await waitFor("the kernel to finish DAD", async () => {
          const x = await sh(h1, `ip -6 addr show dev ${LAN_TAP} to 2001:db8:1::1/128`);
          return x.stdout.includes("dadfailed") || !x.stdout.includes("tentative");
        }, 10_000);
        const x = await sh(h1, `ip -6 addr show dev ${LAN_TAP} to 2001:db8:1::1/128`);
        assert.match(x.stdout, /dadfailed/, x.stdout);
        await h1.ip("-6", "addr", "del", "2001:db8:1::1/64", "dev", LAN_TAP);
      });

      await t.step("scapy-crafted packets get the ICMPv6 answers gVisor's rules give", async () => {
        const py = await sh(
          h1,
          `/usr/bin/python3 ${REPO}/tests/e2e/fixtures/ipv6_probes.py ${LAN_TAP} 2001:db8:1::2 2001:db8:1::1`,
          90_000,
        );
        assert.equal(py.code, 0, py.stderr);
        const res = JSON.parse(py.stdout.trim().split("\n").at(-1)!);
        console.log(JSON.stringify(res));
        const pp = (code: number, pointer: number) => ({ type: 4, code, pointer });
        assert.deepEqual(
          res.hbh_unknown_00_skip,
          { type: 129, code: 0 },
          "action 00: skipped, echo answered",
        );
        assert.equal(res.hbh_unknown_01_discard, null, "action 01: discarded silently");
        assert.deepEqual(res.hbh_unknown_10_pp2, pp(2, 42));
        assert.deepEqual(res.hbh_unknown_11_pp2, pp(2, 42));
        assert.deepEqual(res.dst_unknown_10_pp2, pp(2, 42));
        assert.deepEqual(res.routing_segleft_pp0, pp(0, 42));
        assert.deepEqual(res.routing_segleft0_ok, { type: 129, code: 0 });
        assert.deepEqual(res.hbh_not_first_pp1, pp(1, 40));
        assert.deepEqual(res.unknown_next_header_pp1, pp(1, 6));
        assert.deepEqual(res.fragment_bad_length_pp0, pp(0, 4));
        assert.equal(
          res.fragments_overlap_dropped,
          null,
          "RFC 5722: overlapping fragments dropped",
        );
        assert.deepEqual(
          res.fragments_ok,
          { type: 129, code: 0 },
          "the same fragments without overlap",
        );
      });

      const stop = await tapir.stop("SIGTERM");
      assert.equal(stop.code, 0, stop.stderr);

      await t.step("tapir's NDP and MLD packets dissect cleanly in tshark", async () => {
        const pcap = `${tapir.captureDir}/lan0.pcap`;
        const kinds = await run([
          "tshark",
          "-r",
          pcap,
          "-Y",
          "icmpv6",
          "-T",
          "fields",
          "-e",
          "icmpv6.type",
        ], {
          check: false,
        });
        const types = new Set(kinds.stdout.split(/\s+/).filter((x) => x !== "").map(Number));
        for (const want of [135, 136, 143]) {
          assert.ok(types.has(want), `capture has ICMPv6 type ${want}: ${[...types]}`);
        }
        const bad = await run([
          "tshark",
          "-r",
          pcap,
          "-o",
          "icmpv6.checksum:TRUE",
          "-Y",
          "icmpv6 && (_ws.malformed || _ws.expert.severity >= warning) && !icmpv6.type == 4 && !icmpv6.type == 1",
        ], { check: false });
        assert.equal(bad.stdout.trim(), "", `frames with warnings:\n${bad.stdout}`);
      });
    });
  },
});

const DAD_TAP = `t6d${id}`;
Deno.test({
  name: "IPv6 e2e: tapir's DAD sees a kernel host's address as taken",
  ignore: ignoreUnlessReady("IPv6 DAD e2e", ["ip"]),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withTopology("tpd6", async (topo) => {
      const r = await topo.netns("r");
      const h = await topo.netns("h");
      // Five DAD probes a second apart leave time to move the TAP and
      // configure the conflicting address on the kernel side.
      const config = `
[router]
hostname = "e2e-dad"
ipv6 = { dad_transmits = 5 }
[[interface]]
name = "lan0"
tap = "${DAD_TAP}"
addresses = ["2001:db8:5::1/64", "2001:db8:5::7/64"]
`;
      const tapir = await startTapir({ config, ns: r, topo });
      await moveTapToNs(DAD_TAP, r, h, { address: "2001:db8:5::7/64" });
      await waitFor("tapir to mark 2001:db8:5::7 dadfailed", async () => {
        const a = await addresses(tapir);
        return a.lan0!.ipv6.some((x) => x === "2001:db8:5::7/64 dadfailed");
      }, 15_000);
      // The other address has no rival and passes its five probes.
      await waitFor("2001:db8:5::1 to pass DAD", async () => {
        return (await addresses(tapir)).lan0!.ipv6.includes("2001:db8:5::1/64");
      }, 15_000);
      const stats = (await tapir.stats()).stack as { ndp: { dadFailed: number } };
      assert.equal(stats.ndp.dadFailed, 1);
      const stop = await tapir.stop("SIGTERM");
      assert.equal(stop.code, 0);
      assert.match(stop.stderr, /duplicate address 2001:db8:5::7 detected/);
      // The kernel keeps its address: tapir never answered for it.
      const k = await sh(h, `ip -6 addr show dev ${DAD_TAP} to 2001:db8:5::7/128`);
      assert.doesNotMatch(k.stdout, /dadfailed/);
    });
  },
});
