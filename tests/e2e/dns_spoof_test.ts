/**
 * DNS forwarder e2e against a hostile and a DNSSEC-signing upstream:
 * `tapir run` with `[dns]` on lan0, `dig` in a LAN namespace, and in the
 * WAN namespace a small Python upstream (tests/e2e/fixtures/
 * dns_slow_upstream.py: answers after a delay, logs every query with its
 * ID, source port and DO bit) and, for the first test, a scapy attacker
 * (tests/e2e/fixtures/dns_spoofer.py):
 *
 *   lan 192.0.2.10/24 ── lan0 192.0.2.1  tapir  wan0 198.51.100.1 ── wan 198.51.100.53 (upstream)
 *                                                                     198.51.100.66 (attacker's other source)
 *
 * Spoofing (RFC 5452): while tapir's forwarded query waits for the slow
 * upstream, four forged answers (A 6.6.6.6) race it — wrong ID, wrong
 * question, from port 5353, from another address. The client gets the
 * upstream's 203.0.113.7; the two that reach the query's socket (wrong ID,
 * wrong question) are counted in `show dns` stats.spoofDropped, the two the
 * socket never takes (it is connected to the server's address and port 53)
 * in the UDP layer's unknownPortReceived; the cached answer is the real one.
 *
 * DNSSEC pass-through: a DO query reaches the upstream with DO set, and
 * its A + RRSIG answer reaches the client byte for byte (dig's text and
 * the reply captured in the LAN namespace), from the cache too.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  requireRoot,
  requireTool,
  run,
  type RunResult,
  startTapir,
  type Tapir,
  TAPIR_PERMS,
  type Topology,
  waitFor,
  withTopology,
} from "./harness.ts";

const PYTHON = "/usr/bin/python3";
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const id = String(Deno.pid % 100000);
const UPSTREAM = "198.51.100.53";
/** The attacker's second address in the WAN namespace (forgery d). */
const OTHER_SOURCE = "198.51.100.66";
const TAPIR_WAN = "198.51.100.1";
/** How long the upstream holds each answer back, ms: the window the forgeries race in. */
const DELAY_MS = 800;

function config(lanTap: string, wanTap: string): string {
  return `
[router]
hostname = "e2e-dns-spoof"
forwarding = true

[[interface]]
name = "lan0"
tap = "${lanTap}"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "wan0"
tap = "${wanTap}"
addresses = ["${TAPIR_WAN}/24"]

[dns]
interfaces = ["lan0"]
servers = ["${UPSTREAM}"]
cache_size = 150
`;
}

// ------------------------------------------------------------ RRSIG fixture

/** 2030-01-01T00:00:00Z and 2024-01-01T00:00:00Z: the signature's validity. */
const SIG_EXPIRATION = 1893456000, SIG_INCEPTION = 1704067200;
const KEY_TAG = 4242;
/** 64 bytes, as an ECDSA P-256 signature (algorithm 13) is; arbitrary. */
const SIGNATURE = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);

