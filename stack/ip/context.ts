/**
 * What a layer may use of the stack that built it: the injected clock and
 * randomness, the buffer pool, the counters, the NICs and the neighbor
 * settings. Layers take this, never the `Stack` class (gVisor's
 * `stack/registration.go` shape: the stack declares, the protocols
 * implement), so no layer imports the composition root.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Random } from "../random.ts";
import type { Nic } from "../nic.ts";
import type { NeighborConfig } from "../neighbor_cache.ts";
import type { StackStats } from "../stats.ts";
import type { BufferPool } from "../wire/packet_buffer.ts";

/** The stack as its layers see it. */
export interface StackContext {
  readonly clock: Clock;
  readonly random: Random;
  /** Buffers for packets a layer builds or must hold on to. */
  readonly pool: BufferPool;
  readonly stats: StackStats;
  /** Every NIC by id. */
  readonly nics: ReadonlyMap<number, Nic>;
  /** Neighbor cache settings every NIC's ARP/NDP cache starts with. */
  readonly neighborConfig: NeighborConfig;
  readonly hostname: string;
}
