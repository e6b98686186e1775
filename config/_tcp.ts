/**
 * `[tcp]`: the TCP settings of the stack, named after Linux's
 * `net.ipv4.tcp_*` / `net.core.somaxconn` sysctls (without the `tcp_`
 * prefix). Absent keys keep Linux's defaults.
 *
 * @module
 */
import { DEFAULT_TCP_SETTINGS, type TcpSettings } from "../stack/mod.ts";
import { bool, type Ctx, duration, int, oneOf, readTable } from "./_check.ts";

const TCP_KEYS = [
  "congestion_control",
  "sack",
  "timestamps",
  "window_scaling",
  "syncookies",
  "rmem_default",
  "rmem_max",
  "wmem_max",
  "max_syn_backlog",
  "somaxconn",
  "syn_retries",
  "synack_retries",
  "retries2",
  "fin_timeout",
  "keepalive_time",
  "keepalive_intvl",
  "keepalive_probes",
  "rto_min",
  "challenge_ack_limit",
  "ecn",
  "mtu_probing",
  "base_mss",
] as const;

const S = 1000;
const KIB = 1024, MIB = 1024 * 1024;

/** Validate `[tcp]`; Linux's defaults for what it leaves out. */
export function validateTcp(ctx: Ctx, raw: unknown, path: string): TcpSettings {
  const d = DEFAULT_TCP_SETTINGS;
  const t = raw === undefined ? {} : readTable(ctx, raw, path, TCP_KEYS) ?? {};
  const rmemDefault = int(ctx, t, "rmem_default", path, d.rmemDefault, 4 * KIB, 64 * MIB);
  const rmemMax = int(
    ctx,
    t,
    "rmem_max",
    path,
    Math.max(d.rmemMax, rmemDefault),
    4 * KIB,
    1024 * MIB,
  );
  if (rmemMax < rmemDefault) {
    ctx.err(
      `${path}.rmem_max`,
      `rmem_max (${rmemMax}) is below rmem_default (${rmemDefault}): the buffer only grows from its default`,
    );
  }
  return {
    ...d,
    congestion: oneOf(ctx, t, "congestion_control", path, ["cubic", "reno"] as const, d.congestion),
    sack: bool(ctx, t, "sack", path, d.sack),
    timestamps: bool(ctx, t, "timestamps", path, d.timestamps),
    windowScaling: bool(ctx, t, "window_scaling", path, d.windowScaling),
    syncookies: bool(ctx, t, "syncookies", path, d.syncookies),
    rmemDefault,
    rmemMax,
    wmemMax: int(ctx, t, "wmem_max", path, d.wmemMax, 4 * KIB, 1024 * MIB),
    maxSynBacklog: int(ctx, t, "max_syn_backlog", path, d.maxSynBacklog, 1, 1 << 20),
    somaxconn: int(ctx, t, "somaxconn", path, d.somaxconn, 1, 1 << 20),
    synRetries: int(ctx, t, "syn_retries", path, d.synRetries, 1, 127),
    synAckRetries: int(ctx, t, "synack_retries", path, d.synAckRetries, 1, 127),
    retries2: int(ctx, t, "retries2", path, d.retries2, 1, 127),
    finTimeoutMs: duration(ctx, t, "fin_timeout", path, d.finTimeoutMs, S, 3600 * S),
    keepaliveIdleMs: duration(ctx, t, "keepalive_time", path, d.keepaliveIdleMs, S, 86_400 * S),
    keepaliveIntervalMs: duration(
      ctx,
      t,
      "keepalive_intvl",
      path,
      d.keepaliveIntervalMs,
      S,
      3600 * S,
    ),
    keepaliveProbes: int(ctx, t, "keepalive_probes", path, d.keepaliveProbes, 1, 127),
    minRtoMs: duration(ctx, t, "rto_min", path, d.minRtoMs, 1, 60 * S),
    challengeAckLimit: int(ctx, t, "challenge_ack_limit", path, d.challengeAckLimit, 1, 1 << 30),
    ecn: int(ctx, t, "ecn", path, d.ecn, 0, 2) as 0 | 1 | 2,
    mtuProbing: bool(ctx, t, "mtu_probing", path, d.mtuProbing),
    baseMss: int(ctx, t, "base_mss", path, d.baseMss, 536, 9000),
  };
}
