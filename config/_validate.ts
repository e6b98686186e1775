/**
 * Validation of a parsed TOML tree into a {@link Config}. Every problem is
 * recorded in a {@link Ctx}; nothing here throws on bad input.
 *
 * @module
 */
import {
  AddressParseError,
  cidrsOverlap,
  formatCidr,
  formatIpAddress,
  type IpAddress,
  type IpCidr,
  ipv4Broadcast,
  ipv4CidrContains,
  ipv4IsLoopback,
  ipv4IsMulticast,
  ipv4IsThisNetwork,
  ipv4Mask,
  type Ipv6Cidr,
  ipv6CidrContains,
  ipv6Equal,
  ipv6IsLinkLocalUnicast,
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6IsUnspecified,
  ipv6Masked,
  macIsMulticast,
  parseCidr,
  parseIpAddress,
  parseIpv6,
  parseMac,
} from "../stack/wire/mod.ts";
import {
  addressAt,
  arr,
  at,
  bool,
  type Ctx,
  describe,
  describeShort,
  didYouMean,
  duration,
  editDistance,
  idx,
  int,
  isTable,
  oneOf,
  optBool,
  optDuration,
  optInt,
  optStr,
  readTable,
  reqStr,
  str,
  subTable,
  type Tbl,
} from "./_check.ts";
import { validateDhcp, validateDhcpClient } from "./_dhcp.ts";
import { validateDhcp6, validateDhcp6Client } from "./_dhcp6.ts";
import { applyDnsDefaults, validateDns } from "./_dns.ts";
import { validateTcp } from "./_tcp.ts";
import { validateDnr } from "./_dnr.ts";
import { validateSets } from "./_sets.ts";
import { CT_PER_SOURCE_RATE, ctPerSourceBurst } from "../stack/firewall/conntrack.ts";

export { addressAt };
import { BUILTIN_TARGETS, parseRule, type Rule, RuleError } from "./rule.ts";
import type {
  ChainConfig,
  Config,
  FamilyFlags,
  FamilyTables,
  FirewallConfig,
  InterfaceConfig,
  MetricsConfig,
  RaConfig,
  RaDelegatedConfig,
  RaDnsslConfig,
  RaPrefixConfig,
  RaRdnssConfig,
  RaRouteConfig,
  RouteConfig,
  RouterConfig,
  RouteType,
  StaticNeighborConfig,
  TableConfig,
  TableName,
} from "./types.ts";

const S = 1000;
const U32_MAX = 0xffffffff;

/** Interface names: a letter, then up to 14 of letters, digits, `_`, `.`, `-`. */
export const INTERFACE_NAME = /^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/;
/** Linux device names: at most 15 bytes (IFNAMSIZ - 1), no `/` or whitespace. */
const TAP_NAME = /^[a-zA-Z0-9_.-]{1,15}$/;
/** User chain names. */
const CHAIN_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,28}$/;

/** Options of {@link validateConfig}. */
export interface ValidateOptions {
  /** A lab node: `name` is allowed at the top, `tap` is not. */
  lab?: boolean;
  /** Hostname default (the node name in a lab). */
  hostname?: string;
}

export function cidrAt(
  ctx: Ctx,
  v: unknown,
  path: string,
  keepHost: boolean,
): IpCidr | undefined {
  if (typeof v !== "string") {
    ctx.err(path, `expected a prefix string such as "192.0.2.0/24", found ${describeShort(v)}`);
    return undefined;
  }
  try {
    return parseCidr(v, keepHost);
  } catch (e) {
    if (e instanceof AddressParseError) ctx.err(path, e.message);
    else throw e;
    return undefined;
  }
}

function v6CidrAt(ctx: Ctx, v: unknown, path: string): Ipv6Cidr | undefined {
  const c = cidrAt(ctx, v, path, false);
  if (c === undefined) return undefined;
  if (c.family !== 6) {
    ctx.err(path, `expected an IPv6 prefix, found "${v}"`);
    return undefined;
  }
  return c;
}

function macAt(ctx: Ctx, v: unknown, path: string): Uint8Array | undefined {
  if (typeof v !== "string") {
    ctx.err(path, `expected a MAC address string, found ${describeShort(v)}`);
    return undefined;
  }
  try {
    const m = parseMac(v);
    if (macIsMulticast(m)) {
      ctx.err(path, `MAC address "${v}" is a group address (the low bit of the first byte is set)`);
      return undefined;
    }
    if (m.every((b) => b === 0)) {
      ctx.err(path, `MAC address "${v}" is all zeros`);
      return undefined;
    }
    return m;
  } catch (e) {
    ctx.err(path, (e as Error).message);
    return undefined;
  }
}

function forwardingAt(ctx: Ctx, v: unknown, path: string, def: FamilyFlags): FamilyFlags {
  if (v === undefined) return { ...def };
  if (typeof v === "boolean") return { ipv4: v, ipv6: v };
  if (isTable(v)) {
    const t = readTable(ctx, v, path, ["ipv4", "ipv6"])!;
    return {
      ipv4: bool(ctx, t, "ipv4", path, def.ipv4),
      ipv6: bool(ctx, t, "ipv6", path, def.ipv6),
    };
  }
  ctx.err(
    path,
    `expected a boolean or a table { ipv4 = bool, ipv6 = bool }, found ${describeShort(v)}`,
  );
  return { ...def };
}

// ------------------------------------------------------------------ router

