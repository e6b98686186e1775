/**
 * The receive loop of TAP endpoints (DESIGN.md, "The datapath"): drain
 * every fd round-robin with synchronous non-blocking reads, a bounded batch
 * at a time, then `await` one `nonblocking` `poll` over all fds plus an
 * eventfd that {@link LinkDriver.add} and {@link LinkDriver.stop} write to
 * wake it. The poll runs on Deno's blocking pool, so timers and other
 * tasks of the main thread keep running while the links are idle.
 *
 * @module
 */
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  type Libc,
  libc,
  POLLERR,
  POLLFD_SIZE,
  POLLHUP,
  POLLIN,
  POLLNVAL,
} from "./_libc.ts";
import type { TapEndpoint } from "./tap.ts";

/** Options of {@link LinkDriver}. */
export interface LinkDriverOptions {
  /** Most frames read from one fd before moving to the next. Default 64. */
  batch?: number;
  /**
   * Most round-robin passes over busy fds before the loop yields to the
   * event loop (a poll with timeout 0), so timers run under full load.
   * Default 16.
   */
  maxPasses?: number;
  /** Longest wait in one idle poll, in ms (-1: until woken). Default -1. */
  idleTimeoutMs?: number;
  /**
   * While traffic flows (see `activeWindowMs`), wait for the next frame
   * with a synchronous `poll` on the main thread, at most this many ms at a
   * time, before falling back to the `nonblocking` poll (0: never). A frame
   * picked up this way skips the hand-off through Deno's blocking pool: a
   * second thread wake-up, 30–200 µs on these VMs depending on their load
   * (docs/benchmarks-forward.md). The event loop (timers, signals, the
   * control socket) waits meanwhile, up to `syncBudgetMs` in a row.
   * Default 10 ms; 0 turns it off.
   */
  syncPollMs?: number;
  /**
   * Longest time the loop keeps the event loop waiting (ms since its last
   * `await`) before it awaits a poll again, so timers, signals and the
   * control socket are never held up longer. Default 50: the stack's
   * timers (NUD, RA, DAD, reassembly) run from the loop itself and at
   * second scale. Each such poll hands off to Deno's blocking pool (~0.13
   * ms on average under the ARP flood, the frames queueing meanwhile). Under bench:floods'
   * NA flood the yields (these polls and the timer turns) took 1.0 s during
   * one 20 s flood at 10 ms and a 100 ms `timerTurnMs`, 0.24 s at 50 ms and 1 s.
   */
  syncBudgetMs?: number;
  /**
   * How long after the last frame the loop keeps waiting in synchronous
   * polls (traffic is "flowing"); after that it sleeps in the nonblocking
   * poll, which costs nothing while idle. Default 2000 ms, longer than
   * ping's 1 s interval: a pinged router answers from the synchronous poll
   * (0.19 ms against 0.31–0.36 ms through the nonblocking one, measured
   * through tapir with `ping -i 1`), for about 100 wake-ups a second.
   */
  activeWindowMs?: number;
  /**
   * The stack's timers (its `SystemClock`): run on every turn of the loop
   * and bound the synchronous poll, so they fire on time while the loop
   * holds the event loop.
   */
  timers?: DriverTimers;
  /**
   * Under steady traffic, give the event loop a macrotask turn (a
   * `setTimeout(0)`) at least this often, for timers outside the stack
   * (the systemd watchdog, user code). Default 500 ms. A turn waits for
   * Deno's timer wheel: 2.4 ms (median, measured under a busy loop), the
   * frames queueing meanwhile; at 100 ms these turns were most of the time
   * the loop spent yielding under floods (bench:floods). A `MessageChannel`
   * turn is 10× shorter but does not reliably run a timer that is due.
   */
  timerTurnMs?: number;
  /**
   * When the links go idle after traffic (no frame for `activeWindowMs`),
   * hand the free memory of malloc's arenas back to the kernel
   * (`malloc_trim(0)`, a few ms at most), at most once per this many ms
   * (and, while idle, as the stack's tables empty: see `held`); 0 never. A
   * flood leaves the arenas fragmented by the buffers it made and freed
   * (V8's ArrayBuffers live in malloc memory), and glibc returns
   * little of it by itself: the process's RSS would stay at the flood's
   * peak. Before the trim, when V8's `gc` is exposed (`deno task tapir`
   * and `deno task compile` pass `--v8-flags=--expose-gc`), a full,
   * compacting collection (tens of ms on a router's heap) lets V8 give
   * back the pages a flood's garbage grew its heap by: it does not shrink
   * by itself while the process waits in a poll. Default 10 000.
   */
  trimIdleMs?: number;
  /**
   * Entries the stack holds in tables that timers empty (the stack's
   * `tableEntries`). Idle, the loop then looks every
   * {@link RECLAIM_LOOK_MS} while there are at least
   * {@link RECLAIM_MIN_ENTRIES} (see {@link reclaimWatch}), and gives
   * memory back again once the count has fallen by a quarter (and by that
   * many) since the last time and stopped falling, or by half while it
   * still falls (see {@link reclaimDue}):
   * a flood's connection-tracking entries expire well after the links went
   * idle (30 s for unreplied UDP), and their memory stays in V8's heap
   * until a collection that nothing else starts.
   */
  held?: () => number;
  /**
   * A count that moves while the application makes progress on the
   * stack's sockets (the stack's `socketActivity`). After a pass that
   * moved frames the loop yields to promise continuations, and keeps
   * yielding (up to 256 turns) while this count moves, before it waits in
   * a poll: a reader woken by the frames then drains its receive buffer
   * and reopens the window at once, rather than after a synchronous poll
   * that no frame ends (the sender waits on that window). Without it the
   * loop yields 4 turns.
   */
  activity?: () => number;
}

