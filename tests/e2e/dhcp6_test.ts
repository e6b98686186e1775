/**
 * DHCPv6 e2e: `tapir run` serves [interface.dhcp6] on a TAP to the DHCPv6
 * clients Linux users run, each in the host namespace on the TAP's far side:
 *
 *   w 2001:db8:2::2 ── wan0 tapir lan0 2001:db8:1::1 ── h (dhclient -6, dhcpcd)
 *
 * - ISC `dhclient -6 -N -P` gets an address from the pool and a /56 from
 *   the PD pool, with the DNS server and search list (read from what it
 *   hands its script), taking tapir's ADVERTISE at once (preference 255);
 *   the address answers pings from tapir's side; `tapir show leases` lists
 *   both IAs bound to its DUID and IAID; tapir routes the delegated prefix
 *   via the client's link-local (source dhcp), so w reaches an address in
 *   it through tapir. `dhclient -6 -r` makes both leases "released" and
 *   removes the route.
 * - dhcpcd (DHCPv6 only, ia_na and ia_pd, no RA) gets an address it
 *   configures itself and a delegated prefix (its reject route); tapir
 *   lists and routes them; `dhcpcd -k` releases them.
 * - kill -9: leases that two clients were granted survive a SIGKILL of
 *   tapir in the lease file; after a restart they are listed bound and
 *   routed again, the same client (same DUID, asking afresh with no hint)
 *   gets the same address and prefix, and a new client gets neither.
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
  startTapir,
  type Tapir,
  waitFor,
  withTopology,
} from "./harness.ts";
import { hasTool } from "../tools.ts";

const TOOLS = ["dhclient", "dhcpcd", "ping"];
const id = String(Deno.pid % 100000);
const TAP = `td6${id}`;
const WAN_TAP = `tw6${id}`;
const CRASH_TAP = `tk6${id}`;

const POOL_FIRST = "2001:db8:1::100";
const POOL_LAST = "2001:db8:1::1ff";
const PD_POOL = "2001:db8:100::";
const DNS = "2001:db8:1::53";

const config = (tap: string, leaseFile: string, wan: boolean) => `
[router]
hostname = "e2e-dhcp6"
forwarding = ${wan}

[[interface]]
name = "lan0"
tap = "${tap}"
addresses = ["2001:db8:1::1/64"]

[interface.dhcp6]
pools = ["${POOL_FIRST}-${POOL_LAST}"]
pd_pools = [{ prefix = "${PD_POOL}/48", delegated_len = 56 }]
preferred_lifetime = "10m"
valid_lifetime = "20m"
dns_servers = ["${DNS}"]
search = ["lan.example"]
preference = 255
lease_file = "${leaseFile}"
${
  wan
    ? `
[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
addresses = ["2001:db8:2::1/64"]
`
    : ""
}`;

/** A DHCPv6 lease as `tapir show leases --json` lists it. */
interface Lease6 {
  role: string;
  interface: string;
  address: string;
  ia?: string;
  iaid?: number;
  clientId: string;
  mac: string;
  state: string;
  expires: number;
}

interface Route {
  to: string;
  via: string | null;
  dev: string | null;
  proto: string;
}

async function sh(ns: Netns, cmd: string, timeoutMs = 40_000): Promise<RunResult> {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

async function show<T>(tapir: Tapir, what: string): Promise<T> {
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
  return JSON.parse(r.stdout) as T;
}

/** The DHCPv6 rows of `show leases` (server rows with an IA). */
async function leases6(tapir: Tapir): Promise<Lease6[]> {
  return (await show<Lease6[]>(tapir, "leases")).filter((l) =>
    l.role === "server" && l.ia !== undefined
  );
}

async function dhcpRoutes(tapir: Tapir): Promise<Route[]> {
  return (await show<Route[]>(tapir, "routes")).filter((r) => r.proto === "dhcp");
}

/** An IPv6 address (no prefix length) as a number. */
function v6(s: string): bigint {
  const halves = s.split("::");
  assert.ok(halves.length <= 2, `bad IPv6 address ${s}`);
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const tail = halves.length === 1 || halves[1] === "" ? [] : halves[1]!.split(":");
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array(fill).fill("0"), ...tail];
  assert.equal(groups.length, 8, `bad IPv6 address ${s}`);
  return groups.reduce((a: bigint, g: string) => {
    assert.match(g, /^[0-9a-f]{1,4}$/i, `bad IPv6 address ${s}`);
    return (a << 16n) | BigInt(parseInt(g, 16));
  }, 0n);
}

