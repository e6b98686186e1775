/**
 * TCP sockets with the shape of `Deno.connect` / `Deno.listen` and
 * `Deno.TcpConn` / `Deno.TcpListener`: the same options, members,
 * `Deno.NetAddr` addresses and `Deno.errors` failures, so code written for
 * Deno's TCP runs on tapir's stack by swapping `Deno.connect(...)` for
 * `stack.connect(...)`. Back-pressure is TCP's own: a slow reader leaves
 * bytes in the receive buffer, the advertised window closes, and nothing
 * grows; a writer waits while the send buffer is full.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Tcp, TcpListener } from "./tcp/tcp.ts";
import { type TcpConnection, type TcpInfo, TcpState } from "./tcp/connection.ts";
import { isUnspecified, netAddr, parseHost } from "./_addr.ts";
import type { IpAddr } from "./udp.ts";

/** Calls into the byte-stream sockets of every stack in this process; see {@link socketActivity}. */
let socketCalls = 0;

/**
 * A count that moves whenever application code calls into a tapir
 * stream socket (`read`, `write`, `accept`): the link driver's `activity`
 * option. After a pass that moved frames the driver keeps yielding to
 * promise continuations while it moves, so an application reading a
 * full receive buffer drains it before the driver blocks in a poll (the
 * kernel sender waits meanwhile on the window that read would open).
 */
export function socketActivity(): number {
  return socketCalls;
}

/** Options of `stack.connect`, as Deno's `ConnectOptions` plus tapir's own. */
export interface TcpConnectOptions {
  /** The remote address (an address literal: tapir's stack has no resolver). Default "127.0.0.1". */
  hostname?: string;
  port: number;
  transport?: "tcp";
  /** Local address (and port) to connect from. */
  localAddr?: { hostname?: string; port?: number } | string;
  /** Aborting it abandons the attempt (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** tapir: leave by this interface (by name). */
  interface?: string;
}

/** Options of `stack.listen`, as Deno's `TcpListenOptions` plus tapir's own. */
export interface TcpListenOptions {
  /** Local address (default "0.0.0.0"); "::" takes both families. */
  hostname?: string;
  port: number;
  transport?: "tcp";
  /** Deno accepts it; tapir ignores it (one listener per port). */
  reusePort?: boolean;
  /** tapir: the accept queue length (default and cap: somaxconn, 4096). */
  backlog?: number;
  /** tapir: only connections arriving on this interface (by name). */
  interface?: string;
}

/** What the stream API needs of a stack. */
export interface StreamHost {
  readonly tcp: Tcp;
  nicByName(name: string): Nic | undefined;
}

function nicNamed(host: StreamHost, name: string | undefined): Nic | null {
  if (name === undefined) return null;
  const n = host.nicByName(name);
  if (n === undefined) throw new Deno.errors.NotFound(`No interface named "${name}"`);
  return n;
}

const badResource = () => new Deno.errors.BadResource("Bad resource ID");

/**
 * Open a connection; resolves once established.
 *
 * @throws Deno.errors.ConnectionRefused, TimedOut, AddrNotAvailable, AddrInUse
 */
