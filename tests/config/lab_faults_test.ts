/**
 * `[lab.link.faults]`: the keys parse into each direction's faults (the
 * both-ways table, then a direction's own keys over it; percentages,
 * durations, tc rates, seeds), every bad key is reported at once at its
 * path (by the parser and by `tapir check`), and the lab runner puts the
 * faults on its links: a ping probe still passes through 20 % loss, fails
 * at 100 %, and a PMTU black hole turns "frag-needed" into silence.
 */
import assert from "node:assert/strict";
import { ConfigErrors, type LabConfig, parseLabConfig } from "../../config/mod.ts";
import { runLab } from "../../config/lab_runner.ts";
import { checkCommand } from "../../cmd/check.ts";

/** Two hosts on one link, the link's table and faults tables given as TOML text. */
function lab(linkExtra: string, probes = ""): string {
  return `[lab]
duration = "60s"
[[lab.node]]
name = "h1"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.1/24"]
[[lab.node]]
name = "h2"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.2/24"]
[[lab.link]]
a = "h1:eth0"
b = "h2:eth0"
${linkExtra}
${probes}`;
}

function errorsOf(text: string): [string, string][] {
  try {
    parseLabConfig(text, "faults.toml");
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => [x.path, x.message]);
    throw e;
  }
  assert.fail("expected ConfigErrors");
}

Deno.test("[lab.link.faults]: both ways, a direction's keys over them, units converted", () => {
  const l: LabConfig = parseLabConfig(lab(`
[lab.link.faults]
loss = "2%"
delay = "10ms"
jitter = "2ms"
duplicate = "0.5%"
corrupt = "0.1%"
reorder = "25%"
reorder_delay = "3ms"
seed = 7
[lab.link.faults.a_to_b]
rate = "10mbit"
queue = 100
queue_bytes = 150000
loss = "0%"
[lab.link.faults.b_to_a]
loss_burst = { p = "1%", r = "30%", loss_bad = "80%", loss_good = "0.1%" }
pmtu_blackhole = true
seed = 99
`));
  const common = {
    loss: 0.02,
    delayMs: 10,
    jitterMs: 2,
    duplicate: 0.005,
    corrupt: 0.001,
    reorder: 0.25,
    reorderDelayMs: 3,
  };
  assert.deepEqual(l.links[0]!.faults, {
    aToB: {
      ...common,
      loss: 0,
      rateBitsPerSecond: 10_000_000,
      queueFrames: 100,
      queueBytes: 150000,
      seed: 7,
    },
    bToA: {
      ...common,
      lossBurst: { p: 0.01, r: 0.3, lossBad: 0.8, lossGood: 0.001 },
      pmtuBlackhole: true,
      seed: 99,
    },
  });
});

Deno.test("[lab.link.faults]: defaults — no faults, one direction only, seeds per link", () => {
  const text = lab(`
[lab.link.faults.b_to_a]
loss = "5%"
rate = "1.5mbit"
`) + `
[[lab.node]]
name = "h3"
[[lab.node.interface]]
name = "eth0"
[[lab.node.interface]]
name = "eth1"
[[lab.link]]
a = "h3:eth0"
b = "h3:eth1"
[lab.link.faults]
rate = 64000
[[lab.link]]
a = "h1:eth9"
b = "h3:eth9"
`;
  // (The third link names missing interfaces: only its errors are reported.)
  assert.deepEqual(errorsOf(text).map((e) => e[0]), ["lab.link[2].a", "lab.link[2].b"]);
  const l = parseLabConfig(text.slice(0, text.lastIndexOf("[[lab.link]]")));
  assert.deepEqual(l.links[0]!.faults, {
    aToB: null,
    bToA: { loss: 0.05, rateBitsPerSecond: 1_500_000, seed: 2 },
  });
  // Link 1's seeds default to 2·1 + 1 and 2·1 + 2; a bare number is bits per second.
  assert.deepEqual(l.links[1]!.faults, {
    aToB: { rateBitsPerSecond: 64000, seed: 3 },
    bToA: { rateBitsPerSecond: 64000, seed: 4 },
  });
  assert.deepEqual(parseLabConfig(lab("")).links[0]!.faults, { aToB: null, bToA: null });
  assert.deepEqual(parseLabConfig(lab(`faults = { seed = 5 }`)).links[0]!.faults, {
    aToB: null,
    bToA: null,
  }, "a seed alone is no fault");
});

