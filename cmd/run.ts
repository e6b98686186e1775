/**
 * `tapir run FILE`: build the stack from a config, attach every
 * interface's TAP device, and run until SIGINT or SIGTERM. SIGHUP (and
 * `tapir reload`) re-reads FILE and applies the difference; SIGUSR2 logs
 * every counter and the firewall tables; SIGUSR1 is ignored (Deno would
 * start its inspector on it). Under systemd (NOTIFY_SOCKET) it reports
 * READY=1, RELOADING=1, STOPPING=1 and, with WatchdogSec, WATCHDOG=1.
 *
 * @module
 */
import { getLogger, type LogLevel } from "@logtape/logtape";
import { type Config, ConfigErrors, type InterfaceConfig, loadConfig } from "../config/mod.ts";
import { buildStack, ServiceError, type ServiceOptions } from "../config/build.ts";
import { applyConfig, type ReloadResult } from "../config/reload.ts";
import { FileLeaseStore, type LinkEndpoint, socketActivity, SystemClock } from "../stack/mod.ts";
import { LinkDriver, openTap, PcapEndpoint, type TapEndpoint, TapError } from "../link/mod.ts";
import {
  controlAnswer,
  ControlInUseError,
  defaultControlPath,
  queryControl,
  serveControl,
} from "./control.ts";
import { LOG_LEVELS, type LogFormat, setupLogging } from "./log.ts";
import { formatStatsText } from "./_stats_text.ts";
import { monotonicUsec, neutraliseSigusr1, notifier } from "./_sys.ts";
import { serveMetrics } from "./metrics.ts";

/** Options of {@link runCommand}. */
export interface RunOptions {
  capture?: string;
  control?: string;
  logFormat?: string;
  logLevel?: string;
}

/** The answer of a reload (control socket `reload`, `tapir reload`). */
export interface ReloadAnswer extends Partial<ReloadResult> {
  ok: boolean;
  /** Every error of an invalid file (nothing was changed). */
  errors?: string[];
}

const log = getLogger(["tapir", "run"]);

async function readConfig(file: string): Promise<Config | string[]> {
  try {
    return await loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.toString());
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      return [`cannot read ${file}: ${(e as Error).message}`];
    }
    throw e;
  }
}

