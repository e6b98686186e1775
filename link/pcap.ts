/**
 * A sniffer: {@link PcapEndpoint} wraps any {@link LinkEndpoint} and writes
 * both directions to a classic pcap file (magic 0xa1b2c3d4, microsecond
 * timestamps, LINKTYPE_ETHERNET) that tshark and Wireshark read. Received
 * frames are recorded before they are dispatched, written frames once the
 * inner link accepted them. GSO super-frames are recorded as they are.
 *
 * Records accumulate in one fixed buffer that is written out when full,
 * at most every `flushIntervalMs`, and on close: no allocation per packet.
 *
 * @module
 */
import { type Clock, SystemClock, type Timer } from "../stack/clock.ts";
import type { LinkEndpoint, NetworkDispatcher } from "../stack/link_endpoint.ts";
import type { PacketBuffer } from "../stack/wire/packet_buffer.ts";

/** pcap magic for microsecond timestamps, written in host (little-endian) order. */
export const PCAP_MAGIC = 0xa1b2c3d4;
/** LINKTYPE_ETHERNET. */
export const LINKTYPE_ETHERNET = 1;
/** Largest number of bytes recorded per frame. */
export const PCAP_SNAPLEN = 262_144;
/** Bytes of the pcap file header. */
export const PCAP_FILE_HEADER_LEN = 24;
/** Bytes of a pcap record header. */
export const PCAP_RECORD_HEADER_LEN = 16;

/** Where a {@link PcapWriter} puts its bytes (a `Deno.FsFile` is one). */
export interface PcapSink {
  writeSync(p: Uint8Array): number;
  close?(): void;
}

/** Options of {@link PcapWriter}. */
export interface PcapWriterOptions {
  /** Timestamps come from `clock.now()`; default the system clock. */
  clock?: Clock;
  /**
   * Unix time in ms at `clock.now() === 0`; default `Date.now() - clock.now()`
   * when the writer is made, so timestamps are wall-clock times.
   */
  epochOffsetMs?: number;
  /** Bytes buffered before a write. Default 1 MiB (at least one full record). */
  bufferSize?: number;
  /** Write buffered records at most this long after they arrive. Default 1000; 0 disables. */
  flushIntervalMs?: number;
}

