/**
 * The firewall against the Linux kernel, with examples/gateway.toml's rules
 * (only the TAP names changed): masquerade, a DNAT port forward, the
 * stateful drop policy, REJECT variants, the counters dump, and IPv6
 * forwarding through a drop policy.
 *
 *   lan (192.0.2.10, 2001:db8:10::10) ── lan0 tapir wan0 ── wan (198.51.100.1, 2001:db8:ffff::1)
 *                                                             │ veth, mtu 1280, wan forwards
 *                                                  far (203.0.113.2, 2001:db8:20::2)
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
const LAN_TAP = `twl${id}`;
const WAN_TAP = `tww${id}`;

/** The gateway example with test TAP names, plus REJECT variants the test needs. */
function gatewayConfig(dir: string): string {
  const text = Deno.readTextFileSync(`${REPO}/examples/gateway.toml`)
    .replace('tap = "tap-gw-wan"', `tap = "${WAN_TAP}"`)
    .replace('tap = "tap-gw-lan"', `tap = "${LAN_TAP}"`)
    // The DHCP server's leases stay in the test's directory.
    .replace(
      'lease_file = "/var/lib/tapir/lan0.dhcp4.leases"',
      `lease_file = "${dir}/lan0.leases"`,
    );
  assert.ok(text.includes(WAN_TAP) && text.includes(LAN_TAP), "gateway.toml TAP names changed");
  assert.ok(text.includes(`${dir}/lan0.leases`), "gateway.toml's lease_file changed");
  return text + `
# Added by the test: REJECT with ICMP(v6) codes, after the example's rules.
[firewall.ipv4.filter]
forward = { rules = [
  "-i wan0 -p tcp --dport 7 -j REJECT --reject-with icmp-port-unreachable",
  "-i wan0 -p tcp --dport 9 -j REJECT --reject-with icmp-admin-prohibited",
] }

[firewall.ipv6.filter]
forward = { rules = [
  "-i wan0 -p tcp --dport 7 -j REJECT --reject-with icmp6-port-unreachable",
  "-i wan0 -p tcp --dport 9 -j REJECT --reject-with icmp6-adm-prohibited",
] }
`;
}