/** Run `tapir run FILE`; resolves with the exit code once tapir stopped. */
export async function runCommand(file: string, o: RunOptions): Promise<number> {
  const format = (o.logFormat ?? "text") as LogFormat;
  if (format !== "text" && format !== "json") {
    console.error(`tapir run: --log-format must be text or json, not "${o.logFormat}"`);
    return 2;
  }
  const level = (o.logLevel ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    console.error(`tapir run: --log-level must be one of ${LOG_LEVELS.join(", ")}, not "${level}"`);
    return 2;
  }
  setupLogging(format, level);
  const first = await readConfig(file);
  if (Array.isArray(first)) {
    for (const err of first) console.error(err);
    return 1;
  }
  let config: Config = first;
  if ((await Deno.permissions.query({ name: "ffi" })).state !== "granted") {
    console.error(
      "tapir run: TAP devices need FFI: run deno with --allow-ffi (deno task tapir does)",
    );
    return 1;
  }
  // No signal may open a debugger or any listening socket.
  const stopWatchingUsr1 = neutraliseSigusr1();
  const controlPath = o.control ?? defaultControlPath(config.router.hostname);
  // Before any TAP is touched: a second tapir must not take the first one's devices.
  try {
    await queryControl(controlPath, "addresses");
    console.error(new ControlInUseError(controlPath).message);
    return 1;
  } catch {
    // Nobody answers: the path is free (or a stale file that serveControl replaces).
  }
  if (o.capture !== undefined) Deno.mkdirSync(o.capture, { recursive: true });
  const taps: TapEndpoint[] = [];
  const tapOf = new Map<string, TapEndpoint>();
  const openLink = (iface: InterfaceConfig): LinkEndpoint => {
    const tap = openTap({
      device: iface.tap,
      mtu: iface.mtu,
      offload: iface.offload,
      up: iface.up,
    });
    taps.push(tap);
    tapOf.set(iface.name, tap);
    const capture = o.capture !== undefined ? `${o.capture}/${iface.name}.pcap` : iface.capture;
    log.info("attached {iface} to TAP {tap} (mtu {mtu}, offloads {offload})", {
      iface: iface.name,
      tap: iface.tap,
      mtu: iface.mtu,
      offload: tap.capabilities.offloads,
    });
    return capture === undefined ? tap : new PcapEndpoint(tap, { path: capture });
  };
  // Leases on disk (written before each ACK), lease times in wall-clock time.
  const services: ServiceOptions = {
    leaseStore: (leaseFile) => new FileLeaseStore(leaseFile),
    wallClock: Date.now,
  };
  let built;
  try {
    built = buildStack(config, { openLink, services });
  } catch (e) {
    for (const t of taps) t.close();
    if (e instanceof TapError || e instanceof ServiceError) {
      console.error(`tapir run: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const { stack, nics } = built;
  for (const nic of stack.nics.values()) {
    log.info("{nic} {mac} addresses {addrs}", {
      nic: nic.name,
      mac: nic.toString(),
      addrs: [...stack.ipv4.describeAddresses(nic), ...stack.ipv6.describeAddresses(nic)].join(" "),
    });
  }
  const driver = new LinkDriver({
    timers: stack.clock instanceof SystemClock ? stack.clock : undefined,
    activity: socketActivity,
    held: () => stack.tableEntries(),
  });
  for (const t of taps) driver.add(t);
  stack.statsSources.set("driver", () => ({
    polls: driver.polls,
    syncPolls: driver.syncPolls,
    yieldMicros: driver.yieldMicros,
    yieldMaxMicros: driver.yieldMaxMicros,
    longPasses: driver.longPasses,
    longPassMicros: driver.longPassMicros,
    timerTurns: driver.timerTurns,
    mallocTrims: driver.mallocTrims,
  }));
  const notify = notifier();

  // One reload at a time: a SIGHUP during a `tapir reload` waits for it, so
  // each diff is taken against the configuration the other one left.
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (why: string): Promise<ReloadAnswer> => {
    const next = reloading.then(() => reloadNow(why));
    reloading = next.catch(() => {});
    return next;
  };
  const reloadNow = async (why: string): Promise<ReloadAnswer> => {
    log.info("{why}: reloading {file}", { why, file });
    notify?.send(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}`);
    try {
      const next = await readConfig(file);
      if (Array.isArray(next)) {
        for (const err of next) log.error("reload rejected: {err}", { err });
        log.warn("reload rejected: {n} error(s); the running configuration is unchanged", {
          n: next.length,
        });
        return { ok: false, errors: next };
      }
      const r = applyConfig(stack, nics, config, next, {
        openLink: (iface) => {
          const link = openLink(iface);
          driver.add(tapOf.get(iface.name)!);
          return link;
        },
        services,
        removed: (name) => {
          const tap = tapOf.get(name);
          if (tap === undefined) return;
          driver.remove(tap);
          tapOf.delete(name);
          taps.splice(taps.indexOf(tap), 1);
        },
      });
      config = next;
      for (const what of r.applied) log.info("reload: {what}", { what });
      for (const what of r.notApplied) {
        log.warn("reload: {what}: not applied until tapir restarts", { what });
      }
      if (r.applied.length === 0 && r.notApplied.length === 0) log.info("reload: no changes");
      return { ok: true, ...r };
    } finally {
      notify?.send("READY=1");
    }
  };

  let control;
  try {
    control = await serveControl(stack, controlPath, {
      reload: () =>
        reload("tapir reload").catch((e): ReloadAnswer => {
          log.error("reload failed: {error}", {
            error: e instanceof Error ? (e.stack ?? e.message) : e,
          });
          return { ok: false, errors: [`reload failed: ${e instanceof Error ? e.message : e}`] };
        }),
    });
  } catch (e) {
    stack.ra.stop();
    stack.close();
    if (e instanceof ControlInUseError) {
      console.error(`tapir run: ${e.message}`);
      return 1;
    }
    throw e;
  }
  log.info("control socket at {path}", { path: controlPath });
  const listen = config.metrics.listen;
  let metrics: { close(): Promise<void> } | null = null;
  if (listen !== undefined) {
    try {
      metrics = serveMetrics(stack, listen, (a) => {
        log.info("metrics at http://{host}:{port}/metrics", {
          host: a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname,
          port: a.port,
        });
      });
    } catch (e) {
      control.close();
      stack.ra.stop();
      stack.close();
      console.error(
        `tapir run: cannot listen for metrics on ${listen.hostname}:${listen.port}: ${
          e instanceof Error ? e.message : e
        }`,
      );
      return 1;
    }
  }

  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info("{sig}: stopping", { sig });
    notify?.send("STOPPING=1");
    driver.stop();
  };
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  const onHup = () => {
    reload("SIGHUP").catch((e) => {
      log.error("reload failed: {error}", {
        error: e instanceof Error ? (e.stack ?? e.message) : e,
      });
    });
  };
  const onUsr2 = () => {
    const text = formatStatsText(controlAnswer(stack, "stats"), true);
    log.info("counters (non-zero)\n{text}", { text: text.trimEnd() });
    // The firewall's tables with counters, as `iptables-save -c` prints them.
    if (stack.firewall !== null) log.info("firewall\n{dump}", { dump: stack.firewall.dump() });
  };
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGINT", onInt],
    ["SIGTERM", onTerm],
    ["SIGHUP", onHup],
    ["SIGUSR2", onUsr2],
  ];
  for (const [sig, fn] of listeners) Deno.addSignalListener(sig, fn);
  // systemd's watchdog: a keep-alive at half of WatchdogSec.
  const wdUsec = Number(Deno.env.get("WATCHDOG_USEC") ?? "0");
  const wdPid = Deno.env.get("WATCHDOG_PID");
  const watchdog =
    notify !== null && wdUsec > 0 && (wdPid === undefined || Number(wdPid) === Deno.pid)
      ? setInterval(() => notify.send("WATCHDOG=1"), Math.max(1, wdUsec / 2000))
      : null;
  notify?.send(`READY=1\nSTATUS=${stack.nics.size} interfaces up`);
  try {
    await driver.run();
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
    if (watchdog !== null) clearInterval(watchdog);
    stopWatchingUsr1();
    // RFC 4861 §6.2.5: the final RAs (router lifetime 0) are written
    // synchronously to the TAPs before anything closes them.
    stack.ra.stop();
    control.close();
    await metrics?.close();
    stack.close();
    notify?.close();
  }
  log.info("stopped; every TAP closed");
  return 0;
}
