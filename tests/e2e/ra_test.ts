/**
 * Router Advertisements against the Linux kernel, both ways.
 *
 * tapir as the router:
 *   h1 (default sysctls: accept_ra=1, autoconf=1, forwarding=0)
 *     ── lan0 tapir (RA: 2001:db8:1::/64) wan0 2001:db8:2::1 ── h2 2001:db8:2::2
 *
 * tapir as the host (accept_ra = true):
 *   tapir eth0 ── rr (radvd, 2001:db8:5::/64; forwarding) ── hb 2001:db8:6::2
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
const LAN_TAP = `tral${id}`;
const WAN_TAP = `traw${id}`;
const HOST_TAP = `trah${id}`;

const ROUTER_CONFIG = `
[router]
hostname = "e2e-ra"
forwarding = true

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"
addresses = ["2001:db8:1::1/64"]

[interface.ra]
enabled = true
interval = "4s..10s"
router_lifetime = "30s"
preference = "high"
cur_hop_limit = 61
managed = true
other_config = true
reachable_time = "30s"
retrans_timer = "2s"
mtu = 1400
prefixes = [{ prefix = "2001:db8:1::/64", valid_lifetime = "3600s", preferred_lifetime = "1800s" }]
rdnss = [{ addresses = ["2001:db8:1::53"], lifetime = "600s" }]
dnssl = [{ domains = ["example.net"], lifetime = "600s" }]
routes = [{ prefix = "2001:db8:ff::/48", preference = "low", lifetime = "600s" }]

[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
addresses = ["2001:db8:2::1/64"]
`;

const HOST_CONFIG = `
[router]
hostname = "e2e-ra-host"

[[interface]]
name = "eth0"
tap = "${HOST_TAP}"
accept_ra = true
`;

async function sh(ns: Netns, cmd: string, timeoutMs = 20_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

async function show(tapir: Tapir, what: string): Promise<Record<string, unknown>> {
  const r = await run([
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    `${REPO}/main.ts`,
    "show",
    what,
    "--control",
    tapir.controlPath,
    "--json",
  ]);
  return JSON.parse(r.stdout);
}

async function raIn(ns: Netns): Promise<number> {
  const r = await sh(ns, "cat /proc/net/snmp6");
  const m = r.stdout.match(/Icmp6InRouterAdvertisements\s+(\d+)/);
  return m ? Number(m[1]) : -1;
}

Deno.test({
  name: "RA e2e: the kernel autoconfigures from tapir's RAs; rdisc6 sees every option",
  ignore: ignoreUnlessReady("RA e2e (router)", ["ping", "rdisc6", "tshark"]),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of ["ping", "rdisc6", "tshark"]) if (!(await requireTool(tool))) return;
    await withTopology("tpr-ra", async (topo) => {
      const r = await topo.netns("r");
      const h1 = await topo.netns("h1");
      const h2 = await topo.netns("h2");
      // A plain host: forwarding off, accept_ra and autoconf on (the defaults).
      await sh(h1, "sysctl -qw net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.forwarding=0");
      const tapir = await startTapir({ config: ROUTER_CONFIG, ns: r, topo, capture: true });
      const t0 = performance.now();
      await moveTapToNs(LAN_TAP, r, h1);
      await moveTapToNs(WAN_TAP, r, h2, { address: "2001:db8:2::2/64" });
      await h2.ip("-6", "route", "add", "default", "via", "2001:db8:2::1");
      for (const k of ["forwarding", "accept_ra", "autoconf"]) {
        const v = await sh(h1, `sysctl -n net.ipv6.conf.${LAN_TAP}.${k}`);
        assert.equal(v.stdout.trim(), k === "forwarding" ? "0" : "1", `${k} in h1`);
      }

      let slaac = "";
      let routerLl = "";
      // The bound adds up the delays RFC 4861/4862 and Linux allow: tapir's
      // DAD for its link-local (a random delay ≤ 1 s, then RetransTimer 1 s)
      // before its first RA, or the answer to h1's RS (≤ 0.5 s, §6.2.6);
      // then h1's DAD for the SLAAC address (a random delay ≤ 1 s, then the
      // advertised RetransTimer, 2 s here): 5.5 s, plus moving the TAP.
      await t.step("within 7 s h1 has a SLAAC address and a default route via tapir", async () => {
        await waitFor("h1's SLAAC address and RA default route", async () => {
          const a = await sh(h1, `ip -6 addr show dev ${LAN_TAP} scope global`);
          const d = await sh(h1, `ip -6 route show default dev ${LAN_TAP}`);
          return /2001:db8:1:0?:/.test(a.stdout) && !/tentative/.test(a.stdout) &&
            /proto ra/.test(d.stdout);
        }, 12_000);
        const ms = performance.now() - t0;
        console.log(`  SLAAC address and default route in h1 after ${Math.round(ms)} ms`);
        const a = (await sh(h1, `ip -6 addr show dev ${LAN_TAP} scope global`)).stdout;
        const m = a.match(
          /inet6 (2001:db8:1:[0-9a-f:]+)\/64 scope global dynamic[^\n]*\n\s+valid_lft (\d+)sec preferred_lft (\d+)sec/,
        );
        assert.ok(m, a);
        slaac = m[1]!;
        const valid = Number(m[2]), preferred = Number(m[3]);
        assert.ok(valid > 3580 && valid <= 3600, `valid_lft ${valid}`);
        assert.ok(preferred > 1780 && preferred <= 1800, `preferred_lft ${preferred}`);
        const ll = ((await show(tapir, "addresses")).lan0 as { ipv6: string[] }).ipv6
          .find((x) => x.startsWith("fe80:"))!.split("/")[0]!;
        routerLl = ll;
        const d = (await sh(h1, `ip -6 route show default dev ${LAN_TAP}`)).stdout;
        assert.match(d, new RegExp(`default via ${ll} .*proto ra .*pref high`), d);
        assert.ok(ms < 7_000, `took ${ms} ms (≤ 7 s wanted)`);
      });

      await t.step("h1 pings h2 behind tapir from its SLAAC address", async () => {
        const p = await sh(h1, `ping -6 -n -c 3 -i 0.2 -W 2 -I ${slaac} 2001:db8:2::2`);
        assert.match(p.stdout, /3 received/, p.stdout + p.stderr);
        const mtu = await sh(h1, `cat /proc/sys/net/ipv6/conf/${LAN_TAP}/mtu`);
        assert.equal(mtu.stdout.trim(), "1400", "the MTU option was applied");
        const hl = await sh(h1, `cat /proc/sys/net/ipv6/conf/${LAN_TAP}/hop_limit`);
        assert.equal(hl.stdout.trim(), "61", "cur hop limit applied");
      });

      await t.step("rdisc6 shows every configured option", async () => {
        const o = await sh(h1, `rdisc6 -1 -w 4000 -r 2 ${LAN_TAP}`, 20_000);
        const s = o.stdout;
        assert.equal(o.code, 0, s + o.stderr);
        const expect: RegExp[] = [
          /Hop limit\s+:\s+61/,
          /Stateful address conf\.\s+:\s+Yes/,
          /Stateful other conf\.\s+:\s+Yes/,
          /Router preference\s+:\s+high/,
          /Router lifetime\s+:\s+30 /,
          /Reachable time\s+:\s+30000 /,
          /Retransmit time\s+:\s+2000 /,
          /Source link-layer address:\s+[0-9A-Fa-f:]{17}/,
          /MTU\s+:\s+1400 bytes/,
          /Prefix\s+:\s+2001:db8:1::\/64/,
          /On-link\s+:\s+Yes/,
          /Autonomous address conf\.\s*:\s+Yes/,
          /Valid time\s+:\s+3600 /,
          /Pref\. time\s+:\s+1800 /,
          /Route\s+:\s+2001:db8:ff::\/48/,
          /Route preference\s+:\s+low/,
          /Route lifetime\s+:\s+600 /,
          /Recursive DNS server\s+:\s+2001:db8:1::53/,
          /DNS server lifetime\s+:\s+600 /,
          /DNS search list\s+:\s+example\.net/,
          /DNS search list lifetime\s*:\s+600 /,
          new RegExp(`from ${routerLl}`),
        ];
        for (const re of expect) assert.match(s, re, s);
      });

      await t.step(
        "after SIGTERM the final RAs withdraw tapir as h1's default router",
        async () => {
          const before = await raIn(h1);
          const stopped = await tapir.stop("SIGTERM", 5000);
          assert.equal(stopped.code, 0, stopped.stderr);
          const t1 = performance.now();
          await waitFor("h1's default route via tapir to go", async () => {
            const d = await sh(h1, `ip -6 route show default`);
            return !d.stdout.includes(routerLl);
          }, 2_000);
          console.log(`  default route gone ${Math.round(performance.now() - t1)} ms after exit`);
          const after = await raIn(h1);
          assert.ok(after - before >= 3, `h1 received ${after - before} RAs at shutdown (≥ 3)`);
          // tapir's own capture: three RAs with router lifetime 0 at the end.
          const tr = await run([
            "tshark",
            "-r",
            `${tapir.captureDir}/lan0.pcap`,
            "-Y",
            "icmpv6.type == 134 && icmpv6.nd.ra.router_lifetime == 0",
            "-T",
            "fields",
            "-e",
            "ipv6.hlim",
            "-e",
            "ipv6.dst",
          ], { check: false, timeoutMs: 20_000 });
          const rows = tr.stdout.trim().split("\n").filter((l) => l !== "");
          assert.equal(rows.length, 3, tr.stdout + tr.stderr);
          for (const row of rows) assert.equal(row, "255\tff02::1");
        },
      );
    });
  },
});

Deno.test({
  name: "RA e2e: tapir (accept_ra) autoconfigures from radvd and the address ages out",
  ignore: ignoreUnlessReady("RA e2e (host)", ["ping", "radvd"]),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of ["ping", "radvd"]) if (!(await requireTool(tool))) return;
    await withTopology("tpr-slaac", async (topo) => {
      const tn = await topo.netns("t");
      const rr = await topo.netns("rr");
      const hb = await topo.netns("hb");
      await sh(rr, "sysctl -qw net.ipv6.conf.all.forwarding=1");
      await rr.ip("link", "add", "vr", "type", "veth", "peer", "name", "vb", "netns", hb.name);
      await rr.ip("addr", "add", "2001:db8:6::1/64", "dev", "vr", "nodad");
      await rr.ip("link", "set", "vr", "up");
      await hb.ip("addr", "add", "2001:db8:6::2/64", "dev", "vb", "nodad");
      await hb.ip("link", "set", "vb", "up");
      await hb.ip("-6", "route", "add", "default", "via", "2001:db8:6::1");

      const tapir = await startTapir({ config: HOST_CONFIG, ns: tn, topo });
      await moveTapToNs(HOST_TAP, tn, rr, { address: "2001:db8:5::1/64" });
      const dir = topo.tempDir();
      const radvdConf = `${dir}/radvd.conf`;
      Deno.writeTextFileSync(
        radvdConf,
        `interface ${HOST_TAP} {
  AdvSendAdvert on;
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 4;
  AdvDefaultLifetime 30;
  AdvDefaultPreference high;
  prefix 2001:db8:5::/64 {
    AdvOnLink on;
    AdvAutonomous on;
    AdvValidLifetime 20;
    AdvPreferredLifetime 10;
  };
  RDNSS 2001:db8:5::53 { AdvRDNSSLifetime 30; };
};
`,
      );
      const radvd = rr.spawn([
        "radvd",
        "-n",
        "-C",
        radvdConf,
        "-p",
        `${dir}/radvd.pid`,
        "-m",
        "stderr",
      ]);
      let addr = "";
      await t.step(
        "tapir forms a SLAAC address, passes DAD, installs the default route",
        async () => {
          await waitFor("tapir's SLAAC address to be preferred", async () => {
            const a = await show(tapir, "addresses");
            const v6 = (a.eth0 as { ipv6: string[] }).ipv6;
            const x = v6.find((s) => s.startsWith("2001:db8:5:"));
            if (x === undefined || x.includes(" ")) return false;
            addr = x.split("/")[0]!;
            return true;
          }, 15_000);
          const routes = await show(tapir, "routes") as unknown as {
            to: string;
            via: string | null;
            source: string;
          }[];
          assert.ok(
            routes.some((r) => r.to === "::/0" && r.source === "ra" && r.via?.startsWith("fe80:")),
            JSON.stringify(routes),
          );
          const ra = await show(tapir, "ra") as {
            interfaces: Record<string, { routers: { preference: string }[]; rdnss: unknown[] }>;
          };
          assert.equal(ra.interfaces.eth0!.routers[0]!.preference, "high");
          assert.equal(ra.interfaces.eth0!.rdnss.length, 1);
        },
      );

      await t.step("a host behind radvd's router pings tapir's SLAAC address", async () => {
        const p = await sh(hb, `ping -6 -n -c 3 -i 0.2 -W 2 ${addr}`);
        assert.match(p.stdout, /3 received/, p.stdout + p.stderr);
      });

      await t.step("with radvd stopped the address is deprecated, then removed", async () => {
        radvd.kill("SIGKILL"); // no final RA: the lifetimes run out on their own
        await radvd.wait(5000);
        const t1 = performance.now();
        await waitFor("the address to be deprecated", async () => {
          const v6 = ((await show(tapir, "addresses")).eth0 as { ipv6: string[] }).ipv6;
          return v6.includes(`${addr}/64 deprecated`);
        }, 15_000);
        const dep = performance.now() - t1;
        await waitFor("the address to be removed", async () => {
          const v6 = ((await show(tapir, "addresses")).eth0 as { ipv6: string[] }).ipv6;
          return !v6.some((x) => x.startsWith(addr));
        }, 25_000);
        console.log(
          `  deprecated ${Math.round(dep)} ms and removed ${
            Math.round(performance.now() - t1)
          } ms after radvd stopped`,
        );
      });
    });
  },
});
