/**
 * `[lab.link.faults]`: netem-like faults on a lab link, both ways, with
 * optional `[lab.link.faults.a_to_b]` / `[lab.link.faults.b_to_a]` tables
 * whose keys replace the both-ways ones for that direction. Probabilities
 * are percentage strings as netem writes them (`"2%"`), times durations
 * (`"10ms"`), the rate bits per second as tc writes it (`"10mbit"`).
 *
 * @module
 */
import type { GilbertElliott, LinkFaults } from "../link/mod.ts";
import {
  at,
  type Ctx,
  describe,
  optBool,
  optDuration,
  optInt,
  readTable,
  subTable,
  type Tbl,
} from "./_check.ts";

const S = 1000;

/** Keys of a faults table (both ways or one direction). */
export const FAULT_KEYS = [
  "loss",
  "loss_burst",
  "delay",
  "jitter",
  "reorder",
  "reorder_delay",
  "duplicate",
  "corrupt",
  "rate",
  "queue",
  "queue_bytes",
  "pmtu_blackhole",
  "seed",
] as const;

const DIRECTIONS = ["a_to_b", "b_to_a"] as const;
const BURST_KEYS = ["p", "r", "loss_bad", "loss_good"] as const;

/** The faults of each direction of a lab link (null: none that way). */
export interface LabLinkFaults {
  aToB: LinkFaults | null;
  bToA: LinkFaults | null;
}

/** A percentage string (`"2%"`, `"0.5%"`) as a probability in 0..1. */
function optPercent(ctx: Ctx, t: Tbl, key: string, base: string): number | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  const path = at(base, key);
  if (typeof v !== "string") {
    const hint = typeof v === "number"
      ? ` (write "${Number.isInteger(v) || v >= 1 ? v : +(v * 100).toPrecision(6)}%")`
      : "";
    ctx.err(path, `expected a percentage string such as "2%", found ${describe(v)}${hint}`);
    return undefined;
  }
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$/.exec(v);
  if (m === null) {
    ctx.err(path, `Cannot parse percentage "${v}": expected a number and "%", such as "2%"`);
    return undefined;
  }
  const pct = Number(m[1]);
  if (pct > 100) {
    ctx.err(path, `"${v}" is out of range (0% to 100%)`);
    return undefined;
  }
  return pct / 100;
}

const RATE_UNITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
};

/** A rate as tc writes it: bits per second, bare or with `bit`, `kbit`, `mbit`, `gbit`, `tbit`. */
function optRate(ctx: Ctx, t: Tbl, key: string, base: string): number | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  const path = at(base, key);
  let bps: number;
  if (typeof v === "number") bps = v;
  else if (typeof v !== "string") {
    ctx.err(path, `expected a rate such as "10mbit" or bits per second, found ${describe(v)}`);
    return undefined;
  } else {
    const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
    const unit = m?.[2]?.toLowerCase() ?? "";
    const mult = m === null ? undefined : unit === "" ? 1 : RATE_UNITS[unit];
    if (m === null || mult === undefined) {
      const bytes = /^[kmgt]?bps$/.test(unit)
        ? ` (tc reads "${unit}" as bytes per second; write "${
          unit[0] === "b" ? "" : unit[0]
        }bit" units, e.g. "8mbit" for 1 MB/s)`
        : ` (use bit, kbit, mbit, gbit or tbit, e.g. "10mbit")`;
      ctx.err(path, `Cannot parse rate "${v}"${bytes}`);
      return undefined;
    }
    bps = Number(m[1]) * mult;
  }
  if (!(bps >= 1e3 && bps <= 1e12)) {
    ctx.err(path, `${describe(v)} is out of range (1kbit to 1tbit)`);
    return undefined;
  }
  return bps;
}

/** The keys of one faults table, with the path each was written at. */
interface Parsed {
  f: LinkFaults;
  where: Map<keyof LinkFaults, string>;
}

