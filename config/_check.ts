/**
 * Small typed readers over parsed TOML that record a problem and return a
 * default instead of throwing, so one validation run finds every error.
 *
 * @module
 */
import { TomlDate } from "smol-toml";
import { type IpAddress, parseIpAddress } from "../stack/wire/ip_address.ts";
import { parseDuration } from "./duration.ts";

/** A parsed TOML table. */
export type Tbl = Record<string, unknown>;

/** One recorded problem (positions are added later from the text). */
export interface Issue {
  path: string;
  message: string;
}

/** Collects problems during one validation run. */
export class Ctx {
  /** Problems in the order found. */
  readonly issues: Issue[] = [];
  /** Record a problem at `path`. */
  err(path: string, message: string): void {
    this.issues.push({ path, message });
  }
}

/** `base.key` (or `key` at the top). */
export function at(base: string, key: string): string {
  return base === "" ? key : `${base}.${key}`;
}

/** `base[i]`. */
export function idx(base: string, i: number): string {
  return `${base}[${i}]`;
}

/** Describes a TOML value for "expected X, found Y" messages. */
export function describe(v: unknown): string {
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  if (typeof v === "number") return Number.isInteger(v) ? `integer ${v}` : `float ${v}`;
  if (typeof v === "bigint") return `integer ${v}`;
  if (typeof v === "boolean") return `boolean ${v}`;
  if (v instanceof TomlDate || v instanceof Date) return "a date-time";
  if (Array.isArray(v)) return "an array";
  if (v !== null && typeof v === "object") return "a table";
  return String(v);
}

/** True for a TOML table (not an array or date). */
export function isTable(v: unknown): v is Tbl {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate within a small edit distance, if any. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  const limit = word.length <= 3 ? 1 : word.length <= 6 ? 2 : 3;
  return bestD <= limit ? best : undefined;
}

/** ` (did you mean "x"?)` or "". */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? "" : ` (did you mean "${c}"?)`;
}

/** Report keys of `t` not in `allowed`. */
export function checkKeys(ctx: Ctx, t: Tbl, path: string, allowed: readonly string[]): void {
  for (const k of Object.keys(t)) {
    if (!allowed.includes(k)) ctx.err(at(path, k), `unknown key "${k}"${didYouMean(k, allowed)}`);
  }
}

/** The table at `path`, its unknown keys reported; undefined (after an error) when not a table. */
export function readTable(
  ctx: Ctx,
  v: unknown,
  path: string,
  allowed: readonly string[],
): Tbl | undefined {
  if (!isTable(v)) {
    ctx.err(path, `expected a table, found ${describe(v)}`);
    return undefined;
  }
  checkKeys(ctx, v, path, allowed);
  return v;
}

/** An optional sub-table; `{}` when absent or wrong. */
export function subTable(
  ctx: Ctx,
  t: Tbl,
  key: string,
  base: string,
  allowed: readonly string[],
): Tbl {
  if (t[key] === undefined) return {};
  return readTable(ctx, t[key], at(base, key), allowed) ?? {};
}

/** An optional string. */
export function optStr(ctx: Ctx, t: Tbl, key: string, base: string): string | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") {
    ctx.err(at(base, key), `expected a string, found ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A string with a default. */
export function str(ctx: Ctx, t: Tbl, key: string, base: string, def: string): string {
  return optStr(ctx, t, key, base) ?? def;
}

/** A required string; undefined after reporting when missing. */
export function reqStr(ctx: Ctx, t: Tbl, key: string, base: string): string | undefined {
  if (t[key] === undefined) {
    ctx.err(at(base, key), `"${key}" is required`);
    return undefined;
  }
  return optStr(ctx, t, key, base);
}

/** An optional boolean. */
export function optBool(ctx: Ctx, t: Tbl, key: string, base: string): boolean | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    ctx.err(at(base, key), `expected a boolean (true or false), found ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A boolean with a default. */
export function bool(ctx: Ctx, t: Tbl, key: string, base: string, def: boolean): boolean {
  return optBool(ctx, t, key, base) ?? def;
}

/** An optional integer within [min, max]. */
export function optInt(
  ctx: Ctx,
  t: Tbl,
  key: string,
  base: string,
  min: number,
  max: number,
): number | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    ctx.err(at(base, key), `expected an integer, found ${describe(v)}`);
    return undefined;
  }
  if (v < min || v > max) {
    ctx.err(at(base, key), `${v} is out of range (${min} to ${max})`);
    return undefined;
  }
  return v;
}

