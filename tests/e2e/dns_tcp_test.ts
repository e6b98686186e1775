/**
 * DNS over TCP e2e: tapir's forwarder on lan0 answers the kernel's `dig`
 * over TCP, and re-fetches over TCP what its upstream truncated over UDP
 * (RFC 7766 §5):
 *
 *   lan 192.0.2.10/24 ── lan0 192.0.2.1  tapir  wan0 198.51.100.1 ── wan 198.51.100.53 (dnsmasq)
 *
 * dnsmasq in the WAN namespace serves big.example.test TXT (about 1 KB:
 * over 512 bytes, under 1232) and huge.example.test TXT (about 2.4 KB),
 * logs every query and caches nothing; tcpdump in the WAN namespace shows
 * which transport tapir's upstream queries took.
 *
 * A `dig +noedns` (512 bytes) for big gets TC with no records from tapir,
 * which holds the full answer: dnsmasq saw the question twice, and the
 * second time over TCP from tapir's WAN address. dig's own retry over TCP
 * then gets every string of it from tapir's cache, as does `+bufsize=1232`
 * over UDP. A `dig +tcp` with several questions on one connection is
 * answered on it; huge goes upstream over TCP straight away (a TCP client's
 * query is forwarded over TCP, as dnsmasq does).
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  requireRoot,
  requireTool,
  run,
  startTapir,
  type Tapir,
  TAPIR_PERMS,
  waitFor,
  withTopology,
} from "./harness.ts";
import type { DnsForwarderStats } from "../../stack/mod.ts";

const TOOLS = ["dig", "dnsmasq", "tcpdump", "tshark"];
const id = String(Deno.pid % 100000);
const LAN_TAP = `tcl${id}`;
const WAN_TAP = `tcw${id}`;

const config = `
[router]
hostname = "e2e-dns-tcp"
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
local = ["lan"]
hosts = { "nas.lan" = "192.0.2.20" }
tcp_idle_timeout = "10s"
tcp_clients = 8
`;

/** `n` TXT strings of 200 letters each, the i-th all of letter i. */
function strings(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i).repeat(200));
}
const BIG = strings(5);
const HUGE = strings(12);

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
    "--host-record=www.example.test,203.0.113.7",
    `--txt-record=big.example.test,${BIG.join(",")}`,
    `--txt-record=huge.example.test,${HUGE.join(",")}`,
    "--local-ttl=300",
  ];
}

/** What dig printed, the parts these steps look at. */
interface Dig {
  text: string;
  status: string;
  flags: string[];
  /** TXT strings of the answer section, in order. */
  txt: string[];
  /** Data of the answer section's records. */
  answer: string[];
  /** "MSG SIZE rcvd" of the last answer printed. */
  size: number;
  /** dig's own note that it asked again over TCP. */
  retriedTcp: boolean;
}

function parseDig(text: string): Dig {
  const lines = text.split("\n");
  const at = lines.findLastIndex((l) => l === ";; ANSWER SECTION:");
  const answer: string[] = [];
  if (at >= 0) {
    for (const l of lines.slice(at + 1)) {
      if (l.trim() === "") break;
      answer.push(l.split(/\s+/).slice(4).join(" "));
    }
  }
  const flags = [...text.matchAll(/;; flags: ([a-z ]*);/g)].at(-1)?.[1] ?? "";
  return {
    text,
    status: [...text.matchAll(/status: ([A-Z]+)/g)].at(-1)?.[1] ?? "none",
    flags: flags.trim().split(/\s+/),
    txt: answer.flatMap((d) => [...d.matchAll(/"([^"]*)"/g)].map((m) => m[1]!)),
    answer,
    size: Number([...text.matchAll(/MSG SIZE\s+rcvd: (\d+)/g)].at(-1)?.[1] ?? 0),
    retriedTcp: /Truncated, retrying in TCP mode/.test(text),
  };
}

async function dig(lan: Netns, args: string[]): Promise<Dig> {
  const r = await lan.exec(["dig", "@192.0.2.1", "+time=3", "+tries=1", ...args], {
    check: false,
    timeoutMs: 15_000,
  });
  return parseDig(r.stdout + r.stderr);
}

/** The queries dnsmasq logged: "query[TYPE] NAME from ADDR". */
function upstreamQueries(log: string): string[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(log);
  } catch {
    // Not written yet.
  }
  return [...text.matchAll(/query\[[A-Z0-9]+\] \S+ from \S+/g)].map((m) => m[0]);
}

