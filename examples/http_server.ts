/**
 * A minimal HTTP/1.1 responder on tapir's stack, written the way it would
 * be against Deno's own TCP: only `Deno.listen(...)` became
 * `stack.listen(...)`.
 *
 *     deno run --allow-ffi --allow-read --allow-env examples/http_server.ts CONFIG [PORT] \
 *       [--body-bytes N]
 *
 * CONFIG is a tapir config whose interfaces name TAP devices (root or
 * CAP_NET_ADMIN); PORT defaults to 80. `GET /` answers 200 with a fixed
 * body and its Content-Length (`HEAD /` the same head without it); other
 * paths 404, other methods 405, a malformed request 400. The body is
 * "hello from tapir\n", or with `--body-bytes N` N bytes of 64-byte lines
 * (`0000100 tapir 0123…\n`, the line's offset in octal first, so a byte out
 * of place shows). Connections are kept alive (RFC 9112 §9.3: persistent by
 * default in HTTP/1.1, on request in 1.0) and pipelined requests answered
 * in order. It answers on every address of both families until SIGINT or
 * SIGTERM; with `--stats` it then prints the stack's TCP counters
 * (`stack.stats.tcp`) as one JSON line on stderr.
 */
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

const args = [...Deno.args];
const stats = args.includes("--stats");
if (stats) args.splice(args.indexOf("--stats"), 1);
let bodyBytes: number | null = null;
const i = args.indexOf("--body-bytes");
if (i >= 0) {
  bodyBytes = Number(args[i + 1]);
  args.splice(i, 2);
}
const [file, portArg] = args;
if (
  file === undefined || (bodyBytes !== null && !(Number.isInteger(bodyBytes) && bodyBytes >= 0))
) {
  console.error("usage: http_server.ts CONFIG [PORT] [--body-bytes N] [--stats]");
  Deno.exit(2);
}
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

const enc = new TextEncoder();

/** What follows each line's 7-digit octal offset: 57 bytes, so a line is 64. */
const LINE_TAIL = " tapir 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM\n";

/** 64 KiB of the body's lines (64 bytes each, so blocks join seamlessly), starting at `offset`. */
function bodyBlock(offset: number): Uint8Array {
  const b = new Uint8Array(65536);
  for (let at = 0; at < b.length; at += 64) {
    const line = ((offset + at) % 8 ** 7).toString(8).padStart(7, "0") + LINE_TAIL;
    enc.encodeInto(line, b.subarray(at, at + 64));
  }
  return b;
}

const SMALL_BODY = enc.encode("hello from tapir\n");
const contentLength = bodyBytes ?? SMALL_BODY.length;

/** Write the body: the small one, or `bodyBytes` of lines, 64 KiB at a time. */
async function writeBody(conn: TapirTcpConn): Promise<void> {
  if (bodyBytes === null) return writeAll(conn, SMALL_BODY);
  for (let off = 0; off < bodyBytes; off += 65536) {
    const b = bodyBlock(off);
    await writeAll(conn, b.subarray(0, Math.min(b.length, bodyBytes - off)));
  }
}

async function writeAll(conn: TapirTcpConn, p: Uint8Array): Promise<void> {
  for (let off = 0; off < p.length;) off += await conn.write(p.subarray(off));
}

/** A parsed request head. */
interface Head {
  method: string;
  target: string;
  version: string;
  headers: Map<string, string>;
}

/** RFC 9112 §3 and §5: request line and header fields; null when malformed. */
function parseHead(text: string): Head | null {
  const lines = text.split("\r\n");
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0] ?? "");
  if (m === null) return null;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const c = line.indexOf(":");
    if (c <= 0 || /\s/.test(line[c - 1]!)) return null;
    headers.set(line.slice(0, c).toLowerCase(), line.slice(c + 1).trim());
  }
  return { method: m[1]!, target: m[2]!, version: m[3]!, headers };
}

