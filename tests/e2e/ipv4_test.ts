/**
 * IPv4 against the Linux kernel: two host namespaces, tapir routing between
 * them in a namespace of its own, the kernel's ping, traceroute, tracepath
 * and iperf3 on the hosts.
 *
 *   h1 (192.0.2.2/24) ── tapir lan0 192.0.2.1 | wan0 198.51.100.1 (mtu 1280) ── h2 (198.51.100.2/24)
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  requireTool,
  startTapir,
  type Tapir,
  withTopology,
} from "./harness.ts";

const id = String(Deno.pid % 100000);
const LAN_TAP = `t4l${id}`;
const WAN_TAP = `t4w${id}`;

const CONFIG = `
[router]
hostname = "e2e-ipv4"
forwarding = true

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
mtu = 1280
addresses = ["198.51.100.1/24"]

[[route]]
to = "203.0.113.0/24"
type = "unreachable"
`;

async function sh(ns: Netns, cmd: string, timeoutMs = 20_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

const IPV4_TOOLS = ["ping", "traceroute", "tracepath", "iperf3", "nc"];

Deno.test({
  name: "IPv4 e2e: tapir routes between two kernel hosts",
  ignore: ignoreUnlessReady("IPv4 e2e", IPV4_TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of IPV4_TOOLS) {
      if (!(await requireTool(tool))) return;
    }
    await withTopology("tpe4", async (topo) => {
      const r = await topo.netns("r");
      const h1 = await topo.netns("h1");
      const h2 = await topo.netns("h2");
      const tapir: Tapir = await startTapir({ config: CONFIG, ns: r, topo });
      await moveTapToNs(LAN_TAP, r, h1, { address: "192.0.2.2/24" });
      await moveTapToNs(WAN_TAP, r, h2, { address: "198.51.100.2/24", mtu: 1280 });
      await h1.ip("route", "add", "default", "via", "192.0.2.1");
      await h2.ip("route", "add", "default", "via", "198.51.100.1");

      await t.step("ping h1 → h2 and h2 → h1", async () => {
        const a = await sh(h1, "ping -n -c 3 -i 0.2 -W 2 198.51.100.2");
        assert.match(a.stdout, /3 received/, a.stdout + a.stderr);
        assert.match(a.stdout, /ttl=63/);
        const b = await sh(h2, "ping -n -c 3 -i 0.2 -W 2 192.0.2.2");
        assert.match(b.stdout, /3 received/, b.stdout + b.stderr);
      });

      await t.step("ping tapir's own addresses on both sides", async () => {
        for (const a of ["192.0.2.1", "198.51.100.1"]) {
          const p = await sh(h1, `ping -n -c 2 -i 0.2 -W 2 ${a}`);
          assert.match(p.stdout, /2 received/, p.stdout + p.stderr);
          assert.match(p.stdout, new RegExp(`from ${a.replaceAll(".", "\\.")}: icmp_seq=1 ttl=64`));
        }
        const q = await sh(h2, "ping -n -c 2 -i 0.2 -W 2 198.51.100.1");
        assert.match(q.stdout, /2 received/, q.stdout + q.stderr);
      });

      await t.step("traceroute -n (UDP) and -I list tapir then the far host", async () => {
        for (const flag of ["", "-I"]) {
          const tr = await sh(h1, `traceroute -n ${flag} -q 1 -w 2 -m 5 198.51.100.2`, 30_000);
          const hops = tr.stdout.split("\n").slice(1).filter((l) => l.trim() !== "")
            .map((l) => l.trim().split(/\s+/)[1]);
          assert.deepEqual(hops, ["192.0.2.1", "198.51.100.2"], tr.stdout + tr.stderr);
        }
      });

      await t.step("tracepath -n reports pmtu 1280 across the 1280-MTU link", async () => {
        await h1.ip("route", "flush", "cache");
        const tp = await sh(h1, "tracepath -n -m 5 198.51.100.2", 30_000);
        assert.match(tp.stdout, /pmtu 1280/, tp.stdout + tp.stderr);
      });

      await t.step(
        'ping -M do -s 1400 prints "Frag needed and DF set (mtu = 1280)" from tapir',
        async () => {
          await h1.ip("route", "flush", "cache");
          const p = await sh(h1, "ping -n -c 1 -W 2 -M do -s 1400 198.51.100.2");
          assert.match(
            p.stdout,
            /From 192\.0\.2\.1 icmp_seq=1 Frag needed and DF set \(mtu = 1280\)/,
            p.stdout + p.stderr,
          );
        },
      );

      await t.step("ping -M dont -s 1400 arrives, fragmented by tapir", async () => {
        await h1.ip("route", "flush", "cache");
        // Clear h1's learned PMTU so h1 sends 1428-byte packets and tapir fragments them.
        await sh(h1, "ip route flush cache; ip route get 198.51.100.2");
        const before = (await tapir.stats()).stack as { ipv4: { packetsFragmented: number } };
        const p = await sh(h1, "ping -n -c 2 -i 0.3 -W 2 -M dont -s 1400 198.51.100.2");
        assert.match(p.stdout, /2 received/, p.stdout + p.stderr);
        const after = (await tapir.stats()).stack as { ipv4: { packetsFragmented: number } };
        assert.ok(after.ipv4.packetsFragmented > before.ipv4.packetsFragmented, "tapir fragmented");
      });

      await t.step(
        "ping -s 4000 to tapir is answered (reassembled, reply fragmented)",
        async () => {
          const p = await sh(h1, "ping -n -c 2 -i 0.3 -W 2 -s 4000 192.0.2.1");
          assert.match(p.stdout, /2 received/, p.stdout + p.stderr);
          assert.match(p.stdout, /4008 bytes from 192\.0\.2\.1/);
        },
      );

      await t.step(
        'a ping into an unreachable route prints "Destination Net Unreachable"',
        async () => {
          const p = await sh(h1, "ping -n -c 1 -W 2 203.0.113.5");
          assert.match(
            p.stdout,
            /From 192\.0\.2\.1 icmp_seq=1 Destination Net Unreachable/,
            p.stdout + p.stderr,
          );
        },
      );

      await t.step(
        'a ping to an absent host prints "Destination Host Unreachable" from tapir',
        async () => {
          const p = await sh(h1, "ping -n -c 1 -W 6 198.51.100.99", 15_000);
          assert.match(
            p.stdout,
            /From 192\.0\.2\.1 icmp_seq=1 Destination Host Unreachable/,
            p.stdout + p.stderr,
          );
        },
      );

      await t.step("a TCP connection to a closed port on tapir is refused (RST)", async () => {
        const c = await sh(h1, "nc -v -z -w 2 192.0.2.1 22");
        assert.notEqual(c.code, 0);
        assert.match(c.stderr, /Connection refused/, c.stdout + c.stderr);
      });

      await t.step("iperf3 -t 5 TCP through tapir", async () => {
        const server = h2.spawn(["iperf3", "-s", "-1", "-B", "198.51.100.2"]);
        await new Promise((r) => setTimeout(r, 500));
        const c = await sh(h1, "iperf3 -c 198.51.100.2 -t 5 -J", 30_000);
        await server.wait(5000).catch(() => server.kill("SIGKILL"));
        assert.equal(c.code, 0, c.stdout.slice(0, 2000) + c.stderr);
        const j = JSON.parse(c.stdout);
        const bps = j.end.sum_received.bits_per_second as number;
        console.log(`iperf3 TCP through tapir: ${(bps / 1e9).toFixed(2)} Gbit/s`);
        assert.ok(bps > 1e6, `throughput ${bps} bit/s`);
      });

      const stop = await tapir.stop("SIGTERM");
      assert.equal(stop.code, 0, stop.stderr);
    });
  },
});