function validateRouter(ctx: Ctx, raw: unknown, path: string, hostnameDef: string): RouterConfig {
  const t = raw === undefined ? {} : readTable(ctx, raw, path, [
    "hostname",
    "forwarding",
    "icmp",
    "neighbor",
    "ipv4",
    "ipv6",
  ]) ?? {};
  const hostname = str(ctx, t, "hostname", path, hostnameDef);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(hostname)) {
    ctx.err(
      at(path, "hostname"),
      `bad hostname "${hostname}" (letters, digits, ".", "_" and "-", at most 63)`,
    );
  }
  const forwarding = forwardingAt(ctx, t.forwarding, at(path, "forwarding"), {
    ipv4: false,
    ipv6: false,
  });

  const ip = at(path, "icmp");
  const icmpT = subTable(ctx, t, "icmp", path, ["rate_limit", "burst"]);
  const icmp = {
    rateLimit: int(ctx, icmpT, "rate_limit", ip, 1000, 0, 1_000_000),
    burst: int(ctx, icmpT, "burst", ip, 50, 0, 1_000_000),
  };

  const np = at(path, "neighbor");
  const nT = subTable(ctx, t, "neighbor", path, [
    "max_entries",
    "base_reachable_time",
    "retrans_time",
    "probes",
    "delay_first_probe",
    "queue_len",
    "gc_stale_time",
  ]);
  const neighbor = {
    maxEntries: int(ctx, nT, "max_entries", np, 1024, 1, 1_000_000),
    baseReachableTime: duration(ctx, nT, "base_reachable_time", np, 30 * S, 1, 3_600 * S),
    retransTime: duration(ctx, nT, "retrans_time", np, 1 * S, 1, 3_600 * S),
    probes: int(ctx, nT, "probes", np, 3, 1, 255),
    delayFirstProbe: duration(ctx, nT, "delay_first_probe", np, 5 * S, 0, 3_600 * S),
    queueLen: int(ctx, nT, "queue_len", np, 64, 0, 65_535),
    gcStaleTime: duration(ctx, nT, "gc_stale_time", np, 60 * S, 1, 86_400 * S),
  };

  const p4 = at(path, "ipv4");
  const t4 = subTable(ctx, t, "ipv4", path, [
    "reassembly_memory",
    "reassembly_timeout",
    "send_redirects",
    "default_ttl",
  ]);
  const ipv4 = {
    reassemblyMemory: int(ctx, t4, "reassembly_memory", p4, 4_194_304, 0, 2 ** 31 - 1),
    reassemblyTimeout: duration(ctx, t4, "reassembly_timeout", p4, 30 * S, 1, 3_600 * S),
    sendRedirects: bool(ctx, t4, "send_redirects", p4, true),
    defaultTtl: int(ctx, t4, "default_ttl", p4, 64, 1, 255),
  };

  const p6 = at(path, "ipv6");
  const t6 = subTable(ctx, t, "ipv6", path, [
    "reassembly_memory",
    "reassembly_timeout",
    "send_redirects",
    "default_hop_limit",
    "dad_transmits",
    "retrans_timer",
    "addr_gen_mode",
    "stable_secret",
    "max_routers",
    "max_prefixes",
    "max_addresses",
  ]);
  const addrGenMode = oneOf(
    ctx,
    t6,
    "addr_gen_mode",
    p6,
    ["eui64", "stable-privacy"] as const,
    "eui64",
  );
  const secretText = optStr(ctx, t6, "stable_secret", p6);
  let stableSecret: Uint8Array | undefined;
  if (secretText !== undefined) {
    try {
      // Linux takes the RFC 7217 secret as a 128-bit value in IPv6-address form.
      stableSecret = parseIpv6(secretText);
    } catch (e) {
      ctx.err(
        at(p6, "stable_secret"),
        `${(e as Error).message} (the secret is 128 bits written like an IPv6 address)`,
      );
    }
    if (addrGenMode !== "stable-privacy") {
      ctx.err(
        at(p6, "stable_secret"),
        `stable_secret is only used with addr_gen_mode = "stable-privacy"`,
      );
    }
  } else if (addrGenMode === "stable-privacy") {
    ctx.err(
      at(p6, "stable_secret"),
      `addr_gen_mode = "stable-privacy" needs a stable_secret (RFC 7217)`,
    );
  }
  const ipv6 = {
    reassemblyMemory: int(ctx, t6, "reassembly_memory", p6, 4_194_304, 0, 2 ** 31 - 1),
    reassemblyTimeout: duration(ctx, t6, "reassembly_timeout", p6, 60 * S, 1, 3_600 * S),
    sendRedirects: bool(ctx, t6, "send_redirects", p6, true),
    defaultHopLimit: int(ctx, t6, "default_hop_limit", p6, 64, 1, 255),
    dadTransmits: int(ctx, t6, "dad_transmits", p6, 1, 0, 10),
    retransTimer: duration(ctx, t6, "retrans_timer", p6, 1 * S, 1, 3_600 * S),
    addrGenMode,
    ...(stableSecret ? { stableSecret } : {}),
    maxRouters: int(ctx, t6, "max_routers", p6, 16, 0, 10_000),
    maxPrefixes: int(ctx, t6, "max_prefixes", p6, 16, 0, 10_000),
    maxAddresses: int(ctx, t6, "max_addresses", p6, 16, 0, 10_000),
  };
  return { hostname, forwarding, icmp, neighbor, ipv4, ipv6 };
}

// ------------------------------------------------------------------ RA

const RA_KEYS = [
  "enabled",
  "interval",
  "router_lifetime",
  "reachable_time",
  "retrans_timer",
  "cur_hop_limit",
  "managed",
  "other_config",
  "preference",
  "mtu",
  "source_link_layer",
  "unicast_solicited",
  "prefixes",
  "rdnss",
  "dnssl",
  "routes",
  "pref64",
  "captive_portal",
  "dnr",
] as const;
const PREFERENCES = ["medium", "high", "low"] as const;
/** Lifetimes in RA options are 32-bit seconds; all ones means infinity. */
const LIFETIME_MAX = (U32_MAX - 1) * S;

function parseInterval(ctx: Ctx, t: Tbl, path: string): [number, number, boolean] {
  const def: [number, number, boolean] = [200 * S, 600 * S, false];
  const v = t.interval;
  if (v === undefined) return [def[0], def[1], true];
  const p = at(path, "interval");
  if (typeof v !== "string") {
    ctx.err(p, `expected a string such as "200s..600s", found ${describeShort(v)}`);
    return def;
  }
  const parts = v.split("..");
  if (parts.length > 2) {
    ctx.err(p, `expected "MIN..MAX" such as "200s..600s", found "${v}"`);
    return def;
  }
  const t2: Tbl = parts.length === 2
    ? { min: parts[0]!.trim(), max: parts[1]!.trim() }
    : { max: v };
  const n = ctx.issues.length;
  const max = optDuration(ctx, t2, "max", "", 0, Number.MAX_SAFE_INTEGER);
  const minGiven = optDuration(ctx, t2, "min", "", 0, Number.MAX_SAFE_INTEGER);
  // Re-home messages from the temporary table onto the real key.
  for (let i = n; i < ctx.issues.length; i++) ctx.issues[i]!.path = p;
  if (max === undefined || (parts.length === 2 && minGiven === undefined)) return def;
  // RFC 4861 §6.2.1: MaxRtrAdvInterval is 4..1800 s; MinRtrAdvInterval
  // is at least 3 s and at most 0.75 * Max, by default 0.33 * Max (0.75 * Max below 9 s).
  const min = minGiven ?? Math.max(3 * S, Math.round(max >= 9 * S ? 0.33 * max : 0.75 * max));
  let ok = true;
  if (max < 4 * S || max > 1800 * S) {
    ctx.err(
      p,
      `MaxRtrAdvInterval must be 4s to 1800s (RFC 4861 §6.2.1), found "${parts.at(-1)!.trim()}"`,
    );
    ok = false;
  }
  if (min < 3 * S) {
    ctx.err(p, `MinRtrAdvInterval must be at least 3s (RFC 4861 §6.2.1)`);
    ok = false;
  } else if (min > 0.75 * max) {
    ctx.err(p, `MinRtrAdvInterval must be at most 0.75 × MaxRtrAdvInterval (RFC 4861 §6.2.1)`);
    ok = false;
  }
  return ok ? [min, max, true] : def;
}

/**
 * `pref64 = "64:ff9b::/96"` or `{ prefix, lifetime }` (RFC 8781: /96, /64,
 * /56, /48, /40 or /32; lifetime default 3 × the max interval, at most
 * 65528 s) and `captive_portal = "https://…"` (RFC 8910).
 */
