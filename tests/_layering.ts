/**
 * The import graph of the tree and the rules DESIGN.md and STYLE.md set on
 * it: no import cycle anywhere in stack/ (type-only imports count: they
 * are dependencies of the source even when erased), imports only down the
 * layer table, and no wall clock or global randomness in stack/ outside
 * clock.ts and random.ts.
 *
 *     deno run --allow-read tests/_layering.ts --graph   # print stack/'s folder graph
 *
 * @module
 */

/** A module and what it imports (resolved paths relative to the repo root). */
export type ImportGraph = Map<string, string[]>;

const ROOT = new URL("../", import.meta.url).pathname;

/** Every import and re-export specifier of a TypeScript source (static ones). */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const re =
    /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|(?:^|\n)\s*import\s+["']([^"']+)["']/g;
  for (const m of source.matchAll(re)) out.push(m[1] ?? m[2]!);
  return out;
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== "." && p !== "") parts.push(p);
  }
  return parts.join("/");
}

function walk(dir: string, out: string[]): void {
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const p = dir === "" ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (!e.name.startsWith(".") && e.name !== "dist" && e.name !== "captures") walk(p, out);
    } else if (e.name.endsWith(".ts")) out.push(p);
  }
}

/** The graph of every .ts file of the repository (local imports only). */
export function repoGraph(): ImportGraph {
  const files: string[] = [];
  walk("", files);
  const g: ImportGraph = new Map();
  for (const f of files) {
    const dir = f.includes("/") ? f.slice(0, f.lastIndexOf("/")) : "";
    const deps = importsOf(Deno.readTextFileSync(`${ROOT}${f}`))
      .filter((s) => s.startsWith("."))
      .map((s) => normalize(`${dir}/${s}`));
    g.set(f, deps);
  }
  return g;
}

/** Strongly connected components with more than one module (or a self-import): the cycles. */
export function cycles(g: ImportGraph, within: (f: string) => boolean = () => true): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!within(w) || !g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (within(v) && !idx.has(v)) visit(v);
  return out;
}

/**
 * The layer of a file, by STYLE.md's table; higher may import lower. Files
 * outside stack/, link/, config/, cmd/ and the entry points have none.
 */
export function layerOf(f: string): number | null {
  if (f.startsWith("stack/wire/")) return 0;
  if (f.startsWith("stack/ip/")) return 2;
  if (f.startsWith("stack/ipv4/") || f.startsWith("stack/ipv6/")) return 3;
  if (f.startsWith("stack/transport/")) return 4;
  if (f.startsWith("stack/firewall/")) return 5;
  if (f.startsWith("stack/apps/")) return 6;
  if (f === "stack/stack.ts" || f === "stack/mod.ts") return 7;
  if (f.startsWith("stack/")) return 1; // core files: nic, neighbor cache, routes, clock, ...
  if (f.startsWith("link/")) return 8;
  if (f.startsWith("config/")) return 9;
  if (f.startsWith("cmd/")) return 10;
  if (f === "main.ts") return 11;
  if (f === "mod.ts") return 11;
  return null;
}

/** Imports that go up the layer table (or from mod.ts into cmd/). */
export function upwardImports(g: ImportGraph): string[] {
  const out: string[] = [];
  for (const [f, deps] of g) {
    const lf = layerOf(f);
    if (lf === null) continue;
    for (const d of deps) {
      const ld = layerOf(d);
      if (ld === null) continue;
      if (f === "mod.ts" && d.startsWith("cmd/")) {
        out.push(`${f} -> ${d} (mod.ts never exports cmd/)`);
      } else if (ld > lf && f !== "mod.ts") out.push(`${f} -> ${d}`);
    }
  }
  return out;
}

/** Uses of the wall clock, timers or global randomness in stack/ outside clock.ts and random.ts. */
export function forbiddenGlobals(files: Iterable<string>): string[] {
  const out: string[] = [];
  const re = /\b(Date\.now|performance\.now|setTimeout|setInterval|Math\.random)\s*\(/g;
  for (const f of files) {
    if (!f.startsWith("stack/") || f === "stack/clock.ts" || f === "stack/random.ts") continue;
    const text = Deno.readTextFileSync(`${ROOT}${f}`).replace(/\/\/.*$/gm, "").replace(
      /\/\*[\s\S]*?\*\//g,
      "",
    );
    for (const m of text.matchAll(re)) out.push(`${f}: ${m[1]}`);
  }
  return out;
}

/** The folder-level graph of stack/: "stack/ipv4 -> stack/ip, stack/wire, stack (core)". */
export function folderGraph(g: ImportGraph): string {
  const folder = (f: string) => {
    if (f === "stack/stack.ts" || f === "stack/mod.ts") return "stack/stack.ts (root)";
    const m = /^stack\/([a-z0-9_]+)\//.exec(f);
    return m ? `stack/${m[1]}` : f.startsWith("stack/") ? "stack (core)" : null;
  };
  const edges = new Map<string, Set<string>>();
  for (const [f, deps] of g) {
    const a = folder(f);
    if (a === null) continue;
    for (const d of deps) {
      const b = folder(d);
      if (b === null || b === a) continue;
      let s = edges.get(a);
      if (s === undefined) edges.set(a, s = new Set());
      s.add(b);
    }
  }
  const rank = (f: string) => f.startsWith("stack/stack.ts") ? 7 : layerOf(`${f}/x`) ?? 0;
  return [...edges.entries()].sort(([a], [b]) => rank(b) - rank(a))
    .map(([a, s]) => `${a} -> ${[...s].sort().join(", ")}`).join("\n") + "\n";
}

if (import.meta.main) {
  const g = repoGraph();
  if (Deno.args.includes("--graph")) {
    console.log(folderGraph(g));
  } else {
    const c = cycles(g, (f) => f.startsWith("stack/"));
    for (const scc of c) console.log(`cycle: ${scc.join(" ")}`);
    for (const u of upwardImports(g)) console.log(`upward: ${u}`);
    for (const x of forbiddenGlobals(g.keys())) console.log(`global: ${x}`);
  }
}
