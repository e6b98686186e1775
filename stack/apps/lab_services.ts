/**
 * The virtual lab's TCP services and TCP probes, written on the stack's
 * public socket APIs (`listen`, `connect`, `listenDatagram`) exactly as a
 * program would use `Deno.listen` and `Deno.connect`:
 *
 * - `echo` (RFC 862): every byte received is sent back, until the client
 *   closes; on UDP, every datagram is sent back.
 * - `discard` (RFC 863): everything received is thrown away.
 * - `chargen` (RFC 864): the character-generator pattern, until the client
 *   closes (or after `bytes` of it, a FIN).
 * - `http`: a minimal HTTP/1.1 origin server (RFC 9112) that answers
 *   GET and HEAD for any target with status 200 and one fixed body, with
 *   Content-Length, persistent connections and `Connection: close`.
 *
 * The probes are the clients: {@link tcpProbe} opens a connection and
 * reports how the attempt ended (connected, refused, reset, timed out,
 * unreachable); {@link transferProbe} moves bytes through one of the
 * services and reports what came back (counts, SHA-256, where the data
 * first differs from the pattern) for the lab to judge.
 *
 * Generated data (chargen's stream, an http body of `bodyBytes`, and what
 * an echo probe sends) is RFC 864's pattern from its first byte, so the
 * receiving side checks every byte without storing any.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { getLogger } from "@logtape/logtape";
import type { Clock, Timer } from "../clock.ts";
import type {
  TapirTcpConn,
  TapirTcpListener,
  TcpConnectOptions,
  TcpListenOptions,
} from "../transport/stream.ts";
import type { ListenDatagramOptions, TapirDatagramConn } from "../transport/datagram.ts";

const log = getLogger(["tapir", "lab"]);

/** The lab's service kinds. */
export type LabServiceType = "echo" | "discard" | "chargen" | "http";

/** Each service's well-known port (RFC 862, 863, 864; HTTP). */
export const LAB_SERVICE_PORTS: Readonly<Record<LabServiceType, number>> = {
  echo: 7,
  discard: 9,
  chargen: 19,
  http: 80,
};

/** What the lab services and probes need of a stack: its socket APIs and clock. */
export interface LabServiceHost {
  readonly clock: Clock;
  listen(o: TcpListenOptions): TapirTcpListener;
  connect(o: TcpConnectOptions): Promise<TapirTcpConn>;
  listenDatagram(o: ListenDatagramOptions): TapirDatagramConn;
}

// ------------------------------------------------------------------ pattern

/** RFC 864: 72 printable characters a line, then CR LF. */
const LINE = 74;
/** The 95 printable ASCII characters (space to `~`): the pattern repeats after 95 lines. */
const PRINTABLE = 95;
let period: Uint8Array | null = null;

/** One period of the pattern (95 lines), made on first use. */
function chargenPeriod(): Uint8Array {
  if (period !== null) return period;
  const p = new Uint8Array(PRINTABLE * LINE);
  for (let line = 0; line < PRINTABLE; line++) {
    const o = line * LINE;
    // RFC 864: each line starts one character further along the printable set.
    for (let j = 0; j < 72; j++) p[o + j] = 32 + (line + j) % PRINTABLE;
    p[o + 72] = 13;
    p[o + 73] = 10;
  }
  period = p;
  return p;
}

/**
 * Fill `dst` with RFC 864's character-generator pattern from stream offset
 * `offset` on.
 *
 * @example
 * ```ts
 * import { fillChargen } from "./lab_services.ts";
 * const b = new Uint8Array(76);
 * fillChargen(b, 0);
 * console.assert(new TextDecoder().decode(b.subarray(0, 3)) === ' !"' && b[72] === 13 && b[75] === 34);
 * ```
 */
export function fillChargen(dst: Uint8Array, offset: number): void {
  const p = chargenPeriod();
  let at = offset % p.length, i = 0;
  while (i < dst.length) {
    const n = Math.min(dst.length - i, p.length - at);
    dst.set(p.subarray(at, at + n), i);
    i += n;
    at = 0;
  }
}

