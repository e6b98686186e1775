/**
 * `[interface.dhcp6]`: the DHCPv6 server of one interface, validated into
 * the server's own settings type. Keys are named as Kea's DHCPv6 server
 * names them (`pools`, `pd_pools` with `delegated_len`,
 * `preferred_lifetime`, `valid_lifetime`, `rapid_commit`) and as
 * `[interface.dhcp]` names the rest (`dns_servers`, `search`,
 * `decline_time`, `lease_file`).
 *
 * @module
 */
import type { Dhcpv6PdPool, Dhcpv6Pool, Dhcpv6ServerSettings } from "../stack/mod.ts";
import {
  formatIpv6,
  type IpCidr,
  ipv6CidrContains,
  ipv6Compare,
  ipv6Equal,
  ipv6IsLinkLocalUnicast,
  ipv6IsMulticast,
  ipv6Masked,
  parseIpv6,
} from "../stack/wire/mod.ts";
import {
  arr,
  at,
  bool,
  type Ctx,
  describe,
  DOMAIN_NAME,
  duration,
  idx,
  optInt,
  optStr,
  readTable,
  type Tbl,
} from "./_check.ts";
import { validateDnr } from "./_dnr.ts";

/** `[interface.dhcp6]` as validated. */
export interface Dhcp6Config {
  enabled: boolean;
  settings: Dhcpv6ServerSettings;
  /** Where `tapir run` keeps the leases (default `/var/lib/tapir/<interface>.dhcp6.leases`); the lab keeps them in memory. */
  leaseFile: string;
  /**
   * `delegated_pool = "::1000-::1fff"`: interface identifiers (the low 64
   * bits) handed out in each /64 this interface takes from a delegation
   * (`[interface.ra]` prefixes with `from`), or null.
   */
  delegatedPool: { first: Uint8Array; last: Uint8Array } | null;
}

const DHCP6_KEYS = [
  "enabled",
  "pools",
  "pd_pools",
  "preferred_lifetime",
  "valid_lifetime",
  "dns_servers",
  "search",
  "rapid_commit",
  "preference",
  "decline_time",
  "lease_file",
  "delegated_pool",
  "captive_portal",
  "dnr",
] as const;

const S = 1000;
function v6At(ctx: Ctx, v: unknown, path: string): Uint8Array | undefined {
  if (typeof v !== "string") {
    ctx.err(path, `expected an IPv6 address as a string, found ${describe(v)}`);
    return undefined;
  }
  try {
    return parseIpv6(v);
  } catch {
    ctx.err(path, `bad IPv6 address "${v}"`);
    return undefined;
  }
}

const cidrText = (a: Uint8Array, len: number) => `${formatIpv6(ipv6Masked(a, len))}/${len}`;

