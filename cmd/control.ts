/**
 * The control socket of a running tapir: a Unix stream socket (mode 0600)
 * that answers one request line (`stats`, `routes`, `neighbors`,
 * `addresses`, `ra`, `firewall`, `reload`, `set add|del|list ...`) with
 * one JSON document, then closes. `tapir show`, `tapir reload` and `tapir set` are its clients.
 *
 * One socket per instance: the default path names the hostname and the
 * network namespace (`$TMPDIR/tapir-<hostname>-<netns inode>.sock`), so two
 * tapirs with one hostname in two namespaces each have their own, and a
 * `tapir show` run in a namespace finds the tapir of that namespace. A
 * start whose socket answers from a live tapir refuses; a stale file (no
 * one answers) is replaced.
 *
 * @module
 */
import {
  Dhcpv4Client,
  type Dhcpv4LeaseInfo,
  Dhcpv4Server,
  Dhcpv6Client,
  type Dhcpv6LeaseInfo,
  Dhcpv6Server,
  DnsForwarder,
  type Stack,
} from "../stack/mod.ts";
import { formatIpv4, formatIpv6, formatMac, hexColon } from "../stack/wire/mod.ts";
import { nudStateName } from "../stack/neighbor_cache.ts";
import { formatSetEntry, type SetEntryInfo, SetError } from "../stack/firewall/mod.ts";
import { inodeOf } from "./_sys.ts";

/**
 * The inode of this process's network namespace (`/proc/self/ns/net`, what
 * `ip netns identify` compares), or null without `--allow-ffi`.
 */
export function netnsId(): string | null {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  try {
    return inodeOf("/proc/self/ns/net")?.toString() ?? null;
  } catch {
    return null;
  }
}

/** The default socket path for a tapir whose hostname is `hostname`, in this network namespace. */
export function defaultControlPath(hostname: string): string {
  const dir = Deno.env.get("TMPDIR") ?? "/tmp";
  const ns = netnsId();
  return ns === null ? `${dir}/tapir-${hostname}.sock` : `${dir}/tapir-${hostname}-${ns}.sock`;
}

/** Another tapir answers on the control socket path. */
export class ControlInUseError extends Error {
  constructor(readonly path: string) {
    super(
      `another tapir answers on the control socket ${path}; stop it, or give this one its own ` +
        `socket with --control PATH`,
    );
    this.name = "ControlInUseError";
  }
}

/** Requests the running program answers itself (beyond the stack's read-only ones). */
export type ControlHandlers = Record<string, () => unknown | Promise<unknown>>;

/** `ip`'s scope of an address. */
function scopeOf(a: number | Uint8Array): "host" | "link" | "global" {
  if (typeof a === "number") return (a >>> 24) === 127 ? "host" : "global";
  if (a.every((x, i) => x === (i === 15 ? 1 : 0))) return "host";
  return a[0] === 0xfe && (a[1]! & 0xc0) === 0x80 ? "link" : "global";
}

/** Seconds left until clock time `until` (null: forever). */
function lft(until: number, now: number): number | null {
  return Number.isFinite(until) ? Math.max(0, Math.floor((until - now) / 1000)) : null;
}

/** One route as `ip -j route` would name its parts. */
export interface RouteInfo {
  to: string;
  type: string;
  via: string | null;
  dev: string | null;
  /** `kernel` (connected), `static`, `ra`. */
  proto: string;
  scope: "link" | "global";
  /** The preferred source of a connected route. */
  src: string | null;
  metric: number;
  /** Who added it (connected, static, ra, local). */
  source: string;
  /** RFC 4191 preference of an IPv6 route. */
  pref?: string;
}

function routes(stack: Stack): RouteInfo[] {
  const out: RouteInfo[] = [];
  const proto = (s: string) => s === "connected" ? "kernel" : s === "ra" ? "ra" : s;
  for (const r of stack.ipv4.routes.routes()) {
    const nic = stack.nics.get(r.nicId);
    const connected = r.source === "connected";
    out.push({
      to: `${formatIpv4(r.prefix)}/${r.prefixLen}`,
      type: r.type,
      via: r.gateway === null ? null : formatIpv4(r.gateway),
      dev: nic?.name ?? null,
      proto: proto(r.source),
      scope: connected ? "link" : "global",
      src: connected && nic !== undefined
        ? (() => {
          const s = stack.ipv4.sourceFor(nic, r.prefix);
          return s === null ? null : formatIpv4(s);
        })()
        : null,
      metric: r.metric,
      source: r.source,
    });
  }
  for (const r of stack.ipv6.routes.routes()) {
    const pref = (r as { preference?: number }).preference ?? 0;
    out.push({
      to: `${formatIpv6(r.prefix)}/${r.prefixLen}`,
      type: r.type,
      via: r.gateway === null ? null : formatIpv6(r.gateway),
      dev: stack.nics.get(r.nicId)?.name ?? null,
      proto: proto(r.source),
      scope: r.source === "connected" ? "link" : "global",
      src: null,
      metric: r.metric,
      source: r.source,
      pref: pref > 0 ? "high" : pref < 0 ? "low" : "medium",
    });
  }
  return out;
}

