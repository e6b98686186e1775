/**
 * The loopback path of both IP layers: a packet for one of our own
 * addresses is copied and delivered on a later clock turn (never
 * recursively from inside the send), in order, as a loopback interface
 * would.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { StackStats } from "./stats.ts";
import type { BufferPool, PacketBuffer } from "./wire/packet_buffer.ts";

/** Queue of looped-back packets, flushed by one scheduled timer per batch. */
export class LoopbackQueue {
  #queue: PacketBuffer[] = [];
  #scheduled = false;

  constructor(
    readonly clock: Clock,
    readonly pool: BufferPool,
    readonly stats: StackStats,
    /** Local delivery of one packet whose network header is at `buf.networkOffset`. */
    readonly deliver: (buf: PacketBuffer) => void,
  ) {}

  /** Copy the packet (network header at `ipOff`) and deliver it on the next turn. */
  push(pkt: PacketBuffer, ipOff: number): void {
    const copy = this.pool.clone(pkt);
    if (copy === null) {
      this.stats.bufferPoolExhausted++;
      return;
    }
    copy.networkOffset = ipOff;
    this.#queue.push(copy);
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.clock.schedule(0, () => {
      this.#scheduled = false;
      for (const b of this.#queue.splice(0)) {
        this.deliver(b);
        this.pool.put(b);
      }
    });
  }
}
