/**
 * One TCP connection (RFC 9293's TCB) for either family: the state
 * machine of §3.3.2 with the segment-arrival rules of §3.10.7, RFC 5961's
 * blind-attack defences, RFC 6298 retransmission timing, RFC 7323 window
 * scaling, timestamps and PAWS, SACK (RFC 2018) sent and used for recovery
 * (RFC 6675 accounting) with RACK-TLP loss detection (RFC 8985), CUBIC or
 * NewReno, delayed ACKs with quick-ack at start, Nagle, the persist timer
 * and keepalive.
 *
 * Data lives in two {@link ByteRing}s. The send ring holds every byte from
 * SND.UNA on; what was sent is described by a queue of transmitted ranges
 * (sequence span, send time, SACKed / lost marks), which is what RACK and
 * SACK recovery walk. The receive ring holds unread in-order bytes and,
 * ahead of them, out-of-order bytes at their place.
 *
 * All time comes from the stack's Clock: one Clock timer per connection,
 * armed lazily at the earliest of its deadlines (retransmit/probe, delayed
 * ACK, keepalive/TIME-WAIT), so moving a deadline later costs nothing.
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Timer } from "../../clock.ts";
import { TcpFlags, type TcpOptions } from "../../wire/tcp.ts";
import { ByteRing } from "./ring.ts";
import { type CongestionControl, newCongestionControl } from "./congestion.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import type { IpAddr } from "../udp.ts";
import type { TcpStats } from "../../stats.ts";

const { FIN, SYN, RST, PSH, ACK, ECE, CWR } = TcpFlags;

/** The SACK block ages of a connection with no out-of-order data. */
const NO_BLOCKS: readonly number[] = Object.freeze([]);

/** RFC 9293 §3.3.2 states, numbered; {@link TCP_STATE_NAMES} gives the names `ss` prints. */
export const TcpState = {
  CLOSED: 0,
  LISTEN: 1,
  SYN_SENT: 2,
  SYN_RECEIVED: 3,
  ESTABLISHED: 4,
  FIN_WAIT_1: 5,
  FIN_WAIT_2: 6,
  CLOSE_WAIT: 7,
  CLOSING: 8,
  LAST_ACK: 9,
  TIME_WAIT: 10,
} as const;
export type TcpStateValue = typeof TcpState[keyof typeof TcpState];

/** State names as `ss -tan` prints them. */
export const TCP_STATE_NAMES: readonly string[] = [
  "CLOSED",
  "LISTEN",
  "SYN-SENT",
  "SYN-RECV",
  "ESTAB",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
];

/** Per-stack TCP settings (Linux's sysctl defaults unless said). */
export interface TcpSettings {
  /** Initial receive buffer (tcp_rmem[1]). */
  rmemDefault: number;
  /** Most receive buffer auto-tuning grows to (tcp_rmem[2]); sets the window scale. */
  rmemMax: number;
  /** Send buffer (tcp_wmem[2]): bytes written and not yet acknowledged. */
  wmemMax: number;
  /** RFC 6298 §2: the RTO before any sample (1 s), its floor (Linux 200 ms) and ceiling (120 s). */
  initialRtoMs: number;
  minRtoMs: number;
  maxRtoMs: number;
  /** SYN retransmissions before a connect fails (tcp_syn_retries). */
  synRetries: number;
  /** SYN-ACK retransmissions (tcp_synack_retries). */
  synAckRetries: number;
  /** RTO retransmissions before an established connection is dropped (tcp_retries2). */
  retries2: number;
  /** TIME-WAIT (Linux's fixed 60 s). */
  timeWaitMs: number;
  /** FIN-WAIT-2 of a connection the application closed (tcp_fin_timeout). */
  finTimeoutMs: number;
  /** Delayed ACK timeout (Linux's 40 ms minimum; RFC 9293 allows up to 500 ms). */
  delayedAckMs: number;
  congestion: "cubic" | "reno";
  sack: boolean;
  timestamps: boolean;
  windowScaling: boolean;
  /** SYN-RECEIVED children per listener (tcp_max_syn_backlog). */
  maxSynBacklog: number;
  /** Most established connections waiting for accept() (somaxconn). */
  somaxconn: number;
  /** SYN cookies when a SYN queue is full (tcp_syncookies=1). */
  syncookies: boolean;
  /** Keepalive idle time, interval and probe count (tcp_keepalive_time/intvl/probes). */
  keepaliveIdleMs: number;
  keepaliveIntervalMs: number;
  keepaliveProbes: number;
  /** Challenge ACKs per second for the whole stack (tcp_challenge_ack_limit, RFC 5961 §7). */
  challengeAckLimit: number;
  /**
   * ECN (RFC 3168), as tcp_ecn: 0 off, 1 asked for on connects and accepted,
   * 2 accepted when a peer asks (Linux's default).
   */
  ecn: 0 | 1 | 2;
  /**
   * Black-hole fallback (RFC 4821 §1, Linux's tcp_mtu_probing = 1): after
   * `retries1` RTOs in a row with full-size segments and no ICMP, the MSS
   * drops to `baseMss` (and halves from there on further black holes).
   */
  mtuProbing: boolean;
  baseMss: number;
  retries1: number;
}

/** Linux's defaults. */
export const DEFAULT_TCP_SETTINGS: TcpSettings = {
  rmemDefault: 131_072,
  rmemMax: 6_291_456,
  wmemMax: 4_194_304,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 120_000,
  synRetries: 6,
  synAckRetries: 5,
  retries2: 15,
  timeWaitMs: 60_000,
  finTimeoutMs: 60_000,
  delayedAckMs: 40,
  congestion: "cubic",
  sack: true,
  timestamps: true,
  windowScaling: true,
  maxSynBacklog: 4096,
  somaxconn: 4096,
  syncookies: true,
  keepaliveIdleMs: 7_200_000,
  keepaliveIntervalMs: 75_000,
  keepaliveProbes: 9,
  challengeAckLimit: 1000,
  ecn: 2,
  mtuProbing: true,
  baseMss: 1024,
  retries1: 3,
};

/** An arriving segment, parsed once by {@link Tcp} (valid only during the call). */
export interface TcpSegment {
  seq: number;
  ack: number;
  flags: number;
  /** The raw window field. */
  window: number;
  opts: TcpOptions;
  data: Uint8Array;
  payloadOffset: number;
  payloadLength: number;
  nic: Nic | null;
  /** The IP header's ECN field was CE (congestion experienced). */
  ce: boolean;
}

/** What a connection tells its owner (the socket API). */
export interface TcpEvents {
  /** The handshake completed (SYN-SENT or SYN-RECEIVED → ESTABLISHED). */
  onEstablished?(): void;
  /** Bytes or the end of the stream (FIN) can be read. */
  onReadable?(): void;
  /** Room in the send buffer, or the write side ended. */
  onWritable?(): void;
  /** The connection is gone: `err` null for an orderly end, else why. */
  onClosed?(err: Error | null): void;
}

/** TCP_INFO-like figures of a connection. */
export interface TcpInfo {
  state: string;
  /** Smoothed RTT and its variation, ms (−1 before a sample). */
  rttMs: number;
  rttVarMs: number;
  rtoMs: number;
  minRttMs: number;
  /** Send MSS, congestion window (bytes and segments), ssthresh. */
  mss: number;
  cwnd: number;
  cwndSegments: number;
  ssthresh: number;
  congestion: string;
  /** The peer's window, bytes; our advertised window, bytes. */
  sendWindow: number;
  receiveWindow: number;
  sendWscale: number;
  receiveWscale: number;
  timestamps: boolean;
  sack: boolean;
  /** ECN negotiated (RFC 3168). */
  ecn: boolean;
  /** Bytes not yet acknowledged, bytes in flight (RFC 6675 pipe). */
  unacked: number;
  inFlight: number;
  /** Bytes waiting in the send and receive queues (ss's Send-Q / Recv-Q). */
  sendQueue: number;
  receiveQueue: number;
  bytesSent: number;
  bytesAcked: number;
  bytesReceived: number;
  segmentsSent: number;
  segmentsReceived: number;
  retransmits: number;
  /** Consecutive RTO expirations now (the backoff exponent). */
  backoff: number;
  /** Store the two rings hold now (0 for an idle connection). */
  bufferBytes: number;
}

/** One transmitted range of sequence space (its data is in the send ring). */
interface TxSeg {
  start: number;
  end: number;
  /** Clock ms of the latest transmission. */
  xmitTime: number;
  xmits: number;
  sacked: boolean;
  lost: boolean;
  fin: boolean;
}

/** What a connection needs of its {@link Tcp}. */
export interface TcpHost {
  readonly settings: TcpSettings;
  now(): number;
  schedule(ms: number, fn: () => void): Timer;
  /**
   * Build and send one segment of `c` (options, window and ACK from its
   * state): `dataLen` bytes from send-ring position `dataPos`; `gso`
   * allows a super-frame of `c.mss`-byte segments.
   */
  emit(c: TcpConnection, seq: number, flags: number, dataPos: number, dataLen: number): boolean;
  /** A reset about `c` with this sequence (and ACK when `ack` ≥ 0). */
  emitReset(c: TcpConnection, seq: number, ack: number): void;
  /** The connection is finished: leave the demultiplexer. */
  remove(c: TcpConnection): void;
  /** A passive connection reached ESTABLISHED. */
  established(c: TcpConnection): void;
  /** A token for one challenge ACK (RFC 5961 §7), false when over the limit. */
  challengeAckAllowed(): boolean;
  /** Largest payload a super-frame may carry (0: no offload, send MSS-sized segments). */
  gsoMax(c: TcpConnection): number;
  readonly counters: TcpCounters;
}

/** Counters every connection moves (stack-wide, as Linux's TcpExt MIBs). */
export type TcpCounters = TcpStats;

const XMIT_NONE = 0, XMIT_RTO = 1, XMIT_PROBE0 = 2, XMIT_TLP = 3, XMIT_REO = 4;
/** RFC 8985 §7.2: WCDelAckT, the worst-case delayed ACK a probe waits for. */
const WC_DELACK_MS = 200;
/** Linux's tcp_invalid_ratelimit. */
const OOW_ACK_INTERVAL_MS = 500;
/** Linux's TCP_MAX_QUICKACKS. */
const MAX_QUICKACKS = 16;
/** RFC 9293 §3.7.1: the default send MSS when the peer sends no MSS option. */
const DEFAULT_MSS_V4 = 536;
const DEFAULT_MSS_V6 = 1220;

