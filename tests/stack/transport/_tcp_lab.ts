/**
 * Two stacks on a memory link with a manual clock, for the TCP tests: a
 * (192.0.2.1, 2001:db8::1) and b (192.0.2.2, 2001:db8::2), and a driver
 * that advances the clock in small steps while promises settle.
 */
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { MemoryLink } from "../../../link/mod.ts";
import { ManualClock, SeededRandom, type Stack } from "../../../stack/mod.ts";
import type { PacketBuffer } from "../../../stack/wire/mod.ts";

type Link = ReturnType<typeof MemoryLink.pair>[0];

export interface TcpLab {
  clock: ManualClock;
  a: Stack;
  b: Stack;
  ab: Link;
  ba: Link;
  /** Frames a sent (copies), when `capture` is set. */
  frames: Uint8Array[];
  close(): void;
}

export function tcpLab(
  o: { offloads?: boolean; mtu?: number; capture?: boolean; seed?: number } = {},
): TcpLab {
  const clock = new ManualClock();
  const [ab, ba] = MemoryLink.pair({
    clock,
    names: ["a:eth0", "b:eth0"],
    offloads: o.offloads ?? false,
    ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
  });
  const frames: Uint8Array[] = [];
  if (o.capture) {
    const w = ab.writePacket.bind(ab);
    ab.writePacket = (p: PacketBuffer) => {
      frames.push(p.data.slice(p.start, p.end));
      return w(p);
    };
  }
  const node = (name: string, addrs: string, link: Link, seed: number) =>
    buildStack(
      parseConfig(
        `[router]\nhostname = "${name}"\n[[interface]]\nname = "eth0"\naddresses = [${addrs}]\n`,
      ),
      { clock, openLink: () => link, random: new SeededRandom(seed) },
    ).stack;
  const a = node("a", `"192.0.2.1/24", "2001:db8::1/64"`, ab, o.seed ?? 1);
  const b = node("b", `"192.0.2.2/24", "2001:db8::2/64"`, ba, (o.seed ?? 1) + 1);
  clock.advance(5000); // DAD
  return {
    clock,
    a,
    b,
    ab,
    ba,
    frames,
    close() {
      a.close();
      b.close();
    },
  };
}

/** Let microtasks run, then advance `stepMs`, until `p` settles or `maxMs` passed. */
export async function drive<T>(
  clock: ManualClock,
  p: Promise<T>,
  maxMs = 120_000,
  stepMs = 1,
): Promise<T> {
  let done = false;
  p.then(() => done = true, () => done = true);
  for (let t = 0; t < maxMs && !done; t += stepMs) {
    for (let i = 0; i < 20 && !done; i++) await Promise.resolve();
    if (done) break;
    clock.advance(stepMs);
  }
  return await p;
}

/** Deterministic bytes. */
export function pattern(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
