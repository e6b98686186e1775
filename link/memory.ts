/**
 * An in-process wire between two endpoints, for tests and the virtual lab.
 * A written frame is copied into a buffer from a pool shared by both ends
 * and queued for the peer; the peer receives it in a flush scheduled on
 * the {@link Clock} (one flush per batch, not per frame), so on a
 * `ManualClock` delivery happens when the test advances time:
 * deterministic, and never recursive (a reply written while a frame is
 * delivered goes into the next flush).
 *
 * @module
 */
import { DispatchErrorReporter } from "./_dispatch_errors.ts";
import type { Clock, Timer } from "../stack/clock.ts";
import type { LinkEndpoint, NetworkDispatcher } from "../stack/link_endpoint.ts";
import { ETHERNET_HEADER_LEN } from "../stack/wire/ethernet.ts";
import { BufferPool, type PacketBuffer } from "../stack/wire/packet_buffer.ts";

/** Options of {@link MemoryLink.pair}. */
export interface MemoryLinkOptions {
  /** Drives delivery. */
  clock: Clock;
  /** IP MTU of both ends. Default 1500. */
  mtu?: number;
  /** Names of the two ends. Default `["mem0", "mem1"]`. */
  names?: [string, string];
  /** Delay of delivery in ms. Default 0 (delivered at the next `advance(0)`). */
  delayMs?: number;
  /** Both ends take GSO super-frames and partial checksums. Default false. */
  offloads?: boolean;
  /** Most frames in flight (both directions). Default 1024. */
  poolLimit?: number;
}

/** Counters of one memory endpoint. */
export interface MemoryLinkStats {
  /** Frames accepted by writePacket and queued for the peer. */
  txFrames: number;
  /** Frames delivered to this end's dispatcher. */
  rxFrames: number;
  /** Frames longer than mtu + 14 (and not GSO on an offloading link), dropped. */
  txTooBigDrops: number;
  /** GSO super-frames written to a link without offloads, dropped. */
  txGsoDrops: number;
  /** Frames dropped because every buffer of the pool was in flight. */
  txPoolDrops: number;
  /** Frames written while this end or its peer was closed, dropped. */
  txDownDrops: number;
  /** Frames delivered while no dispatcher was attached, dropped. */
  rxNoDispatcherDrops: number;
  /** Exceptions thrown by the dispatcher (logged, rate-limited), caught so delivery goes on. */
  dispatchErrors: number;
}

function newStats(): MemoryLinkStats {
  return {
    txFrames: 0,
    rxFrames: 0,
    txTooBigDrops: 0,
    txGsoDrops: 0,
    txPoolDrops: 0,
    txDownDrops: 0,
    rxNoDispatcherDrops: 0,
    dispatchErrors: 0,
  };
}

/** One end of a {@link MemoryLink}. */
export class MemoryEndpoint implements LinkEndpoint {
  /** The end's name. */
  readonly name: string;
  /** Whether the link takes GSO super-frames. */
  readonly capabilities: { readonly offloads: boolean };
  /** Counters. */
  readonly stats: MemoryLinkStats = newStats();
  /** The other end; set by {@link MemoryLink.pair}. */
  peer: MemoryEndpoint | null = null;

  readonly #clock: Clock;
  readonly #errors: DispatchErrorReporter;
  readonly #pool: BufferPool;
  readonly #mtu: number;
  readonly #delayMs: number;
  #dispatcher: NetworkDispatcher | null = null;
  #up = true;
  /** Frames waiting for delivery to this end. */
  #queue: PacketBuffer[] = [];
  /** The spare array swapped in while a flush delivers `#queue`. */
  #spare: PacketBuffer[] = [];
  #flush: Timer | null = null;
  readonly #flushFn = () => this.#deliver();

  /** Use {@link MemoryLink.pair}. */
  constructor(
    name: string,
    clock: Clock,
    pool: BufferPool,
    mtu: number,
    delayMs: number,
    offloads: boolean,
  ) {
    this.name = name;
    this.#clock = clock;
    this.#errors = new DispatchErrorReporter(`memory link ${name}`, () => clock.now());
    this.#pool = pool;
    this.#mtu = mtu;
    this.#delayMs = delayMs;
    this.capabilities = { offloads };
  }