async function sh(ns: Netns, cmd: string, timeoutMs = 20_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

async function showFirewall(tapir: Tapir): Promise<string> {
  const r = await run([
    Deno.execPath(),
    "run",
    "-A",
    `${REPO}/main.ts`,
    "show",
    "firewall",
    "--control",
    tapir.controlPath,
  ], { timeoutMs: 10_000 });
  return r.stdout;
}

/** Packets of the dump line that starts with `start` (a rule `[p:b] -A ...` or a policy `:CHAIN`). */
function counter(dump: string, start: RegExp): number {
  for (const line of dump.split("\n")) {
    const m = /\[(\d+):(\d+)\]/.exec(line);
    if (m !== null && start.test(line)) return Number(m[1]);
  }
  throw new Error(`no line ${start} in\n${dump}`);
}

/** What the test reads of iperf3's JSON (`-J`). */
interface IperfJson {
  start: { connected: { remote_host: string }[] };
  end: {
    sum?: { bits_per_second: number; lost_packets?: number; packets?: number };
    sum_received?: { bits_per_second: number };
  };
}

/** iperf3 against a one-shot server; the server's JSON (its view of the client) and the client's. */
async function iperf(
  client: Netns,
  server: Netns,
  args: string,
): Promise<{ server: IperfJson; client: IperfJson }> {
  const s = server.spawn(["iperf3", "-s", "-1", "-J", "-B", "198.51.100.1"]);
  await new Promise((r) => setTimeout(r, 500));
  const c = await sh(client, `iperf3 -c 198.51.100.1 -J ${args}`, 40_000);
  const sr = await s.wait(10_000);
  assert.equal(c.code, 0, c.stdout.slice(0, 2000) + c.stderr);
  return { server: JSON.parse(sr.stdout), client: JSON.parse(c.stdout) };
}

const FIREWALL_TOOLS = ["ping", "traceroute", "iperf3", "nc", "tcpdump", "ss"];

Deno.test({
  name: "firewall e2e: examples/gateway.toml between kernel namespaces",
  ignore: ignoreUnlessReady("firewall e2e", FIREWALL_TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of FIREWALL_TOOLS) {
      if (!(await requireTool(tool))) return;
    }
    await withTopology("tpw", async (topo) => {
      const r = await topo.netns("r");
      const lan = await topo.netns("lan");
      const wan = await topo.netns("wan");
      const far = await topo.netns("far");
      const tapir = await startTapir({ config: gatewayConfig(topo.tempDir()), ns: r, topo });
      await moveTapToNs(LAN_TAP, r, lan, { address: ["192.0.2.10/24", "2001:db8:10::10/64"] });
      await moveTapToNs(WAN_TAP, r, wan, {
        address: ["198.51.100.1/24", "2001:db8:ffff::1/64"],
      });
      await lan.ip("route", "add", "default", "via", "192.0.2.1");
      await lan.ip("-6", "route", "replace", "default", "via", "2001:db8:10::1");
      // The WAN host routes to the LAN through tapir (as a provider would for
      // the IPv6 /64; for IPv4 only to show that new inbound connections drop).
      await wan.ip("route", "add", "192.0.2.0/24", "via", "198.51.100.2");
      await wan.ip("-6", "route", "add", "2001:db8:10::/64", "via", "2001:db8:ffff::2");
      // wan ── far over a veth with MTU 1280; wan forwards.
      const vw = `tpwv${id}a`, vf = `tpwv${id}b`;
      await wan.ip(
        "link",
        "add",
        vw,
        "mtu",
        "1280",
        "type",
        "veth",
        "peer",
        "name",
        vf,
        "netns",
        far.name,
      );
      await far.ip("link", "set", vf, "mtu", "1280");
      await wan.ip("addr", "add", "203.0.113.1/24", "dev", vw);
      await wan.ip("addr", "add", "2001:db8:20::1/64", "dev", vw, "nodad");
      await far.ip("addr", "add", "203.0.113.2/24", "dev", vf);
      await far.ip("addr", "add", "2001:db8:20::2/64", "dev", vf, "nodad");
      await wan.ip("link", "set", vw, "up");
      await far.ip("link", "set", vf, "up");
      await far.ip("route", "add", "default", "via", "203.0.113.1");
      await far.ip("-6", "route", "add", "default", "via", "2001:db8:20::1");
      await sh(wan, "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");

      await t.step("ping LAN → WAN: the WAN host sees only tapir's WAN address", async () => {
        const dump = wan.spawn([
          "tcpdump",
          "-n",
          "-l",
          "-c",
          "3",
          "-i",
          WAN_TAP,
          "icmp and icmp[0] == 8",
        ]);
        await new Promise((r) => setTimeout(r, 800));
        const p = await sh(lan, "ping -n -c 3 -i 0.2 -W 2 198.51.100.1");
        assert.match(p.stdout, /3 received/, p.stdout + p.stderr);
        const d = await dump.wait(5000);
        const srcs = [...d.stdout.matchAll(/IP (\S+) > (\S+): ICMP echo request/g)].map((m) =>
          m[1]
        );
        assert.deepEqual(
          srcs,
          ["198.51.100.2", "198.51.100.2", "198.51.100.2"],
          d.stdout + d.stderr,
        );
      });

      await t.step("UDP and TCP (iperf3) LAN → WAN, masqueraded", async () => {
        const u = await iperf(lan, wan, "-u -b 50M -t 2");
        assert.equal(u.server.start.connected[0]?.remote_host, "198.51.100.2");
        const uSum = { bits_per_second: 0, ...u.server.end.sum, ...u.server.end.sum_received };
        console.log(
          `iperf3 UDP 50M through the NAT: ${(uSum.bits_per_second / 1e6).toFixed(1)} Mbit/s, ` +
            `${uSum.lost_packets}/${uSum.packets} lost`,
        );
        const tcp = await iperf(lan, wan, "-t 5");
        assert.equal(tcp.server.start.connected[0]?.remote_host, "198.51.100.2");
        const bps = tcp.client.end.sum_received?.bits_per_second ?? 0;
        console.log(`iperf3 TCP -t 5 through the NAT: ${(bps / 1e9).toFixed(2)} Gbit/s`);
        assert.ok(bps > 1e6, `throughput ${bps} bit/s`);
      });

      await t.step("ss on the WAN host shows tapir's address as the peer", async () => {
        const srv = wan.spawn(["nc", "-l", "-s", "198.51.100.1", "-p", "5001"]);
        await new Promise((r) => setTimeout(r, 300));
        const cli = lan.spawn(["sh", "-c", "sleep 3 | nc 198.51.100.1 5001"]);
        let seen = "";
        await waitFor("the connection in ss", async () => {
          seen = (await sh(wan, "ss -tnH state established '( sport = :5001 )'")).stdout;
          return seen.trim() !== "";
        }, 5000);
        assert.match(seen, /198\.51\.100\.2:\d+\s*$/m, seen);
        assert.doesNotMatch(seen, /192\.0\.2\.10/);
        cli.kill("SIGKILL");
        srv.kill("SIGKILL");
      });

      await t.step("traceroute -n (UDP and ICMP) through the NAT shows every hop", async () => {
        for (const flag of ["", "-I"]) {
          const tr = await sh(lan, `traceroute -n ${flag} -q 1 -w 2 -m 6 203.0.113.2`, 30_000);
          const hops = tr.stdout.split("\n").slice(1).filter((l) => l.trim() !== "")
            .map((l) => l.trim().split(/\s+/)[1]);
          assert.deepEqual(
            hops,
            ["192.0.2.1", "198.51.100.1", "203.0.113.2"],
            tr.stdout + tr.stderr,
          );
        }
      });

      await t.step(
        "a DNAT port forward: WAN → tapir:8080 reaches the LAN server on :80",
        async () => {
          const srv = lan.spawn([
            "sh",
            "-c",
            "echo hello-from-lan | nc -l -s 192.0.2.10 -p 80 -q 1",
          ]);
          await new Promise((r) => setTimeout(r, 300));
          const c = await sh(wan, "nc -w 3 198.51.100.2 8080 </dev/null");
          assert.match(c.stdout, /hello-from-lan/, c.stdout + c.stderr);
          await srv.wait(3000);
        },
      );

      await t.step(
        "a new inbound connection is dropped while established traffic flows",
        async () => {
          const before = counter(await showFirewall(tapir), /^:FORWARD DROP/);
          const ping = sh(lan, "ping -n -c 10 -i 0.2 -W 2 198.51.100.1");
          const c = await sh(wan, "nc -v -z -w 2 192.0.2.10 22");
          assert.notEqual(c.code, 0);
          assert.match(c.stderr, /timed out/, c.stdout + c.stderr);
          const p = await ping;
          assert.match(p.stdout, /10 received/, p.stdout + p.stderr);
          const after = counter(await showFirewall(tapir), /^:FORWARD DROP/);
          assert.ok(after > before, `FORWARD policy counter ${before} → ${after}`);
        },
      );

      await t.step(
        'REJECT --reject-with tcp-reset: nc prints "Connection refused" at once',
        async () => {
          const t0 = performance.now();
          const c = await sh(wan, "nc -v -z -w 3 192.0.2.10 113");
          const ms = performance.now() - t0;
          assert.match(c.stderr, /Connection refused/, c.stdout + c.stderr);
          assert.ok(ms < 1500, `took ${ms.toFixed(0)} ms`);
        },
      );

      await t.step(
        "REJECT icmp-port-unreachable and icmp-admin-prohibited: the kernel's errors",
        async () => {
          const a = await sh(wan, "nc -v -z -w 3 192.0.2.10 7");
          assert.match(a.stderr, /Connection refused/, a.stdout + a.stderr);
          const b = await sh(wan, "nc -v -z -w 3 192.0.2.10 9");
          assert.match(b.stderr, /No route to host/, b.stdout + b.stderr);
        },
      );

      await t.step("tapir show firewall and SIGUSR2 print the dump with counters", async () => {
        const dump = await showFirewall(tapir);
        assert.match(dump, /^\*nat$/m);
        assert.match(dump, /^\*filter$/m);
        assert.ok(counter(dump, /-A POSTROUTING .*MASQUERADE/) > 0, dump);
        assert.ok(counter(dump, /-A PREROUTING .*DNAT/) > 0, dump);
        assert.ok(counter(dump, /-A FORWARD .*tcp-reset/) > 0, dump);
        console.log(dump);
      });

      await t.step("IPv6 through the drop policy: ping, NDP, Packet Too Big", async () => {
        const p = await sh(lan, "ping -6 -n -c 3 -i 0.2 -W 2 2001:db8:20::2");
        assert.match(p.stdout, /3 received/, p.stdout + p.stderr);
        // The wan → far link has MTU 1280: wan's Packet Too Big is forwarded back (RFC 4890 §4.3.1).
        const big = await sh(lan, "ping -6 -n -c 2 -i 0.5 -W 2 -M do -s 1400 2001:db8:20::2");
        assert.match(big.stdout, /Packet too big: mtu=1280/, big.stdout + big.stderr);
        const after = await sh(lan, "ping -6 -n -c 2 -i 0.3 -W 2 -s 1400 2001:db8:20::2");
        assert.match(after.stdout, /2 received/, after.stdout + after.stderr);
        const n = await sh(wan, `ip -6 neigh show dev ${WAN_TAP}`);
        assert.match(n.stdout, /2001:db8:ffff::2 .*(REACHABLE|STALE|DELAY|PROBE)/, n.stdout);
      });

      await t.step(
        "IPv6: new inbound dropped; REJECT tcp-reset, icmp6-port-unreachable, icmp6-adm-prohibited",
        async () => {
          const drop = await sh(wan, "nc -6 -v -z -w 2 2001:db8:10::10 22");
          assert.match(drop.stderr, /timed out/, drop.stdout + drop.stderr);
          const rst = await sh(wan, "nc -6 -v -z -w 3 2001:db8:10::10 113");
          assert.match(rst.stderr, /Connection refused/, rst.stdout + rst.stderr);
          const port = await sh(wan, "nc -6 -v -z -w 3 2001:db8:10::10 7");
          assert.match(port.stderr, /Connection refused/, port.stdout + port.stderr);
          const adm = await sh(wan, "nc -6 -v -z -w 3 2001:db8:10::10 9");
          assert.match(adm.stderr, /Permission denied/, adm.stdout + adm.stderr);
        },
      );

      // SIGUSR2 logs the stats and the dump; SIGTERM stops.
      Deno.kill(tapir.pid, "SIGUSR2");
      await new Promise((r) => setTimeout(r, 500));
      const stop = await tapir.stop("SIGTERM");
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stderr, /\*filter\n:INPUT DROP \[\d+:\d+\]/, stop.stderr.slice(-3000));
    });
  },
});
