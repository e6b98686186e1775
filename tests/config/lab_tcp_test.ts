/**
 * TCP in the virtual lab: `[[lab.node.service]]` (echo, discard, chargen,
 * http on the node's own stack) and the `tcp` and `transfer` probes. The
 * keys parse with their defaults and every bad one is reported at once at
 * its path; each service and probe kind passes when the network lets it
 * and fails (with the reason) when it does not; and examples/lab.toml's
 * port forward and REJECT rule are what its probes see: without the DNAT
 * rule the forward is refused, without the REJECT rule the port connects.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ConfigErrors, type LabConfig, parseLabConfig } from "../../config/mod.ts";
import { type LabResult, runLab } from "../../config/lab_runner.ts";
import { checkCommand } from "../../cmd/check.ts";
import { chargenMismatch, fillChargen, startLabService } from "../../stack/apps/lab_services.ts";
import { drive, tcpLab } from "../stack/transport/_tcp_lab.ts";
import { formatIpAddress } from "../../stack/wire/mod.ts";

/** A client `c` and a server `s` on one link (1 ms each way); `services` go into s, `probes` at the end. */
function pair(services: string, probes: string, extra = ""): string {
  return `[lab]
duration = "60s"
[[lab.node]]
name = "c"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]
[[lab.node]]
name = "s"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.2/24", "2001:db8::2/64"]
${services}
${extra}
[[lab.link]]
a = "c:eth0"
b = "s:eth0"
delay = "1ms"
${probes}`;
}

/**
 * c ── r ── s: c on r's lan0 (the outside), s on lan1, each link 1 ms;
 * `firewall` goes into r's node table, `services` into s's.
 */
function routed(firewall: string, services: string, probes: string): string {
  return `[lab]
duration = "60s"
[[lab.node]]
name = "c"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.10/24", "2001:db8:1::10/64"]
[[lab.node.route]]
to = "0.0.0.0/0"
via = "192.0.2.1"
[[lab.node.route]]
to = "::/0"
via = "2001:db8:1::1"
[[lab.node]]
name = "r"
[lab.node.router]
forwarding = { ipv4 = true, ipv6 = true }
[[lab.node.interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
[[lab.node.interface]]
name = "lan1"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
[[lab.node.route]]
to = "203.0.113.0/24"
type = "unreachable"
${firewall}
[[lab.node]]
name = "s"
[[lab.node.interface]]
name = "eth0"
addresses = ["198.51.100.10/24", "2001:db8:2::10/64"]
[[lab.node.route]]
to = "0.0.0.0/0"
via = "198.51.100.1"
[[lab.node.route]]
to = "::/0"
via = "2001:db8:2::1"
${services}
[[lab.link]]
a = "c:eth0"
b = "r:lan0"
delay = "1ms"
[[lab.link]]
a = "r:lan1"
b = "s:eth0"
delay = "1ms"
${probes}`;
}

/** A probe from `from`; at 3 s unless `body` says when (IPv6 sources finish DAD first). */
function probe(from: string, body: string): string {
  const when = /^at = /m.test(body) ? "" : `at = "3s"\n`;
  return `[[lab.probe]]\nfrom = "${from}"\n${when}${body}\n`;
}

function errorsOf(text: string): [string, string][] {
  try {
    parseLabConfig(text, "tcp.toml");
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => [x.path, x.message]);
    throw e;
  }
  assert.fail("expected ConfigErrors");
}

/** Each outcome's pass flag and failure reason, in file order of the probes. */
function verdicts(r: LabResult & { lab: LabConfig }): [boolean, string][] {
  return r.lab.probes.map((p) => {
    const o = r.outcomes.find((x) => x.probe === p)!;
    return [o.passed, o.reason];
  });
}

async function run(text: string): Promise<LabResult & { lab: LabConfig }> {
  const lab = parseLabConfig(text, "tcp.toml");
  return { ...await runLab(lab, { virtualTime: true }), lab };
}

const sha256 = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");

