/**
 * `[metrics] listen`: a running tapir serves Prometheus text on the host's
 * network of its namespace; promtool accepts the scrape, and a ping the
 * kernel sends through tapir moves the forwarding counter.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  requireRoot,
  requireTool,
  startTapir,
  withTopology,
} from "./harness.ts";

const TOOLS = ["ping", "promtool", "/usr/bin/python3"];

const SCRAPE =
  "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9430/metrics', timeout=5).read().decode())";

Deno.test({
  name: "metrics e2e: promtool accepts the scrape; a forwarded ping moves the counter",
  ignore: ignoreUnlessReady("metrics e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpm", async (topo) => {
      const id = Deno.pid % 100000;
      const [lanTap, wanTap] = [`tpm${id}l`, `tpm${id}w`];
      const r = await topo.netns("r");
      const h1 = await topo.netns("h1");
      const h2 = await topo.netns("h2");
      const tapir = await startTapir({
        config: `[router]\nforwarding = true\n[metrics]\nlisten = "127.0.0.1:9430"\n` +
          `[[interface]]\nname = "lan0"\ntap = "${lanTap}"\naddresses = ["192.0.2.1/24"]\n` +
          `[[interface]]\nname = "wan0"\ntap = "${wanTap}"\naddresses = ["198.51.100.1/24"]\n`,
        ns: r,
        topo,
      });
      await moveTapToNs(lanTap, r, h1, { address: "192.0.2.2/24" });
      await moveTapToNs(wanTap, r, h2, { address: "198.51.100.2/24" });
      await h1.ip("route", "add", "default", "via", "192.0.2.1");
      await h2.ip("route", "add", "default", "via", "198.51.100.1");
      const scrape = async () => (await r.exec(["/usr/bin/python3", "-c", SCRAPE])).stdout;
      const fwd = (text: string) =>
        Number(/^tapir_ip_forwarding_packets_total\{family="ipv4"\} (\d+)$/m.exec(text)?.[1]);
      const first = await scrape();
      const check = await r.exec(["promtool", "check", "metrics"], { stdin: first, check: false });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      const before = fwd(first);
      assert.ok(Number.isFinite(before), first.slice(0, 2000));
      const p = await h1.exec(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2"]);
      assert.match(p.stdout, /3 received/);
      // Three echo requests and three replies crossed tapir.
      assert.equal(fwd(await scrape()) - before, 6);
      const s = await tapir.stop("SIGTERM");
      assert.equal(s.code, 0, s.stderr);
    });
  },
});
