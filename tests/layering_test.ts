/**
 * The layering STYLE.md promises, checked on the real import graph: no
 * import cycle anywhere in stack/ (type-only imports count), no import
 * against the layer table's direction, and no wall clock, timers or global
 * randomness in stack/ outside clock.ts and random.ts. The checker itself
 * is shown to fail on a synthetic graph with a cycle and an upward edge.
 *
 *     deno run --allow-read tests/_layering.ts --graph    # stack/'s folder graph
 */
import assert from "node:assert/strict";
import {
  cycles,
  folderGraph,
  forbiddenGlobals,
  type ImportGraph,
  importsOf,
  repoGraph,
  upwardImports,
} from "./_layering.ts";

Deno.test("stack/ has no import cycle", () => {
  const g = repoGraph();
  assert.ok(g.size > 100, `read ${g.size} modules`);
  assert.deepEqual(cycles(g, (f) => f.startsWith("stack/")), []);
});

Deno.test("no import goes up the layer table", () => {
  assert.deepEqual(upwardImports(repoGraph()), []);
});

Deno.test("stack/ uses the injected Clock and Random, never the globals", () => {
  assert.deepEqual(forbiddenGlobals(repoGraph().keys()), []);
});

Deno.test("the checker finds a synthetic cycle and an upward import", () => {
  const g: ImportGraph = new Map([
    ["stack/ipv4/ipv4.ts", ["stack/ipv4/icmp.ts", "stack/wire/ipv4.ts"]],
    ["stack/ipv4/icmp.ts", ["stack/ipv4/ipv4.ts"]],
    ["stack/wire/ipv4.ts", ["stack/stack.ts"]],
    ["stack/stack.ts", ["stack/ipv4/ipv4.ts"]],
    ["stack/nic.ts", []],
  ]);
  assert.deepEqual(cycles(g, (f) => f.startsWith("stack/")), [[
    "stack/ipv4/icmp.ts",
    "stack/ipv4/ipv4.ts",
    "stack/stack.ts",
    "stack/wire/ipv4.ts",
  ]]);
  assert.deepEqual(upwardImports(g), ["stack/wire/ipv4.ts -> stack/stack.ts"]);
  // A self-import is a cycle too; an acyclic graph has none.
  assert.equal(cycles(new Map([["stack/a.ts", ["stack/a.ts"]]])).length, 1);
  assert.deepEqual(cycles(new Map([["stack/a.ts", ["stack/b.ts"]], ["stack/b.ts", []]])), []);
});

Deno.test("import specifiers are read from imports, type imports and re-exports", () => {
  assert.deepEqual(
    importsOf(
      `import { a } from "./a.ts";\nimport type { B } from "../b.ts";\nexport * from "./c.ts";\n` +
        `export { d, type E } from "./d.ts";\nimport "./side.ts";\nconst x = "from './no.ts'";\n`,
    ),
    ["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./side.ts"],
  );
});

Deno.test("the folder graph of stack/ points only down", () => {
  const text = folderGraph(repoGraph());
  assert.match(text, /^stack\/ipv4 -> .*stack\/ip\b/m);
  assert.doesNotMatch(text, /^stack\/ipv6 -> .*stack\/ipv4/m, "IPv6 needs nothing of IPv4");
  assert.doesNotMatch(text, /^stack \(core\) -> .*stack\/(ipv4|ipv6|firewall|transport|apps)/m);
});