/**
 * Where `src` first differs from the pattern at stream offset `offset`: an
 * index into `src`, or -1 when every byte matches.
 */
export function chargenMismatch(src: Uint8Array, offset: number): number {
  const p = chargenPeriod();
  let at = offset % p.length;
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== p[at]) return i;
    if (++at === p.length) at = 0;
  }
  return -1;
}

// ------------------------------------------------------------------ services

/** Options of {@link startLabService}. */
export interface LabServiceOptions {
  type: LabServiceType;
  /** Default: the type's well-known port ({@link LAB_SERVICE_PORTS}). */
  port?: number;
  /** Listen address (an address literal); default "::" (both families). */
  hostname?: string;
  /** echo and discard: serve UDP on the same port too. */
  udp?: boolean;
  /** chargen: bytes each connection gets before the service sends its FIN; default: until the client closes. */
  bytes?: number;
  /** http: the body, as bytes or as the length of a chargen-pattern body; default 1024 pattern bytes. */
  body?: Uint8Array | number;
  /** http: Content-Type of the body (default "text/plain"). */
  contentType?: string;
}

/** What a {@link LabService} has done. */
export interface LabServiceStats {
  /** TCP connections accepted. */
  connections: number;
  /** TCP connections the client reset. */
  resets: number;
  /** Payload bytes received (TCP and UDP). */
  bytesReceived: number;
  /** Payload bytes sent (TCP and UDP; http: bodies and headers). */
  bytesSent: number;
  /** UDP datagrams received. */
  datagrams: number;
  /** http: requests answered with 200. */
  requests: number;
  /** http: requests answered with an error status (400, 405, 431, 501, 505). */
  badRequests: number;
}

/** How long an http connection that asked to close may linger for the client's FIN. */
const HTTP_LINGER_MS = 10_000;
/** Most request-header bytes an http request may carry (431 beyond). */
const HTTP_MAX_HEADER = 16_384;

const isQuiet = (e: unknown) =>
  e instanceof Deno.errors.BadResource || e instanceof Deno.errors.BrokenPipe ||
  e instanceof Deno.errors.NotConnected || e instanceof Deno.errors.TimedOut;

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource)) throw e;
  }
}

async function writeAll(conn: TapirTcpConn, p: Uint8Array): Promise<void> {
  let off = 0;
  while (off < p.length) off += await conn.write(p.subarray(off));
}

/** Read (and drop) until the end of the stream, telling `counted` of each read; resolves with the total. */
async function drain(
  conn: TapirTcpConn,
  buf: Uint8Array,
  counted?: (n: number) => void,
): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return total;
    total += n;
    counted?.(n);
  }
}

/**
 * A running lab service: a TCP listener (and a UDP socket with `udp`)
 * serving every connection until {@link close}. Shaped as a stack service
 * (`nic`, `close`), so `stack.services` closes it with the stack.
 */
export class LabService {
  /** The interface it serves (none: every interface). */
  readonly nic: null = null;
  readonly type: LabServiceType;
  readonly port: number;
  readonly stats: LabServiceStats = {
    connections: 0,
    resets: 0,
    bytesReceived: 0,
    bytesSent: 0,
    datagrams: 0,
    requests: 0,
    badRequests: 0,
  };
  readonly #host: LabServiceHost;
  readonly #o: LabServiceOptions;
  readonly #listener: TapirTcpListener;
  readonly #udp: TapirDatagramConn | null;
  readonly #conns = new Set<TapirTcpConn>();
  readonly #timers = new Set<Timer>();
  readonly #received = (n: number) => void (this.stats.bytesReceived += n);
  #closed = false;

