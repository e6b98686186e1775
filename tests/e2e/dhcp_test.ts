/**
 * DHCPv4 e2e: `tapir run` serves [interface.dhcp] on a TAP; the DHCP
 * clients Linux users run — busybox udhcpc, ISC dhclient and dhcpcd — each
 * get a lease in the host namespace with the router, DNS, domain and
 * classless-route options the config names (read from each client's own
 * output, and for dhcpcd, which configures the interface itself, from `ip
 * addr` and `ip route`); a MAC with a reservation gets its fixed address;
 * `tapir show leases` and the lease file list what was ACKed. And crash
 * safety: scripted clients (tests/e2e/fixtures/dhcp_clients.py) run DORA
 * back to back while tapir is killed with SIGKILL at a random moment;
 * after a restart every lease a client saw ACKed is in the lease file with
 * its MAC, and new clients get none of those addresses.
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
  withTopology,
} from "./harness.ts";

const TOOLS = ["udhcpc", "dhclient", "dhcpcd"];
const id = String(Deno.pid % 100000);
const TAP = `tdh${id}`;
const RESERVED_MAC = "02:00:00:00:0d:01";

const config = (leaseFile: string, pool = "192.0.2.100-192.0.2.150", extra = "") => `
[router]
hostname = "e2e-dhcp"

[[interface]]
name = "lan0"
tap = "${TAP}"
addresses = ["192.0.2.1/24"]

[interface.dhcp]
pools = ["${pool}"]
lease_time = "10m"
dns_servers = ["192.0.2.53", "198.51.100.53"]
domain = "lan.example"
search = ["lan.example"]
routes = [{ to = "203.0.113.0/24", via = "192.0.2.254" }]
reservations = [{ mac = "${RESERVED_MAC}", address = "192.0.2.120", hostname = "fixed" }]
lease_file = "${leaseFile}"
${extra}`;

async function sh(ns: Netns, cmd: string, timeoutMs = 30_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

async function leases(tapir: Tapir): Promise<{ address: string; mac: string; state: string }[]> {
  const r = await run([
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    `${REPO}/main.ts`,
    "show",
    "leases",
    "--control",
    tapir.controlPath,
    "--json",
  ]);
  return JSON.parse(r.stdout);
}

/** A fresh interface state in h: a new MAC, no addresses. */
async function reset(h: Netns, mac: string): Promise<void> {
  await h.ip("addr", "flush", "dev", TAP);
  await h.ip("link", "set", "dev", TAP, "down");
  await h.ip("link", "set", "dev", TAP, "address", mac);
  await h.ip("link", "set", "dev", TAP, "up");
}