function parseTable(ctx: Ctx, t: Tbl, path: string): Parsed {
  const f: LinkFaults = {};
  const where = new Map<keyof LinkFaults, string>();
  const put = <K extends keyof LinkFaults>(k: K, v: LinkFaults[K] | undefined, key: string) => {
    if (v === undefined) return;
    f[k] = v;
    where.set(k, at(path, key));
  };
  put("loss", optPercent(ctx, t, "loss", path), "loss");
  if (t.loss_burst !== undefined) {
    const bp = at(path, "loss_burst");
    const bt = readTable(ctx, t.loss_burst, bp, BURST_KEYS);
    if (bt !== undefined) {
      const p = optPercent(ctx, bt, "p", bp);
      if (bt.p === undefined) ctx.err(at(bp, "p"), `"p" is required (good → bad, per frame)`);
      const ge: GilbertElliott = { p: p ?? 0 };
      const r = optPercent(ctx, bt, "r", bp);
      const lb = optPercent(ctx, bt, "loss_bad", bp);
      const lg = optPercent(ctx, bt, "loss_good", bp);
      if (r !== undefined) ge.r = r;
      if (lb !== undefined) ge.lossBad = lb;
      if (lg !== undefined) ge.lossGood = lg;
      if (p !== undefined) put("lossBurst", ge, "loss_burst");
    }
  }
  put("delayMs", optDuration(ctx, t, "delay", path, 0, 60 * S), "delay");
  put("jitterMs", optDuration(ctx, t, "jitter", path, 0, 60 * S), "jitter");
  put("reorder", optPercent(ctx, t, "reorder", path), "reorder");
  put("reorderDelayMs", optDuration(ctx, t, "reorder_delay", path, 1, 60 * S), "reorder_delay");
  put("duplicate", optPercent(ctx, t, "duplicate", path), "duplicate");
  put("corrupt", optPercent(ctx, t, "corrupt", path), "corrupt");
  put("rateBitsPerSecond", optRate(ctx, t, "rate", path), "rate");
  put("queueFrames", optInt(ctx, t, "queue", path, 1, 1_000_000), "queue");
  put("queueBytes", optInt(ctx, t, "queue_bytes", path, 1, 1 << 30), "queue_bytes");
  put("pmtuBlackhole", optBool(ctx, t, "pmtu_blackhole", path), "pmtu_blackhole");
  put("seed", optInt(ctx, t, "seed", path, 0, 0xffff_ffff), "seed");
  return { f, where };
}

/**
 * Checks across keys of one direction, reported where the key was written
 * (once, though a both-ways key is checked for each direction).
 */
function checkDirection(ctx: Ctx, d: Parsed): void {
  const { f, where } = d;
  const once = (path: string, message: string) => {
    if (!ctx.issues.some((i) => i.path === path && i.message === message)) ctx.err(path, message);
  };
  for (const k of ["queueFrames", "queueBytes"] as const) {
    if (f[k] !== undefined && f.rateBitsPerSecond === undefined) {
      once(where.get(k)!, `a queue bounds the rate limit: it needs "rate"`);
    }
  }
  if (f.reorderDelayMs !== undefined && f.reorder === undefined) {
    once(where.get("reorderDelayMs")!, `reorder_delay goes with "reorder"`);
  }
}

/**
 * The `faults` table of `[[lab.link]]` number `index` at `path`, if any.
 * Seeds: `seed` (default `2·index + 1`) for a → b and `seed + 1` for
 * b → a, unless a direction table sets its own.
 */
export function labLinkFaults(ctx: Ctx, lt: Tbl, path: string, index: number): LabLinkFaults {
  if (lt.faults === undefined) return { aToB: null, bToA: null };
  const fp = at(path, "faults");
  const ft = readTable(ctx, lt.faults, fp, [...FAULT_KEYS, ...DIRECTIONS]);
  if (ft === undefined) return { aToB: null, bToA: null };
  const both = parseTable(ctx, ft, fp);
  const seed = both.f.seed ?? 2 * index + 1;
  const dirs = DIRECTIONS.map((dir, i) => {
    const dp = at(fp, dir);
    const own = parseTable(ctx, subTable(ctx, ft, dir, fp, FAULT_KEYS), dp);
    const f: LinkFaults = { ...both.f, ...own.f };
    const where = new Map([...both.where, ...own.where]);
    checkDirection(ctx, { f, where });
    f.seed = own.f.seed ?? (seed + i) >>> 0;
    return Object.keys(f).some((k) => k !== "seed") ? f : null;
  });
  return { aToB: dirs[0]!, bToA: dirs[1]! };
}