  /** @internal use {@link startLabService} */
  constructor(host: LabServiceHost, o: LabServiceOptions) {
    this.#host = host;
    this.#o = o;
    this.type = o.type;
    this.port = o.port ?? LAB_SERVICE_PORTS[o.type];
    const hostname = o.hostname ?? "::";
    this.#listener = host.listen({ hostname, port: this.port });
    try {
      this.#udp = o.udp ? host.listenDatagram({ hostname, port: this.port }) : null;
    } catch (e) {
      this.#listener.close();
      throw e;
    }
    const failed = (e: unknown) =>
      log.error("lab {type} service on port {port} stopped: {error}", {
        type: this.type,
        port: this.port,
        error: String(e),
      });
    this.#acceptLoop().catch(failed);
    if (this.#udp !== null) this.#udpLoop(this.#udp).catch(failed);
  }

  /** Stop listening and close every connection (a FIN, or a reset with unread data). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#listener);
    if (this.#udp !== null) closeQuietly(this.#udp);
    for (const c of this.#conns) closeQuietly(c);
    this.#conns.clear();
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
  }

  async #acceptLoop(): Promise<void> {
    for await (const conn of this.#listener) {
      if (this.#closed) {
        closeQuietly(conn);
        return;
      }
      this.#serve(conn);
    }
  }

  async #udpLoop(sock: TapirDatagramConn): Promise<void> {
    for (;;) {
      let data: Uint8Array, from: Deno.NetAddr;
      try {
        [data, from] = await sock.receive();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
      this.stats.datagrams++;
      this.stats.bytesReceived += data.length;
      // RFC 862: "send back any data received"; RFC 863: throw it away.
      if (this.type === "echo") {
        this.stats.bytesSent += await sock.send(data, from).catch(() => 0);
      }
    }
  }

  async #serve(conn: TapirTcpConn): Promise<void> {
    this.#conns.add(conn);
    this.stats.connections++;
    try {
      switch (this.type) {
        case "echo":
          await this.#echo(conn);
          break;
        case "discard":
          await drain(conn, new Uint8Array(65536), this.#received);
          break;
        case "chargen":
          await this.#chargen(conn);
          break;
        case "http":
          await this.#http(conn);
          break;
      }
    } catch (e) {
      if (e instanceof Deno.errors.ConnectionReset) this.stats.resets++;
      else if (!isQuiet(e)) {
        log.warn("lab {type} service on port {port}: {error}", {
          type: this.type,
          port: this.port,
          error: String(e),
        });
      }
    } finally {
      if (this.#conns.delete(conn)) closeQuietly(conn);
    }
  }

  /** RFC 862 TCP: send back what arrives, until the client closes. */
  async #echo(conn: TapirTcpConn): Promise<void> {
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      this.stats.bytesReceived += n;
      // write() copies into the send buffer, so buf is free again once it returns.
      await writeAll(conn, buf.subarray(0, n));
      this.stats.bytesSent += n;
    }
  }

  /**
   * RFC 864 TCP: the pattern until the client closes (what it sends is
   * discarded); with `bytes`, that much and then a FIN.
   */
  async #chargen(conn: TapirTcpConn): Promise<void> {
    const limit = this.#o.bytes ?? Infinity;
    let clientDone = false;
    const reader = drain(conn, new Uint8Array(4096), this.#received).then(
      () => {},
      (e) => {
        if (e instanceof Deno.errors.ConnectionReset) this.stats.resets++;
      },
    ).finally(() => {
      clientDone = true;
      // The client closed: stop sending (a pending write fails and ends the loop below).
      if (this.#conns.delete(conn)) closeQuietly(conn);
    });
    const chunk = new Uint8Array(16384);
    let sent = 0;
    try {
      while (!clientDone && sent < limit) {
        const len = Math.min(chunk.length, limit - sent);
        fillChargen(chunk.subarray(0, len), sent);
        sent += await conn.write(chunk.subarray(0, len));
      }
    } catch (e) {
      if (!clientDone && !(e instanceof Deno.errors.ConnectionReset) && !isQuiet(e)) throw e;
    } finally {
      this.stats.bytesSent += sent;
    }
    if (!clientDone) {
      await conn.closeWrite().catch(() => {});
      await reader;
    }
  }

  /** A minimal HTTP/1.1 server (RFC 9112): GET and HEAD of any target get the body. */
  async #http(conn: TapirTcpConn): Promise<void> {
    let buf = new Uint8Array(4096);
    let have = 0;
    for (;;) {
      let end = headerEnd(buf, 0, have);
      while (end < 0) {
        if (have === buf.length) {
          if (buf.length >= HTTP_MAX_HEADER) {
            await this.#httpError(conn, 431, "Request Header Fields Too Large");
            return;
          }
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf.subarray(0, have));
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(have));
        // RFC 9112 §9.6: a client that closes between requests is done.
        if (n === null) return;
        this.stats.bytesReceived += n;
        have += n;
        end = headerEnd(buf, Math.max(0, have - n - 3), have);
      }
      const head = new TextDecoder("latin1").decode(buf.subarray(0, end));
      let next = end + 4;
      const req = parseRequest(head);
      if (typeof req === "number") {
        const reason = req === 505 ? "HTTP Version Not Supported" : "Bad Request";
        await this.#httpError(conn, req, reason);
        return;
      }
      if (req.transferEncoding) {
        // RFC 9112 §6.1: a transfer coding this server does not know: 501, then close.
        await this.#httpError(conn, 501, "Not Implemented");
        return;
      }
      // Skip a request body (Content-Length), already read or still to come.
      let skip = req.contentLength;
      const now = Math.min(skip, have - next);
      next += now;
      skip -= now;
      // What follows is the next (pipelined) request.
      buf.copyWithin(0, next, have);
      have -= next;
      while (skip > 0) {
        const n = await conn.read(buf.subarray(0, Math.min(buf.length, skip)));
        if (n === null) return;
        this.stats.bytesReceived += n;
        skip -= n;
      }
      const close = req.close;
      if (req.method !== "GET" && req.method !== "HEAD") {
        await this.#httpHead(conn, 405, "Method Not Allowed", 0, close, "Allow: GET, HEAD\r\n");
        this.stats.badRequests++;
      } else {
        const body = this.#o.body ?? 1024;
        const len = typeof body === "number" ? body : body.length;
        await this.#httpHead(conn, 200, "OK", len, close);
        if (req.method === "GET") await this.#httpBody(conn, body);
        this.stats.requests++;
      }
      if (close) {
        await this.#httpClose(conn);
        return;
      }
    }
  }

  async #httpError(conn: TapirTcpConn, status: number, reason: string): Promise<void> {
    this.stats.badRequests++;
    await this.#httpHead(conn, status, reason, 0, true);
    await this.#httpClose(conn);
  }

  async #httpHead(
    conn: TapirTcpConn,
    status: number,
    reason: string,
    length: number,
    close: boolean,
    extra = "",
  ): Promise<void> {
    const type = this.#o.contentType ?? "text/plain";
    const head = `HTTP/1.1 ${status} ${reason}\r\nServer: tapir\r\n` +
      (length > 0 ? `Content-Type: ${type}\r\n` : "") +
      `Content-Length: ${length}\r\n${extra}${close ? "Connection: close\r\n" : ""}\r\n`;
    const bytes = new TextEncoder().encode(head);
    await writeAll(conn, bytes);
    this.stats.bytesSent += bytes.length;
  }

  async #httpBody(conn: TapirTcpConn, body: Uint8Array | number): Promise<void> {
    if (typeof body !== "number") {
      await writeAll(conn, body);
      this.stats.bytesSent += body.length;
      return;
    }
    const chunk = new Uint8Array(Math.min(16384, body));
    for (let off = 0; off < body;) {
      const len = Math.min(chunk.length, body - off);
      fillChargen(chunk.subarray(0, len), off);
      await writeAll(conn, chunk.subarray(0, len));
      off += len;
      this.stats.bytesSent += len;
    }
  }

  /**
   * RFC 9112 §9.6: close the write side first and read on until the
   * client's FIN, so a reset for unread request bytes cannot destroy the
   * response before the client read it; give up after a linger time.
   */
  async #httpClose(conn: TapirTcpConn): Promise<void> {
    await conn.closeWrite();
    const t = this.#host.clock.schedule(HTTP_LINGER_MS, () => {
      this.#timers.delete(t);
      if (this.#conns.delete(conn)) closeQuietly(conn);
    });
    this.#timers.add(t);
    try {
      await drain(conn, new Uint8Array(4096), this.#received);
    } finally {
      t.cancel();
      this.#timers.delete(t);
    }
  }
}