function validateRaExtras(
  ctx: Ctx,
  t: Tbl,
  path: string,
  maxInterval: number,
): Pick<RaConfig, "pref64" | "captivePortal"> {
  const out: Pick<RaConfig, "pref64" | "captivePortal"> = {};
  if (t.pref64 !== undefined) {
    const pp = at(path, "pref64");
    const pt = typeof t.pref64 === "string"
      ? { prefix: t.pref64 }
      : readTable(ctx, t.pref64, pp, ["prefix", "lifetime"]);
    if (pt) {
      const pfx = pt.prefix === undefined
        ? (ctx.err(at(pp, "prefix"), `"prefix" is required`), undefined)
        : v6CidrAt(ctx, pt.prefix, typeof t.pref64 === "string" ? pp : at(pp, "prefix"));
      const lifetime = duration(
        ctx,
        pt,
        "lifetime",
        pp,
        Math.min(3 * maxInterval, 65528 * S),
        8 * S,
        65528 * S,
      );
      if (pfx && ![96, 64, 56, 48, 40, 32].includes(pfx.prefixLen)) {
        ctx.err(
          pp,
          `a PREF64 prefix is /96, /64, /56, /48, /40 or /32 (RFC 8781 §4), not /${pfx.prefixLen}`,
        );
      } else if (pfx) {
        out.pref64 = { prefix: { address: pfx.address, prefixLen: pfx.prefixLen }, lifetime };
      }
    }
  }
  if (t.captive_portal !== undefined) {
    const cp = at(path, "captive_portal");
    const uri = typeof t.captive_portal === "string" ? t.captive_portal : "";
    if (!/^https:\/\/[^\s]+$/.test(uri) && uri !== "urn:ietf:params:capport:unrestricted") {
      ctx.err(
        cp,
        `expected an https:// URI (RFC 8910 §2) or "urn:ietf:params:capport:unrestricted", found ${
          describe(t.captive_portal)
        }`,
      );
    } else if (new TextEncoder().encode(uri).length > 2038) {
      ctx.err(cp, `the URI is too long for an RA option`);
    } else out.captivePortal = uri;
  }
  return out;
}

function validateRa(ctx: Ctx, raw: unknown, path: string, ifMtu: number): RaConfig {
  const t = raw === undefined ? {} : readTable(ctx, raw, path, RA_KEYS) ?? {};
  const [minInterval, maxInterval, intervalOk] = parseInterval(ctx, t, path);
  let routerLifetime = duration(ctx, t, "router_lifetime", path, 3 * maxInterval, 0, 9000 * S);
  // RFC 4861 §6.2.1: AdvDefaultLifetime is 0 or between MaxRtrAdvInterval and 9000 s.
  if (intervalOk && routerLifetime !== 0 && routerLifetime < maxInterval) {
    ctx.err(
      at(path, "router_lifetime"),
      `router_lifetime must be 0 or at least the maximum interval ${
        maxInterval / S
      }s (RFC 4861 §6.2.1)`,
    );
    routerLifetime = 3 * maxInterval;
  }
  const reachableTime = duration(ctx, t, "reachable_time", path, 0, 0, 3_600 * S);
  const retransTimer = duration(ctx, t, "retrans_timer", path, 0, 0, U32_MAX);
  const curHopLimit = int(ctx, t, "cur_hop_limit", path, 64, 0, 255);
  const mtu = optInt(ctx, t, "mtu", path, 1280, 65535);
  if (mtu !== undefined && mtu > ifMtu) {
    ctx.err(at(path, "mtu"), `RA mtu ${mtu} is larger than the interface mtu ${ifMtu}`);
  }
  const defLifetime = 3 * maxInterval;

  const prefixes: RaPrefixConfig[] = [];
  const delegated: RaDelegatedConfig[] = [];
  arr(ctx, t, "prefixes", path).forEach((pv, i) => {
    const pp = idx(at(path, "prefixes"), i);
    const pt = readTable(ctx, pv, pp, [
      "prefix",
      "from",
      "subnet",
      "on_link",
      "autonomous",
      "valid_lifetime",
      "preferred_lifetime",
      "decrement_lifetimes",
    ]);
    if (!pt) return;
    if (pt.from !== undefined) {
      // A /64 of the prefix delegated to another interface's DHCPv6 client (RFC 7084 L-2).
      for (const k of ["prefix", "valid_lifetime", "preferred_lifetime", "decrement_lifetimes"]) {
        if (pt[k] !== undefined) {
          ctx.err(
            at(pp, k),
            `"${k}" does not go with "from" (the delegation gives the prefix and its lifetimes)`,
          );
        }
      }
      const from = optStr(ctx, pt, "from", pp);
      if (from === undefined) return;
      delegated.push({
        from,
        fromPath: at(pp, "from"),
        subnet: optInt(ctx, pt, "subnet", pp, 0, U32_MAX) ?? 0,
        onLink: bool(ctx, pt, "on_link", pp, true),
        autonomous: bool(ctx, pt, "autonomous", pp, true),
      });
      return;
    }
    if (pt.subnet !== undefined) {
      ctx.err(at(pp, "subnet"), `"subnet" goes with "from" (a part of a delegated prefix)`);
    }
    const prefix = pt.prefix === undefined
      ? (ctx.err(at(pp, "prefix"), `"prefix" is required`), undefined)
      : v6CidrAt(ctx, pt.prefix, at(pp, "prefix"));
    const autonomous = bool(ctx, pt, "autonomous", pp, true);
    const validLifetime = duration(
      ctx,
      pt,
      "valid_lifetime",
      pp,
      86_400 * S,
      0,
      LIFETIME_MAX,
      true,
    );
    const preferredLifetime = duration(
      ctx,
      pt,
      "preferred_lifetime",
      pp,
      14_400 * S,
      0,
      LIFETIME_MAX,
      true,
    );
    if (preferredLifetime > validLifetime) {
      // RFC 4862 §5.5.3 (c): a preferred lifetime above the valid lifetime is ignored by hosts.
      ctx.err(at(pp, "preferred_lifetime"), `preferred_lifetime is longer than valid_lifetime`);
    }
    if (prefix) {
      if (ipv6IsUnspecified(prefix.address)) {
        // radvd reads "::/64" as "every /64 on this interface"; advertised
        // literally it would make hosts configure addresses in ::/64.
        ctx.err(
          at(pp, "prefix"),
          `${formatCidr(prefix)} is radvd's "every prefix of this interface", which tapir ` +
            `does not expand: list the interface's prefixes (e.g. "2001:db8:1::/64")`,
        );
      } else if (ipv6IsLinkLocalUnicast(prefix.address) || ipv6IsMulticast(prefix.address)) {
        ctx.err(
          at(pp, "prefix"),
          `${formatCidr(prefix)} is link-local or multicast; RA prefixes must not be`,
        );
      } else if (autonomous && prefix.prefixLen !== 64) {
        // RFC 4862 §5.5.3 (d) with RFC 4291 §2.5.1: SLAAC needs a 64-bit interface identifier.
        ctx.err(
          at(pp, "prefix"),
          `autonomous prefix ${
            formatCidr(prefix)
          } must be a /64 for SLAAC (RFC 4862 §5.5.3); set autonomous = false or use /64`,
        );
      }
      prefixes.push({
        prefix,
        onLink: bool(ctx, pt, "on_link", pp, true),
        autonomous,
        validLifetime,
        preferredLifetime,
        decrementLifetimes: bool(ctx, pt, "decrement_lifetimes", pp, false),
      });
    }
  });

  const rdnss: RaRdnssConfig[] = [];
  const loose: Uint8Array[] = [];
  arr(ctx, t, "rdnss", path).forEach((v, i) => {
    const ep = idx(at(path, "rdnss"), i);
    if (typeof v === "string") {
      const a = v6AddrAt(ctx, v, ep);
      if (a) loose.push(a);
      return;
    }
    const et = readTable(ctx, v, ep, ["addresses", "lifetime"]);
    if (!et) return;
    const addresses: Uint8Array[] = [];
    arr(ctx, et, "addresses", ep).forEach((av, j) => {
      const a = v6AddrAt(ctx, av, idx(at(ep, "addresses"), j));
      if (a) addresses.push(a);
    });
    if (et.addresses === undefined) ctx.err(at(ep, "addresses"), `"addresses" is required`);
    rdnss.push({
      addresses,
      lifetime: duration(ctx, et, "lifetime", ep, defLifetime, 0, LIFETIME_MAX, true),
    });
  });
  if (loose.length > 0) rdnss.unshift({ addresses: loose, lifetime: defLifetime });

  const dnssl: RaDnsslConfig[] = [];
  const looseD: string[] = [];
  arr(ctx, t, "dnssl", path).forEach((v, i) => {
    const ep = idx(at(path, "dnssl"), i);
    if (typeof v === "string") {
      if (checkDomain(ctx, v, ep)) looseD.push(v);
      return;
    }
    const et = readTable(ctx, v, ep, ["domains", "lifetime"]);
    if (!et) return;
    const domains: string[] = [];
    arr(ctx, et, "domains", ep).forEach((dv, j) => {
      const dp = idx(at(ep, "domains"), j);
      if (typeof dv !== "string") {
        ctx.err(dp, `expected a domain name string, found ${describeShort(dv)}`);
      } else if (checkDomain(ctx, dv, dp)) domains.push(dv);
    });
    if (et.domains === undefined) ctx.err(at(ep, "domains"), `"domains" is required`);
    dnssl.push({
      domains,
      lifetime: duration(ctx, et, "lifetime", ep, defLifetime, 0, LIFETIME_MAX, true),
    });
  });
  if (looseD.length > 0) dnssl.unshift({ domains: looseD, lifetime: defLifetime });

  const routes: RaRouteConfig[] = [];
  arr(ctx, t, "routes", path).forEach((v, i) => {
    const rp = idx(at(path, "routes"), i);
    const rt = readTable(ctx, v, rp, ["prefix", "preference", "lifetime"]);
    if (!rt) return;
    const prefix = rt.prefix === undefined
      ? (ctx.err(at(rp, "prefix"), `"prefix" is required`), undefined)
      : v6CidrAt(ctx, rt.prefix, at(rp, "prefix"));
    const preference = oneOf(ctx, rt, "preference", rp, PREFERENCES, "medium");
    const lifetime = duration(ctx, rt, "lifetime", rp, defLifetime, 0, LIFETIME_MAX, true);
    if (prefix) routes.push({ prefix, preference, lifetime });
  });

  return {
    enabled: bool(ctx, t, "enabled", path, false),
    minInterval,
    maxInterval,
    routerLifetime,
    reachableTime,
    retransTimer,
    curHopLimit,
    managed: bool(ctx, t, "managed", path, false),
    otherConfig: bool(ctx, t, "other_config", path, false),
    preference: oneOf(ctx, t, "preference", path, PREFERENCES, "medium"),
    ...(mtu !== undefined ? { mtu } : {}),
    sourceLinkLayer: bool(ctx, t, "source_link_layer", path, true),
    // radvd's AdvRASolicitedUnicast defaults to on (RFC 7772 §5.1.1): a
    // unicast answer skips the 3 s spacing of multicast RAs (RFC 4861 §6.2.6).
    unicastSolicited: bool(ctx, t, "unicast_solicited", path, true),
    prefixes,
    delegated,
    ...validateRaExtras(ctx, t, path, maxInterval),
    // RFC 9463 §6: encrypted DNS resolvers; lifetime as RDNSS's.
    dnr: validateDnr(ctx, t, path, { family: 6, lifetime: defLifetime }),
    rdnss,
    dnssl,
    routes,
  };
}

