/**
 * Configuration: TOML text → a validated, typed {@link Config} (or a
 * {@link LabConfig}), with every problem reported at once as
 * {@link ConfigErrors}, each with its key path, line and column.
 * Firewall rule strings are parsed into {@link Rule}s here too.
 *
 * @module
 */
export { ConfigError, ConfigErrors } from "./errors.ts";
export { configCounts, loadConfig, parseConfig } from "./config.ts";
export { parseLabConfig } from "./lab.ts";
export { type AnyConfig, parseAnyConfig } from "./load.ts";
export { formatDuration, parseDuration } from "./duration.ts";
export * from "./rule.ts";
export type * from "./types.ts";
