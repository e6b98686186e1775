/**
 * README's "Putting tapir on a network", as written: in a namespace that
 * plays the VM (the host), each of tapir's interfaces is a persistent TAP
 * enslaved to a Linux bridge that also holds the "physical" port (a veth
 * to a kernel host that plays the network); the kernel keeps no address on
 * the bridges and does not forward. tapir attaches to the existing TAPs,
 * and the LAN host reaches the WAN host through tapir's MASQUERADE.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  type Netns,
  requireRoot,
  requireTool,
  startTapir,
  waitFor,
  withTopology,
} from "./harness.ts";

const TOOLS = ["ping"];

async function sh(ns: Netns, cmd: string) {
  const r = await ns.exec(["sh", "-ec", cmd], { check: false });
  assert.equal(r.code, 0, `${cmd}\n${r.stdout}${r.stderr}`);
  return r;
}

Deno.test({
  name: "bridge e2e: tapir on persistent TAPs in Linux bridges routes a LAN host to a WAN host",
  ignore: ignoreUnlessReady("bridge e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpb", async (topo) => {
      const id = Deno.pid % 10000;
      const vm = await topo.netns("vm");
      const lanHost = await topo.netns("lan");
      const wanHost = await topo.netns("wan");
      const [tapLan, tapWan] = [`tpbt${id}l`, `tpbt${id}w`];
      // The VM's side, as README's commands: a bridge per network with a
      // persistent TAP for tapir and the uplink port in it.
      for (
        const [br, tap, port, peer, host] of [
          ["br-lan", tapLan, `tpbp${id}l`, `tpbh${id}l`, lanHost],
          ["br-wan", tapWan, `tpbp${id}w`, `tpbh${id}w`, wanHost],
        ] as const
      ) {
        await sh(vm, `ip link add ${br} type bridge`);
        await sh(vm, `ip tuntap add dev ${tap} mode tap`);
        await sh(vm, `ip link set ${tap} master ${br} up`);
        // The "physical" port: here a veth whose other end is a kernel host.
        await sh(vm, `ip link add ${port} type veth peer name ${peer} netns ${host.name}`);
        await sh(vm, `ip link set ${port} master ${br} up`);
        await sh(vm, `ip link set ${br} up`);
        // The kernel side stays out of the way: no address, no forwarding, no RAs.
        await sh(vm, `sysctl -qw net.ipv6.conf.${br}.disable_ipv6=1`);
      }
      await sh(vm, "sysctl -qw net.ipv4.ip_forward=0");
      await sh(lanHost, `ip addr add 192.0.2.2/24 dev tpbh${id}l && ip link set tpbh${id}l up`);
      await sh(lanHost, "ip route add default via 192.0.2.1");
      await sh(wanHost, `ip addr add 198.51.100.2/24 dev tpbh${id}w && ip link set tpbh${id}w up`);
      const tapir = await startTapir({
        config: `[router]\nforwarding = true\n` +
          `[[interface]]\nname = "lan0"\ntap = "${tapLan}"\naddresses = ["192.0.2.1/24"]\n` +
          `[[interface]]\nname = "wan0"\ntap = "${tapWan}"\naddresses = ["198.51.100.1/24"]\n` +
          `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
        ns: vm,
        topo,
      });
      await waitFor("tapir's control socket", () => {
        try {
          return Deno.statSync(tapir.controlPath).isSocket === true;
        } catch {
          return false;
        }
      }, 20_000);
      await waitFor("the TAPs to stay in their bridges", async () => {
        const r = await vm.exec(["ip", "-o", "link", "show", "master", "br-lan"]);
        return r.stdout.includes(tapLan);
      });
      // The WAN host has no route back to 192.0.2.0/24: only MASQUERADE makes the reply come home.
      const p = await lanHost.exec([
        "ping",
        "-n",
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        "198.51.100.2",
      ], {
        check: false,
      });
      assert.match(p.stdout, /3 received/, p.stdout + p.stderr);
      const s = await tapir.stop("SIGTERM");
      assert.equal(s.code, 0, s.stderr);
      // A persistent TAP outlives tapir, in its bridge, ready for the next start.
      const left = await vm.exec(["ip", "-o", "link", "show", "master", "br-lan"]);
      assert.match(left.stdout, new RegExp(tapLan));
    });
  },
});