function v6AddrAt(ctx: Ctx, v: unknown, path: string): Uint8Array | undefined {
  const a = addressAt(ctx, v, path);
  if (!a) return undefined;
  if (a.family !== 6) {
    ctx.err(path, `expected an IPv6 address, found "${v}"`);
    return undefined;
  }
  return a.address;
}

function checkDomain(ctx: Ctx, d: string, path: string): boolean {
  const labels = d.replace(/\.$/, "").split(".");
  if (
    d.length > 253 || labels.some((l) => !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))
  ) {
    ctx.err(path, `bad domain name "${d}"`);
    return false;
  }
  return true;
}

// ------------------------------------------------------------------ interfaces

const INTERFACE_KEYS = [
  "name",
  "tap",
  "mac",
  "mtu",
  "addresses",
  "forwarding",
  "accept_ra",
  "offload",
  "capture",
  "send_redirects",
  "up",
  "neighbors",
  "ra",
  "dhcp",
  "dhcp6",
  "dhcp6_client",
  "dhcp_client",
] as const;

function checkInterfaceAddress(ctx: Ctx, c: IpCidr, text: string, path: string): boolean {
  if (c.family === 4) {
    const a = c.address;
    if (ipv4IsMulticast(a) || ipv4IsThisNetwork(a) || ipv4IsLoopback(a) || a === U32_MAX) {
      ctx.err(path, `"${text}" is not a unicast address an interface can have`);
      return false;
    }
    if (c.prefixLen < 31) {
      if (a === ipv4Broadcast(c)) {
        ctx.err(path, `"${text}" is the broadcast address of its prefix`);
        return false;
      }
      if (((a & ipv4Mask(c.prefixLen)) >>> 0) === a) {
        ctx.err(path, `"${text}" is the network address of its prefix (host part all zero)`);
        return false;
      }
    }
  } else {
    const a = c.address;
    if (ipv6IsMulticast(a) || ipv6IsUnspecified(a) || ipv6IsLoopback(a)) {
      ctx.err(path, `"${text}" is not a unicast address an interface can have`);
      return false;
    }
  }
  return true;
}