/** The fewest expired table entries for which an idle driver gives memory back (see `held`). */
export const RECLAIM_MIN_ENTRIES = 1024;
/** How often an idle driver looks at the stack's tables (see `held`), in ms. */
export const RECLAIM_LOOK_MS = 250;
/** The shortest time between two collections an idle driver starts as the tables empty, in ms. */
export const RECLAIM_INTERVAL_MS = 1000;

/** What the idle loop knows when it decides to give memory back. */
export interface ReclaimState {
  /** Now, and when frames last moved and memory was last given back (ms). */
  now: number;
  lastTraffic: number;
  lastTrim: number;
  /** `trimIdleMs` (0: never). */
  trimIdleMs: number;
  /**
   * Table entries now (undefined: not watched), at the loop's last look,
   * and the most since memory was last given back (what they held then,
   * or more if they grew since).
   */
  held: number | undefined;
  heldBefore: number;
  heldPeak: number;
}

/**
 * Whether the idle loop gives memory back now (a full GC, then
 * `malloc_trim`): after traffic moved since the last time, once
 * `trimIdleMs` has passed; or (traffic since or not) once the stack's
 * tables have let go of a quarter of
 * their entries (at least {@link RECLAIM_MIN_ENTRIES}) and stopped falling
 * (one collection when a wave of expiries ends, not one per step of it),
 * or have let go of half while still falling, or fall still after
 * `trimIdleMs`; at most once per {@link RECLAIM_INTERVAL_MS}. A full
 * connection-tracking table whose entries expire over 12 s (a new-flow
 * flood's, 30 s after their last packet) is then collected at half, three
 * quarters and so on, so the process's memory falls with the table.
 */
export function reclaimDue(s: ReclaimState): boolean {
  if (s.trimIdleMs <= 0) return false;
  const since = s.now - s.lastTrim;
  if (s.lastTraffic > s.lastTrim && since >= s.trimIdleMs) return true;
  // A few frames since (a neighbour's probe) do not hold back what the tables let go.
  if (s.held === undefined || since < RECLAIM_INTERVAL_MS) return false;
  const fell = s.heldPeak - s.held;
  if (fell < RECLAIM_MIN_ENTRIES || fell * 4 < s.heldPeak) return false;
  // Stopped falling, or half of it gone while it still falls (a table that
  // empties over many seconds gives its memory back on the way down).
  return s.held === s.heldBefore || fell * 2 >= s.heldPeak || since >= s.trimIdleMs;
}

/**
 * Whether the idle loop looks at the tables again in
 * {@link RECLAIM_LOOK_MS}: while they hold at least
 * {@link RECLAIM_MIN_ENTRIES} (they may yet let go of them), and while
 * what they let go of since the last time has not been collected yet.
 */
export function reclaimWatch(held: number | undefined, heldPeak: number): boolean {
  if (held === undefined) return false;
  return held >= RECLAIM_MIN_ENTRIES || heldPeak - held >= RECLAIM_MIN_ENTRIES;
}