/** One address as `ip -j addr`'s addr_info names its parts. */
export interface AddressInfo {
  family: "inet" | "inet6";
  local: string;
  prefixlen: number;
  broadcast?: string;
  scope: "host" | "link" | "global";
  /** static, link-local, slaac. */
  origin: string;
  /** IPv6 DAD/lifetime state: tentative, preferred, deprecated, dadfailed. */
  state: string;
  /** Seconds (null: forever). */
  valid_lft: number | null;
  preferred_lft: number | null;
}

function addresses(stack: Stack): Record<string, unknown> {
  const now = stack.clock.now();
  const out: Record<string, unknown> = {};
  for (const nic of stack.nics.values()) {
    const info: AddressInfo[] = [];
    let client: Dhcpv4Client | undefined;
    for (const sv of stack.services.values()) {
      if (sv instanceof Dhcpv4Client && sv.nic === nic) client = sv;
    }
    for (const a of stack.ipv4.nicState(nic)?.addresses ?? []) {
      // A leased address counts down as iproute2 shows a dynamic one.
      const leased = client?.lease?.address === a.address ? client.expires : undefined;
      const lft = leased === undefined
        ? null
        : leased === null
        ? null
        : Math.max(0, Math.floor((leased - now) / 1000));
      info.push({
        family: "inet",
        local: formatIpv4(a.address),
        prefixlen: a.prefixLen,
        ...(a.broadcast !== null ? { broadcast: formatIpv4(a.broadcast) } : {}),
        scope: scopeOf(a.address),
        origin: leased !== undefined ? "dhcp" : "static",
        state: "preferred",
        valid_lft: lft,
        preferred_lft: lft,
      });
    }
    for (const a of stack.ipv6.nicState(nic)?.addresses ?? []) {
      info.push({
        family: "inet6",
        local: formatIpv6(a.address),
        prefixlen: a.prefixLen,
        scope: scopeOf(a.address),
        origin: a.origin,
        state: a.state === "duplicate" ? "dadfailed" : a.state,
        valid_lft: lft(a.validUntil, now),
        preferred_lft: lft(a.preferredUntil, now),
      });
    }
    out[nic.name] = {
      ifindex: nic.id,
      mac: formatMac(nic.mac),
      mtu: nic.mtu(),
      up: nic.isUp(),
      // "a/len" and IPv6 "a/len state" strings, kept for scripts written against them.
      ipv4: stack.ipv4.describeAddresses(nic),
      ipv6: stack.ipv6.describeAddresses(nic),
      addr_info: info,
    };
  }
  return out;
}

function ra(stack: Stack): unknown {
  const out: Record<string, unknown> = {};
  const advertising = new Set(stack.ra.routerNics());
  for (const nic of stack.nics.values()) {
    const host = stack.ra.hostState(nic);
    const adv = stack.ra.advertState(nic);
    if (host === null && adv === null) continue;
    const c = adv?.settings;
    out[nic.name] = {
      advertising: advertising.has(nic),
      acceptRa: host !== null,
      ...(c === undefined ? {} : {
        advertised: {
          interval: { min: c.minInterval / 1000, max: c.maxInterval / 1000 },
          routerLifetime: c.routerLifetime / 1000,
          preference: c.preference,
          managed: c.managed,
          otherConfig: c.otherConfig,
          curHopLimit: c.curHopLimit,
          reachableTime: c.reachableTime,
          retransTimer: c.retransTimer,
          ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
          prefixes: c.prefixes.map((p) => ({
            prefix: `${formatIpv6(p.prefix.address)}/${p.prefix.prefixLen}`,
            onLink: p.onLink,
            autonomous: p.autonomous,
            validLifetime: p.validLifetime / 1000,
            preferredLifetime: p.preferredLifetime / 1000,
          })),
          rdnss: c.rdnss.flatMap((r) => r.addresses.map((a) => formatIpv6(a))),
          dnssl: c.dnssl.flatMap((d) => d.domains),
          routes: c.routes.map((r) => ({
            prefix: `${formatIpv6(r.prefix.address)}/${r.prefix.prefixLen}`,
            preference: r.preference,
            lifetime: r.lifetime / 1000,
          })),
        },
        nextRaInSeconds: adv!.nextInMs === null ? null : adv!.nextInMs / 1000,
      }),
      ...host,
    };
  }
  return { interfaces: out, stats: { ...stack.ra.stats } };
}

