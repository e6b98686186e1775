import assert from "node:assert/strict";
import { hasTool, missingTools, packagesFor, TOOLS } from "./tools.ts";

const fixture = new URL("./fixtures/needs_missing_tool.ts", import.meta.url).pathname;

async function runFixture(ci: boolean) {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const [k, v] of Object.entries(Deno.env.toObject())) if (k !== "CI") env[k] = v;
  if (ci) env.CI = "true";
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", fixture],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("a test whose tool is missing is reported as ignored, never as ok", async () => {
  const r = await runFixture(false);
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /needs tapir-no-such-tool \.\.\. ignored/);
  assert.match(r.text, /0 passed.*1 ignored/);
  assert.match(r.text, /ignored "needs tapir-no-such-tool": needs .*tapir-no-such-tool/);
});

Deno.test("under CI=true a test whose tool is missing fails", async () => {
  const r = await runFixture(true);
  assert.notEqual(r.code, 0, r.text);
  assert.match(r.text, /needs tapir-no-such-tool \.\.\. FAILED/);
  assert.match(r.text, /tapir-no-such-tool is required \(CI=true/);
});

Deno.test("the tool list knows a package for every tool and finds what is installed", () => {
  for (const [tool, pkg] of Object.entries(TOOLS)) assert.ok(pkg.length > 0, tool);
  assert.deepEqual(packagesFor(["rdisc6", "ndisc6", "ping"]), ["iputils-ping", "ndisc6"]);
  assert.equal(hasTool("tapir-no-such-tool"), false);
  assert.deepEqual(missingTools(["tapir-no-such-tool"]), ["tapir-no-such-tool"]);
  // `sh` is on every machine this runs on.
  assert.equal(hasTool("sh"), true);
});