/**
 * A full, compacting collection when V8's `gc` is exposed
 * (`--v8-flags=--expose-gc`). The "last-resort" flavor (V8's
 * CollectAllAvailableGarbage, as a low-memory notification) compacts every
 * fragmented page and shrinks the young generation: after a fragment
 * flood a plain `gc()` left the heap at its peak, because the datagrams
 * still held were strewn over the pages the flood's garbage had grown
 * (measured on a test heap of 3 million short-lived objects with one in 40
 * kept: 92 MB after `gc()`, 25 MB after this, each in 70–140 ms).
 */
function fullGc(): void {
  type Gc = (o?: { type?: string; execution?: string; flavor?: string }) => void;
  (globalThis as { gc?: Gc }).gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
}

/** What the driver needs of a clock (the stack's `SystemClock` has it). */
export interface DriverTimers {
  /** Fire the timers that are due. */
  runDue(): unknown;
  /** Deadline (the clock's `now()` scale, ms) of the next timer, if any. */
  nextDeadline(): number | undefined;
  /** Hold the clock's `coarseNow()` for one pass over a batch of frames (`SystemClock.hold`). */
  hold?(): unknown;
  /** Let `coarseNow()` read the real time again (`SystemClock.release`). */
  release?(): void;
}

/**
 * Drives a set of {@link TapEndpoint}s.
 *
 * @example
 * ```ts ignore
 * const driver = new LinkDriver();
 * driver.add(openTap({ device: "tap0" }));
 * const done = driver.run();
 * // ...
 * driver.stop();
 * await done;
 * ```
 */
export class LinkDriver {
  readonly #batch: number;
  readonly #maxPasses: number;
  readonly #idleTimeout: number;
  readonly #syncPollMs: number;
  readonly #syncBudgetMs: number;
  readonly #activeWindowMs: number;
  readonly #timers: DriverTimers | undefined;
  readonly #timerTurnMs: number;
  readonly #trimIdleMs: number;
  readonly #activity: (() => number) | undefined;
  readonly #held: (() => number) | undefined;
  #eps: TapEndpoint[] = [];
  #lib: Libc | null = null;
  #wakeFd = -1;
  readonly #wakeBuf = new Uint8Array(new BigUint64Array([1n]).buffer);
  readonly #drainBuf = new Uint8Array(8);
  readonly #wakePtr = Deno.UnsafePointer.of(this.#wakeBuf);
  readonly #drainPtr = Deno.UnsafePointer.of(this.#drainBuf);
  #pollfds = new Uint8Array(0);
  #pollView = new DataView(this.#pollfds.buffer);
  /** Endpoints in #pollfds order (index i + 1). */
  #polled: TapEndpoint[] = [];
  /** Per #polled endpoint: the last poll reported it readable (or failed). */
  #ready = new Uint8Array(0);
  /** #ready holds the answer of the poll that just returned. */
  #readyFresh = false;
  #dirty = true;
  #running = false;
  #stopped = false;
  /** Iterations of the loop that awaited a `nonblocking` poll. */
  polls = 0;
  /** Synchronous polls (see {@link LinkDriverOptions.syncPollMs}). */
  syncPolls = 0;
  /** Macrotask turns taken so that timers run under steady traffic. */
  timerTurns = 0;
  /** Microseconds spent in awaited polls of timeout 0 and timer turns (the loop's yields). */
  yieldMicros = 0;
  /** Longest such yield, in microseconds. */
  yieldMaxMicros = 0;
  /** Iterations whose passes, yield to consumers and timers took over 1 ms. */
  longPasses = 0;
  /** Microseconds those iterations took. */
  longPassMicros = 0;
  /** Times memory was given back while idle: a full GC, then malloc_trim (see `trimIdleMs` and `held`). */
  mallocTrims = 0;

  constructor(opts: LinkDriverOptions = {}) {
    this.#batch = opts.batch ?? 64;
    this.#maxPasses = opts.maxPasses ?? 16;
    this.#idleTimeout = opts.idleTimeoutMs ?? -1;
    this.#syncPollMs = opts.syncPollMs ?? 10;
    this.#syncBudgetMs = opts.syncBudgetMs ?? 50;
    this.#activeWindowMs = opts.activeWindowMs ?? 2000;
    this.#timers = opts.timers;
    this.#timerTurnMs = opts.timerTurnMs ?? 500;
    this.#trimIdleMs = opts.trimIdleMs ?? 10_000;
    this.#activity = opts.activity;
    this.#held = opts.held;
  }

