/**
 * tapir's side of bench/e2e_tcp_bench.ts: a TCP program on tapir's stack
 * (a tapir config whose interfaces name TAP devices, opened with their
 * offloads, driven by {@link LinkDriver} as `tapir run` drives them), or,
 * with `--kernel`, the same program on Deno's own sockets (Linux's stack):
 * only `stack.listen`/`stack.connect` become `Deno.listen`/`Deno.connect`.
 *
 *     deno run --allow-ffi --allow-read --allow-env bench/_tcp_tapir.ts CONFIG MODE ...
 *     deno run --allow-net bench/_tcp_tapir.ts --kernel MODE ...
 *
 * Modes (each stops by itself: `--timeout S`, default 120, bounds every wait;
 * `--go FILE` waits until FILE exists before the mode starts, so a connect
 * leaves once the benchmark has the peer listening):
 *
 *     accept HOST PORT               accept and close each connection at once until SIGTERM
 *                                    or --timeout: {"accepted", "seconds", "rate"}
 *     sink listen HOST PORT          read one connection to EOF: {"bytes", "seconds", "gbps"}
 *     source listen HOST PORT BYTES  write BYTES to one connection, then closeWrite and wait for EOF
 *     sink connect HOST PORT / source connect HOST PORT BYTES   the same, connecting
 *
 * `seconds` run from the accept (or the connect) to the EOF, as
 * bench/_tcp_peer.py measures them on the kernel's side.
 *
 * @module
 */
import {
  buildStack,
  LinkDriver,
  loadConfig,
  openTap,
  socketActivity,
  type Stack,
  SystemClock,
  type TapEndpoint,
} from "../mod.ts";

/** The connect/listen pair a mode runs on: tapir's stack or Deno's (the kernel's). */
interface Net {
  listen(o: { hostname: string; port: number }): {
    accept(): Promise<Conn>;
    close(): void;
  };
  connect(o: { hostname: string; port: number }): Promise<Conn>;
}

/** What the modes use of a connection (both Deno.TcpConn and TapirTcpConn have it). */
interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

const BLOCK = 1 << 20;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function open(net: Net, how: string, host: string, port: number, ms: number) {
  if (how === "listen") {
    const l = net.listen({ hostname: host, port });
    const c = await withTimeout(l.accept(), ms, "accept");
    l.close();
    return c;
  }
  if (how === "connect") return await withTimeout(net.connect({ hostname: host, port }), ms, how);
  throw new Error(`listen or connect, not ${how}`);
}

async function sink(net: Net, how: string, host: string, port: number, ms: number) {
  const c = await open(net, how, host, port, ms);
  const t0 = performance.now();
  const buf = new Uint8Array(BLOCK);
  let got = 0;
  const until = t0 + ms;
  for (;;) {
    const n = await withTimeout(c.read(buf), Math.max(1, until - performance.now()), "read");
    if (n === null) break;
    got += n;
  }
  const seconds = (performance.now() - t0) / 1000;
  c.close();
  return { bytes: got, seconds, gbps: got * 8 / seconds / 1e9 };
}

async function source(
  net: Net,
  how: string,
  host: string,
  port: number,
  bytes: number,
  ms: number,
) {
  const c = await open(net, how, host, port, ms);
  const t0 = performance.now();
  const block = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) block[i] = i & 0xff;
  const work = (async () => {
    let sent = 0;
    while (sent < bytes) sent += await c.write(block.subarray(0, Math.min(BLOCK, bytes - sent)));
    await c.closeWrite();
    // The peer's EOF: it read everything and closed.
    const b = new Uint8Array(65536);
    while ((await c.read(b)) !== null) { /* nothing is expected */ }
  })();
  await withTimeout(work, ms, "source");
  const seconds = (performance.now() - t0) / 1000;
  c.close();
  return { bytes, seconds, gbps: bytes * 8 / seconds / 1e9 };
}

async function acceptClose(net: Net, host: string, port: number, ms: number) {
  const l = net.listen({ hostname: host, port });
  let stopped = false;
  const stop = () => {
    stopped = true;
    l.close();
  };
  Deno.addSignalListener("SIGTERM", stop);
  const timer = setTimeout(stop, ms);
  let n = 0, first = 0, last = 0;
  try {
    while (!stopped) {
      let c: Conn;
      try {
        c = await l.accept();
      } catch (e) {
        if (stopped) break;
        throw e;
      }
      c.close();
      last = performance.now();
      if (n++ === 0) first = last;
    }
  } finally {
    clearTimeout(timer);
    Deno.removeSignalListener("SIGTERM", stop);
  }
  const seconds = n > 1 ? (last - first) / 1000 : 0;
  return { accepted: n, seconds, rate: seconds > 0 ? n / seconds : 0 };
}

function opt(args: string[], name: string, def: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
}

/** The stack of `file` on its TAPs, and the driver reading them. */
async function tapirNet(file: string): Promise<{ net: Net; driver: LinkDriver; stack: Stack }> {
  const config = await loadConfig(file);
  const taps: TapEndpoint[] = [];
  const { stack } = buildStack(config, {
    openLink: (iface) => {
      const tap = openTap({ device: iface.tap, mtu: iface.mtu, offload: iface.offload });
      taps.push(tap);
      return tap;
    },
  });
  const driver = new LinkDriver({
    timers: stack.clock instanceof SystemClock ? stack.clock : undefined,
    activity: socketActivity,
  });
  for (const t of taps) driver.add(t);
  return { net: stack, driver, stack };
}

const kernelNet: Net = {
  listen: (o) => Deno.listen({ ...o, transport: "tcp" }),
  connect: (o) => Deno.connect({ ...o, transport: "tcp" }),
};

async function main(args: string[]): Promise<number> {
  const kernel = args[0] === "--kernel";
  const rest = args.slice(1);
  const ms = Number(opt(args, "--timeout", "120")) * 1000;
  let net = kernelNet;
  let driver: LinkDriver | null = null;
  let stack: Stack | null = null;
  if (!kernel) {
    if (args[0] === undefined) throw new Error("usage: _tcp_tapir.ts CONFIG|--kernel MODE ...");
    ({ net, driver, stack } = await tapirNet(args[0]));
  }
  const loop = driver?.run();
  const go = opt(args, "--go", "");
  if (go !== "") {
    // Wait (bounded) for the benchmark to say the peer is ready.
    const until = performance.now() + ms;
    for (;;) {
      try {
        Deno.statSync(go);
        break;
      } catch {
        if (performance.now() > until) throw new Error(`--go ${go}: not there after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  const [mode, a1, a2, a3, a4] = rest;
  let out: unknown;
  try {
    if (mode === "accept") out = await acceptClose(net, a1!, Number(a2), ms);
    else if (mode === "sink") out = await sink(net, a1!, a2!, Number(a3), ms);
    else if (mode === "source") out = await source(net, a1!, a2!, Number(a3), Number(a4), ms);
    else throw new Error(`unknown mode ${mode} (accept, sink, source)`);
    if (stack !== null) {
      const t = stack.stats.tcp as unknown as Record<string, number>;
      const nz = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== 0));
      out = { ...(out as object), tcpStats: nz };
    }
  } finally {
    driver?.stop();
    await loop;
    stack?.close();
  }
  console.log(JSON.stringify(out));
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
