/**
 * UDP sockets with the shape of `Deno.listenDatagram` and
 * `Deno.DatagramConn`: the same method names, `Deno.NetAddr` addresses and
 * `Deno.errors` failures, so code written against Deno's UDP runs on
 * tapir's stack by swapping `Deno.listenDatagram(...)` for
 * `stack.listenDatagram(...)`. On top of Deno's shape, what services need:
 * binding to one interface, the arriving interface and destination of each
 * datagram ({@link TapirDatagramConn.receiveFrom}), and sending out of a
 * chosen interface to a chosen link-layer address from any source
 * ({@link TapirDatagramConn.sendTo}).
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Ipv4 } from "../ipv4/ipv4.ts";
import type { Ipv6 } from "../ipv6/ipv6.ts";
import type { StackStats } from "../stats.ts";
import { isUnspecified, netAddr as netAddrOf, parseHost } from "./_addr.ts";
import { parseMac } from "../wire/mac_address.ts";
import type { IpAddr, Udp, UdpDatagram, UdpEndpoint } from "./udp.ts";

/** Options of `listenDatagram`, as Deno's `UdpListenOptions` plus tapir's own. */
export interface ListenDatagramOptions {
  /** Local address to bind (default "0.0.0.0"); "::" takes both families. */
  hostname?: string;
  port: number;
  transport?: "udp";
  /** Share the address with other sockets that set it too (SO_REUSEADDR). */
  reuseAddress?: boolean;
  /** Loop sent multicast back to local sockets (Deno's option; tapir does not loop yet). */
  loopback?: boolean;
  /** tapir: only this interface (by name): receive what arrives on it, send out of it (SO_BINDTODEVICE). */
  interface?: string;
  /** tapir: most datagrams queued for `receive()` before new ones are dropped (default 1024). */
  queueLength?: number;
}

/** A datagram with where it arrived: {@link TapirDatagramConn.receiveFrom}. */
export interface DatagramInfo {
  data: Uint8Array<ArrayBuffer>;
  /** The sender. */
  remote: Deno.NetAddr;
  /** The destination it was sent to (one of ours, a broadcast or a multicast group). */
  local: Deno.NetAddr;
  /** The interface it arrived on (null: from this host). */
  interface: string | null;
}

/** Options of {@link TapirDatagramConn.sendTo}. */
export interface SendToOptions {
  /** Leave by this interface (by name). */
  interface?: string;
  /** Write this link-layer destination ("ff:ff:ff:ff:ff:ff" or a MAC) instead of ARP/NDP. */
  linkAddress?: string;
  /** The source address, kept as given ("0.0.0.0" included). */
  source?: string;
  /** TTL / hop limit. */
  ttl?: number;
}

/** Deno's MulticastV4Membership / MulticastV6Membership. */
export interface MulticastMembership {
  leave: () => Promise<void>;
  setLoopback: (loopback: boolean) => Promise<void>;
  setTTL: (ttl: number) => Promise<void>;
}

/** What the datagram API needs of a stack. */
export interface DatagramHost {
  readonly udp: Udp;
  readonly ipv4: Ipv4;
  readonly ipv6: Ipv6;
  readonly nics: ReadonlyMap<number, Nic>;
  readonly stats: StackStats;
  nicByName(name: string): Nic | undefined;
}

function netAddr(a: IpAddr, port: number): Deno.NetAddr {
  return netAddrOf(a, port, "udp");
}

/**
 * A UDP socket on tapir's stack with `Deno.DatagramConn`'s members, plus
 * {@link receiveFrom}, {@link sendTo} and a synchronous callback form.
 */
