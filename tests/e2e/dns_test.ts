/**
 * DNS forwarder e2e: `tapir run` with `[dns]` serving port 53 on lan0,
 * the kernel's `dig` in a LAN namespace asking it, and dnsmasq in a WAN
 * namespace as the upstream (authoritative for example.test from its
 * command line, no cache of its own, every query it gets in its log):
 *
 *   lan 192.0.2.10/24 ── lan0 192.0.2.1  tapir  wan0 198.51.100.1 ── wan 198.51.100.53 (dnsmasq)
 *
 * Forwarded answers (a CNAME chain, AAAA, NXDOMAIN) come through as the
 * upstream sent them; a second identical query is answered from tapir's
 * cache (the upstream's log does not grow) with its TTL aged; hosts and
 * `local` domains are answered by tapir itself (aa, PTR for the hosts'
 * addresses, NXDOMAIN for other names) and never reach the upstream; a
 * question comes back in the client's letter case, from the cache too;
 * and with dnsmasq gone a new name gets SERVFAIL within the forwarder's
 * timeout while cached names are still answered.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  requireRoot,
  requireTool,
  type RunResult,
  startTapir,
  waitFor,
  withTopology,
} from "./harness.ts";

const TOOLS = ["dig", "dnsmasq"];
const id = String(Deno.pid % 100000);
const LAN_TAP = `tnl${id}`;
const WAN_TAP = `tnw${id}`;
/** The TTL dnsmasq gives its own records (`--local-ttl`), seconds. */
const TTL = 300;

const config = `
[router]
hostname = "e2e-dns"
forwarding = true

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "wan0"
tap = "${WAN_TAP}"
addresses = ["198.51.100.1/24"]

[dns]
interfaces = ["lan0"]
servers = ["198.51.100.53"]
cache_size = 150
local = ["lan"]
hosts = { "nas.lan" = ["192.0.2.20", "2001:db8:1::20"] }
`;

/**
 * dnsmasq as the upstream: example.test is local to it (unknown names are
 * NXDOMAIN), www → a by CNAME, a has an A and an AAAA record, all with TTL
 * {@link TTL}; no cache, no resolv.conf, no hosts file, every query logged.
 */
function dnsmasqArgs(log: string): string[] {
  return [
    "dnsmasq",
    "--no-daemon",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--port=53",
    "--listen-address=198.51.100.53",
    "--bind-interfaces",
    "--cache-size=0",
    "--log-queries",
    `--log-facility=${log}`,
    "--local=/example.test/",
    "--host-record=a.example.test,203.0.113.7,2001:db8:7::7",
    "--cname=www.example.test,a.example.test",
    `--local-ttl=${TTL}`,
  ];
}

/** One record of dig's answer section. */
interface Rr {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

/** What dig printed, taken apart. */
interface Dig {
  status: string;
  flags: string[];
  /** Question section lines without the leading ";", spaces squeezed: "www.example.test. IN A". */
  question: string[];
  answer: Rr[];
  text: string;
  ms: number;
}

function section(text: string, title: string): string[] {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l === `;; ${title} SECTION:`);
  if (at < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (l.trim() === "") break;
    out.push(l);
  }
  return out;
}

function parseDig(r: RunResult, ms: number): Dig {
  const text = r.stdout + r.stderr;
  const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? `none (dig exit ${r.code})`;
  const flags = (/;; flags: ([a-z ]*);/.exec(text)?.[1] ?? "").trim().split(/\s+/);
  const question = section(text, "QUESTION").map((l) => l.replace(/^;/, "").split(/\s+/).join(" "));
  const answer = section(text, "ANSWER").map((l) => {
    const [name, ttl, , type, ...data] = l.split(/\s+/);
    return { name: name!, ttl: Number(ttl), type: type!, data: data.join(" ") };
  });
  return { status, flags, question, answer, text, ms };
}

/** `dig @192.0.2.1 ARGS` from the LAN host, one try of `time` seconds. */
async function dig(lan: Netns, args: string[], time = 2): Promise<Dig> {
  const t0 = performance.now();
  const r = await lan.exec(
    ["dig", "@192.0.2.1", `+time=${time}`, "+tries=1", ...args],
    { check: false, timeoutMs: (time + 5) * 1000 },
  );
  return parseDig(r, performance.now() - t0);
}

