/**
 * A host that comes during an NS flood still resolves tapir (issue #16):
 * with tapir's neighbour table full of the flood's sources, an NS from a
 * source it cannot enter is answered only when that source solicited in
 * the last 2–4 s. The kernel host here repeats its NS after 1 s, as every
 * host does, and gets tapir's answer then.
 *
 *   h br0 (2001:db8:1::2, later also ::77) ─┬─ tapir lan0 (2001:db8:1::1)
 *   attacker a (flood_solicitate6) ──────────┘
 *
 * h's bridge joins tapir's TAP and a veth of the attacker's namespace, so
 * the flood comes from another neighbour on h's link, at the rate one
 * sender makes through a bridge (as bench:floods).
 * The host comes 6 s into the flood, once the flood's first entries are
 * old enough for the table's forced GC (a neighbour tapir must reach then
 * gets an entry). The flood is bounded in time: killed by PID once the new
 * host has its answer or gave up (at most ~26 s).
 */
import assert from "node:assert/strict";
import {
  bridge,
  enslave,
  ignoreUnlessReady,
  moveTapToNs,
  requireTool,
  run,
  startTapir,
  type Tapir,
  waitFor,
  withTopology,
} from "./harness.ts";

const id = String(Deno.pid % 100000);
const TAP = `tns${id}`;
const A = `tns${id}a`, PEER = `tns${id}p`;
const TOOLS = ["ping", "atk6-flood_solicitate6"];

const CONFIG = `
[router]
hostname = "e2e-nsflood"

[router.neighbor]
max_entries = 64

[[interface]]
name = "lan0"
tap = "${TAP}"
addresses = ["2001:db8:1::1/64"]
`;

async function ndp(tapir: Tapir, k: string): Promise<number> {
  const stack = (await tapir.stats()).stack as { ndp: Record<string, number> };
  return stack.ndp[k]!;
}

Deno.test({
  name: "NS flood e2e: a kernel host that comes during the flood resolves tapir on its repeated NS",
  ignore: ignoreUnlessReady("NS flood e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpns", async (topo) => {
      const tr = await topo.netns("tr");
      const h = await topo.netns("h");
      const a = await topo.netns("a");
      const tapir = await startTapir({ config: CONFIG, ns: tr, topo });
      await moveTapToNs(TAP, tr, h, { up: false });
      await bridge(h, ["2001:db8:1::2/64"]);
      await run(["ip", "link", "add", A, "netns", a.name, "type", "veth", "peer", "name", PEER]
        .concat(["netns", h.name]));
      for (const dev of [TAP, PEER]) await enslave(h, dev);
      await a.ip("link", "set", A, "up");
      await waitFor("tapir answering ping", async () => {
        const r = await h.exec(["ping", "-6", "-n", "-c", "1", "-W", "1", "2001:db8:1::1"], {
          check: false,
        });
        return r.code === 0;
      }, 15_000);
      const flood = a.spawn(["atk6-flood_solicitate6", A, "2001:db8:1::1"]);
      try {
        // Until tapir refuses the flood's sources: its table is full.
        await waitFor(
          "the flood to fill tapir's neighbour table",
          async () => await ndp(tapir, "solicitationsUnanswered") > 1000,
          10_000,
        );
        // The flood's first entries are past the 5 s a full table keeps
        // entries from its forced GC (Linux's neigh_forced_gc too): room
        // can be made for a neighbour tapir itself must reach.
        await new Promise((r) => setTimeout(r, 6_000));
        // A new address, and h forgets tapir's MAC: h resolves tapir again
        // from a source tapir has never seen, while the table is full.
        await h.ip("addr", "add", "2001:db8:1::77/64", "dev", "br0", "nodad");
        await h.ip("-6", "neigh", "flush", "dev", "br0");
        const t0 = performance.now();
        const r = await h.exec(
          ["ping", "-6", "-n", "-c", "1", "-W", "6", "-I", "2001:db8:1::77", "2001:db8:1::1"],
          { check: false, timeoutMs: 10_000 },
        );
        const ms = performance.now() - t0;
        assert.equal(r.code, 0, `no reply during the flood:\n${r.stdout}${r.stderr}`);
        // The first NS goes unanswered; the one RetransTimer (1 s) later is answered.
        assert.ok(ms < 4_000, `resolved and answered in ${ms.toFixed(0)} ms`);
        console.log(`the new host's ping came back after ${ms.toFixed(0)} ms`);
      } finally {
        flood.kill("SIGKILL");
        await flood.wait(5_000);
      }
      // The flood itself was left unanswered: far fewer NA than NS.
      const got = await ndp(tapir, "solicitationsReceived");
      const sent = await ndp(tapir, "advertisementsSent");
      const refused = await ndp(tapir, "solicitationsUnanswered");
      assert.ok(refused > 0.9 * (got - 100), `${refused} of ${got} NS unanswered, ${sent} NA sent`);
    });
  },
});
