/**
 * DHCPv4 client e2e: `tapir run` with `addresses = ["dhcp"]` on a WAN TAP
 * whose far end is ISC Kea (`kea-dhcp4`, memfile leases) in the WAN
 * namespace. tapir gets an address from Kea's pool with the router, DNS
 * and domain options (in `tapir show leases`, `show addresses`, `show
 * routes`, and Kea's own lease file); the kernel on the WAN side pings the
 * leased address from an address off the subnet, so the reply took
 * tapir's DHCP default route; the lease is renewed at T1; SIGTERM releases
 * it (Kea logs the RELEASE); and when Kea is gone the lease runs out and
 * tapir removes the address and its routes.
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
  type Topology,
  waitFor,
  withTopology,
} from "./harness.ts";

const TOOLS = ["kea-dhcp4", "ping"];
const id = String(Deno.pid % 100000);
const TAP = `tdc${id}`;
const MAC = "02:00:00:00:0c:01";

const config = `
[router]
hostname = "e2e-wan"

[[interface]]
name = "wan0"
tap = "${TAP}"
mac = "${MAC}"
addresses = ["dhcp"]

[interface.dhcp_client]
probes = 1
`;

/** Kea: a 20 s lease, T1 5 s, T2 12 s, from 198.51.100.100-120. */
function keaConfig(dir: string): string {
  return JSON.stringify({
    Dhcp4: {
      "interfaces-config": { interfaces: [TAP] },
      "lease-database": { type: "memfile", persist: true, name: `${dir}/kea-leases4.csv` },
      "valid-lifetime": 20,
      "renew-timer": 5,
      "rebind-timer": 12,
      subnet4: [{
        id: 1,
        subnet: "198.51.100.0/24",
        pools: [{ pool: "198.51.100.100 - 198.51.100.120" }],
        "option-data": [
          { name: "routers", data: "198.51.100.1" },
          { name: "domain-name-servers", data: "198.51.100.53, 192.0.2.53" },
          { name: "domain-name", data: "wan.example" },
        ],
      }],
      loggers: [{
        name: "kea-dhcp4",
        output_options: [{ output: `${dir}/kea.log` }],
        severity: "INFO",
      }],
    },
  });
}

interface ClientRow {
  role: string;
  interface: string;
  state: string;
  address: string | null;
  prefixlen: number | null;
  server: string | null;
  routers: string[];
  dns_servers: string[];
  domain: string | null;
  lease_time: number | null;
  valid_lft: number | null;
}

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

async function client(tapir: Tapir): Promise<ClientRow> {
  const rows = await show(tapir, "leases") as ClientRow[];
  const c = rows.find((r) => r.role === "client");
  assert.ok(c !== undefined, JSON.stringify(rows));
  return c;
}

/** Start tapir in r with its TAP's far end in w (198.51.100.1/24). */
async function startWan(topo: Topology, r: Netns, w: Netns): Promise<Tapir> {
  const tapir = await startTapir({ config, ns: r, topo });
  await moveTapToNs(TAP, r, w, { address: "198.51.100.1/24" });
  return tapir;
}