/** `dig +short` from the LAN host: the answer's data lines. */
async function short(lan: Netns, args: string[]): Promise<string[]> {
  const r = await lan.exec(
    ["dig", "@192.0.2.1", "+time=2", "+tries=1", "+short", ...args],
    { check: false, timeoutMs: 10_000 },
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return r.stdout.trim().split("\n").filter((l) => l !== "");
}

/** The queries the upstream logged: "query[TYPE] NAME from ADDR". */
function upstreamQueries(log: string): string[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(log);
  } catch {
    // Not written yet.
  }
  return [...text.matchAll(/query\[[A-Z0-9]+\] \S+ from \S+/g)].map((m) => m[0]);
}

/** dnsmasq writes its log as it goes; give a query that would reach it time to show. */
const settle = () => new Promise((r) => setTimeout(r, 500));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "DNS e2e: tapir's forwarder answers dig from dnsmasq upstream, its cache and its hosts",
  ignore: ignoreUnlessReady("DNS e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpdns", async (topo) => {
      const r = await topo.netns("r");
      const lan = await topo.netns("lan");
      const wan = await topo.netns("wan");
      const dir = topo.tempDir();
      const log = `${dir}/dnsmasq.log`;
      const tapir = await startTapir({ config, ns: r, topo });
      await moveTapToNs(LAN_TAP, r, lan, { address: "192.0.2.10/24" });
      await lan.ip("route", "add", "default", "via", "192.0.2.1");
      await moveTapToNs(WAN_TAP, r, wan, { address: "198.51.100.53/24" });
      // Stopped by its PID below (and killed by cleanup() if a step failed first).
      const dnsmasq = wan.spawn(dnsmasqArgs(log));
      await waitFor("dnsmasq to start", () => {
        try {
          return Deno.readTextFileSync(log).includes("using only locally-known addresses");
        } catch {
          return false;
        }
      }, 10_000);
      const seen = () => upstreamQueries(log);

      await t.step(
        "forwarded: a CNAME chain, its AAAA, and NXDOMAIN, as dnsmasq sent them",
        async () => {
          assert.deepEqual(await short(lan, ["www.example.test", "A"]), [
            "a.example.test.",
            "203.0.113.7",
          ]);
          assert.deepEqual(await short(lan, ["www.example.test", "AAAA"]), [
            "a.example.test.",
            "2001:db8:7::7",
          ]);
          const nx = await dig(lan, ["nope.example.test", "A"]);
          assert.equal(nx.status, "NXDOMAIN", nx.text);
          assert.deepEqual(nx.answer, [], nx.text);
          // The upstream got them from tapir's WAN address: forwarded, not routed.
          await waitFor("the upstream's log of the three queries", () => seen().length >= 3, 5_000);
          assert.deepEqual(seen(), [
            "query[A] www.example.test from 198.51.100.1",
            "query[AAAA] www.example.test from 198.51.100.1",
            "query[A] nope.example.test from 198.51.100.1",
          ]);
        },
      );

      await t.step("cached: the same query again never reaches dnsmasq, its TTL aged", async () => {
        const before = seen().length;
        const first = await dig(lan, ["www.example.test", "A"]);
        assert.equal(first.status, "NOERROR", first.text);
        assert.deepEqual(first.answer.map((a) => [a.name, a.type, a.data]), [
          ["www.example.test.", "CNAME", "a.example.test."],
          ["a.example.test.", "A", "203.0.113.7"],
        ], first.text);
        await settle();
        assert.equal(seen().length, before, `answered from the cache: ${seen().join("\n")}`);
        const ttl0 = Math.min(...first.answer.map((a) => a.ttl));
        assert.ok(ttl0 <= TTL && ttl0 > TTL - 30, first.text);
        await sleep(3_000);
        const later = await dig(lan, ["www.example.test", "A"]);
        assert.equal(later.status, "NOERROR", later.text);
        for (const a of later.answer) {
          // At least 3.5 s older than when `first` was answered.
          assert.ok(
            a.ttl <= ttl0 - 3 && a.ttl >= TTL - 30,
            `TTL ${a.ttl} after 3 s: ${later.text}`,
          );
        }
        await settle();
        assert.equal(seen().length, before, `still from the cache: ${seen().join("\n")}`);
        // An NXDOMAIN without a SOA is not cached (RFC 2308 §5): asked again, it goes upstream.
        const nx = await dig(lan, ["nope.example.test", "A"]);
        assert.equal(nx.status, "NXDOMAIN", nx.text);
        await waitFor(
          "nope.example.test upstream again",
          () => seen().length === before + 1,
          5_000,
        );
        assert.equal(seen().at(-1), "query[A] nope.example.test from 198.51.100.1");
      });

      await t.step("hosts and local domains: answered by tapir (aa), never forwarded", async () => {
        const before = seen().length;
        const nas = await dig(lan, ["nas.lan", "A"]);
        assert.equal(nas.status, "NOERROR", nas.text);
        assert.ok(nas.flags.includes("aa"), `aa flag: ${nas.text}`);
        assert.deepEqual(nas.answer.map((a) => [a.name, a.type, a.data]), [
          ["nas.lan.", "A", "192.0.2.20"],
        ], nas.text);
        assert.deepEqual(await short(lan, ["nas.lan", "AAAA"]), ["2001:db8:1::20"]);
        assert.deepEqual(await short(lan, ["-x", "192.0.2.20"]), ["nas.lan."]);
        assert.deepEqual(await short(lan, ["-x", "2001:db8:1::20"]), ["nas.lan."]);
        const printer = await dig(lan, ["printer.lan", "A"]);
        assert.equal(printer.status, "NXDOMAIN", printer.text);
        assert.ok(printer.flags.includes("aa"), `aa flag: ${printer.text}`);
        await settle();
        assert.deepEqual(seen().slice(before), [], "nothing of these reached the upstream");
        assert.ok(
          !seen().some((l) => /\.lan |\.arpa /.test(l)),
          `no .lan or reverse query upstream: ${seen().join("\n")}`,
        );
      });

      await t.step(
        "a question comes back in the client's letter case (cache, upstream, hosts)",
        async () => {
          const before = seen().length;
          // www.example.test A is cached (lower case): this one is answered from the cache.
          const cached = await dig(lan, ["WwW.ExAmPlE.TeSt", "A"]);
          assert.equal(cached.status, "NOERROR", cached.text);
          assert.deepEqual(cached.question, ["WwW.ExAmPlE.TeSt. IN A"], cached.text);
          assert.ok(cached.answer.some((a) => a.data === "203.0.113.7"), cached.text);
          await settle();
          assert.equal(seen().length, before, `from the cache: ${seen().join("\n")}`);
          // Not asked before: forwarded in the client's spelling, answered in it.
          const fwd = await dig(lan, ["A.ExAmPlE.tEsT", "AAAA"]);
          assert.equal(fwd.status, "NOERROR", fwd.text);
          assert.deepEqual(fwd.question, ["A.ExAmPlE.tEsT. IN AAAA"], fwd.text);
          assert.ok(fwd.answer.some((a) => a.data === "2001:db8:7::7"), fwd.text);
          await waitFor("the upstream's log of it", () => seen().length === before + 1, 5_000);
          assert.equal(seen().at(-1), "query[AAAA] A.ExAmPlE.tEsT from 198.51.100.1");
          // Now cached under that spelling; another spelling gets its own back.
          const again = await dig(lan, ["a.EXAMPLE.test", "AAAA"]);
          assert.deepEqual(again.question, ["a.EXAMPLE.test. IN AAAA"], again.text);
          assert.ok(again.answer.some((a) => a.data === "2001:db8:7::7"), again.text);
          const host = await dig(lan, ["NaS.LaN", "A"]);
          assert.deepEqual(host.question, ["NaS.LaN. IN A"], host.text);
          assert.ok(host.answer.some((a) => a.data === "192.0.2.20"), host.text);
          await settle();
          assert.equal(seen().length, before + 1, `no more upstream: ${seen().join("\n")}`);
        },
      );

      await t.step(
        "upstream gone: a new name gets SERVFAIL within seconds, cached names still answer",
        async () => {
          dnsmasq.kill("SIGTERM");
          await dnsmasq.wait(5_000);
          const fail = await dig(lan, ["gone.example.test", "A"], 6);
          assert.equal(fail.status, "SERVFAIL", fail.text);
          // The forwarder's timeout is 2 s; dig would have given up after 6.
          assert.ok(fail.ms < 5_000, `SERVFAIL after ${fail.ms.toFixed(0)} ms: ${fail.text}`);
          assert.deepEqual(fail.question, ["gone.example.test. IN A"], fail.text);
          assert.deepEqual(await short(lan, ["www.example.test", "A"]), [
            "a.example.test.",
            "203.0.113.7",
          ]);
          assert.deepEqual(await short(lan, ["nas.lan", "A"]), ["192.0.2.20"]);
        },
      );

      const s = await tapir.stop("SIGTERM");
      assert.equal(s.code, 0, s.stderr);
    });
  },
});