/** A lease tapir's DHCPv4 client holds (or seeks: `address` null), as `show leases` lists it. */
export interface ClientLeaseRow {
  role: "client";
  interface: string;
  /** The client's state: selecting, requesting, probing, bound, renewing, rebinding, declined. */
  state: string;
  address: string | null;
  prefixlen: number | null;
  mac: string;
  server: string | null;
  routers: string[];
  dns_servers: string[];
  domain: string | null;
  /** Seconds: the lease as given, and what is left of it. */
  lease_time: number | null;
  valid_lft: number | null;
}

/** One row of `show leases`: a lease tapir's server gave, or one its client holds. */
/** What tapir's DHCPv6 client holds, as `show leases` lists it. */
export interface Client6LeaseRow {
  role: "client6";
  interface: string;
  /** soliciting, requesting, bound, renewing, rebinding or declined. */
  state: string;
  address: string | null;
  /** The delegated prefix as `prefix/len`, or null. */
  prefix: string | null;
  /** The server's DUID (colon hex), or null. */
  server: string | null;
  dns_servers: string[];
  domains: string[];
  /** Seconds left of the address and of the prefix. */
  address_valid_lft: number | null;
  prefix_valid_lft: number | null;
}

export type LeaseRow =
  | ((Dhcpv4LeaseInfo | Dhcpv6LeaseInfo) & { role: "server" })
  | ClientLeaseRow
  | Client6LeaseRow;

/**
 * Every lease of every DHCPv4 server by interface and address, then every
 * DHCPv6 server's (addresses, then delegated prefixes, with `ia`, `iaid`
 * and for a prefix `via`), then each DHCPv4 client's.
 */
function leases(stack: Stack): LeaseRow[] {
  const out: LeaseRow[] = [];
  for (const sv of stack.services.values()) {
    if (sv instanceof Dhcpv4Server) {
      for (const l of sv.leases()) out.push({ role: "server", ...l });
    }
  }
  for (const sv of stack.services.values()) {
    if (sv instanceof Dhcpv6Server) {
      for (const l of sv.leases()) out.push({ role: "server", ...l });
    }
  }
  const now = stack.clock.now();
  for (const sv of stack.services.values()) {
    if (!(sv instanceof Dhcpv4Client)) continue;
    const l = sv.lease;
    const exp = sv.expires;
    out.push({
      role: "client",
      interface: sv.nic.name,
      state: sv.state,
      address: l === null ? null : formatIpv4(l.address),
      prefixlen: l?.prefixLen ?? null,
      mac: formatMac(sv.nic.mac),
      server: l === null ? null : formatIpv4(l.server),
      routers: l?.routers.map(formatIpv4) ?? [],
      dns_servers: l?.dnsServers.map(formatIpv4) ?? [],
      domain: l?.domain ?? null,
      lease_time: l?.leaseTime ?? null,
      valid_lft: exp === null ? null : Math.max(0, Math.floor((exp - now) / 1000)),
    });
  }
  for (const sv of stack.services.values()) {
    if (!(sv instanceof Dhcpv6Client)) continue;
    const l = sv.lease;
    const left = (t: number | undefined) =>
      t === undefined
        ? null
        : t === Infinity
        ? 0xffffffff
        : Math.max(0, Math.floor((t - now) / 1000));
    out.push({
      role: "client6",
      interface: sv.nic.name,
      state: sv.state,
      address: l?.address ? formatIpv6(l.address.address) : null,
      prefix: l?.prefix ? `${formatIpv6(l.prefix.prefix)}/${l.prefix.prefixLen}` : null,
      server: l === null ? null : hexColon(l.serverId),
      dns_servers: l?.dnsServers.map((a) => formatIpv6(a)) ?? [],
      domains: l?.domains ?? [],
      address_valid_lft: left(l?.address?.validUntil),
      prefix_valid_lft: left(l?.prefix?.validUntil),
    });
  }
  return out;
}

