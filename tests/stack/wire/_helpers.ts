/**
 * Helpers shared by the wire tests: hex byte vectors with one commented
 * line per field, and buffers pre-filled with 0xa5 so that bytes an emit
 * forgot to write show up (as smoltcp's tests do).
 *
 * @module
 */
import { PacketBuffer } from "../../../stack/wire/packet_buffer.ts";

/** Bytes from hex strings (spaces allowed), one string per header field. */
export function hex(...parts: string[]): Uint8Array {
  const s = parts.join("").replace(/\s+/g, "");
  if (s.length % 2 !== 0) throw new Error(`odd hex length ${s.length}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Lower-case hex of `b`, for readable assertion failures. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Offset at which test packets are placed, so that views never assume offset 0. */
export const AT = 32;

/** A buffer holding `bytes` at {@link AT}, with `end` just after them (plus `extra` bytes). */
export function bufferWith(bytes: Uint8Array, extra = 0): PacketBuffer {
  const p = new PacketBuffer(AT + bytes.length + extra + 64);
  p.data.fill(0xa5);
  p.data.set(bytes, AT);
  p.setFrame(AT, bytes.length + extra);
  return p;
}

/** A buffer of 0xa5 with a frame of `len` bytes at {@link AT}. */
export function blankBuffer(len: number): PacketBuffer {
  const p = new PacketBuffer(AT + len + 64);
  p.data.fill(0xa5);
  p.setFrame(AT, len);
  return p;
}

/** The frame bytes of `p` (a copy). */
export function frameOf(p: PacketBuffer, len = p.length()): Uint8Array {
  return p.data.slice(p.start, p.start + len);
}

/** A deterministic 32-bit generator (mulberry32) for property tests. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