export function connectTcp(host: StreamHost, o: TcpConnectOptions): Promise<TapirTcpConn> {
  if (o.transport !== undefined && o.transport !== "tcp") {
    return Promise.reject(new TypeError(`Unsupported transport "${o.transport}"`));
  }
  let c: TcpConnection;
  try {
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
      throw new TypeError(`Invalid port ${o.port}: expected 0-65535`);
    }
    const remote = parseHost(o.hostname ?? "127.0.0.1");
    const la = typeof o.localAddr === "string" ? { hostname: o.localAddr } : o.localAddr;
    let local: IpAddr | undefined;
    if (la?.hostname !== undefined) {
      const a = parseHost(la.hostname);
      if (!isUnspecified(a)) local = a;
    }
    o.signal?.throwIfAborted();
    c = host.tcp.connect({
      remote,
      port: o.port,
      ...(local !== undefined ? { local } : {}),
      ...(la?.port !== undefined ? { localPort: la.port } : {}),
      device: nicNamed(host, o.interface),
    });
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<TapirTcpConn>((resolve, reject) => {
    const onAbort = () => {
      c.events = {};
      c.abort();
      reject(o.signal!.reason);
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    c.events = {
      onEstablished: () => {
        o.signal?.removeEventListener("abort", onAbort);
        resolve(new TapirTcpConn(c));
      },
      onClosed: (err) => {
        o.signal?.removeEventListener("abort", onAbort);
        reject(err ?? new Deno.errors.ConnectionReset("Connection closed during the handshake"));
      },
    };
  });
}

/**
 * A connection with `Deno.TcpConn`'s members: `read`, `write`, `readable`,
 * `writable`, `close`, `closeWrite`, `localAddr`, `remoteAddr`,
 * `setNoDelay`, `setKeepAlive`, `ref`/`unref`, plus {@link info} (TCP_INFO).
 */
export class TapirTcpConn implements Disposable {
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;
  readonly #c: TcpConnection;
  #readWaiter: (() => void) | null = null;
  #writeWaiter: (() => void) | null = null;
  #closed = false;
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  /** @internal use `stack.connect` or a listener's `accept` */
  constructor(c: TcpConnection) {
    this.#c = c;
    this.localAddr = netAddr(c.local, c.localPort, "tcp");
    this.remoteAddr = netAddr(c.remote, c.remotePort, "tcp");
    c.events = {
      onReadable: () => this.#wakeRead(),
      onWritable: () => this.#wakeWrite(),
      onClosed: () => {
        this.#wakeRead();
        this.#wakeWrite();
      },
    };
  }

  #wakeRead(): void {
    const w = this.#readWaiter;
    this.#readWaiter = null;
    w?.();
  }

  #wakeWrite(): void {
    const w = this.#writeWaiter;
    this.#writeWaiter = null;
    w?.();
  }

  /**
   * Read into `p`: the number of bytes, or null at the end of the stream.
   *
   * @throws Deno.errors.ConnectionReset when the peer reset the connection
   * @throws Deno.errors.BadResource after close()
   */
  async read(p: Uint8Array): Promise<number | null> {
    socketCalls++;
    if (p.length === 0) return 0;
    for (;;) {
      if (this.#closed) throw badResource();
      const c = this.#c;
      const n = c.read(p);
      if (n > 0) return n;
      if (c.error !== null) throw c.error;
      if (c.readEof) return null;
      if (this.#readWaiter !== null) throw new Deno.errors.Busy("Another read is pending");
      await new Promise<void>((r) => this.#readWaiter = r);
    }
  }

  /**
   * Write from `p`: resolves with the bytes the send buffer took (at least
   * one; waits while it is full).
   *
   * @throws Deno.errors.BrokenPipe after closeWrite(), Deno.errors.ConnectionReset after a reset
   */
  async write(p: Uint8Array): Promise<number> {
    socketCalls++;
    if (p.length === 0) return 0;
    for (;;) {
      if (this.#closed) throw badResource();
      const c = this.#c;
      if (c.error !== null) throw c.error;
      if (!c.canWrite) {
        throw c.state === TcpState.CLOSED
          ? new Deno.errors.NotConnected("Socket is not connected")
          : new Deno.errors.BrokenPipe("Broken pipe: the write side is shut down");
      }
      const n = c.write(p);
      if (n > 0) return n;
      if (this.#writeWaiter !== null) throw new Deno.errors.Busy("Another write is pending");
      await new Promise<void>((r) => this.#writeWaiter = r);
    }
  }

  /** Write all of `p` (waiting for room as needed). */
  async #writeAll(p: Uint8Array): Promise<void> {
    let off = 0;
    while (off < p.length) off += await this.write(p.subarray(off));
  }

  /** The receive side as a byte stream (chunks of what arrived, up to 64 KiB). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      type: "bytes",
      pull: async (ctrl) => {
        const req = (ctrl as ReadableByteStreamController).byobRequest;
        if (req?.view) {
          const v = req.view;
          const n = await this.read(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
          if (n === null) {
            ctrl.close();
            req.respond(0);
          } else {
            req.respond(n);
          }
          return;
        }
        const size = Math.min(65536, Math.max(1, this.#c.readable || 16384));
        const buf = new Uint8Array(size);
        const n = await this.read(buf);
        if (n === null) ctrl.close();
        else ctrl.enqueue(n === size ? buf : buf.slice(0, n));
      },
      cancel: () => this.close(),
    });
    return this.#readable;
  }

  /** The send side as a stream; closing it sends a FIN (closeWrite). */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.#writeAll(chunk),
      close: () => this.closeWrite(),
      abort: () => this.close(),
    });
    return this.#writable;
  }

  /** Shut the write side down (a FIN after the queued bytes); reading goes on. */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(badResource());
    this.#c.shutdownWrite();
    return Promise.resolve();
  }

  /** Close both sides; pending reads and writes fail with BadResource. */
  close(): void {
    if (this.#closed) throw badResource();
    this.#closed = true;
    this.#c.close();
    this.#wakeRead();
    this.#wakeWrite();
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }

  /** TCP_NODELAY (Nagle off when true; Deno's default argument is true). */
  setNoDelay(noDelay = true): void {
    this.#c.setNoDelay(noDelay);
  }

  /** SO_KEEPALIVE (Deno's default argument is true); tapir takes idle/interval/count too. */
  setKeepAlive(
    keepAlive = true,
    o?: { idleMs?: number; intervalMs?: number; count?: number },
  ): void {
    this.#c.setKeepAlive(keepAlive, o);
  }

  /** Deno's ref/unref: the stack's own loop keeps the process alive, so these do nothing. */
  ref(): void {}
  unref(): void {}

  /** TCP_INFO-like figures (state, RTT, cwnd, retransmits, bytes). */
  info(): TcpInfo {
    return this.#c.info();
  }
}

/**
 * A listener with `Deno.TcpListener`'s members: `accept`, `addr`, `close`,
 * async iteration, `ref`/`unref`.
 */
export class TapirTcpListener implements AsyncIterable<TapirTcpConn>, Disposable {
  readonly addr: Deno.NetAddr;
  readonly #l: TcpListener;
  readonly #waiters: { resolve: (c: TapirTcpConn) => void; reject: (e: Error) => void }[] = [];

  /** @internal use `stack.listen` */
  constructor(host: StreamHost, o: TcpListenOptions) {
    if (o.transport !== undefined && o.transport !== "tcp") {
      throw new TypeError(`Unsupported transport "${o.transport}"`);
    }
    const a = parseHost(o.hostname ?? "0.0.0.0");
    const wildcard = isUnspecified(a);
    this.#l = host.tcp.listen({
      family: wildcard ? (typeof a === "number" ? 4 : 0) : typeof a === "number" ? 4 : 6,
      address: wildcard ? null : a,
      port: o.port,
      ...(o.backlog !== undefined ? { backlog: o.backlog } : {}),
      device: nicNamed(host, o.interface),
    });
    this.addr = netAddr(a, this.#l.port, "tcp");
    this.#l.onAcceptable = () => this.#serve();
  }

  #serve(): void {
    while (this.#waiters.length > 0) {
      const c = this.#l.accept();
      if (c === null) return;
      this.#waiters.shift()!.resolve(new TapirTcpConn(c));
    }
  }

  /**
   * The next connection.
   *
   * @throws Deno.errors.BadResource once the listener is closed
   */
  accept(): Promise<TapirTcpConn> {
    socketCalls++;
    if (this.#l.closed) return Promise.reject(badResource());
    const c = this.#l.accept();
    if (c !== null) return Promise.resolve(new TapirTcpConn(c));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Stop listening; a pending accept() rejects with BadResource. */
  close(): void {
    if (this.#l.closed) throw badResource();
    this.#l.close();
    for (const w of this.#waiters.splice(0)) w.reject(badResource());
  }

  [Symbol.dispose](): void {
    if (!this.#l.closed) this.close();
  }

  ref(): void {}
  unref(): void {}

  async *[Symbol.asyncIterator](): AsyncIterableIterator<TapirTcpConn> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
    }
  }
}