/** `key=value` lines a client's script wrote. */
function envOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split("\n")) {
    const i = l.indexOf("=");
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

Deno.test({
  name: "DHCP e2e: udhcpc, dhclient and dhcpcd get leases with the configured options",
  ignore: ignoreUnlessReady("DHCP e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpd", async (topo) => {
      const r = await topo.netns("r");
      const h = await topo.netns("h");
      const dir = topo.tempDir();
      const leaseFile = `${dir}/lan0.dhcp4.leases`;
      const tapir = await startTapir({ config: config(leaseFile), ns: r, topo });
      await moveTapToNs(TAP, r, h);
      const acked = new Map<string, string>();

      await t.step(
        "busybox udhcpc: a lease with router, DNS, domain and RFC 3442 routes",
        async () => {
          await reset(h, "02:00:00:00:0d:10");
          const script = `${dir}/udhcpc.sh`;
          // The script only records what udhcpc hands it (the Debian default would rewrite /etc/resolv.conf).
          Deno.writeTextFileSync(
            script,
            `#!/bin/sh\n[ "$1" = bound ] || exit 0\n` +
              `printf 'ip=%s\\nsubnet=%s\\nrouter=%s\\ndns=%s\\ndomain=%s\\nstaticroutes=%s\\nserverid=%s\\nlease=%s\\n' ` +
              `"$ip" "$subnet" "$router" "$dns" "$domain" "$staticroutes" "$serverid" "$lease" > ${dir}/udhcpc.env\n` +
              `ip addr add "$ip/$subnet" dev "$interface"\n`,
          );
          Deno.chmodSync(script, 0o755);
          const res = await sh(
            h,
            `udhcpc -i ${TAP} -f -q -n -t 5 -T 1 -O staticroutes -s ${script}`,
          );
          assert.equal(res.code, 0, res.stdout + res.stderr);
          const env = envOf(Deno.readTextFileSync(`${dir}/udhcpc.env`));
          assert.match(env.ip!, /^192\.0\.2\.(1[0-4]\d|150)$/);
          assert.equal(env.subnet, "255.255.255.0");
          assert.equal(env.router, "192.0.2.1");
          assert.equal(env.dns, "192.0.2.53 198.51.100.53");
          assert.equal(env.domain, "lan.example");
          assert.equal(env.staticroutes, "203.0.113.0/24 192.0.2.254 0.0.0.0/0 192.0.2.1");
          assert.equal(env.serverid, "192.0.2.1");
          assert.equal(env.lease, "600");
          const addr = await sh(h, `ip -4 -o addr show dev ${TAP}`);
          assert.match(addr.stdout, new RegExp(`inet ${env.ip!.replaceAll(".", "\\.")}/24`));
          acked.set(env.ip!, "02:00:00:00:0d:10");
          // The address answers from tapir's side (tapir resolves it by ARP).
          const ping = await sh(h, `ping -c 1 -W 2 192.0.2.1`);
          assert.equal(ping.code, 0, ping.stdout);
        },
      );

      await t.step("udhcpc with a reserved MAC gets the reserved address", async () => {
        await reset(h, RESERVED_MAC);
        const script = `${dir}/udhcpc.sh`;
        const res = await sh(h, `udhcpc -i ${TAP} -f -q -n -t 5 -T 1 -s ${script}`);
        assert.equal(res.code, 0, res.stdout + res.stderr);
        const env = envOf(Deno.readTextFileSync(`${dir}/udhcpc.env`));
        assert.equal(env.ip, "192.0.2.120");
        acked.set("192.0.2.120", RESERVED_MAC);
      });

      await t.step(
        "ISC dhclient: a lease with the same options, option 121 requested",
        async () => {
          await reset(h, "02:00:00:00:0d:20");
          const script = `${dir}/dhclient.sh`;
          Deno.writeTextFileSync(
            script,
            `#!/bin/sh\ncase "$reason" in BOUND|RENEW|REBOOT) ;; *) exit 0;; esac\n` +
              `printf 'ip=%s\\nmask=%s\\nrouters=%s\\ndns=%s\\ndomain=%s\\nroutes=%s\\n' ` +
              `"$new_ip_address" "$new_subnet_mask" "$new_routers" "$new_domain_name_servers" ` +
              `"$new_domain_name" "$new_rfc3442_classless_static_routes" > ${dir}/dhclient.env\n` +
              `ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"\n`,
          );
          Deno.chmodSync(script, 0o755);
          Deno.writeTextFileSync(
            `${dir}/dhclient.conf`,
            `option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n` +
              `request subnet-mask, routers, domain-name-servers, domain-name, rfc3442-classless-static-routes;\n`,
          );
          const pidFile = `${dir}/dhclient.pid`;
          const res = await sh(
            h,
            `timeout 20 dhclient -1 -v -cf ${dir}/dhclient.conf -sf ${script} -lf ${dir}/dhclient.leases -pf ${pidFile} ${TAP}`,
          );
          // dhclient forks into the background once bound; stop it by its PID.
          try {
            const pid = Number(Deno.readTextFileSync(pidFile).trim());
            if (pid > 0) Deno.kill(pid, "SIGTERM");
          } catch { /* it did not get that far */ }
          assert.equal(res.code, 0, res.stdout + res.stderr);
          assert.match(res.stderr, /DHCPACK of 192\.0\.2\.\d+ from 192\.0\.2\.1/);
          const env = envOf(Deno.readTextFileSync(`${dir}/dhclient.env`));
          assert.match(env.ip!, /^192\.0\.2\.(1[0-4]\d|150)$/);
          assert.ok(!acked.has(env.ip!), `${env.ip} is a new address`);
          assert.equal(env.routers, "192.0.2.1");
          assert.equal(env.dns, "192.0.2.53 198.51.100.53");
          assert.equal(env.domain, "lan.example");
          // RFC 3442 bytes as dhclient prints them: width, significant octets, router.
          assert.equal(env.routes, "24 203 0 113 192 0 2 254 0 192 0 2 1");
          acked.set(env.ip!, "02:00:00:00:0d:20");
        },
      );

      await t.step("dhcpcd: configures the address and the classless routes itself", async () => {
        await reset(h, "02:00:00:00:0d:30");
        Deno.writeTextFileSync(`${dir}/dhcpcd.conf`, `option classless_static_routes\n`);
        const res = await sh(
          h,
          `timeout 30 dhcpcd -4 -1 -B -f ${dir}/dhcpcd.conf -c /bin/true --noipv4ll -t 20 ${TAP}`,
        );
        assert.equal(res.code, 0, res.stdout + res.stderr);
        const addr = await sh(h, `ip -4 -o addr show dev ${TAP}`);
        const m = addr.stdout.match(/inet (192\.0\.2\.\d+)\/24/);
        assert.ok(m, addr.stdout);
        assert.ok(!acked.has(m[1]!), `${m[1]} is a new address`);
        acked.set(m[1]!, "02:00:00:00:0d:30");
        const routes = await sh(h, `ip -4 route show dev ${TAP}`);
        assert.match(routes.stdout, /203\.0\.113\.0\/24 via 192\.0\.2\.254/);
        assert.match(routes.stdout, /default via 192\.0\.2\.1/);
        // dhcpcd -1 has exited (so `dhcpcd -k` would find no daemon to release with); its lease
        // file goes, so the test leaves no state behind (the namespace takes the address).
        await sh(h, `rm -f /var/lib/dhcpcd/${TAP}.lease /var/lib/dhcpcd/${TAP}-*.lease`);
      });

      await t.step("tapir show leases and the lease file hold every ACKed lease", async () => {
        const shown = await leases(tapir);
        for (const [a, mac] of acked) {
          const l = shown.find((x) => x.address === a);
          assert.ok(l, `${a} in show leases: ${JSON.stringify(shown)}`);
          assert.equal(l.mac, mac);
        }
        const file = Deno.readTextFileSync(leaseFile).split("\n").filter(Boolean).map((l) =>
          JSON.parse(l)
        );
        for (const a of acked.keys()) {
          assert.ok(file.some((r: { address: string }) => r.address === a), `${a} in the file`);
        }
        const addrs = [...acked.keys()];
        assert.equal(new Set(addrs).size, addrs.length, "no address given twice");
      });
      const stop = await tapir.stop("SIGTERM");
      assert.equal(stop.code, 0, stop.stderr);
    });
  },
});

