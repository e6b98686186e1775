/**
 * NAT for IPv6 against the Linux kernel: a LAN host with a ULA address
 * reaches a WAN host through tapir's MASQUERADE (the WAN sees tapir's
 * address; ping, a TCP transfer), a DNAT port forward over IPv6, and
 * NPTv6 (SNPT/DNPT) mapping the ULA prefix both ways with every TCP
 * checksum left as the sender computed it.
 *
 *   lan (fd00:66::10/64) ── lan0 tapir wan0 ── wan (2001:db8:ffff::1/64)
 *        fd00:66::1                 2001:db8:ffff::2
 */
import assert from "node:assert/strict";
import { Npt } from "../../stack/firewall/nat.ts";
import { formatIpv6, parseIpv6 } from "../../stack/wire/mod.ts";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  requireTool,
  startTapir,
  waitFor,
  withTopology,
} from "./harness.ts";

const id = String(Deno.pid % 100000);
const LAN_TAP = `t6l${id}`;
const WAN_TAP = `t6w${id}`;
const LAN = "fd00:66::10", WAN = "2001:db8:ffff::1", TAPIR_WAN = "2001:db8:ffff::2";

/** tapir between the two: `firewall` is the [firewall] part. Offloads off, so captured checksums are whole. */
function config(firewall: string): string {
  return `[router]
hostname = "nat66"
forwarding = { ipv4 = false, ipv6 = true }

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"
addresses = ["fd00:66::1/64"]
offload = false

[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
addresses = ["${TAPIR_WAN}/64"]
offload = false

[[route]]
to = "::/0"
via = "${WAN}"

${firewall}`;
}

async function sh(ns: Netns, cmd: string, timeoutMs = 20_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

/** The namespaces, with tapir's TAPs moved into lan and wan and the LAN's default route. */
async function topology(
  topo: Parameters<Parameters<typeof withTopology>[1]>[0],
  firewall: string,
) {
  const r = await topo.netns("r");
  const lan = await topo.netns("lan");
  const wan = await topo.netns("wan");
  const tapir = await startTapir({ config: config(firewall), ns: r, topo });
  await moveTapToNs(LAN_TAP, r, lan, { address: [`${LAN}/64`] });
  await moveTapToNs(WAN_TAP, r, wan, { address: [`${WAN}/64`] });
  // Without offloads the kernel completes every checksum before tapir reads the frame.
  await lan.ip("-6", "route", "replace", "default", "via", "fd00:66::1");
  // tapir answers NDP once its DAD is done: wait until the LAN reaches it.
  await waitFor("tapir's LAN address answers", async () => {
    const p = await sh(lan, "ping -6 -n -c 1 -W 1 fd00:66::1", 5000);
    return p.code === 0;
  }, 15_000);
  return { r, lan, wan, tapir };
}

const TOOLS = ["ping", "nc", "tcpdump", "iperf3"];

Deno.test({
  name: "NAT66 e2e: MASQUERADE from a ULA LAN, and a DNAT port forward, against the kernel",
  ignore: ignoreUnlessReady("NAT66 e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tn6", async (topo) => {
      const { lan, wan, tapir } = await topology(
        topo,
        `[firewall.ipv6.nat]
postrouting = { rules = ["-o wan0 -s fd00:66::/64 -j MASQUERADE"] }
prerouting = { rules = ["-i wan0 -d ${TAPIR_WAN} -p tcp --dport 8080 -j DNAT --to-destination [${LAN}]:80"] }
`,
      );
      await t.step("ping: the WAN host sees tapir's address, not the ULA", async () => {
        const dump = wan.spawn([
          "tcpdump",
          "-n",
          "-l",
          "-c",
          "3",
          "-i",
          WAN_TAP,
          "icmp6 and ip6[40] == 128",
        ]);
        await new Promise((r) => setTimeout(r, 800));
        const p = await sh(lan, `ping -6 -n -c 3 -i 0.2 -W 2 ${WAN}`);
        assert.match(p.stdout, /3 received/, p.stdout + p.stderr);
        const d = await dump.wait(5000);
        const srcs = [...d.stdout.matchAll(/IP6 (\S+) > (\S+): ICMP6, echo request/g)].map((m) =>
          m[1]
        );
        assert.deepEqual(srcs, [TAPIR_WAN, TAPIR_WAN, TAPIR_WAN], d.stdout + d.stderr);
      });
      await t.step("TCP (iperf3 -6): the server's peer is tapir's WAN address", async () => {
        const s = wan.spawn(["iperf3", "-s", "-1", "-J", "-B", WAN]);
        await new Promise((r) => setTimeout(r, 500));
        const c = await sh(lan, `iperf3 -6 -c ${WAN} -J -t 2`, 30_000);
        const sr = await s.wait(10_000);
        assert.equal(c.code, 0, c.stdout.slice(0, 2000) + c.stderr);
        const server = JSON.parse(sr.stdout);
        assert.equal(server.start.connected[0]?.remote_host, TAPIR_WAN);
        const bps = JSON.parse(c.stdout).end.sum_received?.bits_per_second ?? 0;
        console.log(`iperf3 TCP over NAT66: ${(bps / 1e6).toFixed(0)} Mbit/s`);
        assert.ok(bps > 1e6, `throughput ${bps} bit/s`);
        // The kernel's TCP (window scaling, SACK) stays within the windows conntrack tracks.
        const st = await tapir.stats() as unknown as {
          conntrack: { ipv6: { tcpOutOfWindow: number; invalid: number; inserted: number } };
        };
        const ct6 = st.conntrack.ipv6;
        assert.ok(ct6.inserted > 0, JSON.stringify(ct6));
        assert.equal(ct6.tcpOutOfWindow, 0, JSON.stringify(ct6));
        assert.equal(ct6.invalid, 0, JSON.stringify(ct6));
      });
      await t.step("DNAT: [tapir]:8080 on the WAN reaches the LAN host's port 80", async () => {
        const srv = lan.spawn([
          "sh",
          "-c",
          `echo hello-over-nat66 | nc -6 -l -s ${LAN} -p 80 -q 1`,
        ]);
        await new Promise((r) => setTimeout(r, 500));
        const c = await sh(wan, `nc -6 -w 3 ${TAPIR_WAN} 8080 </dev/null`);
        await srv.wait(5000);
        assert.match(c.stdout, /hello-over-nat66/, c.stdout + c.stderr);
      });
    });
  },
});

