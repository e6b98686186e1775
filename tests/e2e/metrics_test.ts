/**
 * `[metrics] listen`: `tapir run` in a namespace serves `/metrics` on that
 * namespace's loopback (the host's network, not tapir's stack); a scrape
 * from inside the namespace passes `promtool check metrics`, and pings
 * forwarded between two kernel peers move the forwarding counter.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessRoot,
  moveTapToNs,
  type Netns,
  requireRoot,
  requireTool,
  run,
  startTapir,
  waitFor,
  withTopology,
} from "./harness.ts";

const NAME = "metrics: tapir run serves Prometheus metrics a forwarded ping moves";

const CONFIG = `
[router]
forwarding = { ipv4 = true }

[metrics]
listen = "127.0.0.1:9430"

[[interface]]
name = "lan0"
tap = "tplm0"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "wan0"
tap = "tplm1"
addresses = ["198.51.100.1/24"]
`;

/** GET `url` from inside `ns` with Deno's fetch; the body, or null when it fails. */
async function scrape(ns: Netns, url: string): Promise<{ status: number; body: string } | null> {
  const code = `const r = await fetch(${JSON.stringify(url)});` +
    `console.log(r.status + " " + r.headers.get("content-type"));` +
    `await Deno.stdout.write(new Uint8Array(await r.arrayBuffer()));`;
  const r = await ns.exec([Deno.execPath(), "eval", "--quiet", code], {
    check: false,
    timeoutMs: 10_000,
  });
  if (r.code !== 0) return null;
  const nl = r.stdout.indexOf("\n");
  const head = r.stdout.slice(0, nl);
  const status = Number(head.slice(0, head.indexOf(" ")));
  if (status === 200) assert.match(head, /^200 text\/plain; version=0\.0\.4/);
  return { status, body: r.stdout.slice(nl + 1) };
}

function sample(text: string, series: string): number {
  for (const l of text.split("\n")) {
    if (l.startsWith(series + " ")) return Number(l.slice(series.length + 1));
  }
  throw new Error(`no ${series} in the scrape`);
}

Deno.test({
  name: NAME,
  ignore: ignoreUnlessRoot(NAME),
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of ["ping", "promtool"]) if (!(await requireTool(tool))) return;
    await withTopology("tpl-m", async (topo) => {
      const r = await topo.netns("r");
      const a = await topo.netns("a");
      const b = await topo.netns("b");
      const tapir = await startTapir({ config: CONFIG, ns: r, topo });
      await moveTapToNs("tplm0", r, a, { address: "192.0.2.2/24" });
      await moveTapToNs("tplm1", r, b, { address: "198.51.100.2/24" });
      await a.ip("route", "add", "default", "via", "192.0.2.1");
      await b.ip("route", "add", "default", "via", "198.51.100.1");
      const url = "http://127.0.0.1:9430/metrics";
      let before = "";
      await waitFor("the metrics endpoint", async () => {
        const s = await scrape(r, url);
        if (s === null || s.status !== 200) return false;
        before = s.body;
        return true;
      }, 10_000);
      // Not in tapir's stack: 127.0.0.1 is the namespace's own loopback,
      // and no other namespace reaches it.
      assert.equal(await scrape(a, url), null, "the LAN peer must not reach /metrics");
      const p = await a.exec(["ping", "-c", "3", "-i", "0.2", "-w", "5", "198.51.100.2"], {
        check: false,
      });
      assert.equal(p.code, 0, `ping through tapir failed:\n${p.stdout}${p.stderr}`);
      const after = (await scrape(r, url))!;
      assert.equal(after.status, 200);
      const fwd = 'tapir_ip_packets_forwarded_total{family="ipv4"}';
      assert.ok(
        sample(after.body, fwd) - sample(before, fwd) >= 6,
        `3 requests and 3 replies forwarded: ${sample(before, fwd)} → ${sample(after.body, fwd)}`,
      );
      const rx = 'tapir_nic_ipv4_frames_received_total{interface="wan0"}';
      assert.ok(sample(after.body, rx) - sample(before, rx) >= 3);
      assert.ok(sample(after.body, "tapir_driver_polls_total") > 0);
      const check = await run(["promtool", "check", "metrics"], {
        stdin: after.body,
        check: false,
      });
      assert.equal(check.code, 0, `promtool: ${check.stdout}${check.stderr}`);
      assert.equal((await scrape(r, "http://127.0.0.1:9430/other"))?.status, 404);
      // `tapir show stats` as text: one block per owner, the driver's included.
      const show = await run([
        Deno.execPath(),
        "run",
        "-A",
        new URL("../../main.ts", import.meta.url).pathname,
        "show",
        "stats",
        "--control",
        tapir.controlPath,
      ]);
      for (const block of ["nics lan0", "links wan0", "stack ipv4", "driver", "tables routes"]) {
        assert.ok(show.stdout.split("\n").includes(block), `no "${block}" in\n${show.stdout}`);
      }
      const stop = await tapir.stop();
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stderr, /metrics at http:\/\/127\.0\.0\.1:9430\/metrics/);
    });
  },
});
