/**
 * IPv6 interface identifiers: modified EUI-64 from a MAC address (RFC 4291
 * §2.5.1 and Appendix A), link-local addresses formed from them (RFC 4862
 * §5.3), and semantically opaque "stable privacy" identifiers (RFC 7217),
 * the scheme Linux uses with `addr_gen_mode=2` / `stable_secret`.
 *
 * Pure functions: no clock, no randomness of their own. The stable-privacy
 * hash is SHA-256 from `node:crypto` (synchronous), injectable for tests.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { parseIpv6 } from "../wire/ip_address.ts";

/** Length of an interface identifier in bytes (64 bits, RFC 4291 §2.5.1). */
export const INTERFACE_ID_LEN = 8;

/**
 * The modified EUI-64 interface identifier of a MAC address (RFC 4291
 * Appendix A): insert `ff:fe` between the OUI and the NIC-specific half,
 * then invert the universal/local bit (0x02 of the first byte). An 8-byte
 * EUI-64 is accepted too and only has its U/L bit inverted.
 *
 * @param mac a 6-byte MAC-48 (or an 8-byte EUI-64)
 * @returns 8 bytes
 * @throws RangeError when `mac` is neither 6 nor 8 bytes (a programming error)
 * @example
 * ```ts
 * import { eui64InterfaceId } from "./interface_id.ts";
 * const iid = eui64InterfaceId(new Uint8Array([0x00, 0x00, 0x5e, 0x10, 0x00, 0x01]));
 * console.assert(iid[0] === 0x02 && iid[3] === 0xff && iid[4] === 0xfe);
 * ```
 */
export function eui64InterfaceId(mac: Uint8Array): Uint8Array {
  const out = new Uint8Array(INTERFACE_ID_LEN);
  if (mac.length === 6) {
    out[0] = mac[0]!;
    out[1] = mac[1]!;
    out[2] = mac[2]!;
    out[3] = 0xff;
    out[4] = 0xfe;
    out[5] = mac[3]!;
    out[6] = mac[4]!;
    out[7] = mac[5]!;
  } else if (mac.length === 8) {
    out.set(mac);
  } else {
    throw new RangeError(`A MAC address is 6 bytes (or an EUI-64 8), got ${mac.length}`);
  }
  out[0]! ^= 0x02; // RFC 4291 App. A: the "u" bit is inverted.
  return out;
}

/**
 * The address `prefix/64` + `iid`: the first 8 bytes of `prefix`, then the
 * 8-byte interface identifier (RFC 4291 §2.5.4, RFC 4862 §5.5.3 (d)).
 *
 * @param prefix at least 8 bytes; only the first 8 are used
 * @param iid 8 bytes
 * @returns a new 16-byte address
 */
export function addressFromInterfaceId(prefix: Uint8Array, iid: Uint8Array): Uint8Array {
  if (prefix.length < 8 || iid.length !== INTERFACE_ID_LEN) {
    throw new RangeError(
      `Need an 8-byte prefix and an 8-byte interface ID, got ${prefix.length} and ${iid.length}`,
    );
  }
  const out = new Uint8Array(16);
  out.set(prefix.subarray(0, 8), 0);
  out.set(iid, 8);
  return out;
}

/**
 * The link-local address fe80::/64 + modified EUI-64 of `mac` (RFC 4862
 * §5.3, RFC 4291 §2.5.6), e.g. 52:54:00:12:34:56 → fe80::5054:ff:fe12:3456.
 *
 * @param mac a 6-byte MAC-48 (or an 8-byte EUI-64)
 * @returns 16 bytes
 * @example
 * ```ts
 * import { linkLocalFromMac } from "./interface_id.ts";
 * import { formatIpv6 } from "../wire/ip_address.ts";
 * const a = linkLocalFromMac(new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
 * console.assert(formatIpv6(a) === "fe80::5054:ff:fe12:3456");
 * ```
 */
export function linkLocalFromMac(mac: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[0] = 0xfe;
  out[1] = 0x80;
  out.set(eui64InterfaceId(mac), 8);
  return out;
}

/**
 * True when the 8-byte interface identifier at `iid[off]` is reserved and
 * must not be generated (RFC 7217 §5 defers to RFC 5453 §3's registry):
 * - all zeros: the Subnet-Router anycast identifier (RFC 4291 §2.6.1);
 * - 0200:5eff:fe00:0000 – 0200:5eff:feff:ffff: the identifiers of the IANA
 *   Ethernet block (RFC 5453 §3, including the Proxy Mobile IPv6 one);
 * - fdff:ffff:ffff:ff80 – fdff:ffff:ffff:ffff: the reserved subnet anycast
 *   identifiers (RFC 2526).
 */
