/**
 * DHCPv6 client e2e: `tapir run` as a gateway whose WAN interface takes an
 * address (IA_NA) and a delegated prefix (IA_PD) from ISC Kea
 * (`kea-dhcp6`, memfile leases) and numbers its LAN from the prefix:
 *
 *   w (kernel, radvd, kea-dhcp6; 2001:db8:f::1/64)
 *     ── wan0 tapir lan0 ── h (a Linux host doing SLAAC)
 *
 * - tapir's client gets an address from Kea's pool and a /56 from its PD
 *   pool, with the DNS options (`tapir show leases`, `show addresses`,
 *   `show routes`, and Kea's own lease file, which lists both IAs under
 *   tapir's DUID and IAID);
 * - tapir gives itself 2001:db8:100:1::1/64 on lan0 (the 2nd /64 of the
 *   /56) and advertises it; the host forms a SLAAC address in it and pings
 *   the WAN side's address through tapir (the WAN kernel routes the /56
 *   back via tapir's link-local, as an ISP's router does);
 * - at T1 tapir renews: Kea's lease file has a later expiry for both IAs,
 *   and tapir's lifetimes are Kea's new ones;
 * - with Kea stopped, RENEW and REBIND go unanswered; when the lease runs
 *   out tapir drops the prefix and lan0's address, and the host's address
 *   in the /64 is deprecated, then removed.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  REPO,
  requireRoot,
  requireTool,
  run,
  startTapir,
  type Tapir,
  TAPIR_PERMS,
  waitFor,
  withTopology,
} from "./harness.ts";

const TOOLS = ["kea-dhcp6", "radvd", "ping"];
const id = String(Deno.pid % 100000);
const WAN_TAP = `t6w${id}`;
const LAN_TAP = `t6l${id}`;
const WAN_MAC = "02:00:00:00:0d:01";
/** tapir's DUID-LL (type 3, hardware type 1, the MAC) and IAID (the MAC's last four bytes). */
const DUID = `00:03:00:01:${WAN_MAC}`;
const IAID = 0x00000d01;
/** Kea's DUID-EN (type 2, enterprise 2495 = ISC, the identifier). */
const KEA_DUID = "00:02:00:00:09:bf:0a:0b:0c:0d:0e:0f";
const WAN_ADDR = "2001:db8:f::1";
/** The /56 a fresh Kea delegates first (its PD pool's first), as its lease file writes it. */
const PD = "2001:db8:100::";

const config = `
[router]
hostname = "e2e-pd"
forwarding = { ipv4 = false, ipv6 = true }

[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
mac = "${WAN_MAC}"
accept_ra = true

[interface.dhcp6_client]
ia_na = true
ia_pd = true
prefix_hint = 56

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"

[interface.ra]
enabled = true
interval = "3s..6s"
prefixes = [{ from = "wan0", subnet = 1 }]
`;

/** Kea: preferred 20 s, valid 30 s, T1 5 s, T2 12 s; ::100-::1ff and /56s of 2001:db8:100::/48. */
function keaConfig(dir: string): string {
  return JSON.stringify({
    Dhcp6: {
      "interfaces-config": { interfaces: [WAN_TAP] },
      "lease-database": { type: "memfile", persist: true, name: `${dir}/kea-leases6.csv` },
      "server-id": {
        type: "EN",
        "enterprise-id": 2495,
        identifier: "0a0b0c0d0e0f",
        persist: false,
      },
      "preferred-lifetime": 20,
      "valid-lifetime": 30,
      "renew-timer": 5,
      "rebind-timer": 12,
      "option-data": [
        { name: "dns-servers", data: "2001:db8:f::53" },
        { name: "domain-search", data: "wan.example" },
      ],
      subnet6: [{
        id: 1,
        subnet: "2001:db8:f::/64",
        interface: WAN_TAP,
        "rapid-commit": false,
        pools: [{ pool: "2001:db8:f::100-2001:db8:f::1ff" }],
        "pd-pools": [{ prefix: "2001:db8:100::", "prefix-len": 48, "delegated-len": 56 }],
      }],
      loggers: [{
        name: "kea-dhcp6",
        output_options: [{ output: `${dir}/kea.log` }],
        severity: "INFO",
      }],
    },
  });
}

