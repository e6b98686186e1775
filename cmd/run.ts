/**
 * `tapir run FILE`: build the stack from a config, attach every
 * interface's TAP device, and run until SIGINT or SIGTERM.
 *
 * @module
 */
import { getLogger, type LogLevel } from "@logtape/logtape";
import { ConfigErrors, loadConfig } from "../config/mod.ts";
import { buildStack } from "../config/build.ts";
import type { LinkEndpoint } from "../stack/mod.ts";
import { LinkDriver, openTap, PcapEndpoint, type TapEndpoint, TapError } from "../link/mod.ts";
import { controlAnswer, defaultControlPath, serveControl } from "./control.ts";
import { type LogFormat, setupLogging } from "./log.ts";
import { formatStatsText } from "./_stats_format.ts";
import { serveMetrics } from "./metrics.ts";

/** Options of {@link runCommand}. */
export interface RunOptions {
  capture?: string;
  control?: string;
  logFormat?: string;
  logLevel?: string;
}

const log = getLogger(["tapir", "run"]);

/** Run `tapir run FILE`; resolves with the exit code once tapir stopped. */
export async function runCommand(file: string, o: RunOptions): Promise<number> {
  const format = (o.logFormat ?? "text") as LogFormat;
  if (format !== "text" && format !== "json") {
    console.error(`tapir run: --log-format must be text or json, not "${o.logFormat}"`);
    return 2;
  }
  setupLogging(format, (o.logLevel ?? "info") as LogLevel);
  let config;
  try {
    config = await loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigErrors) {
      for (const err of e.errors) console.error(err.toString());
      return 1;
    }
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      console.error(`tapir run: cannot read ${file}: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
  if ((await Deno.permissions.query({ name: "ffi" })).state !== "granted") {
    console.error(
      "tapir run: TAP devices need FFI: run deno with --allow-ffi (deno task tapir does)",
    );
    return 1;
  }
  if (config.metrics !== undefined) {
    const { hostname, port } = config.metrics.listen;
    const q = await Deno.permissions.query({ name: "net", host: `${hostname}:${port}` });
    if (q.state !== "granted") {
      console.error(
        `tapir run: [metrics] listen = "${hostname}:${port}" needs network access: run deno with --allow-net (deno task tapir does)`,
      );
      return 1;
    }
  }
  if (o.capture !== undefined) Deno.mkdirSync(o.capture, { recursive: true });
  const taps: TapEndpoint[] = [];
  let built;
  try {
    built = buildStack(config, {
      openLink: (iface): LinkEndpoint => {
        const tap = openTap({
          device: iface.tap,
          mtu: iface.mtu,
          offload: iface.offload,
          up: iface.up,
        });
        taps.push(tap);
        const capture = o.capture !== undefined ? `${o.capture}/${iface.name}.pcap` : iface.capture;
        log.info("attached {iface} to TAP {tap} (mtu {mtu}, offloads {offload})", {
          iface: iface.name,
          tap: iface.tap,
          mtu: iface.mtu,
          offload: tap.capabilities.offloads,
        });
        return capture === undefined ? tap : new PcapEndpoint(tap, { path: capture });
      },
    });
  } catch (e) {
    for (const t of taps) t.close();
    if (e instanceof TapError) {
      console.error(`tapir run: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const { stack } = built;
  for (const nic of stack.nics.values()) {
    log.info("{nic} {mac} addresses {addrs}", {
      nic: nic.name,
      mac: nic.toString(),
      addrs: [...stack.ipv4.describeAddresses(nic), ...stack.ipv6.describeAddresses(nic)].join(" "),
    });
  }
  const driver = new LinkDriver();
  for (const t of taps) driver.add(t);
  stack.statsSources.set("driver", () => ({ polls: driver.polls, syncPolls: driver.syncPolls }));
  const controlPath = o.control ?? defaultControlPath(config.router.hostname);
  const control = serveControl(stack, controlPath);
  log.info("control socket at {path}", { path: controlPath });
  let metrics: Deno.HttpServer | null = null;
  if (config.metrics !== undefined) {
    try {
      metrics = serveMetrics(stack, config.metrics.listen);
    } catch (e) {
      const { hostname, port } = config.metrics.listen;
      console.error(
        `tapir run: cannot serve metrics on ${hostname}:${port}: ${(e as Error).message}`,
      );
      control.close();
      stack.close();
      return 1;
    }
  }

  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info("{sig}: stopping", { sig });
    driver.stop();
  };
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  const onUsr1 = () => {
    log.info("stats\n{stats}", { stats: formatStatsText(controlAnswer(stack, "stats")) });
    // The firewall's tables with counters, as `iptables-save -c` prints them.
    if (stack.firewall !== null) log.info("firewall\n{dump}", { dump: stack.firewall.dump() });
  };
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGUSR1", onUsr1);
  try {
    await driver.run();
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGUSR1", onUsr1);
    // RFC 4861 §6.2.5: the final RAs (router lifetime 0) are written
    // synchronously to the TAPs before anything closes them.
    stack.ra.stop();
    await metrics?.shutdown();
    control.close();
    stack.close();
  }
  log.info("stopped; every TAP closed");
  return 0;
}
