/**
 * `tapir show stats|routes|neighbors|addresses|ra`: ask a running tapir
 * through its control socket.
 *
 * @module
 */
import { defaultControlPath, queryControl } from "./control.ts";
import { formatStatsText } from "./_stats_text.ts";

/** Options of {@link showCommand}. */
export interface ShowOptions {
  control?: string;
  hostname?: string;
  json?: boolean;
}

function flatten(prefix: string, v: unknown, out: string[]): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix === "" ? k : `${prefix}.${k}`, x, out);
  } else {
    out.push(`${prefix} ${typeof v === "string" ? v : JSON.stringify(v)}`);
  }
}

/** Run `tapir show WHAT`; the exit code. */
export async function showCommand(what: string, o: ShowOptions): Promise<number> {
  const allowed = ["stats", "routes", "neighbors", "addresses", "firewall", "ra"];
  if (!allowed.includes(what)) {
    console.error(`tapir show: unknown "${what}"; use one of ${allowed.join(", ")}`);
    return 2;
  }
  const path = o.control ?? defaultControlPath(o.hostname ?? "tapir");
  let answer: unknown;
  try {
    answer = await queryControl(path, what);
  } catch (e) {
    console.error(
      `tapir show: cannot reach a running tapir at ${path} (${
        e instanceof Error ? e.message : e
      }); start one with \`tapir run FILE\` or pass --control PATH`,
    );
    return 1;
  }
  if (o.json) {
    console.log(JSON.stringify(answer, null, 2));
  } else if (what === "stats") {
    await Deno.stdout.write(new TextEncoder().encode(formatStatsText(answer)));
  } else if (what === "firewall" && typeof (answer as { dump?: unknown }).dump === "string") {
    // The dump is already iptables-save text: print it as is.
    await Deno.stdout.write(new TextEncoder().encode((answer as { dump: string }).dump));
  } else if (Array.isArray(answer)) {
    for (const row of answer) {
      console.log(
        Object.entries(row as Record<string, unknown>).map(([k, v]) => `${k} ${v}`).join("  "),
      );
    }
  } else {
    const lines: string[] = [];
    flatten("", answer, lines);
    for (const l of lines) console.log(l);
  }
  return 0;
}
