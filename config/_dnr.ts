/**
 * `dnr = [{ priority, adn, addresses, alpn, port, dohpath, lifetime }]`:
 * encrypted DNS resolvers (RFC 9463) in `[interface.ra]` (RA option 144),
 * `[interface.dhcp6]` (OPTION_V6_DNR 144) and `[interface.dhcp]`
 * (OPTION_V4_DNR 162). The same keys in the three places; `addresses` of
 * the family the option carries, `lifetime` in RAs only.
 *
 * @module
 */
import {
  DHCPV4_DNR_OPTION,
  type DnrInstance,
  encodeAdn,
  encodeDhcpv4Dnr,
  encodeDhcpv6Dnr,
  encodeDnrRaBody,
  formatIpAddress,
  ipv4IsMulticast,
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6IsUnspecified,
} from "../stack/wire/mod.ts";
import {
  addressAt,
  arr,
  at,
  type Ctx,
  describe,
  duration,
  idx,
  optInt,
  readTable,
  type Tbl,
} from "./_check.ts";

const KEYS = ["priority", "adn", "addresses", "alpn", "port", "dohpath", "lifetime"] as const;
/** RFC 1123 host names, the ADN of a TLS certificate (RFC 9463 §3.1.2). */
const HOSTNAME =
  /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;

/** Where the list goes: the family of its addresses, and for RAs the default lifetime (ms). */
export interface DnrPlace {
  family: 4 | 6;
  /** RA: the lifetime when none is given; null: DHCP (no lifetime key). */
  lifetime: number | null;
}

/**
 * Validate `t.dnr`: each entry's keys, with every error at its key path.
 * Returns the instances and (RA) their lifetimes in ms.
 */