  /** The IP MTU. */
  mtu(): number {
    return this.#mtu;
  }

  /** Deliver frames to `d` (null drops them). */
  attach(d: NetworkDispatcher | null): void {
    this.#dispatcher = d;
  }

  /** True until closed. */
  isUp(): boolean {
    return this.#up;
  }

  /** Frames queued for delivery to this end. */
  pending(): number {
    return this.#queue.length;
  }

  /** Copy the frame and queue it for the peer. */
  writePacket(pkt: PacketBuffer): boolean {
    const peer = this.peer;
    if (!this.#up || peer === null || !peer.#up) {
      this.stats.txDownDrops++;
      return false;
    }
    const gso = pkt.isGso();
    if (gso && !this.capabilities.offloads) {
      this.stats.txGsoDrops++;
      return false;
    }
    if (!gso && pkt.end - pkt.start > this.#mtu + ETHERNET_HEADER_LEN) {
      this.stats.txTooBigDrops++;
      return false;
    }
    const b = this.#pool.clone(pkt);
    if (b === null) {
      this.stats.txPoolDrops++;
      return false;
    }
    b.networkOffset = 0;
    b.transportOffset = 0;
    if (!this.capabilities.offloads) b.clearOffload();
    this.stats.txFrames++;
    peer.#enqueue(b);
    return true;
  }

  /** Close this end: frames queued for it are dropped; the peer's writes fail. */
  close(): void {
    this.#up = false;
    this.#flush?.cancel();
    this.#flush = null;
    for (const b of this.#queue) this.#pool.put(b);
    this.#queue.length = 0;
  }

  #enqueue(b: PacketBuffer): void {
    this.#queue.push(b);
    if (this.#flush === null) this.#flush = this.#clock.schedule(this.#delayMs, this.#flushFn);
  }

  #deliver(): void {
    this.#flush = null;
    const q = this.#queue;
    this.#queue = this.#spare;
    for (let i = 0; i < q.length; i++) {
      const b = q[i]!;
      const d = this.#dispatcher;
      if (!this.#up) {
        // Closed while delivering: the rest is dropped.
      } else if (d === null) {
        this.stats.rxNoDispatcherDrops++;
      } else {
        this.stats.rxFrames++;
        try {
          d.deliverFrame(b);
        } catch (e) {
          this.stats.dispatchErrors++;
          this.#errors.report(e);
        } finally {
          this.#pool.put(b);
        }
        continue;
      }
      this.#pool.put(b);
    }
    q.length = 0;
    this.#spare = q;
  }
}

/**
 * An in-process Ethernet wire.
 *
 * @example
 * ```ts
 * import { MemoryLink } from "./memory.ts";
 * import { ManualClock } from "../stack/clock.ts";
 * import { PacketBuffer, HEADROOM } from "../stack/wire/packet_buffer.ts";
 * const clock = new ManualClock();
 * const [a, b] = MemoryLink.pair({ clock });
 * let got = 0;
 * b.attach({ deliverFrame: () => got++ });
 * a.writePacket(new PacketBuffer().setFrame(HEADROOM, 60));
 * clock.advance(0);
 * console.assert(got === 1);
 * ```
 */
export class MemoryLink {
  /**
   * Two endpoints joined by a wire.
   *
   * @param opts clock, MTU, names, delay, offloads
   * @returns the two ends
   */
  static pair(opts: MemoryLinkOptions): [MemoryEndpoint, MemoryEndpoint] {
    const pool = new BufferPool(opts.poolLimit ?? 1024);
    const mtu = opts.mtu ?? 1500;
    const delay = opts.delayMs ?? 0;
    const off = opts.offloads ?? false;
    const [n0, n1] = opts.names ?? ["mem0", "mem1"];
    const a = new MemoryEndpoint(n0, opts.clock, pool, mtu, delay, off);
    const b = new MemoryEndpoint(n1, opts.clock, pool, mtu, delay, off);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }
}