function validateInterface(
  ctx: Ctx,
  raw: unknown,
  path: string,
  router: RouterConfig,
  opts: ValidateOptions,
): { cfg: InterfaceConfig; addrPaths: string[] } | undefined {
  const t = readTable(ctx, raw, path, INTERFACE_KEYS);
  if (!t) return undefined;
  const nameText = reqStr(ctx, t, "name", path);
  let name = nameText ?? `#${path}`;
  if (nameText !== undefined && !INTERFACE_NAME.test(nameText)) {
    ctx.err(
      at(path, "name"),
      `bad interface name "${nameText}" (a letter, then up to 14 letters, digits, "_", "." or "-")`,
    );
    name = nameText;
  }
  let tap = name;
  if (t.tap !== undefined && opts.lab) {
    ctx.err(at(path, "tap"), `"tap" is not used in a lab: links connect interfaces (remove it)`);
  } else {
    const tapText = optStr(ctx, t, "tap", path);
    if (tapText !== undefined) {
      if (!TAP_NAME.test(tapText) || tapText === "." || tapText === "..") {
        ctx.err(
          at(path, "tap"),
          `bad TAP device name "${tapText}" (Linux allows at most 15 characters: letters, digits, "_", "." or "-")`,
        );
      }
      tap = tapText;
    } else if (nameText !== undefined && nameText.length > 15) {
      ctx.err(at(path, "tap"), `tap defaults to the name, which is longer than 15 characters`);
    }
  }
  const mac = t.mac === undefined ? undefined : macAt(ctx, t.mac, at(path, "mac"));
  const mtu = int(ctx, t, "mtu", path, 1500, 68, 65535);
  const addresses: IpCidr[] = [];
  const addrPaths: string[] = [];
  let dhcpWanted = false;
  arr(ctx, t, "addresses", path).forEach((v, i) => {
    const ap = idx(at(path, "addresses"), i);
    if (v === "dhcp") {
      if (dhcpWanted) ctx.err(ap, `"dhcp" is named twice`);
      dhcpWanted = true;
      return;
    }
    const c = cidrAt(ctx, v, ap, true);
    if (c && checkInterfaceAddress(ctx, c, v as string, ap)) {
      addresses.push(c);
      addrPaths.push(ap);
    }
  });
  const forwarding = forwardingAt(ctx, t.forwarding, at(path, "forwarding"), router.forwarding);
  const sr = optBool(ctx, t, "send_redirects", path);
  const capture = optStr(ctx, t, "capture", path);
  if (capture === "") ctx.err(at(path, "capture"), `capture file name is empty`);

  const neighbors: StaticNeighborConfig[] = [];
  arr(ctx, t, "neighbors", path).forEach((v, i) => {
    const np = idx(at(path, "neighbors"), i);
    const nt = readTable(ctx, v, np, ["address", "mac"]);
    if (!nt) return;
    const address = nt.address === undefined
      ? (ctx.err(at(np, "address"), `"address" is required`), undefined)
      : addressAt(ctx, nt.address, at(np, "address"));
    const nmac = nt.mac === undefined
      ? (ctx.err(at(np, "mac"), `"mac" is required`), undefined)
      : macAt(ctx, nt.mac, at(np, "mac"));
    if (!address || !nmac) return;
    const dup = neighbors.findIndex((n) => sameAddress(n.address, address));
    if (dup !== -1) {
      ctx.err(
        at(np, "address"),
        `duplicate static neighbor ${formatIpAddress(address)} (also ${
          idx(at(path, "neighbors"), dup)
        })`,
      );
      return;
    }
    neighbors.push({ address, mac: nmac });
  });

  const ra = validateRa(ctx, t.ra, at(path, "ra"), mtu);
  const dhcp = validateDhcp(ctx, t.dhcp, at(path, "dhcp"), name, addresses, mtu);
  const dhcp6 = validateDhcp6(ctx, t.dhcp6, at(path, "dhcp6"), name, addresses);
  // RFC 4861 §4.2 / RFC 8415 §6: hosts ask DHCPv6 for addresses when the RA's M flag is set, and
  // for other configuration when M or O is: a server this link's RAs do not point to goes unused.
  if (dhcp6.enabled && ra.enabled) {
    const s = dhcp6.settings;
    if ((s.pools.length > 0 || dhcp6.delegatedPool !== null) && !ra.managed) {
      ctx.err(
        at(at(path, "dhcp6"), "pools"),
        `hosts ask DHCPv6 for addresses only when the RA's M flag is set: add managed = true to [interface.ra] (or drop the pools)`,
      );
    } else if (
      s.pools.length === 0 && s.pdPools.length === 0 && dhcp6.delegatedPool === null &&
      !ra.managed && !ra.otherConfig
    ) {
      ctx.err(
        at(path, "dhcp6"),
        `a stateless DHCPv6 server is asked only when the RA's O flag is set: add other_config = true to [interface.ra]`,
      );
    }
  }
  if (dhcp.enabled && dhcp6.enabled && dhcp.leaseFile === dhcp6.leaseFile) {
    ctx.err(
      at(at(path, "dhcp6"), "lease_file"),
      `the DHCPv6 server needs a lease file of its own (${dhcp6.leaseFile} is also dhcp.lease_file)`,
    );
  }
  if (dhcp6.delegatedPool !== null && ra.delegated.length === 0) {
    ctx.err(
      at(at(path, "dhcp6"), "delegated_pool"),
      `delegated_pool needs a delegated prefix on this interface: [interface.ra] prefixes = [{ from = "wan0", subnet = 1 }]`,
    );
  }
  const dhcp6Client = validateDhcp6Client(ctx, t.dhcp6_client, at(path, "dhcp6_client"));
  const dhcpClient = validateDhcpClient(
    ctx,
    t.dhcp_client,
    at(path, "dhcp_client"),
    dhcpWanted,
    router.hostname,
  );

  // RFC 8200 §5: every link that carries IPv6 must have an MTU of 1280 or more.
  if (mtu < 1280 && addresses.some((a) => a.family === 6)) {
    ctx.err(
      at(path, "mtu"),
      `mtu ${mtu} is below 1280, the IPv6 minimum (RFC 8200 §5), on an interface with IPv6 addresses`,
    );
  }

  const cfg: InterfaceConfig = {
    name,
    tap,
    ...(mac ? { mac } : {}),
    mtu,
    addresses,
    forwarding,
    acceptRa: bool(ctx, t, "accept_ra", path, false),
    offload: bool(ctx, t, "offload", path, true),
    ...(capture ? { capture } : {}),
    sendRedirects: { ipv4: sr ?? router.ipv4.sendRedirects, ipv6: sr ?? router.ipv6.sendRedirects },
    up: bool(ctx, t, "up", path, true),
    neighbors,
    ra,
    dhcp,
    dhcp6,
    dhcpClient,
    dhcp6Client,
  };
  return { cfg, addrPaths };
}

/** True when two addresses are equal. */
export function sameAddress(a: IpAddress, b: IpAddress): boolean {
  if (a.family !== b.family) return false;
  return a.family === 4 ? a.address === b.address : ipv6Equal(a.address, b.address as Uint8Array);
}

function cidrNetworkEqual(a: IpCidr, b: IpCidr): boolean {
  return a.family === b.family && a.prefixLen === b.prefixLen && cidrsOverlap(a, b);
}

function cidrContains(c: IpCidr, a: IpAddress): boolean {
  if (c.family !== a.family) return false;
  return c.family === 4
    ? ipv4CidrContains(c, a.address as number)
    : ipv6CidrContains(c, a.address as Uint8Array);
}

