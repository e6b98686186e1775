/**
 * `tapir check FILE...`: validate configuration and lab files, printing a
 * one-line summary per valid file and every problem of an invalid one.
 *
 * @module
 */
import { type Config, configCounts, ConfigErrors, parseAnyConfig } from "../config/mod.ts";

/** Options of {@link checkCommand}. */
export interface CheckOptions {
  /** Check every file as a lab (otherwise a top-level `[lab]` table decides). */
  lab?: boolean;
}

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

function summary(configs: Config[]): string {
  const t = { interfaces: 0, addresses: 0, routes: 0, rules: 0 };
  for (const c of configs) {
    const n = configCounts(c);
    t.interfaces += n.interfaces;
    t.addresses += n.addresses;
    t.routes += n.routes;
    t.rules += n.rules;
  }
  return [
    plural(t.interfaces, "interface"),
    plural(t.addresses, "address", "addresses"),
    plural(t.routes, "route"),
    plural(t.rules, "rule"),
  ].join(", ");
}

/**
 * Check each file. Prints `FILE: ok (N interfaces, N addresses, N routes,
 * N rules)` to stdout for a valid file (a lab adds its nodes, links and
 * probes), or `FILE:LINE:COL: PATH: MESSAGE` to stderr for every problem.
 *
 * @param files paths to check
 * @param opts `lab: true` checks every file as a lab
 * @returns 0 when all are valid, 1 when any is invalid, 2 when any can't be read
 */
export async function checkCommand(files: string[], opts: CheckOptions = {}): Promise<number> {
  let code = 0;
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      console.error(`${file}: cannot read: ${(e as Error).message}`);
      code = 2;
      continue;
    }
    try {
      const r = parseAnyConfig(text, file, opts.lab ? true : undefined);
      if (r.kind === "config") {
        console.log(`${file}: ok (${summary([r.config])})`);
      } else {
        const { nodes, links, probes } = r.lab;
        console.log(
          `${file}: ok (lab: ${plural(nodes.length, "node")}, ${plural(links.length, "link")}, ${
            plural(probes.length, "probe")
          }; ${summary(nodes.map((n) => n.config))})`,
        );
      }
    } catch (e) {
      if (!(e instanceof ConfigErrors)) throw e;
      for (const err of e.errors) console.error(err.toString());
      console.error(`${file}: ${plural(e.errors.length, "error")}`);
      code = Math.max(code, 1);
    }
  }
  return code;
}
