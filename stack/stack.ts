/**
 * The `Stack`: the NICs, the clock and randomness, counters, and (as the
 * protocols land) addresses, the routing table and dispatch.
 *
 * @module
 */
import { type Clock, SystemClock } from "./clock.ts";
import type { LinkEndpoint } from "./link_endpoint.ts";
import { Nic } from "./nic.ts";
import { type Random, SystemRandom } from "./random.ts";
import { newStackStats, type StackStats } from "./stats.ts";
import { macFromName } from "./wire/mac_address.ts";
import { BufferPool } from "./wire/packet_buffer.ts";

/** Options of {@link Stack}. */
export interface StackOptions {
  clock?: Clock;
  random?: Random;
  /** Name of the node, used in logs and the lab. */
  hostname?: string;
  /** Most packet buffers the stack's own pool makes (for queued and generated packets). */
  poolLimit?: number;
}

/** Options of {@link Stack.addNic}. */
export interface AddNicOptions {
  name: string;
  /** MAC address; derived from hostname and name when absent. */
  mac?: Uint8Array;
  /** IP MTU; defaults to the link's. */
  mtu?: number;
}

/**
 * A network stack instance.
 *
 * @example
 * ```ts
 * import { Stack } from "./stack.ts";
 * import { ManualClock } from "./clock.ts";
 * const s = new Stack({ clock: new ManualClock(), hostname: "h1" });
 * console.assert(s.nics.size === 0);
 * ```
 */
export class Stack {
  readonly clock: Clock;
  readonly random: Random;
  readonly hostname: string;
  readonly stats: StackStats = newStackStats();
  readonly nics: Map<number, Nic> = new Map();
  /** Buffers for packets the stack builds or must hold on to. */
  readonly pool: BufferPool;
  #nextNicId = 1;

  constructor(opts: StackOptions = {}) {
    this.clock = opts.clock ?? new SystemClock();
    this.random = opts.random ?? new SystemRandom();
    this.hostname = opts.hostname ?? "tapir";
    this.pool = new BufferPool(opts.poolLimit ?? 4096);
  }

  /** Add an interface on `link` and start receiving from it. */
  addNic(link: LinkEndpoint, opts: AddNicOptions): Nic {
    for (const n of this.nics.values()) {
      if (n.name === opts.name) throw new Error(`interface "${opts.name}" already exists`);
    }
    const id = this.#nextNicId++;
    const nic = new Nic(id, link, {
      name: opts.name,
      mac: opts.mac ?? macFromName(`${this.hostname}/${opts.name}`),
      mtu: opts.mtu,
    });
    nic.onUnknownEtherType = () => this.stats.unknownEtherTypeFramesDropped++;
    this.nics.set(id, nic);
    link.attach(nic);
    return nic;
  }

  /** The NIC named `name`, or undefined. */
  nicByName(name: string): Nic | undefined {
    for (const n of this.nics.values()) if (n.name === name) return n;
    return undefined;
  }

  /** A snapshot of every counter: the stack's and each NIC's. */
  snapshotStats(): { stack: StackStats; nics: Record<string, Nic["stats"]> } {
    const nics: Record<string, Nic["stats"]> = {};
    for (const n of this.nics.values()) nics[n.name] = { ...n.stats };
    return { stack: structuredClone(this.stats), nics };
  }

  /** Close every NIC (and its link). */
  close(): void {
    for (const n of this.nics.values()) n.close();
  }
}