function crossCheckInterfaces(
  ctx: Ctx,
  ifs: { cfg: InterfaceConfig; path: string; addrPaths: string[] }[],
  lab: boolean,
): void {
  for (let j = 0; j < ifs.length; j++) {
    const b = ifs[j]!;
    for (let i = 0; i < j; i++) {
      const a = ifs[i]!;
      if (a.cfg.name === b.cfg.name && !b.cfg.name.startsWith("#")) {
        ctx.err(at(b.path, "name"), `duplicate interface name "${b.cfg.name}" (also ${a.path})`);
      } else if (!lab && a.cfg.tap === b.cfg.tap) {
        ctx.err(
          at(b.path, "tap"),
          `duplicate tap "${b.cfg.tap}" (also used by ${a.path}, ${a.cfg.name})`,
        );
      }
    }
  }
  // Addresses: the same address twice anywhere, or the same prefix on two interfaces.
  const all: { c: IpCidr; path: string; ifi: number }[] = [];
  ifs.forEach((f, ifi) => {
    f.cfg.addresses.forEach((c, k) => all.push({ c, path: f.addrPaths[k]!, ifi }));
  });
  for (let j = 0; j < all.length; j++) {
    const b = all[j]!;
    for (let i = 0; i < j; i++) {
      const a = all[i]!;
      const addrA = { family: a.c.family, address: a.c.address } as IpAddress;
      const addrB = { family: b.c.family, address: b.c.address } as IpAddress;
      if (sameAddress(addrA, addrB)) {
        ctx.err(
          b.path,
          `address ${formatIpAddress(addrB)} is also ${a.path} (${ifs[a.ifi]!.cfg.name})`,
        );
        break;
      }
      const linkLocal = b.c.family === 6 && ipv6IsLinkLocalUnicast(b.c.address);
      if (a.ifi !== b.ifi && !linkLocal && cidrNetworkEqual(a.c, b.c)) {
        ctx.err(
          b.path,
          `prefix ${formatCidr(masked(b.c))} of "${formatCidr(b.c)}" is also on ${
            ifs[a.ifi]!.cfg.name
          } (${a.path})`,
        );
        break;
      }
    }
  }
}

function masked(c: IpCidr): IpCidr {
  return c.family === 4
    ? { family: 4, address: (c.address & ipv4Mask(c.prefixLen)) >>> 0, prefixLen: c.prefixLen }
    : { family: 6, address: ipv6Masked(c.address, c.prefixLen), prefixLen: c.prefixLen };
}

// ------------------------------------------------------------------ routes

const ROUTE_TYPES = ["unicast", "blackhole", "unreachable", "prohibit"] as const;

function validateRoutes(
  ctx: Ctx,
  raws: unknown[],
  base: string,
  ifs: InterfaceConfig[],
): RouteConfig[] {
  const routes: RouteConfig[] = [];
  const paths: string[] = [];
  raws.forEach((raw, i) => {
    const path = idx(base, i);
    const t = readTable(ctx, raw, path, ["to", "via", "dev", "metric", "type"]);
    if (!t) return;
    const to = t.to === undefined
      ? (ctx.err(at(path, "to"), `"to" is required`), undefined)
      : cidrAt(ctx, t.to, at(path, "to"), false);
    const type: RouteType = oneOf(ctx, t, "type", path, ROUTE_TYPES, "unicast");
    let dev = optStr(ctx, t, "dev", path);
    let via: IpAddress | undefined;
    if (t.via !== undefined) {
      let text = t.via;
      if (typeof text === "string" && text.includes("%")) {
        const zone = text.slice(text.indexOf("%") + 1);
        text = text.slice(0, text.indexOf("%"));
        if (dev !== undefined && dev !== zone) {
          ctx.err(at(path, "via"), `zone "%${zone}" disagrees with dev = "${dev}"`);
        }
        dev = zone;
      }
      via = addressAt(ctx, text, at(path, "via"));
    }
    const metric = int(ctx, t, "metric", path, to?.family === 6 ? 1024 : 0, 0, U32_MAX);
    if (type === "unicast" && via === undefined && dev === undefined && t.via === undefined) {
      ctx.err(path, `a unicast route needs "via" or "dev"`);
    }
    if (type !== "unicast") {
      if (t.via !== undefined) ctx.err(at(path, "via"), `a ${type} route takes no "via"`);
      if (t.dev !== undefined) ctx.err(at(path, "dev"), `a ${type} route takes no "dev"`);
    }
    if (to && via && via.family !== to.family) {
      ctx.err(
        at(path, "via"),
        `gateway ${formatIpAddress(via)} is IPv${via.family} but "to" is IPv${to.family}`,
      );
      via = undefined;
    }
    if (via && (via.family === 4 ? ipv4IsMulticast(via.address) : ipv6IsMulticast(via.address))) {
      ctx.err(at(path, "via"), `gateway ${formatIpAddress(via)} is a multicast address`);
      via = undefined;
    }
    const devIf = dev === undefined ? undefined : ifs.find((f) => f.name === dev);
    if (dev !== undefined && !devIf && type === "unicast") {
      ctx.err(
        at(path, "dev"),
        `no interface named "${dev}"${didYouMean(dev, ifs.map((f) => f.name))}`,
      );
    }
    if (via && type === "unicast") {
      const ll = via.family === 6 && ipv6IsLinkLocalUnicast(via.address);
      const own = ifs.find((f) =>
        f.addresses.some((c) =>
          sameAddress({ family: c.family, address: c.address } as IpAddress, via!)
        )
      );
      if (own) {
        ctx.err(
          at(path, "via"),
          `gateway ${formatIpAddress(via)} is this node's own address (on ${own.name})`,
        );
      } else if (ll) {
        if (dev === undefined) {
          ctx.err(
            at(path, "via"),
            `link-local gateway ${formatIpAddress(via)} needs "dev" (or "%IFACE")`,
          );
        }
      } else if (devIf) {
        if (!devIf.addresses.some((c) => cidrContains(c, via!))) {
          ctx.err(
            at(path, "via"),
            `gateway ${formatIpAddress(via)} is not inside any prefix of ${devIf.name}${
              connected([devIf], via.family)
            }`,
          );
        }
      } else if (
        dev === undefined && !ifs.some((f) => f.addresses.some((c) => cidrContains(c, via!)))
      ) {
        ctx.err(
          at(path, "via"),
          `gateway ${formatIpAddress(via)} is not inside any interface's prefix${
            connected(ifs, via.family)
          }`,
        );
      }
    }
    if (!to) return;
    const dup = routes.findIndex((r) => r.metric === metric && cidrNetworkEqual(r.to, to));
    if (dup !== -1) {
      ctx.err(
        at(path, "to"),
        `duplicate route to ${formatCidr(to)} with metric ${metric} (also ${paths[dup]})`,
      );
      return;
    }
    routes.push({
      to,
      ...(via ? { via } : {}),
      ...(dev !== undefined && type === "unicast" ? { dev } : {}),
      metric,
      type,
    });
    paths.push(path);
  });
  return routes;
}

function connected(ifs: InterfaceConfig[], family: 4 | 6): string {
  const list = ifs.flatMap((f) => f.addresses.filter((c) => c.family === family)).map((c) =>
    formatCidr(masked(c))
  );
  return list.length === 0
    ? ` (there are no IPv${family} interface addresses)`
    : ` (connected: ${list.join(", ")})`;
}

// ------------------------------------------------------------------ firewall

const BUILTIN_CHAINS: Record<TableName, string[]> = {
  filter: ["input", "forward", "output"],
  nat: ["prerouting", "input", "output", "postrouting"],
  raw: ["prerouting", "output"],
  mangle: ["prerouting", "input", "forward", "output", "postrouting"],
};
const ALL_BUILTIN_CHAINS = ["prerouting", "input", "forward", "output", "postrouting"];
const TABLES: TableName[] = ["filter", "nat", "raw", "mangle"];

