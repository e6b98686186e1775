/**
 * `tapir lab FILE`: run a virtual lab and check every probe's expectation.
 *
 * @module
 */
import type { LogLevel } from "@logtape/logtape";
import { ConfigErrors, parseLabConfig } from "../config/mod.ts";
import { runLab } from "../config/lab_runner.ts";
import { LOG_LEVELS, setupLogging } from "./log.ts";
import { formatIpAddress } from "../stack/wire/mod.ts";
import type { ProbeConfig } from "../config/mod.ts";

/** Options of {@link labCommand}. */
export interface LabOptions {
  virtualTime?: boolean;
  logLevel?: string;
}

/** Run `tapir lab FILE`; the exit code (0 all expectations held, 1 some failed or invalid, 2 unreadable). */
export async function labCommand(file: string, o: LabOptions): Promise<number> {
  const level = (o.logLevel ?? "warning") as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    console.error(`tapir lab: --log-level must be one of ${LOG_LEVELS.join(", ")}, not "${level}"`);
    return 2;
  }
  setupLogging("text", level);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    console.error(`tapir lab: cannot read ${file}: ${(e as Error).message}`);
    return 2;
  }
  let lab;
  try {
    lab = parseLabConfig(text, file);
  } catch (e) {
    if (e instanceof ConfigErrors) {
      for (const err of e.errors) console.error(err.toString());
      return 1;
    }
    throw e;
  }
  const t0 = performance.now();
  if (lab.description !== "") console.log(lab.description);
  console.log(
    `lab ${file}: ${lab.nodes.length} nodes, ${lab.links.length} links, ${lab.probes.length} probes${
      o.virtualTime ? " (virtual time)" : ""
    }\n`,
  );
  const run = runLab(lab, {
    virtualTime: o.virtualTime ?? false,
    onOutcome: (out) => {
      const p = out.probe;
      console.log(
        `[${out.passed ? "PASS" : "FAIL"}] ${p.from}: ${p.kind} ${
          describeTarget(p)
        } — expect ${p.expect}`,
      );
      for (const l of out.lines) console.log(`    ${l}`);
      if (!out.passed) console.log(`    FAILED: ${out.reason}`);
      console.log("");
    },
  });
  let result;
  try {
    result = await run;
  } catch (e) {
    // A node's service did not start (its address or port was not available).
    console.error(`tapir lab: ${(e as Error).message}`);
    return 1;
  }
  const wall = performance.now() - t0;
  console.log(
    `${result.passed} passed, ${result.failed} failed (${
      (result.elapsedMs / 1000).toFixed(1)
    } s of lab time in ${(wall / 1000).toFixed(2)} s)`,
  );
  return result.failed === 0 ? 0 : 1;
}

function describeTarget(p: ProbeConfig): string {
  if (p.lease !== undefined) return `${p.lease.iface} (DHCPv${p.lease.family})`;
  const addr = formatIpAddress(p.target!);
  const text = p.zone !== undefined ? `${addr}%${p.zone}` : addr;
  const port = p.port !== undefined ? ` port ${p.port}` : "";
  if (p.transfer === undefined) return `${text}${port}`;
  const t = p.transfer;
  const size = t.service === "echo" || t.service === "discard"
    ? `, ${t.bytes} bytes`
    : t.bytes !== undefined
    ? `, up to ${t.bytes} bytes`
    : "";
  return `${t.service} ${text}${port}${size}`;
}