Deno.test("chargen pattern: RFC 864 lines of 72 characters, each one further along, CR LF", () => {
  const b = new Uint8Array(74 * 96);
  fillChargen(b, 0);
  const text = new TextDecoder().decode(b);
  const lines = text.split("\r\n");
  assert.equal(
    lines[0],
    Array.from({ length: 72 }, (_, j) => String.fromCharCode(32 + j)).join(""),
  );
  assert.equal(lines[1]!.slice(0, 3), `!"#`);
  assert.equal(lines[94]!.slice(0, 2), "~ ", "line 94 starts at the last printable and wraps");
  assert.equal(lines[95], lines[0], "the pattern repeats after 95 lines");
  // Any offset continues the same stream; a changed byte is found where it is.
  const mid = new Uint8Array(1000);
  fillChargen(mid, 7000);
  assert.deepEqual(mid.subarray(0, 30), b.subarray(7000, 7030));
  assert.equal(chargenMismatch(mid, 7000), -1);
  mid[123]! ^= 1;
  assert.equal(chargenMismatch(mid, 7000), 123);
  assert.equal(chargenMismatch(b.subarray(1), 0), 0);
});

Deno.test("[[lab.node.service]] and tcp/transfer probes: defaults", () => {
  const lab = parseLabConfig(pair(
    `[[lab.node.service]]
type = "echo"
udp = true
[[lab.node.service]]
type = "discard"
address = "2001:db8::2"
[[lab.node.service]]
type = "chargen"
bytes = 5000
[[lab.node.service]]
type = "http"
[[lab.node.service]]
type = "http"
port = 8080
body = "hello\\n"
address = "0.0.0.0"`,
    probe("c", `tcp = "192.0.2.2"\nport = 7`) +
      probe("c", `transfer = "192.0.2.2"\nport = 7`) +
      probe("c", `transfer = "192.0.2.2"\nservice = "discard"\nbytes = 10`) +
      probe("c", `transfer = "192.0.2.2"\nservice = "chargen"`) +
      probe("c", `transfer = "2001:db8::2"\nport = 8080\nservice = "http"\nexpect_status = 200`) +
      probe("c", `tcp = "192.0.2.2"\nport = 1\nexpect = "refused"\ntimeout = "1s"`),
  ));
  const sv = lab.nodes[1]!.services;
  assert.deepEqual(
    sv.map((s) => [s.type, s.port, s.address && formatIpAddress(s.address), s.udp]),
    [
      ["echo", 7, null, true],
      ["discard", 9, "2001:db8::2", false],
      ["chargen", 19, null, false],
      ["http", 80, null, false],
      ["http", 8080, "0.0.0.0", false],
    ],
  );
  assert.equal(sv[2]!.bytes, 5000);
  assert.equal(sv[3]!.bodyBytes, 1024);
  assert.equal(sv[3]!.body, undefined);
  assert.equal(sv[4]!.body, "hello\n");
  assert.deepEqual(lab.nodes[0]!.services, []);
  const p = lab.probes;
  assert.deepEqual(p.map((x) => [x.kind, x.port, x.expect, x.timeout]), [
    ["tcp", 7, "connected", 2000],
    ["transfer", 7, "complete", 10_000],
    ["transfer", 9, "complete", 10_000],
    ["transfer", 19, "complete", 10_000],
    ["transfer", 8080, "complete", 10_000],
    ["tcp", 1, "refused", 1000],
  ]);
  assert.equal(p[0]!.transfer, undefined);
  // The service follows from the port (7) or the port from the service; echo sends 64 KiB and wants them back.
  assert.deepEqual(p[1]!.transfer, {
    service: "echo",
    bytes: 65536,
    expectBytes: 65536,
    expectStatus: 200,
  });
  assert.deepEqual(p[2]!.transfer, {
    service: "discard",
    bytes: 10,
    expectBytes: 0,
    expectStatus: 200,
  });
  assert.deepEqual(p[3]!.transfer, { service: "chargen", expectStatus: 200 });
  assert.deepEqual(p[4]!.transfer, { service: "http", expectStatus: 200 });
});

