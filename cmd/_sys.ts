/**
 * The few process-level system calls `tapir run` makes through FFI into
 * libc: neutralising SIGUSR1 (which Deno ≥ 2.9.2 turns into "start the V8
 * inspector on 127.0.0.1:9229", an unauthenticated debugger in a root
 * process that holds the TAP descriptors) and sending sd_notify datagrams
 * to systemd's NOTIFY_SOCKET.
 *
 * @module
 */

const SIGUSR1 = 10;
const SIG_IGN = 1n;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;

const SYMBOLS = {
  signal: { parameters: ["i32", "usize"], result: "usize" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  stat: { parameters: ["buffer", "buffer"], result: "i32" },
} as const;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;
function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

/**
 * Make SIGUSR1 ignored for the life of the process. Deno installs its
 * inspector trigger about 500 ms after start (a grace period for short
 * programs), or later when startup keeps its event loop busy, and that
 * would replace an earlier SIG_IGN. So first a listener of our own takes
 * SIGUSR1's slot in Deno's signal registry: the registry installs its
 * process handler once, for the first listener of a signal, so the
 * trigger's later registration installs nothing, and the SIG_IGN set right
 * after stays (checked with Deno 2.9.6 by `tests/cmd/sys_test.ts`). As a
 * second guard, SIG_IGN is set again on a timer for as long as the process
 * runs: every 10 ms for the first `fastMs` (default 5 s), then every 250
 * ms; `watch: false` leaves the guard out (tests).
 *
 * @returns a cancel function (stops the watching, drops the listener)
 */
export function neutraliseSigusr1(
  opts: { fastMs?: number; watch?: boolean } = {},
): () => void {
  const c = libc();
  const ignore = () => {};
  Deno.addSignalListener("SIGUSR1", ignore);
  c.signal(SIGUSR1, SIG_IGN);
  if (opts.watch === false) return () => Deno.removeSignalListener("SIGUSR1", ignore);
  const fastMs = opts.fastMs ?? 5000;
  const t0 = Date.now();
  let slow: ReturnType<typeof setInterval> | undefined;
  const fast = setInterval(() => {
    c.signal(SIGUSR1, SIG_IGN);
    if (Date.now() - t0 < fastMs) return;
    clearInterval(fast);
    const t = setInterval(() => c.signal(SIGUSR1, SIG_IGN), 250);
    Deno.unrefTimer(t);
    slow = t;
  }, 10);
  Deno.unrefTimer(fast);
  return () => {
    clearInterval(fast);
    if (slow !== undefined) clearInterval(slow);
    Deno.removeSignalListener("SIGUSR1", ignore);
  };
}

/** A sender of sd_notify(3) messages, or null when `NOTIFY_SOCKET` is not set. */
export interface Notifier {
  /** Send `state` (e.g. "READY=1"); false when the datagram could not be sent. */
  send(state: string): boolean;
  close(): void;
}

/**
 * sd_notify over the AF_UNIX datagram socket systemd names in
 * NOTIFY_SOCKET (a path, or `@name` for the abstract namespace).
 */
export function notifier(socketPath = Deno.env.get("NOTIFY_SOCKET")): Notifier | null {
  if (socketPath === undefined || socketPath === "") return null;
  const c = libc();
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return null;
  const name = new TextEncoder().encode(socketPath);
  // struct sockaddr_un: sa_family_t (2 bytes) + sun_path[108].
  const addr = new Uint8Array(2 + 108);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name.subarray(0, 107), 2);
  // An abstract socket: '@' stands for the leading NUL; its length is exact.
  const abstract = socketPath.startsWith("@");
  if (abstract) addr[2] = 0;
  const addrLen = abstract ? 2 + Math.min(name.length, 108) : addr.length;
  const enc = new TextEncoder();
  return {
    send(state: string): boolean {
      const msg = enc.encode(state);
      return c.sendto(fd, msg, BigInt(msg.length), MSG_NOSIGNAL, addr, addrLen) === msg.length;
    },
    close() {
      c.close(fd);
    },
  };
}

/** CLOCK_MONOTONIC in microseconds, as sd_notify's MONOTONIC_USEC wants it. */
export function monotonicUsec(): bigint {
  const ts = new BigInt64Array(2);
  libc().clock_gettime(1, new Uint8Array(ts.buffer));
  return ts[0]! * 1_000_000n + ts[1]! / 1000n;
}

/**
 * The inode of `path` through stat(2): Deno refuses to stat or read
 * `/proc/self/*` without `--allow-all`, but FFI reaches it.
 */
export function inodeOf(path: string): bigint | null {
  // struct stat on x86_64 and aarch64: st_dev (8 bytes), then st_ino (8 bytes).
  const st = new BigUint64Array(32);
  const name = new TextEncoder().encode(path + "\0");
  if (libc().stat(name, new Uint8Array(st.buffer)) !== 0) return null;
  return st[1]!;
}