/** One end of a socket as `ss` prints it: `192.0.2.1:80`, `[2001:db8::1]:80`, `*:80`. */
function ssEnd(a: number | Uint8Array | null, port: number | null, family: 0 | 4 | 6): string {
  const p = port === null ? "*" : String(port);
  if (a === null) return family === 4 ? `0.0.0.0:${p}` : family === 6 ? `[::]:${p}` : `*:${p}`;
  return typeof a === "number" ? `${formatIpv4(a)}:${p}` : `[${formatIpv6(a)}]:${p}`;
}

/** TCP listeners and connections (`show sockets`, shaped like `ss -tani`). */
function sockets(stack: Stack): unknown {
  const tcp = stack.tcp;
  const listeners = [...tcp.listeners()].map((l) => ({
    state: "LISTEN",
    recv_q: l.acceptQueue.length,
    send_q: l.backlog,
    local: ssEnd(l.address, l.port, l.family),
    peer: ssEnd(null, null, l.family),
    syn_recv: l.synCount,
    accepted: l.accepted,
    ...(l.device !== null ? { dev: l.device.name } : {}),
  }));
  const connections = [...tcp.connections()].map((c) => {
    const i = c.info();
    return {
      state: i.state,
      recv_q: i.receiveQueue,
      send_q: i.sendQueue,
      local: ssEnd(c.local, c.localPort, c.family),
      peer: ssEnd(c.remote, c.remotePort, c.family),
      info: i,
    };
  });
  return { tcp: [...listeners, ...connections] };
}

/** The DNS forwarder: cache, hit ratio, upstreams (`show dns`); null when `[dns]` is off. */
function dnsInfo(stack: Stack): unknown {
  const f = stack.services.get("dns");
  if (!(f instanceof DnsForwarder)) return null;
  const s = f.stats;
  return {
    cache: { entries: f.cacheEntries, size: f.settings.cacheSize },
    queries: s.queriesReceived,
    cache_hits: s.cacheHits,
    hit_ratio: s.queriesReceived === 0 ? 0 : s.cacheHits / s.queriesReceived,
    local_answers: s.localAnswers,
    forwarded: s.forwarded,
    servfail: s.servfailSent,
    upstreams: f.upstreams(),
    stats: { ...s },
  };
}

/** What `set list NAME` answers: the set's definition and live entries. */
export interface SetListAnswer {
  name: string;
  type: string;
  /** 4, 6 or 0 (both). */
  family: 0 | 4 | 6;
  /** Default entry timeout in seconds (0: none). */
  timeout: number;
  max_entries: number;
  size: number;
  entries: SetEntryInfo[];
}

/** What `set add` and `set del` answer. */
export interface SetChangeAnswer {
  ok: true;
  set: string;
  /** The entry in its canonical form. */
  entry: string;
  /** add: the entry is new (false: it was there; its timeout restarted); del: it was there. */
  changed: boolean;
  size: number;
}

/**
 * `set add NAME ENTRY [TIMEOUT_MS]`, `set del NAME ENTRY`, `set list
 * [NAME]`: change or show a named set of the running firewall. A change is
 * made between two packets: the next packet a rule tests sees it.
 */
function setAnswer(stack: Stack, words: string[]): unknown {
  const fw = stack.firewall;
  const [op, name, entry, timeout, ...rest] = words;
  const usage = `use "set add NAME ENTRY [TIMEOUT_MS]", "set del NAME ENTRY" or "set list [NAME]"`;
  if (op === "list" && name === undefined) {
    return {
      sets: [...(fw?.sets.values() ?? [])].map((s) => ({
        name: s.name,
        type: s.type,
        family: s.family,
        size: s.size,
      })),
    };
  }
  if (op !== "add" && op !== "del" && op !== "list" || name === undefined || rest.length > 0) {
    return { error: `bad set request: ${usage}` };
  }
  const set = fw?.sets.get(name);
  if (set === undefined) {
    const names = [...(fw?.sets.keys() ?? [])];
    return {
      error: `no set named "${name}" (${
        names.length === 0 ? "the configuration defines none" : `the sets: ${names.join(", ")}`
      })`,
    };
  }
  if (op === "list") {
    if (entry !== undefined) return { error: `bad set request: ${usage}` };
    const answer: SetListAnswer = {
      name: set.name,
      type: set.type,
      family: set.family,
      timeout: set.timeout / 1000,
      max_entries: set.maxEntries,
      size: set.size,
      entries: set.list(),
    };
    answer.size = answer.entries.length;
    return answer;
  }
  if (entry === undefined || (op === "del" && timeout !== undefined)) {
    return { error: `bad set request: ${usage}` };
  }
  let ms: number | undefined;
  if (timeout !== undefined) {
    ms = /^[0-9]{1,13}$/.test(timeout) ? Number(timeout) : NaN;
    if (!Number.isSafeInteger(ms)) return { error: `bad timeout "${timeout}" (milliseconds)` };
  }
  try {
    const e = set.parse(entry);
    const changed = op === "add" ? set.add(e, ms) : set.delete(e);
    const answer: SetChangeAnswer = {
      ok: true,
      set: set.name,
      entry: formatSetEntry(set.type, e),
      changed,
      size: set.size,
    };
    return answer;
  } catch (e) {
    if (e instanceof SetError) return { error: e.message };
    throw e;
  }
}

