/**
 * tapir against the kernel's iptables/ip6tables/ipset as the router in the
 * same topology (root): every rule set of `firewall_diff_test.ts`'s
 * `RULE_SETS` is loaded from the same rule strings into both, the same
 * hand-built probes go through both, and what the server saw (after NAT)
 * and what came back to the client must be the same. Prints a diff table
 * and exits 1 on any difference.
 *
 * The suite runs the same comparison as a test (firewall_diff_test.ts);
 * this script prints a table of the differences instead of one failed
 * assertion. Run it as `deno run -A tests/e2e/firewall_diff_run.ts`;
 * `FWDIFF_SETS=4,34` runs only those sets, `FWDIFF_VERBOSE=1` prints
 * every probe's outcome on both routers.
 *
 * @module
 */
import { requireTool, withTopology } from "./harness.ts";
import {
  battery_,
  loadKernel,
  loadTapir,
  probesOf,
  probeText,
  RULE_SETS,
  TOOLS,
  withRouters,
} from "./firewall_diff_test.ts";

for (const tool of TOOLS) if (!(await requireTool(tool))) Deno.exit(2);
let failed = false;
/** `FWDIFF_SETS=4,34`: only these sets; `FWDIFF_VERBOSE=1`: every probe's outcome. */
const only = Deno.env.get("FWDIFF_SETS")?.split(",").map(Number) ?? null;
const verbose = Deno.env.get("FWDIFF_VERBOSE") === "1";
await withTopology("tfd", async (topo) => {
  await withRouters(topo, async ({ tapir, kr, tapirSide, kernelSide, dir }) => {
    const diffs: string[] = [];
    let probes = 0;
    const t0 = Date.now();
    for (const [n, rs] of RULE_SETS.entries()) {
      if (only !== null && !only.includes(n)) continue;
      await Promise.all([loadTapir(tapir, rs), loadKernel(kr, rs)]);
      const ps = probesOf(n, rs);
      probes += ps.length;
      const [tp, kp] = await Promise.all([
        battery_(tapirSide, ps, dir),
        battery_(kernelSide, ps, dir),
      ]);
      for (const [i, p] of ps.entries()) {
        const a = tp[i]!.join("; ") || "nothing", b = kp[i]!.join("; ") || "nothing";
        if (verbose) console.log(`${n} ${probeText(p)}\n  tapir: ${a}\n  kernel: ${b}`);
        if (a !== b) {
          diffs.push(`| ${n} ${rs.name} | ${probeText(p)} | tapir: ${a} | kernel: ${b} |`);
        }
      }
    }
    console.log(
      `${RULE_SETS.length} rule sets, ${probes} probes per router, ${diffs.length} differences, ${
        ((Date.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    if (diffs.length > 0) {
      failed = true;
      console.log(`| set | probe | tapir | kernel |\n|---|---|---|---|\n${diffs.join("\n")}`);
    }
  });
});
Deno.exit(failed ? 1 : 0);
