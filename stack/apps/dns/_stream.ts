/**
 * DNS messages on a byte stream (RFC 1035 §4.2.2, RFC 7766 §8): each
 * message is preceded by its length as a 16-bit big-endian number, and a
 * stream carries any number of them, split across segments or several to a
 * segment.
 *
 * @module
 */

/** Where the reader takes bytes from: a TCP connection's `read`. */
export interface ByteSource {
  /** Copy up to `dst.length` bytes into `dst`; 0 when none are there now. */
  read(dst: Uint8Array): number;
}

/** Largest message a stream carries: the 16-bit length's reach. */
export const DNS_STREAM_MAX = 65_535;

/**
 * Reassembles length-prefixed DNS messages from a stream. It reads no
 * byte past the message it completes, so whatever follows stays in the
 * connection (back-pressure: a reader that stops asking leaves the window
 * to close).
 */
export class DnsStreamReader {
  #buf = new Uint8Array(2 + 512);
  #have = 0;

  /** The next whole message (a copy of its bytes, prefix removed), or null when `src` ran dry first. */
  next(src: ByteSource): Uint8Array | null {
    for (;;) {
      if (this.#have < 2) {
        const n = src.read(this.#buf.subarray(this.#have, 2));
        if (n === 0) return null;
        this.#have += n;
        continue;
      }
      const need = 2 + ((this.#buf[0]! << 8) | this.#buf[1]!);
      if (this.#have < need) {
        if (this.#buf.length < need) {
          const b = new Uint8Array(
            Math.min(2 + DNS_STREAM_MAX, Math.max(need, 2 * this.#buf.length)),
          );
          b.set(this.#buf.subarray(0, this.#have));
          this.#buf = b;
        }
        const n = src.read(this.#buf.subarray(this.#have, need));
        if (n === 0) return null;
        this.#have += n;
        continue;
      }
      const msg = this.#buf.slice(2, need);
      this.#have = 0;
      return msg;
    }
  }

  /** True while a message is begun but not complete. */
  get partial(): boolean {
    return this.#have > 0;
  }
}

/** `msg` with its 2-byte length in front, ready to write to a stream. */
export function dnsStreamFrame(msg: Uint8Array): Uint8Array {
  if (msg.length > DNS_STREAM_MAX) throw new RangeError("DNS message longer than 65535 bytes");
  const out = new Uint8Array(2 + msg.length);
  out[0] = msg.length >>> 8;
  out[1] = msg.length & 0xff;
  out.set(msg, 2);
  return out;
}
