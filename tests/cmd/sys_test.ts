import assert from "node:assert/strict";

const DENO = Deno.execPath();
const SYS = new URL("../../cmd/_sys.ts", import.meta.url).href;

/**
 * A child that neutralises SIGUSR1 with a short fast phase, then blocks its
 * event loop past both the fast phase and Deno's 500 ms grace period (as a
 * slow startup on a loaded machine does), then reports ready. A SIGUSR1 sent
 * after that must not start the inspector, and the child must live on.
 */
Deno.test("SIGUSR1 stays ignored when startup blocks the event loop past Deno's grace period", async () => {
  const src = `
    import { neutraliseSigusr1 } from ${JSON.stringify(SYS)};
    neutraliseSigusr1(100);
    const until = Date.now() + 900;
    while (Date.now() < until) { /* a blocking startup */ }
    // Past the block: the next ticks of the watcher run first.
    setTimeout(() => console.log("ready"), 300);
    setTimeout(() => console.log("alive"), 1200);
  `;
  const child = new Deno.Command(DENO, {
    args: ["run", "--allow-ffi", "--allow-read", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(src));
  await w.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assert.match(out, /ready/);
  child.kill("SIGUSR1");
  while (!out.includes("alive")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const status = await child.status;
  const err = await new Response(child.stderr).text();
  assert.match(out, /alive/, "the child lived through SIGUSR1");
  assert.equal(status.code, 0, err);
  assert.doesNotMatch(err, /Debugger listening/);
});