/** The offset of the CR LF CR LF that ends a header block in `buf[from, to)`, or -1. */
function headerEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

interface HttpRequest {
  method: string;
  contentLength: number;
  transferEncoding: boolean;
  /** The connection closes after this response. */
  close: boolean;
}

/** An HTTP/1.x request head (RFC 9112 §3, §5), or the error status to answer. */
function parseRequest(head: string): HttpRequest | number {
  const lines = head.split("\r\n");
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(lines[0]!);
  if (m === null) return 400;
  if (m[3] !== "1") return 505;
  const minor = Number(m[4]);
  const fields = new Map<string, string>();
  for (const line of lines.slice(1)) {
    // RFC 9112 §5.1: no whitespace between the field name and the colon.
    const f = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (f === null) return 400;
    const name = f[1]!.toLowerCase();
    const prev = fields.get(name);
    if (prev !== undefined && name === "content-length" && prev !== f[2]) return 400;
    fields.set(name, prev === undefined || name === "content-length" ? f[2]! : `${prev}, ${f[2]}`);
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400.
  if (minor >= 1 && !fields.has("host")) return 400;
  const cl = fields.get("content-length");
  if (cl !== undefined && !/^\d{1,15}$/.test(cl)) return 400;
  const tokens = (fields.get("connection") ?? "").toLowerCase().split(",").map((s) => s.trim());
  return {
    method: m[1]!,
    contentLength: cl === undefined ? 0 : Number(cl),
    transferEncoding: fields.has("transfer-encoding"),
    // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    close: tokens.includes("close") || (minor === 0 && !tokens.includes("keep-alive")),
  };
}

/**
 * Start a lab service on a stack.
 *
 * @param host the stack (its `listen`, `connect`, `listenDatagram` and clock)
 * @param o what to serve, and where
 * @returns the running service; `close()` stops it
 * @throws Deno.errors.AddrInUse when the port is taken, AddrNotAvailable when `hostname` is not the stack's
 * @example
 * ```ts
 * import { Stack } from "../stack.ts";
 * import { ManualClock } from "../clock.ts";
 * import { startLabService } from "./lab_services.ts";
 * const s = new Stack({ clock: new ManualClock() });
 * const sv = startLabService(s, { type: "echo" });
 * s.services.set("echo", sv); // closed with the stack
 * console.assert(sv.port === 7);
 * s.close();
 * ```
 */
export function startLabService(host: LabServiceHost, o: LabServiceOptions): LabService {
  return new LabService(host, o);
}

// ------------------------------------------------------------------ probes

/** How a TCP attempt ended. */
export type TcpOutcome = "connected" | "refused" | "reset" | "timeout" | "unreachable";

/** Options of {@link tcpProbe}. */
export interface TcpProbeOptions {
  /** The target (an address literal). */
  hostname: string;
  port: number;
  /** Leave by this interface (a link-local target's zone). */
  interface?: string;
  /** The whole probe's bound, ms (default 2000). */
  timeoutMs?: number;
}

/** What {@link tcpProbe} found. */
export interface TcpProbeResult {
  outcome: TcpOutcome;
  /** The error that ended it ("" when none). */
  error: string;
  /** ms from the SYN to the connection (−1 when it never connected). */
  connectMs: number;
  /** Our end of the connection, when it connected. */
  local?: Deno.NetAddr;
}

/** The outcome an error means: refused, reset, timed out, or (an ICMP error or no route) unreachable. */
function outcomeOf(e: unknown): TcpOutcome {
  if (e instanceof Deno.errors.ConnectionRefused) return "refused";
  if (e instanceof Deno.errors.ConnectionReset) return "reset";
  if (e instanceof Deno.errors.TimedOut) return "timeout";
  if (
    e instanceof Deno.errors.NetworkUnreachable || e instanceof Deno.errors.PermissionDenied ||
    e instanceof Deno.errors.AddrNotAvailable
  ) return "unreachable";
  throw e;
}

/** A bound on a probe: aborts the connect, or closes the connection, at its deadline. */
class Deadline {
  readonly ac = new AbortController();
  expired = false;
  conn: TapirTcpConn | null = null;
  readonly #timer: Timer;
  constructor(clock: Clock, ms: number) {
    this.#timer = clock.schedule(ms, () => {
      this.expired = true;
      this.ac.abort(new Deno.errors.TimedOut(`No answer within ${ms / 1000} s`));
      if (this.conn !== null) closeQuietly(this.conn);
    });
  }
  /** The outcome of an error, "timeout" once the deadline passed (a closed conn fails with BadResource). */
  outcome(e: unknown): TcpOutcome {
    if (this.expired) return "timeout";
    return outcomeOf(e);
  }
  cancel(): void {
    this.#timer.cancel();
  }
}