/** The forwarder's counters (`tapir show dns --json`). */
async function dnsStats(tapir: Tapir): Promise<DnsForwarderStats> {
  const r = await run([
    Deno.execPath(),
    "run",
    ...TAPIR_PERMS,
    `${tapir.repo}/main.ts`,
    "show",
    "dns",
    "--control",
    tapir.controlPath,
    "--json",
  ], { timeoutMs: 10_000 });
  return JSON.parse(r.stdout).stats;
}

/** The DNS queries in a capture: transport, source, destination port, name (tshark's dissection). */
async function capturedQueries(ns: Netns, pcap: string): Promise<string[]> {
  const r = await ns.exec([
    "tshark",
    "-n",
    "-r",
    pcap,
    "-Y",
    "dns.flags.response == 0",
    "-T",
    "fields",
    "-E",
    "separator=/s",
    "-e",
    "ip.proto",
    "-e",
    "ip.src",
    "-e",
    "ip.dst",
    "-e",
    "dns.qry.name",
  ], { timeoutMs: 20_000 });
  return r.stdout.trim().split("\n").filter((l) => l !== "").map((l) =>
    l.replace(/^6 /, "tcp ").replace(/^17 /, "udp ")
  );
}

const settle = () => new Promise((r) => setTimeout(r, 500));

