/**
 * Reload while packets flow: a kernel host on tapir's LAN keeps a TCP flow
 * (iperf3) through MASQUERADE to a kernel host on the WAN running across
 * three reloads — one adds a firewall rule, one changes the RA prefix, one
 * is invalid and is rejected with its errors — and sees the new prefix
 * within a second. The NAT binding, conntrack entry and the counters of
 * unchanged rules survive; no second of the flow stalls.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  REPO,
  requireRoot,
  requireTool,
  startTapir,
  TAPIR_PERMS,
  waitFor,
  withTopology,
} from "./harness.ts";

const TOOLS = ["iperf3", "ping"];

function config(lanTap: string, wanTap: string, prefix: string, extraForward = ""): string {
  return `[router]
hostname = "reload"
forwarding = true

[[interface]]
name = "lan0"
tap = "${lanTap}"
addresses = ["192.0.2.1/24", "${prefix}1/64"]

[interface.ra]
enabled = true
interval = "30s..60s"
prefixes = [{ prefix = "${prefix}/64" }]

[[interface]]
name = "wan0"
tap = "${wanTap}"
addresses = ["198.51.100.1/24"]

[firewall.filter]
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  ${extraForward}"-i lan0 -o wan0 -j ACCEPT",
] }

[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`;
}

async function sh(ns: Netns, cmd: string, timeoutMs = 20_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

Deno.test({
  name: "reload e2e: a TCP flow through MASQUERADE runs across three reloads",
  ignore: ignoreUnlessReady("reload e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpz", async (topo) => {
      const id = Deno.pid % 100000;
      const [lanTap, wanTap] = [`tpz${id}l`, `tpz${id}w`];
      const r = await topo.netns("r");
      const lan = await topo.netns("lan");
      const wan = await topo.netns("wan");
      await sh(lan, "sysctl -qw net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.forwarding=0");
      const tapir = await startTapir({
        config: config(lanTap, wanTap, "2001:db8:1::"),
        ns: r,
        topo,
      });
      await moveTapToNs(lanTap, r, lan, { address: "192.0.2.2/24" });
      await moveTapToNs(wanTap, r, wan, { address: "198.51.100.2/24" });
      await lan.ip("route", "add", "default", "via", "192.0.2.1");
      await waitFor("the LAN host's SLAAC address in 2001:db8:1::/64", async () => {
        const a = await sh(lan, `ip -6 addr show dev ${lanTap} scope global`);
        return /2001:db8:1:/.test(a.stdout);
      }, 15_000);
      const tapirCli = (args: string[]) =>
        r.exec([
          Deno.execPath(),
          "run",
          ...TAPIR_PERMS,
          `${REPO}/main.ts`,
          ...args,
          "--control",
          tapir.controlPath,
        ], {
          check: false,
        });
      const server = wan.spawn(["iperf3", "-s", "-1", "-B", "198.51.100.2"]);
      await new Promise((res) => setTimeout(res, 500));
      // Paced to 200 Mbit/s: the flow must keep moving, not saturate the CPU the reloads need.
      const client = lan.spawn([
        "iperf3",
        "-c",
        "198.51.100.2",
        "-t",
        "8",
        "-i",
        "1",
        "-b",
        "200M",
        "-J",
      ]);
      await new Promise((res) => setTimeout(res, 1500));

      await t.step(
        "reload 1 adds a firewall rule; counters of unchanged rules are kept",
        async () => {
          const before = (await tapirCli(["show", "firewall"])).stdout;
          const est = Number(
            /\[(\d+):\d+\] -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED/.exec(before)?.[1],
          );
          assert.ok(est > 0, before);
          Deno.writeTextFileSync(
            tapir.configPath,
            config(lanTap, wanTap, "2001:db8:1::", `"-p udp --dport 9 -j DROP",\n  `),
          );
          const out = await tapirCli(["reload"]);
          assert.equal(out.code, 0, out.stderr);
          assert.match(out.stdout, /applied: firewall: tables replaced/);
          const after = (await tapirCli(["show", "firewall"])).stdout;
          const est2 = Number(
            /\[(\d+):\d+\] -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED/.exec(after)?.[1],
          );
          assert.ok(est2 >= est, `ESTABLISHED counter kept: ${est} → ${est2}`);
          assert.match(after, /-A FORWARD -p udp (-m udp )?--dport 9 -j DROP/);
          const ct = (await tapirCli(["show", "conntrack"])).stdout;
          assert.match(
            ct,
            /tcp +6 \d+ ESTABLISHED src=192\.0\.2\.2 dst=198\.51\.100\.2 .* src=198\.51\.100\.2 dst=198\.51\.100\.1 /,
          );
        },
      );

      await t.step(
        "reload 2 changes the RA prefix: the LAN host has it within a second",
        async () => {
          Deno.writeTextFileSync(
            tapir.configPath,
            config(lanTap, wanTap, "2001:db8:2::", `"-p udp --dport 9 -j DROP",\n  `),
          );
          const t0 = performance.now();
          const out = await tapirCli(["reload"]);
          assert.equal(out.code, 0, out.stderr);
          assert.match(out.stdout, /router advertisements with the new settings/);
          await waitFor("the new prefix on the LAN host", async () => {
            const a = await sh(lan, `ip -6 addr show dev ${lanTap} scope global`);
            return /2001:db8:2:/.test(a.stdout);
          }, 1000);
          console.log(
            `  new prefix on the LAN host ${
              Math.round(performance.now() - t0)
            } ms after the reload`,
          );
        },
      );

      await t.step("reload 3 is invalid: rejected with its errors, nothing changes", async () => {
        Deno.writeTextFileSync(
          tapir.configPath,
          config(lanTap, wanTap, "2001:db8:2::").replace(
            '"198.51.100.1/24"',
            '"198.51.100.300/24"',
          ),
        );
        const out = await tapirCli(["reload"]);
        assert.equal(out.code, 1);
        assert.match(out.stderr, /interface\[1\]\.addresses\[0\]/);
        assert.match(out.stderr, /rejected/);
        const fw = (await tapirCli(["show", "firewall"])).stdout;
        assert.match(fw, /--dport 9 -j DROP/, "the rules of reload 1 are still in force");
      });

      await t.step("the flow ran through every reload without a stalled second", async () => {
        const c = await client.wait(20_000);
        await server.wait(5000);
        assert.equal(c.code, 0, c.stdout.slice(0, 2000) + c.stderr);
        const j = JSON.parse(c.stdout);
        const secs = (j.intervals as { sum: { bits_per_second: number } }[]).map((i) =>
          i.sum.bits_per_second
        );
        assert.ok(secs.length >= 7, JSON.stringify(secs));
        for (const [i, bps] of secs.entries()) {
          assert.ok(bps > 10e6, `second ${i + 1}: ${bps} bit/s`);
        }
        assert.ok(j.end.sum_received.bytes > 0);
      });
      const s = await tapir.stop("SIGTERM");
      assert.equal(s.code, 0, s.stderr);
    });
  },
});