/** radvd on the WAN side: M flag, the WAN link's prefix on-link only, a default route. */
function radvdConfig(): string {
  return `interface ${WAN_TAP} {
  AdvSendAdvert on;
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 4;
  AdvManagedFlag on;
  AdvDefaultLifetime 1800;
  prefix 2001:db8:f::/64 {
    AdvOnLink on;
    AdvAutonomous off;
  };
};
`;
}

interface Client6Row {
  role: string;
  interface: string;
  state: string;
  address: string | null;
  prefix: string | null;
  server: string | null;
  dns_servers: string[];
  domains: string[];
  address_valid_lft: number | null;
  prefix_valid_lft: number | null;
}

interface AddrInfo {
  local: string;
  prefixlen: number;
  origin: string;
  state: string;
  valid_lft: number | null;
  preferred_lft: number | null;
}

/** One line of Kea's memfile (its header names the columns). */
type KeaLease = Record<string, string>;

async function show(tapir: Tapir, what: string): Promise<unknown> {
  const r = await run([
    Deno.execPath(),
    "run",
    ...TAPIR_PERMS,
    `${REPO}/main.ts`,
    "show",
    what,
    "--control",
    tapir.controlPath,
    "--json",
  ], { timeoutMs: 10_000 });
  return JSON.parse(r.stdout);
}

async function client6(tapir: Tapir): Promise<Client6Row> {
  const rows = await show(tapir, "leases") as Client6Row[];
  const c = rows.find((r) => r.role === "client6" && r.interface === "wan0");
  assert.ok(c !== undefined, JSON.stringify(rows));
  return c;
}

async function tapirAddrs(tapir: Tapir, nic: string): Promise<AddrInfo[]> {
  const a = await show(tapir, "addresses") as Record<string, { addr_info: AddrInfo[] }>;
  return a[nic]!.addr_info;
}