/** The RRSIG RDATA (RFC 4034 §3.1) the upstream sends for signed.example.test A. */
function rrsigRdata(): Uint8Array {
  const signer = [
    7,
    ...new TextEncoder().encode("example"),
    4,
    ...new TextEncoder().encode("test"),
    0,
  ];
  const out = new Uint8Array(18 + signer.length + SIGNATURE.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 1); // type covered: A
  v.setUint8(2, 13); // algorithm: ECDSAP256SHA256
  v.setUint8(3, 3); // labels: signed.example.test
  v.setUint32(4, 300); // original TTL
  v.setUint32(8, SIG_EXPIRATION);
  v.setUint32(12, SIG_INCEPTION);
  v.setUint16(16, KEY_TAG);
  out.set(signer, 18);
  out.set(SIGNATURE, 18 + signer.length);
  return out;
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const RRSIG_HEX = hex(rrsigRdata());
/** dig's presentation form of that RDATA (RFC 4034 §3.2). */
const RRSIG_TEXT = `A 13 3 300 20300101000000 20240101000000 ${KEY_TAG} example.test. ` +
  btoa(String.fromCharCode(...SIGNATURE));

// ------------------------------------------------------------ helpers

/** One record of dig's answer section. */
interface Rr {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

interface Dig {
  status: string;
  answer: Rr[];
  /** The flags of dig's "; EDNS:" line ("do" when the answer's OPT has DO). */
  ednsFlags: string[];
  text: string;
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

function parseDig(r: RunResult): Dig {
  const text = r.stdout + r.stderr;
  const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? `none (dig exit ${r.code})`;
  const ednsFlags = (/; EDNS: version: \d+, flags:([a-z ]*);/.exec(text)?.[1] ?? "").trim()
    .split(/\s+/).filter((f) => f !== "");
  const answer = section(text, "ANSWER").map((l) => {
    const [name, ttl, , type, ...data] = l.split(/\s+/);
    return { name: name!, ttl: Number(ttl), type: type!, data: data.join(" ") };
  });
  return { status, answer, ednsFlags, text };
}

/** `dig @192.0.2.1 ARGS +time=5 +tries=1` from the LAN host. */
async function dig(lan: Netns, args: string[]): Promise<Dig> {
  const r = await lan.exec(
    ["dig", "@192.0.2.1", ...args, "+time=5", "+tries=1"],
    { check: false, timeoutMs: 12_000 },
  );
  return parseDig(r);
}

/** What the upstream logged (dns_slow_upstream.py): one object per line. */
interface UpstreamEvent {
  event: "ready" | "query" | "answer" | "malformed";
  name?: string;
  type?: number;
  id?: number;
  port?: number;
  src?: string;
  do?: boolean;
  t?: number;
  hex?: string;
  rrsig?: string | null;
}

function upstreamLog(path: string): UpstreamEvent[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    // Not written yet.
  }
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as UpstreamEvent);
}

/** What `tapir show dns --json` prints (cmd/control.ts dnsInfo). */
interface DnsShow {
  queries: number;
  cache_hits: number;
  forwarded: number;
  stats: Record<string, number>;
}

async function showDns(tapir: Tapir): Promise<DnsShow> {
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
  return JSON.parse(r.stdout) as DnsShow;
}

async function udpUnknownPort(tapir: Tapir): Promise<number> {
  const s = await tapir.stats();
  return (s.stack.udp as Record<string, number>).unknownPortReceived!;
}

/** A log line that would appear has had time to: the upstream writes as it goes. */
const settle = () => new Promise((r) => setTimeout(r, 500));

interface Lab {
  lan: Netns;
  wan: Netns;
  tapir: Tapir;
  dir: string;
  /** The upstream's log file. */
  log: string;
  lanTap: string;
  wanTap: string;
}

/**
 * tapir in its own namespace between lan and wan, and the Python upstream
 * in wan (answering after `delayMs`), started and ready.
 */
async function lab(topo: Topology, tag: string, delayMs: number): Promise<Lab> {
  const lanTap = `t${tag}l${id}`, wanTap = `t${tag}w${id}`;
  const r = await topo.netns("r");
  const lan = await topo.netns("lan");
  const wan = await topo.netns("wan");
  const dir = topo.tempDir();
  const log = `${dir}/upstream.log`;
  const tapir = await startTapir({ config: config(lanTap, wanTap), ns: r, topo });
  await moveTapToNs(lanTap, r, lan, { address: "192.0.2.10/24" });
  await lan.ip("route", "add", "default", "via", "192.0.2.1");
  await moveTapToNs(wanTap, r, wan, { address: [`${UPSTREAM}/24`, `${OTHER_SOURCE}/24`] });
  // Killed by its PID in cleanup() (withTopology's finally).
  wan.spawn([
    PYTHON,
    `${FIXTURES}dns_slow_upstream.py`,
    UPSTREAM,
    log,
    String(delayMs),
    RRSIG_HEX,
  ]);
  await waitFor(
    "the Python upstream to bind port 53",
    () => upstreamLog(log).some((e) => e.event === "ready"),
    10_000,
  );
  return { lan, wan, tapir, dir, log, lanTap, wanTap };
}

const queriesIn = (log: string) => upstreamLog(log).filter((e) => e.event === "query");
const answersIn = (log: string) => upstreamLog(log).filter((e) => e.event === "answer");

// ------------------------------------------------------------ pcap

/** The UDP payloads of an Ethernet/IPv4 pcap file (tcpdump -w). */
function pcapUdpPayloads(b: Uint8Array): Uint8Array[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = v.getUint32(0, true);
  assert.ok(magic === 0xa1b2c3d4 || magic === 0xa1b23c4d, `pcap magic ${magic.toString(16)}`);
  assert.equal(v.getUint32(20, true), 1, "pcap link type Ethernet");
  const out: Uint8Array[] = [];
  let off = 24;
  while (off + 16 <= b.length) {
    const incl = v.getUint32(off + 8, true);
    const f = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (f.length < 14 + 20 || ((f[12]! << 8) | f[13]!) !== 0x0800) continue;
    const ihl = (f[14]! & 15) * 4;
    if (f[14 + 9] !== 17) continue;
    const u = 14 + ihl;
    const len = (f[u + 4]! << 8) | f[u + 5]!;
    out.push(f.slice(u + 8, u + len));
  }
  return out;
}

/** A DNS message's records (answer, authority, additional), parsed independently of tapir's code. */
function dnsRecords(m: Uint8Array): { type: number; ttl: number; rdata: Uint8Array }[] {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  const skipName = (o: number): number => {
    for (;;) {
      const n = m[o]!;
      if (n === 0) return o + 1;
      if ((n & 0xc0) === 0xc0) return o + 2;
      o += 1 + n;
    }
  };
  let off = 12;
  for (let i = 0; i < v.getUint16(4); i++) off = skipName(off) + 4;
  const count = v.getUint16(6) + v.getUint16(8) + v.getUint16(10);
  const out: { type: number; ttl: number; rdata: Uint8Array }[] = [];
  for (let i = 0; i < count; i++) {
    off = skipName(off);
    const type = v.getUint16(off), ttl = v.getUint32(off + 4), rdlen = v.getUint16(off + 8);
    out.push({ type, ttl, rdata: m.slice(off + 10, off + 10 + rdlen) });
    off += 10 + rdlen;
  }
  return out;
}

// ------------------------------------------------------------ tests

const SPOOF_TOOLS = ["dig", PYTHON, "scapy"];

Deno.test({
  name: "DNS e2e: forged answers racing a slow upstream are dropped (RFC 5452)",
  ignore: ignoreUnlessReady("DNS spoofing e2e", SPOOF_TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of SPOOF_TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpdsp", async (topo) => {
      const { lan, wan, tapir, dir, log, wanTap } = await lab(topo, "s", DELAY_MS);
      const ready = `${dir}/spoofer.ready`, out = `${dir}/spoofer.json`;

      await t.step(
        "the client gets the upstream's answer; the forgeries are counted, never used",
        async () => {
          // Killed by its PID in cleanup() if it is still running then.
          const spoofer = wan.spawn([
            PYTHON,
            `${FIXTURES}dns_spoofer.py`,
            wanTap,
            UPSTREAM,
            TAPIR_WAN,
            OTHER_SOURCE,
            ready,
            out,
          ]);
          await waitFor("the spoofer to listen", () => {
            try {
              Deno.statSync(ready);
              return true;
            } catch {
              return false;
            }
          }, 15_000);
          const dns0 = await showDns(tapir);
          const unknown0 = await udpUnknownPort(tapir);

          const a = await dig(lan, ["victim.example.test", "A"]);
          const sp = await spoofer.wait(10_000);
          assert.equal(sp.code, 0, `spoofer: ${sp.stdout}${sp.stderr}`);
          const forged = JSON.parse(Deno.readTextFileSync(out)) as {
            query: { name: string; id: number; sport: number } | null;
            sent: string[];
            t_sent: number;
          };
          assert.deepEqual(forged.sent, [
            "wrong-id",
            "wrong-question",
            "wrong-port",
            "wrong-source",
          ]);

          assert.equal(a.status, "NOERROR", a.text);
          assert.deepEqual(
            a.answer.map((r) => [r.name, r.type, r.data]),
            [["victim.example.test.", "A", "203.0.113.7"]],
            a.text,
          );
          assert.ok(a.answer[0]!.ttl <= 300, a.text);
          assert.ok(!a.text.includes("6.6.6.6"), a.text);

          // The query the spoofer saw is the one the upstream got, and the
          // forgeries were out before the upstream answered it.
          const qs = queriesIn(log);
          assert.equal(qs.length, 1, JSON.stringify(qs));
          assert.equal(qs[0]!.name, "victim.example.test");
          assert.equal(qs[0]!.type, 1);
          assert.equal(qs[0]!.src, TAPIR_WAN);
          assert.equal(forged.query?.name, "victim.example.test");
          assert.equal(qs[0]!.id, forged.query?.id, "the ID the spoofer sniffed");
          assert.equal(qs[0]!.port, forged.query?.sport, "the port the spoofer sniffed");
          assert.ok(
            qs[0]!.port! >= 32768 && qs[0]!.port! <= 60999,
            `an ephemeral source port: ${qs[0]!.port}`,
          );
          const ans = answersIn(log);
          assert.equal(ans.length, 1, JSON.stringify(ans));
          assert.ok(
            forged.t_sent < ans[0]!.t!,
            `forgeries sent ${((ans[0]!.t! - forged.t_sent) * 1000).toFixed(0)} ms ` +
              "before the upstream answered",
          );

          const dns1 = await showDns(tapir);
          const unknown1 = await udpUnknownPort(tapir);
          const d = (k: string) => dns1.stats[k]! - dns0.stats[k]!;
          // a (wrong ID) and b (wrong question) reach the query's socket.
          assert.equal(d("spoofDropped"), 2, JSON.stringify(dns1.stats));
          assert.equal(d("badAnswerDropped"), 0, JSON.stringify(dns1.stats));
          assert.equal(d("forwarded"), 1, JSON.stringify(dns1.stats));
          assert.equal(d("answersForwarded"), 1, JSON.stringify(dns1.stats));
          assert.equal(d("upstreamTimeouts"), 0, JSON.stringify(dns1.stats));
          // c (port 5353) and d (another address) match no socket.
          assert.equal(unknown1 - unknown0, 2, "udp.unknownPortReceived");
        },
      );

      await t.step("cached: the real answer again, the upstream not asked", async () => {
        const dns0 = await showDns(tapir);
        const before = upstreamLog(log).length;
        const a = await dig(lan, ["victim.example.test", "A"]);
        assert.equal(a.status, "NOERROR", a.text);
        assert.deepEqual(
          a.answer.map((r) => [r.name, r.type, r.data]),
          [["victim.example.test.", "A", "203.0.113.7"]],
          a.text,
        );
        assert.ok(a.answer[0]!.ttl <= 300 && a.answer[0]!.ttl > 270, a.text);
        await settle();
        assert.equal(upstreamLog(log).length, before, JSON.stringify(upstreamLog(log)));
        const dns1 = await showDns(tapir);
        assert.equal(dns1.cache_hits - dns0.cache_hits, 1);
        assert.equal(dns1.stats.spoofDropped, dns0.stats.spoofDropped);
      });

      const s = await tapir.stop("SIGTERM");
      assert.equal(s.code, 0, s.stderr);
    });
  },
});