function emptyTable(table: TableName, family: 0 | 4 | 6): TableConfig {
  const chains = new Map<string, ChainConfig>();
  for (const c of BUILTIN_CHAINS[table]) {
    chains.set(c, { name: c, builtin: true, policy: "accept", rules: [] });
  }
  return { table, family, defined: false, chains };
}

function emptyTables(family: 0 | 4 | 6): FamilyTables {
  return {
    filter: emptyTable("filter", family),
    nat: emptyTable("nat", family),
    raw: emptyTable("raw", family),
    mangle: emptyTable("mangle", family),
  };
}

function validateTable(
  ctx: Ctx,
  raw: unknown,
  path: string,
  table: TableName,
  family: 0 | 4 | 6,
  sets: ReadonlyMap<string, { family: 0 | 4 | 6 }> = new Map(),
): TableConfig {
  const out = emptyTable(table, family);
  out.defined = true;
  if (!isTable(raw)) {
    ctx.err(path, `expected a table of chains, found ${describeShort(raw)}`);
    return out;
  }
  const builtins = BUILTIN_CHAINS[table];
  const rulePaths = new Map<string, string[]>();
  // First pass: chain names, so rules can be checked against the set of user chains.
  const chainRaws: [string, Tbl, boolean][] = [];
  for (const [name, v] of Object.entries(raw)) {
    const cp = at(path, name);
    const builtin = builtins.includes(name);
    if (!builtin) {
      const lower = name.toLowerCase();
      if (builtins.includes(lower)) {
        ctx.err(cp, `chain names are lower case (did you mean "${lower}"?)`);
        continue;
      }
      if (ALL_BUILTIN_CHAINS.includes(lower)) {
        ctx.err(
          cp,
          `the ${table} table has no "${lower}" chain (its chains: ${builtins.join(", ")})`,
        );
        continue;
      }
      if (!CHAIN_NAME.test(name)) {
        ctx.err(
          cp,
          `bad chain name "${name}" (a letter, then up to 28 letters, digits, "_" or "-")`,
        );
        continue;
      }
      if (BUILTIN_TARGETS.includes(name.toUpperCase())) {
        ctx.err(cp, `chain name "${name}" is taken by a builtin target`);
        continue;
      }
    }
    const ct = readTable(ctx, v, cp, builtin ? ["policy", "rules"] : ["rules"]);
    if (!builtin && isTable(v) && v.policy !== undefined) {
      // readTable already reported "unknown key"; replace it with a clearer message.
      const last = ctx.issues.findLastIndex((e) => e.path === at(cp, "policy"));
      if (last !== -1) {
        ctx.issues[last]!.message =
          `user chain "${name}" takes no policy (only builtin chains have one)`;
      }
    }
    if (ct) chainRaws.push([name, ct, builtin]);
  }
  for (const [name, ct, builtin] of chainRaws) {
    const cp = at(path, name);
    let policy: "accept" | "drop" = "accept";
    if (builtin) {
      policy = oneOf(ctx, ct, "policy", cp, ["accept", "drop"] as const, "accept", true);
      if (table !== "filter" && table !== "mangle" && policy !== "accept") {
        ctx.err(
          at(cp, "policy"),
          `the ${table} table's policy must be "accept" (filter in [firewall.filter])`,
        );
        policy = "accept";
      }
    }
    const rules: Rule[] = [];
    const paths: string[] = [];
    arr(ctx, ct, "rules", cp).forEach((rv, i) => {
      const rp = idx(at(cp, "rules"), i);
      if (typeof rv !== "string") {
        ctx.err(rp, `expected a rule string, found ${describeShort(rv)}`);
        return;
      }
      try {
        const rule = parseRule(rv, { table, chain: name, builtin, family, sets });
        rules.push(rule);
        paths.push(rp);
      } catch (e) {
        if (!(e instanceof RuleError)) throw e;
        ctx.err(rp, e.message);
      }
    });
    out.chains.set(name, { name, builtin, policy, rules });
    rulePaths.set(name, paths);
  }
  // Jumps: to a defined user chain of this table, and without loops.
  const userChains = [...out.chains.values()].filter((c) => !c.builtin).map((c) => c.name);
  const edges = new Map<string, { to: string; path: string }[]>();
  for (const c of out.chains.values()) {
    const list: { to: string; path: string }[] = [];
    c.rules.forEach((r, i) => {
      if (r.target?.kind !== "JUMP") return;
      const to = r.target.chain;
      const rp = rulePaths.get(c.name)![i]!;
      if (ALL_BUILTIN_CHAINS.includes(to.toLowerCase())) {
        ctx.err(rp, `cannot jump to builtin chain "${to}"`);
      } else if (!userChains.includes(to)) {
        ctx.err(
          rp,
          `jump to undefined chain "${to}"${didYouMean(to, [...userChains, ...BUILTIN_TARGETS])}` +
            (userChains.length > 0 ? "" : ` (no user chains in ${path})`),
        );
      } else {
        list.push({ to, path: rp });
      }
    });
    edges.set(c.name, list);
  }
  // A user chain nobody jumps to, named within two edits of a builtin
  // chain, is a typo of that chain (`forwrd`): its rules would never run.
  const jumpedTo = new Set([...edges.values()].flat().map((e) => e.to));
  for (const c of out.chains.values()) {
    if (c.builtin || jumpedTo.has(c.name)) continue;
    const near = builtins.find((b) => editDistance(c.name.toLowerCase(), b) <= 2);
    if (near !== undefined) {
      ctx.err(
        at(path, c.name),
        `user chain "${c.name}" is never jumped to, so its rules never run ` +
          `(did you mean the builtin chain "${near}"?)`,
      );
    }
  }
  findLoops(ctx, edges);
  return out;
}

/** Reports each cycle among user chains once, at the rule that closes it. */
function findLoops(ctx: Ctx, edges: Map<string, { to: string; path: string }[]>): void {
  const state = new Map<string, 1 | 2>(); // 1 = on the stack, 2 = done
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 1);
    stack.push(n);
    for (const e of edges.get(n) ?? []) {
      const s = state.get(e.to);
      if (s === 1) {
        const cycle = [...stack.slice(stack.indexOf(e.to)), e.to];
        ctx.err(e.path, `jump loop: ${cycle.join(" -> ")}`);
      } else if (s === undefined) {
        visit(e.to);
      }
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n);
}

