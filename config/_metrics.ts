/**
 * `[metrics]`: where `tapir run` serves Prometheus metrics (on the host's
 * own network, not through tapir's stack).
 *
 * @module
 */
import { parseIpv4, parseIpv6 } from "../stack/wire/mod.ts";
import { at, type Ctx, readTable, reqStr } from "./_check.ts";
import type { MetricsConfig } from "./types.ts";

/**
 * Validate `[metrics]`; undefined when absent or wrong (after reporting).
 *
 * @param ctx where problems go
 * @param raw the `metrics` value of the file
 * @param path its key path
 */
export function validateMetrics(ctx: Ctx, raw: unknown, path: string): MetricsConfig | undefined {
  if (raw === undefined) return undefined;
  const t = readTable(ctx, raw, path, ["listen"]);
  if (t === undefined) return undefined;
  const listen = reqStr(ctx, t, "listen", path);
  if (listen === undefined) return undefined;
  const p = at(path, "listen");
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(listen);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 1 && port <= 65535)) {
    ctx.err(
      p,
      `bad listen address "${listen}": expected IPV4:PORT or [IPV6]:PORT with a port 1-65535, like "127.0.0.1:9430"`,
    );
    return undefined;
  }
  const hostname = m[1] ?? m[2]!;
  try {
    if (m[1] !== undefined) parseIpv6(hostname);
    else parseIpv4(hostname);
  } catch (e) {
    ctx.err(p, `bad listen address "${listen}": ${(e as Error).message}`);
    return undefined;
  }
  return { listen: { hostname, port } };
}
