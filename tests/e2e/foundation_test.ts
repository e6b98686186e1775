/**
 * The foundation's must-show: tapir attaches two TAPs in its own namespace,
 * their kernel sides move into two peer namespaces, and the peers' own
 * arping and ping produce frames that tapir counts per NIC and EtherType
 * and writes, every one of them, into pcap files tshark reads cleanly.
 * SIGTERM ends tapir at once, with exit 0 and both TAPs gone.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  requireRoot,
  requireTool,
  run,
  startTapir,
  waitFor,
  withTopology,
} from "./harness.ts";

const NAME = "foundation: tapir counts and captures what kernel peers send";

const CONFIG = `
[[interface]]
name = "lan0"
tap = "tplf0"
mtu = 1500
addresses = ["192.0.2.1/24"]

[[interface]]
name = "wan0"
tap = "tplf1"
mtu = 1500
addresses = ["198.51.100.1/24"]
`;

Deno.test({
  name: NAME,
  ignore: ignoreUnlessReady(NAME, ["arping", "ping", "tshark"]),
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of ["arping", "ping", "tshark"]) if (!(await requireTool(tool))) return;
    await withTopology("tpl-f", async (topo) => {
      const r = await topo.netns("r");
      const a = await topo.netns("a");
      const b = await topo.netns("b");
      const tapir = await startTapir({ config: CONFIG, ns: r, topo, capture: true });
      await moveTapToNs("tplf0", r, a, { address: "192.0.2.2/24" });
      await moveTapToNs("tplf1", r, b, { address: "198.51.100.2/24" });
      // Address the pings to the broadcast MAC so they reach the IPv4 layer
      // whether or not the stack answers ARP yet.
      await a.ip("neigh", "replace", "192.0.2.1", "lladdr", "ff:ff:ff:ff:ff:ff", "dev", "tplf0");
      await b.ip("neigh", "replace", "198.51.100.1", "lladdr", "ff:ff:ff:ff:ff:ff", "dev", "tplf1");

      const s0 = await tapir.stats();
      await a.exec(["arping", "-c", "3", "-w", "5", "-I", "tplf0", "192.0.2.1"], { check: false });
      await a.exec(["ping", "-c", "3", "-i", "0.2", "-w", "3", "192.0.2.1"], { check: false });
      await b.exec(["ping", "-c", "3", "-i", "0.2", "-w", "3", "198.51.100.1"], { check: false });

      let s1 = s0;
      await waitFor("tapir's counters", async () => {
        s1 = await tapir.stats();
        return s1.nics.lan0!.arpFramesReceived! - s0.nics.lan0!.arpFramesReceived! >= 3 &&
          s1.nics.wan0!.ipv4FramesReceived! - s0.nics.wan0!.ipv4FramesReceived! >= 3;
      }, 5000);
      const d = (nic: string, k: string) => s1.nics[nic]![k]! - s0.nics[nic]![k]!;
      await t.step("counts per NIC and EtherType", () => {
        assert.ok(
          d("lan0", "arpFramesReceived") >= 3,
          `lan0 ARP ${d("lan0", "arpFramesReceived")}`,
        );
        assert.ok(
          d("lan0", "ipv4FramesReceived") >= 3,
          `lan0 IPv4 ${d("lan0", "ipv4FramesReceived")}`,
        );
        assert.ok(
          d("wan0", "ipv4FramesReceived") >= 3,
          `wan0 IPv4 ${d("wan0", "ipv4FramesReceived")}`,
        );
        assert.ok(
          d("lan0", "framesReceived") >=
            d("lan0", "arpFramesReceived") + d("lan0", "ipv4FramesReceived"),
        );
      });

      // Freeze the peers, then read how many frames each sent in its life.
      await a.ip("link", "set", "dev", "tplf0", "down");
      await b.ip("link", "set", "dev", "tplf1", "down");
      await new Promise((res) => setTimeout(res, 300));
      const sent = {
        lan0: { ...(await a.linkStats("tplf0")), mac: await macOf(a.name, "tplf0") },
        wan0: { ...(await b.linkStats("tplf1")), mac: await macOf(b.name, "tplf1") },
      };

      const stop = await tapir.stop("SIGTERM");
      // A hang bound, not a speed figure: a loaded CI machine once took 1025 ms.
      await t.step("SIGTERM ends tapir (within 3 s) with exit 0", () => {
        assert.equal(stop.code, 0, stop.stderr);
        assert.ok(stop.ms < 3000, `took ${stop.ms.toFixed(0)} ms`);
      });
      await t.step("both TAP devices are gone", async () => {
        for (const ns of [r, a, b]) {
          assert.equal(await ns.hasLink("tplf0"), false, `tplf0 in ${ns.name}`);
          assert.equal(await ns.hasLink("tplf1"), false, `tplf1 in ${ns.name}`);
        }
      });
      for (const nic of ["lan0", "wan0"] as const) {
        const file = `${tapir.captureDir}/${nic}.pcap`;
        await t.step(`${nic}.pcap opens in tshark with no malformed frames`, async () => {
          const mal = await run(["tshark", "-r", file, "-Y", "_ws.malformed"]);
          assert.equal(mal.stdout.trim(), "");
          const expert = await run(["tshark", "-r", file, "-q", "-z", "expert,error"]);
          assert.doesNotMatch(expert.stdout, /Errors \(\d+\)/, expert.stdout);
        });
        await t.step(`${nic}.pcap holds every frame the peer sent`, async () => {
          const fromPeer = await run([
            "tshark",
            "-r",
            file,
            "-Y",
            `eth.src == ${sent[nic].mac}`,
            "-T",
            "fields",
            "-e",
            "frame.number",
          ]);
          const n = fromPeer.stdout.trim().split("\n").filter((l) => l !== "").length;
          assert.equal(n, sent[nic].tx_packets, `pcap ${n}, peer sent ${sent[nic].tx_packets}`);
        });
      }
    });
  },
});

async function macOf(ns: string, dev: string): Promise<string> {
  const r = await run(["ip", "-n", ns, "-j", "link", "show", "dev", dev]);
  return JSON.parse(r.stdout)[0].address;
}