function assertInPool(a: string | undefined, what = ""): string {
  assert.ok(a !== undefined && a !== "", `an address ${what}`);
  const x = v6(a);
  assert.ok(x >= v6(POOL_FIRST) && x <= v6(POOL_LAST), `${a} in ${POOL_FIRST}-${POOL_LAST}`);
  return a;
}

/** `prefix/56` inside the PD pool, on a /56 boundary. */
function assertInPdPool(p: string | undefined): string {
  assert.ok(p !== undefined && p !== "", "a prefix");
  const m = p.match(/^([0-9a-f:]+)\/(\d+)$/);
  assert.ok(m, `${p} is prefix/len`);
  assert.equal(m[2], "56", `${p} is a /56`);
  const x = v6(m[1]!);
  assert.equal(x >> 80n, v6(PD_POOL) >> 80n, `${p} inside ${PD_POOL}/48`);
  assert.equal(x & ((1n << 72n) - 1n), 0n, `${p} on a /56 boundary`);
  return p;
}

/** A DUID as tapir prints it (colon hex, two digits a byte) from dhclient's `0:3:0:1:…` or dhcpcd's `000300…`. */
function colonHex(s: string): string {
  const bytes = s.includes(":") ? s.split(":") : s.match(/../g) ?? [];
  return bytes.map((b) => b.padStart(2, "0").toLowerCase()).join(":");
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

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
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
 * A fresh interface in h: a new MAC (so a new DUID-LL, IAID and EUI-64
 * link-local), no addresses, the kernel generating its link-local again
 * (dhcpcd turns that off while it runs). Returns the link-local.
 */
async function reset(h: Netns, dev: string, mac: string): Promise<string> {
  await h.ip("addr", "flush", "dev", dev);
  await h.ip("link", "set", "dev", dev, "down");
  await h.ip("link", "set", "dev", dev, "addrgenmode", "eui64");
  await h.ip("link", "set", "dev", dev, "address", mac);
  await h.ip("link", "set", "dev", dev, "up");
  return await linkLocal(h, dev);
}

/** Runs of ISC dhclient -6 in h, each with its own lease, PID and env files under `dir`. */
class Dhclient {
  readonly #pidFiles: string[] = [];
  constructor(readonly h: Netns, readonly dir: string, readonly dev: string) {
    // Only what the test asks for (not /etc/dhcp/dhclient.conf).
    Deno.writeTextFileSync(
      `${dir}/dhclient6.conf`,
      `request dhcp6.name-servers, dhcp6.domain-search;\n`,
    );
  }

  #args(name: string): string {
    return `-cf ${this.dir}/dhclient6.conf -sf ${this.dir}/${name}.sh ` +
      `-lf ${this.dir}/${name}.leases -pf ${this.dir}/${name}.pid`;
  }

  /**
   * `dhclient -6 -1 -D LL -N -P` (an address and a prefix); it forks into
   * the background once bound. With the lease file of an earlier run
   * under `name` it starts from that lease (INIT-REBOOT: a REBIND, since
   * it holds a prefix). The env its script saw for BOUND6 or REBIND6 (once
   * per IA, merged). The script records and configures the address, as
   * /sbin/dhclient-script would, without touching /etc/resolv.conf.
   */
  async bind(name: string): Promise<{ res: RunResult; env: Record<string, string> }> {
    const script = `${this.dir}/${name}.sh`;
    const envFile = `${this.dir}/${name}.env`;
    Deno.writeTextFileSync(
      script,
      `#!/bin/sh\n` +
        `echo "reason=$reason" >> ${envFile}\n` +
        `case "$reason" in\n` +
        `BOUND6|RENEW6|REBIND6|REBOOT6)\n` +
        `  env | grep -E '^(new_|interface=)' >> ${envFile}\n` +
        `  if [ -n "$new_ip6_address" ]; then\n` +
        `    ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad ` +
        `valid_lft "$new_max_life" preferred_lft "$new_preferred_life"\n` +
        `  fi ;;\n` +
        `RELEASE6|EXPIRE6|STOP6)\n` +
        `  env | grep -E '^old_' >> ${envFile}\n` +
        `  if [ -n "$old_ip6_address" ]; then\n` +
        `    ip -6 addr del "$old_ip6_address/$old_ip6_prefixlen" dev "$interface"\n` +
        `  fi ;;\n` +
        `esac\n` +
        `exit 0\n`,
    );
    Deno.chmodSync(script, 0o755);
    Deno.writeTextFileSync(envFile, "");
    this.#pidFiles.push(`${this.dir}/${name}.pid`);
    const res = await sh(
      this.h,
      `timeout 30 dhclient -6 -1 -v -D LL -N -P ${this.#args(name)} ${this.dev}`,
    );
    const env = envOf(
      readText(envFile).split("reason=").filter((b) => /^(BOUND6|REBIND6)\n/.test(b)).join("\n"),
    );
    return { res, env };
  }

  /** `dhclient -6 -r` (release, then stop the running one) or `-x` (stop it, no release). */
  async stop(name: string, release: boolean): Promise<RunResult> {
    return await sh(
      this.h,
      `timeout 15 dhclient -6 ${release ? "-r" : "-x"} -v -N -P ${this.#args(name)} ${this.dev}`,
    );
  }

  /** Kill every dhclient these runs left (by its PID file). */
  cleanup(): void {
    for (const f of this.#pidFiles) {
      const pid = Number(readText(f).trim());
      if (pid > 0) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
  }
}

/** Print tapir's DHCPv6 traffic when a step fails (the capture dirs go with the topology). */
async function explain(tapirs: Tapir[]): Promise<void> {
  if (!hasTool("tshark")) return;
  for (const t of tapirs) {
    if (t.captureDir === undefined) continue;
    const r = await run(["tshark", "-r", `${t.captureDir}/lan0.pcap`, "-Y", "dhcpv6"], {
      check: false,
      timeoutMs: 20_000,
    }).catch((e) => ({ stdout: String(e), stderr: "" }));
    console.error(`tapir's DHCPv6 packets (${t.captureDir}):\n${r.stdout}`);
  }
}

/**
 * Test steps that stop at the first failure (the later ones build on it)
 * and print tapir's DHCPv6 packets when one fails.
 */
function stepper(t: Deno.TestContext, tapirs: Tapir[]) {
  let failed = false;
  return async (name: string, fn: () => Promise<void> | void): Promise<void> => {
    if (failed) return;
    const ok = await t.step(name, async () => {
      try {
        await fn();
      } catch (e) {
        await explain(tapirs);
        throw e;
      }
    });
    if (!ok) failed = true;
  };
}

function one<T>(rows: T[], what: string, pred: (x: T) => boolean): T {
  const found = rows.filter(pred);
  assert.equal(found.length, 1, `one ${what} in ${JSON.stringify(rows, null, 1)}`);
  return found[0]!;
}

Deno.test({
  name: "DHCPv6 e2e: dhclient -6 and dhcpcd get addresses and delegated prefixes, and release them",
  ignore: ignoreUnlessReady("DHCPv6 e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tp6", async (topo) => {
      const r = await topo.netns("r");
      const h = await topo.netns("h");
      const w = await topo.netns("w");
      const dir = topo.tempDir();
      const leaseFile = `${dir}/lan0.dhcp6.leases`;
      // No RA (tapir sends none here): h's routes are set by hand, and every global address
      // h has comes from DHCPv6.
      const tapir = await startTapir({
        config: config(TAP, leaseFile, true),
        ns: r,
        topo,
        capture: true,
      });
      await moveTapToNs(TAP, r, h);
      await moveTapToNs(WAN_TAP, r, w, { address: "2001:db8:2::2/64" });
      await w.ip("-6", "route", "add", "default", "via", "2001:db8:2::1");
      const dhclient = new Dhclient(h, dir, TAP);
      const step = stepper(t, [tapir]);
      const dhcpcdLease = `/var/lib/dhcpcd/${TAP}.lease6`;
      let dhcpcdRunning = false;
      try {
        let na = "", pd = "", ll = "";

        await step("dhclient -6 -N -P: an address, a /56, DNS and search list", async () => {
          ll = await reset(h, TAP, "02:00:00:00:0d:10");
          const t0 = performance.now();
          const { res, env } = await dhclient.bind("dc1");
          assert.equal(res.code, 0, res.stdout + res.stderr);
          // Preference 255 (RFC 8415 §18.2.1): the client takes this ADVERTISE without waiting.
          assert.match(res.stderr, /Initial candidate [0-9a-f:]+ \(s: \d+, p: 255\)/);
          console.log(`dhclient bound in ${Math.round(performance.now() - t0)} ms`);
          na = assertInPool(env.new_ip6_address);
          pd = assertInPdPool(env.new_ip6_prefix);
          assert.equal(env.new_dhcp6_name_servers, DNS);
          assert.equal(env.new_dhcp6_domain_search, "lan.example.");
          assert.equal(env.new_preferred_life, "600");
          assert.equal(env.new_max_life, "1200");
          // T1 and T2: 0.5 and 0.8 of the preferred lifetime.
          assert.equal(env.new_renew, "300");
          assert.equal(env.new_rebind, "480");
          assert.ok(colonHex(env.new_dhcp6_server_id!).startsWith("00:03:00:01:"), "a DUID-LL");
          const addr = await sh(h, `ip -6 -o addr show dev ${TAP} scope global`);
          assert.match(addr.stdout, new RegExp(`inet6 ${na}/128`));
          // tapir reaches the leased address (it resolves it by ND on lan0).
          await h.ip("-6", "route", "add", "2001:db8:1::/64", "dev", TAP);
          const ping = await sh(h, `ping -6 -c 1 -W 3 -I ${na} 2001:db8:1::1`);
          assert.equal(ping.code, 0, ping.stdout + ping.stderr);

          const duid = colonHex(env.new_dhcp6_client_id!);
          assert.equal(duid, "00:03:00:01:02:00:00:00:0d:10", "DUID-LL of the MAC (-D LL)");
          const iaid = parseInt(
            env.new_iaid!.split(":").map((b) => b.padStart(2, "0")).join(""),
            16,
          );
          const shown = await leases6(tapir);
          const a = one(shown, `lease of ${na}`, (l) => l.address === na);
          assert.equal(a.ia, "na");
          assert.equal(a.state, "bound");
          assert.equal(a.clientId, duid);
          assert.equal(a.iaid, iaid);
          assert.equal(a.mac, "02:00:00:00:0d:10");
          assert.equal(a.interface, "lan0");
          const left = (a.expires - Date.now()) / 1000;
          assert.ok(left > 1100 && left <= 1201, `expires in the valid lifetime (${left} s)`);
          const p = one(shown, `lease of ${pd}`, (l) => l.address === pd);
          assert.equal(p.ia, "pd");
          assert.equal(p.state, "bound");
          assert.equal(p.clientId, duid);
          assert.equal(p.iaid, iaid);
          // The delegated prefix is routed to the requesting router's link-local.
          const rt = one(await dhcpRoutes(tapir), `route for ${pd}`, (x) => x.to === pd);
          assert.equal(rt.via, ll);
          assert.equal(rt.dev, "lan0");
        });

        await step("traffic to the delegated prefix is forwarded to the client", async () => {
          assert.ok(pd.endsWith("::/56"), pd);
          const inside = pd.replace("::/56", "::1");
          await h.ip("-6", "addr", "add", `${inside}/128`, "dev", "lo");
          await h.ip("-6", "route", "add", "2001:db8:2::/64", "via", "2001:db8:1::1", "dev", TAP);
          const ping = await sh(w, `ping -6 -c 1 -W 3 ${inside}`);
          assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        });

        await step("dhclient -6 -r: both leases released, the prefix's route gone", async () => {
          const res = await dhclient.stop("dc1", true);
          assert.equal(res.code, 0, res.stdout + res.stderr);
          assert.match(res.stderr, /Release Address/);
          assert.match(res.stderr, /Release Prefix/);
          await waitFor("both leases released", async () => {
            const shown = await leases6(tapir);
            return [na, pd].every((x) => shown.find((l) => l.address === x)?.state === "released");
          }, 10_000);
          const routes = await dhcpRoutes(tapir);
          assert.ok(!routes.some((x) => x.to === pd), JSON.stringify(routes));
          const inside = pd.replace("::/56", "::1");
          const ping = await sh(w, `ping -6 -c 1 -W 2 ${inside}`);
          assert.notEqual(ping.code, 0, "no route to a released prefix");
        });

        await step("dhcpcd (DHCPv6 only, ia_na and ia_pd): configures what it gets", async () => {
          const mac = "02:00:00:00:0d:20";
          ll = await reset(h, TAP, mac);
          try {
            Deno.removeSync(dhcpcdLease);
          } catch { /* none */ }
          const conf = `${dir}/dhcpcd.conf`;
          // ia_na / ia_pd make dhcpcd solicit at once, with no RA (and no M flag) to start it;
          // a fixed DUID-LL, so that dhcpcd writes no /var/lib/dhcpcd/duid.
          Deno.writeTextFileSync(
            conf,
            `ipv6only\nnoipv6rs\nduid 00:03:00:01:${mac}\n` +
              `option dhcp6_name_servers, dhcp6_domain_search\n` +
              `interface ${TAP}\n  ia_na 1\n  ia_pd 2\n`,
          );
          // One file per reason, renamed into place whole: the test polls for BOUND6 while
          // dhcpcd may still be writing it.
          const envFile = (reason: string) => `${dir}/dhcpcd.${reason}.env`;
          const script = `${dir}/dhcpcd.sh`;
          Deno.writeTextFileSync(
            script,
            `#!/bin/sh\nenv | grep -E '^(new|old)_dhcp6_' > ${dir}/dhcpcd.$reason.tmp\n` +
              `mv ${dir}/dhcpcd.$reason.tmp ${dir}/dhcpcd.$reason.env\nexit 0\n`,
          );
          Deno.chmodSync(script, 0o755);
          // In the foreground (-B), killed after 90 s at the latest.
          const proc = h.spawn(["dhcpcd", "-6", "-B", "-f", conf, "-c", script, "-t", "30", TAP]);
          dhcpcdRunning = true;
          let exited: RunResult | null = null;
          const done = proc.wait(90_000).then((x) => exited = x);
          await waitFor("dhcpcd BOUND6", () => {
            if (readText(envFile("BOUND6")) !== "") return true;
            if (exited !== null) throw new Error(`dhcpcd exited: ${exited.stderr}`);
            return false;
          }, 40_000);
          const boundText = readText(envFile("BOUND6"));
          const bound = envOf(boundText);
          const addr = assertInPool(bound.new_dhcp6_ia_na1_ia_addr1, boundText);
          assert.equal(bound.new_dhcp6_ia_na1_iaid, "00000001");
          assert.equal(bound.new_dhcp6_ia_na1_ia_addr1_pltime, "600");
          assert.equal(bound.new_dhcp6_ia_na1_ia_addr1_vltime, "1200");
          assert.equal(bound.new_dhcp6_ia_pd1_iaid, "00000002");
          const prefix = assertInPdPool(
            `${bound.new_dhcp6_ia_pd1_prefix1}/${bound.new_dhcp6_ia_pd1_prefix1_length}`,
          );
          assert.equal(bound.new_dhcp6_name_servers, DNS);
          assert.equal(bound.new_dhcp6_domain_search, "lan.example");
          assert.notEqual(prefix, pd, "a new prefix (the released one is kept for its client)");
          const a = await sh(h, `ip -6 -o addr show dev ${TAP} scope global`);
          assert.match(a.stdout, new RegExp(`inet6 ${addr}/128`), "dhcpcd added the address");
          const rt = await sh(h, `ip -6 route show`);
          assert.match(rt.stdout, new RegExp(`unreachable ${prefix} dev lo proto dhcp`));

          const duid = `00:03:00:01:${mac}`;
          const shown = await leases6(tapir);
          const n = one(shown, `lease of ${addr}`, (l) => l.address === addr);
          assert.deepEqual([n.ia, n.state, n.clientId, n.iaid, n.mac], [
            "na",
            "bound",
            duid,
            1,
            mac,
          ]);
          const p = one(shown, `lease of ${prefix}`, (l) => l.address === prefix);
          assert.deepEqual([p.ia, p.state, p.clientId, p.iaid], ["pd", "bound", duid, 2]);
          const route = one(await dhcpRoutes(tapir), `route for ${prefix}`, (x) => x.to === prefix);
          assert.equal(route.via, ll);

          // dhcpcd -k: the running dhcpcd releases (RELEASE) and, with nothing left, exits.
          const k = await sh(h, `timeout 15 dhcpcd -6 -k ${TAP}`);
          assert.equal(k.code, 0, k.stdout + k.stderr);
          const out = await done;
          dhcpcdRunning = false;
          assert.equal(out.signal, null, `dhcpcd exited by itself: ${out.stderr}`);
          assert.match(readText(envFile("RELEASE6")), /old_dhcp6_ia_na1_ia_addr1=/, out.stderr);
          await waitFor("dhcpcd's leases released", async () => {
            const s = await leases6(tapir);
            return [addr, prefix].every((x) =>
              s.find((l) => l.address === x)?.state === "released"
            );
          }, 10_000);
          const routes = await dhcpRoutes(tapir);
          assert.ok(!routes.some((x) => x.to === prefix), JSON.stringify(routes));
          const after = await sh(h, `ip -6 -o addr show dev ${TAP} scope global`);
          assert.doesNotMatch(after.stdout, new RegExp(`inet6 ${addr}/`));
        });

        await step("the lease file holds every lease with its last state", () => {
          const last = new Map<string, { state: string; clientId: string }>();
          for (const line of readText(leaseFile).split("\n")) {
            if (line === "") continue;
            const rec = JSON.parse(line);
            last.set(rec.address, rec);
          }
          assert.equal(last.get(na)?.state, "released");
          assert.equal(last.get(pd)?.state, "released");
          assert.equal(last.get(na)?.clientId, "00:03:00:01:02:00:00:00:0d:10");
        });

        const stop = await tapir.stop("SIGTERM");
        assert.equal(stop.code, 0, stop.stderr);
      } catch (e) {
        await explain([tapir]);
        throw e;
      } finally {
        dhclient.cleanup();
        if (dhcpcdRunning) await sh(h, `timeout 10 dhcpcd -6 -x ${TAP}`);
        try {
          Deno.removeSync(dhcpcdLease);
        } catch { /* none */ }
      }
    });
  },
});

