/**
 * The link driver's yield after a pass that moved frames: a consumer whose
 * continuation takes more promise turns than the driver's first four (a
 * socket reader's chain) still finishes before the driver blocks in a
 * synchronous poll, as long as the `activity` count it gives moves. The
 * endpoint is an eventfd that the test writes one "frame" into; no TAP or
 * root is needed.
 */
import assert from "node:assert/strict";
import { LinkDriver } from "../../link/driver.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, libc } from "../../link/_libc.ts";
import type { TapEndpoint } from "../../link/tap.ts";

/** Continuation turns the consumer takes after its frame (more than 4, fewer than 256). */
const STEPS = 40;

/** An endpoint over an eventfd: each drain that finds it signalled delivers one frame. */
class EventEndpoint {
  readonly fd: number;
  readonly #buf = new Uint8Array(8);
  onFrame: () => void = () => {};
  constructor() {
    this.fd = libc().sym.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert.ok(this.fd >= 0, "eventfd");
  }
  /** Make the fd readable (one frame waiting). */
  signal(): void {
    const one = new Uint8Array(new BigUint64Array([1n]).buffer);
    libc().sym.write(this.fd, Deno.UnsafePointer.of(one), 8n);
  }
  drain(_batch: number): number {
    if (libc().sym.read(this.fd, Deno.UnsafePointer.of(this.#buf), 8n) !== 8) return 0;
    this.onFrame();
    return 1;
  }
  isUp(): boolean {
    return true;
  }
  close(): void {
    libc().sym.close(this.fd);
  }
}

/**
 * Run a driver with one {@link EventEndpoint}, deliver one frame, and let a
 * consumer take {@link STEPS} turns after it (moving `activity` each turn
 * when `withActivity`). The driver's synchronous polls when the frame came
 * and when the consumer finished.
 */
async function frameThenSteps(withActivity: boolean): Promise<{ atFrame: number; atDone: number }> {
  let activity = 0;
  const driver = new LinkDriver({
    // A budget well above the first pass's time, so that a loaded machine
    // cannot skip the synchronous poll the second test looks for.
    syncPollMs: 10,
    syncBudgetMs: 200,
    trimIdleMs: 0,
    ...(withActivity ? { activity: () => activity } : {}),
  });
  const ep = new EventEndpoint();
  let atFrame = -1;
  const frame = new Promise<void>((res) => {
    ep.onFrame = () => {
      atFrame = driver.syncPolls;
      res();
    };
  });
  const consumer = (async () => {
    await frame;
    for (let i = 0; i < STEPS; i++) {
      await null;
      activity++;
    }
    return driver.syncPolls;
  })();
  const running = driver.run();
  try {
    driver.add(ep as unknown as TapEndpoint);
    ep.signal();
    const atDone = await consumer;
    return { atFrame, atDone };
  } finally {
    driver.stop();
    await running;
    ep.close();
  }
}

Deno.test("LinkDriver: while the socket activity moves, a consumer's long continuation runs before the synchronous poll", async () => {
  const { atFrame, atDone } = await frameThenSteps(true);
  assert.ok(atFrame >= 0, "the frame was drained");
  assert.equal(atDone, atFrame, "no synchronous poll between the frame and the consumer's end");
});

Deno.test("LinkDriver: without an activity count the driver yields 4 turns, then polls before a long continuation ends", async () => {
  // The behaviour the activity option exists for (bench:tcp's 2 Gbit/s
  // stall): the consumer waits out a synchronous poll that no frame ends.
  const { atFrame, atDone } = await frameThenSteps(false);
  assert.ok(atFrame >= 0, "the frame was drained");
  assert.ok(atDone > atFrame, `a synchronous poll came first (${atFrame} → ${atDone})`);
});