/** What the socket answers for each request. */
export function controlAnswer(stack: Stack, what: string): unknown {
  if (what === "set" || what.startsWith("set ")) {
    return setAnswer(stack, what.split(/\s+/).slice(1));
  }
  switch (what) {
    case "stats":
      return stack.snapshotStats();
    case "routes":
      return routes(stack);
    case "neighbors": {
      const out: unknown[] = [];
      for (const nic of stack.nics.values()) {
        const st = stack.ipv4.nicState(nic);
        for (const e of st?.neighbors.entries() ?? []) {
          out.push({
            dev: nic.name,
            address: formatIpv4(e.key as number),
            mac: e.mac === null ? null : formatMac(e.mac),
            state: typeof e.state === "number" ? nudStateName(e.state) : e.state,
            router: false,
            queued: e.queued,
          });
        }
        for (const e of stack.ipv6.nicState(nic)?.neighbors.entries() ?? []) {
          out.push({
            dev: nic.name,
            address: e.key,
            mac: e.mac === null ? null : formatMac(e.mac),
            state: e.state,
            router: e.isRouter,
            queued: e.queued,
          });
        }
      }
      return out;
    }
    case "addresses":
      return addresses(stack);
    case "firewall":
      // The iptables-save -c style dump, as text (`tapir show firewall` prints it as is).
      return { dump: stack.firewall?.dump() ?? "# no firewall rules configured\n" };
    case "conntrack":
      return stack.firewall?.connections() ?? [];
    case "ra":
      return ra(stack);
    case "dns":
      return dnsInfo(stack);
    case "sockets":
      return sockets(stack);
    case "leases":
      return leases(stack);
    default:
      return {
        error: `unknown request "${what}": use stats, routes, neighbors, addresses, ra, ` +
          `conntrack, firewall, leases, dns, sockets, set or reload`,
      };
  }
}

/** True when something accepts connections on the Unix socket at `path`. */
async function answers(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Serve `stack` on the Unix socket at `path` until `close()`.
 *
 * @throws ControlInUseError when a live tapir answers at `path`
 */
export async function serveControl(
  stack: Stack,
  path: string,
  handlers: ControlHandlers = {},
): Promise<{ close(): void }> {
  if (await answers(path)) throw new ControlInUseError(path);
  try {
    Deno.removeSync(path);
  } catch {
    // No stale socket to remove.
  }
  const listener = Deno.listen({ transport: "unix", path });
  // Only the owner (root for a TAP router) may read counters or reload.
  Deno.chmodSync(path, 0o600);
  const loop = (async () => {
    for await (const conn of listener) {
      (async () => {
        try {
          const buf = new Uint8Array(256);
          const n = await conn.read(buf);
          const what = new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim();
          const h = handlers[what];
          const answer = h !== undefined ? await h() : controlAnswer(stack, what);
          const body = JSON.stringify(answer) + "\n";
          const bytes = new TextEncoder().encode(body);
          let off = 0;
          while (off < bytes.length) off += await conn.write(bytes.subarray(off));
        } catch {
          // A client that went away is not the router's problem.
        } finally {
          try {
            conn.close();
          } catch { /* already closed */ }
        }
      })();
    }
  })();
  return {
    close() {
      listener.close();
      loop.catch(() => {});
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    },
  };
}

/** Ask the tapir at `path` for `what`; the parsed JSON answer. */
export async function queryControl(path: string, what: string): Promise<unknown> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(what + "\n"));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(
      chunks.reduce((a, c) => {
        const m = new Uint8Array(a.length + c.length);
        m.set(a);
        m.set(c, a.length);
        return m;
      }, new Uint8Array()),
    );
    return JSON.parse(text);
  } finally {
    conn.close();
  }
}
