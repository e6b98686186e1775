/**
 * `tapir show` as text, in the forms users read from iproute2 and
 * conntrack-tools: `routes` like `ip route` / `ip -6 route`, `addresses`
 * like `ip addr`, `neighbors` like `ip neigh`, `conntrack` like
 * `conntrack -L`, and `ra` as radvd-style settings plus what the host side
 * learned. Input is the control socket's JSON (see cmd/control.ts).
 *
 * @module
 */
import type { AddressInfo, LeaseRow, RouteInfo } from "./control.ts";
import type { ConnectionInfo } from "../stack/firewall/mod.ts";
import type { Dhcpv4LeaseInfo } from "../stack/mod.ts";

/** `ip route` and `ip -6 route` lines, IPv4 first. */
export function formatRoutes(routes: RouteInfo[]): string {
  const line = (r: RouteInfo) => {
    const to = r.to === "0.0.0.0/0" || r.to === "::/0" ? "default" : r.to;
    const parts: string[] = r.type === "unicast" ? [to] : [r.type, to];
    if (r.via !== null) parts.push("via", r.via);
    if (r.dev !== null && r.type === "unicast") parts.push("dev", r.dev);
    parts.push("proto", r.proto);
    // `ip -6 route` shows no scope; `ip route` shows "scope link" for connected routes.
    if (r.scope === "link" && !r.to.includes(":")) parts.push("scope", "link");
    if (r.src !== null) parts.push("src", r.src);
    if (r.metric !== 0 || r.to.includes(":")) parts.push("metric", String(r.metric));
    if (r.pref !== undefined) parts.push("pref", r.pref);
    return parts.join(" ");
  };
  const v4 = routes.filter((r) => !r.to.includes(":")).map(line);
  const v6 = routes.filter((r) => r.to.includes(":")).map(line);
  return [...v4, ...v6].map((l) => l + "\n").join("");
}

interface NicAddresses {
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
  addr_info: AddressInfo[];
}

const lftText = (s: number | null) => s === null ? "forever" : `${s}sec`;

/** `ip addr` blocks. */
export function formatAddresses(nics: Record<string, NicAddresses>): string {
  const out: string[] = [];
  for (const [name, n] of Object.entries(nics)) {
    const flags = n.up ? "BROADCAST,MULTICAST,UP,LOWER_UP" : "BROADCAST,MULTICAST";
    out.push(`${n.ifindex}: ${name}: <${flags}> mtu ${n.mtu} state ${n.up ? "UP" : "DOWN"}`);
    out.push(`    link/ether ${n.mac} brd ff:ff:ff:ff:ff:ff`);
    for (const a of n.addr_info) {
      const words = [`${a.family} ${a.local}/${a.prefixlen}`];
      if (a.broadcast !== undefined) words.push(`brd ${a.broadcast}`);
      words.push(`scope ${a.scope}`);
      // ip's words: SLAAC addresses are "dynamic mngtmpaddr"; DAD states as flags.
      if (a.origin === "slaac") words.push("dynamic mngtmpaddr");
      // A DHCP lease: "dynamic", as on an address dhclient or networkd set.
      if (a.origin === "dhcp") words.push("dynamic");
      if (a.state === "tentative") words.push("tentative");
      if (a.state === "dadfailed") words.push("dadfailed tentative");
      if (a.state === "deprecated") words.push("deprecated");
      if (a.family === "inet") words.push(name);
      out.push(`    ${words.join(" ")}`);
      out.push(
        `       valid_lft ${lftText(a.valid_lft)} preferred_lft ${lftText(a.preferred_lft)}`,
      );
    }
  }
  return out.map((l) => l + "\n").join("");
}

interface NeighborRow {
  dev: string;
  address: string;
  mac: string | null;
  state: string;
  router: boolean;
}

/** `ip neigh` lines. */
export function formatNeighbors(rows: NeighborRow[]): string {
  return rows.map((r) =>
    [
      r.address,
      "dev",
      r.dev,
      ...(r.mac !== null ? ["lladdr", r.mac] : []),
      ...(r.router ? ["router"] : []),
      r.state.toUpperCase(),
    ].join(" ") + "\n"
  ).join("");
}

/** `conntrack -L` lines (with the counters of `-o extended`'s accounting). */
export function formatConntrack(rows: ConnectionInfo[]): string {
  const tuple = (t: ConnectionInfo["orig"], ports: boolean) =>
    `src=${t.src} dst=${t.dst}` + (ports ? ` sport=${t.sport} dport=${t.dport}` : "");
  const lines = rows.map((c) => {
    const ports = c.orig.sport !== undefined;
    const w = [c.proto.padEnd(8), String(c.protoNumber), String(c.timeout)];
    if (c.state !== null) w.push(c.state);
    w.push(tuple(c.orig, ports), `packets=${c.packets[0]} bytes=${c.bytes[0]}`);
    if (!c.seenReply) w.push("[UNREPLIED]");
    w.push(tuple(c.reply, ports), `packets=${c.packets[1]} bytes=${c.bytes[1]}`);
    if (c.assured) w.push("[ASSURED]");
    w.push("mark=0", "use=1");
    return w.join(" ");
  });
  lines.push(
    `conntrack: ${rows.length} flow entr${rows.length === 1 ? "y has" : "ies have"} been shown.`,
  );
  return lines.map((l) => l + "\n").join("");
}

