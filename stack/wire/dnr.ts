/**
 * Discovery of Network-designated Resolvers (DNR, RFC 9463): the encrypted
 * DNS resolver a network names, in three wrappings that carry the same
 * fields — the IPv6 RA option (type 144, §6.1), the DHCPv6 option
 * OPTION_V6_DNR (144, §4.1) and the DHCPv4 option OPTION_V4_DNR (162,
 * §5.1).
 *
 * One resolver is an instance: a Service Priority (§3.1.1), an
 * Authentication Domain Name in DNS wire format (§3.1.2, uncompressed),
 * its addresses (§3.1.3), and its Service Parameters (§3.1.5, in the
 * SvcParams wire format of RFC 9460 §2.2: key, length, value, keys in
 * increasing order): `alpn` (key 1, which MUST be there), `port` (key 3)
 * and `dohpath` (key 7, RFC 9461 §5, for DoH). An instance without
 * addresses is in ADN-only mode (§3.1.6): the fields after the ADN are
 * left out.
 *
 * ```
 * RA (§6.1):      Type=144 | Length (8-octet units) | Service Priority (16)
 *                 Lifetime (32) | ADN Length (16) | ADN
 *                 [Addr Length (16) | IPv6 addresses | SvcParams Length (16) | SvcParams]
 *                 zero padding to 8 octets
 * DHCPv6 (§4.1):  OPTION_V6_DNR (16) | option-len (16) | Service Priority (16)
 *                 ADN Length (16) | ADN [Addr Length (16) | IPv6 addresses | SvcParams]
 * DHCPv4 (§5.1):  Code=162 | Len | DNR Instance Data ... (split per RFC 3396 when longer)
 *   an instance:  DNR-Instance-Data Length (16) | Service Priority (16)
 *                 ADN Length (8) | ADN [Addr Length (8) | IPv4 addresses | SvcParams]
 * ```
 *
 * @module
 */

/** The RA option type and the DHCPv6 option code (RFC 9463 §8.1, §8.2). */
export const DNR_RA_OPTION = 144;
export const DHCPV6_DNR_OPTION = 144;
/** The DHCPv4 option code (RFC 9463 §8.3). */
export const DHCPV4_DNR_OPTION = 162;

/** SvcParamKeys (RFC 9460 §14.3.2, RFC 9461 §5) the instances carry. */
export const SvcParamKey = { ALPN: 1, PORT: 3, DOHPATH: 7 } as const;

