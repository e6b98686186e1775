/**
 * `[interface.dhcp]`: the DHCPv4 server of one interface, validated into
 * the server's own settings type. Keys are named as dnsmasq's and Kea's
 * where they exist (`pools`, `lease_time`, `dns_servers`, `domain`,
 * `reservations`, `authoritative`, `decline_time`).
 *
 * @module
 */
import type { Dhcpv4Reservation, Dhcpv4ServerSettings } from "../stack/mod.ts";
import {
  DHCPV4_DNR_OPTION,
  formatIpv4,
  type IpCidr,
  ipv4Broadcast,
  ipv4Mask,
  parseIpv4,
  parseMac,
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
import { dhcpv4DnrOption, validateDnr } from "./_dnr.ts";

/** `[interface.dhcp]` as validated. */
export interface DhcpConfig {
  enabled: boolean;
  settings: Dhcpv4ServerSettings;
  /** Where `tapir run` keeps the leases (default `/var/lib/tapir/<interface>.dhcp4.leases`); the lab keeps them in memory. */
  leaseFile: string;
}

const DHCP_KEYS = [
  "enabled",
  "pools",
  "lease_time",
  "router",
  "dns_servers",
  "domain",
  "search",
  "mtu",
  "ntp_servers",
  "routes",
  "options",
  "dnr",
  "reservations",
  "lease_file",
  "authoritative",
  "decline_time",
  "conflict_probe",
  "relay_subnets",
] as const;

const S = 1000;

function v4At(ctx: Ctx, v: unknown, path: string): number | undefined {
  if (typeof v !== "string") {
    ctx.err(path, `expected an IPv4 address as a string, found ${describe(v)}`);
    return undefined;
  }
  try {
    return parseIpv4(v);
  } catch {
    ctx.err(path, `bad IPv4 address "${v}"`);
    return undefined;
  }
}

function v4List(ctx: Ctx, t: Tbl, key: string, path: string): number[] {
  const out: number[] = [];
  const v = t[key];
  const items = typeof v === "string" ? [v] : arr(ctx, t, key, path);
  items.forEach((x, i) => {
    const a = v4At(ctx, x, typeof v === "string" ? at(path, key) : idx(at(path, key), i));
    if (a !== undefined) out.push(a);
  });
  return out;
}

/** The interface's IPv4 prefixes (the subnets the server can serve). */
function subnets(addresses: IpCidr[]): { address: number; prefixLen: number }[] {
  return addresses.filter((a) => a.family === 4).map((a) => ({
    address: a.address as number,
    prefixLen: a.prefixLen,
  }));
}

/** Validate `[interface.dhcp]` of an interface with `addresses`; disabled when absent. */
export function validateDhcp(
  ctx: Ctx,
  raw: unknown,
  path: string,
  ifName: string,
  addresses: IpCidr[],
  ifMtu: number,
): DhcpConfig {
  const t = raw === undefined ? undefined : readTable(ctx, raw, path, DHCP_KEYS);
  const nets = subnets(addresses);
  const enabled = t !== undefined && bool(ctx, t, "enabled", path, true);
  const tt = t ?? {};
  if (enabled && nets.length === 0) {
    ctx.err(path, `a DHCPv4 server needs an IPv4 address on interface "${ifName}"`);
  }
  const inNet = (a: number) =>
    nets.find((n) => ((a ^ n.address) & ipv4Mask(n.prefixLen)) === 0 && n.prefixLen <= 30);

  const pools: { start: number; end: number; path: string }[] = [];
  arr(ctx, tt, "pools", path).forEach((v, i) => {
    const pp = idx(at(path, "pools"), i);
    let start: number | undefined, end: number | undefined;
    if (typeof v === "string") {
      const m = /^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$/.exec(v);
      if (m === null) {
        ctx.err(pp, `expected "first-last" (e.g. "192.0.2.100-192.0.2.199"), found "${v}"`);
        return;
      }
      start = v4At(ctx, m[1], pp);
      end = v4At(ctx, m[2], pp);
    } else {
      const pt = readTable(ctx, v, pp, ["start", "end"]);
      if (!pt) return;
      start = v4At(ctx, pt.start, at(pp, "start"));
      end = v4At(ctx, pt.end, at(pp, "end"));
    }
    if (start === undefined || end === undefined) return;
    if (start > end) {
      ctx.err(pp, `pool starts at ${formatIpv4(start)}, after its end ${formatIpv4(end)}`);
      return;
    }
    const n = inNet(start);
    if (n === undefined || inNet(end) !== n) {
      ctx.err(
        pp,
        `pool ${formatIpv4(start)}-${
          formatIpv4(end)
        } is outside the IPv4 prefixes of interface "${ifName}" (${
          nets.map((x) => `${formatIpv4((x.address & ipv4Mask(x.prefixLen)) >>> 0)}/${x.prefixLen}`)
            .join(", ") || "none"
        })`,
      );
      return;
    }
    const net = (n.address & ipv4Mask(n.prefixLen)) >>> 0;
    const bc = ipv4Broadcast(n);
    if (start <= net || end >= bc) {
      ctx.err(
        pp,
        `pool includes the network or broadcast address of ${formatIpv4(net)}/${n.prefixLen}`,
      );
      return;
    }
    const own = nets.find((x) => x.address >= start! && x.address <= end!);
    if (own !== undefined) {
      ctx.err(pp, `pool includes the interface's own address ${formatIpv4(own.address)}`);
      return;
    }
    const clash = pools.find((p) => start! <= p.end && p.start <= end!);
    if (clash !== undefined) {
      ctx.err(pp, `pool overlaps ${clash.path}`);
      return;
    }
    pools.push({ start, end, path: pp });
  });
  // Off-link subnets behind relay agents (giaddr in one of them, RFC 1542).
  const relaySubnets: NonNullable<Dhcpv4ServerSettings["relaySubnets"]> = [];
  const relayPools: { start: number; end: number; path: string }[] = [];
  arr(ctx, tt, "relay_subnets", path).forEach((v, i) => {
    const rp = idx(at(path, "relay_subnets"), i);
    const rt = readTable(ctx, v, rp, ["subnet", "pools", "router"]);
    if (!rt) return;
    const m = typeof rt.subnet === "string" ? /^([^/]+)\/(\d{1,2})$/.exec(rt.subnet) : null;
    const len = m === null ? -1 : Number(m[2]);
    const base = m === null ? undefined : v4At(ctx, m[1], at(rp, "subnet"));
    if (m === null || len < 1 || len > 30) {
      ctx.err(
        at(rp, "subnet"),
        `expected an IPv4 subnet of /1 to /30 such as "203.0.113.0/24", found ${
          describe(rt.subnet)
        }`,
      );
      return;
    }
    if (base === undefined) return;
    const net = { address: (base & ipv4Mask(len)) >>> 0, prefixLen: len };
    const shared = Math.min(len, 32);
    const onLink = nets.find((n) => {
      const l = Math.min(n.prefixLen, shared);
      return ((n.address ^ net.address) & ipv4Mask(l)) === 0;
    });
    if (onLink !== undefined) {
      ctx.err(
        at(rp, "subnet"),
        `${
          formatIpv4(net.address)
        }/${len} overlaps the interface's own subnet (relayed subnets lie behind a router)`,
      );
      return;
    }
    const rpools: { start: number; end: number }[] = [];
    arr(ctx, rt, "pools", rp).forEach((pv, j) => {
      const pp = idx(at(rp, "pools"), j);
      const pm = typeof pv === "string" ? /^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$/.exec(pv) : null;
      if (pm === null) {
        ctx.err(
          pp,
          `expected "first-last" (e.g. "203.0.113.100-203.0.113.199"), found ${describe(pv)}`,
        );
        return;
      }
      const start = v4At(ctx, pm[1], pp), end = v4At(ctx, pm[2], pp);
      if (start === undefined || end === undefined) return;
      const bc = ipv4Broadcast(net);
      if (
        start > end || ((start ^ net.address) & ipv4Mask(len)) !== 0 ||
        ((end ^ net.address) & ipv4Mask(len)) !== 0 || start <= net.address || end >= bc
      ) {
        ctx.err(
          pp,
          `pool ${formatIpv4(start)}-${formatIpv4(end)} is not a range inside ${
            formatIpv4(net.address)
          }/${len} without its network and broadcast addresses`,
        );
        return;
      }
      const clash = [...pools, ...relayPools].find((q) => start <= q.end && q.start <= end);
      if (clash !== undefined) {
        ctx.err(pp, `pool overlaps ${clash.path}`);
        return;
      }
      rpools.push({ start, end });
      relayPools.push({ start, end, path: pp });
    });
    if (rt.pools === undefined) ctx.err(at(rp, "pools"), `"pools" is required`);
    const routers = rt.router === undefined ? [] : v4List(ctx, rt, "router", rp);
    relaySubnets.push({ prefix: net.address, prefixLen: len, pools: rpools, routers });
  });
  if (
    enabled && tt.pools === undefined && tt.reservations === undefined &&
    tt.relay_subnets === undefined
  ) {
    ctx.err(at(path, "pools"), `"pools" is required (e.g. pools = ["192.0.2.100-192.0.2.199"])`);
  }
  const inPool = (a: number) => [...pools, ...relayPools].some((p) => a >= p.start && a <= p.end);

  const leaseTime = duration(ctx, tt, "lease_time", path, 12 * 3600 * S, 120 * S, 0xffffffff * S);
  const declineTime = duration(ctx, tt, "decline_time", path, 600 * S, 0, 0xffffffff * S);
  const routers = tt.router === undefined
    ? (nets[0] !== undefined ? [nets[0].address] : [])
    : v4List(ctx, tt, "router", path);
  const dnsServers = v4List(ctx, tt, "dns_servers", path);
  const ntpServers = v4List(ctx, tt, "ntp_servers", path);
  const domain = optStr(ctx, tt, "domain", path) ?? null;
  if (domain !== null && !DOMAIN_NAME.test(domain)) {
    ctx.err(at(path, "domain"), `bad domain name "${domain}"`);
  }
  const search: string[] = [];
  arr(ctx, tt, "search", path).forEach((v, i) => {
    const sp = idx(at(path, "search"), i);
    if (typeof v !== "string" || !DOMAIN_NAME.test(v)) {
      ctx.err(sp, `bad domain name ${describe(v)}`);
    } else search.push(v);
  });
  const mtu = optInt(ctx, tt, "mtu", path, 68, 65535) ?? null;
  if (mtu !== null && mtu > ifMtu) {
    ctx.err(at(path, "mtu"), `dhcp mtu ${mtu} is larger than the interface mtu ${ifMtu}`);
  }

  const routes: Dhcpv4ServerSettings["routes"] = [];
  arr(ctx, tt, "routes", path).forEach((v, i) => {
    const rp = idx(at(path, "routes"), i);
    const rt = readTable(ctx, v, rp, ["to", "via"]);
    if (!rt) return;
    const m = typeof rt.to === "string" ? /^([^/]+)\/(\d{1,2})$/.exec(rt.to) : null;
    const prefixLen = m === null ? -1 : Number(m[2]);
    const prefix = m === null ? undefined : v4At(ctx, m[1], at(rp, "to"));
    if (m === null || prefixLen > 32) {
      ctx.err(
        at(rp, "to"),
        `expected an IPv4 prefix such as "203.0.113.0/24", found ${describe(rt.to)}`,
      );
      return;
    }
    const via = rt.via === undefined
      ? (ctx.err(at(rp, "via"), `"via" is required`), undefined)
      : v4At(ctx, rt.via, at(rp, "via"));
    if (prefix === undefined || via === undefined) return;
    routes.push({ prefix: (prefix & ipv4Mask(prefixLen)) >>> 0, prefixLen, router: via });
  });

  const options: Dhcpv4ServerSettings["options"] = [];
  arr(ctx, tt, "options", path).forEach((v, i) => {
    const op = idx(at(path, "options"), i);
    const ot = readTable(ctx, v, op, ["code", "hex", "text", "ip", "always_send"]);
    if (!ot) return;
    const code = optInt(ctx, ot, "code", op, 1, 254);
    if (code === undefined) {
      if (ot.code === undefined) ctx.err(at(op, "code"), `"code" is required`);
      return;
    }
    if ([53, 54, 51, 52, 55, 58, 59, 61, 82].includes(code)) {
      ctx.err(at(op, "code"), `option ${code} is set by the server itself`);
      return;
    }
    const given = (["hex", "text", "ip"] as const).filter((k) => ot[k] !== undefined);
    if (given.length !== 1) {
      ctx.err(op, `give exactly one of "hex", "text" or "ip"`);
      return;
    }
    let value: Uint8Array | undefined;
    if (given[0] === "hex") {
      const h = typeof ot.hex === "string" ? ot.hex.replace(/[:\s]/g, "") : "";
      if (!/^([0-9a-fA-F]{2})+$/.test(h) || h.length > 2 * 1020) {
        ctx.err(at(op, "hex"), `expected hex bytes such as "0a:0b:0c", found ${describe(ot.hex)}`);
        return;
      }
      value = new Uint8Array(h.length / 2).map((_, k) => parseInt(h.slice(2 * k, 2 * k + 2), 16));
    } else if (given[0] === "text") {
      if (typeof ot.text !== "string" || ot.text === "") {
        ctx.err(at(op, "text"), `expected a non-empty string, found ${describe(ot.text)}`);
        return;
      }
      value = new TextEncoder().encode(ot.text);
    } else {
      const list = v4List(ctx, ot, "ip", op);
      if (list.length === 0) return;
      value = new Uint8Array(4 * list.length);
      list.forEach((a, k) => new DataView(value!.buffer).setUint32(4 * k, a));
    }
    options.push({ code, value, alwaysSend: bool(ctx, ot, "always_send", op, false) });
  });
  // RFC 9463 §5: encrypted DNS resolvers, option 162 (to clients that ask for it).
  const dnr = validateDnr(ctx, tt, path, { family: 4, lifetime: null });
  if (dnr.length > 0 && options.some((o) => o.code === DHCPV4_DNR_OPTION)) {
    ctx.err(at(path, "dnr"), `option 162 is given in "options" too: keep one`);
  }
  options.push(...dhcpv4DnrOption(dnr));

  const reservations: Dhcpv4Reservation[] = [];
  arr(ctx, tt, "reservations", path).forEach((v, i) => {
    const rp = idx(at(path, "reservations"), i);
    const rt = readTable(ctx, v, rp, ["mac", "client_id", "address", "hostname"]);
    if (!rt) return;
    let mac: string | null = null, clientId: string | null = null;
    if (rt.mac !== undefined) {
      try {
        if (typeof rt.mac !== "string") throw new Error();
        mac = [...parseMac(rt.mac)].map((x) => x.toString(16).padStart(2, "0")).join(":");
      } catch {
        ctx.err(at(rp, "mac"), `bad MAC address ${describe(rt.mac)}`);
        return;
      }
    }
    if (rt.client_id !== undefined) {
      const h = typeof rt.client_id === "string"
        ? rt.client_id.replace(/[:\s]/g, "").toLowerCase()
        : "";
      if (!/^([0-9a-f]{2}){2,}$/.test(h)) {
        ctx.err(
          at(rp, "client_id"),
          `expected hex bytes such as "01:02:00:00:00:00:01", found ${describe(rt.client_id)}`,
        );
        return;
      }
      clientId = h.match(/../g)!.join(":");
    }
    if ((mac === null) === (clientId === null)) {
      ctx.err(rp, `give exactly one of "mac" or "client_id"`);
      return;
    }
    const address = rt.address === undefined
      ? (ctx.err(at(rp, "address"), `"address" is required`), undefined)
      : v4At(ctx, rt.address, at(rp, "address"));
    if (address === undefined) return;
    if (!inPool(address)) {
      ctx.err(at(rp, "address"), `reserved address ${formatIpv4(address)} is outside every pool`);
      return;
    }
    const hostname = optStr(ctx, rt, "hostname", rp) ?? null;
    const dupAddr = reservations.findIndex((r) => r.address === address);
    if (dupAddr !== -1) {
      ctx.err(
        at(rp, "address"),
        `${formatIpv4(address)} is also reserved by ${idx(at(path, "reservations"), dupAddr)}`,
      );
      return;
    }
    const dupKey = reservations.findIndex((r) =>
      (mac !== null && r.mac === mac) || (clientId !== null && r.clientId === clientId)
    );
    if (dupKey !== -1) {
      ctx.err(
        rp,
        `this client already has a reservation (${idx(at(path, "reservations"), dupKey)})`,
      );
      return;
    }
    reservations.push({ mac, clientId, address, hostname });
  });

  const leaseFile = optStr(ctx, tt, "lease_file", path) ?? `/var/lib/tapir/${ifName}.dhcp4.leases`;
  if (leaseFile === "") ctx.err(at(path, "lease_file"), `lease_file is empty`);
  return {
    enabled,
    leaseFile,
    settings: {
      pools: pools.map(({ start, end }) => ({ start, end })),
      leaseTime: Math.floor(leaseTime / S),
      routers,
      dnsServers,
      domain,
      search,
      mtu,
      ntpServers,
      routes,
      options,
      reservations,
      authoritative: bool(ctx, tt, "authoritative", path, true),
      declineTime: Math.floor(declineTime / S),
      conflictProbeMs: duration(ctx, tt, "conflict_probe", path, 500, 0, 10 * S),
      relaySubnets,
    },
  };
}

/** `addresses = ["dhcp"]` with `[interface.dhcp_client]`: the DHCPv4 client of a WAN interface. */
export interface DhcpClientConfig {
  /** Option 12 (default: `router.hostname`). */
  hostname: string;
  /** Option 61 as bytes, or null: the server knows the client by its MAC. */
  clientId: Uint8Array | null;
  /** Metric of the routes the lease installs. */
  routeMetric: number;
  /** ARP probes before the address is used; 0 skips the conflict check. */
  probes: number;
}

const DHCP_CLIENT_KEYS = ["hostname", "client_id", "route_metric", "probes"] as const;

/**
 * Validate `[interface.dhcp_client]`; `wanted` is whether the interface's
 * addresses name "dhcp". Null when it does not.
 */
export function validateDhcpClient(
  ctx: Ctx,
  raw: unknown,
  path: string,
  wanted: boolean,
  hostname: string,
): DhcpClientConfig | null {
  const t = raw === undefined ? {} : readTable(ctx, raw, path, DHCP_CLIENT_KEYS);
  if (!wanted) {
    if (raw !== undefined) {
      ctx.err(path, `[dhcp_client] needs "dhcp" in this interface's addresses`);
    }
    return null;
  }
  if (!t) return null;
  const h = optStr(ctx, t, "hostname", path) ?? hostname;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(h)) {
    ctx.err(
      at(path, "hostname"),
      `bad hostname "${h}" (letters, digits, ".", "_" and "-", at most 63)`,
    );
  }
  let clientId: Uint8Array | null = null;
  if (t.client_id !== undefined) {
    const x = typeof t.client_id === "string" ? t.client_id.replace(/[:\s]/g, "") : "";
    if (!/^([0-9a-fA-F]{2}){2,255}$/.test(x)) {
      ctx.err(
        at(path, "client_id"),
        `expected hex bytes such as "01:02:00:00:00:00:01", found ${describe(t.client_id)}`,
      );
    } else clientId = new Uint8Array(x.match(/../g)!.map((b) => parseInt(b, 16)));
  }
  return {
    hostname: h,
    clientId,
    routeMetric: optInt(ctx, t, "route_metric", path, 0, 0xffffffff) ?? 1024,
    probes: optInt(ctx, t, "probes", path, 0, 10) ?? 2,
  };
}