const life = (s: number | null) => s === null ? "infinity" : `${s}s`;

/** The RA settings each interface advertises, and what accept_ra interfaces learned. */
export function formatRa(answer: { interfaces: Record<string, Record<string, unknown>> }): string {
  const out: string[] = [];
  for (const [name, i] of Object.entries(answer.interfaces)) {
    out.push(`${name}:`);
    const a = i.advertised as
      | {
        interval: { min: number; max: number };
        routerLifetime: number;
        preference: string;
        managed: boolean;
        otherConfig: boolean;
        mtu?: number;
        prefixes: {
          prefix: string;
          onLink: boolean;
          autonomous: boolean;
          validLifetime: number | null;
          preferredLifetime: number | null;
        }[];
        rdnss: string[];
        dnssl: string[];
        routes: { prefix: string; preference: string; lifetime: number | null }[];
      }
      | undefined;
    if (a !== undefined) {
      const next = i.nextRaInSeconds as number | null;
      out.push(
        `  advertising: interval ${a.interval.min}..${a.interval.max}s, router lifetime ${a.routerLifetime}s, ` +
          `preference ${a.preference}, managed ${a.managed ? "on" : "off"}, other ${
            a.otherConfig ? "on" : "off"
          }` + (a.mtu !== undefined ? `, mtu ${a.mtu}` : "") +
          `; next RA in ${
            next === null ? "(waiting for the link-local address)" : `${next.toFixed(1)}s`
          }`,
      );
      for (const p of a.prefixes) {
        out.push(
          `  prefix ${p.prefix} ${p.onLink ? "on-link" : "off-link"} ${
            p.autonomous ? "autonomous" : "no-autoconf"
          } valid ${life(p.validLifetime)} preferred ${life(p.preferredLifetime)}`,
        );
      }
      for (const r of a.routes) {
        out.push(`  route ${r.prefix} preference ${r.preference} lifetime ${life(r.lifetime)}`);
      }
      if (a.rdnss.length > 0) out.push(`  rdnss ${a.rdnss.join(" ")}`);
      if (a.dnssl.length > 0) out.push(`  dnssl ${a.dnssl.join(" ")}`);
    }
    if (i.acceptRa === true) {
      const routers = (i.routers ?? []) as {
        address?: string;
        lifetime?: number | null;
        preference?: string;
      }[];
      const prefixes = (i.prefixes ?? []) as {
        prefix: string;
        validLifetime: number | null;
        preferredLifetime: number | null;
      }[];
      out.push(`  accept_ra: ${routers.length} router(s), ${prefixes.length} prefix(es)`);
      for (const r of routers) {
        out.push(
          `  router ${r.address ?? "?"} lifetime ${life(r.lifetime ?? null)} preference ${
            r.preference ?? "medium"
          }`,
        );
      }
      for (const p of prefixes) {
        out.push(
          `  learned prefix ${p.prefix} valid ${life(p.validLifetime)} preferred ${
            life(p.preferredLifetime)
          }`,
        );
      }
    }
  }
  return out.map((l) => l + "\n").join("");
}

/**
 * DHCPv4 leases, one per line as dnsmasq's lease file reads (expiry,
 * MAC, address, hostname, client id), with the interface and state.
 */