Deno.test("[[lab.node.service]] and tcp/transfer probes: every bad key at once, at its path", () => {
  const errs = errorsOf(pair(
    `[[lab.node.service]]
type = "gopher"
[[lab.node.service]]
port = 70
[[lab.node.service]]
type = "chargen"
udp = true
body = "x"
[[lab.node.service]]
type = "http"
port = 0
bytes = 10
body = "x"
body_bytes = 10
address = "192.0.2.99"
[[lab.node.service]]
type = "echo"
address = "2001:db8::2"
[[lab.node.service]]
type = "discard"
port = 7
[[lab.node.service]]
type = "http"
colour = "blue"`,
    probe("c", `tcp = "192.0.2.2"`) +
      probe("c", `tcp = "192.0.2.2"\nport = 7\nexpect = "reachable"\ncount = 2\nbytes = 5`) +
      probe("c", `transfer = "192.0.2.2"\nport = 8080`) +
      probe("c", `transfer = "192.0.2.2"`) +
      probe(
        "c",
        `transfer = "192.0.2.2"\nservice = "http"\nbytes = 10\nexpect_sha256 = "abc"\nexpect = "connected"`,
      ) +
      probe("c", `transfer = "192.0.2.2"\nservice = "echo"\nexpect_status = 404\nsize = 100`) +
      probe("c", `ping = "192.0.2.2"\nservice = "echo"\nport = 7`) +
      probe("c", `tcp = "192.0.2.2"\nudp = "192.0.2.2"\nport = 7`),
  ));
  assert.deepEqual(errs, [
    [
      "lab.node[1].service[0].type",
      '"gopher" is not one of "echo", "discard", "chargen", "http"',
    ],
    [
      "lab.node[1].service[1].type",
      '"type" is required: one of "echo", "discard", "chargen", "http"',
    ],
    ["lab.node[1].service[2].udp", "udp is for echo and discard services"],
    ["lab.node[1].service[2].body", "body is for http services"],
    ["lab.node[1].service[3].port", "0 is out of range (1 to 65535)"],
    ["lab.node[1].service[3].bytes", "bytes is for chargen services (http: body or body_bytes)"],
    [
      "lab.node[1].service[3].body_bytes",
      "give body (a text) or body_bytes (a pattern), not both",
    ],
    [
      "lab.node[1].service[3].address",
      "192.0.2.99 is not a static address of this node (it has 192.0.2.2, 2001:db8::2)",
    ],
    ["lab.node[1].service[5].port", "TCP port 7 is already served by lab.node[1].service[4]"],
    ["lab.node[1].service[6].colour", 'unknown key "colour"'],
    ["lab.probe[0].tcp", 'a tcp probe needs "port = N"'],
    [
      "lab.probe[1].expect",
      '"reachable" is not one of "connected", "refused", "reset", "timeout", "unreachable" (did you mean "unreachable"?)',
    ],
    ["lab.probe[1].count", '"count" is not for tcp probes'],
    ["lab.probe[1].bytes", '"bytes" is for transfer probes'],
    [
      "lab.probe[2].service",
      `port 8080 is no service's own: say which it is (service = "echo" | "discard" | "chargen" | "http")`,
    ],
    ["lab.probe[3].transfer", 'a transfer probe needs "service = ..." or "port = N"'],
    ["lab.probe[4].bytes", "bytes is not for http (the response gives its length)"],
    ["lab.probe[4].expect_sha256", "expected 64 hex digits (sha256sum's output)"],
    [
      "lab.probe[4].expect",
      '"connected" is not one of "complete", "refused", "reset", "timeout", "unreachable"',
    ],
    ["lab.probe[5].expect_status", "expect_status is for http transfers"],
    ["lab.probe[5].size", '"size" is not for transfer probes'],
    ["lab.probe[6].service", '"service" is for transfer probes'],
    ["lab.probe[6].port", "port is for udp, tcp and transfer probes"],
    [
      "lab.probe[7].tcp",
      'a probe has exactly one of "ping", "traceroute", "udp", "tcp", "transfer" and "lease"',
    ],
  ]);
});

