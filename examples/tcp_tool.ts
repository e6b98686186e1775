/**
 * A bulk TCP source and sink on tapir's stack, written the way it would be
 * against Deno's own TCP: only `Deno.connect(...)` / `Deno.listen(...)`
 * became `stack.connect(...)` / `stack.listen(...)`.
 *
 *     deno run --allow-ffi --allow-read --allow-env examples/tcp_tool.ts CONFIG \
 *       listen PORT (--source BYTES | --sink) [--count N | --forever] [--random]
 *     deno run --allow-ffi --allow-read --allow-env examples/tcp_tool.ts CONFIG \
 *       connect HOST PORT (--source BYTES | --sink) [--random]
 *
 * CONFIG is a tapir config whose interfaces name TAP devices (root or
 * CAP_NET_ADMIN). `--source BYTES` sends BYTES bytes (a deterministic
 * pseudo-random stream, or `--random` ones; suffixes k, M, G = 2^10, 2^20,
 * 2^30), shuts the write side down and waits until the peer has
 * acknowledged everything; `--sink` reads to the end of the stream. Each
 * connection prints one JSON line on stdout:
 *
 *     {"role":"sink","peer":"192.0.2.2:40000","bytes":104857600,
 *      "sha256":"…","ms":512.3,"gbps":1.637}
 *
 * `listen` serves one connection (`--count N`: N, `--forever`: until
 * SIGINT/SIGTERM), `connect` one. `connect` waits `--wait-ms` (default
 * 0) before dialling, for a peer whose link comes up after tapir starts. A
 * connect that fails exits 1 with the error's name on stderr, e.g.
 * `tcp_tool: connect 192.0.2.2 port 9: ConnectionRefused: …`.
 */
import { createHash } from "node:crypto";
import {
  buildStack,
  LinkDriver,
  loadConfig,
  openTap,
  socketActivity,
  SystemClock,
  type TapEndpoint,
  type TapirTcpConn,
} from "../mod.ts";

const USAGE = "usage: tcp_tool.ts CONFIG listen PORT (--source BYTES | --sink) " +
  "[--count N | --forever] [--random]\n" +
  "       tcp_tool.ts CONFIG connect HOST PORT (--source BYTES | --sink) [--random] [--wait-ms MS]";

function usage(why: string): never {
  console.error(`tcp_tool: ${why}\n${USAGE}`);
  Deno.exit(2);
}

/** "100M" → 104857600. */
function parseBytes(s: string | undefined): number {
  const m = /^(\d+)([kKMG]?)$/.exec(s ?? "");
  if (m === null) usage(`bad byte count "${s}"`);
  const mult = { "": 1, k: 1024, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!]!;
  return Number(m[1]) * mult;
}

// --- the command line -------------------------------------------------------

const args = [...Deno.args];
const file = args.shift();
const mode = args.shift();
if (file === undefined || (mode !== "listen" && mode !== "connect")) {
  usage("missing CONFIG or mode");
}
const host = mode === "connect" ? args.shift() : undefined;
const port = Number(args.shift());
if (!Number.isInteger(port) || port < 0 || port > 65535) usage("bad PORT");
let source: number | null = null;
let sink = false;
let random = false;
let count = 1;
let waitMs = 0;
while (args.length > 0) {
  const a = args.shift()!;
  if (a === "--source") source = parseBytes(args.shift());
  else if (a === "--sink") sink = true;
  else if (a === "--random") random = true;
  else if (a === "--count") count = Number(args.shift());
  else if (a === "--forever") count = Infinity;
  else if (a === "--wait-ms") waitMs = Number(args.shift());
  else usage(`unknown option ${a}`);
}
if ((source === null) === !sink) usage("give exactly one of --source BYTES and --sink");
if (!(count >= 1)) usage("--count must be at least 1");

// --- the stack on the config's TAP devices -----------------------------------

const config = await loadConfig(file);
const taps: TapEndpoint[] = [];
const clock = new SystemClock();
const { stack } = buildStack(config, {
  clock,
  openLink: (iface) => {
    const tap = openTap({ device: iface.tap, mtu: iface.mtu, offload: iface.offload });
    taps.push(tap);
    return tap;
  },
});
const driver = new LinkDriver({ timers: clock, activity: socketActivity });
for (const t of taps) driver.add(t);
const running = driver.run();