/** Appends Ethernet frames to a pcap stream. */
export class PcapWriter {
  /** Records written. */
  records = 0;
  readonly #sink: PcapSink;
  readonly #clock: Clock;
  readonly #epoch: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #flushMs: number;
  readonly #flushFn = () => {
    this.#timer = null;
    this.flush();
  };
  #timer: Timer | null = null;
  #len = 0;
  #closed = false;

  /**
   * @param sink where bytes go; the file header is written at once
   * @param opts clock, epoch, buffer size, flush interval
   */
  constructor(sink: PcapSink, opts: PcapWriterOptions = {}) {
    this.#sink = sink;
    this.#clock = opts.clock ?? new SystemClock();
    this.#epoch = opts.epochOffsetMs ?? Date.now() - this.#clock.now();
    const size = Math.max(
      opts.bufferSize ?? 1 << 20,
      PCAP_RECORD_HEADER_LEN + PCAP_SNAPLEN,
    );
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
    this.#flushMs = opts.flushIntervalMs ?? 1000;
    const v = this.#view;
    v.setUint32(0, PCAP_MAGIC, true);
    v.setUint16(4, 2, true); // version 2.4
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, PCAP_SNAPLEN, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.#len = PCAP_FILE_HEADER_LEN;
  }

  /** Append `pkt.data[pkt.start, pkt.end)` stamped with the clock's time. */
  write(pkt: PacketBuffer): void {
    if (this.#closed) return;
    const orig = pkt.end - pkt.start;
    if (orig < 0) return;
    const incl = orig > PCAP_SNAPLEN ? PCAP_SNAPLEN : orig;
    if (this.#len + PCAP_RECORD_HEADER_LEN + incl > this.#buf.length) this.flush();
    const ms = this.#epoch + this.#clock.now();
    const sec = Math.floor(ms / 1000);
    const usec = Math.floor((ms - sec * 1000) * 1000);
    const v = this.#view;
    const o = this.#len;
    v.setUint32(o, sec >>> 0, true);
    v.setUint32(o + 4, usec, true);
    v.setUint32(o + 8, incl, true);
    v.setUint32(o + 12, orig, true);
    // The one allocation per recorded frame: the subarray view that set() copies from.
    this.#buf.set(pkt.data.subarray(pkt.start, pkt.start + incl), o + PCAP_RECORD_HEADER_LEN);
    this.#len = o + PCAP_RECORD_HEADER_LEN + incl;
    this.records++;
    if (this.#timer === null && this.#flushMs > 0) {
      this.#timer = this.#clock.schedule(this.#flushMs, this.#flushFn);
    }
  }

  /** Write out everything buffered. */
  flush(): void {
    let off = 0;
    while (off < this.#len) off += this.#sink.writeSync(this.#buf.subarray(off, this.#len));
    this.#len = 0;
  }

  /** Flush and close the sink. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#sink.close?.();
  }
}

/** Options of {@link PcapEndpoint}. */
export interface PcapEndpointOptions extends PcapWriterOptions {
  /** File to (re)create; or give `sink`. */
  path?: string;
  /** Where to write instead of `path`. */
  sink?: PcapSink;
}

/**
 * A {@link LinkEndpoint} that records every frame crossing `inner`.
 *
 * @example
 * ```ts
 * import { PcapEndpoint } from "./pcap.ts";
 * import { MemoryLink } from "./memory.ts";
 * import { ManualClock } from "../stack/clock.ts";
 * const clock = new ManualClock();
 * const [a] = MemoryLink.pair({ clock });
 * const chunks: Uint8Array[] = [];
 * const sink = { writeSync: (p: Uint8Array) => (chunks.push(p.slice()), p.length) };
 * const ep = new PcapEndpoint(a, { sink, clock });
 * ep.close();
 * console.assert(chunks[0]!.length === 24);
 * ```
 */
export class PcapEndpoint implements LinkEndpoint, NetworkDispatcher {
  /** The wrapped link. */
  readonly inner: LinkEndpoint;
  /** The pcap stream. */
  readonly writer: PcapWriter;
  #dispatcher: NetworkDispatcher | null = null;

  /**
   * @param inner the link to record
   * @param opts `path` or `sink`, plus {@link PcapWriterOptions}
   */
  constructor(inner: LinkEndpoint, opts: PcapEndpointOptions) {
    this.inner = inner;
    let sink = opts.sink;
    if (sink === undefined) {
      if (opts.path === undefined) throw new Error("PcapEndpoint needs a path or a sink");
      sink = Deno.openSync(opts.path, { write: true, create: true, truncate: true });
    }
    this.writer = new PcapWriter(sink, opts);
  }

  /** The inner link's name. */
  get name(): string {
    return this.inner.name;
  }

  /** The inner link's capabilities. */
  get capabilities(): LinkEndpoint["capabilities"] {
    return this.inner.capabilities;
  }

  /** The inner link's MTU. */
  mtu(): number {
    return this.inner.mtu();
  }

  /** Record, then deliver to `d`. */
  attach(d: NetworkDispatcher | null): void {
    this.#dispatcher = d;
    this.inner.attach(d === null ? null : this);
  }

  /** Called by the inner link: record the frame, then dispatch it. */
  deliverFrame(pkt: PacketBuffer): void {
    this.writer.write(pkt);
    this.#dispatcher?.deliverFrame(pkt);
  }

  /** Called by the inner link when it fails. */
  linkDown(reason: string): void {
    this.writer.flush();
    this.#dispatcher?.linkDown?.(reason);
  }

  /** Write through the inner link; record the frame when it was accepted. */
  writePacket(pkt: PacketBuffer): boolean {
    const ok = this.inner.writePacket(pkt);
    if (ok) this.writer.write(pkt);
    return ok;
  }

  /** The inner link's state. */
  isUp(): boolean {
    return this.inner.isUp();
  }

  /** Flush and close the file, then close the inner link. */
  close(): void {
    this.writer.close();
    this.inner.close();
  }
}
