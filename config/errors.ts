/**
 * Configuration errors: one {@link ConfigError} per problem, each with its
 * key path and (where known) file, line and column; {@link ConfigErrors}
 * carries every problem found in one validation run.
 *
 * @module
 */

/** One problem in a configuration file. */
export class ConfigError extends Error {
  /** Key path such as `interface[1].addresses[0]`; empty for a TOML syntax error. */
  path: string;
  /** 1-based line, when known. */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
  /** File name, when known. */
  file?: string;

  /**
   * @param path key path of the offending value
   * @param message what is wrong, e.g. `Cannot parse address "10.0.0.300": octet 4 is out of range`
   */
  constructor(
    path: string,
    message: string,
    pos: { line?: number; column?: number; file?: string } = {},
  ) {
    super(message);
    this.name = "ConfigError";
    this.path = path;
    this.line = pos.line;
    this.column = pos.column;
    this.file = pos.file;
  }

  /** `FILE:LINE:COL: PATH: MESSAGE`, leaving out the parts that are unknown. */
  override toString(): string {
    const where = [this.file, this.line, this.line !== undefined ? this.column : undefined]
      .filter((x) => x !== undefined).join(":");
    const parts = [where, this.path, this.message].filter((x) => x !== "");
    return parts.join(": ");
  }
}

/** Every problem found in a configuration; thrown when there is at least one. */
export class ConfigErrors extends Error {
  /** The problems, in file order. */
  errors: ConfigError[];

  /** @param errors the problems (at least one) */
  constructor(errors: ConfigError[]) {
    super(errors.map((e) => e.toString()).join("\n"));
    this.name = "ConfigErrors";
    this.errors = errors;
  }

  /** One `FILE:LINE:COL: PATH: MESSAGE` line per error. */
  override toString(): string {
    return this.errors.map((e) => e.toString()).join("\n");
  }
}
