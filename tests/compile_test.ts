/**
 * The standalone build: `deno bundle` turns the module graph into one JS
 * file that runs outside the source tree; with a denort available
 * (DENORT_BIN), `deno task compile` builds the binary and it runs too.
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { ignoreUnlessRoot, requireRoot, waitFor, withTopology } from "./e2e/harness.ts";

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

/** The permission flags of `deno task compile`, read from deno.json so the test cannot drift. */
function compileFlags(): string[] {
  const task = (denoJson as { tasks: Record<string, string> }).tasks.compile!;
  return task.split(/\s+/).filter((w) => w.startsWith("--allow-"));
}

Deno.test({
  name:
    "the bundle with exactly the compile task's permissions runs, shows, reloads, labs and checks",
  ignore: ignoreUnlessRoot("compile permissions e2e"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    const flags = compileFlags();
    assert.ok(flags.includes("--allow-net"), "the control socket is a Unix socket: --allow-net");
    await withTopology("tpc", async (topo) => {
      const dir = topo.tempDir();
      const js = `${dir}/tapir.js`;
      const b = await run(deno, ["bundle", "--platform", "deno", "-o", js, `${root}main.ts`], root);
      assert.equal(b.code, 0, b.stderr);
      const tapir = (args: string[]) => [deno, "run", ...flags, js, ...args];
      const cfg = `${dir}/router.toml`;
      Deno.writeTextFileSync(
        cfg,
        CONFIG.replace('name = "lan0"', `name = "lan0"\ntap = "tpc${Deno.pid % 100000}l"`)
          .replace('name = "wan0"', `name = "wan0"\ntap = "tpc${Deno.pid % 100000}w"`),
      );
      const ns = await topo.netns("r");
      const sock = `${dir}/control.sock`;
      const proc = ns.spawn(tapir(["run", cfg, "--control", sock]));
      await waitFor("the bundled tapir's control socket", () => {
        try {
          return Deno.statSync(sock).isSocket === true;
        } catch {
          return false;
        }
      }, 20_000);
      const routes = await ns.exec(tapir(["show", "routes", "--control", sock]));
      assert.match(routes.stdout, /192\.0\.2\.0\/24/);
      assert.match(routes.stdout, /198\.51\.100\.1/);
      const reload = await ns.exec(tapir(["reload", "--control", sock]));
      assert.match(reload.stdout, /no changes/);
      proc.kill("SIGTERM");
      const exit = await proc.wait(10_000);
      assert.equal(exit.code, 0, exit.stderr);
      const check = await run(deno, ["run", ...flags, js, "check", cfg], dir);
      assert.equal(check.code, 0, check.stderr);
      const lab = await run(
        deno,
        ["run", ...flags, js, "lab", `${root}examples/lab.toml`, "--virtual-time"],
        root,
      );
      assert.equal(lab.code, 0, lab.stdout + lab.stderr);
    });
  },
});
