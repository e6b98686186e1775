/**
 * tapir's command line: `tapir check|run|lab|show|reload|set ...`.
 *
 * @module
 */
import { Command } from "commander";
import denoJson from "./deno.json" with { type: "json" };
import { checkCommand } from "./cmd/check.ts";
import { runCommand } from "./cmd/run.ts";
import { labCommand } from "./cmd/lab.ts";
import { showCommand } from "./cmd/show.ts";
import { reloadCommand } from "./cmd/reload.ts";
import { setCommand } from "./cmd/set.ts";

/** tapir's version, from deno.json. */
export const VERSION: string = denoJson.version;

function program(setCode: (c: number) => void): Command {
  const p = new Command("tapir")
    .description("A userspace IPv4/IPv6 network stack and software router on Linux TAP devices.")
    .version(VERSION, "-V, --version", "print the version")
    .showHelpAfterError()
    .exitOverride();

  p.command("check")
    .description("validate config and lab files; print a summary or every error")
    .argument("<file...>", "TOML files")
    .action(async (files: string[]) => setCode(await checkCommand(files, {})));

  p.command("run")
    .description("attach every interface's TAP device and run the stack until SIGINT/SIGTERM")
    .argument("<file>", "config file")
    .option("--capture <dir>", "write <dir>/<interface>.pcap for every interface")
    .option(
      "--control <path>",
      "control socket for `tapir show` (default: $TMPDIR/tapir-<hostname>-<netns inode>.sock)",
    )
    .option("--log-format <format>", "text or json", "text")
    .option("--log-level <level>", "trace, debug, info, warning, error, fatal", "info")
    .action(async (file: string, o) => setCode(await runCommand(file, o)));

  p.command("reload")
    .description(
      "make a running tapir re-read its config file and apply the difference (like SIGHUP)",
    )
    .option("--control <path>", "control socket path")
    .option("--hostname <name>", "hostname of the running tapir, to find its default socket")
    .option("--json", "print JSON")
    .action(async (o) => setCode(await reloadCommand(o)));

  p.command("lab")
    .description(
      "run a virtual lab: several stacks on in-memory links, with probes and expectations",
    )
    .argument("<file>", "lab file")
    .option("--virtual-time", "run on a manual clock: a 60 s scenario takes well under a second")
    .option("--log-level <level>", "trace, debug, info, warning, error", "warning")
    .action(async (file: string, o) => setCode(await labCommand(file, o)));

  p.command("show")
    .description(
      "ask a running tapir (through its control socket) for stats, routes, neighbors, addresses, RA state, connections, firewall rules, DHCP leases, the DNS forwarder or TCP sockets",
    )
    .argument(
      "<what>",
      "stats | routes | neighbors | addresses | ra | conntrack | firewall | leases | dns | sockets",
    )
    .option("--control <path>", "control socket path")
    .option("--hostname <name>", "hostname of the running tapir, to find its default socket")
    .option("--json", "print JSON")
    .action(async (what: string, o) => setCode(await showCommand(what, o)));

  p.command("set")
    .description(
      "change or list a named set ([firewall.sets.NAME]) of a running tapir, as ipset does: " +
        "an add takes effect from the next packet",
    )
    .argument("<op>", "add | del | list")
    .argument("[name]", "the set (list without NAME: every set)")
    .argument("[entry]", "192.0.2.7, 2001:db8::/48, 192.0.2.7,udp:53, 192.0.2.0/24,lan0 ...")
    .option(
      "--timeout <t>",
      "add: how long the entry stays (600 = seconds, or 10m, 1h; 0: for ever)",
    )
    .option("--control <path>", "control socket path")
    .option("--hostname <name>", "hostname of the running tapir, to find its default socket")
    .option("--json", "print JSON")
    .action(async (op: string, name: string | undefined, entry: string | undefined, o) =>
      setCode(await setCommand(op, name, entry, o))
    );
  return p;
}

if (import.meta.main) {
  let code = 0;
  try {
    await program((c) => code = c).parseAsync(Deno.args, { from: "user" });
  } catch (e) {
    // commander's exitOverride: help/version exit 0, usage errors exit 2.
    const ce = e as { exitCode?: number; code?: string };
    if (typeof ce.exitCode === "number") {
      code = ce.code === "commander.helpDisplayed" || ce.code === "commander.version" ||
          ce.code === "commander.help"
        ? 0
        : 2;
    } else {
      console.error(`tapir: ${e instanceof Error ? e.message : String(e)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