export function isReservedInterfaceId(iid: Uint8Array, off = 0): boolean {
  let zero = true;
  for (let i = 0; i < 8; i++) {
    if (iid[off + i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) return true;
  if (
    iid[off] === 0x02 && iid[off + 1] === 0x00 && iid[off + 2] === 0x5e &&
    iid[off + 3] === 0xff && iid[off + 4] === 0xfe
  ) return true;
  if (
    iid[off] === 0xfd && iid[off + 1] === 0xff && iid[off + 2] === 0xff &&
    iid[off + 3] === 0xff && iid[off + 4] === 0xff && iid[off + 5] === 0xff &&
    iid[off + 6] === 0xff && (iid[off + 7]! & 0x80) === 0x80
  ) return true;
  return false;
}

/** The pseudorandom function F() of RFC 7217 §5: bytes in, a digest of at least 8 bytes out. */
export type InterfaceIdHash = (data: Uint8Array) => Uint8Array;

/** SHA-256, the default {@link InterfaceIdHash} (RFC 7217 §5 suggests SHA-1 or SHA-256). */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

/**
 * How many DAD_Counter values {@link stablePrivacyIid} tries before giving
 * up on reserved identifiers. With a real hash the chance of even one
 * reserved result is about 2^-24; only a broken injected hash reaches this.
 */
export const STABLE_PRIVACY_MAX_ATTEMPTS = 256;

/** A stable-privacy interface identifier with the DAD_Counter that produced it. */
export interface StablePrivacyIid {
  /** The 8-byte interface identifier. */
  iid: Uint8Array;
  /**
   * The DAD_Counter actually used: the one asked for, or higher when that
   * one gave a reserved identifier. After a DAD failure on this address the
   * caller retries with `dadCounter + 1` (RFC 7217 §6).
   */
  dadCounter: number;
}

const textEncoder = new TextEncoder();

/**
 * RFC 7217 §5 stable, semantically opaque interface identifier, reporting
 * the DAD_Counter it used:
 *
 *   RID = F(Prefix | Net_Iface | Network_ID | DAD_Counter | secret_key)
 *
 * and the identifier is the low-order 64 bits of RID ("starting from the
 * least significant bit"). Encoding: Prefix is its first 8 bytes; Net_Iface
 * and Network_ID each carry a 2-byte big-endian length in front, so that
 * the concatenation is unambiguous ("eth0"+"1" ≠ "eth"+"01"); a null
 * Network_ID is empty; DAD_Counter is 4 bytes big-endian; then the secret.
 * If the identifier is reserved ({@link isReservedInterfaceId}), DAD_Counter
 * is incremented and F recomputed, as RFC 7217 §5 says.
 *
 * Linux (`addr_gen_mode=2`, net/ipv6/addrconf.c
 * `ipv6_generate_stable_address`) builds a different byte string — one
 * 64-byte block of secret (16) | prefix (8) | hardware address (32, zero
 * padded) | dad_count (1), run through the SHA-1 compression function with
 * no finalisation, the first 8 digest bytes in host word order — so the
 * identifiers here do not equal a Linux host's for the same secret. What
 * RFC 7217 asks for holds for both: stable for one (prefix, interface,
 * network, secret), different across prefixes, and changed by DAD_Counter.
 *
 * @param prefix at least 8 bytes; the first 8 (the /64) are used
 * @param netIface the interface: a name (UTF-8 encoded) or bytes such as a MAC
 * @param networkId optional network identifier (e.g. an SSID), or null
 * @param dadCounter DAD attempts so far for this prefix, an integer ≥ 0
 * @param secret secret_key, at least 16 bytes (RFC 7217 §5: at least 128 bits)
 * @param hash F(); SHA-256 unless a test injects another
 * @returns the identifier and the DAD_Counter that produced it
 * @throws RangeError on a short prefix or secret, a bad counter, a digest
 *   shorter than 8 bytes, or {@link STABLE_PRIVACY_MAX_ATTEMPTS} reserved results
 */
export function stablePrivacyIid(
  prefix: Uint8Array,
  netIface: string | Uint8Array,
  networkId: Uint8Array | null,
  dadCounter: number,
  secret: Uint8Array,
  hash: InterfaceIdHash = sha256,
): StablePrivacyIid {
  if (prefix.length < 8) throw new RangeError(`The prefix needs 8 bytes, got ${prefix.length}`);
  if (secret.length < 16) {
    throw new RangeError(`The secret key needs at least 16 bytes (128 bits), got ${secret.length}`);
  }
  if (!Number.isInteger(dadCounter) || dadCounter < 0 || dadCounter > 0xffffffff) {
    throw new RangeError(`DAD_Counter must be an integer from 0 to 2^32-1, got ${dadCounter}`);
  }
  const iface = typeof netIface === "string" ? textEncoder.encode(netIface) : netIface;
  const net = networkId ?? new Uint8Array(0);
  if (iface.length > 0xffff || net.length > 0xffff) {
    throw new RangeError("Net_Iface and Network_ID must each be under 64 KiB");
  }
  const buf = new Uint8Array(8 + 2 + iface.length + 2 + net.length + 4 + secret.length);
  const view = new DataView(buf.buffer);
  let o = 0;
  buf.set(prefix.subarray(0, 8), o);
  o += 8;
  view.setUint16(o, iface.length);
  buf.set(iface, o + 2);
  o += 2 + iface.length;
  view.setUint16(o, net.length);
  buf.set(net, o + 2);
  o += 2 + net.length;
  const counterOff = o;
  buf.set(secret, o + 4);

  let counter = dadCounter;
  for (let attempt = 0; attempt < STABLE_PRIVACY_MAX_ATTEMPTS; attempt++, counter++) {
    if (counter > 0xffffffff) break;
    view.setUint32(counterOff, counter);
    const rid = hash(buf);
    if (rid.length < INTERFACE_ID_LEN) {
      throw new RangeError(`F() returned ${rid.length} bytes; an interface ID needs 8`);
    }
    const iid = rid.slice(rid.length - INTERFACE_ID_LEN);
    if (!isReservedInterfaceId(iid)) return { iid, dadCounter: counter };
  }
  throw new RangeError(
    `F() gave only reserved interface IDs for DAD_Counter ${dadCounter} and the ${
      STABLE_PRIVACY_MAX_ATTEMPTS - 1
    } after it`,
  );
}

/**
 * RFC 7217 stable-privacy interface identifier: the `iid` of
 * {@link stablePrivacyIid} (see there for the construction, the reserved
 * identifier retry, and how it differs from Linux's byte layout). A caller
 * that retries after DAD failures should use {@link stablePrivacyIid}, which
 * also reports the DAD_Counter actually used.
 *
 * @returns 8 bytes, never a reserved identifier
 * @example
 * ```ts
 * import { stablePrivacyInterfaceId } from "./interface_id.ts";
 * import { parseIpv6 } from "../wire/ip_address.ts";
 * const secret = parseIpv6("2001:db8:5ec:2e7::1");
 * const p = parseIpv6("2001:db8:1:2::");
 * const a = stablePrivacyInterfaceId(p, "eth0", null, 0, secret);
 * const b = stablePrivacyInterfaceId(p, "eth0", null, 0, secret);
 * console.assert(a.every((x, i) => x === b[i])); // stable
 * ```
 */
export function stablePrivacyInterfaceId(
  prefix: Uint8Array,
  netIface: string | Uint8Array,
  networkId: Uint8Array | null,
  dadCounter: number,
  secret: Uint8Array,
  hash: InterfaceIdHash = sha256,
): Uint8Array {
  return stablePrivacyIid(prefix, netIface, networkId, dadCounter, secret, hash).iid;
}

/**
 * Parse a stable secret written the way Linux's
 * `net.ipv6.conf.<if>.stable_secret` sysctl takes and prints it: as IPv6
 * address text (e.g. `"2001:db8:5ec:2e7:1b7:9ff:a5c:1e4d"`). Surrounding
 * whitespace (the newline `/proc` prints) is ignored.
 *
 * @param text the secret in IPv6 address form
 * @returns 16 bytes
 * @throws AddressParseError when the text is not an IPv6 address
 * @example
 * ```ts
 * import { parseStableSecret } from "./interface_id.ts";
 * console.assert(parseStableSecret("2001:db8::1\n").length === 16);
 * ```
 */
export function parseStableSecret(text: string): Uint8Array {
  return parseIpv6(text.trim());
}