function validateFirewall(ctx: Ctx, raw: unknown, path: string): FirewallConfig {
  const fw: FirewallConfig = {
    conntrack: {
      max: 65536,
      tcpBeLiberal: false,
      perSourceRate: CT_PER_SOURCE_RATE,
      perSourceBurst: ctPerSourceBurst(CT_PER_SOURCE_RATE),
    },
    shared: emptyTables(0),
    ipv4: emptyTables(4),
    ipv6: emptyTables(6),
  };
  if (raw === undefined) return fw;
  const t = readTable(ctx, raw, path, [
    "trace",
    "conntrack",
    "filter",
    "nat",
    "raw",
    "mangle",
    "ipv4",
    "ipv6",
    "sets",
  ]);
  if (!t) return fw;
  // Sets first: rules name them.
  fw.sets = validateSets(ctx, t.sets, at(path, "sets"));
  const trace = optStr(ctx, t, "trace", path);
  if (trace !== undefined) {
    try {
      fw.trace = parseRule(trace, { matchOnly: true, family: 0, sets: fw.sets });
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      ctx.err(at(path, "trace"), e.message);
    }
  }
  const ct = subTable(ctx, t, "conntrack", path, [
    "max",
    "tcp_be_liberal",
    "per_source_rate",
    "per_source_burst",
  ]);
  const ctPath = at(path, "conntrack");
  fw.conntrack.max = int(ctx, ct, "max", ctPath, 65536, 1, 16_777_216);
  fw.conntrack.tcpBeLiberal = bool(ctx, ct, "tcp_be_liberal", ctPath, false);
  const rate = int(ctx, ct, "per_source_rate", ctPath, CT_PER_SOURCE_RATE, 0, 10_000_000);
  fw.conntrack.perSourceRate = rate;
  fw.conntrack.perSourceBurst = int(
    ctx,
    ct,
    "per_source_burst",
    ctPath,
    ctPerSourceBurst(rate),
    1,
    100_000_000,
  );
  for (const table of TABLES) {
    if (t[table] !== undefined) {
      fw.shared[table] = validateTable(ctx, t[table], at(path, table), table, 0, fw.sets);
    }
  }
  for (const fam of [4, 6] as const) {
    const key = fam === 4 ? "ipv4" : "ipv6";
    if (t[key] === undefined) continue;
    const ft = readTable(ctx, t[key], at(path, key), TABLES);
    if (!ft) continue;
    for (const table of TABLES) {
      if (ft[table] === undefined) continue;
      const tp = at(at(path, key), table);
      fw[key][table] = validateTable(ctx, ft[table], tp, table, fam, fw.sets);
    }
  }
  return fw;
}

// ------------------------------------------------------------------ config

/** Top-level keys of a configuration file. */
export const CONFIG_KEYS = [
  "router",
  "interface",
  "route",
  "firewall",
  "metrics",
  "dns",
  "tcp",
] as const;

/** `[metrics] listen = "127.0.0.1:9430"` (or `"[::1]:9430"`). */
function validateMetrics(ctx: Ctx, v: unknown, path: string): MetricsConfig {
  if (v === undefined) return {};
  const t = readTable(ctx, v, path, ["listen"]);
  if (!t) return {};
  const listen = optStr(ctx, t, "listen", path);
  if (listen === undefined) return {};
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(listen);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 1 && port <= 65535)) {
    ctx.err(
      at(path, "listen"),
      `Cannot parse listen address "${listen}": write ADDRESS:PORT, e.g. "127.0.0.1:9430" or "[::1]:9430"`,
    );
    return {};
  }
  const hostname = m[1] ?? m[2]!;
  try {
    parseIpAddress(hostname);
  } catch (e) {
    ctx.err(at(path, "listen"), e instanceof Error ? e.message : String(e));
    return {};
  }
  return { listen: { hostname, port } };
}

/**
 * Validate a parsed TOML tree (the whole file, or a lab node) into a Config.
 *
 * @param ctx where problems go
 * @param raw the parsed tree
 * @param base key path prefix (`""` for a file, `lab.node[0]` for a lab node)
 */
export function validateConfig(
  ctx: Ctx,
  raw: Tbl,
  base: string,
  opts: ValidateOptions = {},
): Config {
  const router = validateRouter(ctx, raw.router, at(base, "router"), opts.hostname ?? "tapir");
  const ifs: { cfg: InterfaceConfig; path: string; addrPaths: string[] }[] = [];
  arr(ctx, raw, "interface", base).forEach((v, i) => {
    const path = idx(at(base, "interface"), i);
    const r = validateInterface(ctx, v, path, router, opts);
    if (r) ifs.push({ ...r, path });
  });
  crossCheckInterfaces(ctx, ifs, opts.lab ?? false);
  const interfaces = ifs.map((f) => f.cfg);
  checkDelegations(ctx, interfaces);
  const routes = validateRoutes(ctx, arr(ctx, raw, "route", base), at(base, "route"), interfaces);
  const firewall = validateFirewall(ctx, raw.firewall, at(base, "firewall"));
  const metrics = validateMetrics(ctx, raw.metrics, at(base, "metrics"));
  const dns = validateDns(ctx, raw.dns, at(base, "dns"), interfaces);
  applyDnsDefaults(dns, interfaces);
  const tcp = validateTcp(ctx, raw.tcp, at(base, "tcp"));
  return { router, interfaces, routes, firewall, metrics, dns, tcp };
}

/**
 * `[interface.ra]` prefixes `{ from = "wan0", subnet = N }`: `from` is
 * another interface whose DHCPv6 client asks for a prefix, `subnet` fits in
 * the /64s of a prefix of `prefix_hint` bits, and no /64 is advertised on
 * two interfaces.
 */
function checkDelegations(ctx: Ctx, interfaces: InterfaceConfig[]): void {
  const seen = new Map<string, string>();
  for (const lan of interfaces) {
    for (const d of lan.ra.delegated) {
      const wan = interfaces.find((i) => i.name === d.from);
      if (wan === undefined) {
        ctx.err(
          d.fromPath,
          `no interface "${d.from}"${didYouMean(d.from, interfaces.map((i) => i.name))}`,
        );
        continue;
      }
      if (wan === lan) {
        ctx.err(d.fromPath, `an interface cannot advertise a prefix delegated to itself`);
        continue;
      }
      if (wan.dhcp6Client === null || !wan.dhcp6Client.iaPd) {
        ctx.err(
          d.fromPath,
          `interface "${d.from}" asks for no delegated prefix: add [interface.dhcp6_client] with ia_pd = true to it`,
        );
        continue;
      }
      const hint = wan.dhcp6Client.prefixHint;
      if (hint !== null && d.subnet >= 2 ** (64 - hint)) {
        ctx.err(
          at(d.fromPath.replace(/\.from$/, ""), "subnet"),
          `subnet ${d.subnet} does not fit in a /${hint} (it holds ${2 ** (64 - hint)} /64s: 0 to ${
            2 ** (64 - hint) - 1
          })`,
        );
        continue;
      }
      const key = `${d.from}/${d.subnet}`;
      const other = seen.get(key);
      if (other !== undefined) {
        ctx.err(d.fromPath, `subnet ${d.subnet} of "${d.from}" is also advertised by ${other}`);
        continue;
      }
      seen.set(key, `interface "${lan.name}"`);
    }
  }
}

/** Counts for `tapir check`'s summary line. */
export function configCounts(
  c: Config,
): { interfaces: number; addresses: number; routes: number; rules: number } {
  let rules = 0;
  for (const scope of [c.firewall.shared, c.firewall.ipv4, c.firewall.ipv6]) {
    for (const table of TABLES) {
      for (const ch of scope[table].chains.values()) rules += ch.rules.length;
    }
  }
  return {
    interfaces: c.interfaces.length,
    addresses: c.interfaces.reduce((n, f) => n + f.addresses.length, 0),
    routes: c.routes.length,
    rules,
  };
}