function response(status: string, headers: [string, string | number][], keepAlive: boolean) {
  const lines = [`HTTP/1.1 ${status}`, "Server: tapir-example"];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  if (!keepAlive) lines.push("Connection: close");
  return enc.encode(lines.join("\r\n") + "\r\n\r\n");
}

const MAX_HEAD = 16384;

/** Answer requests on `conn` until the client closes or asks to. */
async function serve(conn: TapirTcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(MAX_HEAD + 65536);
  let have = 0;
  let skip = 0; // request body bytes still to discard
  const dec = new TextDecoder("latin1");
  for (;;) {
    // Find the end of a head in what is buffered, reading more as needed.
    let end = -1;
    for (;;) {
      if (skip > 0) {
        const d = Math.min(skip, have);
        buf.copyWithin(0, d, have);
        have -= d;
        skip -= d;
      }
      if (skip === 0) {
        const at = findHeadEnd(buf, have);
        if (at >= 0) {
          end = at;
          break;
        }
        if (have >= MAX_HEAD) {
          await writeAll(conn, response("431 Request Header Fields Too Large", [], false));
          return;
        }
      }
      const n = await conn.read(buf.subarray(have, skip > 0 ? buf.length : MAX_HEAD + 4));
      if (n === null) return;
      have += n;
    }
    const head = parseHead(dec.decode(buf.subarray(0, end)));
    buf.copyWithin(0, end + 4, have);
    have -= end + 4;
    if (head === null) {
      await writeAll(conn, response("400 Bad Request", [["Content-Length", 0]], false));
      return;
    }
    const connection = (head.headers.get("connection") ?? "").toLowerCase();
    const keepAlive = head.version === "1.1"
      ? !connection.includes("close")
      : connection.includes("keep-alive");
    const length = Number(head.headers.get("content-length") ?? "0");
    if (!Number.isSafeInteger(length) || length < 0 || head.headers.has("transfer-encoding")) {
      await writeAll(conn, response("400 Bad Request", [["Content-Length", 0]], false));
      return;
    }
    skip = length;
    const isGet = head.method === "GET", isHead = head.method === "HEAD";
    if (!isGet && !isHead) {
      await writeAll(
        conn,
        response(
          "405 Method Not Allowed",
          [["Allow", "GET, HEAD"], ["Content-Length", 0]],
          keepAlive,
        ),
      );
    } else if (head.target !== "/") {
      const msg = enc.encode("not found\n");
      const h = response("404 Not Found", [
        ["Content-Type", "text/plain"],
        ["Content-Length", msg.length],
      ], keepAlive);
      await writeAll(conn, isHead ? h : concat(h, msg));
    } else {
      const h = response("200 OK", [
        ["Content-Type", "text/plain"],
        ["Content-Length", contentLength],
      ], keepAlive);
      // One write for a small response: head and body leave in one segment.
      if (isHead) await writeAll(conn, h);
      else if (bodyBytes === null) await writeAll(conn, concat(h, SMALL_BODY));
      else {
        await writeAll(conn, h);
        await writeBody(conn);
      }
    }
    if (!keepAlive) return;
  }
}

/** Offset of the CRLFCRLF ending a request head in buf[0, len), or -1. */
function findHeadEnd(buf: Uint8Array, len: number): number {
  for (let k = 0; k + 3 < len; k++) {
    if (buf[k] === 13 && buf[k + 1] === 10 && buf[k + 2] === 13 && buf[k + 3] === 10) return k;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a);
  r.set(b, a.length);
  return r;
}

// The service: the same code as with Deno.listen.
const listener = stack.listen({ hostname: "::", port: Number(portArg ?? 80) });
console.log(`http on ${listener.addr.hostname} port ${listener.addr.port}`);
const accepting = (async () => {
  for await (const conn of listener) {
    serve(conn)
      .catch(() => {/* the client reset or went away */})
      .finally(() => conn[Symbol.dispose]());
  }
})();

const stop = () => driver.stop();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await driver.run();
listener.close();
await accepting;
if (stats) console.error(JSON.stringify({ tcp: stack.stats.tcp }));
stack.close();