Deno.test({
  name: "DHCPv4 client e2e: tapir takes its WAN address, route and DNS from Kea",
  ignore: ignoreUnlessReady("DHCPv4 client e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpc", async (topo) => {
      const r = await topo.netns("r");
      const w = await topo.netns("w");
      const dir = topo.tempDir();
      // An address beyond the WAN subnet: replies to it need tapir's default route.
      await w.ip("addr", "add", "203.0.113.1/32", "dev", "lo");
      let tapir = await startWan(topo, r, w);
      Deno.writeTextFileSync(`${dir}/kea-dhcp4.conf`, keaConfig(dir));
      const keaEnv = { KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir };
      // Kea opens its sockets on the TAP it finds at start: a new TAP needs a new Kea.
      const startKea = () => w.spawn(["kea-dhcp4", "-c", `${dir}/kea-dhcp4.conf`], keaEnv);
      let kea = startKea();
      let leased = "";

      await t.step("a lease from Kea's pool with router, DNS and domain", async () => {
        await waitFor("tapir's lease", async () => (await client(tapir)).state === "bound", 20_000);
        const c = await client(tapir);
        assert.match(c.address!, /^198\.51\.100\.(1[01]\d|120)$/);
        leased = c.address!;
        assert.equal(c.prefixlen, 24);
        assert.equal(c.server, "198.51.100.1");
        assert.deepEqual(c.routers, ["198.51.100.1"]);
        assert.deepEqual(c.dns_servers, ["198.51.100.53", "192.0.2.53"]);
        assert.equal(c.domain, "wan.example");
        assert.equal(c.lease_time, 20);
        const addrs = await show(tapir, "addresses") as Record<
          string,
          { addr_info: { local: string; origin: string }[] }
        >;
        assert.ok(
          addrs.wan0!.addr_info.some((a) => a.local === leased && a.origin === "dhcp"),
          JSON.stringify(addrs.wan0),
        );
        const routes = await show(tapir, "routes") as { to: string; via: string; proto: string }[];
        assert.ok(
          routes.some((x) =>
            x.to === "0.0.0.0/0" && x.via === "198.51.100.1" && x.proto === "dhcp"
          ),
          JSON.stringify(routes),
        );
        // Kea's memfile has it under tapir's MAC and hostname.
        const csv = Deno.readTextFileSync(`${dir}/kea-leases4.csv`);
        assert.ok(
          csv.split("\n").some((l) => l.startsWith(`${leased},${MAC},`) && l.includes("e2e-wan")),
          csv,
        );
      });

      await t.step("the kernel pings the leased address from beyond the subnet", async () => {
        const p = await w.exec(
          ["ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "203.0.113.1", leased],
          { check: false, timeoutMs: 15_000 },
        );
        assert.equal(p.code, 0, p.stdout + p.stderr);
        assert.match(p.stdout, /3 received/);
      });

      await t.step("renewed at T1: the lifetime starts again", async () => {
        const low = (await client(tapir)).valid_lft!;
        // T1 is 5 s after the ACK: wait for the lifetime to drop below 16 and come back.
        await waitFor("a renewal", async () => {
          const c = await client(tapir);
          return c.state === "bound" && c.valid_lft! > 17 && c.valid_lft! > low - 1 &&
            (Deno.readTextFileSync(`${dir}/kea-leases4.csv`).split("\n")
              .filter((l) => l.startsWith(`${leased},`)).length >= 2);
        }, 15_000);
        assert.equal((await client(tapir)).address, leased, "the same address");
      });

      await t.step("SIGTERM releases the lease to Kea", async () => {
        const s = await tapir.stop("SIGTERM");
        assert.equal(s.code, 0, s.stderr);
        await waitFor(
          "Kea's DHCP4_RELEASE",
          () => Deno.readTextFileSync(`${dir}/kea.log`).includes("DHCP4_RELEASE"),
          5_000,
        );
        assert.match(
          Deno.readTextFileSync(`${dir}/kea.log`),
          new RegExp(`DHCP4_RELEASE .*${leased.replaceAll(".", "\\.")}`),
        );
        kea.kill("SIGTERM");
        await kea.wait(5_000);
      });

      await t.step("with Kea gone, the lease runs out and tapir removes it", async () => {
        tapir = await startWan(topo, r, w);
        kea = startKea();
        await waitFor("a new lease", async () => (await client(tapir)).state === "bound", 20_000);
        const got = (await client(tapir)).address!;
        kea.kill("SIGTERM");
        await kea.wait(5_000);
        await waitFor(
          "RENEWING, then REBINDING",
          async () => (await client(tapir)).state === "rebinding",
          20_000,
        );
        await waitFor(
          "the lease to end",
          async () => (await client(tapir)).address === null,
          15_000,
        );
        const addrs = await show(tapir, "addresses") as Record<
          string,
          { addr_info: { local: string }[] }
        >;
        assert.ok(!addrs.wan0!.addr_info.some((a) => a.local === got));
        const routes = await show(tapir, "routes") as { proto: string }[];
        assert.ok(!routes.some((x) => x.proto === "dhcp"), JSON.stringify(routes));
        const c = await client(tapir);
        assert.equal(c.state, "selecting");
        await tapir.stop("SIGTERM");
      });
    });
  },
});
