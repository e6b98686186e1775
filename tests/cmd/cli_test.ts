/**
 * The command line as a user meets it: exit codes, help, version, the lab's
 * verdicts, and errors that name their fix.
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };

const root = new URL("../../", import.meta.url).pathname;

async function tapir(args: string[], perms = ["--allow-read", "--allow-env"]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, `${root}main.ts`, ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const FAILING_LAB = `
[lab]
description = "an expectation that cannot hold"
[[lab.node]]
name = "a"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.1/24"]
[[lab.node]]
name = "b"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.2/24"]
[[lab.link]]
a = "a:eth0"
b = "b:eth0"
[[lab.probe]]
from = "a"
ping = "192.0.2.2"
expect = "host-unreachable"
[[lab.probe]]
from = "a"
ping = "192.0.2.2"
expect = "reachable"
`;

Deno.test("tapir --version prints deno.json's version", async () => {
  const r = await tapir(["--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), denoJson.version);
});

Deno.test("tapir --help and every command's --help exit 0 and describe it", async (t) => {
  for (
    const args of [["--help"], ["check", "--help"], ["run", "--help"], ["lab", "--help"], [
      "show",
      "--help",
    ]]
  ) {
    await t.step(args.join(" "), async () => {
      const r = await tapir(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Usage: tapir/);
    });
  }
});

Deno.test("an unknown command is a usage error (exit 2)", async () => {
  const r = await tapir(["frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command/);
});

Deno.test("deno task start's lab (examples/lab.toml) holds every expectation", async () => {
  const r = await tapir(["lab", "examples/lab.toml", "--virtual-time"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^\d+ passed, 0 failed/m);
  assert.match(r.stdout, /Frag needed and DF set \(mtu = \d+\)/);
  assert.match(r.stdout, /Destination Net Unreachable/);
  assert.doesNotMatch(r.stdout, /FAIL/);
});

Deno.test("tapir lab exits 1 and says why when an expectation fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir-lab-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.toml`, FAILING_LAB);
    const r = await tapir(["lab", `${dir}/bad.toml`, "--virtual-time"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /\[FAIL\] a: ping 192\.0\.2\.2 — expect host-unreachable/);
    assert.match(r.stdout, /FAILED: expected Destination Host Unreachable, saw 3\/3 replies/);
    assert.match(r.stdout, /\[PASS\] a: ping 192\.0\.2\.2 — expect reachable/);
    assert.match(r.stdout, /^1 passed, 1 failed/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tapir lab on a missing file exits 2", async () => {
  const r = await tapir(["lab", "/nonexistent/lab.toml"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read/);
});

Deno.test("tapir run with an invalid config prints every error and exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir-run-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.toml`,
      `[[interface]]\nname = "lan0"\naddresses = ["192.0.2.300/24"]\nmtu = 10\n`,
    );
    const r = await tapir(["run", `${dir}/bad.toml`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /interface\[0\]\.addresses\[0\]/);
    assert.match(r.stderr, /interface\[0\]\.mtu/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tapir run without --allow-ffi names the flag", async () => {
  const r = await tapir(["run", "examples/router.toml"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--allow-ffi/);
});

Deno.test("tapir show without a running tapir says how to start one", async () => {
  const r = await tapir(["show", "stats", "--control", "/nonexistent/tapir.sock"], [
    "--allow-read",
    "--allow-env",
    "--allow-net",
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /tapir run/);
});

Deno.test("a bad --log-level names every level", async () => {
  for (const cmd of [["run", "examples/host.toml"], ["lab", "examples/lab.toml"]]) {
    const r = await tapir([...cmd, "--log-level", "loud"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--log-level must be one of trace, debug, info, warning, error, fatal/);
  }
});

Deno.test("tapir reload without a running tapir says where it looked", async () => {
  const r = await tapir(["reload", "--control", "/nonexistent/tapir.sock"], [
    "--allow-read",
    "--allow-env",
    "--allow-net",
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach a running tapir at \/nonexistent\/tapir\.sock/);
});

Deno.test("deno task start (the quick start's first command) runs the lab with exactly its flags", async () => {
  const task = (denoJson as { tasks: Record<string, string> }).tasks.start!;
  const args = task.split(/\s+/).slice(2); // drop "deno run"
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, dec.decode(out.stdout) + dec.decode(out.stderr));
  assert.match(dec.decode(out.stdout), /\d+ passed, 0 failed/);
});