/** A TCP connection. Created by {@link Tcp}; the socket API wraps it. */
export class TcpConnection {
  state: TcpStateValue = TcpState.CLOSED;
  /** The owner's callbacks. */
  events: TcpEvents = {};
  /** The error that ended the connection, once it ended badly. */
  error: Error | null = null;

  // ---- demultiplexer (owned by Tcp)
  /** @internal */ hash = 0;
  /** @internal */ nextInBucket: TcpConnection | null = null;
  /** @internal The listener this passive connection is queued on, until accepted. */
  parent: unknown = null;
  /** @internal True once {@link Tcp} took it out of every table. */
  removed = false;
  /** @internal The NIC the connection leaves by (null: a local address, loopback). */
  pathNic: Nic | null = null;

  // ---- send sequence space (RFC 9293 §3.3.1)
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** Highest sequence sent so far (SND.NXT can move back after an RTO). */
  sndMax = 0;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  maxSndWnd = 0;
  /** The peer's window shift; ours. */
  sndWscale = 0;
  rcvWscale = 0;

  // ---- receive sequence space
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we advertised last (never moves left, RFC 9293 §3.8.6.2.2). */
  rcvAdv = 0;
  /** Current receive buffer limit (auto-tuned up to rmemMax). */
  rcvLimit: number;

  /** Send MSS: payload bytes per segment, options excluded. */
  mss = DEFAULT_MSS_V4;
  /** The MSS we announce (from the route's MTU). */
  advMss = DEFAULT_MSS_V4;
  /** Largest segment payload we received (delayed-ACK sizing). */
  #rcvMss = DEFAULT_MSS_V4;

  // ---- options
  tsOk = false;
  sackOk = false;
  wsOk = false;
  tsRecent = 0;
  #tsRecentStamp = 0;
  #tsOffset: number;
  #lastAckSent = 0;
  /** Ask for these in our SYN (from the settings; tests turn them off). */
  wantTs: boolean;
  wantSack: boolean;
  wantWs: boolean;

  // ---- queues
  readonly sendRing: ByteRing;
  readonly recvRing: ByteRing;
  /** Out-of-order ranges held beyond RCV.NXT: [start, end) pairs, sorted, disjoint. */
  readonly ooo: number[] = [];
  #oooBytesEnd = 0;
  /**
   * When each out-of-order block last grew (a counter, one per block of
   * {@link ooo}): SACK reports the most recent first (RFC 2018 §4). Made
   * with the first out-of-order block: an idle connection holds none.
   */
  #oooAge: number[] | null = null;
  #oooClock = 0;
  /** A pending D-SACK block (RFC 2883): start, end, or −1. */
  #dsackStart = -1;
  #dsackEnd = 0;
  #txq: TxSeg[] = [];
  #txHead = 0;
  /** The application asked for a FIN after the queued bytes. */
  finQueued = false;
  /** Our FIN's sequence once sent, else −1. */
  #finSeq = -1;
  /** The peer's FIN was received (in order). */
  finReceived = false;
  /** The peer's FIN's sequence when it arrived out of order, else −1. */
  #oooFin = -1;
  /** The application closed both directions (orphaned: data arriving now gets a reset). */
  appClosed = false;

  // ---- timing (RFC 6298)
  srtt = -1;
  rttvar = 0;
  rto: number;
  minRtt = Infinity;
  /** Consecutive RTO expirations (the backoff exponent). */
  backoff = 0;
  #rttSeq = -1;
  #rttTime = 0;

  // ---- congestion and recovery
  cc: CongestionControl;
  inRecovery = false;
  #recoveryPoint = 0;
  #dupAcks = 0;
  #sackedBytes = 0;
  #lostBytes = 0;
  #rackXmitTime = -1;
  #rackEndSeq = 0;
  #rackRtt = 0;
  #reorderingSeen = false;
  /** RFC 8985 §6.2 step 4: the reordering window's multiplier, grown by D-SACK rounds. */
  #reoWndMult = 1;
  #reoWndPersist = 0;
  /** SND.NXT when the current D-SACK round began; only while #dsackRoundOn. */
  #dsackRound = 0;
  #dsackRoundOn = false;
  #tlpOutstanding = false;
  /** Highest SACKed sequence (for reordering detection). */
  #highSacked = 0;

  // ---- timers
  #xmitAt = -1;
  #xmitKind = XMIT_NONE;
  #delackAt = -1;
  #keepAt = -1;
  #timer: Timer | null = null;
  #timerAt = Infinity;
  #synRetries = 0;
  #probes = 0;

  // ---- ACK policy
  #quickAcks = MAX_QUICKACKS;
  #unackedBytes = 0;
  /**
   * A full-sized segment with PSH arrived since our last ACK: it is ACKed
   * once the application has read everything (Linux's ICSK_ACK_PUSHED).
   */
  #ackPushed = false;
  /**
   * An ACK is due at once, whatever the delayed-ACK rule says: out-of-order
   * data, a filled hole, a FIN, a full buffer (RFC 5681 §4.2).
   */
  #ackNow = false;

  // ---- socket options
  noDelay = false;
  keepAlive = false;
  keepIdleMs: number;
  keepIntervalMs: number;
  keepCount: number;
  #lastRecv = 0;

  // ---- figures
  bytesSent = 0;
  bytesAcked = 0;
  bytesReceived = 0;
  segmentsSent = 0;
  segmentsReceived = 0;
  retransmits = 0;
  #copiedMark = 0;
  #copiedSince = 0;

  /** @internal */
  constructor(
    readonly host: TcpHost,
    readonly family: 4 | 6,
    readonly local: IpAddr,
    readonly localPort: number,
    readonly remote: IpAddr,
    readonly remotePort: number,
    readonly device: Nic | null,
    tsOffset: number,
  ) {
    const s = host.settings;
    this.sendRing = new ByteRing(s.wmemMax);
    // The window is rounded up to whole scale units (as Linux does): room for that slack.
    this.recvRing = new ByteRing(s.rmemMax + (1 << 14));
    this.rcvLimit = s.rmemDefault;
    this.rto = s.initialRtoMs;
    this.cc = newCongestionControl(s.congestion, this.mss);
    this.keepIdleMs = s.keepaliveIdleMs;
    this.keepIntervalMs = s.keepaliveIntervalMs;
    this.keepCount = s.keepaliveProbes;
    this.wantTs = s.timestamps;
    this.wantSack = s.sack;
    this.wantWs = s.windowScaling;
    this.#tsOffset = tsOffset;
  }

  // ================================================================ public

  /** RFC 9293 §3.10.1 OPEN, active: send the SYN. */
  openActive(iss: number, advMss: number): void {
    this.#initSend(iss, advMss);
    this.rcvWscale = this.wantWs ? this.#wscaleFor(this.host.settings.rmemMax) : 0;
    this.state = TcpState.SYN_SENT;
    this.host.counters.activeOpens++;
    this.#sendSyn();
  }

  /**
   * A SYN reached a listener: this connection takes the peer's options and
   * answers with a SYN-ACK (SYN-RECEIVED).
   */
  openPassive(seg: TcpSegment, iss: number, advMss: number): void {
    this.#initSend(iss, advMss);
    this.#acceptSynOptions(seg);
    this.ecnOk = this.host.settings.ecn !== 0 && (seg.flags & (ECE | CWR)) === (ECE | CWR);
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.rcvAdv = this.rcvNxt;
    this.sndWnd = seg.window; // RFC 7323 §2.2: a SYN's window is never scaled
    this.sndWl1 = seg.seq;
    this.sndWl2 = iss;
    this.maxSndWnd = this.sndWnd;
    this.state = TcpState.SYN_RECEIVED;
    this.#lastRecv = this.host.now();
    this.host.counters.passiveOpens++;
    this.#sendSyn();
  }

  /**
   * Complete a connection from a valid SYN cookie (the final ACK of a
   * handshake no state was kept for): ESTABLISHED straight away.
   */
  openFromCookie(
    seg: TcpSegment,
    iss: number,
    mss: number,
    advMss: number,
    wscale: number,
    sackOk: boolean,
  ): void {
    this.#initSend(iss, advMss);
    this.sndUna = seqAdd(iss, 1);
    this.sndNxt = this.sndUna;
    this.sndMax = this.sndUna;
    this.irs = seqAdd(seg.seq, -1);
    this.rcvNxt = seg.seq;
    this.rcvAdv = this.rcvNxt;
    this.tsOk = seg.opts.hasTimestamps && this.wantTs;
    if (this.tsOk) {
      this.tsRecent = seg.opts.tsVal;
      this.#tsRecentStamp = this.host.now();
    }
    this.wsOk = wscale >= 0 && this.tsOk;
    this.sndWscale = this.wsOk ? wscale : 0;
    this.rcvWscale = this.wsOk ? this.#wscaleFor(this.host.settings.rmemMax) : 0;
    this.sackOk = sackOk && this.tsOk;
    this.#setMss(mss);
    this.state = TcpState.ESTABLISHED;
    this.host.counters.passiveOpens++;
    this.#lastRecv = this.host.now();
    this.#updateWindow(seg);
    this.#armKeepalive();
  }