/** One encrypted DNS resolver. */
export interface DnrInstance {
  /** Service Priority: 1..65535, lower first (RFC 9460 §2.4.1; 0, alias mode, is not used). */
  priority: number;
  /** Authentication Domain Name, dotted, no trailing dot. */
  adn: string;
  /** The resolver's addresses (4 bytes each for DHCPv4, 16 otherwise); empty: ADN-only mode. */
  addresses: Uint8Array[];
  /** ALPN protocol IDs ("dot", "doq", "h2", "h3"). */
  alpn: string[];
  /** The port, or null for the protocol's default. */
  port: number | null;
  /** DoH URI template path (RFC 9461 §5), e.g. "/dns-query{?dns}"; null when not DoH. */
  dohpath: string | null;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The ADN as uncompressed DNS wire labels ending in the root (RFC 1035 §3.1). */
export function encodeAdn(adn: string): Uint8Array {
  const name = adn.endsWith(".") ? adn.slice(0, -1) : adn;
  if (name === "") throw new RangeError("DNR: the ADN cannot be the root");
  const out: number[] = [];
  for (const label of name.split(".")) {
    const b = enc.encode(label);
    if (b.length === 0 || b.length > 63) {
      throw new RangeError(`DNR: label "${label}" of "${adn}" must be 1..63 bytes`);
    }
    out.push(b.length, ...b);
  }
  out.push(0);
  if (out.length > 255) throw new RangeError(`DNR: "${adn}" is longer than 255 bytes`);
  return new Uint8Array(out);
}

/** The name in `b` (wire labels exactly filling it, no compression), or null. */
function decodeAdn(b: Uint8Array): string | null {
  const labels: string[] = [];
  let i = 0;
  for (;;) {
    if (i >= b.length) return null;
    const n = b[i]!;
    if (n === 0) return i + 1 === b.length && labels.length > 0 ? labels.join(".") : null;
    if (n > 63 || i + 1 + n > b.length) return null;
    labels.push(dec.decode(b.subarray(i + 1, i + 1 + n)));
    i += 1 + n;
  }
}

/** The SvcParams of an instance: alpn, then port, then dohpath (RFC 9460 §2.2: keys ascending). */
export function encodeSvcParams(i: Pick<DnrInstance, "alpn" | "port" | "dohpath">): Uint8Array {
  const out: number[] = [];
  const param = (key: number, value: number[]) => {
    if (value.length > 0xffff) throw new RangeError("DNR: a SvcParam longer than 65535 bytes");
    out.push(key >> 8, key & 255, value.length >> 8, value.length & 255, ...value);
  };
  // RFC 9460 §7.1.1: alpn-ids, each a length byte and its bytes.
  const alpn: number[] = [];
  for (const id of i.alpn) {
    const b = enc.encode(id);
    if (b.length === 0 || b.length > 255) throw new RangeError(`DNR: alpn "${id}" is 1..255 bytes`);
    alpn.push(b.length, ...b);
  }
  param(SvcParamKey.ALPN, alpn);
  if (i.port !== null) param(SvcParamKey.PORT, [i.port >> 8, i.port & 255]);
  if (i.dohpath !== null) param(SvcParamKey.DOHPATH, [...enc.encode(i.dohpath)]);
  return new Uint8Array(out);
}

/** The alpn, port and dohpath of SvcParams; null when malformed (keys out of order, lengths past the end, no alpn). */
export function parseSvcParams(
  b: Uint8Array,
): Pick<DnrInstance, "alpn" | "port" | "dohpath"> | null {
  const out: Pick<DnrInstance, "alpn" | "port" | "dohpath"> = {
    alpn: [],
    port: null,
    dohpath: null,
  };
  let i = 0, last = -1, alpnSeen = false;
  while (i < b.length) {
    if (i + 4 > b.length) return null;
    const key = (b[i]! << 8) | b[i + 1]!;
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    const v = b.subarray(i + 4, i + 4 + len);
    if (v.length !== len || key <= last) return null;
    last = key;
    if (key === SvcParamKey.ALPN) {
      alpnSeen = true;
      for (let j = 0; j < v.length;) {
        const n = v[j]!;
        if (n === 0 || j + 1 + n > v.length) return null;
        out.alpn.push(dec.decode(v.subarray(j + 1, j + 1 + n)));
        j += 1 + n;
      }
    } else if (key === SvcParamKey.PORT) {
      if (len !== 2) return null;
      out.port = (v[0]! << 8) | v[1]!;
    } else if (key === SvcParamKey.DOHPATH) {
      out.dohpath = dec.decode(v);
    }
    i += 4 + len;
  }
  return alpnSeen ? out : null;
}

const u16 = (n: number): number[] => [(n >> 8) & 255, n & 255];

/** The IPv6 wrappings' shared tail: ADN Length (16), ADN, then (unless ADN-only) Addr Length (16) and the addresses. */
function v6Tail(i: DnrInstance): number[] {
  const adn = encodeAdn(i.adn);
  const out = [...u16(adn.length), ...adn];
  if (i.addresses.length === 0) return out;
  out.push(...u16(16 * i.addresses.length));
  for (const a of i.addresses) {
    if (a.length !== 16) throw new RangeError("DNR: an IPv6 address is 16 bytes");
    out.push(...a);
  }
  return out;
}

/**
 * The RA option's body after Type and Length (RFC 9463 §6.1), unpadded:
 * Service Priority, Lifetime (seconds), ADN, addresses, SvcParams Length
 * and SvcParams.
 */
export function encodeDnrRaBody(i: DnrInstance, lifetime: number): Uint8Array {
  const out = [
    ...u16(i.priority),
    ...u16(lifetime >>> 16),
    ...u16(lifetime & 0xffff),
    ...v6Tail(i),
  ];
  if (i.addresses.length > 0) {
    const sp = encodeSvcParams(i);
    out.push(...u16(sp.length), ...sp);
  }
  return new Uint8Array(out);
}

/** An RA option's body (after Type and Length, padding included): the instance and its lifetime, or null when malformed. */
export function parseDnrRaBody(b: Uint8Array): { instance: DnrInstance; lifetime: number } | null {
  if (b.length < 8) return null;
  const priority = (b[0]! << 8) | b[1]!;
  const lifetime = ((b[2]! << 24) | (b[3]! << 16) | (b[4]! << 8) | b[5]!) >>> 0;
  const adnLen = (b[6]! << 8) | b[7]!;
  if (8 + adnLen > b.length) return null;
  const adn = decodeAdn(b.subarray(8, 8 + adnLen));
  if (adn === null || priority === 0) return null;
  let p = 8 + adnLen;
  const rest = b.subarray(p);
  const base = { priority, adn, addresses: [], alpn: [], port: null, dohpath: null };
  // ADN-only mode: nothing but padding (fewer than 8 zero bytes) after the ADN.
  if (rest.length < 8 && rest.every((x) => x === 0)) return { instance: base, lifetime };
  if (p + 2 > b.length) return null;
  const addrLen = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  if (addrLen === 0 || addrLen % 16 !== 0 || p + addrLen + 2 > b.length) return null;
  const addresses: Uint8Array[] = [];
  for (let k = 0; k < addrLen; k += 16) addresses.push(b.slice(p + k, p + k + 16));
  p += addrLen;
  const spLen = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  if (p + spLen > b.length) return null;
  const sp = parseSvcParams(b.subarray(p, p + spLen));
  p += spLen;
  // The padding: fewer than 8 bytes, all zero.
  if (sp === null || b.length - p >= 8 || b.subarray(p).some((x) => x !== 0)) return null;
  return { instance: { ...base, addresses, ...sp }, lifetime };
}

/** OPTION_V6_DNR's option-data (RFC 9463 §4.1): Service Priority, ADN, addresses, SvcParams (to the end). */
export function encodeDhcpv6Dnr(i: DnrInstance): Uint8Array {
  const out = [...u16(i.priority), ...v6Tail(i)];
  if (i.addresses.length > 0) out.push(...encodeSvcParams(i));
  return new Uint8Array(out);
}

/** OPTION_V6_DNR's option-data, or null when malformed. */
export function parseDhcpv6Dnr(b: Uint8Array): DnrInstance | null {
  if (b.length < 4) return null;
  const priority = (b[0]! << 8) | b[1]!;
  const adnLen = (b[2]! << 8) | b[3]!;
  if (4 + adnLen > b.length) return null;
  const adn = decodeAdn(b.subarray(4, 4 + adnLen));
  if (adn === null || priority === 0) return null;
  const base = { priority, adn, addresses: [], alpn: [], port: null, dohpath: null };
  let p = 4 + adnLen;
  if (p === b.length) return base;
  if (p + 2 > b.length) return null;
  const addrLen = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  if (addrLen === 0 || addrLen % 16 !== 0 || p + addrLen > b.length) return null;
  const addresses: Uint8Array[] = [];
  for (let k = 0; k < addrLen; k += 16) addresses.push(b.slice(p + k, p + k + 16));
  const sp = parseSvcParams(b.subarray(p + addrLen));
  return sp === null ? null : { ...base, addresses, ...sp };
}

/** One DHCPv4 DNR Instance Data (RFC 9463 §5.1), its 16-bit length first. */
export function encodeDhcpv4DnrInstance(i: DnrInstance): Uint8Array {
  const adn = encodeAdn(i.adn);
  const body = [...u16(i.priority), adn.length, ...adn];
  if (i.addresses.length > 0) {
    if (4 * i.addresses.length > 255) throw new RangeError("DNR: at most 63 IPv4 addresses");
    body.push(4 * i.addresses.length);
    for (const a of i.addresses) {
      if (a.length !== 4) throw new RangeError("DNR: an IPv4 address is 4 bytes");
      body.push(...a);
    }
    body.push(...encodeSvcParams(i));
  }
  if (body.length > 0xffff) throw new RangeError("DNR: an instance longer than 65535 bytes");
  return new Uint8Array([...u16(body.length), ...body]);
}

/** OPTION_V4_DNR's data (the instances one after another, RFC 3396 pieces already joined). */
export function encodeDhcpv4Dnr(list: readonly DnrInstance[]): Uint8Array {
  const parts = list.map(encodeDhcpv4DnrInstance);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The instances of OPTION_V4_DNR's data, or null when one is malformed. */
export function parseDhcpv4Dnr(b: Uint8Array): DnrInstance[] | null {
  const out: DnrInstance[] = [];
  let p = 0;
  while (p < b.length) {
    if (p + 2 > b.length) return null;
    const len = (b[p]! << 8) | b[p + 1]!;
    const d = b.subarray(p + 2, p + 2 + len);
    if (d.length !== len || len < 3) return null;
    p += 2 + len;
    const priority = (d[0]! << 8) | d[1]!;
    const adnLen = d[2]!;
    if (3 + adnLen > d.length) return null;
    const adn = decodeAdn(d.subarray(3, 3 + adnLen));
    if (adn === null || priority === 0) return null;
    const base = { priority, adn, addresses: [], alpn: [], port: null, dohpath: null };
    let q = 3 + adnLen;
    if (q === d.length) {
      out.push(base);
      continue;
    }
    const addrLen = d[q]!;
    q += 1;
    if (addrLen === 0 || addrLen % 4 !== 0 || q + addrLen > d.length) return null;
    const addresses: Uint8Array[] = [];
    for (let k = 0; k < addrLen; k += 4) addresses.push(d.slice(q + k, q + k + 4));
    const sp = parseSvcParams(d.subarray(q + addrLen));
    if (sp === null) return null;
    out.push({ ...base, addresses, ...sp });
  }
  return out;
}
