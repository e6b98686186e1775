/**
 * `deno task fuzz [--seconds N] [--seed S] [--frames F] [--sample T] [--warmup W]`:
 * the fuzzer of `_fuzz.ts` for as long as asked, on its two routers and
 * its host, kept for the whole run (so state that piles up shows in the
 * heap).
 *
 * Every `SETTLE_EVERY` frames the clock runs every timer out and each
 * pool must be back at its baseline. At the first settle after each `T`
 * seconds (default 60) it forces a GC (the task runs with
 * `--v8-flags=--expose-gc`) and prints the heap in use (V8's heap plus
 * the ArrayBuffer memory outside it, where the packet pools live) and the
 * RSS. The heap is judged flat when no sample after the warm-up (`W` seconds,
 * default a third of the run, at most 300) exceeds the largest warm-up
 * sample by more than `HEAP_GROWTH` (10 %); otherwise the run exits 1.
 *
 * A failing input is shrunk (`reproduce` in `_fuzz.ts`: the frame alone on
 * a fresh stack, else the target's last events, then `minimiseFrame`) and
 * written to `fuzz-crashes/<seed>-<index>.json`; the run exits 1.
 * `deno task fuzz --replay <file>` replays a saved reproducer on a fresh
 * stack (exit 1 while it still fails the same way, 0 once fixed);
 * `--seed S --frames <index+1>` reproduces the failure exactly, since the
 * frames and clock steps depend only on the seed.
 *
 * @module
 */
import { Fuzzer, loadEvents, replay, reproduce, saveEvents } from "./_fuzz.ts";
import type { FuzzFailure, SavedEvent } from "./_fuzz.ts";

/** Frames between two settles (a pool check, and a chance to sample the heap). */
const SETTLE_EVERY = 1 << 18;
/** How much the post-GC heap may grow over its warm-up maximum and still be called flat. */
const HEAP_GROWTH = 0.10;

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

const MB = 1024 * 1024;
const mb = (n: number) => (n / MB).toFixed(1);

const replayAt = Deno.args.indexOf("--replay");
if (replayAt >= 0) {
  const path = Deno.args[replayAt + 1]!;
  const saved = JSON.parse(Deno.readTextFileSync(path)) as {
    target: string;
    signature: string;
    reproducer: SavedEvent[];
  };
  const got = replay(saved.target, loadEvents(saved.reproducer));
  console.log(`${path}: ${got ?? "no failure"}`);
  Deno.exit(got === saved.signature ? 1 : 0);
}

const seconds = arg("--seconds", 60);
const seed = arg("--seed", Date.now() >>> 0);
const maxFrames = arg("--frames", Infinity);
const sampleS = arg("--sample", 60);
const warmupS = arg("--warmup", Math.min(300, Math.floor(seconds / 3)));
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("no gc(): heap samples are not after a full GC (run with --v8-flags=--expose-gc)");
}

function save(f: FuzzFailure): never {
  const r = reproduce(f.target, f.history, f.signature);
  Deno.mkdirSync("fuzz-crashes", { recursive: true });
  const path = `fuzz-crashes/${f.seed}-${f.index}.json`;
  const { history: _, ...rest } = f;
  const out = { ...rest, reproducedFrom: r.kind, reproducer: saveEvents(r.events) };
  Deno.writeTextFileSync(path, JSON.stringify(out, null, 2) + "\n");
  console.error(
    `seed ${f.seed}: ${f.error.split("\n")[0]} (frame ${f.index}, ${f.target}); ` +
      `reproducer (${r.kind}, ${r.events.length} events) saved to ${path}`,
  );
  Deno.exit(1);
}

interface Sample {
  s: number;
  frames: number;
  /** V8 heap in use plus ArrayBuffer memory outside it (the packet pools), after a full GC. */
  heap: number;
  js: number;
  external: number;
  rss: number;
}

const fz = new Fuzzer(seed);
const t0 = performance.now();
const until = t0 + seconds * 1000;
const samples: Sample[] = [];
let nextSample = 0;
console.log(`seed ${seed}, ${seconds} s, sample every ${sampleS} s, warm-up ${warmupS} s`);
console.log("     s      frames  heap+ext MB  (JS heap  external)   RSS MB");
while (performance.now() < until && fz.frames < maxFrames) {
  const n = Math.min(SETTLE_EVERY - (fz.frames % SETTLE_EVERY), maxFrames - fz.frames);
  const f = fz.run({ frames: n, ms: until - performance.now() }) ?? fz.settle();
  if (f !== null) save(f);
  const now = performance.now();
  if (now - t0 >= nextSample || now >= until || fz.frames >= maxFrames) {
    // Twice: V8 sweeps freed ArrayBuffers lazily, so right after one full GC
    // `external` still counts the buffers it just found dead (~30 MB here).
    gc?.();
    gc?.();
    const m = Deno.memoryUsage();
    const s = {
      s: (now - t0) / 1000,
      frames: fz.frames,
      heap: m.heapUsed + m.external,
      js: m.heapUsed,
      external: m.external,
      rss: m.rss,
    };
    samples.push(s);
    console.log(
      `${s.s.toFixed(0).padStart(6)} ${String(s.frames).padStart(11)} ${
        mb(s.heap).padStart(12)
      }  (${mb(s.js).padStart(7)} ${mb(s.external).padStart(9)}) ${mb(s.rss).padStart(8)}`,
    );
    nextSample = now - t0 + sampleS * 1000;
  }
}
const secs = (performance.now() - t0) / 1000;
console.log(
  `${fz.frames} frames in ${secs.toFixed(0)} s (${(fz.frames / secs).toFixed(0)}/s), no exception`,
);
// The first sample (taken after the first settle) is part of the warm-up even if W is 0.
const warm = samples.filter((s, i) => i === 0 || s.s <= warmupS);
const after = samples.filter((s) => !warm.includes(s));
if (after.length === 0) {
  console.log("heap: no sample after the warm-up, not judged (run longer or lower --warmup)");
} else {
  const ref = Math.max(...warm.map((s) => s.heap));
  const peak = Math.max(...after.map((s) => s.heap));
  const end = samples.at(-1)!.heap;
  const bound = ref * (1 + HEAP_GROWTH);
  const flat = peak <= bound;
  console.log(
    `heap + external after GC: warm-up max ${mb(ref)} MB, after warm-up max ${mb(peak)} MB, end ${
      mb(end)
    } MB; bound ${mb(bound)} MB (+${HEAP_GROWTH * 100} %): ${flat ? "flat" : "GROWING"}`,
  );
  console.log(
    `RSS: warm-up max ${mb(Math.max(...warm.map((s) => s.rss)))} MB, end ${
      mb(samples.at(-1)!.rss)
    } MB`,
  );
  if (!flat) Deno.exit(1);
}
