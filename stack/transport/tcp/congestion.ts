/**
 * Congestion control, in bytes: CUBIC (RFC 9438, the default, as Linux)
 * and NewReno (RFC 5681 / RFC 6582). Slow start is shared; loss recovery
 * itself (which segments to resend) lives in the connection.
 *
 * @module
 */

/** What the connection asks of a congestion controller. */
export interface CongestionControl {
  readonly name: "cubic" | "reno";
  /** Congestion window, bytes. */
  cwnd: number;
  /** Slow start threshold, bytes. */
  ssthresh: number;
  /** `acked` new bytes were cumulatively acknowledged at `now` (ms), outside recovery. */
  onAck(acked: number, mss: number, now: number, srttMs: number): void;
  /** Loss detected (fast retransmit / RACK): set ssthresh and the window to resume with. */
  onLoss(mss: number, now: number, inFlight: number): void;
  /** Retransmission timeout: one segment, ssthresh from the flight (RFC 5681 eq. 4). */
  onTimeout(mss: number, now: number, inFlight: number): void;
}

/** RFC 6928 / Linux: an initial window of 10 segments. */
export const INITIAL_WINDOW_SEGMENTS = 10;

/** NewReno (RFC 5681 §3.1 with RFC 3465 byte counting, L = 2). */
export class Reno implements CongestionControl {
  readonly name = "reno";
  cwnd: number;
  ssthresh = 0x7fffffff;
  #acc = 0;

  constructor(mss: number) {
    this.cwnd = INITIAL_WINDOW_SEGMENTS * mss;
  }

  onAck(acked: number, mss: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, 2 * mss);
      return;
    }
    // Congestion avoidance: one MSS per window of acknowledged bytes.
    this.#acc += acked;
    if (this.#acc >= this.cwnd) {
      this.#acc -= this.cwnd;
      this.cwnd += mss;
    }
  }

  onLoss(mss: number, _now: number, inFlight: number): void {
    this.ssthresh = Math.max(Math.floor(inFlight / 2), 2 * mss);
    this.cwnd = this.ssthresh;
    this.#acc = 0;
  }

  onTimeout(mss: number, _now: number, inFlight: number): void {
    this.ssthresh = Math.max(Math.floor(inFlight / 2), 2 * mss);
    this.cwnd = mss;
    this.#acc = 0;
  }
}

/** RFC 9438 §4.6: β_cubic. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 §4.1: C. */
export const CUBIC_C = 0.4;

/**
 * CUBIC (RFC 9438): W_cubic(t) = C·(t − K)³ + W_max in segments, with
 * K = ∛(W_max·(1 − β)/C) (§4.2), the Reno-friendly estimate W_est (§4.3),
 * and fast convergence (§4.7).
 */
export class Cubic implements CongestionControl {
  readonly name = "cubic";
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** W_max in segments (§4.2); 0 before the first loss. */
  wMax = 0;
  /** Start of the current congestion avoidance epoch (ms), or −1. */
  #epoch = -1;
  #k = 0;
  /** W_est in segments (§4.3). */
  #wEst = 0;
  #cwndAcc = 0;

  constructor(mss: number) {
    this.cwnd = INITIAL_WINDOW_SEGMENTS * mss;
  }

  /** K for a W_max and the window the epoch starts from (segments), RFC 9438 eq. 2. */
  static k(wMax: number, cwndStart: number): number {
    return Math.cbrt(Math.max(0, wMax - cwndStart) / CUBIC_C);
  }

  /** W_cubic(t) for t seconds into the epoch (segments), RFC 9438 eq. 1. */
  static window(t: number, k: number, wMax: number): number {
    return CUBIC_C * (t - k) ** 3 + wMax;
  }

  onAck(acked: number, mss: number, now: number, srttMs: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, 2 * mss);
      return;
    }
    const cwndSeg = this.cwnd / mss;
    if (this.#epoch < 0) {
      this.#epoch = now;
      if (cwndSeg < this.wMax) {
        this.#k = Cubic.k(this.wMax, cwndSeg);
      } else {
        this.#k = 0;
        this.wMax = cwndSeg;
      }
      this.#wEst = cwndSeg;
    }
    const t = (now - this.#epoch) / 1000;
    const rtt = Math.max(srttMs, 1) / 1000;
    // §4.2: the target is W_cubic one RTT ahead, bounded to 1.5 × cwnd.
    let target = Cubic.window(t + rtt, this.#k, this.wMax);
    target = Math.min(Math.max(target, cwndSeg), 1.5 * cwndSeg);
    // §4.3: W_est grows by α_cubic per RTT, α = 3(1−β)/(1+β).
    const alpha = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);
    this.#wEst += alpha * (acked / mss) / cwndSeg;
    if (this.#wEst > target) target = this.#wEst;
    // Increase by (target − cwnd)/cwnd per acknowledged segment.
    this.#cwndAcc += ((target - cwndSeg) / cwndSeg) * (acked / mss) * mss;
    if (this.#cwndAcc >= 1) {
      const inc = Math.floor(this.#cwndAcc);
      this.cwnd += inc;
      this.#cwndAcc -= inc;
    }
  }

  onLoss(mss: number, _now: number, _inFlight: number): void {
    const cwndSeg = this.cwnd / mss;
    // §4.7: fast convergence, against the W_max in force (reduced or not), as Linux's last_max_cwnd.
    if (cwndSeg < this.wMax) {
      this.wMax = cwndSeg * (1 + CUBIC_BETA) / 2;
    } else {
      this.wMax = cwndSeg;
    }
    // §4.6 (the epsilon keeps 90000 · 0.7 from flooring to 62999).
    this.ssthresh = Math.max(Math.floor(this.cwnd * CUBIC_BETA + 1e-6), 2 * mss);
    this.cwnd = this.ssthresh;
    this.#epoch = -1;
    this.#cwndAcc = 0;
  }

  onTimeout(mss: number, now: number, inFlight: number): void {
    this.onLoss(mss, now, inFlight);
    this.cwnd = mss;
  }
}

/** A controller by name. */
export function newCongestionControl(name: "cubic" | "reno", mss: number): CongestionControl {
  return name === "reno" ? new Reno(mss) : new Cubic(mss);
}
