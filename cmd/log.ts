/**
 * Logging set-up for the CLI: LogTape to stderr, as text or JSON lines.
 * Writes are synchronous so nothing is lost when tapir exits.
 *
 * @module
 */
import {
  configureSync,
  getTextFormatter,
  jsonLinesFormatter,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";

/** Log output formats of `--log-format`. */
export type LogFormat = "text" | "json";

/** Configure LogTape once: category `tapir` to stderr at `level`. */
export function setupLogging(format: LogFormat, level: LogLevel = "info"): void {
  const formatter = format === "json" ? jsonLinesFormatter : getTextFormatter({
    timestamp: "date-time-tz",
    category: ".",
    // Addresses and names read better bare than quoted.
    value: (v: unknown) => typeof v === "string" ? v : Deno.inspect(v),
  });
  const enc = new TextEncoder();
  const sink = (record: LogRecord) => {
    const line = formatter(record);
    try {
      Deno.stderr.writeSync(enc.encode(line));
    } catch {
      // stderr closed: nothing sensible left to do with a log line.
    }
  };
  resetSync();
  configureSync({
    sinks: { stderr: sink },
    loggers: [
      { category: ["tapir"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
