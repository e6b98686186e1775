/**
 * Configuration files: TOML text → a validated {@link Config}, or every
 * problem at once as {@link ConfigErrors}.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import { Ctx, isTable, type Tbl } from "./_check.ts";
import { Locator } from "./_locate.ts";
import { CONFIG_KEYS, configCounts, validateConfig } from "./_validate.ts";
import { checkKeys } from "./_check.ts";
import { ConfigError, ConfigErrors } from "./errors.ts";
import type { Config } from "./types.ts";

export { configCounts };

/**
 * Parse TOML text, turning a syntax error into {@link ConfigErrors}.
 *
 * @param text TOML text
 * @param file file name for messages
 * @returns the tree and a locator for key paths
 */
export function parseToml(text: string, file?: string): { tree: Tbl; locator: Locator } {
  let tree: unknown;
  try {
    tree = parse(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const msg = e.message.split("\n")[0]!.replace(
        /^Invalid TOML document: /,
        "TOML syntax error: ",
      );
      throw new ConfigErrors([new ConfigError("", msg, { file, line: e.line, column: e.column })]);
    }
    throw e;
  }
  return { tree: tree as Tbl, locator: new Locator(text) };
}

/**
 * Throw {@link ConfigErrors} when `ctx` holds any problem, each placed at
 * the line and column of its key path.
 */
export function throwIfErrors(ctx: Ctx, locator: Locator, file?: string): void {
  if (ctx.issues.length === 0) return;
  const errors = ctx.issues.map((i) => {
    const pos = locator.locate(i.path);
    return new ConfigError(i.path, i.message, { file, line: pos?.line, column: pos?.column });
  });
  errors.sort((a, b) =>
    (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0)
  );
  throw new ConfigErrors(errors);
}

/**
 * Parse and validate a configuration file's text.
 *
 * @param text TOML text
 * @param file file name used in error positions
 * @returns the validated configuration, defaults filled in
 * @throws ConfigErrors listing every problem
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const c = parseConfig('[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24"]\n');
 * console.assert(c.interfaces[0]!.tap === "lan0" && c.interfaces[0]!.mtu === 1500);
 * ```
 */
export function parseConfig(text: string, file?: string): Config {
  const { tree, locator } = parseToml(text, file);
  const ctx = new Ctx();
  const isLab = isTable(tree.lab);
  if (isLab) {
    ctx.err("lab", `this is a lab file (it has a [lab] table): use "tapir lab" or parseLabConfig`);
  }
  checkKeys(ctx, tree, "", isLab ? [...CONFIG_KEYS, "lab"] : CONFIG_KEYS);
  const config = validateConfig(ctx, tree, "");
  throwIfErrors(ctx, locator, file);
  return config;
}

/**
 * Read and validate a configuration file.
 *
 * @param path file to read
 * @returns the validated configuration
 * @throws ConfigErrors for problems in the file; Deno's error when it can't be read
 */
export async function loadConfig(path: string): Promise<Config> {
  return parseConfig(await Deno.readTextFile(path), path);
}
