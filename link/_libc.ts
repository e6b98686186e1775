/**
 * The libc calls the TAP link needs, through `Deno.dlopen("libc.so.6")`,
 * opened lazily on first use so that importing `link/` needs no
 * `--allow-ffi` until a TAP is actually opened.
 *
 * FFI rules measured on these machines (DESIGN.md, "The datapath"): pass
 * bigints for `usize`/`u64` (a number leaves V8's fast path), declare
 * `ssize_t` results as `i32`, declare variadic `ioctl` once per argument
 * kind, and read errno through an `Int32Array` over `__errno_location()`
 * taken once (errno is per thread; every synchronous call runs on the main
 * thread).
 *
 * @module
 */

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "pointer", "usize"], result: "i32" },
  write: { parameters: ["i32", "pointer", "usize"], result: "i32" },
  /** ioctl(fd, req, void *arg) */
  ioctl_ptr: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** ioctl(fd, req, unsigned long arg) */
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  /** poll(fds, nfds, timeout), blocking the calling thread. */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  /** The same poll on Deno's blocking pool: the main thread keeps running timers. */
  poll_async: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** malloc_trim(pad): give the free memory of every malloc arena back to the kernel. */
  malloc_trim: { parameters: ["usize"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The bound libc symbols. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Linux constants (x86_64/aarch64 generic ABI). */
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

/** linux/if_tun.h */
export const TUNSETIFF = 0x400454can;
export const TUNSETOFFLOAD = 0x400454d0n;
export const TUNSETVNETHDRSZ = 0x400454d8n;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;

/** linux/sockios.h, linux/if.h */
export const SIOCGIFFLAGS = 0x8913n;
export const SIOCSIFFLAGS = 0x8914n;
export const SIOCGIFMTU = 0x8921n;
export const SIOCSIFMTU = 0x8922n;
export const IFF_UP = 0x1;
/** sizeof(struct ifreq): IFNAMSIZ name + a 24-byte union. */
export const IFREQ_SIZE = 40;
export const IFNAMSIZ = 16;

/** poll.h */
export const POLLIN = 0x001;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
/** sizeof(struct pollfd) */
export const POLLFD_SIZE = 8;

/** errno values. */
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EAGAIN = 11;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const ENODEV = 19;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const ENETDOWN = 100;
export const EBADFD = 77;

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [EINTR]: "EINTR",
  [EIO]: "EIO",
  [ENXIO]: "ENXIO",
  [EBADF]: "EBADF",
  [EAGAIN]: "EAGAIN",
  [EACCES]: "EACCES",
  [EFAULT]: "EFAULT",
  [EBUSY]: "EBUSY",
  [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL",
  [EMSGSIZE]: "EMSGSIZE",
  [ENETDOWN]: "ENETDOWN",
  [EBADFD]: "EBADFD",
};

/** The symbolic name of an errno value (`EAGAIN`), or `errno N`. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** libc, opened once, and the calling thread's errno. */
export interface Libc {
  readonly sym: LibcSymbols;
  /** errno of the main thread, read through a view made once. */
  errno(): number;
}

let cached: Libc | null = null;

/**
 * Open libc (once). Throws what `Deno.dlopen` throws: `Deno.errors.NotCapable`
 * (or `PermissionDenied`) without `--allow-ffi`.
 */
export function libc(): Libc {
  if (cached !== null) return cached;
  const lib = Deno.dlopen("libc.so.6", SYMBOLS);
  const loc = lib.symbols.__errno_location();
  if (loc === null) throw new Error("__errno_location() returned NULL");
  const errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(loc, 4));
  cached = { sym: lib.symbols, errno: () => errnoView[0]! };
  return cached;
}

const encoder = new TextEncoder();

/** A NUL-terminated C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** A zeroed `struct ifreq` with `ifr_name` set. */
export function ifreq(name: string): Uint8Array<ArrayBuffer> {
  const r = new Uint8Array(IFREQ_SIZE);
  r.set(encoder.encode(name).subarray(0, IFNAMSIZ - 1));
  return r;
}
