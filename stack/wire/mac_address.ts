/**
 * IEEE 802 MAC addresses: 6 bytes, parsed from and formatted as
 * `02:00:5e:10:00:01`.
 *
 * @module
 */
import { AddressParseError } from "./ip_address.ts";

/** Bytes in a MAC address. */
export const MAC_LEN = 6;
/** ff:ff:ff:ff:ff:ff */
export const BROADCAST_MAC: Uint8Array = new Uint8Array([255, 255, 255, 255, 255, 255]);

/**
 * Parse `xx:xx:xx:xx:xx:xx` (or with `-`).
 *
 * @example
 * ```ts
 * import { parseMac, formatMac } from "./mac_address.ts";
 * console.assert(formatMac(parseMac("02:00:5E:10:00:01")) === "02:00:5e:10:00:01");
 * ```
 */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new AddressParseError(
      `Cannot parse MAC address "${text}": expected six hex pairs like 02:00:5e:10:00:01`,
    );
  }
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

/** Format 6 bytes at `a[off]` as `xx:xx:xx:xx:xx:xx`. */
export function formatMac(a: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(a[off + i]!.toString(16).padStart(2, "0"));
  return out.join(":");
}

/** True for a group (multicast or broadcast) address: the I/G bit is set. */
export function macIsMulticast(a: Uint8Array, off = 0): boolean {
  return (a[off]! & 1) === 1;
}

/** True for ff:ff:ff:ff:ff:ff. */
export function macIsBroadcast(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 6; i++) if (a[off + i] !== 0xff) return false;
  return true;
}

/** True when the 6 bytes at `a[ao]` and `b[bo]` are equal. */
export function macEqual(a: Uint8Array, b: Uint8Array, ao = 0, bo = 0): boolean {
  for (let i = 0; i < 6; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** The Ethernet multicast address of an IPv4 group (RFC 1112 §6.4): 01:00:5e + low 23 bits. */
export function ipv4MulticastMac(group: number): Uint8Array {
  return new Uint8Array([
    0x01,
    0x00,
    0x5e,
    (group >>> 16) & 0x7f,
    (group >>> 8) & 255,
    group & 255,
  ]);
}

/** The Ethernet multicast address of an IPv6 group (RFC 2464 §7): 33:33 + low 32 bits. */
export function ipv6MulticastMac(group: Uint8Array, off = 0): Uint8Array {
  return new Uint8Array([
    0x33,
    0x33,
    group[off + 12]!,
    group[off + 13]!,
    group[off + 14]!,
    group[off + 15]!,
  ]);
}

/**
 * A locally administered unicast MAC derived from a name, so a config
 * without `mac` still gets a stable address: 02:xx:xx:xx:xx:xx.
 */
export function macFromName(name: string): Uint8Array {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let h2 = Math.imul(h ^ 0x5bd1e995, 0x01000193) >>> 0;
  h2 ^= name.length;
  return new Uint8Array([0x02, h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255, h2 & 255]);
}
