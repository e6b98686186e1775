/**
 * Randomness for the stack (RA jitter, DAD delays, fragment IDs, reachable
 * time, ISNs): `SystemRandom` from the platform CSPRNG, `SeededRandom` for
 * tests and the virtual lab, repeatable from its seed.
 *
 * @module
 */

/** Where the stack's randomness comes from. */
export interface Random {
  /** A float in [0, 1). */
  float(): number;
  /** An unsigned 32-bit integer. */
  uint32(): number;
}

/**
 * The platform CSPRNG, drawn in blocks.
 *
 * @example
 * ```ts
 * import { SystemRandom } from "./random.ts";
 * const r = new SystemRandom();
 * console.assert(r.float() < 1);
 * ```
 */
export class SystemRandom implements Random {
  #block = new Uint32Array(256);
  #i = 256;

  uint32(): number {
    if (this.#i === this.#block.length) {
      crypto.getRandomValues(this.#block);
      this.#i = 0;
    }
    return this.#block[this.#i++]!;
  }

  float(): number {
    return this.uint32() / 4_294_967_296;
  }
}

/**
 * A small, fast, repeatable generator (mulberry32). Not for secrets.
 *
 * @example
 * ```ts
 * import { SeededRandom } from "./random.ts";
 * console.assert(new SeededRandom(7).uint32() === new SeededRandom(7).uint32());
 * ```
 */
export class SeededRandom implements Random {
  #s: number;

  constructor(seed = 1) {
    this.#s = seed >>> 0;
  }

  uint32(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  float(): number {
    return this.uint32() / 4_294_967_296;
  }
}

/** A uniform integer in [lo, hi]. */
export function randomBetween(r: Random, lo: number, hi: number): number {
  return lo + Math.floor(r.float() * (hi - lo + 1));
}
