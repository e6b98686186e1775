/**
 * Helpers for end-to-end tests: network namespaces the test makes and
 * removes, commands run inside them with a timeout, long-running processes
 * killed by PID, and `tapir run` started inside a namespace.
 *
 * Safety (tests/README and DESIGN.md "Tests"): every namespace is named
 * with the caller's prefix plus the PID, every device lives inside such a
 * namespace, every command is bounded in time, and `cleanup()` deletes all
 * of it (call it in `finally`, or use {@link withNetns}).
 *
 * @module
 */
import type { TapStats } from "../../link/mod.ts";
import { hasTool, missingTools, packagesFor } from "../tools.ts";

/** Absolute path of the repository. */
export const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** True when the test process runs as root. */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** True under `CI=true`, where a missing privilege or tool is a failure. */
export function isCi(): boolean {
  return Deno.env.get("CI") === "true";
}

/**
 * The root policy as a `Deno.test` `ignore` value: ignored (with a message
 * on stderr saying why) when not root, except under `CI=true`, where the
 * test runs and {@link requireRoot} fails it.
 */
export function ignoreUnlessRoot(what: string): boolean {
  return ignoreUnlessReady(what, []);
}

/**
 * The `Deno.test` `ignore` value of an end-to-end test that needs root and
 * `tools` (keys of tests/tools.ts): ignored, with a message saying what is
 * missing, when it cannot run — never reported as ok. Under `CI=true` it is
 * never ignored: the test runs, and {@link requireRoot} / {@link requireTool}
 * fail it.
 */
export function ignoreUnlessReady(what: string, tools: readonly string[]): boolean {
  if (isCi()) return false;
  const why: string[] = [];
  if (!isRoot()) why.push("root (network namespaces and TAP devices)");
  const missing = missingTools(tools);
  if (missing.length > 0) {
    why.push(`${missing.join(", ")} (apt-get install ${packagesFor(missing).join(" ")})`);
  }
  if (why.length === 0) return false;
  console.error(`ignored "${what}": needs ${why.join(" and ")}`);
  return true;
}

/**
 * Throw when not root under `CI=true`; return false (the caller returns)
 * when not root otherwise.
 */
export function requireRoot(t?: Deno.TestContext): boolean {
  if (isRoot()) return true;
  const what = t?.name ?? "this test";
  if (isCi()) throw new Error(`${what} needs root (CI=true: a skip is a failure)`);
  console.error(`skipped "${what}": needs root`);
  return false;
}

/**
 * Fail (CI) or report false when `tool` is not installed. A test that can
 * be missing a tool declares it in {@link ignoreUnlessReady} too, so that
 * outside CI it is reported as ignored rather than as an empty ok.
 */
export function requireTool(tool: string): Promise<boolean> {
  if (hasTool(tool)) return Promise.resolve(true);
  if (isCi()) {
    return Promise.reject(
      new Error(`${tool} is required (CI=true; apt-get install ${packagesFor([tool]).join(" ")})`),
    );
  }
  console.error(`skipped: ${tool} is not installed`);
  return Promise.resolve(false);
}

/** The result of a finished command. */
export interface RunResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Kill the command after this many ms. Default 20 000. */
  timeoutMs?: number;
  /** Throw when the exit code is not 0. Default true. */
  check?: boolean;
  /** Text written to stdin. */
  stdin?: string;
  env?: Record<string, string>;
}

/** Run `cmd` to completion with captured output and a timeout (the process is killed by PID). */
export async function run(cmd: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: opts.stdin === undefined ? "null" : "piped",
    env: opts.env,
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    const r: RunResult = {
      code: out.code,
      signal: out.signal,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
    if (timedOut) {
      throw new Error(`timed out after ${timeoutMs} ms: ${cmd.join(" ")}\n${r.stderr}`);
    }
    if ((opts.check ?? true) && r.code !== 0) {
      throw new Error(`exit ${r.code}: ${cmd.join(" ")}\n${r.stdout}${r.stderr}`);
    }
    return r;
  } finally {
    clearTimeout(timer);
  }
}

/** A process started with {@link Netns.spawn}. */
export interface Spawned {
  readonly pid: number;
  readonly child: Deno.ChildProcess;
  /** Send `signal` to this PID (no-op once exited). */
  kill(signal?: Deno.Signal): void;
  /** Wait for exit (bounded: SIGKILL after `timeoutMs`). */
  wait(timeoutMs?: number): Promise<RunResult>;
}