Deno.test("[lab.link.faults]: every bad key at once, at its path", () => {
  const errs = errorsOf(lab(`
[lab.link.faults]
loss = 0.02
duplicate = "150%"
corrupt = "two percent"
delay = 10
jitter = "5x"
reorder_delay = "1ms"
rate = "10mbps"
queue = 0
pmtu_blackhole = "yes"
seed = -1
lose = "1%"
[lab.link.faults.a_to_b]
loss_burst = { r = "10%", q = "1%" }
rate = "100"
queue_bytes = 1000
[lab.link.faults.ba]
loss = "1%"
`));
  // In file order (of the line each key is on).
  assert.deepEqual(errs, [
    [
      "lab.link[0].faults.loss",
      'expected a percentage string such as "2%", found float 0.02 (write "2%")',
    ],
    ["lab.link[0].faults.duplicate", '"150%" is out of range (0% to 100%)'],
    [
      "lab.link[0].faults.corrupt",
      'Cannot parse percentage "two percent": expected a number and "%", such as "2%"',
    ],
    [
      "lab.link[0].faults.delay",
      'expected a duration string such as "30s", found integer 10 (write "10s" or "10ms")',
    ],
    [
      "lab.link[0].faults.jitter",
      'Cannot parse duration "5x": unknown unit "x" (use ms, s, m, h or d)',
    ],
    ["lab.link[0].faults.reorder_delay", 'reorder_delay goes with "reorder"'],
    [
      "lab.link[0].faults.rate",
      'Cannot parse rate "10mbps" (tc reads "mbps" as bytes per second; write "mbit" units, e.g. "8mbit" for 1 MB/s)',
    ],
    ["lab.link[0].faults.queue", "0 is out of range (1 to 1000000)"],
    ["lab.link[0].faults.pmtu_blackhole", 'expected a boolean (true or false), found string "yes"'],
    ["lab.link[0].faults.seed", "-1 is out of range (0 to 4294967295)"],
    ["lab.link[0].faults.lose", 'unknown key "lose" (did you mean "loss"?)'],
    ["lab.link[0].faults.a_to_b.loss_burst.p", '"p" is required (good → bad, per frame)'],
    ["lab.link[0].faults.a_to_b.loss_burst.q", 'unknown key "q" (did you mean "p"?)'],
    ["lab.link[0].faults.a_to_b.rate", 'string "100" is out of range (1kbit to 1tbit)'],
    ["lab.link[0].faults.a_to_b.queue_bytes", 'a queue bounds the rate limit: it needs "rate"'],
    ["lab.link[0].faults.ba", 'unknown key "ba"'],
  ]);
  // A faults table that is not a table, and direction tables that are not either.
  assert.deepEqual(errorsOf(lab(`faults = "lossy"`)), [
    ["lab.link[0].faults", 'expected a table, found string "lossy"'],
  ]);
  assert.deepEqual(errorsOf(lab(`faults = { a_to_b = 1 }`)), [
    ["lab.link[0].faults.a_to_b", "expected a table, found integer 1"],
  ]);
});

Deno.test("tapir check reports bad fault keys with file, line and key path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir-faults-" });
  const { log, error } = console;
  const out: string[] = [], err: string[] = [];
  try {
    const bad = `${dir}/bad_lab.toml`;
    await Deno.writeTextFile(
      bad,
      lab(`[lab.link.faults]\nloss = "2"\njitter = "1ms"\nqueue = 5\n`),
    );
    const good = `${dir}/good_lab.toml`;
    await Deno.writeTextFile(
      good,
      lab(`[lab.link.faults]\nloss = "2%"\nrate = "1gbit"\nqueue = 5\n`),
    );
    console.log = (...a: unknown[]) => out.push(a.join(" "));
    console.error = (...a: unknown[]) => err.push(a.join(" "));
    assert.equal(await checkCommand([good, bad], {}), 1);
    console.log = log;
    console.error = error;
    assert.match(out[0]!, /good_lab\.toml: ok \(lab: 2 nodes, 1 link, 0 probes;/);
    assert.deepEqual(err, [
      `${bad}:17:1: lab.link[0].faults.loss: Cannot parse percentage "2": expected a number and "%", such as "2%"`,
      `${bad}:19:1: lab.link[0].faults.queue: a queue bounds the rate limit: it needs "rate"`,
      `${bad}: 2 errors`,
    ]);
  } finally {
    console.log = log;
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
});