Deno.test({
  name:
    "DNS TCP e2e: a truncated answer is re-fetched over TCP upstream, cut for dig +noedns, whole for dig +tcp",
  ignore: ignoreUnlessReady("DNS TCP e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpdnt", async (topo) => {
      const r = await topo.netns("r");
      const lan = await topo.netns("lan");
      const wan = await topo.netns("wan");
      const dir = topo.tempDir();
      const log = `${dir}/dnsmasq.log`;
      const pcap = `${dir}/wan.pcap`;
      const tapir = await startTapir({ config, ns: r, topo });
      await moveTapToNs(LAN_TAP, r, lan, { address: "192.0.2.10/24" });
      await lan.ip("route", "add", "default", "via", "192.0.2.1");
      await moveTapToNs(WAN_TAP, r, wan, { address: "198.51.100.53/24" });
      // Everything to or from port 53 on the WAN side, until stopped by its PID below
      // (killed by cleanup() if a step failed first). -Z root: it writes into our 0700 dir.
      const tcpdump = wan.spawn([
        "tcpdump",
        "-i",
        WAN_TAP,
        "-n",
        "-U",
        // Each packet handed over at once, not a ring block later (SIGTERM would lose them).
        "--immediate-mode",
        "-Z",
        "root",
        "-w",
        pcap,
        "port 53",
      ]);
      await waitFor("tcpdump to open its capture", () => {
        try {
          return Deno.statSync(pcap).size >= 24;
        } catch {
          return false;
        }
      }, 10_000);
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
        "dig +noedns +ignore: TC and no records from tapir, which asked dnsmasq again over TCP",
        async () => {
          const a = await dig(lan, ["+noedns", "+ignore", "big.example.test", "TXT"]);
          assert.equal(a.status, "NOERROR", a.text);
          assert.ok(a.flags.includes("tc"), `tc flag: ${a.text}`);
          assert.deepEqual(a.answer, [], a.text);
          assert.ok(a.size <= 512, a.text);
          await waitFor("dnsmasq's log of both questions", () => seen().length >= 2, 5_000);
          assert.deepEqual(seen(), [
            "query[TXT] big.example.test from 198.51.100.1",
            "query[TXT] big.example.test from 198.51.100.1",
          ]);
          const s = await dnsStats(tapir);
          assert.equal(s.tcRetries, 1);
          assert.equal(s.truncatedAnswers, 1);
          assert.equal(s.tcpForwarded, 1);
          assert.equal(s.tcRetryFailed, 0);
        },
      );

      await t.step(
        "dig +noedns: its own retry over TCP gets every string, from tapir's cache",
        async () => {
          const before = seen().length;
          const a = await dig(lan, ["+noedns", "big.example.test", "TXT"]);
          assert.ok(a.retriedTcp, `dig retried over TCP: ${a.text}`);
          assert.equal(a.status, "NOERROR", a.text);
          assert.ok(!a.flags.includes("tc"), a.text);
          assert.deepEqual(a.txt, BIG, a.text);
          assert.ok(a.size > 1000, a.text);
          await settle();
          assert.equal(seen().length, before, `from the cache: ${seen().join("\n")}`);
          const s = await dnsStats(tapir);
          assert.equal(s.tcpConnectionsAccepted, 1);
          assert.equal(s.tcpQueriesReceived, 1);
          assert.equal(s.cacheHits, 2, "the UDP try and the TCP one");
        },
      );

      await t.step(
        "+bufsize=1232 takes it whole over UDP; +bufsize=512 gets TC with the OPT",
        async () => {
          const whole = await dig(lan, ["+bufsize=1232", "+ignore", "big.example.test", "TXT"]);
          assert.ok(!whole.flags.includes("tc"), whole.text);
          assert.ok(!whole.retriedTcp, whole.text);
          assert.deepEqual(whole.txt, BIG, whole.text);
          const cut = await dig(lan, ["+bufsize=512", "+ignore", "big.example.test", "TXT"]);
          assert.ok(cut.flags.includes("tc"), cut.text);
          assert.deepEqual(cut.answer, [], cut.text);
          assert.match(cut.text, /OPT PSEUDOSECTION/, "the OPT record stays (RFC 6891 §7)");
        },
      );

      await t.step(
        "dig +tcp +keepopen: three questions on one connection; huge goes upstream over TCP",
        async () => {
          const s0 = await dnsStats(tapir);
          const before = seen().length;
          const r = await lan.exec([
            "dig",
            "@192.0.2.1",
            "+tcp",
            "+keepopen",
            "+time=3",
            "+tries=1",
            "nas.lan",
            "A",
            "huge.example.test",
            "TXT",
            "www.example.test",
            "A",
          ], { check: false, timeoutMs: 20_000 });
          const out = r.stdout + r.stderr;
          const parts = out.split(";; Got answer:").slice(1);
          assert.equal(parts.length, 3, out);
          const [nas, huge, www] = parts.map(parseDig);
          assert.deepEqual(nas!.answer, ["192.0.2.20"], out);
          assert.deepEqual(huge!.txt, HUGE, out);
          assert.ok(huge!.size > 2000, out);
          assert.deepEqual(www!.answer, ["203.0.113.7"], out);
          const s = await dnsStats(tapir);
          assert.equal(s.tcpConnectionsAccepted - s0.tcpConnectionsAccepted, 1, "one connection");
          assert.equal(s.tcpQueriesReceived - s0.tcpQueriesReceived, 3);
          assert.equal(s.tcpForwarded - s0.tcpForwarded, 2, "huge and www, over TCP");
          await waitFor("dnsmasq's log of huge and www", () => seen().length >= before + 2, 5_000);
          assert.deepEqual(seen().slice(before), [
            "query[TXT] huge.example.test from 198.51.100.1",
            "query[A] www.example.test from 198.51.100.1",
          ]);
        },
      );

      await t.step(
        "on the WAN wire: big went UDP then TCP; huge and www over TCP only",
        async () => {
          await settle();
          tcpdump.kill("SIGTERM");
          const dump = await tcpdump.wait(10_000);
          const qs = await capturedQueries(wan, pcap);
          const all = await wan.exec(["tshark", "-n", "-r", pcap], { timeoutMs: 20_000 });
          assert.deepEqual(qs, [
            "udp 198.51.100.1 198.51.100.53 big.example.test",
            "tcp 198.51.100.1 198.51.100.53 big.example.test",
            "tcp 198.51.100.1 198.51.100.53 huge.example.test",
            "tcp 198.51.100.1 198.51.100.53 www.example.test",
          ], `${all.stdout}\n${dump.stderr}`);
        },
      );

      dnsmasq.kill("SIGTERM");
      await dnsmasq.wait(5_000);
      const s = await tapir.stop("SIGTERM");
      assert.equal(s.code, 0, s.stderr);
    });
  },
});