Deno.test({
  name: "DHCP e2e: kill -9 during a run of clients loses no ACKed lease and gives none twice",
  ignore: ignoreUnlessReady("DHCP crash e2e", ["/usr/bin/python3"]),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    if (!(await requireTool("/usr/bin/python3"))) return;
    await withTopology("tpk", async (topo) => {
      const r = await topo.netns("r");
      const h = await topo.netns("h");
      const dir = topo.tempDir();
      const leaseFile = `${dir}/lan0.dhcp4.leases`;
      // Back-to-back DORA without the 500 ms conflict probe before each new address (the
      // scripted clients wait 0.5 s for an OFFER): this test is about the journal.
      const cfg = config(leaseFile, "192.0.2.10-192.0.2.250", `conflict_probe = "0s"\n`);
      const clients = (first: number, count: number) =>
        h.spawn([
          "/usr/bin/python3",
          `${REPO}/tests/e2e/fixtures/dhcp_clients.py`,
          TAP,
          String(first),
          String(count),
        ]);
      const parse = (out: string) =>
        out.split("\n").filter((l) => l.startsWith("ACK ")).map((l) => l.split(" ").slice(1));

      let tapir = await startTapir({ config: cfg, ns: r, topo });
      await moveTapToNs(TAP, r, h);
      const flood = clients(1, 1000);
      // A random moment: once the journal holds between 10 and 150 leases (well before the
      // 240 addresses run out), polled every few ms, so the kill lands mid-exchange.
      const killAt = 10 + Math.floor(Math.random() * 140);
      const lines = () => {
        try {
          return Deno.readTextFileSync(leaseFile).split("\n").length - 1;
        } catch {
          return 0;
        }
      };
      const t0 = performance.now();
      while (lines() < killAt && performance.now() - t0 < 20_000) {
        await new Promise((res) => setTimeout(res, 2));
      }
      const killed = await tapir.stop("SIGKILL");
      assert.equal(killed.signal, "SIGKILL");
      const out = await flood.wait(60_000);
      const acked = parse(out.stdout);
      console.log(`kill -9 at ${killAt} journal lines: ${acked.length} leases ACKed before it`);
      assert.ok(acked.length > 0, `some ACKs before the kill: ${out.stdout}${out.stderr}`);
      assert.ok(acked.length < 220, `the kill came before the pool ran out (${acked.length})`);

      tapir = await startTapir({ config: cfg, ns: r, topo });
      await moveTapToNs(TAP, r, h);
      await t.step("every ACKed lease is in the lease file, with its client's MAC", () => {
        const recs = new Map<string, { mac: string; state: string }>();
        for (const line of Deno.readTextFileSync(leaseFile).split("\n")) {
          if (line === "") continue;
          const rec = JSON.parse(line);
          recs.set(rec.address, rec);
        }
        for (const [a, mac] of acked) {
          assert.equal(recs.get(a!)?.mac, mac, `${a} ACKed to ${mac}`);
          assert.equal(recs.get(a!)?.state, "bound");
        }
        const addrs = acked.map(([a]) => a);
        assert.equal(new Set(addrs).size, addrs.length, "no address ACKed to two clients");
      });
      await t.step("after the restart new clients get none of the ACKed addresses", async () => {
        const more = await clients(5000, 20).wait(60_000);
        const fresh = parse(more.stdout);
        assert.equal(fresh.length, 20, more.stdout + more.stderr);
        const taken = new Set(acked.map(([a]) => a));
        for (const [a, mac] of fresh) assert.ok(!taken.has(a), `${a} (to ${mac}) was ACKed before`);
        assert.equal(new Set(fresh.map(([a]) => a)).size, 20);
      });
      const stop = await tapir.stop("SIGTERM");
      assert.equal(stop.code, 0, stop.stderr);
    });
  },
});
