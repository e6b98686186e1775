/**
 * DNS forwarder e2e with the DHCP clients and RA consumers Linux users
 * run: `tapir run` serves `[interface.dhcp]`, `[interface.dhcp6]`,
 * `[interface.ra]` (M and O set, DNSSL "lan") and `[dns]` on lan0, with no
 * DNS server named anywhere, so each of them points at tapir by itself:
 *
 *   lan (rdisc6, udhcpc, dhclient, dhclient -6, dhcpcd -6, dig)
 *     ── lan0 192.0.2.1 2001:db8:1::1  tapir  [dns] local "lan"
 *
 * - `rdisc6` shows an RDNSS option naming tapir's LAN address and the
 *   DNSSL "lan" (RFC 8106).
 * - busybox udhcpc sends `-x hostname:alpha`: its script is handed tapir's
 *   address as `dns` and "lan" as `domain`; `dig` at tapir resolves
 *   alpha.lan to the leased address and that address's PTR to alpha.lan.
 * - ISC dhclient sends `host-name "bravo"`: its lease file says
 *   `domain-name-servers 192.0.2.1`; bravo.lan resolves forward and back.
 * - ISC `dhclient -6` sends `fqdn.fqdn "charlie.lan."` (option 39, RFC
 *   4704): its script sees tapir's address in the DNS servers option and
 *   tapir's FQDN answer; `dig` over IPv6 at the RDNSS address resolves
 *   charlie.lan AAAA to the leased address and its ip6.arpa PTR back.
 * - dhcpcd -6 with `hostname delta` and `fqdn both` (option 39 again, a
 *   partial name): the same, from its own script's environment.
 * - tshark on tapir's capture: both clients' option 39 and tapir's
 *   answers (S set, the name in the server's search domain).
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
  type RunResult,
  type Spawned,
  startTapir,
  type Tapir,
  waitFor,
  withTopology,
} from "./harness.ts";
import { hasTool } from "../tools.ts";

const TOOLS = ["rdisc6", "udhcpc", "dhclient", "dhcpcd", "dig", "tshark"];
const id = String(Deno.pid % 100000);
const TAP = `tdc${id}`;
const LAN4 = "192.0.2.1";
const LAN6 = "2001:db8:1::1";

const config = (dir: string) => `
[router]
hostname = "e2e-dns-clients"

[[interface]]
name = "lan0"
tap = "${TAP}"
addresses = ["${LAN4}/24", "${LAN6}/64"]

[interface.dhcp]
pools = ["192.0.2.100-192.0.2.150"]
lease_time = "10m"
domain = "lan"
lease_file = "${dir}/lan0.dhcp4.leases"

[interface.dhcp6]
pools = ["2001:db8:1::100-2001:db8:1::1ff"]
preferred_lifetime = "10m"
valid_lifetime = "20m"
search = ["lan"]
preference = 255
lease_file = "${dir}/lan0.dhcp6.leases"

[interface.ra]
enabled = true
interval = "4s..10s"
managed = true
other_config = true
prefixes = [{ prefix = "2001:db8:1::/64", autonomous = false }]
dnssl = ["lan"]

[dns]
interfaces = ["lan0"]
local = ["lan"]
servers = []
`;

async function sh(ns: Netns, cmd: string, timeoutMs = 40_000): Promise<RunResult> {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** `key=value` lines a client's script wrote (later lines win). */
function envOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split("\n")) {
    const i = l.indexOf("=");
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** `dig @SERVER +short ARGS` from the LAN host: the answer's data lines. */
async function short(lan: Netns, server: string, args: string[]): Promise<string[]> {
  const r = await lan.exec(
    ["dig", `@${server}`, "+time=2", "+tries=2", "+short", ...args],
    { check: false, timeoutMs: 15_000 },
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return r.stdout.trim().split("\n").filter((l) => l !== "");
}

/** The link-local address of `dev` once DAD is over (a DHCPv6 client sends from it). */
async function linkLocal(h: Netns, dev: string): Promise<string> {
  let ll = "";
  await waitFor(`a link-local address on ${dev} past DAD`, async () => {
    const r = await h.exec(["ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link"], {
      check: false,
    });
    const line = r.stdout.split("\n").find((l) => / inet6 fe80:/.test(l));
    if (line === undefined || /tentative/.test(line)) return false;
    ll = line.match(/inet6 (fe80:[0-9a-f:]+)\//)![1]!;
    return true;
  }, 10_000);
  return ll;
}

/**
 * A fresh interface in the LAN host for the next client: a new MAC (a new
 * chaddr, DUID-LL and EUI-64 link-local), no addresses.
 */
async function reset(h: Netns, mac: string): Promise<void> {
  await h.ip("addr", "flush", "dev", TAP);
  await h.ip("link", "set", "dev", TAP, "down");
  await h.ip("link", "set", "dev", TAP, "addrgenmode", "eui64");
  await h.ip("link", "set", "dev", TAP, "address", mac);
  await h.ip("link", "set", "dev", TAP, "up");
  await linkLocal(h, TAP);
}

/** `tapir show leases --json`. */
async function leases(tapir: Tapir): Promise<{ address: string; hostname: string | null }[]> {
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

/** Print tapir's DHCP and DNS traffic when a step fails (the capture dir goes with the topology). */
async function explain(tapir: Tapir): Promise<void> {
  if (!hasTool("tshark") || tapir.captureDir === undefined) return;
  const r = await run(
    ["tshark", "-r", `${tapir.captureDir}/lan0.pcap`, "-Y", "dhcp || dhcpv6 || dns", "-V"],
    { check: false, timeoutMs: 20_000 },
  ).catch((e) => ({ stdout: String(e), stderr: "" }));
  console.error(`tapir's DHCP and DNS packets (${tapir.captureDir}):\n${r.stdout.slice(-30_000)}`);
}

/** Test steps that stop at the first failure and print tapir's packets when one fails. */
function stepper(t: Deno.TestContext, tapir: Tapir) {
  let failed = false;
  return async (name: string, fn: () => Promise<void>): Promise<void> => {
    if (failed) return;
    const ok = await t.step(name, async () => {
      try {
        await fn();
      } catch (e) {
        await explain(tapir);
        throw e;
      }
    });
    if (!ok) failed = true;
  };
}

/** Kill the background clients a step left (by the PIDs in their PID files). */
function killByPidFiles(files: string[]): void {
  for (const f of files) {
    const pid = Number(readText(f).trim());
    if (pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
}

Deno.test({
  name:
    "DNS clients e2e: RDNSS/DNSSL and DHCP point hosts at tapir; DHCP clients' names resolve both ways",
  ignore: ignoreUnlessReady("DNS clients e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpdc", async (topo) => {
      const r = await topo.netns("r");
      const lan = await topo.netns("lan");
      const dir = topo.tempDir();
      // A plain host: it takes RAs (the on-link prefix and the default route).
      await sh(lan, "sysctl -qw net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.forwarding=0");
      const tapir = await startTapir({ config: config(dir), ns: r, topo, capture: true });
      await moveTapToNs(TAP, r, lan);
      const step = stepper(t, tapir);
      const pidFiles: string[] = [];
      const dhcpcdLease = `/var/lib/dhcpcd/${TAP}.lease6`;
      let dhcpcd: Spawned | null = null;
      try {
        await step(
          "rdisc6: the RAs carry RDNSS with tapir's LAN address and DNSSL lan",
          async () => {
            await linkLocal(lan, TAP);
            const o = await sh(lan, `rdisc6 -1 -w 4000 -r 3 ${TAP}`, 30_000);
            assert.equal(o.code, 0, o.stdout + o.stderr);
            assert.match(o.stdout, new RegExp(`Recursive DNS server\\s+:\\s+${LAN6}\\n`), o.stdout);
            // The default lifetime is three times the maximum RA interval (10 s).
            assert.match(o.stdout, /DNS server lifetime\s+:\s+30 /, o.stdout);
            assert.match(o.stdout, /DNS search list\s+:\s+lan\.?\s*\n/, o.stdout);
            assert.match(o.stdout, /Stateful address conf\.\s+:\s+Yes/, o.stdout);
          },
        );

        await step(
          "udhcpc -x hostname:alpha: dns is tapir; alpha.lan resolves both ways",
          async () => {
            await reset(lan, "02:00:00:00:0c:01");
            const script = `${dir}/udhcpc.sh`;
            // It only records what udhcpc hands it and adds the address (no resolv.conf).
            Deno.writeTextFileSync(
              script,
              `#!/bin/sh\n[ "$1" = bound ] || exit 0\n` +
                `printf 'ip=%s\\ndns=%s\\ndomain=%s\\nrouter=%s\\n' "$ip" "$dns" "$domain" "$router" ` +
                `> ${dir}/udhcpc.env\nip addr add "$ip/$subnet" dev "$interface"\n`,
            );
            Deno.chmodSync(script, 0o755);
            const res = await sh(
              lan,
              `udhcpc -i ${TAP} -f -q -n -t 5 -T 1 -x hostname:alpha -s ${script}`,
            );
            assert.equal(res.code, 0, res.stdout + res.stderr);
            const env = envOf(readText(`${dir}/udhcpc.env`));
            assert.match(env.ip!, /^192\.0\.2\.(1[0-4]\d|150)$/);
            // No dns_servers in the config: [dns] on lan0 makes tapir's own address the DNS server.
            assert.equal(env.dns, LAN4);
            assert.equal(env.domain, "lan");
            assert.deepEqual(await short(lan, LAN4, ["alpha.lan", "A"]), [env.ip]);
            assert.deepEqual(await short(lan, LAN4, ["ALPHA", "A"]), [env.ip]);
            assert.deepEqual(await short(lan, LAN4, ["-x", env.ip!]), ["alpha.lan."]);
            assert.deepEqual(await short(lan, LAN4, ["alpha.lan", "AAAA"]), []);
          },
        );

        await step(
          "dhclient send host-name bravo: the lease names tapir; bravo.lan both ways",
          async () => {
            await reset(lan, "02:00:00:00:0c:02");
            const script = `${dir}/dhclient.sh`;
            Deno.writeTextFileSync(
              script,
              `#!/bin/sh\ncase "$reason" in BOUND|RENEW|REBOOT) ;; *) exit 0;; esac\n` +
                `ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"\n`,
            );
            Deno.chmodSync(script, 0o755);
            Deno.writeTextFileSync(
              `${dir}/dhclient.conf`,
              `send host-name "bravo";\nrequest subnet-mask, routers, domain-name-servers, domain-name;\n`,
            );
            const pidFile = `${dir}/dhclient.pid`;
            pidFiles.push(pidFile);
            const leaseFile = `${dir}/dhclient.leases`;
            const res = await sh(
              lan,
              `timeout 20 dhclient -1 -v -cf ${dir}/dhclient.conf -sf ${script} -lf ${leaseFile} ` +
                `-pf ${pidFile} ${TAP}`,
            );
            killByPidFiles([pidFile]);
            assert.equal(res.code, 0, res.stdout + res.stderr);
            const lease = readText(leaseFile);
            const ip = lease.match(/fixed-address (192\.0\.2\.\d+);/)?.[1];
            assert.ok(ip !== undefined, lease);
            assert.match(
              lease,
              new RegExp(`option domain-name-servers ${LAN4.replaceAll(".", "\\.")};`),
            );
            assert.match(lease, /option domain-name "lan";/);
            assert.deepEqual(await short(lan, LAN4, ["bravo.lan", "A"]), [ip]);
            assert.deepEqual(await short(lan, LAN4, ["-x", ip]), ["bravo.lan."]);
          },
        );

        await step(
          "dhclient -6 send fqdn.fqdn charlie.lan.: DNS servers option names tapir; AAAA and ip6.arpa PTR over IPv6",
          async () => {
            await reset(lan, "02:00:00:00:0c:03");
            const script = `${dir}/dhclient6.sh`;
            const envFile = `${dir}/dhclient6.env`;
            Deno.writeTextFileSync(
              script,
              `#!/bin/sh\ncase "$reason" in\n` +
                `BOUND6|RENEW6|REBIND6|REBOOT6)\n` +
                `  env | grep -E '^new_' >> ${envFile}\n` +
                `  if [ -n "$new_ip6_address" ]; then\n` +
                `    ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad\n` +
                `  fi ;;\nesac\nexit 0\n`,
            );
            Deno.chmodSync(script, 0o755);
            Deno.writeTextFileSync(
              `${dir}/dhclient6.conf`,
              `send fqdn.fqdn "charlie.lan.";\nsend fqdn.server-update on;\n` +
                `request dhcp6.name-servers, dhcp6.domain-search, dhcp6.fqdn;\n`,
            );
            const pidFile = `${dir}/dhclient6.pid`;
            pidFiles.push(pidFile);
            const res = await sh(
              lan,
              `timeout 30 dhclient -6 -1 -v -D LL -N -cf ${dir}/dhclient6.conf -sf ${script} ` +
                `-lf ${dir}/dhclient6.leases -pf ${pidFile} ${TAP}`,
            );
            // It forked into the background once bound; stopped (no RELEASE: the lease stays).
            killByPidFiles([pidFile]);
            assert.equal(res.code, 0, res.stdout + res.stderr);
            const env = envOf(readText(envFile));
            const a6 = env.new_ip6_address;
            assert.match(a6 ?? "", /^2001:db8:1::1[0-9a-f]{2}$/, readText(envFile));
            assert.equal(env.new_dhcp6_name_servers, LAN6);
            assert.equal(env.new_dhcp6_domain_search, "lan.");
            // The on-link prefix from the RA (the address itself is a /128).
            await waitFor("the RA's on-link route", async () => {
              const rt = await sh(lan, `ip -6 route show 2001:db8:1::/64`);
              return rt.stdout.includes(`dev ${TAP}`);
            }, 20_000);
            assert.deepEqual(await short(lan, LAN6, ["charlie.lan", "AAAA"]), [a6]);
            assert.deepEqual(await short(lan, LAN6, ["-x", a6!]), ["charlie.lan."]);
            const shown = await leases(tapir);
            assert.equal(
              shown.find((l) => l.address === a6)?.hostname,
              "charlie",
              JSON.stringify(shown),
            );
          },
        );

        await step(
          "dhcpcd -6 hostname delta, fqdn both: DNS servers option names tapir; delta.lan AAAA and PTR",
          async () => {
            const mac = "02:00:00:00:0c:04";
            await reset(lan, mac);
            try {
              Deno.removeSync(dhcpcdLease);
            } catch { /* none */ }
            const conf = `${dir}/dhcpcd.conf`;
            // A fixed DUID-LL (no /var/lib/dhcpcd/duid written); ia_na solicits at once.
            Deno.writeTextFileSync(
              conf,
              `ipv6only\nnoipv6rs\nduid 00:03:00:01:${mac}\nhostname delta\nfqdn both\n` +
                `option dhcp6_name_servers, dhcp6_domain_search\ninterface ${TAP}\n  ia_na 1\n`,
            );
            const script = `${dir}/dhcpcd.sh`;
            Deno.writeTextFileSync(
              script,
              `#!/bin/sh\nenv | grep -E '^new_dhcp6_' > ${dir}/dhcpcd.$reason.tmp\n` +
                `mv ${dir}/dhcpcd.$reason.tmp ${dir}/dhcpcd.$reason.env\nexit 0\n`,
            );
            Deno.chmodSync(script, 0o755);
            dhcpcd = lan.spawn(["dhcpcd", "-6", "-B", "-f", conf, "-c", script, "-t", "30", TAP]);
            let exited: RunResult | null = null;
            dhcpcd.wait(90_000).then((x) => exited = x);
            await waitFor("dhcpcd BOUND6", () => {
              if (readText(`${dir}/dhcpcd.BOUND6.env`) !== "") return true;
              if (exited !== null) throw new Error(`dhcpcd exited: ${exited.stderr}`);
              return false;
            }, 40_000);
            const envText = readText(`${dir}/dhcpcd.BOUND6.env`);
            const env = envOf(envText);
            const a6 = env.new_dhcp6_ia_na1_ia_addr1;
            assert.match(a6 ?? "", /^2001:db8:1::1[0-9a-f]{2}$/, envText);
            assert.equal(env.new_dhcp6_name_servers, LAN6, envText);
            assert.equal(env.new_dhcp6_domain_search, "lan", envText);
            await waitFor("dhcpcd's address on the interface", async () => {
              const a = await sh(lan, `ip -6 -o addr show dev ${TAP} scope global`);
              return a.stdout.includes(`inet6 ${a6}/`);
            }, 10_000);
            // dhcpcd (noipv6rs) takes the kernel's RA handling off the interface: the on-link
            // route by hand.
            await lan.exec(["ip", "-6", "route", "replace", "2001:db8:1::/64", "dev", TAP]);
            assert.deepEqual(await short(lan, LAN6, ["delta.lan", "AAAA"]), [a6]);
            assert.deepEqual(await short(lan, LAN6, ["-x", a6!]), ["delta.lan."]);
          },
        );

        await step(
          "the names of every client are still answered, and nothing else in lan",
          async () => {
            // The last client (dhcpcd) holds an IPv6 address only: ask over IPv6.
            const names = await Promise.all(
              ["alpha", "bravo"].map((n) => short(lan, LAN6, [`${n}.lan`, "A"])),
            );
            for (const n of names) assert.equal(n.length, 1, JSON.stringify(names));
            const nx = await lan.exec(
              ["dig", `@${LAN6}`, "+time=2", "+tries=2", "nobody.lan", "A"],
              { check: false, timeoutMs: 15_000 },
            );
            assert.match(nx.stdout, /status: NXDOMAIN/, nx.stdout);
            assert.match(nx.stdout, /flags: qr aa/, nx.stdout);
          },
        );

        const stop = await tapir.stop("SIGTERM");
        assert.equal(stop.code, 0, stop.stderr);

        await step(
          "tshark: option 39 both ways, tapir's answer naming the host in lan",
          async () => {
            const tr = await run([
              "tshark",
              "-r",
              `${tapir.captureDir}/lan0.pcap`,
              "-Y",
              "dhcpv6.client_domain",
              "-T",
              "fields",
              "-e",
              "dhcpv6.msgtype",
              "-e",
              "dhcpv6.client_fqdn_flags",
              "-e",
              "dhcpv6.client_domain",
            ], { check: false, timeoutMs: 20_000 });
            assert.equal(tr.code, 0, tr.stderr);
            // msg-type, flags, name; retransmissions left out. dhclient -6 sends its name fully
            // qualified, dhcpcd a partial one (RFC 4704 §4.2), both with S (server, update it);
            // tapir's ADVERTISE (2) and REPLY (7) answer S and the name in its search domain.
            const rows = [...new Set(tr.stdout.trim().split("\n"))];
            assert.deepEqual(rows, [
              "1\t0x01\tcharlie.lan.",
              "2\t0x01\tcharlie.lan.",
              "3\t0x01\tcharlie.lan.",
              "7\t0x01\tcharlie.lan.",
              "1\t0x01\tdelta",
              "2\t0x01\tdelta.lan.",
              "3\t0x01\tdelta",
              "7\t0x01\tdelta.lan.",
            ], tr.stdout);
          },
        );
      } finally {
        killByPidFiles(pidFiles);
        if (dhcpcd !== null) {
          await sh(lan, `timeout 10 dhcpcd -6 -x ${TAP}`);
          await (dhcpcd as Spawned).wait(10_000).catch(() => {});
        }
        try {
          Deno.removeSync(dhcpcdLease);
        } catch { /* none */ }
      }
    });
  },
});