export function formatLeases(rows: LeaseRow[]): string {
  const served = rows.filter((l) => l.role === "server") as Dhcpv4LeaseInfo[];
  const lines = served.map((l) =>
    [
      l.interface,
      l.address,
      l.mac || "*",
      l.hostname ?? "*",
      l.clientId ?? "*",
      l.expired && l.state === "bound" ? "expired" : l.state,
      new Date(l.expires).toISOString(),
      // DHCPv6: which IA, and where a delegated prefix is routed.
      ...(l.ia !== undefined ? [`ia_${l.ia}`, `iaid ${l.iaid}`] : []),
      ...(l.via !== undefined ? [`via ${l.via}`] : []),
    ].join(" ")
  );
  lines.push(`${served.length} lease${served.length === 1 ? "" : "s"}`);
  // What tapir's own DHCPv4 clients hold, as dhcpcd -U would tell.
  for (const c of rows) {
    if (c.role === "client6") {
      const words = [`client6 ${c.interface} ${c.state}`];
      if (c.address !== null) {
        words.push(`address ${c.address} valid_lft ${c.address_valid_lft}sec`);
      }
      if (c.prefix !== null) words.push(`prefix ${c.prefix} valid_lft ${c.prefix_valid_lft}sec`);
      if (c.server !== null) words.push(`server ${c.server}`);
      if (c.dns_servers.length > 0) words.push(`dns ${c.dns_servers.join(",")}`);
      if (c.domains.length > 0) words.push(`search ${c.domains.join(",")}`);
      lines.push(words.join(" "));
      continue;
    }
    if (c.role !== "client") continue;
    if (c.address === null) {
      lines.push(`client ${c.interface} ${c.mac} ${c.state}, no lease`);
      continue;
    }
    const words = [`client ${c.interface} ${c.address}/${c.prefixlen} ${c.mac} ${c.state}`];
    words.push(`server ${c.server}`);
    if (c.routers.length > 0) words.push(`router ${c.routers.join(",")}`);
    if (c.dns_servers.length > 0) words.push(`dns ${c.dns_servers.join(",")}`);
    if (c.domain !== null) words.push(`domain ${c.domain}`);
    words.push(`lease ${c.lease_time}sec valid_lft ${c.valid_lft}sec`);
    lines.push(words.join(" "));
  }
  return lines.map((l) => l + "\n").join("");
}

/** `show dns`: the cache and the upstreams, as dnsmasq's SIGUSR1 dump tells them. */
// deno-lint-ignore no-explicit-any
export function formatDns(a: any): string {
  if (a === null) return "no DNS forwarder ([dns] is off)\n";
  const pct = (a.hit_ratio * 100).toFixed(1);
  const lines = [
    `cache ${a.cache.entries}/${a.cache.size} entries, ${a.queries} queries, ${a.cache_hits} from the cache (${pct} %), ${a.local_answers} local, ${a.forwarded} forwarded, ${a.servfail} SERVFAIL`,
  ];
  for (const u of a.upstreams) {
    lines.push(
      `upstream ${u.address} ${u.up ? "up" : "down"}${
        u.rttMs === null ? "" : ` rtt ${u.rttMs} ms`
      } timeouts ${u.timeouts}`,
    );
  }
  if (a.upstreams.length === 0) {
    lines.push("no upstream (none configured, no WAN lease with DNS servers)");
  }
  return lines.map((l) => l + "\n").join("");
}

/**
 * `show sockets`: TCP listeners and connections as `ss -tani` prints them
 * (State, Recv-Q, Send-Q, Local and Peer Address:Port), each connection
 * followed by its TCP_INFO line (congestion control, wscale, rto, rtt,
 * mss, cwnd, ssthresh, bytes, retransmits).
 */
// deno-lint-ignore no-explicit-any
export function formatSockets(a: any): string {
  const rows: string[][] = [[
    "State",
    "Recv-Q",
    "Send-Q",
    "Local Address:Port",
    "Peer Address:Port",
  ]];
  const extra: (string | null)[] = [null];
  for (const s of a.tcp) {
    rows.push([s.state, String(s.recv_q), String(s.send_q), s.local, s.peer]);
    const i = s.info;
    if (i === undefined) {
      extra.push(null);
      continue;
    }
    const w = [i.congestion];
    if (i.sendWscale > 0 || i.receiveWscale > 0) {
      w.push(`wscale:${i.sendWscale},${i.receiveWscale}`);
    }
    if (i.timestamps) w.push("ts");
    if (i.sack) w.push("sack");
    w.push(`rto:${Math.round(i.rtoMs)}`);
    if (i.rttMs >= 0) w.push(`rtt:${i.rttMs.toFixed(3)}/${i.rttVarMs.toFixed(3)}`);
    w.push(`mss:${i.mss}`, `cwnd:${i.cwndSegments}`);
    if (i.ssthresh < 0x7fffffff) w.push(`ssthresh:${Math.floor(i.ssthresh / i.mss)}`);
    w.push(
      `bytes_sent:${i.bytesSent}`,
      `bytes_acked:${i.bytesAcked}`,
      `bytes_received:${i.bytesReceived}`,
      `segs_out:${i.segmentsSent}`,
      `segs_in:${i.segmentsReceived}`,
    );
    if (i.retransmits > 0) w.push(`retrans:${i.retransmits}`);
    w.push(`snd_wnd:${i.sendWindow}`, `rcv_wnd:${i.receiveWindow}`);
    extra.push("\t " + w.join(" "));
  }
  if (rows.length === 1) return "no TCP sockets\n";
  const width = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const out: string[] = [];
  rows.forEach((r, k) => {
    out.push(r.map((cell, c) => c === r.length - 1 ? cell : cell.padEnd(width[c]! + 1)).join(" "));
    if (extra[k] !== null && extra[k] !== undefined) out.push(extra[k]!);
  });
  return out.map((l) => l + "\n").join("");
}