export class TapirDatagramConn implements AsyncIterable<[Uint8Array<ArrayBuffer>, Deno.NetAddr]> {
  readonly addr: Deno.NetAddr;
  readonly #host: DatagramHost;
  readonly #ep: UdpEndpoint;
  readonly #queue: DatagramInfo[] = [];
  readonly #waiting: {
    resolve: (d: DatagramInfo) => void;
    reject: (e: Error) => void;
  }[] = [];
  readonly #limit: number;
  readonly #groups: { family: 4 | 6; group: IpAddr; nic: Nic }[] = [];
  #multicastTtl: number | undefined;
  #closed = false;

  /** @internal use `stack.listenDatagram` */
  constructor(host: DatagramHost, o: ListenDatagramOptions) {
    if (o.transport !== undefined && o.transport !== "udp") {
      throw new TypeError(`Unsupported transport "${o.transport}": tapir's datagrams are udp`);
    }
    this.#host = host;
    this.#limit = o.queueLength ?? 1024;
    const hostname = o.hostname ?? "0.0.0.0";
    const a = parseHost(hostname);
    let device: Nic | null = null;
    if (o.interface !== undefined) {
      device = host.nicByName(o.interface) ?? null;
      if (device === null) {
        throw new Deno.errors.NotFound(`No interface named "${o.interface}"`);
      }
    }
    this.#ep = host.udp.bindSocket({
      // "0.0.0.0" is IPv4 only; "::" takes both families (Linux's bindv6only=0).
      family: typeof a === "number" ? 4 : (isUnspecified(a) ? 0 : 6),
      address: isUnspecified(a) ? null : a,
      port: o.port,
      device,
      reuse: o.reuseAddress ?? false,
      onDatagram: (d) => this.#arrived(d),
    });
    this.addr = netAddr(a, this.#ep.port);
  }

  #arrived(d: UdpDatagram): void {
    const data = d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength);
    const src: IpAddr = d.family === 4
      ? d.src
      : d.buffer.data.slice(d.src6Offset, d.src6Offset + 16);
    const dst: IpAddr = d.family === 4
      ? d.dst
      : d.buffer.data.slice(d.dst6Offset, d.dst6Offset + 16);
    const info: DatagramInfo = {
      data,
      remote: netAddr(src, d.srcPort),
      local: netAddr(dst, d.dstPort),
      interface: d.nic?.name ?? null,
    };
    const w = this.#waiting.shift();
    if (w !== undefined) {
      w.resolve(info);
      return;
    }
    if (this.#queue.length >= this.#limit) {
      this.#host.stats.udp.receiveQueueFullDropped++;
      return;
    }
    this.#queue.push(info);
  }

  /** The next datagram with where it arrived (tapir's addition to Deno's shape). */
  receiveFrom(): Promise<DatagramInfo> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    const q = this.#queue.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /**
   * Waits for and resolves to the next datagram: its bytes and the sender.
   * With `p`, the bytes are copied into `p` (truncated to its length) and
   * the returned array is a view of `p`, as Deno does.
   */
  async receive(p?: Uint8Array): Promise<[Uint8Array<ArrayBuffer>, Deno.NetAddr]> {
    const d = await this.receiveFrom();
    if (p === undefined) return [d.data, d.remote];
    const n = Math.min(p.length, d.data.length);
    p.set(d.data.subarray(0, n));
    return [new Uint8Array(p.buffer as ArrayBuffer, p.byteOffset, n), d.remote];
  }

  /** Sends `p` to `addr`; resolves to the bytes sent. */
  send(p: Uint8Array, addr: Deno.NetAddr): Promise<number> {
    return this.sendTo(p, addr);
  }

  /** {@link send} with tapir's options: the interface, the link-layer destination, the source. */
  sendTo(p: Uint8Array, addr: Deno.NetAddr, o: SendToOptions = {}): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    let dst: IpAddr;
    try {
      dst = parseHost(addr.hostname);
    } catch (e) {
      return Promise.reject(e);
    }
    let nic: Nic | undefined;
    if (o.interface !== undefined) {
      nic = this.#host.nicByName(o.interface);
      if (nic === undefined) {
        return Promise.reject(new Deno.errors.NotFound(`No interface named "${o.interface}"`));
      }
    }
    const isMulticast = typeof dst === "number" ? (dst >>> 28) === 0xe : dst[0] === 0xff;
    const ok = this.#ep.send(dst, addr.port, p, {
      ...(nic !== undefined ? { nic } : {}),
      ...(o.linkAddress !== undefined ? { linkDst: parseMac(o.linkAddress) } : {}),
      ...(o.source !== undefined ? { src: parseHost(o.source) } : {}),
      ...(o.ttl !== undefined
        ? { ttl: o.ttl }
        : isMulticast && this.#multicastTtl !== undefined
        ? { ttl: this.#multicastTtl }
        : {}),
    });
    if (!ok) {
      return Promise.reject(
        new (Deno.errors.NetworkUnreachable ?? Error)("Network is unreachable"),
      );
    }
    return Promise.resolve(p.length);
  }

  /**
   * Synchronous form for built-in services: `fn` is called for every
   * datagram, in the datapath, with the packet buffer (valid only during
   * the call); `receive()` then gets nothing. No Promise per datagram.
   */
  static bind(
    host: DatagramHost,
    o: Omit<ListenDatagramOptions, "queueLength">,
    fn: (d: UdpDatagram) => void,
  ): UdpEndpoint {
    const a = parseHost(o.hostname ?? "0.0.0.0");
    let device: Nic | null = null;
    if (o.interface !== undefined) {
      device = host.nicByName(o.interface) ?? null;
      if (device === null) throw new Deno.errors.NotFound(`No interface named "${o.interface}"`);
    }
    return host.udp.bindSocket({
      family: typeof a === "number" ? 4 : (isUnspecified(a) ? 0 : 6),
      address: isUnspecified(a) ? null : a,
      port: o.port,
      device,
      reuse: o.reuseAddress ?? false,
      onDatagram: fn,
    });
  }

  #nicFor(family: 4 | 6, iface: string | number): Nic {
    if (typeof iface === "number") {
      const n = iface === 0
        ? this.#ep.device ?? [...this.#host.nics.values()][0]
        : this.#host.nics.get(iface);
      if (n === undefined) throw new Deno.errors.NotFound(`No interface with index ${iface}`);
      return n;
    }
    const a = parseHost(iface);
    if (typeof a === "number" && a === 0) {
      const n = this.#ep.device ?? [...this.#host.nics.values()][0];
      if (n === undefined) throw new Deno.errors.NotFound("No interface");
      return n;
    }
    const n = typeof a === "number"
      ? this.#host.ipv4.local.get(a)
      : this.#host.ipv6.local.get(a, 0)?.nic;
    if (n === undefined) {
      throw new Deno.errors.AddrNotAvailable(`No IPv${family} interface has address ${iface}`);
    }
    return n;
  }

  #membership(family: 4 | 6, group: IpAddr, nic: Nic): MulticastMembership {
    const entry = { family, group, nic };
    this.#groups.push(entry);
    return {
      leave: () => {
        const i = this.#groups.indexOf(entry);
        if (i >= 0) {
          this.#groups.splice(i, 1);
          this.#leave(entry);
        }
        return Promise.resolve();
      },
      setLoopback: () => Promise.resolve(),
      setTTL: (ttl: number) => {
        this.#multicastTtl = ttl;
        return Promise.resolve();
      },
    };
  }

  #leave(e: { family: 4 | 6; group: IpAddr; nic: Nic }): void {
    if (e.family === 4) this.#host.ipv4.leaveGroup(e.nic, e.group as number);
    else this.#host.ipv6.leaveGroup(e.nic, e.group as Uint8Array);
  }

  /** Joins an IPv4 multicast group on the interface that has `networkInterface` ("0.0.0.0": the socket's or the first). */
  joinMulticastV4(address: string, networkInterface: string): Promise<MulticastMembership> {
    try {
      const g = parseHost(address);
      if (typeof g !== "number" || (g >>> 28) !== 0xe) {
        throw new Deno.errors.InvalidData(`${address} is not an IPv4 multicast group`);
      }
      const nic = this.#nicFor(4, networkInterface);
      this.#host.ipv4.joinGroup(nic, g);
      return Promise.resolve(this.#membership(4, g, nic));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Joins an IPv6 multicast group on the interface with index `networkInterface` (0: the socket's or the first). */
  joinMulticastV6(address: string, networkInterface: number): Promise<MulticastMembership> {
    try {
      const g = parseHost(address);
      if (typeof g === "number" || g[0] !== 0xff) {
        throw new Deno.errors.InvalidData(`${address} is not an IPv6 multicast group`);
      }
      const nic = this.#nicFor(6, networkInterface);
      this.#host.ipv6.joinGroup(nic, g);
      return Promise.resolve(this.#membership(6, g, nic));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Closes the socket; pending `receive()`s reject with `Deno.errors.BadResource`. */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("Bad resource ID");
    this.#closed = true;
    this.#ep.close();
    for (const g of this.#groups.splice(0)) this.#leave(g);
    this.#queue.length = 0;
    for (const w of this.#waiting.splice(0)) {
      w.reject(new Deno.errors.BadResource("Bad resource ID"));
    }
  }

  /** Deno's `ref()`: tapir's sockets never keep the event loop alive by themselves. */
  ref(): void {}
  /** Deno's `unref()`. */
  unref(): void {}

  async *[Symbol.asyncIterator](): AsyncIterableIterator<[Uint8Array<ArrayBuffer>, Deno.NetAddr]> {
    while (!this.#closed) {
      try {
        yield await this.receive();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
    }
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}