Deno.test("tapir check reports bad service and probe keys with file, line and key path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir-labtcp-" });
  const { log, error } = console;
  const out: string[] = [], err: string[] = [];
  try {
    const bad = `${dir}/bad_lab.toml`;
    await Deno.writeTextFile(
      bad,
      pair(
        `[[lab.node.service]]\ntype = "http"\nbody_bytes = -1`,
        probe("c", `transfer = "192.0.2.2"\nport = 80\nexpect = "done"`),
      ),
    );
    console.log = (...a: unknown[]) => out.push(a.join(" "));
    console.error = (...a: unknown[]) => err.push(a.join(" "));
    assert.equal(await checkCommand([bad], {}), 1);
    console.log = log;
    console.error = error;
    assert.deepEqual(err, [
      `${bad}:15:1: lab.node[1].service[0].body_bytes: -1 is out of range (0 to 1073741824)`,
      `${bad}:26:1: lab.probe[0].expect: "done" is not one of "complete", "refused", "reset", "timeout", "unreachable"`,
      `${bad}: 2 errors`,
    ]);
  } finally {
    console.log = log;
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
});

const ALL_SERVICES = `[[lab.node.service]]
type = "echo"
udp = true
[[lab.node.service]]
type = "discard"
udp = true
[[lab.node.service]]
type = "chargen"
[[lab.node.service]]
type = "chargen"
port = 1919
bytes = 5000
[[lab.node.service]]
type = "http"
body_bytes = 300000
[[lab.node.service]]
type = "http"
port = 8080
body = "hello, lab\\n"`;

Deno.test("lab services: each service and transfer probe passes, both families, and the services count what they did", async () => {
  const text = pair(
    ALL_SERVICES,
    probe("c", `transfer = "192.0.2.2"\nport = 7\nbytes = 500000`) +
      probe("c", `transfer = "2001:db8::2"\nport = 7\nbytes = 300000`) +
      probe("c", `transfer = "2001:db8::2"\nport = 9\nbytes = 1000000`) +
      probe("c", `transfer = "192.0.2.2"\nport = 19\nbytes = 250000`) +
      probe("c", `transfer = "192.0.2.2"\nport = 1919\nservice = "chargen"\nexpect_bytes = 5000`) +
      probe("c", `transfer = "2001:db8::2"\nport = 80`) +
      probe(
        "c",
        `transfer = "192.0.2.2"\nport = 8080\nservice = "http"\nexpect_sha256 = "${
          sha256("hello, lab\n")
        }"`,
      ) +
      probe("c", `tcp = "2001:db8::2"\nport = 80`) +
      // UDP echo and discard answer no ICMP error: the udp probe sees silence.
      probe("c", `udp = "192.0.2.2"\nport = 7\nexpect = "timeout"\ncount = 2\ninterval = "10ms"`) +
      probe("c", `udp = "192.0.2.2"\nport = 9\nexpect = "timeout"\ncount = 1`),
  );
  const r = await run(text);
  assert.deepEqual(verdicts(r), Array(10).fill([true, ""]));
  const lines = (port: number) =>
    r.outcomes.find((o) => o.probe.kind === "transfer" && o.probe.port === port)!.lines.join("\n");
  assert.match(lines(1919), /received 5000 bytes/);
  assert.match(lines(80), /HTTP 200, .*received 300000 bytes/);
  assert.match(lines(80), new RegExp(`sha256 ${sha256(patternOf(300000))}`));
  const [echo, discard, chargen, chargen5k, http, http8080] = r.services.get("s")!.map((s) =>
    s.stats
  );
  assert.equal(echo!.connections, 2);
  assert.equal(
    echo!.bytesReceived,
    500000 + 300000 + 64,
    "two transfers and two 32-byte datagrams",
  );
  assert.equal(echo!.bytesSent, 500000 + 300000 + 64);
  assert.equal(echo!.datagrams, 2);
  assert.equal(discard!.bytesReceived, 1000000 + 32);
  assert.equal(discard!.bytesSent, 0);
  assert.equal(chargen!.connections, 1);
  assert.ok(chargen!.bytesSent >= 250000, `chargen sent ${chargen!.bytesSent}`);
  assert.equal(chargen5k!.bytesSent, 5000);
  assert.equal(http!.requests, 1, "one GET; the tcp probe's connection sent no request");
  assert.equal(http!.connections, 2);
  assert.equal(http8080!.requests, 1);
  assert.equal(http!.badRequests + http8080!.badRequests, 0);
  // The services closed with their stacks.
  assert.equal(r.stacks.get("s")!.services.size, 0);
});

