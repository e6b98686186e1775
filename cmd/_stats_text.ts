/**
 * Counters as text, grouped by owner like `nstat` and `ip -s link`: one
 * block per owner (the stack, each NIC, ...) with one `name value` line per
 * counter, names dotted by nesting and aligned.
 *
 * @module
 */

const PER_NIC: Record<string, string> = { nics: "nic", neighbors: "neighbors", links: "link" };

function flatten(prefix: string, v: unknown, out: [string, string][]): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix === "" ? k : `${prefix}.${k}`, x, out);
  } else {
    out.push([prefix, typeof v === "string" ? v : JSON.stringify(v)]);
  }
}

/**
 * Render a stats snapshot (`{ stack: {...}, nics: { lan0: {...} } }` or any
 * nested object of counters) as text blocks, one per owner.
 *
 * @param nonZero only counters that are not 0 (nstat's default)
 */
export function formatStatsText(snapshot: unknown, nonZero = false): string {
  const blocks: string[] = [];
  const block = (title: string, v: unknown) => {
    const rows: [string, string][] = [];
    flatten("", v, rows);
    const shown = nonZero ? rows.filter(([, x]) => x !== "0") : rows;
    if (shown.length === 0) return;
    const w = Math.max(...shown.map(([k]) => k.length));
    blocks.push([title, ...shown.map(([k, x]) => `  ${k.padEnd(w)}  ${x}`)].join("\n"));
  };
  if (snapshot === null || typeof snapshot !== "object") return String(snapshot) + "\n";
  for (const [owner, v] of Object.entries(snapshot)) {
    // Owners kept per NIC get one block each: "nic lan0", "neighbors lan0", "link lan0".
    const per = PER_NIC[owner];
    if (per !== undefined && v !== null && typeof v === "object") {
      for (const [name, x] of Object.entries(v)) block(`${per} ${name}`, x);
    } else {
      block(owner, v);
    }
  }
  return blocks.join("\n\n") + "\n";
}