/** Start a long-running command; its output is collected until it exits. */
export function spawn(cmd: string[], env?: Record<string, string>): Spawned {
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env,
  }).spawn();
  const output = child.output();
  let exited = false;
  output.finally(() => exited = true).catch(() => {});
  return {
    pid: child.pid,
    child,
    kill(signal: Deno.Signal = "SIGTERM") {
      if (exited) return;
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    },
    async wait(timeoutMs = 10_000) {
      const timer = setTimeout(() => {
        if (!exited) {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }
      }, timeoutMs);
      try {
        const out = await output;
        const dec = new TextDecoder();
        return {
          code: out.code,
          signal: out.signal,
          stdout: dec.decode(out.stdout),
          stderr: dec.decode(out.stderr),
        };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** A network namespace made by a test. */
export class Netns {
  readonly name: string;
  readonly #spawned: Spawned[];

  constructor(name: string, spawned: Spawned[]) {
    this.name = name;
    this.#spawned = spawned;
  }

  /** Run `cmd` inside the namespace (`ip netns exec`). */
  exec(cmd: string[], opts?: RunOptions): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.name, ...cmd], opts);
  }

  /** `ip -n NS ...args`. */
  ip(...args: string[]): Promise<RunResult> {
    return run(["ip", "-n", this.name, ...args]);
  }

  /** Start a long-running command inside the namespace; killed by cleanup(). */
  spawn(cmd: string[], env?: Record<string, string>): Spawned {
    const s = spawn(["ip", "netns", "exec", this.name, ...cmd], env);
    this.#spawned.push(s);
    return s;
  }

  /** True when `dev` exists in this namespace. */
  async hasLink(dev: string): Promise<boolean> {
    const r = await run(["ip", "-n", this.name, "link", "show", "dev", dev], { check: false });
    return r.code === 0;
  }

  /** Interface counters (`ip -s -j link show dev`). */
  async linkStats(dev: string): Promise<{ rx_packets: number; tx_packets: number }> {
    const r = await run(["ip", "-n", this.name, "-s", "-j", "link", "show", "dev", dev]);
    const j = JSON.parse(r.stdout)[0];
    return { rx_packets: j.stats64.rx.packets, tx_packets: j.stats64.tx.packets };
  }
}

/** A set of namespaces, processes and temp dirs that `cleanup()` removes. */
export class Topology {
  readonly prefix: string;
  readonly namespaces: Netns[] = [];
  readonly #spawned: Spawned[] = [];
  readonly #tempDirs: string[] = [];

  /** @param prefix e.g. `tpl-e2e`; names become `PREFIX-<pid>-<name>`. */
  constructor(prefix: string) {
    this.prefix = `${prefix}-${Deno.pid}`;
  }

