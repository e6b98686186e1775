/**
 * A Linux TAP device as a {@link LinkEndpoint}, through FFI calls into libc:
 * open `/dev/net/tun`, `TUNSETIFF` with `IFF_TAP | IFF_NO_PI` (and
 * `IFF_VNET_HDR` with offloads), non-blocking reads and writes straight
 * from pooled buffers.
 *
 * The fd is drained with synchronous non-blocking `read`s into one buffer
 * per endpoint, each frame dispatched synchronously (see {@link LinkDriver}
 * for the loop that waits on `poll`). No Promise, allocation or closure per
 * packet.
 *
 * @module
 */
import type { LinkEndpoint, NetworkDispatcher } from "../stack/link_endpoint.ts";
import { DispatchErrorReporter } from "./_dispatch_errors.ts";
import { HEADROOM, PacketBuffer, VNET_HDR_LEN } from "../stack/wire/packet_buffer.ts";
import {
  AF_INET,
  cString,
  EACCES,
  EAGAIN,
  EBUSY,
  EINTR,
  EINVAL,
  EIO,
  ENETDOWN,
  ENODEV,
  ENOENT,
  ENXIO,
  EPERM,
  errnoName,
  IFF_NO_PI,
  IFF_TAP,
  IFF_UP,
  IFF_VNET_HDR,
  IFNAMSIZ,
  ifreq,
  type Libc,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SIOCGIFFLAGS,
  SIOCGIFMTU,
  SIOCSIFFLAGS,
  SIOCSIFMTU,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUNSETIFF,
  TUNSETOFFLOAD,
  TUNSETVNETHDRSZ,
} from "./_libc.ts";

/** Options of {@link openTap}. */
export interface TapOptions {
  /** TAP device name (at most 15 bytes); created, or attached when it exists. */
  device: string;
  /** Set the device's MTU (SIOCSIFMTU) to this many bytes. */
  mtu?: number;
  /** Open with IFF_VNET_HDR and enable CSUM/TSO4/TSO6/TSO_ECN offloads. Default true. */
  offload?: boolean;
  /** Bring the device up (SIOCSIFFLAGS IFF_UP). Default true. */
  up?: boolean;
}

/**
 * Opening or configuring a TAP failed. `code` says why and `message` names
 * the fix.
 */
export class TapError extends Error {
  /** `NO_TUN`, `EPERM`, `EBUSY`, `NO_FFI`, `EINVAL`, or another errno name. */
  readonly code: "NO_TUN" | "EPERM" | "EBUSY" | "NO_FFI" | "EINVAL" | string;

  /**
   * @param code why it failed
   * @param message what failed and how to fix it
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TapError";
    this.code = code;
  }
}

/**
 * Map an errno from opening or configuring TAP `device` to a {@link TapError}
 * whose message names the fix.
 *
 * @param errno the errno value
 * @param op the call that failed (`open /dev/net/tun`, `TUNSETIFF`, ...)
 * @param device the TAP device name
 * @returns the error to throw
 */
export function tapErrorFromErrno(errno: number, op: string, device: string): TapError {
  const what = `${op} for TAP device "${device}" failed (${errnoName(errno)})`;
  switch (errno) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      if (op.startsWith("open")) {
        return new TapError(
          "NO_TUN",
          `${what}: /dev/net/tun is missing; load the tun module (modprobe tun) / run where /dev/net/tun exists`,
        );
      }
      return new TapError(errnoName(errno), `${what}: the device is gone`);
    case EPERM:
    case EACCES:
      return new TapError("EPERM", `${what}: run as root or grant CAP_NET_ADMIN`);
    case EBUSY:
      return new TapError(
        "EBUSY",
        `${what}: device busy: another process holds tap ${device}`,
      );
    case EINVAL:
      return new TapError(
        "EINVAL",
        `${what}: "${device}" exists but is not a TAP device, or its name or settings are invalid`,
      );
    default:
      return new TapError(errnoName(errno), what);
  }
}

