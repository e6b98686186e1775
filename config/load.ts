/**
 * Reading either kind of file: a configuration, or a lab (recognized by its
 * top-level `[lab]` table).
 *
 * @module
 */
import { isTable } from "./_check.ts";
import { parseConfig, parseToml } from "./config.ts";
import { parseLabConfig } from "./lab.ts";
import type { Config, LabConfig } from "./types.ts";

/** Either a configuration or a lab. */
export type AnyConfig = { kind: "config"; config: Config } | { kind: "lab"; lab: LabConfig };

/**
 * Parse text as a lab when it has a top-level `[lab]` table (or `lab` is
 * true), else as a configuration.
 *
 * @throws ConfigErrors listing every problem
 */
export function parseAnyConfig(text: string, file?: string, lab?: boolean): AnyConfig {
  const isLab = lab ?? isTable(parseToml(text, file).tree.lab);
  return isLab
    ? { kind: "lab", lab: parseLabConfig(text, file) }
    : { kind: "config", config: parseConfig(text, file) };
}