  /** Make a namespace `PREFIX-<pid>-<name>` with `lo` up. */
  async netns(name: string): Promise<Netns> {
    const full = `${this.prefix}-${name}`;
    await run(["ip", "netns", "add", full]);
    const ns = new Netns(full, this.#spawned);
    this.namespaces.push(ns);
    await ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /** A temp dir removed by cleanup(). */
  tempDir(): string {
    const d = Deno.makeTempDirSync({ prefix: "tpl-" });
    this.#tempDirs.push(d);
    return d;
  }

  /** Track a process started elsewhere so cleanup() kills it. */
  track(s: Spawned): Spawned {
    this.#spawned.push(s);
    return s;
  }

  /** Kill every process started (by PID), delete every namespace and temp dir. */
  async cleanup(): Promise<void> {
    for (const s of this.#spawned) s.kill("SIGKILL");
    for (const s of this.#spawned) await s.wait(2000).catch(() => {});
    for (const ns of this.namespaces.reverse()) {
      await run(["ip", "netns", "del", ns.name], { check: false });
    }
    this.namespaces.length = 0;
    for (const d of this.#tempDirs) Deno.removeSync(d, { recursive: true });
    this.#tempDirs.length = 0;
  }
}

/** Make one namespace (see {@link Topology}); call `cleanup()` on the returned topology. */
export async function makeNetns(prefix: string): Promise<Netns & { cleanup(): Promise<void> }> {
  const topo = new Topology(prefix);
  const ns = await topo.netns("ns");
  return Object.assign(ns, { cleanup: () => topo.cleanup() });
}

/** Run `fn` with a fresh {@link Topology}, cleaned up afterwards whatever happens. */
export async function withTopology<T>(
  prefix: string,
  fn: (topo: Topology) => Promise<T>,
): Promise<T> {
  const topo = new Topology(prefix);
  try {
    return await fn(topo);
  } finally {
    await topo.cleanup();
  }
}

/** Poll `cond` every 50 ms until true or `timeoutMs` passed; throws with `what` on timeout. */
export async function waitFor(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A bridge `br0` in `ns` (no STP, no forward delay, no multicast snooping,
 * so NDP's multicast reaches every port) with these addresses (IPv6 ones
 * `nodad`), up.
 */
export async function bridge(ns: Netns, addrs: readonly string[]): Promise<void> {
  await ns.ip(
    "link",
    "add",
    "br0",
    "type",
    "bridge",
    "stp_state",
    "0",
    "forward_delay",
    "0",
    "mcast_snooping",
    "0",
  );
  for (const x of addrs) {
    await ns.ip("addr", "add", x, "dev", "br0", ...(x.includes(":") ? ["nodad"] : []));
  }
  await ns.ip("link", "set", "br0", "up");
}

/** Put `dev` of `ns` into its bridge `br0` ({@link bridge}) and bring it up. */
export async function enslave(ns: Netns, dev: string): Promise<void> {
  await ns.ip("link", "set", dev, "master", "br0");
  await ns.ip("link", "set", dev, "up");
}

/** Options of {@link moveTapToNs}. */
export interface MoveTapOptions {
  /** Address with prefix, e.g. `192.0.2.2/24`. */
  address?: string | string[];
  mtu?: number;
  /** Default true. */
  up?: boolean;
}

/** Move the kernel side of TAP `dev` from `from` into the peer namespace `to` and configure it. */
export async function moveTapToNs(
  dev: string,
  from: Netns,
  to: Netns,
  opts: MoveTapOptions = {},
): Promise<void> {
  await from.ip("link", "set", "dev", dev, "netns", to.name);
  if (opts.mtu !== undefined) await to.ip("link", "set", "dev", dev, "mtu", String(opts.mtu));
  const addrs = opts.address === undefined
    ? []
    : Array.isArray(opts.address)
    ? opts.address
    : [opts.address];
  for (const a of addrs) {
    await to.ip("addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : []));
  }
  if (opts.up ?? true) await to.ip("link", "set", "dev", dev, "up");
}

/** A running `tapir run`. */
export interface Tapir {
  readonly pid: number;
  readonly configPath: string;
  readonly controlPath: string;
  readonly captureDir: string | undefined;
  /** The checkout it runs from. */
  readonly repo: string;
  /** Signal tapir and wait for it to exit (SIGKILL after `timeoutMs`). */
  stop(
    signal?: Deno.Signal,
    timeoutMs?: number,
  ): Promise<{ code: number; signal: Deno.Signal | null; ms: number; stderr: string }>;
  /** `tapir show stats --control SOCK --json`, parsed. */
  stats(): Promise<TapirStats>;
}

/** What `tapir show stats --json` prints. */
export interface TapirStats {
  stack: Record<string, unknown>;
  nics: Record<string, Record<string, number>>;
}

/** Options of {@link startTapir}. */
export interface StartTapirOptions {
  /** TOML text of the configuration. */
  config: string;
  /** Namespace tapir runs in. */
  ns: Netns;
  /** The topology whose cleanup() kills tapir and removes its temp dir. */
  topo: Topology;
  /** Write pcap files to a temp dir (returned as `captureDir`). */
  capture?: boolean;
  extraArgs?: string[];
  /** How long to wait for every TAP to appear. Default 15 000 ms. */
  startTimeoutMs?: number;
  /** Checkout whose main.ts runs (default this repository; benchmarks compare against another). */
  repo?: string;
}

/** The permissions `tapir run` gets in tests (those of `deno task tapir`). */
export const TAPIR_PERMS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  // The control socket is a Unix socket, which Deno puts under --allow-net.
  "--allow-net",
  // As `deno task tapir` and the compiled binary: the link driver's idle GC.
  "--v8-flags=--expose-gc",
];

/** The `tap = "..."` values of a configuration's interfaces. */
export function tapsOf(config: string): string[] {
  return [...config.matchAll(/^\s*tap\s*=\s*"([^"]+)"/gm)].map((m) => m[1]!);
}

/**
 * Start `main.ts run CONFIG --control SOCK [--capture DIR]` inside `ns` and
 * wait (bounded) until every TAP of the configuration exists there.
 */
export async function startTapir(opts: StartTapirOptions): Promise<Tapir> {
  const dir = opts.topo.tempDir();
  const configPath = `${dir}/tapir.toml`;
  const controlPath = `${dir}/control.sock`;
  Deno.writeTextFileSync(configPath, opts.config);
  const captureDir = opts.capture ? `${dir}/capture` : undefined;
  if (captureDir) Deno.mkdirSync(captureDir);
  const repo = opts.repo ?? REPO;
  const cmd = [
    Deno.execPath(),
    "run",
    ...TAPIR_PERMS,
    `${repo}/main.ts`,
    "run",
    configPath,
    ...(captureDir ? ["--capture", captureDir] : []),
    "--control",
    controlPath,
    ...(opts.extraArgs ?? []),
  ];
  const proc = opts.ns.spawn(cmd);
  let exited: RunResult | null = null;
  const done = proc.wait(24 * 3600_000).then((r) => exited = r);
  const taps = tapsOf(opts.config);
  try {
    await waitFor(`TAPs ${taps.join(", ")} in ${opts.ns.name}`, async () => {
      if (exited !== null) {
        throw new Error(
          `tapir exited with ${exited.code} before its TAPs appeared:\n${exited.stderr}`,
        );
      }
      for (const t of taps) if (!(await opts.ns.hasLink(t))) return false;
      // The control socket comes up after the TAPs: wait for it too, so a test's
      // first `tapir show` (or a look at the socket) never races tapir's start.
      try {
        Deno.statSync(controlPath);
      } catch {
        return false;
      }
      return true;
    }, opts.startTimeoutMs ?? 15_000);
  } catch (e) {
    proc.kill("SIGKILL");
    await done;
    throw e;
  }
  return {
    pid: proc.pid,
    configPath,
    controlPath,
    captureDir,
    repo,
    async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 5000) {
      const t0 = performance.now();
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      try {
        const r = await done;
        return { code: r.code, signal: r.signal, ms: performance.now() - t0, stderr: r.stderr };
      } finally {
        clearTimeout(timer);
      }
    },
    async stats() {
      const r = await run([
        Deno.execPath(),
        "run",
        ...TAPIR_PERMS,
        `${repo}/main.ts`,
        "show",
        "stats",
        "--control",
        controlPath,
        "--json",
      ], { timeoutMs: 10_000 });
      return JSON.parse(r.stdout) as TapirStats;
    },
  };
}

/** A running `bench/link_wire.ts` between two peer namespaces. */
export interface LinkWire {
  /** Peer with `192.0.2.1/24` on TAP `tapA`. */
  a: Netns;
  /** Peer with `192.0.2.2/24` on TAP `tapB`. */
  b: Netns;
  /** The namespace the wire process runs in. */
  w: Netns;
  tapA: string;
  tapB: string;
  proc: Spawned;
  /** SIGTERM the wire; its exit code, and the endpoint counters it prints. */
  stop(): Promise<{ code: number; stats: Record<string, TapStats> }>;
}

/**
 * Start `bench/link_wire.ts` (two TAPs joined by {@link LinkDriver}, no
 * stack) in a namespace of `topo` and move the TAPs' kernel sides into
 * two peer namespaces on one subnet (192.0.2.1/24 and 192.0.2.2/24).
 */
export async function startLinkWire(
  topo: Topology,
  opts: { offload: boolean; tag: string; mtu?: number },
): Promise<LinkWire> {
  const w = await topo.netns(`${opts.tag}w`);
  const a = await topo.netns(`${opts.tag}a`);
  const b = await topo.netns(`${opts.tag}b`);
  const tapA = `tplw${opts.tag}a`, tapB = `tplw${opts.tag}b`;
  const proc = w.spawn([
    Deno.execPath(),
    "run",
    "--allow-ffi",
    `${REPO}/bench/link_wire.ts`,
    tapA,
    tapB,
    ...(opts.offload ? [] : ["--no-offload"]),
    ...(opts.mtu ? ["--mtu", String(opts.mtu)] : []),
  ]);
  await waitFor(`link_wire TAPs in ${w.name}`, async () => {
    return (await w.hasLink(tapA)) && (await w.hasLink(tapB));
  });
  await moveTapToNs(tapA, w, a, { address: "192.0.2.1/24" });
  await moveTapToNs(tapB, w, b, { address: "192.0.2.2/24" });
  return {
    a,
    b,
    w,
    tapA,
    tapB,
    proc,
    async stop() {
      proc.kill("SIGTERM");
      const r = await proc.wait(5000);
      return { code: r.code, stats: r.stdout.trim() ? JSON.parse(r.stdout) : {} };
    },
  };
}