const fmtMs = (ms: number) => `${ms.toFixed(1)} ms`;
const errText = (e: unknown) => e instanceof Error ? e.message : String(e);

/**
 * Open a TCP connection to `hostname:port` and close it again: after the
 * handshake, send a FIN and wait (within the bound) for the peer's end of
 * the stream or a reset. Whatever the peer sends is read and dropped.
 *
 * @returns how the attempt ended: "connected" (the handshake completed and
 *   no reset followed), "refused" (a RST or ICMP port unreachable answered
 *   the SYN), "reset" (a RST after the handshake), "timeout", "unreachable"
 */
export async function tcpProbe(
  host: LabServiceHost,
  o: TcpProbeOptions,
  onLine?: (line: string) => void,
): Promise<TcpProbeResult> {
  const clock = host.clock;
  const timeout = o.timeoutMs ?? 2000;
  const target = `${o.hostname} port ${o.port}`;
  const t0 = clock.now();
  const dl = new Deadline(clock, timeout);
  let conn: TapirTcpConn;
  try {
    conn = await host.connect(connectOptions(o, dl.ac.signal));
  } catch (e) {
    dl.cancel();
    const outcome = dl.outcome(e);
    const ms = clock.now() - t0;
    onLine?.(
      outcome === "timeout"
        ? `TCP ${target}: no answer within ${timeout / 1000} s`
        : `TCP ${target}: ${outcome} after ${fmtMs(ms)} (${errText(e)})`,
    );
    return { outcome, error: errText(e), connectMs: -1 };
  }
  dl.conn = conn;
  const connectMs = clock.now() - t0;
  const local = conn.localAddr;
  onLine?.(
    `TCP ${target}: connected in ${fmtMs(connectMs)} (from ${local.hostname} port ${local.port})`,
  );
  try {
    await conn.closeWrite();
    const n = await drain(conn, new Uint8Array(16384));
    onLine?.(`closed by the peer after ${fmtMs(clock.now() - t0)}${n > 0 ? ` (${n} bytes)` : ""}`);
    return { outcome: "connected", error: "", connectMs, local };
  } catch (e) {
    const outcome = dl.outcome(e);
    if (outcome === "timeout") {
      // Connected, and the peer kept the connection open: that is still connected.
      onLine?.(`still open after ${timeout / 1000} s; closed`);
      return { outcome: "connected", error: "", connectMs, local };
    }
    onLine?.(`${outcome} after ${fmtMs(clock.now() - t0)} (${errText(e)})`);
    return { outcome, error: errText(e), connectMs, local };
  } finally {
    dl.cancel();
    closeQuietly(conn);
  }
}