/** Validate `[interface.dhcp6]` of an interface with `addresses`; disabled when absent. */
export function validateDhcp6(
  ctx: Ctx,
  raw: unknown,
  path: string,
  ifName: string,
  addresses: IpCidr[],
): Dhcp6Config {
  const t = raw === undefined ? undefined : readTable(ctx, raw, path, DHCP6_KEYS);
  const enabled = t !== undefined && bool(ctx, t, "enabled", path, true);
  const tt: Tbl = t ?? {};
  const nets = addresses
    .filter((a) => a.family === 6)
    .map((a) => ({ address: a.address as Uint8Array, prefixLen: a.prefixLen }))
    .filter((n) => !ipv6IsLinkLocalUnicast(n.address));

  const pools: (Dhcpv6Pool & { path: string })[] = [];
  arr(ctx, tt, "pools", path).forEach((v, i) => {
    const pp = idx(at(path, "pools"), i);
    let start: Uint8Array | undefined, end: Uint8Array | undefined;
    if (typeof v === "string") {
      const m = /^\s*([0-9A-Fa-f:.]+)\s*-\s*([0-9A-Fa-f:.]+)\s*$/.exec(v);
      if (m === null) {
        ctx.err(pp, `expected "first-last" (e.g. "2001:db8::100-2001:db8::1ff"), found "${v}"`);
        return;
      }
      start = v6At(ctx, m[1], pp);
      end = v6At(ctx, m[2], pp);
    } else {
      const pt = readTable(ctx, v, pp, ["start", "end"]);
      if (!pt) return;
      start = v6At(ctx, pt.start, at(pp, "start"));
      end = v6At(ctx, pt.end, at(pp, "end"));
    }
    if (start === undefined || end === undefined) return;
    if (ipv6Compare(start, end) > 0) {
      ctx.err(pp, `pool starts at ${formatIpv6(start)}, after its end ${formatIpv6(end)}`);
      return;
    }
    const net = nets.find((n) => ipv6CidrContains(n, start!) && ipv6CidrContains(n, end!));
    if (net === undefined) {
      ctx.err(
        pp,
        `pool ${formatIpv6(start)}-${
          formatIpv6(end)
        } is outside the IPv6 prefixes of interface "${ifName}" (${
          nets.map((n) => cidrText(n.address, n.prefixLen)).join(", ") || "none"
        })`,
      );
      return;
    }
    const own = nets.find((n) =>
      ipv6Compare(n.address, start!) >= 0 && ipv6Compare(n.address, end!) <= 0
    );
    if (own !== undefined) {
      ctx.err(pp, `pool includes the interface's own address ${formatIpv6(own.address)}`);
      return;
    }
    const clash = pools.find((p) =>
      ipv6Compare(start!, p.end) <= 0 && ipv6Compare(p.start, end!) <= 0
    );
    if (clash !== undefined) {
      ctx.err(pp, `pool overlaps ${clash.path}`);
      return;
    }
    pools.push({ start, end, path: pp });
  });

  const pdPools: (Dhcpv6PdPool & { path: string })[] = [];
  arr(ctx, tt, "pd_pools", path).forEach((v, i) => {
    const pp = idx(at(path, "pd_pools"), i);
    const pt = readTable(ctx, v, pp, ["prefix", "delegated_len"]);
    if (!pt) return;
    const m = typeof pt.prefix === "string" ? /^([^/]+)\/(\d{1,3})$/.exec(pt.prefix) : null;
    const prefixLen = m === null ? -1 : Number(m[2]);
    if (m === null || prefixLen < 1 || prefixLen > 128) {
      ctx.err(
        at(pp, "prefix"),
        `expected an IPv6 prefix such as "2001:db8:100::/48", found ${describe(pt.prefix)}`,
      );
      return;
    }
    const prefix = v6At(ctx, m[1], at(pp, "prefix"));
    if (prefix === undefined) return;
    if (!ipv6Equal(prefix, ipv6Masked(prefix, prefixLen))) {
      ctx.err(
        at(pp, "prefix"),
        `"${pt.prefix}" has host bits set (the prefix is ${cidrText(prefix, prefixLen)})`,
      );
      return;
    }
    if (ipv6IsLinkLocalUnicast(prefix) || ipv6IsMulticast(prefix)) {
      ctx.err(at(pp, "prefix"), `${pt.prefix} is not a global or unique-local prefix`);
      return;
    }
    if (pt.delegated_len === undefined) {
      ctx.err(at(pp, "delegated_len"), `"delegated_len" is required (e.g. 56 or 64)`);
      return;
    }
    const delegatedLen = optInt(ctx, pt, "delegated_len", pp, prefixLen, 128);
    if (delegatedLen === undefined) return;
    const clash = pdPools.find((p) => {
      const l = Math.min(p.prefixLen, prefixLen);
      return ipv6Equal(ipv6Masked(p.prefix, l), ipv6Masked(prefix, l));
    });
    if (clash !== undefined) {
      ctx.err(at(pp, "prefix"), `prefix overlaps ${clash.path}`);
      return;
    }
    const onLink = nets.find((n) => {
      const l = Math.min(n.prefixLen, prefixLen);
      return ipv6Equal(ipv6Masked(n.address, l), ipv6Masked(prefix, l));
    });
    if (onLink !== undefined) {
      ctx.err(
        at(pp, "prefix"),
        `prefix overlaps the interface's own prefix ${cidrText(onLink.address, onLink.prefixLen)}`,
      );
      return;
    }
    pdPools.push({ prefix, prefixLen, delegatedLen, path: pp });
  });
  let delegatedPool: Dhcp6Config["delegatedPool"] = null;
  if (tt.delegated_pool !== undefined) {
    const dp = at(path, "delegated_pool");
    const m = typeof tt.delegated_pool === "string"
      ? /^\s*([0-9A-Fa-f:.]+)\s*-\s*([0-9A-Fa-f:.]+)\s*$/.exec(tt.delegated_pool)
      : null;
    const first = m ? v6At(ctx, m[1], dp) : undefined;
    const last = m ? v6At(ctx, m[2], dp) : undefined;
    if (m === null) {
      ctx.err(
        dp,
        `expected "::FIRST-::LAST" interface identifiers (e.g. "::1000-::1fff"), found ${
          describe(tt.delegated_pool)
        }`,
      );
    } else if (first && last) {
      if (first.subarray(0, 8).some((b) => b !== 0) || last.subarray(0, 8).some((b) => b !== 0)) {
        ctx.err(
          dp,
          `give interface identifiers only (the low 64 bits, e.g. "::1000-::1fff"): the prefix comes from the delegation`,
        );
      } else if (ipv6Compare(first, last) > 0) {
        ctx.err(dp, `the range starts at ${formatIpv6(first)}, after its end ${formatIpv6(last)}`);
      } else if (
        ipv6Compare(first, parseIpv6("::1")) <= 0 && ipv6Compare(last, parseIpv6("::1")) >= 0
      ) {
        ctx.err(dp, `the range holds ::1, the router's own address in each delegated /64`);
      } else delegatedPool = { first, last };
    }
  }
  if (
    enabled && tt.pools === undefined && tt.pd_pools === undefined &&
    tt.dns_servers === undefined && tt.search === undefined && tt.delegated_pool === undefined
  ) {
    ctx.err(
      path,
      `give "pools" (addresses, e.g. pools = ["2001:db8::100-2001:db8::1ff"]), "pd_pools" (prefixes to delegate), or for a stateless server "dns_servers" or "search"`,
    );
  }

  const preferred = duration(ctx, tt, "preferred_lifetime", path, 3600 * S, 60 * S, 0xfffffffe * S);
  const valid = duration(ctx, tt, "valid_lifetime", path, 7200 * S, 60 * S, 0xfffffffe * S);
  if (preferred > valid) {
    ctx.err(
      at(path, "preferred_lifetime"),
      `preferred_lifetime is longer than valid_lifetime (RFC 8415 §21.6: it may not be)`,
    );
  }
  const declineTime = duration(ctx, tt, "decline_time", path, 600 * S, 0, 0xffffffff * S);

  const dnsServers: Uint8Array[] = [];
  const dv = tt.dns_servers;
  (typeof dv === "string" ? [dv] : arr(ctx, tt, "dns_servers", path)).forEach((x, i) => {
    const dp = typeof dv === "string" ? at(path, "dns_servers") : idx(at(path, "dns_servers"), i);
    const a = v6At(ctx, x, dp);
    if (a === undefined) return;
    if (ipv6IsMulticast(a) || a.every((b) => b === 0)) {
      ctx.err(dp, `${formatIpv6(a)} is not a unicast address`);
      return;
    }
    dnsServers.push(a);
  });
  const search: string[] = [];
  arr(ctx, tt, "search", path).forEach((v, i) => {
    const sp = idx(at(path, "search"), i);
    if (typeof v !== "string" || !DOMAIN_NAME.test(v)) {
      ctx.err(sp, `bad domain name ${describe(v)}`);
    } else search.push(v);
  });

  const leaseFile = optStr(ctx, tt, "lease_file", path) ?? `/var/lib/tapir/${ifName}.dhcp6.leases`;
  if (leaseFile === "") ctx.err(at(path, "lease_file"), `lease_file is empty`);
  return {
    enabled,
    leaseFile,
    delegatedPool,
    settings: {
      pools: pools.map(({ start, end }) => ({ start, end })),
      pdPools: pdPools.map(({ prefix, prefixLen, delegatedLen }) => ({
        prefix,
        prefixLen,
        delegatedLen,
      })),
      preferredLifetime: Math.floor(preferred / S),
      validLifetime: Math.floor(valid / S),
      dnsServers,
      domains: search,
      rapidCommit: bool(ctx, tt, "rapid_commit", path, false),
      preference: optInt(ctx, tt, "preference", path, 0, 255) ?? 0,
      ...captivePortalOf(ctx, tt, path),
      dnr: validateDnr(ctx, tt, path, { family: 6, lifetime: null }).map((x) => x.instance),
      declineTime: Math.floor(declineTime / S),
    },
  };
}