Deno.test("lab services: transfer and tcp probes fail, with the reason, when what arrives is not what was expected", async () => {
  const text = pair(
    ALL_SERVICES,
    probe("c", `transfer = "192.0.2.2"\nport = 7\nbytes = 1000\nexpect_bytes = 999`) +
      probe("c", `transfer = "192.0.2.2"\nport = 1919\nservice = "chargen"\nexpect_bytes = 6000`) +
      probe(
        "c",
        `transfer = "192.0.2.2"\nport = 19\nbytes = 100\nexpect_sha256 = "${"0".repeat(64)}"`,
      ) +
      // A text body is not the pattern: without expect_sha256 the probe says where they part.
      probe("c", `transfer = "192.0.2.2"\nport = 8080\nservice = "http"`) +
      probe("c", `transfer = "192.0.2.2"\nport = 80\nexpect_status = 404`) +
      probe("c", `tcp = "192.0.2.2"\nport = 7\nexpect = "refused"`) +
      probe("c", `tcp = "192.0.2.2"\nport = 8\nexpect = "connected"`) +
      probe("c", `transfer = "192.0.2.2"\nport = 8\nservice = "echo"`) +
      // A service that is there, expected to be refused: the transfer completes instead.
      probe("c", `transfer = "192.0.2.2"\nport = 9\nexpect = "refused"`),
  );
  const r = await run(text);
  assert.deepEqual(verdicts(r), [
    [false, "expected 999 bytes back, received 1000"],
    [false, "expected 6000 bytes back, received 5000"],
    [false, `expected sha256 ${"0".repeat(64)}, received ${sha256(patternOf(100))}`],
    [false, "the received bytes differ from the chargen pattern at offset 0"],
    [false, "expected HTTP status 404, saw 200"],
    [false, "expected refused, saw connected"],
    [false, "expected connected, saw refused (Connection refused)"],
    [false, "expected complete, saw refused (Connection refused)"],
    [false, "expected refused, saw complete"],
  ]);
  assert.equal(r.failed, 9);
});

function patternOf(n: number): Uint8Array {
  const b = new Uint8Array(n);
  fillChargen(b, 0);
  return b;
}

Deno.test("tcp probes through a router: connected, refused (reset), reset after the handshake, timeout (DROP), unreachable (ICMP)", async () => {
  const fw = `[lab.node.firewall.filter]
forward = { policy = "accept", rules = [
  "-p tcp --dport 19 -j DROP",
  "-p tcp --dport 9 -j REJECT --reject-with tcp-reset",
  # The SYN passes, the handshake's last ACK is answered with a reset.
  "-p tcp --dport 7 ! --syn -j REJECT --reject-with tcp-reset",
  "-p tcp --dport 8080 -j REJECT --reject-with icmp-host-unreachable",
] }`;
  const services = `[[lab.node.service]]
type = "http"
[[lab.node.service]]
type = "echo"
[[lab.node.service]]
type = "discard"
[[lab.node.service]]
type = "chargen"
[[lab.node.service]]
type = "http"
port = 8080`;
  const cases: [string, string][] = [
    [`tcp = "198.51.100.10"\nport = 80`, "connected"],
    [`tcp = "2001:db8:2::10"\nport = 80`, "connected"],
    [`tcp = "198.51.100.10"\nport = 9`, "refused"],
    [`tcp = "2001:db8:2::10"\nport = 9`, "refused"],
    [`tcp = "198.51.100.10"\nport = 7`, "reset"],
    [`tcp = "2001:db8:2::10"\nport = 7`, "reset"],
    // More than the send buffer holds: the write is still waiting when the reset comes.
    [`transfer = "198.51.100.10"\nport = 7\nbytes = 5000000`, "reset"],
    [`tcp = "198.51.100.10"\nport = 19`, "timeout"],
    [`transfer = "2001:db8:2::10"\nport = 19\nbytes = 10\ntimeout = "3s"`, "timeout"],
    [`tcp = "198.51.100.10"\nport = 8080`, "unreachable"],
    [`tcp = "203.0.113.5"\nport = 80`, "unreachable"],
    // No service on the port: the server's own reset.
    [`tcp = "198.51.100.10"\nport = 81`, "refused"],
  ];
  const probes = cases.map(([p, e]) => probe("c", `${p}\nexpect = "${e}"`)).join("");
  const r = await run(routed(fw, services, probes));
  for (const o of r.outcomes) {
    assert.ok(o.passed, `${o.probe.kind} port ${o.probe.port}: ${o.reason}\n${o.lines.join("\n")}`);
  }
  assert.equal(r.passed, cases.length);
  // The same probes without the firewall: every port but 81 answers (203.0.113.5 stays unreachable).
  const open = await run(routed("", services, probes));
  const changed = open.outcomes.filter((o) => !o.passed).map((o) =>
    `${o.probe.kind} ${formatIpAddress(o.probe.target!)} ${o.probe.port}: ${o.reason}`
  ).sort();
  assert.deepEqual(changed, [
    "tcp 198.51.100.10 19: expected timeout, saw connected",
    "tcp 198.51.100.10 7: expected reset, saw connected",
    "tcp 198.51.100.10 8080: expected unreachable, saw connected",
    "tcp 198.51.100.10 9: expected refused, saw connected",
    "tcp 2001:db8:2::10 7: expected reset, saw connected",
    "tcp 2001:db8:2::10 9: expected refused, saw connected",
    "transfer 198.51.100.10 7: expected reset, saw complete",
    "transfer 2001:db8:2::10 19: expected timeout, saw complete",
  ]);
});