const PING10 = `
[[lab.probe]]
from = "h1"
ping = "192.0.2.2"
count = 10
interval = "100ms"
timeout = "500ms"
`;

Deno.test("lab: a ping probe passes through 20 % loss both ways and fails at 100 %; the links count the losses", async () => {
  const lossy = parseLabConfig(lab(`[lab.link.faults]\nloss = "20%"\ndelay = "5ms"\n`, PING10));
  const r = await runLab(lossy);
  assert.deepEqual(r.outcomes.map((o) => [o.passed, o.reason]), [[true, ""]]);
  const replies = Number(/(\d+) received/.exec(r.outcomes[0]!.lines.join("\n"))?.[1]);
  const [a, b] = r.links[0]!;
  const lost = a.stats.faultLossDrops + b.stats.faultLossDrops;
  assert.ok(lost > 0, "some frames were lost");
  assert.ok(replies >= 1 && replies < 10, `${replies}/10 replies`);
  assert.equal(a.stats.faultDelayed, a.stats.txFrames - a.stats.faultLossDrops);
  // The same seed, the same run.
  const again = await runLab(lossy);
  assert.deepEqual(again.outcomes[0]!.lines, r.outcomes[0]!.lines);
  assert.equal(again.links[0]![0].stats.faultLossDrops, a.stats.faultLossDrops);
  // Another seed, another run (same outcome).
  const other = await runLab(
    parseLabConfig(lab(`[lab.link.faults]\nloss = "20%"\ndelay = "5ms"\nseed = 1234\n`, PING10)),
  );
  assert.equal(other.passed, 1);
  assert.notDeepEqual(other.outcomes[0]!.lines, r.outcomes[0]!.lines);

  const dead = await runLab(
    parseLabConfig(lab(`[lab.link.faults.a_to_b]\nloss = "100%"\n`, PING10)),
  );
  assert.equal(dead.failed, 1);
  assert.match(dead.outcomes[0]!.reason, /^expected replies, saw no answer/);
  assert.equal(dead.links[0]![0].stats.faultLossDrops, dead.links[0]![0].stats.txFrames);
  assert.equal(dead.links[0]![1].stats.faultLossDrops, 0, "only a → b loses");
  const silent = await runLab(
    parseLabConfig(lab(`[lab.link.faults]\nloss = "100%"\n`, PING10 + `expect = "timeout"\n`)),
  );
  assert.equal(silent.passed, 1);
});

Deno.test("lab: a PMTU black hole on the way back turns frag-needed into silence", async () => {
  // h1 — r — h2 with MTU 1400 behind r: a 1500-byte DF ping gets "fragmentation
  // needed" from r, unless the r → h1 direction drops it.
  const text = (faults: string, expect: string) =>
    `[lab]
[[lab.node]]
name = "h1"
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
mtu = 1400
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
[[lab.node]]
name = "h2"
[[lab.node.interface]]
name = "eth0"
mtu = 1400
addresses = ["198.51.100.10/24", "2001:db8:2::10/64"]
[[lab.node.route]]
to = "0.0.0.0/0"
via = "198.51.100.1"
[[lab.link]]
a = "h1:eth0"
b = "r:lan0"
${faults}
[[lab.link]]
a = "r:lan1"
b = "h2:eth0"
[[lab.probe]]
from = "h1"
at = "5s"
ping = "198.51.100.10"
size = 1472
dont_fragment = true
count = 2
expect = "${expect}"
[[lab.probe]]
from = "h1"
at = "5s"
ping = "2001:db8:2::10"
size = 1452
count = 2
expect = "${expect}"
[[lab.probe]]
from = "h1"
at = "5s"
ping = "198.51.100.10"
expect = "reachable"
`;
  const open = await runLab(parseLabConfig(text("", "frag-needed")));
  assert.deepEqual(open.outcomes.map((o) => o.reason), ["", "", ""]);
  const holed = await runLab(
    parseLabConfig(text(`[lab.link.faults.b_to_a]\npmtu_blackhole = true\n`, "timeout")),
  );
  assert.deepEqual(holed.outcomes.map((o) => o.reason), ["", "", ""]);
  const [, rLan0] = holed.links[0]!;
  assert.equal(rLan0.stats.faultPmtuBlackholeDrops, 4, "2 frag-needed + 2 Packet Too Big");
  assert.equal(holed.links[0]![0].stats.faultPmtuBlackholeDrops, 0);
});
