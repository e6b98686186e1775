/**
 * Logging set-up for the CLI: LogTape to stderr, as text or JSON lines.
 * Writes are synchronous so nothing is lost when tapir exits.
 *
 * @module
 */
import {
  configureSync,
  getLogLevels,
  getTextFormatter,
  jsonLinesFormatter,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";

/** The levels `--log-level` takes, lowest first. */
export const LOG_LEVELS: readonly LogLevel[] = getLogLevels();

/**
 * True when stderr is the journal (systemd sets JOURNAL_STREAM to the
 * stream's `device:inode`): journald stamps every line itself.
 */
export function stderrIsJournal(): boolean {
  // `tapir lab` runs with no env permission (deno task start): no journal then.
  if (Deno.permissions.querySync({ name: "env", variable: "JOURNAL_STREAM" }).state !== "granted") {
    return false;
  }
  const js = Deno.env.get("JOURNAL_STREAM");
  if (js === undefined) return false;
  try {
    const st = Deno.statSync("/proc/self/fd/2");
    return `${st.dev}:${st.ino}` === js;
  } catch {
    return false;
  }
}

/** Log output formats of `--log-format`. */
export type LogFormat = "text" | "json";

/** Configure LogTape once: category `tapir` to stderr at `level`. */
export function setupLogging(format: LogFormat, level: LogLevel = "info"): void {
  const formatter = format === "json" ? jsonLinesFormatter : getTextFormatter({
    // journald adds its own timestamp to every line.
    timestamp: stderrIsJournal() ? "none" : "date-time-tz",
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