export function validateDnr(
  ctx: Ctx,
  t: Tbl,
  path: string,
  place: DnrPlace,
): { instance: DnrInstance; lifetime: number }[] {
  const out: { instance: DnrInstance; lifetime: number }[] = [];
  const base = at(path, "dnr");
  const keys = place.lifetime === null ? KEYS.filter((k) => k !== "lifetime") : KEYS;
  arr(ctx, t, "dnr", path).forEach((v, i) => {
    const p = idx(base, i);
    const e = readTable(ctx, v, p, keys);
    if (!e) return;
    const n = ctx.issues.length;
    // RFC 9463 §3.1.1 (RFC 9460 §2.4.1): 0 is alias mode, which DNR does not use.
    const priority = optInt(ctx, e, "priority", p, 1, 65535);
    if (e.priority === undefined) ctx.err(at(p, "priority"), `"priority" is required (1-65535)`);
    let adn = "";
    if (e.adn === undefined) ctx.err(at(p, "adn"), `"adn" is required: the resolver's name`);
    else if (typeof e.adn !== "string" || !HOSTNAME.test(e.adn)) {
      ctx.err(at(p, "adn"), `expected a host name, found ${describe(e.adn)}`);
    } else {
      adn = e.adn.replace(/\.$/, "").toLowerCase();
      try {
        encodeAdn(adn);
      } catch (x) {
        ctx.err(at(p, "adn"), (x as Error).message);
      }
    }
    const addresses: Uint8Array[] = [];
    arr(ctx, e, "addresses", p).forEach((a, j) => {
      const ap = idx(at(p, "addresses"), j);
      const ip = addressAt(ctx, a, ap);
      if (ip === undefined) return;
      if (ip.family !== place.family) {
        return ctx.err(ap, `expected an IPv${place.family} address here, found "${a}"`);
      }
      // RFC 9463 §3.1.3: addresses to reach the resolver at: unicast ones.
      const bad = ip.family === 4
        ? ip.address === 0 || ipv4IsMulticast(ip.address) || ip.address >>> 24 === 127 ||
          ip.address === 0xffffffff
        : ipv6IsUnspecified(ip.address) || ipv6IsMulticast(ip.address) ||
          ipv6IsLoopback(ip.address);
      if (bad) {
        return ctx.err(
          ap,
          `${
            formatIpAddress(ip)
          }: an unspecified, loopback or multicast address reaches no resolver`,
        );
      }
      addresses.push(
        ip.family === 4
          ? new Uint8Array([
            ip.address >>> 24,
            (ip.address >>> 16) & 255,
            (ip.address >>> 8) & 255,
            ip.address & 255,
          ])
          : ip.address.slice(),
      );
    });
    const alpn: string[] = [];
    arr(ctx, e, "alpn", p).forEach((a, j) => {
      const ap = idx(at(p, "alpn"), j);
      const len = typeof a === "string" ? new TextEncoder().encode(a).length : 0;
      if (typeof a !== "string" || len === 0 || len > 255) {
        return ctx.err(
          ap,
          `expected an ALPN ID such as "dot", "doq", "h2" or "h3", found ${describe(a)}`,
        );
      }
      if (alpn.includes(a)) return ctx.err(ap, `"${a}" is named twice`);
      alpn.push(a);
    });
    const port = optInt(ctx, e, "port", p, 1, 65535) ?? null;
    let dohpath: string | null = null;
    if (e.dohpath !== undefined) {
      // RFC 9461 §5: a relative URI template with the "dns" variable.
      if (
        typeof e.dohpath !== "string" || !e.dohpath.startsWith("/") ||
        !/\{[?&]?([^}]*,)?dns[,}]/.test(e.dohpath)
      ) {
        ctx.err(
          at(p, "dohpath"),
          `expected a path template with the "dns" variable such as "/dns-query{?dns}" (RFC 9461 §5), found ${
            describe(e.dohpath)
          }`,
        );
      } else dohpath = e.dohpath;
    }
    const http = alpn.some((a) => a === "h2" || a === "h3");
    if (addresses.length === 0 && e.addresses === undefined) {
      // ADN-only mode (RFC 9463 §3.1.6): the name alone; service parameters need addresses.
      for (const k of ["alpn", "port", "dohpath"] as const) {
        if (e[k] !== undefined) {
          ctx.err(
            at(p, k),
            `"${k}" needs "addresses" (without them the option is ADN-only, RFC 9463 §3.1.6)`,
          );
        }
      }
    } else if (e.addresses !== undefined && (e.addresses as unknown[]).length === 0) {
      ctx.err(at(p, "addresses"), `at least one address, or leave "addresses" out (ADN-only mode)`);
    } else {
      // RFC 9463 §3.1.5: "alpn" is mandatory; DoH (h2, h3) needs "dohpath" (RFC 9461 §5).
      if (e.alpn === undefined) {
        ctx.err(at(p, "alpn"), `"alpn" is required with "addresses" (RFC 9463 §3.1.5)`);
      }
      if (http && dohpath === null && e.dohpath === undefined) {
        ctx.err(at(p, "dohpath"), `"dohpath" is required for DoH ("h2"/"h3" in alpn, RFC 9461 §5)`);
      }
      if (!http && dohpath !== null) {
        ctx.err(at(p, "dohpath"), `"dohpath" is for DoH: add "h2" or "h3" to alpn`);
      }
    }
    const lifetime = place.lifetime === null
      ? 0
      : duration(ctx, e, "lifetime", p, place.lifetime, 0, (0xffffffff - 1) * 1000, true);
    if (ctx.issues.length > n || priority === undefined) return;
    const instance: DnrInstance = { priority, adn, addresses, alpn, port, dohpath };
    // What the wrapping holds: an RA option up to 255 × 8 bytes, a DHCPv6 option 65535, a
    // DHCPv4 instance 65535 with at most 63 IPv4 addresses.
    try {
      if (place.family === 4) {
        if (addresses.length > 63) {
          throw new RangeError("at most 63 IPv4 addresses fit an instance");
        }
        encodeDhcpv4Dnr([instance]);
      } else if (place.lifetime !== null) {
        if (2 + encodeDnrRaBody(instance, 0).length > 255 * 8) {
          throw new RangeError("the option is longer than an RA option can be (2040 bytes)");
        }
      } else if (encodeDhcpv6Dnr(instance).length > 0xffff) {
        throw new RangeError("the option is longer than 65535 bytes");
      }
    } catch (x) {
      return ctx.err(p, (x as Error).message);
    }
    out.push({ instance, lifetime });
  });
  return out;
}

/** `[interface.dhcp] dnr`: the DHCPv4 custom option 162 its entries make (sent when asked for). */
export function dhcpv4DnrOption(
  list: { instance: DnrInstance }[],
): { code: number; value: Uint8Array; alwaysSend: boolean }[] {
  if (list.length === 0) return [];
  return [{
    code: DHCPV4_DNR_OPTION,
    value: encodeDhcpv4Dnr(list.map((x) => x.instance)),
    alwaysSend: false,
  }];
}
