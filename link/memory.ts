/**
 * An in-process wire between two endpoints, for tests and the virtual lab.
 * A written frame is copied into a buffer from a pool shared by both ends
 * and queued for the peer; the peer receives it in a flush scheduled on
 * the {@link Clock} (one flush per batch, not per frame), so on a
 * `ManualClock` delivery happens when the test advances time:
 * deterministic, and never recursive (a reply written while a frame is
 * delivered goes into the next flush).
 *
 * Each direction may carry faults ({@link LinkFaults}: loss, burst loss,
 * delay and jitter, reordering, duplication, corruption, a rate limit with
 * a queue, a PMTU black hole), set at {@link MemoryLink.pair} with
 * `faults: { aToB, bToA }` or at run time with
 * {@link MemoryEndpoint.setFaults} on the sending end; see `faults.ts`.
 *
 * @module
 */
import { DispatchErrorReporter } from "./_dispatch_errors.ts";
import {
  type FaultStats,
  FaultyWire,
  type LinkFaults,
  linkFaultsProblems,
  newFaultStats,
} from "./faults.ts";
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
  /** Most frames in flight (both directions; frames a fault delays count too). Default 1024. */
  poolLimit?: number;
  /** Faults on the frames the first end sends (`aToB`) and the second end sends (`bToA`). */
  faults?: { aToB?: LinkFaults | null; bToA?: LinkFaults | null };
}

/** Counters of one memory endpoint; the fault counters count the frames this end sends. */
export interface MemoryLinkStats extends FaultStats {
  /** Frames accepted by writePacket and queued for the peer (or handed to this end's faults). */
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
    ...newFaultStats(),
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
  /** 0 for the first end of the pair, 1 for the second (default fault seeds 1 and 2). */
  readonly #index: number;
  #faults: LinkFaults | null = null;
  /** The faulty wire toward the peer, made by the first setFaults. */
  #wire: FaultyWire | null = null;
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
    index = 0,
  ) {
    this.name = name;
    this.#clock = clock;
    this.#errors = new DispatchErrorReporter(`memory link ${name}`, () => clock.now());
    this.#pool = pool;
    this.#mtu = mtu;
    this.#delayMs = delayMs;
    this.#index = index;
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

  /** Frames queued for delivery to this end (those a fault delays included). */
  pending(): number {
    const wire = this.peer === null ? null : this.peer.#wire;
    return this.#queue.length + (wire === null ? 0 : wire.pending());
  }

  /**
   * Set the faults of the frames this end sends (null: none). The
   * direction's generator restarts from `spec.seed` (default 1 for the
   * first end of the pair, 2 for the second); frames already in flight
   * keep their delivery times.
   *
   * @param spec what to do to the frames this end sends
   * @throws RangeError when a probability is outside 0..1 or a time or size is negative
   * @example
   * ```ts
   * import { MemoryLink } from "./memory.ts";
   * import { ManualClock } from "../stack/clock.ts";
   * import { PacketBuffer, HEADROOM } from "../stack/wire/packet_buffer.ts";
   * const clock = new ManualClock();
   * const [a, b] = MemoryLink.pair({ clock });
   * let got = 0;
   * b.attach({ deliverFrame: () => got++ });
   * a.setFaults({ delayMs: 10 });
   * a.writePacket(new PacketBuffer().setFrame(HEADROOM, 60));
   * clock.advance(9);
   * console.assert(got === 0);
   * clock.advance(1);
   * console.assert(got === 1 && a.stats.faultDelayed === 1);
   * ```
   */
  setFaults(spec: LinkFaults | null): void {
    // A copy: the caller changing its object later changes nothing here.
    const faults = spec === null
      ? null
      : { ...spec, ...(spec.lossBurst ? { lossBurst: { ...spec.lossBurst } } : {}) };
    if (faults !== null) {
      const problems = linkFaultsProblems(faults);
      if (problems.length > 0) throw new RangeError(`Invalid link faults: ${problems.join("; ")}`);
      const peer = this.peer;
      if (peer === null) throw new Error(`memory endpoint ${this.name} has no peer`);
      this.#wire ??= new FaultyWire(
        this.#clock,
        this.#pool,
        this.stats,
        this.#delayMs,
        (b) => peer.#deliverOne(b),
      );
      this.#wire.configure(faults, this.#index + 1);
    }
    this.#faults = faults;
  }

  /** The faults of the frames this end sends, or null. */
  faults(): LinkFaults | null {
    return this.#faults;
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
    // A frame lost to a fault was still sent: the sender sees success, and
    // the fault's counter is the one that counts it.
    if (this.#faults !== null) this.#wire!.send(b);
    else peer.#enqueue(b);
    return true;
  }

  /** Close this end: frames queued for it are dropped; the peer's writes fail. */
  close(): void {
    this.#up = false;
    this.#flush?.cancel();
    this.#flush = null;
    for (const b of this.#queue) this.#pool.put(b);
    this.#queue.length = 0;
    if (this.peer !== null) this.peer.#wire?.clear();
  }

  #enqueue(b: PacketBuffer): void {
    this.#queue.push(b);
    if (this.#flush === null) this.#flush = this.#clock.schedule(this.#delayMs, this.#flushFn);
  }

  #deliver(): void {
    this.#flush = null;
    const q = this.#queue;
    this.#queue = this.#spare;
    for (let i = 0; i < q.length; i++) this.#deliverOne(q[i]!);
    q.length = 0;
    this.#spare = q;
  }

  /** Hand one frame to the dispatcher and give its buffer back. */
  #deliverOne(b: PacketBuffer): void {
    const d = this.#dispatcher;
    if (!this.#up) {
      // Closed (perhaps while delivering): dropped.
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
      return;
    }
    this.#pool.put(b);
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
   * @param opts clock, MTU, names, delay, offloads, faults per direction
   * @returns the two ends
   * @throws RangeError when a direction's faults are invalid
   */
  static pair(opts: MemoryLinkOptions): [MemoryEndpoint, MemoryEndpoint] {
    const pool = new BufferPool(opts.poolLimit ?? 1024);
    const mtu = opts.mtu ?? 1500;
    const delay = opts.delayMs ?? 0;
    const off = opts.offloads ?? false;
    const [n0, n1] = opts.names ?? ["mem0", "mem1"];
    const a = new MemoryEndpoint(n0, opts.clock, pool, mtu, delay, off, 0);
    const b = new MemoryEndpoint(n1, opts.clock, pool, mtu, delay, off, 1);
    a.peer = b;
    b.peer = a;
    if (opts.faults?.aToB) a.setFaults(opts.faults.aToB);
    if (opts.faults?.bToA) b.setFaults(opts.faults.bToA);
    return [a, b];
  }
}