// --- source and sink: plain Deno.Conn code ------------------------------------

const CHUNK = 256 * 1024;

/** The next CHUNK of the deterministic stream (xorshift32, seeded once), or random bytes. */
function makeSource(): (buf: Uint8Array) => void {
  if (random) {
    return (buf) => {
      for (let off = 0; off < buf.length; off += 65536) {
        crypto.getRandomValues(buf.subarray(off, Math.min(buf.length, off + 65536)));
      }
    };
  }
  let x = 0x9e3779b9;
  return (buf) => {
    const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x;
    }
  };
}

/** A peer's "address:port" (IPv6 in brackets). */
function peerOf(conn: TapirTcpConn): string {
  const a = conn.remoteAddr;
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/**
 * The process owns this stack: when it exits, unacknowledged bytes die with
 * it (a kernel socket would go on sending after `close`). So wait, bounded,
 * until the peer has acknowledged our FIN, as SO_LINGER would.
 */
async function linger(conn: TapirTcpConn, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const s = conn.info().state;
    if (s === "FIN-WAIT-2" || s === "TIME-WAIT" || s === "CLOSED") return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

function report(role: string, conn: TapirTcpConn, bytes: number, sha256: string, t0: number) {
  const ms = performance.now() - t0;
  console.log(JSON.stringify({
    role,
    peer: peerOf(conn),
    bytes,
    sha256,
    ms: Math.round(ms * 10) / 10,
    gbps: Math.round(bytes * 8 / (ms * 1e6) * 1000) / 1000,
  }));
}

async function runSource(conn: TapirTcpConn, total: number): Promise<void> {
  const t0 = performance.now();
  const hash = createHash("sha256");
  const next = makeSource();
  const buf = new Uint8Array(CHUNK);
  let sent = 0;
  // Whatever the peer sends is read and dropped, so its FIN is seen.
  const drain = (async () => {
    const scratch = new Uint8Array(65536);
    try {
      while ((await conn.read(scratch)) !== null) { /* discard */ }
    } catch { /* reset or closed: the write side reports it */ }
  })();
  while (sent < total) {
    const n = Math.min(CHUNK, total - sent);
    next(buf);
    const chunk = buf.subarray(0, n);
    hash.update(chunk);
    for (let off = 0; off < n;) off += await conn.write(chunk.subarray(off));
    sent += n;
  }
  await conn.closeWrite();
  await linger(conn, 60_000);
  report("source", conn, sent, hash.digest("hex"), t0);
  await Promise.race([drain, new Promise((r) => setTimeout(r, 1000))]);
  conn.close();
}

async function runSink(conn: TapirTcpConn): Promise<void> {
  const t0 = performance.now();
  const hash = createHash("sha256");
  const buf = new Uint8Array(CHUNK);
  let got = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    got += n;
  }
  report("sink", conn, got, hash.digest("hex"), t0);
  await conn.closeWrite();
  await linger(conn, 2000);
  conn.close();
}

const serve = (conn: TapirTcpConn) => source !== null ? runSource(conn, source) : runSink(conn);

let code = 0;
const stop = () => driver.stop();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
try {
  if (mode === "listen") {
    const listener = stack.listen({ hostname: "::", port });
    console.error(`tcp_tool: listening on port ${listener.addr.port}`);
    const jobs: Promise<void>[] = [];
    let accepted = 0;
    const accepting = (async () => {
      for await (const conn of listener) {
        jobs.push(
          serve(conn).catch((e) => {
            console.error(`tcp_tool: ${peerOf(conn)}: ${e.name}: ${e.message}`);
            code = 1;
          }),
        );
        if (++accepted >= count) break;
      }
    })();
    await Promise.race([accepting, running]);
    await Promise.race([Promise.all(jobs), running]);
    listener[Symbol.dispose]();
  } else {
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    let conn: TapirTcpConn;
    try {
      conn = await stack.connect({ hostname: host!, port });
    } catch (e) {
      const err = e as Error;
      console.error(`tcp_tool: connect ${host} port ${port}: ${err.name}: ${err.message}`);
      code = 1;
      throw err;
    }
    await serve(conn);
  }
} catch (e) {
  if (code === 0) {
    console.error(`tcp_tool: ${(e as Error).name}: ${(e as Error).message}`);
    code = 1;
  }
} finally {
  driver.stop();
  await running;
  stack.close();
}
Deno.exit(code);