/** An integer with a default. */
export function int(
  ctx: Ctx,
  t: Tbl,
  key: string,
  base: string,
  def: number,
  min: number,
  max: number,
): number {
  return optInt(ctx, t, key, base, min, max) ?? def;
}

/** An optional duration string, in ms, within [min, max] ms; `"infinity"` allowed when `infinity`. */
export function optDuration(
  ctx: Ctx,
  t: Tbl,
  key: string,
  base: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
  infinity = false,
): number | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  const path = at(base, key);
  if (typeof v !== "string") {
    const hint = typeof v === "number" ? ` (write "${v}s" or "${v}ms")` : "";
    ctx.err(path, `expected a duration string such as "30s", found ${describe(v)}${hint}`);
    return undefined;
  }
  if (infinity && v === "infinity") return Infinity;
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (e) {
    ctx.err(path, (e as Error).message);
    return undefined;
  }
  if (ms < min || ms > max) {
    ctx.err(path, `"${v}" is out of range (${fmtMs(min)} to ${fmtMs(max)})`);
    return undefined;
  }
  return ms;
}

/** A duration with a default, in ms. */
export function duration(
  ctx: Ctx,
  t: Tbl,
  key: string,
  base: string,
  def: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
  infinity = false,
): number {
  return optDuration(ctx, t, key, base, min, max, infinity) ?? def;
}

function fmtMs(ms: number): string {
  if (ms === Number.MAX_SAFE_INTEGER) return "∞";
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** One of `choices` (compared case-insensitively when `fold`), with a default. */
export function oneOf<T extends string>(
  ctx: Ctx,
  t: Tbl,
  key: string,
  base: string,
  choices: readonly T[],
  def: T,
  fold = false,
): T {
  const v = optStr(ctx, t, key, base);
  if (v === undefined) return def;
  const hit = choices.find((c) => fold ? c.toLowerCase() === v.toLowerCase() : c === v);
  if (hit === undefined) {
    ctx.err(
      at(base, key),
      `"${v}" is not one of ${choices.map((c) => `"${c}"`).join(", ")}${didYouMean(v, choices)}`,
    );
    return def;
  }
  return hit;
}

/** An optional array (empty when absent or wrong). */
export function arr(ctx: Ctx, t: Tbl, key: string, base: string): unknown[] {
  const v = t[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    const hint = isTable(v)
      ? ` (write [[${at(base.replace(/\[\d+\]/g, ""), key)}]] for each entry)`
      : "";
    ctx.err(at(base, key), `expected an array, found ${describe(v)}${hint}`);
    return [];
  }
  return v;
}

/** A host or domain name of letters, digits and inner hyphens (RFC 1123 §2.1), a final dot allowed. */
export const DOMAIN_NAME: RegExp =
  /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;

/** A value as an error message names it: its kind and, for scalars, the value. */
export function describeShort(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (isTable(v)) return "a table";
  if (typeof v === "number") return `integer ${v}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Parse an address, recording the error; undefined on failure. */
export function addressAt(ctx: Ctx, v: unknown, path: string): IpAddress | undefined {
  if (typeof v !== "string") {
    ctx.err(path, `expected an address string, found ${describeShort(v)}`);
    return undefined;
  }
  try {
    return parseIpAddress(v);
  } catch (e) {
    ctx.err(path, (e as Error).message);
    return undefined;
  }
}