function connectOptions(o: TcpProbeOptions, signal: AbortSignal): TcpConnectOptions {
  return {
    hostname: o.hostname,
    port: o.port,
    signal,
    ...(o.interface !== undefined ? { interface: o.interface } : {}),
  };
}

/** Options of {@link transferProbe}. */
export interface TransferProbeOptions extends TcpProbeOptions {
  /** How to talk to the service. */
  service: LabServiceType;
  /**
   * echo and discard: the bytes to send (the chargen pattern); chargen:
   * the most to read before closing (default: until the service closes).
   * Ignored for http (the response says how long its body is).
   */
  bytes?: number;
}

/** What {@link transferProbe} found. */
export interface TransferResult {
  /** "complete": the exchange ran to its end; otherwise how the connection ended. */
  outcome: TcpOutcome | "complete";
  error: string;
  connectMs: number;
  /** ms from the SYN to the end. */
  elapsedMs: number;
  /** Payload bytes written (echo, discard; the request for http). */
  sent: number;
  /** Of those, bytes the peer acknowledged (TCP_INFO bytes_acked). */
  acked: number;
  /** Bytes received (http: body bytes). */
  received: number;
  /** SHA-256 of the received bytes (http: of the body), hex. */
  sha256: string;
  /** Where the received bytes first differ from the chargen pattern, or -1. */
  patternMismatchAt: number;
  /** The peer closed its side (a FIN) after the data. */
  eof: boolean;
  /** http: the status code and Content-Length (−1 when absent). */
  status?: number;
  contentLength?: number;
}

