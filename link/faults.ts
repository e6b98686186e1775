/**
 * Fault injection on one direction of a {@link MemoryLink}, after Linux's
 * netem qdisc: random and Gilbert-Elliott burst loss, delay with jitter,
 * reordering, duplication, corruption, a rate limit with a bounded queue,
 * and a PMTU black hole (ICMP "fragmentation needed" and Packet Too Big
 * dropped, RFC 2923 §2.1). Every decision is drawn from a seeded
 * generator of the direction, so the same seed and the same frames give
 * the same faults; every frame a fault touches is counted, once per kind.
 *
 * A frame written to the link goes through these steps, in this order:
 *
 * 1. PMTU black hole: an ICMPv4 Destination Unreachable code 4 or an
 *    ICMPv6 Packet Too Big is dropped.
 * 2. Loss: random (`loss`), then the Gilbert-Elliott model (`lossBurst`).
 * 3. Duplication: an intact copy also goes on from step 5.
 * 4. Corruption: one random bit past the Ethernet header is flipped (a
 *    partial checksum is completed first, as netem does, so the
 *    receiver's checksum catches it).
 * 5. Rate limit: the frame waits for the frames ahead of it to be
 *    serialised at `rateBitsPerSecond`; a frame that finds the queue full
 *    is tail-dropped.
 * 6. Delay: the link's delay plus `delayMs`, ± `jitterMs` (uniform, as
 *    netem without a distribution table); jitter can reorder frames, as
 *    in netem, whose queue is sorted by time to send.
 * 7. Reordering: a chosen frame is held back by `reorderDelayMs` more, so
 *    the frames written after it overtake it. (netem instead sends the
 *    chosen frame without its delay, which needs a delay to reorder at
 *    all; holding back works on a link without delay too.)
 *
 * GSO super-frames on a link with offloads are judged as they are: one
 * super-frame is lost, duplicated, delayed or corrupted whole, and its
 * size counts once against the rate. A super-frame's partial checksum
 * cannot be completed here, so a bit flipped in its payload reaches a
 * receiver that trusts the partial checksum (as Linux trusts a virtio
 * peer's); corruption tests belong on links without offloads.
 *
 * @module
 */
import type { Clock, Timer } from "../stack/clock.ts";
import { completePartialChecksum } from "../stack/gso.ts";
import { randomBetween, SeededRandom } from "../stack/random.ts";
import { ETHERNET_HEADER_LEN, EtherType } from "../stack/wire/ethernet.ts";
import { Icmpv4Code, Icmpv4Type } from "../stack/wire/icmpv4.ts";
import { ICMPV6_NEXT_HEADER, Icmpv6Type } from "../stack/wire/icmpv6.ts";
import { IpProtocol } from "../stack/wire/ipv4.ts";
import { Ipv6UpperLayer } from "../stack/wire/ipv6_ext.ts";
import type { BufferPool, PacketBuffer } from "../stack/wire/packet_buffer.ts";

/**
 * The Gilbert-Elliott model of burst loss (netem's `loss gemodel p r 1-h
 * 1-k`): a good and a bad state; each frame first moves the state (good
 * to bad with probability `p`, bad to good with `r`) and is then lost with
 * the loss probability of the state it was in. The mean loss is
 * `(r·lossGood + p·lossBad) / (p + r)`; bursts last `1/r` frames on average.
 */
export interface GilbertElliott {
  /** Probability of moving from the good state to the bad one, per frame (0..1). */
  p: number;
  /** Probability of moving from the bad state to the good one, per frame (0..1). Default `1 - p`. */
  r?: number;
  /** Loss probability in the bad state (netem's 1-h). Default 1. */
  lossBad?: number;
  /** Loss probability in the good state (netem's 1-k). Default 0. */
  lossGood?: number;
}

/**
 * Faults on one direction of a memory link. Probabilities are 0..1, times
 * milliseconds; an absent key is no fault of that kind.
 */
