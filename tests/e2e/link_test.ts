/**
 * The TAP link alone, as a wire between two kernel peers (bench/link_wire.ts:
 * two TapEndpoints joined through LinkDriver, no stack), with offloads on
 * and off: ARP, ping and a TCP stream cross it intact, the counters add
 * up, and SIGTERM closes both TAPs.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  requireRoot,
  requireTool,
  startLinkWire,
  withTopology,
} from "./harness.ts";

for (const offload of [true, false]) {
  const name = `TAP wire between two namespaces, offloads ${offload ? "on" : "off"}`;
  Deno.test({
    name,
    ignore: ignoreUnlessReady(name, ["iperf3"]),
    async fn(t) {
      if (!requireRoot(t)) return;
      if (!(await requireTool("iperf3"))) return;
      await withTopology("tpl-l", async (topo) => {
        const wire = await startLinkWire(topo, { offload, tag: offload ? "o" : "n" });
        await t.step("ping crosses the wire with no loss", async () => {
          const r = await wire.a.exec(["ping", "-c", "5", "-i", "0.1", "-w", "5", "192.0.2.2"]);
          assert.match(r.stdout, / 0% packet loss/);
        });
        await t.step("a TCP stream crosses the wire", async () => {
          const server = wire.b.spawn(["iperf3", "-s", "-1", "-B", "192.0.2.2"]);
          await new Promise((res) => setTimeout(res, 300));
          const r = await wire.a.exec(
            ["iperf3", "-c", "192.0.2.2", "-t", "1", "-J"],
            { timeoutMs: 15_000 },
          );
          await server.wait(5000);
          const bps = JSON.parse(r.stdout).end.sum_received.bits_per_second as number;
          assert.ok(bps > 1e6, `received ${bps} bit/s`);
        });
        const { code, stats } = await wire.stop();
        await t.step("SIGTERM: exit 0, counters add up, TAPs gone", async () => {
          assert.equal(code, 0);
          const sa = stats[wire.tapA]!, sb = stats[wire.tapB]!;
          assert.equal(sa.readErrors, 0);
          assert.equal(sb.readErrors, 0);
          assert.equal(sa.dispatchErrors, 0);
          // Every frame read on one side was written (or counted as dropped) on the other.
          const outB = sb.txFrames + sb.txEagainDrops + sb.txGsoDrops + sb.txDownDrops +
            sb.writeErrors;
          assert.equal(sa.rxFrames, outB);
          if (!offload) assert.equal(sa.txGsoDrops + sb.txGsoDrops, 0);
          assert.equal(await wire.a.hasLink(wire.tapA), false);
          assert.equal(await wire.b.hasLink(wire.tapB), false);
        });
      });
    },
  });
}