Deno.test({
  name: "DHCPv6 e2e: leases survive kill -9; the same DUID gets the same address and prefix",
  ignore: ignoreUnlessReady("DHCPv6 crash e2e", ["dhclient"]),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    if (!(await requireTool("dhclient"))) return;
    await withTopology("tq6", async (topo) => {
      const r = await topo.netns("r");
      const h = await topo.netns("h");
      const dir = topo.tempDir();
      const leaseFile = `${dir}/lan0.dhcp6.leases`;
      const cfg = config(CRASH_TAP, leaseFile, false);
      const tapirs: Tapir[] = [];
      let tapir = await startTapir({ config: cfg, ns: r, topo, capture: true });
      tapirs.push(tapir);
      await moveTapToNs(CRASH_TAP, r, h);
      const dhclient = new Dhclient(h, dir, CRASH_TAP);
      const step = stepper(t, tapirs);
      const MAC_A = "02:00:00:00:0e:01", MAC_B = "02:00:00:00:0e:02", MAC_C = "02:00:00:00:0e:03";
      const duidOf = (mac: string) => `00:03:00:01:${mac}`;
      try {
        /** A client with `mac` (DUID-LL) and a new lease file: a SOLICIT without hints. */
        const bind = async (name: string, mac: string) => {
          const ll = await reset(h, CRASH_TAP, mac);
          const { res, env } = await dhclient.bind(name);
          assert.equal(res.code, 0, res.stdout + res.stderr);
          assert.equal(colonHex(env.new_dhcp6_client_id!), duidOf(mac));
          const got = {
            na: assertInPool(env.new_ip6_address),
            pd: assertInPdPool(env.new_ip6_prefix),
            ll,
          };
          // Stop it without a RELEASE: its leases stay bound.
          const x = await dhclient.stop(name, false);
          assert.equal(x.code, 0, x.stdout + x.stderr);
          return got;
        };
        const a = await bind("a1", MAC_A);
        const b = await bind("b1", MAC_B);
        assert.notEqual(a.na, b.na);
        assert.notEqual(a.pd, b.pd);
        // B's address is not the first one a pool that forgot everything would hand out.
        assert.ok(v6(b.na) > v6(a.na) || v6(b.pd.split("/")[0]!) > v6(a.pd.split("/")[0]!));

        const killed = await tapir.stop("SIGKILL");
        assert.equal(killed.signal, "SIGKILL");
        tapir = await startTapir({ config: cfg, ns: r, topo, capture: true });
        tapirs.push(tapir);
        await moveTapToNs(CRASH_TAP, r, h);

        await step(
          "after the restart every lease is listed bound, and the prefixes routed",
          async () => {
            const shown = await leases6(tapir);
            for (const [c, mac] of [[a, MAC_A], [b, MAC_B]] as const) {
              for (const [x, ia] of [[c.na, "na"], [c.pd, "pd"]]) {
                const l = one(shown, `lease of ${x}`, (y) => y.address === x);
                assert.equal(l.state, "bound", `${x} bound`);
                assert.equal(l.ia, ia);
                assert.equal(l.clientId, duidOf(mac));
                assert.ok(l.expires > Date.now() + 1000_000, `${x} not expired`);
              }
            }
            const routes = await dhcpRoutes(tapir);
            assert.equal(one(routes, `route for ${a.pd}`, (x) => x.to === a.pd).via, a.ll);
            assert.equal(one(routes, `route for ${b.pd}`, (x) => x.to === b.pd).via, b.ll);
          },
        );

        await step("a client restarting with its lease (REBIND) keeps both", async () => {
          await reset(h, CRASH_TAP, MAC_A);
          const { res, env } = await dhclient.bind("a1");
          assert.equal(res.code, 0, res.stdout + res.stderr);
          assert.match(res.stderr, /Forming Rebind/);
          assert.equal(env.new_ip6_address, a.na);
          assert.equal(env.new_ip6_prefix, a.pd);
          assert.equal(env.new_max_life, "1200");
          const x = await dhclient.stop("a1", false);
          assert.equal(x.code, 0, x.stdout + x.stderr);
        });

        await step("the same DUID asking afresh gets the same address and prefix", async () => {
          const again = await bind("b2", MAC_B);
          assert.equal(again.na, b.na);
          assert.equal(again.pd, b.pd);
        });

        await step("a new client gets neither client's address or prefix", async () => {
          const c = await bind("c1", MAC_C);
          assert.ok(![a.na, b.na].includes(c.na), `${c.na} is new`);
          assert.ok(![a.pd, b.pd].includes(c.pd), `${c.pd} is new`);
        });

        const stop = await tapir.stop("SIGTERM");
        assert.equal(stop.code, 0, stop.stderr);
      } catch (e) {
        await explain(tapirs);
        throw e;
      } finally {
        dhclient.cleanup();
      }
    });
  },
});