  /** Copy readable bytes into `dst`; 0 when none (see {@link readEof}). */
  read(dst: Uint8Array): number {
    const n = this.recvRing.read(dst, this.ooo.length > 0);
    if (n === 0) return 0;
    this.#copiedSince += n;
    this.#tuneReceiveBuffer();
    // Linux's tcp_cleanup_rbuf: a read that empties the queue ACKs a pushed full-sized
    // segment now rather than at the delayed-ACK timeout (a sender's lone loss probe).
    if (this.#ackPushed && this.#unackedBytes > 0 && this.recvRing.length === 0) {
      if (this.#canReceive()) this.#sendAck();
    }
    // Tell the peer about a window that opened a lot (Linux's tcp_cleanup_rbuf).
    if (this.#canReceive()) {
      const free = this.#freeWindow();
      const advertised = seqDiff(this.rcvAdv, this.rcvNxt);
      if (
        advertised < this.#rcvMss ||
        free - advertised >= Math.max(2 * this.#rcvMss, Math.min(this.rcvLimit >> 1, 65536))
      ) {
        if (free - advertised >= this.#rcvMss) this.#sendAck();
      }
    }

    return n;
  }

  /** Bytes waiting to be read. */
  get readable(): number {
    return this.recvRing.length;
  }

  /** True when the peer's FIN was read past: no more bytes will come. */
  get readEof(): boolean {
    return this.recvRing.length === 0 && (this.finReceived || this.state === TcpState.CLOSED);
  }

  /** Room in the send buffer now. */
  get writable(): number {
    return this.sendRing.max - this.sendRing.length;
  }

  /** True when writes are still accepted. */
  get canWrite(): boolean {
    return !this.finQueued && this.error === null &&
      (this.state === TcpState.ESTABLISHED || this.state === TcpState.CLOSE_WAIT ||
        this.state === TcpState.SYN_SENT || this.state === TcpState.SYN_RECEIVED);
  }

  /** Queue bytes for sending; returns how many the send buffer took. */
  write(src: Uint8Array): number {
    if (!this.canWrite) return 0;
    const n = this.sendRing.push(src);
    if (n > 0 && this.state >= TcpState.ESTABLISHED) this.#output();
    return n;
  }

  /** RFC 9293 §3.10.4 CLOSE of the send side: a FIN after the queued bytes. */
  shutdownWrite(): void {
    if (this.finQueued) return;
    switch (this.state) {
      case TcpState.SYN_SENT:
      case TcpState.CLOSED:
      case TcpState.LISTEN:
        this.#finish(null);
        return;
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
        this.finQueued = true;
        if (this.state === TcpState.ESTABLISHED) {
          this.state = TcpState.FIN_WAIT_1;
          this.#output();
        }
        return;
      case TcpState.CLOSE_WAIT:
        this.finQueued = true;
        this.state = TcpState.LAST_ACK;
        this.#output();
        return;
    }
  }

  /**
   * Close both directions (the socket's close()). Unread received bytes
   * make it a reset (RFC 9293 §3.10.4 note, as Linux); otherwise a FIN
   * after the queued bytes, and the connection finishes on its own.
   */
  close(): void {
    if (this.appClosed) return;
    this.appClosed = true;
    this.events = {};
    if (this.state === TcpState.CLOSED || this.state === TcpState.TIME_WAIT) return;
    if (this.recvRing.length > 0 && this.state >= TcpState.ESTABLISHED) {
      this.host.counters.closedWithUnreadData++;
      this.abort();
      return;
    }
    this.shutdownWrite();
    if (this.state === TcpState.FIN_WAIT_2) this.#armFinTimeout();
  }

  /** Send a reset and drop the connection (SO_LINGER 0, or an abort). */
  abort(): void {
    if (
      this.state === TcpState.CLOSED || this.state === TcpState.TIME_WAIT ||
      this.state === TcpState.SYN_SENT
    ) {
      this.#finish(null);
      return;
    }
    this.host.emitReset(this, this.sndNxt, -1);
    this.#finish(null);
  }

  /** Turn keepalive on or off (SO_KEEPALIVE), optionally with idle/interval/count. */
  setKeepAlive(
    on: boolean,
    o: { idleMs?: number; intervalMs?: number; count?: number } = {},
  ): void {
    this.keepAlive = on;
    if (o.idleMs !== undefined) this.keepIdleMs = o.idleMs;
    if (o.intervalMs !== undefined) this.keepIntervalMs = o.intervalMs;
    if (o.count !== undefined) this.keepCount = o.count;
    this.#keepAt = -1;
    this.#armKeepalive();
  }

  /** TCP_NODELAY: send small segments at once instead of waiting for an ACK (Nagle off). */
  setNoDelay(on: boolean): void {
    this.noDelay = on;
    if (on && this.state >= TcpState.ESTABLISHED) this.#output();
  }

  /** TCP_INFO-like figures. */
  info(): TcpInfo {
    return {
      state: TCP_STATE_NAMES[this.state]!,
      rttMs: this.srtt,
      rttVarMs: this.srtt < 0 ? -1 : this.rttvar,
      rtoMs: this.#currentRto(),
      minRttMs: this.minRtt === Infinity ? -1 : this.minRtt,
      mss: this.mss,
      cwnd: this.cc.cwnd,
      cwndSegments: Math.floor(this.cc.cwnd / this.mss),
      ssthresh: this.cc.ssthresh,
      congestion: this.cc.name,
      sendWindow: this.sndWnd,
      receiveWindow: Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt)),
      sendWscale: this.sndWscale,
      receiveWscale: this.rcvWscale,
      timestamps: this.tsOk,
      sack: this.sackOk,
      ecn: this.ecnOk,
      unacked: seqDiff(this.sndNxt, this.sndUna),
      inFlight: this.#pipe(),
      sendQueue: this.sendRing.length,
      receiveQueue: this.recvRing.length,
      bytesSent: this.bytesSent,
      bytesAcked: this.bytesAcked,
      bytesReceived: this.bytesReceived,
      segmentsSent: this.segmentsSent,
      segmentsReceived: this.segmentsReceived,
      retransmits: this.retransmits,
      backoff: this.backoff,
      bufferBytes: this.sendRing.capacity + this.recvRing.capacity,
    };
  }

  /** A Packet Too Big / fragmentation needed named `mtu` for this path (RFC 1191, 8201). */
  pathMtuLowered(mtu: number): void {
    const overhead = (this.family === 4 ? 20 : 40) + 20;
    const floor = this.family === 4 ? 68 - overhead + 20 : 1280 - overhead;
    const m = Math.max(floor, mtu - overhead);
    if (m >= this.mss + (this.tsOk ? 12 : 0)) return;
    this.#setMss(Math.min(m, this.#peerMss));
    // Everything in flight was too big: resend it at the new size now (as Linux's tcp_simple_retransmit).
    for (let i = this.#txHead; i < this.#txq.length; i++) this.#markLost(this.#txq[i]!);
    this.#output();
  }

  // ================================================================ input

  /** True once the connection ended (a check the compiler does not narrow away). */
  #isClosed(): boolean {
    return this.state === TcpState.CLOSED;
  }

  /** RFC 9293 §3.10.7: a segment for this connection arrived. */
  segmentArrives(seg: TcpSegment): void {
    this.segmentsReceived++;
    this.host.counters.segmentsReceived++;
    const now = this.host.now();
    if (this.state === TcpState.SYN_SENT) {
      this.#synSentArrives(seg, now);
      return;
    }
    if (this.state === TcpState.CLOSED) return;
    const flags = seg.flags;
    const o = seg.opts;
    // RFC 7323 §5.3 PAWS: an older timestamp than TS.Recent marks an old duplicate.
    if (
      this.tsOk && o.hasTimestamps && (flags & RST) === 0 &&
      seqLt(o.tsVal, this.tsRecent) &&
      // §5.5: TS.Recent older than 24 days is invalid.
      now - this.#tsRecentStamp < 24 * 86_400_000
    ) {
      this.host.counters.pawsDropped++;
      this.#sendAck();
      return;
    }
    // §3.10.7.4 first: is the segment's sequence acceptable?
    let segLen = seg.payloadLength;
    if ((flags & SYN) !== 0) segLen++;
    if ((flags & FIN) !== 0) segLen++;
    const wnd = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
    if (!this.#acceptable(seg.seq, segLen, wnd)) {
      if ((flags & RST) !== 0) return;
      if (
        this.state === TcpState.SYN_RECEIVED && (flags & (SYN | ACK)) === (SYN | ACK) &&
        seg.seq === this.irs && seqGt(seg.ack, this.sndUna) && seqLe(seg.ack, this.sndNxt)
      ) {
        this.#crossedSynAck(seg, now);
        return;
      }
      this.host.counters.outOfWindowDropped++;
      if (
        wnd === 0 && seg.seq === this.rcvNxt && (flags & (SYN | ACK)) === ACK &&
        this.state >= TcpState.ESTABLISHED && this.state !== TcpState.TIME_WAIT
      ) {
        // §3.10.7.4: with a zero window "special allowance should be made to accept valid
        // ACKs": a probe carrying data still acknowledges ours and updates the window (as
        // Linux's tcp_sequence lets it); only its data is dropped.
        this.#lastRecv = now;
        if (this.#processAck(seg, now) && !this.#isClosed()) this.#output();
        this.#sendAck();
        return;
      }
      if (this.state === TcpState.SYN_RECEIVED && (flags & SYN) !== 0 && seg.seq === this.irs) {
        // A retransmitted SYN: our SYN-ACK was lost.
        this.#sendSyn();
        return;
      }
      if (
        (flags & SYN) !== 0 && this.state >= TcpState.ESTABLISHED &&
        this.state !== TcpState.TIME_WAIT
      ) {
        // RFC 5961 §4.2: a SYN, whatever its sequence number, gets a challenge ACK.
        this.#challengeAck();
        return;
      }
      if (segLen === 0 && this.state !== TcpState.TIME_WAIT) {
        // Linux's tcp_invalid_ratelimit: one duplicate ACK per 500 ms for bare
        // out-of-window segments (an ACK loop between two confused ends stays slow).
        if (now - this.#lastOowAck < OOW_ACK_INTERVAL_MS) {
          this.host.counters.outOfWindowAcksLimited++;
          return;
        }
        this.#lastOowAck = now;
      }
      // Old duplicate data: report it as a D-SACK (RFC 2883).
      if (seg.payloadLength > 0 && seqLt(seg.seq, this.rcvNxt)) {
        this.#dsackStart = seg.seq;
        this.#dsackEnd = seqLt(seqAdd(seg.seq, seg.payloadLength), this.rcvNxt)
          ? seqAdd(seg.seq, seg.payloadLength)
          : this.rcvNxt;
      }
      if (this.state === TcpState.TIME_WAIT && (flags & FIN) !== 0) this.#enterTimeWait();
      this.#sendAck();
      return;
    }
    this.#lastRecv = now;
    // second: RST (RFC 5961 §3.2).
    if ((flags & RST) !== 0) {
      this.host.counters.resetsReceived++;
      if (seg.seq !== this.rcvNxt) {
        this.#challengeAck();
        return;
      }
      this.#resetArrived();
      return;
    }
    // fourth: SYN in a synchronized state (RFC 5961 §4.2): challenge ACK.
    if ((flags & SYN) !== 0) {
      if (this.state === TcpState.SYN_RECEIVED && seg.seq === this.irs) {
        this.#sendSyn();
        return;
      }
      this.#challengeAck();
      return;
    }
    // fifth: ACK.
    if ((flags & ACK) === 0) return;
    if (this.ecnOk) {
      // RFC 3168 §6.1.3: CWR ends the echo; a CE mark (on this one too) starts it.
      if ((flags & CWR) !== 0) this.#ecnEcho = false;
      if (seg.ce) {
        this.host.counters.ecnCeReceived++;
        this.#ecnEcho = true;
      }
    }
    if (this.tsOk && o.hasTimestamps && seqLe(seg.seq, this.#lastAckSent)) {
      // RFC 7323 §4.3: TS.Recent from the segment covering Last.ACK.sent.
      this.tsRecent = o.tsVal;
      this.#tsRecentStamp = now;
    }
    if (this.state === TcpState.SYN_RECEIVED) {
      if (seqGt(seg.ack, this.sndUna) && seqLe(seg.ack, this.sndNxt)) {
        this.state = TcpState.ESTABLISHED;
        this.#updateWindow(seg);
        this.#clearXmitTimer();
        this.#synRetries = 0;
        this.host.established(this);
        this.events.onEstablished?.();
        this.#armKeepalive();
        if (this.finQueued) this.state = TcpState.FIN_WAIT_1;
      } else {
        this.host.emitReset(this, seg.ack, -1);
        return;
      }
    }
    if (!this.#processAck(seg, now)) return;
    if (this.#isClosed()) return;
    // seventh: segment text.
    if (seg.payloadLength > 0) {
      if (
        this.state === TcpState.ESTABLISHED || this.state === TcpState.FIN_WAIT_1 ||
        this.state === TcpState.FIN_WAIT_2
      ) {
        if (this.appClosed) {
          // Data for a connection the application closed: nobody will read it (Linux resets).
          this.host.counters.closedWithUnreadData++;
          this.host.emitReset(this, this.sndNxt, -1);
          this.#finish(null);
          return;
        }
        this.#receiveData(seg, now);
      }
    }
    // eighth: FIN.
    if ((flags & FIN) !== 0) {
      const finSeq = seqAdd(seg.seq, seg.payloadLength);
      if (finSeq === this.rcvNxt) this.#finArrived();
      else if (seqGt(finSeq, this.rcvNxt)) this.#oooFin = finSeq;
    }
    this.#output();
    this.#maybeAck(now);
  }

  /** §3.10.7.4: the four cases of segment acceptability. */
  #acceptable(seq: number, len: number, wnd: number): boolean {
    if (len === 0) {
      if (wnd === 0) return seq === this.rcvNxt;
      return seqGe(seq, this.rcvNxt) && seqLt(seq, seqAdd(this.rcvNxt, wnd));
    }
    if (wnd === 0) return false;
    const last = seqAdd(seq, len - 1);
    const edge = seqAdd(this.rcvNxt, wnd);
    return (seqGe(seq, this.rcvNxt) && seqLt(seq, edge)) ||
      (seqGe(last, this.rcvNxt) && seqLt(last, edge));
  }

  #synSentArrives(seg: TcpSegment, now: number): void {
    const flags = seg.flags;
    if ((flags & ACK) !== 0) {
      if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt)) {
        if ((flags & RST) === 0) this.host.emitReset(this, seg.ack, -1);
        return;
      }
    }
    if ((flags & RST) !== 0) {
      if ((flags & ACK) !== 0) {
        this.host.counters.resetsReceived++;
        this.host.counters.attemptFails++;
        this.#finish(new Deno.errors.ConnectionRefused("Connection refused"));
      }
      return;
    }
    if ((flags & SYN) === 0) return;
    this.#acceptSynOptions(seg);
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.rcvAdv = this.rcvNxt;
    this.#lastRecv = now;
    if (this.tsOk) {
      this.tsRecent = seg.opts.tsVal;
      this.#tsRecentStamp = now;
    }
    if ((flags & ACK) !== 0) {
      // RFC 3168 §6.1.1: a SYN-ACK with ECE and without CWR accepts ECN.
      this.ecnOk = this.host.settings.ecn === 1 && (flags & (ECE | CWR)) === ECE;
      this.#rttSample(now, seg, true);
      this.sndUna = seg.ack;
      this.state = TcpState.ESTABLISHED;
      this.sndWnd = seg.window; // unscaled on a SYN
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.maxSndWnd = this.sndWnd;
      this.#clearXmitTimer();
      this.#synRetries = 0;
      this.backoff = 0;
      this.events.onEstablished?.();
      this.#armKeepalive();
      if (this.finQueued) this.state = TcpState.FIN_WAIT_1;
      this.#sendAck();
      this.#output();
      return;
    }
    // Simultaneous open (§3.5, figure 7): SYN-RECEIVED, resend our SYN with an ACK.
    this.sndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.state = TcpState.SYN_RECEIVED;
    this.#sendSyn();
  }

  /**
   * Simultaneous open (RFC 9293 §3.5 figure 7): in SYN-RECEIVED after the
   * SYNs crossed, the peer's SYN-ACK acknowledges our SYN. Its SYN is the
   * one already taken (so the sequence test fails it), but its ACK
   * completes the handshake, as Linux's tcp_validate_incoming lets it.
   * Answering it with another SYN-ACK instead made two such stacks
   * exchange SYN-ACKs forever.
   */
  #crossedSynAck(seg: TcpSegment, now: number): void {
    if (this.tsOk && seg.opts.hasTimestamps) {
      this.tsRecent = seg.opts.tsVal;
      this.#tsRecentStamp = now;
    }
    this.#lastRecv = now;
    this.#rttSample(now, seg, true);
    this.sndUna = seg.ack;
    this.sndWnd = seg.window; // RFC 7323 §2.2: a SYN's window is never scaled
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    if (this.sndWnd > this.maxSndWnd) this.maxSndWnd = this.sndWnd;
    this.state = TcpState.ESTABLISHED;
    this.#clearXmitTimer();
    this.#synRetries = 0;
    this.backoff = 0;
    this.host.established(this);
    this.events.onEstablished?.();
    this.#armKeepalive();
    if (this.finQueued) this.state = TcpState.FIN_WAIT_1;
    this.#output();
  }