/** Counters of one TAP endpoint. */
export interface TapStats {
  /** Frames read from the fd and dispatched. */
  rxFrames: number;
  /** Bytes of frames read (Ethernet header on, virtio-net header off). */
  rxBytes: number;
  /** Frames written to the fd. */
  txFrames: number;
  /** Bytes of frames written. */
  txBytes: number;
  /** Frames dropped because the write returned EAGAIN (the device queue is full). */
  txEagainDrops: number;
  /** GSO super-frames handed to a TAP without offloads, dropped. */
  txGsoDrops: number;
  /** Frames dropped because the device is administratively down (EIO) or the link failed. */
  txDownDrops: number;
  /** Writes that failed otherwise. */
  writeErrors: number;
  /** Reads that failed with an error other than EAGAIN/EINTR. */
  readErrors: number;
  /** Reads shorter than the virtio-net header, dropped. */
  rxRuntDrops: number;
  /** Exceptions thrown by the dispatcher, caught so the loop goes on. */
  dispatchErrors: number;
}

function newTapStats(): TapStats {
  return {
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    txEagainDrops: 0,
    txGsoDrops: 0,
    txDownDrops: 0,
    writeErrors: 0,
    readErrors: 0,
    rxRuntDrops: 0,
    dispatchErrors: 0,
  };
}

/**
 * `BigInt(n)` made once per length: write() takes a usize, and a bigint
 * made per packet would be an allocation per packet.
 */
const LENGTHS: bigint[] = [];

/** Per-buffer pointers for writing a buffer that is not the endpoint's own. */
interface BufferPointers {
  /** Pointer to `data[HEADROOM - hdrLen]`. */
  at: Deno.PointerObject;
}

/**
 * An open TAP device. Made by {@link openTap}; driven by a
 * {@link LinkDriver} (or by calling {@link TapEndpoint.drain} yourself).
 */
export class TapEndpoint implements LinkEndpoint {
  /** The TAP fd (non-blocking). -1 once closed. */
  fd: number;
  /** The device name. */
  readonly name: string;
  /** With offloads the link takes GSO super-frames and partial checksums. */
  readonly capabilities: { readonly offloads: boolean };
  /** Counters. */
  readonly stats: TapStats = newTapStats();
  /** Why the link went down, once it has. */
  downReason: string | null = null;
  readonly #errors: DispatchErrorReporter;

  readonly #lib: Libc;
  readonly #mtu: number;
  /** Bytes in front of each frame on the fd: VNET_HDR_LEN with offloads, else 0. */
  readonly #hdrLen: number;
  readonly #rx = new PacketBuffer();
  readonly #rxAt: Deno.PointerObject;
  /** read() count: the buffer from HEADROOM - hdrLen to its end. */
  readonly #rxCount: bigint;
  readonly #ptrs = new WeakMap<Uint8Array, BufferPointers>();
  #dispatcher: NetworkDispatcher | null = null;
  #up = true;

  /** Use {@link openTap}. */
  constructor(lib: Libc, fd: number, name: string, mtu: number, offloads: boolean) {
    this.#lib = lib;
    this.#errors = new DispatchErrorReporter(`TAP ${name}`, () => performance.now());
    this.fd = fd;
    this.name = name;
    this.#mtu = mtu;
    this.capabilities = { offloads };
    this.#hdrLen = offloads ? VNET_HDR_LEN : 0;
    this.#rxAt = this.#pointers(this.#rx.data).at;
    this.#rxCount = BigInt(this.#rx.data.length - (HEADROOM - this.#hdrLen));
  }

  /** The IP MTU of the device. */
  mtu(): number {
    return this.#mtu;
  }

  /** Deliver received frames to `d` (null: read and discard). */
  attach(d: NetworkDispatcher | null): void {
    this.#dispatcher = d;
  }

  /** True until the fd failed or the endpoint was closed. */
  isUp(): boolean {
    return this.#up;
  }

