/**
 * Durations in configuration files: `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`,
 * `"2d"`, converted to whole milliseconds.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parse a duration into milliseconds. Components are a number (decimals
 * allowed) followed by a unit: `ms`, `s`, `m`, `h` or `d`; several may follow
 * each other from the largest unit down (`"1h30m"`). A bare `"0"` is zero.
 *
 * @param text e.g. `"1h30m"`
 * @returns whole milliseconds
 * @throws Error with a message like `Cannot parse duration "5x": unknown unit "x" (use ms, s, m, h or d)`
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * console.assert(parseDuration("1h30m") === 5_400_000);
 * ```
 */
export function parseDuration(text: string): number {
  const fail = (why: string): never => {
    throw new Error(`Cannot parse duration "${text}": ${why}`);
  };
  const s = text.trim();
  if (s === "") fail("it is empty");
  if (s === "0") return 0;
  const re = /([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)/y;
  let total = 0;
  let pos = 0;
  let lastUnit = Infinity;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) fail(`expected a number at "${s.slice(pos)}"`);
    const [all, num, unit] = m!;
    if (unit === "") fail(`"${num}" has no unit (use ms, s, m, h or d, e.g. "${num}s")`);
    const ms = UNIT_MS[unit!];
    if (ms === undefined) fail(`unknown unit "${unit}" (use ms, s, m, h or d)`);
    if (ms! >= lastUnit) fail(`units must go from largest to smallest, once each`);
    lastUnit = ms!;
    total += Number(num) * ms!;
    pos += all!.length;
  }
  if (!Number.isInteger(total)) fail("it is not a whole number of milliseconds");
  if (!Number.isSafeInteger(total)) fail("it is too large");
  return total;
}

/** Format milliseconds as the shortest duration text `parseDuration` reads back. */
export function formatDuration(ms: number): string {
  if (ms === Infinity) return "infinity";
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const [u, n] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}