const DNSSEC_TOOLS = ["dig", PYTHON, "tcpdump"];

Deno.test({
  name: "DNS e2e: DO reaches the upstream and its RRSIG reaches the client intact, cached too",
  ignore: ignoreUnlessReady("DNSSEC pass-through e2e", DNSSEC_TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of DNSSEC_TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpdsg", async (topo) => {
      const { lan, tapir, dir, log, lanTap } = await lab(topo, "g", 0);
      const pcap = `${dir}/lan.pcap`;
      // Two replies from tapir to the client, then it exits (killed by PID
      // in cleanup() if they never come). -Z root: it writes into our 0700 dir.
      const tcpdump = lan.spawn([
        "tcpdump",
        "-i",
        lanTap,
        "-n",
        "-U",
        "-Z",
        "root",
        "-c",
        "2",
        "-w",
        pcap,
        "udp and src host 192.0.2.1 and src port 53",
      ]);
      await waitFor("tcpdump to open its capture", () => {
        try {
          return Deno.statSync(pcap).size >= 24;
        } catch {
          return false;
        }
      }, 10_000);

      const expectRrsig = (a: Dig) => {
        assert.equal(a.status, "NOERROR", a.text);
        assert.deepEqual(
          a.answer.map((r) => [r.name, r.type, r.type === "RRSIG" ? "" : r.data]),
          [["signed.example.test.", "A", "203.0.113.8"], ["signed.example.test.", "RRSIG", ""]],
          a.text,
        );
        const sig = a.answer[1]!;
        // dig may split the base64 signature; its bytes are what matters.
        const [head, b64] = [
          sig.data.split(" ").slice(0, 8).join(" "),
          sig.data.split(" ").slice(8).join(""),
        ];
        assert.equal(`${head} ${b64}`, RRSIG_TEXT, a.text);
        assert.ok(sig.ttl <= 300 && sig.ttl > 270, a.text);
        assert.ok(a.ednsFlags.includes("do"), `DO in the answer's OPT: ${a.text}`);
      };

      await t.step("forwarded: DO upstream, A + RRSIG back as the upstream sent them", async () => {
        const a = await dig(lan, ["signed.example.test", "A", "+dnssec"]);
        expectRrsig(a);
        const qs = queriesIn(log);
        assert.equal(qs.length, 1, JSON.stringify(qs));
        assert.equal(qs[0]!.name, "signed.example.test");
        assert.equal(qs[0]!.type, 1);
        assert.equal(qs[0]!.do, true, "tapir passed the DO bit upstream");
        const ans = answersIn(log);
        assert.equal(ans.length, 1);
        assert.equal(ans[0]!.rrsig, RRSIG_HEX, "the upstream sent the fixture's RDATA");
      });

      await t.step("cached: the RRSIG again, the upstream not asked", async () => {
        const dns0 = await showDns(tapir);
        const before = upstreamLog(log).length;
        const a = await dig(lan, ["signed.example.test", "A", "+dnssec"]);
        expectRrsig(a);
        await settle();
        assert.equal(upstreamLog(log).length, before, JSON.stringify(upstreamLog(log)));
        const dns1 = await showDns(tapir);
        assert.equal(dns1.cache_hits - dns0.cache_hits, 1);
      });

      await t.step("on the wire: the RRSIG RDATA bytes are the upstream's, twice", async () => {
        const r = await tcpdump.wait(10_000);
        const replies = pcapUdpPayloads(Deno.readFileSync(pcap));
        assert.equal(replies.length, 2, `tcpdump exit ${r.code}: ${r.stderr}`);
        const sent = answersIn(log)[0]!.hex!;
        // The forwarded reply is the upstream's message but for its ID.
        assert.equal(hex(replies[0]!).slice(4), sent.slice(4), "forwarded as sent");
        for (const [i, m] of replies.entries()) {
          const rrs = dnsRecords(m);
          const sigs = rrs.filter((x) => x.type === 46);
          assert.equal(sigs.length, 1, `reply ${i}: one RRSIG`);
          assert.equal(hex(sigs[0]!.rdata), RRSIG_HEX, `reply ${i}: RRSIG RDATA`);
          const opt = rrs.find((x) => x.type === 41);
          assert.ok(opt !== undefined && (opt.ttl & 0x8000) !== 0, `reply ${i}: OPT with DO`);
        }
      });

      const s = await tapir.stop("SIGTERM");
      assert.equal(s.code, 0, s.stderr);
    });
  },
});