  /**
   * Read up to `batch` frames with synchronous non-blocking reads into the
   * endpoint's one receive buffer, dispatching each before the next read.
   *
   * @param batch most frames to read
   * @returns frames read (less than `batch` means the fd is drained or down)
   */
  drain(batch: number): number {
    if (!this.#up) return 0;
    const sym = this.#lib.sym;
    const pkt = this.#rx;
    const hdr = this.#hdrLen;
    let n = 0;
    while (n < batch) {
      const r = sym.read(this.fd, this.#rxAt, this.#rxCount);
      if (r < 0) {
        const e = this.#lib.errno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        this.stats.readErrors++;
        this.#linkDown(`read: ${errnoName(e)}`);
        break;
      }
      if (r === 0) break;
      n++;
      if (r < hdr) {
        this.stats.rxRuntDrops++;
        continue;
      }
      pkt.setFrame(HEADROOM, r - hdr);
      if (hdr !== 0) this.#parseVnet(pkt);
      this.stats.rxFrames++;
      this.stats.rxBytes += r - hdr;
      const d = this.#dispatcher;
      if (d !== null) {
        try {
          d.deliverFrame(pkt);
        } catch (e) {
          this.stats.dispatchErrors++;
          this.#errors.report(e);
        }
      }
    }
    return n;
  }

  /**
   * Write `pkt.data[pkt.start, pkt.end)` (with its virtio-net header when
   * offloads are on). Returns false and counts the drop when the device
   * queue is full, the frame is a GSO super-frame on a link without
   * offloads, or the link is down.
   */
  writePacket(pkt: PacketBuffer): boolean {
    if (!this.#up) {
      this.stats.txDownDrops++;
      return false;
    }
    const hdr = this.#hdrLen;
    if (hdr === 0 && pkt.isGso()) {
      this.stats.txGsoDrops++;
      return false;
    }
    let len = pkt.end - pkt.start;
    if (pkt.start !== HEADROOM) {
      // Rare: a locally built frame whose first header did not land at HEADROOM.
      if (HEADROOM + len > pkt.data.length || len < 0) {
        this.stats.writeErrors++;
        return false;
      }
      pkt.data.copyWithin(HEADROOM, pkt.start, pkt.end);
      pkt.end = HEADROOM + len;
      pkt.start = HEADROOM;
    }
    const at = pkt === this.#rx ? this.#rxAt : this.#pointers(pkt.data).at;
    if (hdr !== 0) {
      this.#emitVnet(pkt);
      len += hdr;
    }
    const r = this.#lib.sym.write(this.fd, at, LENGTHS[len] ??= BigInt(len));
    if (r >= 0) {
      this.stats.txFrames++;
      this.stats.txBytes += len - hdr;
      return true;
    }
    const e = this.#lib.errno();
    if (e === EAGAIN) {
      this.stats.txEagainDrops++;
    } else if (e === EIO || e === ENETDOWN) {
      // The device exists but is administratively down.
      this.stats.txDownDrops++;
    } else if (e === EINTR || e === EINVAL) {
      this.stats.writeErrors++;
    } else {
      this.stats.writeErrors++;
      this.#linkDown(`write: ${errnoName(e)}`);
    }
    return false;
  }

  /** Close the fd (the kernel removes a non-persistent device). Idempotent. */
  close(): void {
    if (this.fd >= 0) {
      this.#lib.sym.close(this.fd);
      this.fd = -1;
    }
    this.#up = false;
  }

  #linkDown(reason: string): void {
    if (!this.#up) return;
    this.#up = false;
    this.downReason = reason;
    try {
      this.#dispatcher?.linkDown?.(reason);
    } catch {
      this.stats.dispatchErrors++;
    }
  }

  #pointers(data: Uint8Array): BufferPointers {
    let p = this.#ptrs.get(data);
    if (p === undefined) {
      const base = Deno.UnsafePointer.of(data as Uint8Array<ArrayBuffer>);
      if (base === null) throw new Error("cannot take the address of an empty buffer");
      const at = Deno.UnsafePointer.offset(base, HEADROOM - this.#hdrLen);
      if (at === null) throw new Error("null pointer");
      p = { at };
      this.#ptrs.set(data, p);
    }
    return p;
  }

  /** struct virtio_net_hdr (little-endian, linux/virtio_net.h) in front of HEADROOM. */
  #parseVnet(pkt: PacketBuffer): void {
    const v = pkt.view;
    const o = HEADROOM - VNET_HDR_LEN;
    pkt.vnetFlags = v.getUint8(o);
    pkt.gsoType = v.getUint8(o + 1);
    pkt.gsoHdrLen = v.getUint16(o + 2, true);
    pkt.gsoSize = v.getUint16(o + 4, true);
    pkt.csumStart = v.getUint16(o + 6, true);
    pkt.csumOffset = v.getUint16(o + 8, true);
  }

  #emitVnet(pkt: PacketBuffer): void {
    const v = pkt.view;
    const o = HEADROOM - VNET_HDR_LEN;
    v.setUint8(o, pkt.vnetFlags);
    v.setUint8(o + 1, pkt.gsoType);
    v.setUint16(o + 2, pkt.gsoHdrLen, true);
    v.setUint16(o + 4, pkt.gsoSize, true);
    v.setUint16(o + 6, pkt.csumStart, true);
    v.setUint16(o + 8, pkt.csumOffset, true);
  }
}

