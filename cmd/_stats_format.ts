/**
 * `tapir show stats` as text: one block per owner (the path of a group of
 * counters, `nics lan0`, `stack ipv4`, `neighbors lan0 ipv6`), one counter
 * a line with its value aligned, the way `nstat` and `ip -s link` print.
 *
 * @module
 */

type Tree = { [key: string]: unknown };

function isTree(v: unknown): v is Tree {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The snapshot of `Stack.snapshotStats()` (or the control socket's
 * `stats` answer) as readable text, every counter of every owner.
 *
 * @param snapshot a tree of numbers, nested by owner
 * @returns the text, ending with a newline
 */
export function formatStatsText(snapshot: unknown): string {
  const out: string[] = [];
  walk([], snapshot, out);
  return out.join("\n") + "\n";
}

function walk(path: string[], node: unknown, out: string[]): void {
  if (!isTree(node)) return;
  const leaves: [string, unknown][] = [];
  const groups: [string, unknown][] = [];
  for (const [k, v] of Object.entries(node)) (isTree(v) ? groups : leaves).push([k, v]);
  if (leaves.length > 0) {
    if (out.length > 0) out.push("");
    out.push(path.length === 0 ? "(top)" : path.join(" "));
    const w = Math.max(...leaves.map(([k]) => k.length));
    for (const [k, v] of leaves) {
      out.push(`    ${k.padEnd(w)}  ${typeof v === "number" ? v : JSON.stringify(v)}`);
    }
  }
  for (const [k, v] of groups) walk([...path, k], v, out);
}
