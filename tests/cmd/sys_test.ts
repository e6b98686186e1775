import assert from "node:assert/strict";

const DENO = Deno.execPath();
const SYS = new URL("../../cmd/_sys.ts", import.meta.url).href;

/** Run `src` in a child deno; send SIGUSR1 when it prints "ready"; its stdout and stderr. */
async function sigusr1Child(src: string): Promise<{ out: string; err: string; code: number }> {
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
  const until = async (word: string) => {
    while (!out.includes(word)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
  };
  await until("ready");
  child.kill("SIGUSR1");
  await until("alive");
  const status = await child.status;
  const err = await new Response(child.stderr).text();
  return { out, err, code: status.code };
}

/** The SIGUSR1 disposition in the child, through libc (1 is SIG_IGN). */
const DISPOSITION = `
  const lib = Deno.dlopen("libc.so.6", {
    sigaction: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  });
  const disposition = () => {
    const b = new BigUint64Array(20);
    lib.symbols.sigaction(10, null, new Uint8Array(b.buffer));
    return b[0];
  };
`;

Deno.test("SIGUSR1: the listener keeps Deno's inspector trigger from installing itself later (no timer needed)", async () => {
  // No watcher: only the listener and one SIG_IGN. Deno's trigger registers
  // about 500 ms after start; the disposition must still be SIG_IGN at 1.5 s.
  const { out, err, code } = await sigusr1Child(`
    import { neutraliseSigusr1 } from ${JSON.stringify(SYS)};
    ${DISPOSITION}
    neutraliseSigusr1({ watch: false });
    setTimeout(() => console.log("disposition " + disposition() + " ready"), 1500);
    setTimeout(() => console.log("alive"), 2000);
  `);
  assert.match(out, /disposition 1 ready/, "SIG_IGN at 1.5 s");
  assert.match(out, /alive/, "the child lived through SIGUSR1");
  assert.equal(code, 0, err);
  assert.doesNotMatch(err, /Debugger listening/);
});

Deno.test("SIGUSR1 stays ignored when startup blocks the event loop past Deno's grace period", async () => {
  const { out, err, code } = await sigusr1Child(`
    import { neutraliseSigusr1 } from ${JSON.stringify(SYS)};
    neutraliseSigusr1({ fastMs: 100 });
    const until = Date.now() + 900;
    while (Date.now() < until) { /* a blocking startup */ }
    setTimeout(() => console.log("ready"), 300);
    setTimeout(() => console.log("alive"), 1200);
  `);
  assert.match(out, /alive/, "the child lived through SIGUSR1");
  assert.equal(code, 0, err);
  assert.doesNotMatch(err, /Debugger listening/);
});