function openLibc(device: string): Libc {
  try {
    return libc();
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new TapError(
        "NO_FFI",
        `cannot open TAP device "${device}": FFI is not allowed; run with --allow-ffi`,
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * Open (create, or attach to) the TAP device `opts.device`.
 *
 * @param opts device name, MTU, offloads, up
 * @returns the endpoint, its fd non-blocking
 * @throws {TapError} naming the fix (missing /dev/net/tun, CAP_NET_ADMIN, --allow-ffi, busy device)
 */
export function openTap(opts: TapOptions): TapEndpoint {
  const device = opts.device;
  const offload = opts.offload ?? true;
  const up = opts.up ?? true;
  if (device.length === 0 || new TextEncoder().encode(device).length >= IFNAMSIZ) {
    throw new TapError(
      "EINVAL",
      `TAP device name "${device}" must be 1 to ${IFNAMSIZ - 1} bytes long`,
    );
  }
  if (opts.mtu !== undefined && !(Number.isInteger(opts.mtu) && opts.mtu >= 68)) {
    throw new TapError("EINVAL", `MTU ${opts.mtu} of TAP device "${device}" must be ≥ 68`);
  }
  const lib = openLibc(device);
  const sym = lib.sym;
  const fd = sym.open(cString("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) throw tapErrorFromErrno(lib.errno(), "open /dev/net/tun", device);
  let sock = -1;
  try {
    const req = ifreq(device);
    new DataView(req.buffer).setUint16(
      IFNAMSIZ,
      IFF_TAP | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0),
      true,
    );
    if (sym.ioctl_ptr(fd, TUNSETIFF, req) < 0) {
      throw tapErrorFromErrno(lib.errno(), "TUNSETIFF", device);
    }
    if (offload) {
      const sz = new Int32Array([VNET_HDR_LEN]);
      if (sym.ioctl_ptr(fd, TUNSETVNETHDRSZ, new Uint8Array(sz.buffer)) < 0) {
        throw tapErrorFromErrno(lib.errno(), "TUNSETVNETHDRSZ", device);
      }
      const flags = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
      if (sym.ioctl_int(fd, TUNSETOFFLOAD, BigInt(flags)) < 0) {
        throw tapErrorFromErrno(lib.errno(), "TUNSETOFFLOAD", device);
      }
    }
    sock = sym.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) throw tapErrorFromErrno(lib.errno(), "socket(AF_INET)", device);
    if (opts.mtu !== undefined) {
      const r = ifreq(device);
      new DataView(r.buffer).setInt32(IFNAMSIZ, opts.mtu, true);
      if (sym.ioctl_ptr(sock, SIOCSIFMTU, r) < 0) {
        throw tapErrorFromErrno(lib.errno(), `SIOCSIFMTU ${opts.mtu}`, device);
      }
    }
    if (up) {
      const r = ifreq(device);
      if (sym.ioctl_ptr(sock, SIOCGIFFLAGS, r) < 0) {
        throw tapErrorFromErrno(lib.errno(), "SIOCGIFFLAGS", device);
      }
      const dv = new DataView(r.buffer);
      dv.setUint16(IFNAMSIZ, dv.getUint16(IFNAMSIZ, true) | IFF_UP, true);
      if (sym.ioctl_ptr(sock, SIOCSIFFLAGS, r) < 0) {
        throw tapErrorFromErrno(lib.errno(), "SIOCSIFFLAGS IFF_UP", device);
      }
    }
    const mr = ifreq(device);
    const mtu = sym.ioctl_ptr(sock, SIOCGIFMTU, mr) < 0
      ? (opts.mtu ?? 1500)
      : new DataView(mr.buffer).getInt32(IFNAMSIZ, true);
    return new TapEndpoint(lib, fd, device, mtu, offload);
  } catch (e) {
    sym.close(fd);
    throw e;
  } finally {
    if (sock >= 0) sym.close(sock);
  }
}