export interface LinkFaults {
  /** Probability that a frame is lost (netem `loss random`). */
  loss?: number;
  /** Burst loss by the Gilbert-Elliott model (netem `loss gemodel`); applied after `loss`. */
  lossBurst?: GilbertElliott;
  /** Delay in ms on top of the link's own delay (netem `delay`). */
  delayMs?: number;
  /** Each frame's delay varies uniformly by up to ± this many ms (netem's jitter); never below 0. */
  jitterMs?: number;
  /** Probability that a frame is held back by {@link reorderDelayMs} (see the module doc). */
  reorder?: number;
  /** How long a reordered frame is held back, ms. Default: the direction's delay, or 1 ms without one. */
  reorderDelayMs?: number;
  /** Probability that a frame is sent twice (netem `duplicate`). */
  duplicate?: number;
  /** Probability that one bit of a frame, past the Ethernet header, is flipped (netem `corrupt`). */
  corrupt?: number;
  /** Rate limit in bits per second of frame bytes (Ethernet header included, netem `rate`). */
  rateBitsPerSecond?: number;
  /** Most frames waiting for the rate limit (netem `limit`). Default 1000 when `rateBitsPerSecond` is set. */
  queueFrames?: number;
  /** Most bytes waiting for the rate limit; no byte bound unless set. */
  queueBytes?: number;
  /** Drop ICMPv4 "fragmentation needed" and ICMPv6 Packet Too Big (a PMTU black hole, RFC 2923 §2.1). */
  pmtuBlackhole?: boolean;
  /** Seed of this direction's generator. Default 1 for the first end's direction, 2 for the second's. */
  seed?: number;
}

/** Counters of the faults on frames an endpoint sends, one per kind. */
export interface FaultStats {
  /** Frames lost to random loss (`loss`). */
  faultLossDrops: number;
  /** Frames lost by the Gilbert-Elliott burst model (`lossBurst`). */
  faultBurstLossDrops: number;
  /** ICMPv4 frag-needed and ICMPv6 Packet Too Big frames dropped by the PMTU black hole. */
  faultPmtuBlackholeDrops: number;
  /** Frames tail-dropped because the rate limit's queue was full. */
  faultQueueDrops: number;
  /** Extra copies sent by duplication. */
  faultDuplicates: number;
  /** Frames with one bit flipped. */
  faultCorrupted: number;
  /** Frames given more than zero ms of delay by `delayMs` and `jitterMs`. */
  faultDelayed: number;
  /** Frames that waited in the rate limit's queue behind another frame. */
  faultRateQueued: number;
  /** Frames held back by reordering. */
  faultReordered: number;
}

/** Zeroed {@link FaultStats}. */
export function newFaultStats(): FaultStats {
  return {
    faultLossDrops: 0,
    faultBurstLossDrops: 0,
    faultPmtuBlackholeDrops: 0,
    faultQueueDrops: 0,
    faultDuplicates: 0,
    faultCorrupted: 0,
    faultDelayed: 0,
    faultRateQueued: 0,
    faultReordered: 0,
  };
}

/** netem's default queue limit (frames) when a rate is set. */
export const DEFAULT_FAULT_QUEUE_FRAMES = 1000;

/**
 * The problems of a fault spec (empty when it is valid): probabilities in
 * 0..1, times and sizes finite and not negative.
 *
 * @example
 * ```ts
 * import { linkFaultsProblems } from "./faults.ts";
 * console.assert(linkFaultsProblems({ loss: 1.5 })[0] === "loss must be a probability in 0..1, not 1.5");
 * ```
 */
export function linkFaultsProblems(f: LinkFaults): string[] {
  const out: string[] = [];
  const prob = (name: string, v: number | undefined) => {
    if (v !== undefined && !(v >= 0 && v <= 1)) {
      out.push(`${name} must be a probability in 0..1, not ${v}`);
    }
  };
  const nonNeg = (name: string, v: number | undefined) => {
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) {
      out.push(`${name} must be a finite number ≥ 0, not ${v}`);
    }
  };
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(v > 0 && Number.isFinite(v))) {
      out.push(`${name} must be a finite number > 0, not ${v}`);
    }
  };
  prob("loss", f.loss);
  if (f.lossBurst !== undefined) {
    prob("lossBurst.p", f.lossBurst.p);
    prob("lossBurst.r", f.lossBurst.r);
    prob("lossBurst.lossBad", f.lossBurst.lossBad);
    prob("lossBurst.lossGood", f.lossBurst.lossGood);
  }
  prob("reorder", f.reorder);
  prob("duplicate", f.duplicate);
  prob("corrupt", f.corrupt);
  nonNeg("delayMs", f.delayMs);
  nonNeg("jitterMs", f.jitterMs);
  nonNeg("reorderDelayMs", f.reorderDelayMs);
  positive("rateBitsPerSecond", f.rateBitsPerSecond);
  positive("queueFrames", f.queueFrames);
  positive("queueBytes", f.queueBytes);
  if (f.seed !== undefined && !Number.isInteger(f.seed)) {
    out.push(`seed must be an integer, not ${f.seed}`);
  }
  return out;
}