  #acceptSynOptions(seg: TcpSegment): void {
    const o = seg.opts;
    this.tsOk = this.wantTs && o.hasTimestamps;
    if (this.tsOk) {
      this.tsRecent = o.tsVal;
      this.#tsRecentStamp = this.host.now();
    }
    this.sackOk = this.wantSack && o.sackPermitted;
    // RFC 7323 §2.2: scaling only when both SYNs carry the option.
    this.wsOk = this.wantWs && o.wscale >= 0;
    this.sndWscale = this.wsOk ? o.wscale : 0;
    if (!this.wsOk) this.rcvWscale = 0;
    else if (this.state !== TcpState.SYN_SENT) {
      this.rcvWscale = this.#wscaleFor(this.host.settings.rmemMax);
    }
    this.#peerMss = o.mss > 0 ? o.mss : (this.family === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6);
    this.#setMss(Math.min(this.#peerMss, this.advMss));
  }

  #peerMss = DEFAULT_MSS_V4;

  /** The send MSS from a path MSS: options in every segment (timestamps) come off it. */
  #setMss(pathMss: number): void {
    const m = Math.max(64, pathMss - (this.tsOk ? 12 : 0));
    this.mss = m;
    this.#rcvMss = Math.min(this.#rcvMss, m) || m;
    if (this.state <= TcpState.SYN_RECEIVED && this.cc.cwnd !== 10 * m) {
      this.cc = newCongestionControl(this.host.settings.congestion, m);
    }
  }

  #initSend(iss: number, advMss: number): void {
    this.iss = iss;
    this.#ecnRecoveryPoint = iss;
    this.sndUna = iss;
    this.sndNxt = seqAdd(iss, 1);
    this.sndMax = this.sndNxt;
    this.advMss = advMss;
    this.#setMss(advMss);
  }

  /** The smallest shift that fits `bytes` into the 16-bit window field (RFC 7323 §2.3, at most 14). */
  #wscaleFor(bytes: number): number {
    let s = 0;
    while (s < 14 && (65535 << s) < bytes) s++;
    return s;
  }

  #resetArrived(): void {
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
        // A passive open goes back to LISTEN: the half-open child just disappears.
        this.#finish(new Deno.errors.ConnectionReset("Connection reset by peer"));
        return;
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
        this.host.counters.establishedResets++;
        this.#finish(new Deno.errors.ConnectionReset("Connection reset by peer"));
        return;
      default:
        this.#finish(null);
    }
  }

  /** RFC 5961 §7: a challenge ACK, within the stack's per-second budget. */
  #challengeAck(): void {
    if (!this.host.challengeAckAllowed()) {
      this.host.counters.challengeAcksLimited++;
      return;
    }
    this.host.counters.challengeAcksSent++;
    this.#sendAck();
  }

  /**
   * ACK processing of §3.10.7.4 "fifth", with RFC 5961 §5.2's range,
   * SACK scoreboard, RTT, congestion control and loss detection.
   *
   * @returns false when the segment is to be dropped
   */
  #processAck(seg: TcpSegment, now: number): boolean {
    const ack = seg.ack;
    if (seqGt(ack, this.sndMax)) {
      // Acknowledges something not yet sent: ACK and drop.
      this.host.counters.ackTooNewDropped++;
      this.#sendAck();
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      // RFC 5961 §5.2: older than any window the peer could have seen.
      this.#challengeAck();
      return false;
    }
    const priorUna = this.sndUna;
    const priorInFlight = this.#pipe();
    let newlyAcked = 0;
    if (seqGt(ack, this.sndUna)) {
      // An ACK past SND.NXT after an RTO moved it back: what was sent before is taken as acked.
      if (seqGt(ack, this.sndNxt)) this.sndNxt = ack;
      newlyAcked = seqDiff(ack, this.sndUna);
      this.#rttSample(now, seg, false);
      this.#ackTxq(ack, now);
      let dataAcked = newlyAcked;
      if (this.#finSeq >= 0 && seqGt(ack, this.#finSeq)) dataAcked--;
      if (seqGt(ack, this.iss) && seqLe(priorUna, this.iss)) dataAcked--; // our SYN
      if (dataAcked > 0) {
        this.sendRing.consume(Math.min(dataAcked, this.sendRing.length));
        this.bytesAcked += dataAcked;
      }
      this.sndUna = ack;
      this.#dupAcks = 0;
      this.backoff = 0;
      this.#probes = 0;
      this.#tlpOutstanding = false;
      if (dataAcked > 0) this.events.onWritable?.();
    }
    let sacked = 0;
    if (this.sackOk && seg.opts.sackCount > 0) sacked = this.#processSack(seg.opts, now);
    // RFC 3168 §6.1.2: an ECE is a congestion signal, acted on once per window.
    if (
      this.ecnOk && (seg.flags & ECE) !== 0 && !this.inRecovery &&
      seqGt(ack, this.#ecnRecoveryPoint) && seqGt(this.sndMax, priorUna)
    ) {
      this.host.counters.ecnReductions++;
      this.cc.onLoss(this.mss, now, priorInFlight);
      this.#ecnRecoveryPoint = this.sndMax;
      this.#ecnCwr = true;
    }
    // Window update (§3.10.7.4): only from a newer segment.
    const oldWnd = this.sndWnd;
    if (
      seqLt(this.sndWl1, seg.seq) ||
      (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))
    ) {
      this.#updateWindow(seg);
    }
    // Duplicate ACK (RFC 5681 §2): no data, no window change, data outstanding, same ACK.
    if (
      newlyAcked === 0 && seg.payloadLength === 0 && (seg.flags & (SYN | FIN)) === 0 &&
      this.sndWnd === oldWnd && seqGt(this.sndMax, this.sndUna) && ack === this.sndUna
    ) {
      this.#dupAcks++;
    }
    // Congestion control on newly acknowledged bytes.
    if (newlyAcked > 0) {
      if (this.inRecovery && seqGe(ack, this.#recoveryPoint)) {
        this.inRecovery = false;
        // RFC 8985 §6.2 step 4: 16 recoveries without a D-SACK reset the reordering window.
        if (this.#reoWndPersist > 0 && --this.#reoWndPersist === 0) this.#reoWndMult = 1;
      }
      if (!this.inRecovery) {
        // RFC 7661-style: grow only when the window was in use.
        // The ACK of our SYN does not grow it: the handshake leaves the initial window
        // (RFC 6928 §2, Linux's tcp_init_transfer), as it did on the active side.
        const grown = seqLe(priorUna, this.iss) ? newlyAcked - 1 : newlyAcked;
        if (
          grown > 0 &&
          (priorInFlight + this.mss >= this.cc.cwnd || this.cc.cwnd < this.cc.ssthresh)
        ) {
          this.cc.onAck(grown, this.mss, now, this.srtt < 0 ? 1 : this.srtt);
        }
      }
    }
    this.#detectLoss(now, newlyAcked > 0 || sacked > 0);
    // State changes for our FIN being acknowledged.
    if (this.#finSeq >= 0 && seqGt(this.sndUna, this.#finSeq)) {
      switch (this.state) {
        case TcpState.FIN_WAIT_1:
          this.state = TcpState.FIN_WAIT_2;
          this.#clearXmitTimer();
          if (this.appClosed) this.#armFinTimeout();
          this.events.onWritable?.();
          break;
        case TcpState.CLOSING:
          this.#enterTimeWait();
          return false;
        case TcpState.LAST_ACK:
          this.#finish(null);
          return false;
      }
    }
    if (this.state === TcpState.TIME_WAIT) {
      // Only a retransmitted FIN matters here: ACK it and restart the 2 MSL timeout.
      if ((seg.flags & FIN) !== 0) {
        this.#sendAck();
        this.#enterTimeWait();
      }
      return false;
    }
    this.#armXmitTimer(now);
    return true;
  }

  #updateWindow(seg: TcpSegment): void {
    this.sndWnd = seg.window << this.sndWscale;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    if (this.sndWnd > this.maxSndWnd) this.maxSndWnd = this.sndWnd;
  }

  /** RFC 6298 §2-3 and RFC 7323 §4: one RTT sample per ACK of new data. */
  #rttSample(now: number, seg: TcpSegment, syn: boolean): void {
    let r = -1;
    if (this.#rttSeq >= 0 && seqGt(seg.ack, this.#rttSeq)) {
      r = now - this.#rttTime;
      this.#rttSeq = -1;
    } else if (this.tsOk && seg.opts.hasTimestamps && seg.opts.tsEcr !== 0) {
      // With timestamps every ACK of new data is a valid sample, retransmissions too.
      r = (this.#tsNow() - seg.opts.tsEcr) >>> 0;
      if (r > 3_600_000) r = -1;
    }
    if (r < 0) return;
    if (syn) this.#rttSeq = -1;
    this.updateRtt(r);
  }

  /** Feed one RTT sample (ms) through RFC 6298 §2 (public for table tests). */
  updateRtt(r: number): void {
    if (r < this.minRtt) this.minRtt = r;
    if (this.srtt < 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    const s = this.host.settings;
    // RFC 6298 §2.4 with Linux's 200 ms floor; G (clock granularity) is 1 ms.
    this.rto = Math.min(s.maxRtoMs, Math.max(s.minRtoMs, this.srtt + Math.max(1, 4 * this.rttvar)));
  }

  #currentRto(): number {
    return Math.min(this.host.settings.maxRtoMs, this.rto * 2 ** this.backoff);
  }

  /** Drop fully acknowledged ranges; update RACK from them (RFC 8985 §6.1). */
  #ackTxq(ack: number, now: number): void {
    const q = this.#txq;
    while (this.#txHead < q.length) {
      const s = q[this.#txHead]!;
      if (seqLe(s.end, ack)) {
        this.#rackUpdate(s, now);
        // Lengths by seqDiff: a range may straddle the 2³² wrap (RFC 9293 §3.4).
        if (s.sacked) this.#sackedBytes -= seqDiff(s.end, s.start);
        if (s.lost) this.#lostBytes -= seqDiff(s.end, s.start);
        this.#txHead++;
        continue;
      }
      if (seqLt(s.start, ack)) {
        // Partly acknowledged: trim its front.
        const cut = seqDiff(ack, s.start);
        if (s.sacked) this.#sackedBytes -= cut;
        if (s.lost) this.#lostBytes -= cut;
        s.start = ack;
        this.#rackUpdate(s, now);
      }
      break;
    }
    if (this.#txHead > 64 && this.#txHead * 2 > q.length) {
      q.splice(0, this.#txHead);
      this.#txHead = 0;
    } else if (this.#txHead === q.length) {
      q.length = 0;
      this.#txHead = 0;
    }
  }

  /** RFC 8985 §6.1 step 2: the most recently sent delivered segment. */
  #rackUpdate(s: TxSeg, now: number): void {
    if (
      this.#rackXmitTime < 0 || s.xmitTime > this.#rackXmitTime ||
      (s.xmitTime === this.#rackXmitTime && seqGt(s.end, this.#rackEndSeq))
    ) {
      const rtt = now - s.xmitTime;
      // A retransmitted segment acked faster than the minimum RTT was the original's ACK.
      if (s.xmits > 1 && rtt < this.minRtt) return;
      this.#rackXmitTime = s.xmitTime;
      this.#rackEndSeq = s.end;
      this.#rackRtt = rtt;
    }
  }

  /** Mark SACKed ranges (RFC 2018 §5); returns bytes newly SACKed. */
  #processSack(o: TcpOptions, now: number): number {
    let newly = 0;
    if (this.#dsackRoundOn && seqGe(this.sndUna, this.#dsackRound)) this.#dsackRoundOn = false;
    for (let b = 0; b < o.sackCount; b++) {
      const l = o.sack[2 * b]!, r = o.sack[2 * b + 1]!;
      if (!seqLt(l, r)) continue;
      // RFC 2883: a block below SND.UNA, or inside the next block, is a D-SACK.
      const inNext = b === 0 && o.sackCount > 1 && seqGe(l, o.sack[2]!) && seqLe(r, o.sack[3]!);
      if (seqLe(r, this.sndUna) || inNext) {
        this.host.counters.dsacksReceived++;
        this.#reorderingSeen = true;
        // RFC 8985 §6.2 step 4: one more quarter min_RTT of reordering window per D-SACK round.
        if (!this.#dsackRoundOn) {
          this.#dsackRoundOn = true;
          this.#dsackRound = this.sndNxt;
          this.#reoWndMult++;
          this.#reoWndPersist = 16;
        }
        continue;
      }
      if (seqGt(r, this.sndMax)) continue;
      newly += this.#sackRange(seqGt(l, this.sndUna) ? l : this.sndUna, r, now);
    }
    return newly;
  }

  #sackRange(l: number, r: number, now: number): number {
    const q = this.#txq;
    let newly = 0;
    for (let i = this.#txHead; i < q.length; i++) {
      let s = q[i]!;
      if (seqLe(s.end, l)) continue;
      if (seqGe(s.start, r)) break;
      if (s.sacked) continue;
      // Split at the block's edges so only the covered part is marked.
      if (seqLt(s.start, l)) {
        this.#split(i, l);
        continue; // the next index holds the part from l
      }
      if (seqGt(s.end, r)) {
        this.#split(i, r);
        s = q[i]!;
      }
      s.sacked = true;
      const n = seqDiff(s.end, s.start);
      this.#sackedBytes += n;
      if (s.lost) {
        s.lost = false;
        this.#lostBytes -= n;
      }
      newly += n;
      // RFC 8985 §6.2 step 3: a never-retransmitted segment SACKed below the highest SACKed
      // one was reordered (the flag stays set: a retransmission SACKed there says nothing).
      if (seqLt(s.end, this.#highSacked)) {
        if (s.xmits === 1) this.#reorderingSeen = true;
      } else this.#highSacked = s.end;
      this.#rackUpdate(s, now);
    }
    return newly;
  }

  /** Split the range at index `i` at sequence `at` into two entries. */
  #split(i: number, at: number): void {
    const s = this.#txq[i]!;
    const tail: TxSeg = {
      start: at,
      end: s.end,
      xmitTime: s.xmitTime,
      xmits: s.xmits,
      sacked: s.sacked,
      lost: s.lost,
      fin: s.fin,
    };
    s.end = at;
    s.fin = false;
    this.#txq.splice(i + 1, 0, tail);
  }

  #markLost(s: TxSeg): void {
    if (s.lost || s.sacked) return;
    s.lost = true;
    this.#lostBytes += seqDiff(s.end, s.start);
  }

  /**
   * RACK (RFC 8985 §6.2) with SACK, three duplicate ACKs without it (RFC
   * 5681 §3.2); entering recovery sets the window once (RFC 6675 §5).
   */
  #detectLoss(now: number, delivered: boolean): void {
    const q = this.#txq;
    if (this.#txHead >= q.length) return;
    let found = false;
    if (this.sackOk && this.#rackXmitTime >= 0 && (this.#sackedBytes > 0 || this.inRecovery)) {
      if (!delivered && this.#xmitKind !== XMIT_REO) return;
      const reoWnd = this.#reorderingSeen
        ? Math.min(this.#reoWndMult * this.minRtt / 4 + 1, this.srtt < 0 ? Infinity : this.srtt)
        : this.inRecovery
        ? 0
        : (this.minRtt === Infinity ? 0 : this.minRtt / 4);
      let wait = 0;
      for (let i = this.#txHead; i < q.length; i++) {
        const s = q[i]!;
        if (s.sacked || s.lost) continue;
        const before = s.xmitTime < this.#rackXmitTime ||
          (s.xmitTime === this.#rackXmitTime && seqLt(s.end, this.#rackEndSeq));
        if (!before) continue;
        const remaining = s.xmitTime + this.#rackRtt + reoWnd - now;
        if (remaining <= 0) {
          this.#markLost(s);
          this.host.counters.rackLossesDetected++;
          found = true;
        } else if (remaining > wait) {
          wait = remaining;
        }
      }
      if (wait > 0 && !found) {
        this.#setXmit(XMIT_REO, now + wait);
      }
    } else if (!this.sackOk && this.#dupAcks >= 3 && !this.inRecovery) {
      this.#markLost(q[this.#txHead]!);
      found = true;
    }
    if (found && !this.inRecovery) {
      this.inRecovery = true;
      this.#recoveryPoint = this.sndMax;
      this.host.counters.sackRecoveries++;
      this.cc.onLoss(this.mss, now, this.#pipe());
    }
  }

  /** RFC 6675 pipe: bytes sent, not acknowledged, not SACKed, not marked lost. */
  #pipe(): number {
    return Math.max(0, seqDiff(this.sndNxt, this.sndUna) - this.#sackedBytes - this.#lostBytes);
  }

  #receiveData(seg: TcpSegment, now: number): void {
    let seq = seg.seq;
    let off = seg.payloadOffset;
    let len = seg.payloadLength;
    if ((seg.flags & SYN) !== 0) seq = seqAdd(seq, 1);
    // Trim what we already have (§3.10.7.4).
    const early = seqDiff(this.rcvNxt, seq);
    if (early > 0) {
      this.#dsackStart = seq;
      this.#dsackEnd = seqAdd(seq, Math.min(early, len));
      off += early;
      len -= early;
      seq = this.rcvNxt;
      if (len <= 0) return;
    }
    // And what lies past the window.
    const room = seqDiff(this.rcvAdv, seq);
    const wndLeft = Math.max(room, 0);
    if (len > wndLeft) len = wndLeft;
    if (len <= 0) {
      this.host.counters.receiveBufferFullDropped++;
      this.#ackNow = true; // tell the peer the window
      return;
    }
    // The peer's segment size, for the delayed-ACK rule. A GSO super-frame of a few
    // segments is none: one segment carries at most our MSS less the timestamps every
    // segment carries (RFC 7323 §3.2), as #setMss takes them off ours.
    if (
      len > this.#rcvMss && len <= 65535 &&
      seg.payloadLength <= this.advMss - (this.tsOk ? 12 : 0)
    ) {
      this.#rcvMss = len;
    }
    const pos = this.recvRing.length + seqDiff(seq, this.rcvNxt);
    if (!this.recvRing.writeAt(pos, seg.data, off, len)) {
      this.host.counters.receiveBufferFullDropped++;
      return;
    }
    this.bytesReceived += len;
    const end = seqAdd(seq, len);
    if (seq === this.rcvNxt) {
      this.recvRing.length += len;
      this.rcvNxt = end;
      let filled = false;
      // Pull in out-of-order ranges the segment reached.
      while (this.ooo.length > 0 && seqLe(this.ooo[0]!, this.rcvNxt)) {
        const oEnd = this.ooo[1]!;
        if (seqGt(oEnd, this.rcvNxt)) {
          this.recvRing.length += seqDiff(oEnd, this.rcvNxt);
          this.rcvNxt = oEnd;
        }
        this.ooo.splice(0, 2);
        this.#oooAge!.splice(0, 1);
        filled = true;
      }
      if (this.#oooFin >= 0 && this.#oooFin === this.rcvNxt) {
        this.#oooFin = -1;
        this.#finArrived();
      }
      this.#unackedBytes += len;
      if ((seg.flags & PSH) !== 0 && len >= this.#rcvMss) this.#ackPushed = true;
      // A segment that fills a hole is acknowledged at once (RFC 5681 §4.2).
      if (filled) this.#ackNow = true;
      this.events.onReadable?.();
    } else {
      this.host.counters.outOfOrderQueued++;
      // RFC 2883 §4: bytes already held out of order are reported in a D-SACK
      // block, followed by the block holding them (#addOoo makes it the most recent).
      for (let i = 0; i < this.ooo.length; i += 2) {
        if (seqLe(this.ooo[i]!, seq) && seqGe(this.ooo[i + 1]!, end)) {
          this.#dsackStart = seq;
          this.#dsackEnd = end;
          break;
        }
      }
      this.#addOoo(seq, end);
      // RFC 5681 §4.2: an out-of-order segment is acknowledged at once.
      this.#ackNow = true;
    }
    void now;
  }

  #addOoo(start: number, end: number): void {
    const o = this.ooo;
    let i = 0;
    while (i < o.length && seqLt(o[i + 1]!, start)) i += 2;
    // Merge every range that touches [start, end).
    let s = start, e = end;
    let j = i;
    while (j < o.length && seqLe(o[j]!, e)) {
      if (seqLt(o[j]!, s)) s = o[j]!;
      if (seqGt(o[j + 1]!, e)) e = o[j + 1]!;
      j += 2;
    }
    o.splice(i, j - i, s, e);
    (this.#oooAge ??= []).splice(i >> 1, (j - i) >> 1, ++this.#oooClock);
    if (seqGt(e, this.#oooBytesEnd)) this.#oooBytesEnd = e;
  }

  #finArrived(): void {
    if (this.finReceived) return;
    this.finReceived = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.#ackNow = true; // ACK the FIN now
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
        this.state = TcpState.CLOSE_WAIT;
        break;
      case TcpState.FIN_WAIT_1:
        // Our FIN not acknowledged yet (else we would be in FIN-WAIT-2).
        this.state = TcpState.CLOSING;
        break;
      case TcpState.FIN_WAIT_2:
        this.#sendAck();
        this.#enterTimeWait();
        this.events.onReadable?.();
        return;
    }
    this.events.onReadable?.();
  }

  /** The delayed-ACK decision (RFC 9293 §3.8.6.3, RFC 5681 §4.2). */
  #maybeAck(now: number): void {
    if (this.#unackedBytes === 0 && !this.#ackNow) return;
    if (this.state === TcpState.CLOSED || this.state === TcpState.TIME_WAIT) return;
    if (this.#quickAcks > 0 || this.#ackNow || this.#unackedBytes >= 2 * this.#rcvMss) {
      if (this.#quickAcks > 0) this.#quickAcks--;
      this.#sendAck();
      return;
    }
    if (this.#delackAt < 0) {
      this.#delackAt = now + this.host.settings.delayedAckMs;
      this.#arm();
    }
  }

  // ================================================================ output

  #canReceive(): boolean {
    return this.state === TcpState.ESTABLISHED || this.state === TcpState.FIN_WAIT_1 ||
      this.state === TcpState.FIN_WAIT_2;
  }

  /** Bytes of receive buffer free beyond what the application has not read. */
  #freeWindow(): number {
    return Math.max(0, this.rcvLimit - this.recvRing.length);
  }

  /**
   * @internal The window field for the next segment, moving RCV.ADV (never
   * left; moved right only by at least min(buffer/2, MSS): receiver SWS
   * avoidance, RFC 9293 §3.8.6.2.2).
   */
  windowField(syn: boolean): number {
    const free = this.#freeWindow();
    if (syn) {
      const w = Math.min(free, 65535);
      this.rcvAdv = seqAdd(this.rcvNxt, w);
      return w;
    }
    const newEdge = seqAdd(this.rcvNxt, Math.min(free, 65535 << this.rcvWscale));
    const grow = seqDiff(newEdge, this.rcvAdv);
    if (grow >= Math.min(this.rcvLimit >> 1, this.#rcvMss) || seqLe(this.rcvAdv, this.rcvNxt)) {
      if (grow > 0) this.rcvAdv = newEdge;
    }
    const w = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
    const field = Math.min(65535, Math.ceil(w / 2 ** this.rcvWscale));
    // The edge is what the field says (rounded up, as Linux's ALIGN): the peer may send
    // up to it, and the ring has the slack to take it.
    this.rcvAdv = seqAdd(this.rcvNxt, field << this.rcvWscale);
    return field;
  }

  /** @internal Timestamps option value (ms, with this connection's random offset). */
  tsValue(): number {
    return this.#tsNow();
  }

  #tsNow(): number {
    return (Math.floor(this.host.now()) + this.#tsOffset) >>> 0;
  }

  /**
   * @internal SACK blocks for the next segment into `out` ([l, r, ...]):
   * a pending D-SACK first (RFC 2883), then the most recent block, then the
   * others (RFC 2018 §4). Returns the count.
   */
  sackBlocks(out: number[], max: number): number {
    let n = 0;
    if (this.#dsackStart >= 0 && n < max) {
      out[0] = this.#dsackStart;
      out[1] = this.#dsackEnd;
      this.#dsackStart = -1;
      n = 1;
      this.host.counters.dsacksSent++;
    }
    // RFC 2018 §4: the block of the latest segment first, then the most
    // recently reported ones (the oldest are left out when the option is full).
    const o = this.ooo, age = this.#oooAge ?? NO_BLOCKS;
    let below = Infinity;
    while (n < max) {
      let best = -1;
      for (let b = 0; b < age.length; b++) {
        if (age[b]! < below && (best < 0 || age[b]! > age[best]!)) best = b;
      }
      if (best < 0) break;
      below = age[best]!;
      out[2 * n] = o[2 * best]!;
      out[2 * n + 1] = o[2 * best + 1]!;
      n++;
    }
    return n;
  }

  /** @internal Called by the emitter for every segment that carried an ACK. */
  ackSent(): void {
    this.#lastAckSent = this.rcvNxt;
    this.#unackedBytes = 0;
    this.#ackNow = false;
    this.#ackPushed = false;
    this.#delackAt = -1;
  }

  #sendAck(): void {
    if (this.state === TcpState.CLOSED || this.state === TcpState.SYN_SENT) return;
    if (this.#send(this.sndNxt, ACK, 0, 0)) return;
  }

  #sendSyn(): void {
    let flags = this.state === TcpState.SYN_SENT ? SYN : SYN | ACK;
    // RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR, an ECN-setup SYN-ACK ECE only.
    if (this.state === TcpState.SYN_SENT && this.host.settings.ecn === 1) flags |= ECE | CWR;
    else if (this.state !== TcpState.SYN_SENT && this.ecnOk) flags |= ECE;
    this.#send(this.iss, flags, 0, 0);
    if (this.#rttSeq < 0 && this.#synRetries === 0) {
      this.#rttSeq = this.iss;
      this.#rttTime = this.host.now();
    }
    this.#setXmit(XMIT_RTO, this.host.now() + this.#currentRto());
  }

  #send(seq: number, flags: number, pos: number, len: number): boolean {
    this.ipEcn = 0;
    if (this.ecnOk && (flags & SYN) === 0) {
      if (this.#ecnEcho && (flags & ACK) !== 0) flags |= ECE;
      // RFC 3168 §6.1.5: ECT on new data only, never on retransmissions or pure ACKs.
      if (len > 0 && seqGe(seq, this.sndMax)) {
        this.ipEcn = 2;
        if (this.#ecnCwr) {
          flags |= CWR;
          this.#ecnCwr = false;
        }
      }
    }
    const ok = this.host.emit(this, seq, flags, pos, len);
    if (ok) {
      this.segmentsSent++;
      this.host.counters.segmentsSent++;
    } else {
      this.host.counters.sendFailed++;
    }
    return ok;
  }

  /**
   * Send what the windows allow: lost ranges first (recovery), then new
   * data (Nagle and sender SWS avoidance, RFC 9293 §3.8.6.2.1), then a
   * FIN; arm the timers for what is in flight.
   */
  #output(): void {
    const st = this.state;
    if (
      st !== TcpState.ESTABLISHED && st !== TcpState.CLOSE_WAIT && st !== TcpState.FIN_WAIT_1 &&
      st !== TcpState.CLOSING && st !== TcpState.LAST_ACK
    ) {
      return;
    }
    const now = this.host.now();
    const gsoMax = this.host.gsoMax(this);
    if (this.#lostBytes > 0) this.#retransmitLost(now, gsoMax);
    const unsentStart = seqDiff(this.sndNxt, this.sndUna);
    for (let guard = 0; guard < 4096; guard++) {
      const queued = this.sendRing.length - Math.min(unsentStart, this.sendRing.length);
      const pos = seqDiff(this.sndNxt, this.sndUna);
      const avail = this.sendRing.length - pos;
      const wndRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
      const cwndRoom = this.cc.cwnd - this.#pipe();
      void queued;
      if (avail <= 0) break;
      let n = Math.min(avail, wndRoom, cwndRoom);
      if (n <= 0) {
        if (wndRoom <= 0 && this.sndUna === this.sndNxt) this.#armPersist(now);
        break;
      }
      const max = gsoMax > this.mss ? Math.floor(gsoMax / this.mss) * this.mss : this.mss;
      if (n > max) n = max;
      if (n < this.mss && n < avail) {
        // Window- or cwnd-limited to a runt: wait, unless it is half the peer's largest window.
        if (n < (this.maxSndWnd >> 1) || seqGt(this.sndNxt, this.sndUna)) {
          if (this.sndUna === this.sndNxt) this.#armPersist(now);
          break;
        }
      }
      if (n < this.mss && !this.noDelay && seqGt(this.sndNxt, this.sndUna)) {
        // Nagle (RFC 9293 §3.7.4): one small segment in flight at a time.
        if (!(this.finQueued && n === avail)) break;
      }
      let flags = ACK;
      if (n === avail) flags |= PSH;
      const withFin = this.finQueued && this.#finSeq < 0 && n === avail;
      if (withFin) flags |= FIN;
      // A segment that could not leave (no buffer, no route, too big) is not retried in a loop.
      if (!this.#transmitNew(pos, n, flags, now)) break;
    }
    // A FIN with no data left to carry it.
    if (
      this.finQueued && this.#finSeq < 0 &&
      seqDiff(this.sndNxt, this.sndUna) === this.sendRing.length
    ) {
      this.#transmitNew(this.sendRing.length, 0, ACK | FIN, now);
    }
    this.#armXmitTimer(now);
  }

  #transmitNew(pos: number, n: number, flags: number, now: number): boolean {
    const seq = this.sndNxt;
    if (!this.#send(seq, flags, pos, n)) return false;
    const fin = (flags & FIN) !== 0;
    const end = seqAdd(seq, n + (fin ? 1 : 0));
    this.#txq.push({
      start: seq,
      end,
      xmitTime: now,
      xmits: 1,
      sacked: false,
      lost: false,
      fin,
    });
    if (fin) this.#finSeq = seqAdd(seq, n);
    if (this.#rttSeq < 0 && !this.tsOk) {
      this.#rttSeq = seq;
      this.#rttTime = now;
    }
    this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    this.bytesSent += n;
    return true;
  }

  /** Resend ranges marked lost, oldest first, while the window has room (RFC 6675 §5). */
  #retransmitLost(now: number, gsoMax: number): void {
    const q = this.#txq;
    for (let i = this.#txHead; i < q.length && this.#lostBytes > 0; i++) {
      const s = q[i]!;
      if (!s.lost) continue;
      if (this.cc.cwnd - this.#pipe() <= 0 && !this.#forceOne) break;
      this.#forceOne = false;
      const size = seqDiff(s.end, s.start) - (s.fin ? 1 : 0);
      const max = gsoMax > this.mss ? Math.floor(gsoMax / this.mss) * this.mss : this.mss;
      if (size > max) this.#split(i, seqAdd(s.start, max));
      const seg = q[i]!;
      const n = seqDiff(seg.end, seg.start) - (seg.fin ? 1 : 0);
      let flags = ACK;
      if (seg.fin) flags |= FIN;
      if (!this.#send(seg.start, flags, seqDiff(seg.start, this.sndUna), n)) break;
      seg.lost = false;
      this.#lostBytes -= seqDiff(seg.end, seg.start);
      seg.xmits++;
      seg.xmitTime = now;
      this.retransmits++;
      this.host.counters.retransmittedSegments++;
      if (seqGe(seg.start, this.#rttSeq)) this.#rttSeq = -1; // Karn
    }
  }

  /** Send one retransmission even with a full window (the RTO's and the probe's). */
  #forceOne = false;

  // ================================================================ timers

  #setXmit(kind: number, at: number): void {
    this.#xmitKind = kind;
    this.#xmitAt = at;
    this.#arm();
  }

  #clearXmitTimer(): void {
    this.#xmitKind = XMIT_NONE;
    this.#xmitAt = -1;
  }

  /** The retransmission timer for what is in flight: RTO, or a tail loss probe first (RFC 8985 §7). */
  #armXmitTimer(now: number): void {
    if (this.state === TcpState.SYN_SENT || this.state === TcpState.SYN_RECEIVED) return;
    if (this.sndUna === this.sndMax) {
      if (this.#xmitKind !== XMIT_PROBE0) this.#clearXmitTimer();
      return;
    }
    if (this.#xmitKind === XMIT_REO && this.#xmitAt > now) return;
    const rto = this.#currentRto();
    if (
      this.sackOk && !this.inRecovery && !this.#tlpOutstanding && this.srtt >= 0 &&
      this.backoff === 0
    ) {
      // RFC 8985 §7.2: PTO = 2·SRTT, plus WCDelAckT for a single segment in flight.
      let pto = 2 * this.srtt;
      if (seqDiff(this.sndMax, this.sndUna) <= this.mss) pto += WC_DELACK_MS;
      pto = Math.max(pto, 2);
      if (pto < rto) {
        this.#setXmit(XMIT_TLP, now + pto);
        return;
      }
    }
    this.#setXmit(XMIT_RTO, now + rto);
  }

  #armPersist(now: number): void {
    if (this.#xmitKind === XMIT_PROBE0 && this.#xmitAt > now) return;
    const ms = Math.min(this.host.settings.maxRtoMs, Math.max(this.rto, 200) * 2 ** this.#probes);
    this.#setXmit(XMIT_PROBE0, now + ms);
  }

  #armKeepalive(): void {
    if (
      !this.keepAlive || this.state !== TcpState.ESTABLISHED && this.state !== TcpState.CLOSE_WAIT
    ) {
      if (this.state !== TcpState.TIME_WAIT && this.state !== TcpState.FIN_WAIT_2) {
        this.#keepAt = -1;
      }
      return;
    }
    this.#keepAt = this.#lastRecv + this.keepIdleMs;
    this.#arm();
  }

  #armFinTimeout(): void {
    this.#keepAt = this.host.now() + this.host.settings.finTimeoutMs;
    this.#arm();
  }

  #enterTimeWait(): void {
    this.state = TcpState.TIME_WAIT;
    this.#clearXmitTimer();
    this.#delackAt = -1;
    this.sendRing.clear();
    this.#txq = [];
    this.#txHead = 0;
    this.#keepAt = this.host.now() + this.host.settings.timeWaitMs;
    this.#arm();
    // The application sees the end of its stream now; the 2 MSL wait is the stack's.
    this.events.onReadable?.();
    this.events.onWritable?.();
  }

  /** (Re)schedule the one Clock timer at the earliest deadline, if earlier than it is set. */
  #arm(): void {
    let at = Infinity;
    if (this.#xmitAt >= 0) at = this.#xmitAt;
    if (this.#delackAt >= 0 && this.#delackAt < at) at = this.#delackAt;
    if (this.#keepAt >= 0 && this.#keepAt < at) at = this.#keepAt;
    if (at === Infinity || at >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.host.schedule(Math.max(0, at - this.host.now()), () => this.#fire());
  }

  #fire(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    if (this.state === TcpState.CLOSED) return;
    const now = this.host.now();
    if (this.#delackAt >= 0 && this.#delackAt <= now) {
      this.#delackAt = -1;
      if (this.#unackedBytes > 0) {
        this.host.counters.delayedAcks++;
        this.#sendAck();
      }
    }
    if (this.#xmitAt >= 0 && this.#xmitAt <= now) {
      const kind = this.#xmitKind;
      this.#clearXmitTimer();
      this.#xmitFired(kind, now);
      if (this.#isClosed()) return;
    }
    if (this.#keepAt >= 0 && this.#keepAt <= now) {
      this.#keepAt = -1;
      this.#keepFired(now);
      if (this.#isClosed()) return;
    }
    this.#arm();
  }

  #xmitFired(kind: number, now: number): void {
    const s = this.host.settings;
    if (this.state === TcpState.SYN_SENT || this.state === TcpState.SYN_RECEIVED) {
      const limit = this.state === TcpState.SYN_SENT ? s.synRetries : s.synAckRetries;
      if (this.#synRetries >= limit) {
        if (this.state === TcpState.SYN_SENT) this.host.counters.attemptFails++;
        this.#finish(new Deno.errors.TimedOut("Connection timed out"));
        return;
      }
      this.#synRetries++;
      this.backoff++;
      this.#rttSeq = -1;
      this.host.counters.synRetransmits++;
      // RFC 6298 §5.7: a lost SYN leaves the RTO at 3 s once data flows; keep the backoff only.
      this.#sendSyn();
      return;
    }
    switch (kind) {
      case XMIT_REO:
        this.#detectLoss(now, true);
        this.#output();
        return;
      case XMIT_TLP:
        this.#tailLossProbe(now);
        return;
      case XMIT_PROBE0:
        this.#zeroWindowProbe(now);
        return;
      case XMIT_RTO:
        this.#retransmitTimeout(now);
        return;
    }
  }

  /**
   * RFC 8985 §7.3: send new data if the window allows, else the last
   * segment again. The probe carries PSH: it is often the only segment the
   * receiver holds unacknowledged (the ACK of what came before was lost),
   * and a receiver delays the ACK of one full-sized segment (Linux by 40
   * ms, longer than the probe's 2·SRTT allows for) unless it is pushed:
   * Linux then ACKs once the application has read it (ICSK_ACK_PUSHED,
   * tcp_measure_rcv_mss / tcp_cleanup_rbuf), as {@link read} does here.
   */
  #tailLossProbe(now: number): void {
    this.host.counters.tailLossProbes++;
    this.#tlpOutstanding = true;
    const pos = seqDiff(this.sndNxt, this.sndUna);
    const avail = this.sendRing.length - pos;
    const wndRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    if (avail > 0 && wndRoom > 0) {
      const n = Math.min(avail, wndRoom, this.mss);
      this.#transmitNew(pos, n, ACK | PSH, now);
    } else {
      // The last range in flight, at most one MSS of it.
      const q = this.#txq;
      for (let i = q.length - 1; i >= this.#txHead; i--) {
        const seg = q[i]!;
        if (seg.sacked) continue;
        const len = seqDiff(seg.end, seg.start) - (seg.fin ? 1 : 0);
        const n = Math.min(len, this.mss);
        const start = seqAdd(seg.start, len - n);
        let flags = ACK | PSH;
        if (seg.fin) flags |= FIN;
        if (this.#send(start, flags, seqDiff(start, this.sndUna), n)) {
          seg.xmits++;
          this.retransmits++;
          this.host.counters.retransmittedSegments++;
        }
        break;
      }
    }
    this.#setXmit(XMIT_RTO, now + this.#currentRto());
  }

  /** RFC 6298 §5.4-5.6 and RFC 5681 §3.1: back off, shrink to one segment, resend from SND.UNA. */
  #retransmitTimeout(now: number): void {
    const s = this.host.settings;
    if (this.backoff >= s.retries2) {
      this.#finish(new Deno.errors.TimedOut("Connection timed out"));
      return;
    }
    this.host.counters.timeouts++;
    this.#blackholeFallback();
    if (this.backoff === 0) this.cc.onTimeout(this.mss, now, this.#pipe());
    else this.cc.cwnd = this.mss;
    this.backoff++;
    this.#rttSeq = -1;
    this.inRecovery = true;
    this.#recoveryPoint = this.sndMax;
    // RFC 6675 §5.1 / Linux: everything not SACKed is taken as lost.
    const q = this.#txq;
    for (let i = this.#txHead; i < q.length; i++) this.#markLost(q[i]!);
    this.#forceOne = true;
    this.#retransmitLost(now, this.host.gsoMax(this));
    this.#setXmit(XMIT_RTO, now + this.#currentRto());
  }

  /**
   * RFC 4821 §1 / Linux's tcp_mtu_probing = 1: RTOs in a row with segments
   * larger than the base MSS and no ICMP can be a PMTU black hole: lower the
   * MSS to the base (then halve it on the next black hole), never below
   * RFC 9293's default send MSS.
   */
  #blackholeFallback(): void {
    const s = this.host.settings;
    if (!s.mtuProbing || this.backoff + 1 < s.retries1) return;
    const floor = this.family === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6;
    const cur = this.mss + (this.tsOk ? 12 : 0);
    if (cur <= floor) return;
    // The first black hole takes the base MSS, the next ones halve it (Linux's search_low).
    const next = Math.max(floor, cur > s.baseMss ? s.baseMss : cur >> 1);
    if (next >= cur) return;
    this.host.counters.pmtuBlackholeFallbacks++;
    this.#setMss(next);
  }

  /** The persist timer (RFC 9293 §3.8.6.1): a segment the peer must ACK with its window. */
  #zeroWindowProbe(now: number): void {
    const pos = seqDiff(this.sndNxt, this.sndUna);
    const avail = this.sendRing.length - pos;
    const wndRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    if (avail > 0 && wndRoom > 0 && wndRoom < Math.min(avail, this.mss)) {
      // RFC 9293 §3.8.6.2.1: the override timeout ends sender SWS avoidance. Send what
      // the window takes (Linux's tcp_write_wakeup): its ACK reports the window again,
      // which a lost window update would otherwise never do.
      this.#transmitNew(pos, wndRoom, ACK, now);
      this.#armXmitTimer(now);
      return;
    }
    if (avail <= 0 || this.sndWnd > 0) {
      this.#output();
      return;
    }
    if (this.#probes >= this.host.settings.retries2) {
      this.#finish(new Deno.errors.TimedOut("Connection timed out"));
      return;
    }
    this.host.counters.zeroWindowProbesSent++;
    // As Linux: an old sequence (SND.UNA − 1) with no data, which any receiver answers.
    this.#send(seqAdd(this.sndUna, -1), ACK, 0, 0);
    this.#probes++;
    this.#armPersist(now);
  }

  #keepFired(now: number): void {
    if (this.state === TcpState.TIME_WAIT || this.state === TcpState.FIN_WAIT_2) {
      this.#finish(null);
      return;
    }
    if (!this.keepAlive) return;
    const idle = now - this.#lastRecv;
    if (idle < this.keepIdleMs) {
      this.#keepAt = this.#lastRecv + this.keepIdleMs;
      this.#probes = 0;
      return;
    }
    const sent = Math.floor((idle - this.keepIdleMs) / this.keepIntervalMs);
    if (sent >= this.keepCount) {
      this.host.counters.keepaliveTimeouts++;
      this.host.emitReset(this, this.sndNxt, -1);
      this.#finish(new Deno.errors.TimedOut("Connection timed out"));
      return;
    }
    this.host.counters.keepalivesSent++;
    this.#send(seqAdd(this.sndUna, -1), ACK, 0, 0);
    this.#keepAt = now + this.keepIntervalMs;
  }

  /** Grow the receive buffer when the reader keeps up (Linux's tcp_rcv_space_adjust). */
  #tuneReceiveBuffer(): void {
    const now = this.host.now();
    const rtt = Math.max(this.srtt < 0 ? 1 : this.srtt, 1);
    if (now - this.#copiedMark < rtt) return;
    const target = 4 * this.#copiedSince;
    this.#copiedMark = now;
    this.#copiedSince = 0;
    if (target > this.rcvLimit) {
      this.rcvLimit = Math.min(this.host.settings.rmemMax, target);
    }
  }

  /** The end: leave every table, stop the timer, tell the owner. */
  #finish(err: Error | null): void {
    if (this.state === TcpState.CLOSED && this.removed) return;
    this.state = TcpState.CLOSED;
    if (err !== null && this.error === null) this.error = err;
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
    this.#clearXmitTimer();
    this.#delackAt = -1;
    this.#keepAt = -1;
    this.sendRing.clear();
    if (err !== null) this.recvRing.clear();
    this.#txq = [];
    this.#txHead = 0;
    this.host.remove(this);
    const ev = this.events;
    ev.onReadable?.();
    ev.onWritable?.();
    ev.onClosed?.(err);
  }

  /** Clock ms of the last duplicate ACK sent for a bare out-of-window segment. */
  #lastOowAck = -Infinity;

  // ---- ECN (RFC 3168 §6.1)
  /** ECN was negotiated on the handshake. */
  ecnOk = false;
  /** A CE mark arrived: every ACK carries ECE until the peer's CWR. */
  #ecnEcho = false;
  /** We reduced the window for an ECE: the next new data segment carries CWR. */
  #ecnCwr = false;
  #ecnRecoveryPoint = 0;
  /** @internal The ECN codepoint of the IP header being built (2: ECT(0)). */
  ipEcn = 0;

  /** The last ICMP error noted while established (a soft error, RFC 1122 §4.2.3.9), or null. */
  softError: Error | null = null;

  /**
   * @internal An ICMP hard error about this connection (Linux's
   * tcp_v4_err / tcp_v6_err): fatal during the handshake, only noted after.
   */
  icmpError(err: Error): void {
    if (this.state === TcpState.SYN_SENT || this.state === TcpState.SYN_RECEIVED) {
      if (this.state === TcpState.SYN_SENT) this.host.counters.attemptFails++;
      this.#finish(err);
      return;
    }
    this.softError = err;
  }

  /** @internal TIME-WAIT reuse (RFC 6191): may a new SYN take this connection's place? */
  timeWaitReusable(seg: TcpSegment): boolean {
    if (this.state !== TcpState.TIME_WAIT) return false;
    if (this.tsOk && seg.opts.hasTimestamps) return seqGt(seg.opts.tsVal, this.tsRecent);
    return seqGt(seg.seq, this.rcvNxt);
  }

  /** @internal Drop a TIME-WAIT connection now (its place is being reused). */
  dropTimeWait(): void {
    this.#finish(null);
  }
}