/** Receives bytes: counts them, hashes them and compares them with the pattern. */
class Sink {
  received = 0;
  mismatchAt = -1;
  readonly #hash = createHash("sha256");
  take(p: Uint8Array): void {
    if (this.mismatchAt === -1) {
      const at = chargenMismatch(p, this.received);
      if (at !== -1) this.mismatchAt = this.received + at;
    }
    this.#hash.update(p);
    this.received += p.length;
  }
  digest(): string {
    return this.#hash.digest("hex");
  }
}

/**
 * Move data through a lab service over one TCP connection: echo (send
 * `bytes` of the pattern while reading them back), discard (send `bytes`),
 * chargen (read up to `bytes`), http (GET / and read the whole response).
 * The whole exchange is bounded by `timeoutMs` (default 10 s).
 */
export async function transferProbe(
  host: LabServiceHost,
  o: TransferProbeOptions,
  onLine?: (line: string) => void,
): Promise<TransferResult> {
  const clock = host.clock;
  const timeout = o.timeoutMs ?? 10_000;
  const target = `${o.service} ${o.hostname} port ${o.port}`;
  const t0 = clock.now();
  const dl = new Deadline(clock, timeout);
  const sink = new Sink();
  const r: TransferResult = {
    outcome: "complete",
    error: "",
    connectMs: -1,
    elapsedMs: 0,
    sent: 0,
    acked: 0,
    received: 0,
    sha256: "",
    patternMismatchAt: -1,
    eof: false,
  };
  const finish = (): TransferResult => {
    dl.cancel();
    r.elapsedMs = clock.now() - t0;
    r.received = sink.received;
    r.sha256 = sink.digest();
    r.patternMismatchAt = sink.mismatchAt;
    return r;
  };
  let conn: TapirTcpConn;
  try {
    conn = await host.connect(connectOptions(o, dl.ac.signal));
  } catch (e) {
    r.outcome = dl.outcome(e);
    r.error = errText(e);
    onLine?.(
      r.outcome === "timeout"
        ? `transfer ${target}: no answer within ${timeout / 1000} s`
        : `transfer ${target}: ${r.outcome} (${errText(e)})`,
    );
    return finish();
  }
  dl.conn = conn;
  r.connectMs = clock.now() - t0;
  try {
    switch (o.service) {
      case "echo":
      case "discard": {
        // Read while writing: an echo holds what it cannot send back, so a
        // writer that read only afterwards would stall once the windows close.
        let readError: unknown = null;
        const reader = readAll(conn, sink, Infinity).then(
          (eof) => void (r.eof = eof),
          (e) => void (readError = e),
        );
        try {
          await sendPattern(conn, o.bytes ?? 0, r);
          await conn.closeWrite();
        } finally {
          // (A failed write ends the reader too: the reset or the deadline's close wakes it.)
          await reader;
        }
        if (readError !== null) throw readError;
        break;
      }
      case "chargen":
        r.eof = await readAll(conn, sink, o.bytes ?? Infinity);
        break;
      case "http":
        await httpGet(conn, o.hostname, sink, r);
        break;
    }
  } catch (e) {
    r.outcome = dl.outcome(e);
    r.error = dl.expired ? `not finished within ${timeout / 1000} s` : errText(e);
  }
  try {
    r.acked = Math.min(r.sent, conn.info().bytesAcked);
  } finally {
    closeQuietly(conn);
  }
  finish();
  const secs = r.elapsedMs / 1000;
  // What crossed: bytes the peer acknowledged and bytes that came back.
  const rate = secs > 0
    ? ` (${((8 * (r.acked + r.received)) / secs / 1e6).toFixed(1)} Mbit/s)`
    : "";
  onLine?.(
    `transfer ${target}: connected in ${fmtMs(r.connectMs)}; ` +
      (r.status !== undefined ? `HTTP ${r.status}, ` : "") +
      `sent ${r.sent} (${r.acked} acked), received ${r.received} bytes in ${
        fmtMs(r.elapsedMs)
      }${rate}`,
  );
  onLine?.(`sha256 ${r.sha256}${r.outcome === "complete" ? "" : `; ${r.outcome}: ${r.error}`}`);
  return r;
}