const V6_UPPER = new Ipv6UpperLayer();

/**
 * True for the frames a PMTU black hole drops: an ICMPv4 Destination
 * Unreachable with code 4 (fragmentation needed and DF set, RFC 1191) and
 * an ICMPv6 Packet Too Big (RFC 8201), past any IPv6 extension headers.
 * A later IPv4 or IPv6 fragment is not judged (its ICMP header is in the
 * first fragment).
 *
 * @param pkt an Ethernet frame
 * @returns whether the frame signals a smaller path MTU
 * @example
 * ```ts
 * import { isPmtuSignal } from "./faults.ts";
 * import { HEADROOM, PacketBuffer } from "../stack/wire/packet_buffer.ts";
 * const p = new PacketBuffer().setFrame(HEADROOM, 14 + 40 + 8);
 * p.data.set([0x86, 0xdd, 0x60], HEADROOM + 12); // EtherType IPv6, version 6
 * p.data[HEADROOM + 14 + 6] = 58; // Next Header: ICMPv6
 * p.data[HEADROOM + 14 + 40] = 2; // Packet Too Big
 * console.assert(isPmtuSignal(p));
 * ```
 */
export function isPmtuSignal(pkt: PacketBuffer): boolean {
  const d = pkt.data;
  const ip = pkt.start + ETHERNET_HEADER_LEN;
  if (ip + 1 > pkt.end) return false;
  const type = (d[ip - 2]! << 8) | d[ip - 1]!;
  if (type === EtherType.IPV4) {
    if (ip + 20 > pkt.end || d[ip]! >> 4 !== 4) return false;
    if (d[ip + 9] !== IpProtocol.ICMP) return false;
    if ((((d[ip + 6]! << 8) | d[ip + 7]!) & 0x1fff) !== 0) return false; // a later fragment
    const icmp = ip + ((d[ip]! & 0x0f) << 2);
    return icmp + 2 <= pkt.end && d[icmp] === Icmpv4Type.DEST_UNREACHABLE &&
      d[icmp + 1] === Icmpv4Code.FRAGMENTATION_NEEDED;
  }
  if (type === EtherType.IPV6) {
    if (ip + 40 > pkt.end || d[ip]! >> 4 !== 6) return false;
    const u = V6_UPPER.find(d, ip, pkt.end);
    return u.proto === ICMPV6_NEXT_HEADER && u.fragment === 0 && u.offset + 1 <= pkt.end &&
      d[u.offset] === Icmpv6Type.PACKET_TOO_BIG;
  }
  return false;
}

/**
 * The faulty wire of one direction: it decides each frame's fate, holds
 * the frames in flight sorted by delivery time, and hands each to
 * `deliver` when its time comes, on the {@link Clock} (one timer for the
 * earliest frame, not one per frame). Used by `MemoryEndpoint`.
 */
export class FaultyWire {
  readonly #clock: Clock;
  readonly #pool: BufferPool;
  readonly #stats: FaultStats & { txPoolDrops: number };
  readonly #deliver: (b: PacketBuffer) => void;
  readonly #linkDelayMs: number;

  #f: LinkFaults = {};
  #rng = new SeededRandom(1);
  /** Gilbert-Elliott state: true while bad. */
  #bad = false;
  #queueFrames = DEFAULT_FAULT_QUEUE_FRAMES;
  #queueBytes = Infinity;
  #reorderDelay = 1;

  // The rate limit's serialiser: when it is free, and the departure time
  // and size of each frame not yet serialised (in departure order).
  #busyUntil = -Infinity;
  #rateAt: number[] = [];
  #rateLen: number[] = [];
  #rateHead = 0;
  #rateBytes = 0;

