/**
 * The standalone build: `deno bundle` turns the module graph into one JS
 * file that runs outside the source tree; with a denort available
 * (DENORT_BIN), `deno task compile` builds the binary and it runs too.
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();

async function run(cmd: string, args: string[], cwd: string, env?: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const CONFIG = `[router]
hostname = "edge1"
forwarding = true

[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "wan0"
addresses = ["198.51.100.2/24"]

[[route]]
to = "0.0.0.0/0"
via = "198.51.100.1"
`;

Deno.test("deno bundle output runs `check` and `--version` outside the source tree", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir-bundle-" });
  try {
    const js = `${dir}/tapir.js`;
    const b = await run(deno, ["bundle", "--platform", "deno", "-o", js, `${root}main.ts`], root);
    assert.equal(b.code, 0, b.stderr);
    await Deno.writeTextFile(`${dir}/router.toml`, CONFIG);
    await Deno.writeTextFile(`${dir}/bad.toml`, `[[interface]]\nname = "lan0"\naddreses = []\n`);
    const perms = [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-ffi",
      "--allow-write",
      "--allow-sys",
    ];
    const v = await run(deno, [...perms, js, "--version"], dir);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), denoJson.version);
    const ok = await run(deno, [...perms, js, "check", "router.toml"], dir);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /router\.toml: ok/);
    const bad = await run(deno, [...perms, js, "check", "bad.toml"], dir);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /addreses/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const denort = Deno.env.get("DENORT_BIN");
Deno.test({
  name: denort
    ? "deno task compile builds a tapir binary that runs"
    : "deno task compile builds a tapir binary (ignored: no DENORT_BIN; deno compile cannot download denort here)",
  ignore: !denort,
  fn: async () => {
    const c = await run(deno, ["task", "compile"], root);
    assert.equal(c.code, 0, c.stderr);
    const dir = await Deno.makeTempDir({ prefix: "tapir-bin-" });
    try {
      await Deno.writeTextFile(`${dir}/router.toml`, CONFIG);
      const v = await run(`${root}dist/tapir`, ["--version"], dir);
      assert.equal(v.stdout.trim(), denoJson.version);
      const ok = await run(`${root}dist/tapir`, ["check", "router.toml"], dir);
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