function keaLeases(dir: string): KeaLease[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dir}/kea-leases6.csv`);
  } catch {
    return [];
  }
  const [head, ...lines] = text.split("\n").filter((l) => l.trim() !== "");
  if (head === undefined) return [];
  const cols = head.split(",");
  return lines.map((l) => {
    const v = l.split(",");
    return Object.fromEntries(cols.map((c, i) => [c, v[i] ?? ""]));
  });
}

/** Kea's lines for `address` (an address, or a prefix without its length), oldest first. */
function keaLinesFor(dir: string, address: string): KeaLease[] {
  return keaLeases(dir).filter((l) => l.address === address);
}

/** The host's IPv6 addresses on `dev` as `ip -j` gives them. */
async function hostAddrs(
  ns: Netns,
  dev: string,
): Promise<{ local: string; prefixlen: number; [flag: string]: unknown }[]> {
  const r = await ns.exec(["ip", "-j", "-6", "addr", "show", "dev", dev], { timeoutMs: 5_000 });
  const j = JSON.parse(r.stdout) as { addr_info: { local: string; prefixlen: number }[] }[];
  return j[0]?.addr_info ?? [];
}

async function sh(ns: Netns, cmd: string, timeoutMs = 10_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

/** The `subnet`-th /64 of a /56 written `2001:db8:100:XX00::/56`, as `2001:db8:100:XXYY::`. */
function lan64Of(prefix56: string, subnet: number): string {
  const m = prefix56.match(/^2001:db8:100(?::([0-9a-f]{1,2})00)?::\/56$/);
  assert.ok(m, `a /56 of 2001:db8:100::/48: ${prefix56}`);
  const hi = m[1] === undefined ? 0 : parseInt(m[1], 16);
  return `2001:db8:100:${((hi << 8) | subnet).toString(16)}::`;
}

Deno.test({
  name: "DHCPv6 client e2e: tapir takes an address and a /56 from Kea and numbers its LAN",
  ignore: ignoreUnlessReady("DHCPv6 client e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tp6c", async (topo) => {
      const r = await topo.netns("r");
      const w = await topo.netns("w");
      const h = await topo.netns("h");
      const dir = topo.tempDir();
      // radvd wants forwarding on (in w only): w is the ISP's router.
      await sh(w, "sysctl -qw net.ipv6.conf.all.forwarding=1");
      const tapir = await startTapir({ config, ns: r, topo, capture: true });
      await moveTapToNs(WAN_TAP, r, w, { address: `${WAN_ADDR}/64` });
      // The LAN host: forwarding off, accept_ra and autoconf on, no temporary addresses.
      await moveTapToNs(LAN_TAP, r, h, { up: false });
      const hostConf = ["forwarding=0", "accept_ra=1", "autoconf=1", "use_tempaddr=0"]
        .map((kv) => `net.ipv6.conf.${LAN_TAP}.${kv}`).join(" ");
      assert.equal((await sh(h, `sysctl -qw ${hostConf}`)).code, 0);
      await h.ip("link", "set", "dev", LAN_TAP, "up");
      // Kea binds its socket to the link-local address: wait until DAD has passed.
      await waitFor("the WAN side's link-local address", async () => {
        const a = await hostAddrs(w, WAN_TAP);
        return a.some((x) => x.local.startsWith("fe80:") && x.tentative !== true);
      }, 10_000);
      Deno.writeTextFileSync(`${dir}/radvd.conf`, radvdConfig());
      w.spawn([
        "radvd",
        "-n",
        "-C",
        `${dir}/radvd.conf`,
        "-p",
        `${dir}/radvd.pid`,
        "-m",
        "stderr",
      ]);
      Deno.writeTextFileSync(`${dir}/kea-dhcp6.conf`, keaConfig(dir));
      const kea = w.spawn(["kea-dhcp6", "-c", `${dir}/kea-dhcp6.conf`], {
        KEA_PIDFILE_DIR: dir,
        KEA_LOCKFILE_DIR: dir,
      });
      let address = "";
      let prefix = "";
      let lan64 = "";
      let tapirLl = "";

      try {
        await t.step(
          "an IA_NA address from Kea's pool and an IA_PD /56 from its PD pool",
          async () => {
            // SOLICIT backs off 1, 2, 4, 8 s while Kea starts; then 4 messages.
            await waitFor("tapir's DHCPv6 lease", async () => {
              const c = await client6(tapir);
              return c.state === "bound" && c.address !== null && c.prefix !== null;
            }, 30_000);
            const c = await client6(tapir);
            const last = parseInt(
              c.address!.match(/^2001:db8:f::([0-9a-f]{1,4})$/)?.[1] ?? "0",
              16,
            );
            assert.ok(last >= 0x100 && last <= 0x1ff, `an address of the pool: ${c.address}`);
            address = c.address!;
            // A fresh Kea hands out the first /56 of its PD pool, at the length hinted.
            assert.equal(c.prefix, "2001:db8:100::/56");
            prefix = c.prefix!;
            lan64 = lan64Of(prefix, 1);
            assert.equal(lan64, "2001:db8:100:1::");
            assert.equal(c.server, KEA_DUID);
            assert.deepEqual(c.dns_servers, ["2001:db8:f::53"]);
            assert.deepEqual(c.domains, ["wan.example"]);
            assert.ok(c.address_valid_lft! > 20 && c.address_valid_lft! <= 30, JSON.stringify(c));
            assert.ok(c.prefix_valid_lft! > 20 && c.prefix_valid_lft! <= 30, JSON.stringify(c));
            // On wan0 as a /128 (the on-link /64 comes from radvd's RA).
            const wan = await tapirAddrs(tapir, "wan0");
            assert.ok(
              wan.some((a) => a.local === address && a.prefixlen === 128 && a.origin === "dhcp"),
              JSON.stringify(wan),
            );
            tapirLl = wan.find((a) => a.local.startsWith("fe80:"))!.local;
            // The unreachable route for the whole /56 (RFC 7084 WPD-5), and radvd's default route.
            const routes = await show(tapir, "routes") as {
              to: string;
              type: string;
              via: string | null;
              dev: string | null;
              source: string;
            }[];
            assert.ok(
              routes.some((x) =>
                x.to === prefix && x.type === "unreachable" && x.source === "dhcp"
              ),
              JSON.stringify(routes),
            );
            assert.ok(
              routes.some((x) => x.to === "::/0" && x.dev === "wan0" && x.via?.startsWith("fe80:")),
              JSON.stringify(routes),
            );
            // Kea's memfile: both IAs under tapir's DUID and IAID, type 0 (IA_NA) and 2 (IA_PD).
            const na = keaLinesFor(dir, address);
            const pd = keaLinesFor(dir, PD);
            assert.ok(na.length >= 1 && pd.length >= 1, JSON.stringify(keaLeases(dir)));
            for (
              const [l, type, len] of [[na.at(-1)!, "0", "128"], [pd.at(-1)!, "2", "56"]] as const
            ) {
              assert.equal(l.duid, DUID, JSON.stringify(l));
              assert.equal(l.iaid, String(IAID), JSON.stringify(l));
              assert.equal(l.lease_type, type, JSON.stringify(l));
              assert.equal(l.prefix_len, len, JSON.stringify(l));
              assert.equal(l.valid_lifetime, "30", JSON.stringify(l));
              assert.equal(l.pref_lifetime, "20", JSON.stringify(l));
              assert.equal(l.state, "0", "default (assigned)");
            }
          },
        );

        await t.step(
          "lan0 gets 2001:db8:100:1::1/64; the LAN host's SLAAC address reaches the WAN",
          async () => {
            // Added when the REPLY came; DAD (≤ 1 s delay, then 1 s) makes it preferred.
            await waitFor(
              "lan0's address from the delegation, past DAD",
              async () =>
                (await tapirAddrs(tapir, "lan0")).some((a) =>
                  a.local === `${lan64}1` && a.state === "preferred"
                ),
              10_000,
            );
            const lan = (await tapirAddrs(tapir, "lan0")).find((a) => a.local === `${lan64}1`)!;
            assert.equal(lan.prefixlen, 64);
            assert.equal(lan.origin, "dhcp");
            assert.ok(lan.valid_lft! > 0 && lan.valid_lft! <= 30, JSON.stringify(lan));
            assert.ok(lan.preferred_lft! > 0 && lan.preferred_lft! <= 20, JSON.stringify(lan));
            // What the ISP's router does: route the delegated prefix to the router holding it.
            await w.ip("-6", "route", "add", prefix, "via", tapirLl, "dev", WAN_TAP);
            // tapir's RA (≤ 6 s apart, or the answer to the host's RS), then the host's DAD.
            let slaac = "";
            await waitFor("the host's SLAAC address and default route", async () => {
              const a = (await hostAddrs(h, LAN_TAP)).find((x) =>
                x.local.startsWith(lan64.replace(/::$/, ":")) && x.prefixlen === 64
              );
              const d = await sh(h, `ip -6 route show default dev ${LAN_TAP}`);
              if (a === undefined || a.tentative === true || !/proto ra/.test(d.stdout)) {
                return false;
              }
              slaac = a.local;
              return true;
            }, 20_000);
            const a = (await hostAddrs(h, LAN_TAP)).find((x) => x.local === slaac)!;
            assert.ok(a.dynamic === true && a.deprecated !== true, JSON.stringify(a));
            // Its lifetimes are what is left of the delegation's (RFC 7084 L-2/L-3).
            const vl = a.valid_life_time as number, pl = a.preferred_life_time as number;
            assert.ok(vl > 0 && vl <= 30 && pl > 0 && pl <= 20, JSON.stringify(a));
            const d = await sh(h, `ip -6 route show default dev ${LAN_TAP}`);
            assert.match(d.stdout, /via fe80:/);
            // The only way out of h is tapir, and the only way back is the /56 route via tapir.
            const p = await h.exec(
              ["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-I", slaac, WAN_ADDR],
              { check: false, timeoutMs: 15_000 },
            );
            assert.equal(p.code, 0, p.stdout + p.stderr);
            assert.match(p.stdout, /3 received/);
          },
        );

        await t.step(
          "renewed at T1: Kea's lease file has a later expiry, tapir its lifetimes",
          async () => {
            const firstNa = Number(keaLinesFor(dir, address)[0]!.expire);
            const firstPd = Number(keaLinesFor(dir, PD)[0]!.expire);
            // T1 = 5 s after the REQUEST; the RENEW's REPLY rewrites both leases.
            await waitFor("Kea's renewed leases", () => {
              const na = keaLinesFor(dir, address).at(-1);
              const pd = keaLinesFor(dir, PD).at(-1);
              return na !== undefined && pd !== undefined &&
                Number(na.expire) >= firstNa + 4 && Number(pd.expire) >= firstPd + 4;
            }, 15_000);
            await waitFor(
              "tapir bound again",
              async () => (await client6(tapir)).state === "bound",
              5_000,
            );
            // Kea may renew again (every 5 s) while tapir is asked: its lines before and after.
            const before = [keaLinesFor(dir, address).at(-1)!, keaLinesFor(dir, PD).at(-1)!];
            const c = await client6(tapir);
            const nowSec = Date.now() / 1000;
            const after = [keaLinesFor(dir, address).at(-1)!, keaLinesFor(dir, PD).at(-1)!];
            assert.equal(c.address, address, "the same address");
            assert.equal(c.prefix, prefix, "the same prefix");
            for (const l of after) assert.equal(l.duid, DUID);
            // tapir's lifetimes count down to Kea's expiry (whole seconds on both sides).
            const near = (lft: number, i: number) =>
              [before[i]!, after[i]!].some((l) =>
                Math.abs(lft - (Number(l.expire) - nowSec)) <= 2.5
              );
            assert.ok(
              near(c.address_valid_lft!, 0),
              `address_valid_lft ${c.address_valid_lft}, Kea's expiry ${
                after[0]!.expire
              }, now ${nowSec}`,
            );
            assert.ok(
              near(c.prefix_valid_lft!, 1),
              `prefix_valid_lft ${c.prefix_valid_lft}, Kea's expiry ${
                after[1]!.expire
              }, now ${nowSec}`,
            );
            // Kea took them as renewals of tapir's IAs (not new allocations).
            await waitFor("Kea's RENEW log lines", () => {
              const log = Deno.readTextFileSync(`${dir}/kea.log`);
              return new RegExp(
                `DHCP6_LEASE_RENEW duid=\\[${DUID}\\].*address ${address} and iaid=${IAID}`,
              )
                .test(log) &&
                new RegExp(
                  `DHCP6_PD_LEASE_RENEW duid=\\[${DUID}\\].*prefix ${prefix} and iaid=${IAID}`,
                )
                  .test(log);
            }, 3_000);
          },
        );

        await t.step(
          "with Kea stopped the lease runs out: the prefix, lan0's /64 and the host's address go",
          async () => {
            kea.kill("SIGTERM");
            await kea.wait(5_000);
            const t0 = performance.now();
            // The last REPLY came ≤ 5 s ago: RENEW from T1, REBIND from T2 (12 s), the end at 30 s.
            await waitFor(
              "RENEWING",
              async () => (await client6(tapir)).state === "renewing",
              10_000,
            );
            await waitFor(
              "REBINDING",
              async () => (await client6(tapir)).state === "rebinding",
              15_000,
            );
            // RFC 4862 §5.5.3(e): the host takes every advertised preferred lifetime as it is, so its
            // address goes deprecated when the delegation's preferred lifetime (20 s) ends; the
            // "2-hour rule" only stops an RA from *shortening* a valid lifetime (≤ 2 h left: a
            // smaller one is ignored). tapir's PIO counts down, so it never shortens it, and the
            // host's valid lifetime ends with the delegation (30 s): then the address is removed.
            // What it must never be once the lease is gone is preferred (usable for new flows).
            let sawDeprecated = false;
            const slaacOf = async () =>
              (await hostAddrs(h, LAN_TAP)).find((x) =>
                x.local.startsWith(lan64.replace(/::$/, ":")) && x.prefixlen === 64
              );
            await waitFor("the lease to end", async () => {
              const a = await slaacOf();
              if (a?.deprecated === true) sawDeprecated = true;
              return (await client6(tapir)).prefix === null;
            }, 35_000);
            const ended = Math.round(performance.now() - t0);
            const c = await client6(tapir);
            assert.equal(c.address, null);
            assert.equal(c.prefix, null);
            assert.equal(c.state, "soliciting");
            assert.ok(!(await tapirAddrs(tapir, "lan0")).some((a) => a.local === `${lan64}1`));
            assert.ok(!(await tapirAddrs(tapir, "wan0")).some((a) => a.local === address));
            const routes = await show(tapir, "routes") as { to: string }[];
            assert.ok(!routes.some((x) => x.to === prefix), JSON.stringify(routes));
            const atEnd = await slaacOf();
            assert.ok(atEnd === undefined || atEnd.deprecated === true, JSON.stringify(atEnd));
            await waitFor("the host's address to be removed", async () => {
              const a = await slaacOf();
              if (a?.deprecated === true) sawDeprecated = true;
              return a === undefined;
            }, 10_000);
            console.log(
              `  lease ended ${ended} ms after Kea stopped; host address deprecated first: ${sawDeprecated}`,
            );
            assert.ok(
              sawDeprecated,
              "deprecated between the preferred and the valid lifetime's end",
            );
          },
        );
      } finally {
        await tapir.stop("SIGTERM").catch(() => {});
      }
    });
  },
});