  // Frames in flight, sorted by delivery time (ties in writing order),
  // from #head on.
  #at: number[] = [];
  #buf: (PacketBuffer | null)[] = [];
  #head = 0;
  #timer: Timer | null = null;
  #timerAt = Infinity;
  #firing = false;
  readonly #fireFn = () => this.#fire();

  /**
   * @param clock drives delivery
   * @param pool where frames come from and go back to
   * @param stats the sending endpoint's counters
   * @param linkDelayMs the link's own delay, to which the faults' delay adds
   * @param deliver hands one frame to the receiving end (which gives the buffer back)
   */
  constructor(
    clock: Clock,
    pool: BufferPool,
    stats: FaultStats & { txPoolDrops: number },
    linkDelayMs: number,
    deliver: (b: PacketBuffer) => void,
  ) {
    this.#clock = clock;
    this.#pool = pool;
    this.#stats = stats;
    this.#linkDelayMs = linkDelayMs;
    this.#deliver = deliver;
  }

  /**
   * Take a new spec: the generator restarts from its seed and the burst
   * model from the good state; frames in flight keep their times.
   */
  configure(f: LinkFaults, defaultSeed: number): void {
    this.#f = f;
    this.#rng = new SeededRandom(f.seed ?? defaultSeed);
    this.#bad = false;
    this.#queueFrames = f.queueFrames ?? DEFAULT_FAULT_QUEUE_FRAMES;
    this.#queueBytes = f.queueBytes ?? Infinity;
    const delay = this.#linkDelayMs + (f.delayMs ?? 0);
    this.#reorderDelay = f.reorderDelayMs ?? (delay > 0 ? delay : 1);
  }

  /** Frames in flight. */
  pending(): number {
    return this.#at.length - this.#head;
  }

  /** Drop every frame in flight (the receiving end closed). */
  clear(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
    for (let i = this.#head; i < this.#buf.length; i++) this.#pool.put(this.#buf[i]!);
    this.#at.length = 0;
    this.#buf.length = 0;
    this.#head = 0;
  }

  /** Judge frame `b` (a copy owned by the link) and schedule what survives. */
  send(b: PacketBuffer): void {
    const f = this.#f;
    const s = this.#stats;
    const rng = this.#rng;
    if (f.pmtuBlackhole === true && isPmtuSignal(b)) {
      s.faultPmtuBlackholeDrops++;
      this.#pool.put(b);
      return;
    }
    if (f.loss !== undefined && f.loss > 0 && rng.float() < f.loss) {
      s.faultLossDrops++;
      this.#pool.put(b);
      return;
    }
    const ge = f.lossBurst;
    if (ge !== undefined && this.#burstLoses(ge)) {
      s.faultBurstLossDrops++;
      this.#pool.put(b);
      return;
    }
    let copy: PacketBuffer | null = null;
    if (f.duplicate !== undefined && f.duplicate > 0 && rng.float() < f.duplicate) {
      copy = this.#pool.clone(b);
      if (copy === null) s.txPoolDrops++;
      else s.faultDuplicates++;
    }
    if (f.corrupt !== undefined && f.corrupt > 0 && rng.float() < f.corrupt) {
      const len = b.end - b.start;
      if (len > ETHERNET_HEADER_LEN) {
        // netem completes a partial checksum before corrupting, so the
        // receiver checks it; a super-frame's cannot be (see the module doc).
        if (!b.isGso()) completePartialChecksum(b);
        const bit = randomBetween(rng, ETHERNET_HEADER_LEN * 8, len * 8 - 1);
        const at = b.start + (bit >> 3);
        b.data[at] = b.data[at]! ^ (0x80 >> (bit & 7));
        s.faultCorrupted++;
      }
    }
    this.#schedule(b);
    if (copy !== null) this.#schedule(copy);
  }

  /** netem's loss_gilb_ell: move the state, then lose with the old state's probability. */
  #burstLoses(ge: GilbertElliott): boolean {
    const rng = this.#rng;
    if (!this.#bad) {
      if (rng.float() < ge.p) this.#bad = true;
      const lg = ge.lossGood ?? 0;
      return lg > 0 && rng.float() < lg;
    }
    if (rng.float() < (ge.r ?? 1 - ge.p)) this.#bad = false;
    const lb = ge.lossBad ?? 1;
    return lb >= 1 || (lb > 0 && rng.float() < lb);
  }