/** Write `n` bytes of the pattern. */
async function sendPattern(conn: TapirTcpConn, n: number, r: TransferResult): Promise<void> {
  const chunk = new Uint8Array(Math.min(16384, Math.max(1, n)));
  while (r.sent < n) {
    const len = Math.min(chunk.length, n - r.sent);
    fillChargen(chunk.subarray(0, len), r.sent);
    r.sent += await conn.write(chunk.subarray(0, len));
  }
}

/** Read into `sink` until the end of the stream (true) or `limit` bytes (false). */
async function readAll(conn: TapirTcpConn, sink: Sink, limit: number): Promise<boolean> {
  const buf = new Uint8Array(65536);
  while (sink.received < limit) {
    const room = Math.min(buf.length, limit - sink.received);
    const n = await conn.read(buf.subarray(0, room));
    if (n === null) return true;
    sink.take(buf.subarray(0, n));
  }
  return false;
}

/** GET / over `conn` (Connection: close): status, Content-Length, the body into `sink`. */
async function httpGet(
  conn: TapirTcpConn,
  hostname: string,
  sink: Sink,
  r: TransferResult,
): Promise<void> {
  const hostField = hostname.includes(":") ? `[${hostname}]` : hostname;
  const req = new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: ${hostField}\r\nUser-Agent: tapir-lab\r\nConnection: close\r\n\r\n`,
  );
  await writeAll(conn, req);
  r.sent = req.length;
  await conn.closeWrite();
  let buf = new Uint8Array(65536);
  let have = 0, end = -1;
  while (end < 0) {
    if (have === buf.length) {
      if (buf.length >= 1 << 20) throw new Error("response head longer than 1 MiB");
      const b = new Uint8Array(buf.length * 2);
      b.set(buf);
      buf = b;
    }
    const n = await conn.read(buf.subarray(have));
    if (n === null) {
      throw new Error(`the connection closed before the response head (${have} bytes)`);
    }
    have += n;
    end = headerEnd(buf, Math.max(0, have - n - 3), have);
  }
  const head = new TextDecoder("latin1").decode(buf.subarray(0, end)).split("\r\n");
  const m = /^HTTP\/1\.\d (\d{3})(?: .*)?$/.exec(head[0]!);
  if (m === null) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(head[0])}`);
  r.status = Number(m[1]);
  const cl = head.slice(1).map((l) => /^content-length:\s*(\d+)\s*$/i.exec(l)).find((x) => x);
  r.contentLength = cl ? Number(cl[1]) : -1;
  sink.take(buf.subarray(end + 4, have));
  r.eof = await readAll(conn, sink, Infinity);
}