Deno.test({
  name: "NPTv6 e2e: SNPT/DNPT map the ULA prefix both ways, TCP checksums untouched",
  ignore: ignoreUnlessReady("NPTv6 e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tnp", async (topo) => {
      const { lan, wan } = await topology(
        topo,
        `[firewall.ipv6.mangle]
postrouting = { rules = ["-o wan0 -s fd00:66::/64 -j SNPT --src-pfx fd00:66::/64 --dst-pfx 2001:db8:ffff:66::/64"] }
prerouting = { rules = ["-i wan0 -d 2001:db8:ffff:66::/64 -j DNPT --src-pfx 2001:db8:ffff:66::/64 --dst-pfx fd00:66::/64"] }
`,
      );
      // The provider routes the translated /64 to tapir.
      await wan.ip("-6", "route", "add", "2001:db8:ffff:66::/64", "via", TAPIR_WAN);
      const mapped = parseIpv6(LAN);
      new Npt(parseIpv6("fd00:66::"), 64, parseIpv6("2001:db8:ffff:66::"), 64).map(mapped, 0);
      const ext = formatIpv6(mapped);
      await t.step(
        `a TCP transfer crosses as ${ext}; the SYN's checksum is the same on both sides`,
        async () => {
          const filter = "ip6 and tcp and port 5201";
          const lanDump = lan.spawn([
            "tcpdump",
            "-n",
            "-l",
            "-vv",
            "-c",
            "1",
            "-i",
            LAN_TAP,
            filter,
          ]);
          const wanDump = wan.spawn([
            "tcpdump",
            "-n",
            "-l",
            "-vv",
            "-c",
            "1",
            "-i",
            WAN_TAP,
            filter,
          ]);
          await new Promise((r) => setTimeout(r, 800));
          const s = wan.spawn(["iperf3", "-s", "-1", "-J", "-B", WAN]);
          await new Promise((r) => setTimeout(r, 500));
          const c = await sh(lan, `iperf3 -6 -c ${WAN} -J -t 2`, 30_000);
          const sr = await s.wait(10_000);
          assert.equal(c.code, 0, c.stdout.slice(0, 2000) + c.stderr);
          assert.equal(JSON.parse(sr.stdout).start.connected[0]?.remote_host, ext);
          const l = await lanDump.wait(5000), w = await wanDump.wait(5000);
          const sum = (out: string) => /cksum (0x[0-9a-f]+) \(correct\)/.exec(out)?.[1];
          assert.ok(sum(l.stdout) !== undefined, `LAN side: ${l.stdout}${l.stderr}`);
          assert.equal(sum(w.stdout), sum(l.stdout), `WAN side: ${w.stdout}`);
          assert.match(w.stdout, new RegExp(`${ext.replaceAll(".", "\\.")}\\.\\d+ > `));
        },
      );
    });
  },
});