  /** Rate limit, delay, jitter, reordering: when `b` arrives, if it is not tail-dropped. */
  #schedule(b: PacketBuffer): void {
    const f = this.#f;
    const s = this.#stats;
    const now = this.#clock.now();
    let at = now;
    const rate = f.rateBitsPerSecond;
    if (rate !== undefined) {
      // Frames whose serialisation has finished have left the queue.
      while (this.#rateHead < this.#rateAt.length && this.#rateAt[this.#rateHead]! <= now) {
        this.#rateBytes -= this.#rateLen[this.#rateHead]!;
        this.#rateHead++;
      }
      if (this.#rateHead === this.#rateAt.length) {
        this.#rateAt.length = this.#rateLen.length = this.#rateHead = 0;
      } else if (this.#rateHead > 1024 && this.#rateHead * 2 > this.#rateAt.length) {
        this.#rateAt.splice(0, this.#rateHead);
        this.#rateLen.splice(0, this.#rateHead);
        this.#rateHead = 0;
      }
      const len = b.end - b.start;
      const waiting = this.#rateAt.length - this.#rateHead;
      if (waiting + 1 > this.#queueFrames || this.#rateBytes + len > this.#queueBytes) {
        s.faultQueueDrops++;
        this.#pool.put(b);
        return;
      }
      if (this.#busyUntil > now) s.faultRateQueued++;
      const start = Math.max(now, this.#busyUntil);
      this.#busyUntil = start + (len * 8 * 1000) / rate;
      this.#rateAt.push(this.#busyUntil);
      this.#rateLen.push(len);
      this.#rateBytes += len;
      at = this.#busyUntil;
    }
    let extra = f.delayMs ?? 0;
    const jitter = f.jitterMs ?? 0;
    if (jitter > 0) extra = Math.max(0, extra + (2 * this.#rng.float() - 1) * jitter);
    if (extra > 0) s.faultDelayed++;
    at += this.#linkDelayMs + extra;
    if (f.reorder !== undefined && f.reorder > 0 && this.#rng.float() < f.reorder) {
      at += this.#reorderDelay;
      s.faultReordered++;
    }
    this.#insert(at, b);
  }

  #insert(at: number, b: PacketBuffer): void {
    const ats = this.#at;
    if (ats.length === this.#head || ats[ats.length - 1]! <= at) {
      ats.push(at);
      this.#buf.push(b);
    } else {
      // The first place whose time is later than `at` (ties keep writing order).
      let lo = this.#head, hi = ats.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ats[mid]! <= at) lo = mid + 1;
        else hi = mid;
      }
      ats.splice(lo, 0, at);
      this.#buf.splice(lo, 0, b);
    }
    if (!this.#firing) this.#arm();
  }

  /** A timer for the earliest frame in flight (none when nothing is). */
  #arm(): void {
    if (this.#head === this.#at.length) {
      this.#timer?.cancel();
      this.#timer = null;
      this.#timerAt = Infinity;
      return;
    }
    const next = this.#at[this.#head]!;
    if (this.#timer !== null && this.#timerAt === next) return;
    this.#timer?.cancel();
    this.#timerAt = next;
    this.#timer = this.#clock.schedule(next - this.#clock.now(), this.#fireFn);
  }

  /**
   * Deliver every frame due now that was in flight when the timer fired; a
   * frame written meanwhile waits for the next timer, so delivery never
   * recurses.
   */
  #fire(): void {
    // The timer was for #timerAt: `now` may be an ulp short of it.
    const now = Math.max(this.#clock.now(), this.#timerAt);
    this.#timer = null;
    this.#timerAt = Infinity;
    let n = 0;
    while (this.#head + n < this.#at.length && this.#at[this.#head + n]! <= now) n++;
    this.#firing = true;
    try {
      // (A delivery may close the receiving end, which clears the wire.)
      for (let i = 0; i < n && this.#head < this.#at.length; i++) {
        const b = this.#buf[this.#head]!;
        this.#buf[this.#head] = null;
        this.#head++;
        this.#deliver(b);
      }
    } finally {
      this.#firing = false;
    }
    if (this.#head === this.#at.length) {
      this.#at.length = this.#buf.length = this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#at.length) {
      this.#at.splice(0, this.#head);
      this.#buf.splice(0, this.#head);
      this.#head = 0;
    }
    this.#arm();
  }
}