  /** Start reading `ep` (wakes a running loop). */
  add(ep: TapEndpoint): void {
    if (!this.#eps.includes(ep)) this.#eps.push(ep);
    this.#dirty = true;
    this.#wake();
  }

  /** Stop reading `ep`; the caller still owns it (and closes it). */
  remove(ep: TapEndpoint): void {
    const i = this.#eps.indexOf(ep);
    if (i >= 0) this.#eps.splice(i, 1);
    this.#dirty = true;
    this.#wake();
  }

  /** The endpoints being read. */
  endpoints(): readonly TapEndpoint[] {
    return this.#eps;
  }

  /** Run until {@link LinkDriver.stop}. Resolves once the loop has left its last poll. */
  async run(): Promise<void> {
    if (this.#running) throw new Error("LinkDriver.run() is already running");
    const lib = this.#lib ??= libc();
    this.#running = true;
    this.#stopped = false;
    this.#wakeFd = lib.sym.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#wakeFd < 0) {
      this.#running = false;
      throw new Error(`eventfd failed (errno ${lib.errno()})`);
    }
    this.#dirty = true;
    let lastAwait = performance.now();
    let lastTimerTurn = performance.now();
    let lastTraffic = -Infinity;
    let lastTrim = -Infinity;
    let heldPeak = 0;
    let heldBefore = 0;
    try {
      while (!this.#stopped) {
        let busy = false;
        let moved = 0;
        const p0 = performance.now();
        for (let pass = 0; pass < this.#maxPasses && !this.#stopped; pass++) {
          busy = false;
          // One read of the time for the whole pass (conntrack's per-packet timeout reads it).
          this.#timers?.hold?.();
          // Right after a poll, read only the fds it reported readable: a
          // read that only finds EAGAIN is a syscall (~1.3 µs on these VMs)
          // per idle fd per wake-up. Later passes read every fd.
          const onlyReady = pass === 0 && this.#readyFresh && !this.#dirty;
          const eps = onlyReady ? this.#polled : this.#eps;
          for (let i = 0; i < eps.length; i++) {
            if (onlyReady && this.#ready[i] === 0) continue;
            const ep = eps[i]!;
            const n = ep.drain(this.#batch);
            moved += n;
            if (n === this.#batch) busy = true;
            else if (!ep.isUp()) this.#dirty = true;
          }
          if (!busy) break;
        }
        this.#timers?.release?.();
        this.#readyFresh = false;
        if (this.#stopped) break;
        // Let the frames' consumers run (promise continuations: a socket's read,
        // write or accept that a frame just resolved) before polling again; a
        // synchronous poll would otherwise hold them until its budget runs out.
        // While the application's socket activity moves, 4 turns more (≤ 256).
        if (moved > 0 && !busy) {
          const activity = this.#activity;
          let seen = activity?.() ?? 0;
          for (let turns = 0; turns < 256; turns += 4) {
            for (let i = 0; i < 4; i++) await null;
            const now = activity?.() ?? seen;
            if (now === seen) break;
            seen = now;
          }
        }
        this.#timers?.runDue();
        const now = performance.now();
        if (now - p0 > 1) {
          this.longPasses++;
          this.longPassMicros += Math.round((now - p0) * 1000);
        }
        if (this.#dirty) this.#rebuild();
        const nfds = BigInt(this.#polled.length + 1);
        if (moved > 0) lastTraffic = now;
        // While traffic is flowing (frames moved in the last activeWindowMs),
        // wait for the next frame in a synchronous poll: the kernel wakes it
        // directly, without the thread hand-offs of a nonblocking FFI call.
        // It holds the event loop at most syncPollMs at a time and
        // syncBudgetMs in a row; then a nonblocking poll with timeout 0 lets
        // timers, signals and the control socket run. Idle, the loop sleeps
        // in the nonblocking poll.
        const active = this.#syncPollMs > 0 && now - lastTraffic < this.#activeWindowMs;
        const budget = this.#syncBudgetMs - (now - lastAwait);
        if (active && !busy && budget > 0) {
          this.syncPolls++;
          // budget > 0, so the timeout is at least 1 ms; it ends at the
          // stack's next timer (runDue above fired the due ones).
          let wait = Math.min(this.#syncPollMs, Math.ceil(budget));
          const next = this.#timers?.nextDeadline();
          if (next !== undefined) wait = Math.max(1, Math.min(wait, Math.ceil(next - now)));
          const r = lib.sym.poll(this.#pollfds, nfds, wait);
          if (r > 0) {
            this.#afterPoll();
            continue;
          }
          // Nothing readable: no fd needs a read (poll is level-triggered).
          this.#ready.fill(0);
          this.#readyFresh = true;
          if (performance.now() - lastAwait < this.#syncBudgetMs) continue;
        }
        this.polls++;
        let timeout = busy || active ? 0 : this.#idleTimeout;
        // Going idle after traffic, or idle while the tables empty: give
        // V8's and malloc's free memory back.
        if (timeout !== 0 && this.#trimIdleMs > 0) {
          const held = this.#held?.();
          // What the tables let go of counts from their peak since the last
          // collection (a flood that grew them after it).
          if (held !== undefined && held > heldPeak) heldPeak = held;
          const trimIdleMs = this.#trimIdleMs;
          const st = { now, lastTraffic, lastTrim, trimIdleMs, held, heldBefore, heldPeak };
          heldBefore = held ?? 0;
          if (reclaimDue(st)) {
            fullGc();
            lib.sym.malloc_trim(0n);
            lastTrim = performance.now();
            heldPeak = held ?? 0;
            this.mallocTrims++;
          }
          // Look again soon while there is something left to let go.
          if (reclaimWatch(held, heldPeak)) {
            timeout = timeout < 0 ? RECLAIM_LOOK_MS : Math.min(timeout, RECLAIM_LOOK_MS);
          }
        }
        const y0 = timeout === 0 ? performance.now() : 0;
        const r = await lib.sym.poll_async(this.#pollfds, nfds, timeout);
        // An await of a nonblocking call that returns at once does not let
        // Deno run its timers: under steady traffic a setTimeout(0) waited
        // 0.5-1 s (measured). The stack's timers run from the loop itself
        // (options.timers); a macrotask turn every timerTurnMs serves the
        // rest. A turn every 10 ms cost 18 % of the 64 B forwarding rate;
        // one every 100 ms took ~2.5 % of the time under floods.
        if (timeout === 0 && performance.now() - lastTimerTurn >= this.#timerTurnMs) {
          await new Promise<void>((res) => setTimeout(res, 0));
          lastTimerTurn = performance.now();
          this.timerTurns++;
        }
        lastAwait = performance.now();
        if (timeout === 0) {
          const us = Math.round((lastAwait - y0) * 1000);
          this.yieldMicros += us;
          if (us > this.yieldMaxMicros) this.yieldMaxMicros = us;
        }
        if (r > 0) this.#afterPoll();
        else if (r === 0) {
          // Nothing was readable when poll returned (poll is level-triggered).
          this.#ready.fill(0);
          this.#readyFresh = true;
        }
      }
    } finally {
      this.#timers?.release?.();
      lib.sym.close(this.#wakeFd);
      this.#wakeFd = -1;
      this.#running = false;
    }
  }

  /** Make {@link LinkDriver.run} return after its current iteration. */
  stop(): void {
    this.#stopped = true;
    this.#wake();
  }

  #wake(): void {
    if (this.#wakeFd >= 0) this.#lib!.sym.write(this.#wakeFd, this.#wakePtr, 8n);
  }

  #rebuild(): void {
    this.#polled = this.#eps.filter((ep) => ep.isUp() && ep.fd >= 0);
    const n = this.#polled.length + 1;
    this.#pollfds = new Uint8Array(n * POLLFD_SIZE);
    this.#pollView = new DataView(this.#pollfds.buffer);
    this.#ready = new Uint8Array(n - 1);
    this.#readyFresh = false;
    const v = this.#pollView;
    v.setInt32(0, this.#wakeFd, true);
    v.setInt16(4, POLLIN, true);
    for (let i = 1; i < n; i++) {
      v.setInt32(i * POLLFD_SIZE, this.#polled[i - 1]!.fd, true);
      v.setInt16(i * POLLFD_SIZE + 4, POLLIN, true);
    }
    this.#dirty = false;
  }

  #afterPoll(): void {
    const v = this.#pollView;
    if ((v.getInt16(6, true) & POLLIN) !== 0) {
      this.#lib!.sym.read(this.#wakeFd, this.#drainPtr, 8n);
    }
    for (let i = 1; i <= this.#polled.length; i++) {
      const re = v.getInt16(i * POLLFD_SIZE + 6, true);
      this.#ready[i - 1] = (re & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) !== 0 ? 1 : 0;
      // POLLERR/POLLHUP: the next read reports the error and takes the link
      // down; POLLNVAL: the fd was closed under us. Either way, re-poll
      // without a dead fd so the loop cannot spin on it.
      if ((re & (POLLERR | POLLHUP | POLLNVAL)) !== 0) {
        const ep = this.#polled[i - 1]!;
        if ((re & POLLNVAL) === 0) ep.drain(1);
        this.#dirty = true;
      }
    }
    this.#readyFresh = true;
  }
}