const example = await Deno.readTextFile(new URL("../../examples/lab.toml", import.meta.url));

Deno.test("examples/lab.toml: the DNAT port forward is reached, the REJECTed port refused, every expectation holds", async () => {
  const r = await run(example);
  assert.equal(r.failed, 0, r.outcomes.filter((o) => !o.passed).map((o) => o.reason).join("\n"));
  const tcp = r.outcomes.filter((o) => o.probe.kind === "tcp" || o.probe.kind === "transfer");
  assert.equal(tcp.length, 6);
  const http = r.services.get("h2")![0]!;
  assert.equal(http.type, "http");
  assert.equal(http.stats.requests, 1, "the forwarded GET reached h2's http service");
  assert.equal(http.stats.connections, 2, "and so did the tcp probe's connection");
  // r1 itself answered h1's SYNs to port 9 (the REJECT rule): only h3's reached h2.
  assert.equal(r.services.get("h2")![2]!.stats.connections, 1);
});

Deno.test("examples/lab.toml without its DNAT rule: the forward is refused; without its REJECT rule: port 9 connects", async () => {
  const dnat = /^prerouting = \{ rules = \["-i lan0 -d 192\.0\.2\.1 .*$/m;
  const reject = /^forward = \{ policy = "accept", rules = \["-i lan0 -p tcp --dport 9 .*$/m;
  assert.match(example, dnat);
  assert.match(example, reject);
  const noDnat = await run(example.replace(dnat, "prerouting = { rules = [] }"));
  assert.deepEqual(
    noDnat.outcomes.filter((o) => !o.passed).map((o) => `${o.probe.kind}: ${o.reason}`).sort(),
    [
      "tcp: expected connected, saw refused (Connection refused)",
      "transfer: expected complete, saw refused (Connection refused)",
    ],
  );
  const noReject = await run(example.replace(reject, `forward = { policy = "accept" }`));
  assert.deepEqual(
    noReject.outcomes.filter((o) => !o.passed).map((o) => `${o.probe.kind}: ${o.reason}`),
    ["tcp: expected refused, saw connected", "tcp: expected refused, saw connected"],
  );
});

Deno.test("SACK blocks never push a segment past the MTU: echo over 1 % loss, both families, nothing too big or fragmented", async () => {
  // Echo makes both ends send full-size data while holding out-of-order data:
  // SACK blocks on a full segment used to take it up to 28 bytes past the MTU
  // (IPv4 with DF: dropped as outputTooBig, 1.47 M times here; IPv6: fragmented).
  const text = pair(
    ALL_SERVICES,
    probe("c", `transfer = "192.0.2.2"\nport = 7\nbytes = 2000000\ntimeout = "30s"`) +
      probe("c", `at = "4s"\ntransfer = "2001:db8::2"\nport = 7\nbytes = 2000000\ntimeout = "30s"`),
    "",
  ).replace(`delay = "1ms"`, `delay = "1ms"\n[lab.link.faults]\nloss = "1%"\nseed = 3`);
  const r = await run(text);
  assert.deepEqual(verdicts(r), [[true, ""], [true, ""]]);
  for (const name of ["c", "s"]) {
    const st = r.stacks.get(name)!.stats;
    assert.ok(st.tcp.outOfOrderQueued > 0 && st.tcp.sackRecoveries > 0, `${name}: SACK at work`);
    assert.equal(st.ipv4.outputTooBig, 0, name);
    assert.equal(st.ipv6.fragmentsCreated, 0, name);
    assert.equal(st.tcp.sendFailed, 0, name);
  }
  assert.ok(r.links[0]![0].stats.faultLossDrops > 0 && r.links[0]![1].stats.faultLossDrops > 0);
});

/** Send `request` to b's port 80 from a, shut the write side, and read everything until the server closes. */
async function httpExchange(request: string | Uint8Array): Promise<string> {
  const lab = tcpLab();
  const sv = startLabService(lab.b, { type: "http", body: new TextEncoder().encode("body!") });
  try {
    return await drive(
      lab.clock,
      (async () => {
        const conn = await lab.a.connect({ hostname: "192.0.2.2", port: 80 });
        const bytes = typeof request === "string" ? new TextEncoder().encode(request) : request;
        for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
        await conn.closeWrite();
        const chunks: Uint8Array[] = [];
        const buf = new Uint8Array(65536);
        for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
        conn.close();
        const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
        chunks.reduce((o, c) => (all.set(c, o), o + c.length), 0);
        return new TextDecoder().decode(all) +
          `|requests=${sv.stats.requests} bad=${sv.stats.badRequests}`;
      })(),
      30_000,
    );
  } finally {
    sv.close();
    lab.close();
  }
}

Deno.test("the lab's http service: persistent and pipelined requests, HEAD, HTTP/1.0, and each error status", async (t) => {
  const ok = (extra = "") =>
    `HTTP/1.1 200 OK\r\nServer: tapir\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n${extra}\r\n`;
  const err = (status: string, extra = "") =>
    `HTTP/1.1 ${status}\r\nServer: tapir\r\nContent-Length: 0\r\n${extra}Connection: close\r\n\r\n`;
  const cases: [string, string | Uint8Array, string][] = [
    [
      "two requests on one connection (pipelined), then the client closes",
      "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nhost: a\r\n\r\n",
      `${ok()}body!${ok()}body!|requests=2 bad=0`,
    ],
    [
      "Connection: close ends it after the response (what follows is not answered)",
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
      `${ok("Connection: close\r\n")}body!|requests=1 bad=0`,
    ],
    [
      "HEAD: the head only, with the body's length",
      "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
      `${ok()}|requests=1 bad=0`,
    ],
    [
      "HTTP/1.0 closes unless keep-alive",
      "GET / HTTP/1.0\r\n\r\n",
      `${ok("Connection: close\r\n")}body!|requests=1 bad=0`,
    ],
    [
      "POST: 405 with Allow, its body skipped, the next request served",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
      `HTTP/1.1 405 Method Not Allowed\r\nServer: tapir\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n\r\n${ok()}body!|requests=1 bad=1`,
    ],
    [
      "HTTP/1.1 without Host: 400 (RFC 9112 §3.2)",
      "GET / HTTP/1.1\r\n\r\n",
      `${err("400 Bad Request")}|requests=0 bad=1`,
    ],
    [
      "a space before the colon: 400 (RFC 9112 §5.1)",
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
      `${err("400 Bad Request")}|requests=0 bad=1`,
    ],
    ["not HTTP: 400", "hello there\r\n\r\n", `${err("400 Bad Request")}|requests=0 bad=1`],
    [
      "HTTP/2.0 in an HTTP/1 request line: 505",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      `${err("505 HTTP Version Not Supported")}|requests=0 bad=1`,
    ],
    [
      "a transfer coding: 501",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      `${err("501 Not Implemented")}|requests=0 bad=1`,
    ],
    [
      "a head of more than 16 KiB: 431",
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"x".repeat(20_000)}\r\n\r\n`,
      `${err("431 Request Header Fields Too Large")}|requests=0 bad=1`,
    ],
  ];
  for (const [name, request, want] of cases) {
    await t.step(name, async () => assert.equal(await httpExchange(request), want));
  }
});
