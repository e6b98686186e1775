/**
 * `deno task fuzz [--seconds N] [--seed S]`: the fuzzer of `_fuzz.ts` for
 * as long as asked, seed after seed (S, S+1, ...; one minute each). A
 * failing input is written to `fuzz-crashes/<seed>.json` (the target, the
 * frame in hex, the error) and the run exits 1; `--seed S --seconds 60`
 * reproduces it.
 *
 * @module
 */
import { fuzz } from "./_fuzz.ts";

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

const seconds = arg("--seconds", 60);
let seed = arg("--seed", Date.now() >>> 0);
const until = Date.now() + seconds * 1000;
let frames = 0;
while (Date.now() < until) {
  const ms = Math.min(60_000, until - Date.now());
  const r = fuzz(seed, { ms });
  frames += r.frames;
  if (r.failure !== null) {
    Deno.mkdirSync("fuzz-crashes", { recursive: true });
    const path = `fuzz-crashes/${seed}.json`;
    Deno.writeTextFileSync(path, JSON.stringify(r.failure, null, 2) + "\n");
    console.error(
      `seed ${seed}: ${r.failure.error.split("\n")[0]} (frame ${r.failure.index}); saved ${path}`,
    );
    Deno.exit(1);
  }
  console.log(`seed ${seed}: ${r.frames} frames in ${(r.ms / 1000).toFixed(1)} s, no failure`);
  seed = (seed + 1) >>> 0;
}
console.log(`${frames} frames, no failure`);