/** `[interface.dhcp6_client]`: the DHCPv6 client of a WAN interface. */
export interface Dhcp6ClientConfig {
  /** Ask for an address (IA_NA). */
  iaNa: boolean;
  /** Ask for a delegated prefix (IA_PD). */
  iaPd: boolean;
  /** The prefix length asked for, or null (the server's choice). */
  prefixHint: number | null;
  rapidCommit: boolean;
}

const DHCP6_CLIENT_KEYS = ["ia_na", "ia_pd", "prefix_hint", "rapid_commit"] as const;

/** Validate `[interface.dhcp6_client]`; null when absent. */
export function validateDhcp6Client(
  ctx: Ctx,
  raw: unknown,
  path: string,
): Dhcp6ClientConfig | null {
  if (raw === undefined) return null;
  const t = readTable(ctx, raw, path, DHCP6_CLIENT_KEYS);
  if (!t) return null;
  const iaNa = bool(ctx, t, "ia_na", path, true);
  const iaPd = bool(ctx, t, "ia_pd", path, false);
  const prefixHint = optInt(ctx, t, "prefix_hint", path, 1, 64) ?? null;
  if (prefixHint !== null && !iaPd) {
    ctx.err(at(path, "prefix_hint"), `prefix_hint goes with ia_pd = true`);
  }
  if (!iaNa && !iaPd) {
    ctx.err(path, `ask for something: ia_na = true (an address) or ia_pd = true (a prefix)`);
  }
  return { iaNa, iaPd, prefixHint, rapidCommit: bool(ctx, t, "rapid_commit", path, false) };
}

/** `captive_portal = "https://…"` (RFC 8910 option 103). */
function captivePortalOf(ctx: Ctx, t: Tbl, path: string): { captivePortal?: string } {
  if (t.captive_portal === undefined) return {};
  const v = t.captive_portal;
  if (
    typeof v !== "string" ||
    (!/^https:\/\/\S+$/.test(v) && v !== "urn:ietf:params:capport:unrestricted")
  ) {
    ctx.err(
      at(path, "captive_portal"),
      `expected an https:// URI (RFC 8910 §2) or "urn:ietf:params:capport:unrestricted", found ${
        describe(v)
      }`,
    );
    return {};
  }
  return { captivePortal: v };
}
