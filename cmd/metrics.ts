/**
 * Prometheus text exposition (format 0.0.4) of every counter of a stack,
 * served by `tapir run` on `[metrics] listen` from the host's own network
 * (Deno.serve, not tapir's stack).
 *
 * Names: `tapir_<owner>_<counter>_total`, snake case. Labels: `interface`
 * for what is kept per NIC, `family` (ipv4/ipv6) where a counter exists per
 * family, and `reason` for drop counters: every `…Dropped` counter of an
 * owner is one sample of `tapir_<owner>_dropped_total{reason="…"}`.
 * Gauges: routes, neighbors and addresses per table, conntrack entries,
 * interface up and MTU.
 *
 * @module
 */
import {
  Dhcpv4Client,
  Dhcpv4Server,
  Dhcpv6Client,
  Dhcpv6Server,
  DnsForwarder,
  type Stack,
} from "../stack/mod.ts";
import { METRIC_HELP } from "./_metric_help.ts";

/** Each owner's stats interfaces, whose JSDoc is the HELP text (cmd/_gen_metric_help.ts). */
const DOCS: Record<string, string[]> = {
  stack: ["StackStats"],
  ip: ["IpStats", "IpForwardingStats"],
  icmp: ["Icmpv4Stats", "Icmpv6Stats"],
  arp: ["ArpStats"],
  udp: ["UdpStats"],
  tcp: ["TcpStats"],
  ndp: ["NdpStats"],
  mld: ["MldStats"],
  nic: ["NicStats"],
  neighbor: ["NeighborStats"],
  link: ["TapStats", "MemoryLinkStats"],
  reassembly: ["ReassemblyStats"],
  ra: ["RaStats"],
  firewall: ["FirewallStats"],
  conntrack: ["ConntrackStats"],
  dhcp4_server: ["Dhcpv4ServerStats"],
  dhcp4_client: ["Dhcpv4ClientStats"],
  dhcp6_server: ["Dhcpv6ServerStats"],
  dhcp6_client: ["Dhcpv6ClientStats"],
  dns: ["DnsForwarderStats"],
};

/** What the counter `key` of `owner` counts (its JSDoc), or a fallback naming it. */
function helpOf(owner: string, path: string, key: string): string {
  const found = new Set<string>();
  for (const d of DOCS[owner] ?? []) {
    const h = METRIC_HELP[d]?.[key];
    if (h !== undefined) found.add(h.replace(/\s+/g, " ").replace(/\\/g, "\\\\"));
  }
  return found.size > 0
    ? [...found].join(" / ")
    : `tapir counter ${owner}.${path.replaceAll("_", ".")}${key}`;
}

interface Family {
  type: "counter" | "gauge";
  help: string;
  samples: string[];
}

/**
 * camelCase → snake_case; "for us" becomes "for this host", since
 * Prometheus' linter reads a `_us` word as microseconds.
 */
const snake = (s: string) =>
  s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[^a-zA-Z0-9_]/g, "_").toLowerCase()
    .replace(/(^|_)for_us(?=_|$)/g, "$1for_this_host");

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

function labelText(labels: Record<string, string>): string {
  const l = Object.entries(labels);
  return l.length === 0 ? "" : `{${l.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}

class Exposition {
  readonly #families = new Map<string, Family>();

  add(name: string, type: Family["type"], help: string, labels: Record<string, string>, v: number) {
    let f = this.#families.get(name);
    if (f === undefined) {
      f = { type, help, samples: [] };
      this.#families.set(name, f);
    }
    f.samples.push(`${name}${labelText(labels)} ${Number.isFinite(v) ? v : 0}`);
  }

  /** Every number under `tree` as counters of `owner`, with `labels`. */
  counters(owner: string, tree: unknown, labels: Record<string, string>, path = ""): void {
    if (tree === null || typeof tree !== "object") return;
    for (const [k, v] of Object.entries(tree)) {
      if (typeof v === "number") {
        const m = /^(.+)Dropped$/.exec(k);
        if (m !== null) {
          this.add(
            `tapir_${owner}_${path}dropped_total`,
            "counter",
            `Packets or frames the ${owner} layer dropped, by reason`,
            { ...labels, reason: snake(m[1]!) },
            v,
          );
        } else {
          const name = `tapir_${owner}_${path}${snake(k)}_total`;
          this.add(
            name,
            "counter",
            helpOf(owner, path, k),
            labels,
            v,
          );
        }
      } else if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        this.counters(owner, v, labels, `${path}${snake(k)}_`);
      }
    }
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`, ...f.samples);
    }
    return out.join("\n") + "\n";
  }
}

const FAMILY_OF: Record<string, [string, string]> = {
  ipv4: ["ip", "ipv4"],
  ipv6: ["ip", "ipv6"],
  icmpv4: ["icmp", "ipv4"],
  icmpv6: ["icmp", "ipv6"],
};

/** The exposition text of `stack`'s counters and table sizes. */
export function renderMetrics(stack: Stack): string {
  const x = new Exposition();
  const s = stack.snapshotStats();
  for (const [k, v] of Object.entries(s.stack)) {
    const fam = FAMILY_OF[k];
    if (fam !== undefined) x.counters(fam[0], v, { family: fam[1] });
    else if (typeof v === "object") x.counters(k, v, {});
    else x.counters("stack", { [k]: v }, {});
  }
  for (const [nic, v] of Object.entries(s.nics)) x.counters("nic", v, { interface: nic });
  for (const [nic, caches] of Object.entries(s.neighbors)) {
    for (const [proto, v] of Object.entries(caches)) {
      x.counters("neighbor", v, { interface: nic, family: proto === "arp" ? "ipv4" : "ipv6" });
    }
  }
  for (const [nic, v] of Object.entries(s.links)) x.counters("link", v, { interface: nic });
  for (const [fam, v] of Object.entries(s.reassembly)) x.counters("reassembly", v, { family: fam });
  x.counters("ra", s.ra, {});
  // Owners outside the stack (the link driver).
  for (const name of stack.statsSources.keys()) x.counters(name, s[name], {});
  if (s.firewall !== undefined) x.counters("firewall", s.firewall, {});
  if (s.conntrack !== undefined) {
    for (const [fam, v] of Object.entries(s.conntrack)) x.counters("conntrack", v, { family: fam });
  }
  for (const sv of stack.services.values()) {
    if (sv instanceof Dhcpv4Server) {
      x.counters("dhcp4_server", sv.stats, { interface: sv.nic.name });
    }
    if (sv instanceof Dhcpv4Client) {
      x.counters("dhcp4_client", sv.stats, { interface: sv.nic.name });
    }
    if (sv instanceof Dhcpv6Server) {
      x.counters("dhcp6_server", sv.stats, { interface: sv.nic.name });
    }
    if (sv instanceof Dhcpv6Client) {
      x.counters("dhcp6_client", sv.stats, { interface: sv.nic.name });
    }
    if (sv instanceof DnsForwarder) {
      x.counters("dns", sv.stats, {});
      x.add("tapir_dns_cache_entries", "gauge", "Answers in the DNS cache", {}, sv.cacheEntries);
    }
  }
  // Gauges: what the tables hold now.
  x.add(
    "tapir_routes",
    "gauge",
    "Routes in the routing table",
    { family: "ipv4" },
    stack.ipv4.routes.size,
  );
  x.add(
    "tapir_routes",
    "gauge",
    "Routes in the routing table",
    { family: "ipv6" },
    stack.ipv6.routes.size,
  );
  for (const nic of stack.nics.values()) {
    const l = { interface: nic.name };
    x.add("tapir_interface_up", "gauge", "1 when the interface is up", l, nic.isUp() ? 1 : 0);
    x.add("tapir_interface_mtu_bytes", "gauge", "The interface's IP MTU", l, nic.mtu());
    const v4 = stack.ipv4.nicState(nic), v6 = stack.ipv6.nicState(nic);
    const help = "Neighbor cache entries";
    if (v4) {
      x.add(
        "tapir_neighbors",
        "gauge",
        help,
        { ...l, family: "ipv4" },
        v4.neighbors.entries().length,
      );
    }
    if (v6) {
      x.add(
        "tapir_neighbors",
        "gauge",
        help,
        { ...l, family: "ipv6" },
        v6.neighbors.entries().length,
      );
    }
    const ah = "Addresses on the interface";
    x.add("tapir_addresses", "gauge", ah, { ...l, family: "ipv4" }, v4?.addresses.length ?? 0);
    x.add("tapir_addresses", "gauge", ah, { ...l, family: "ipv6" }, v6?.addresses.length ?? 0);
  }
  for (const sv of stack.services.values()) {
    if (sv instanceof Dhcpv6Server) {
      for (const ia of ["na", "pd"] as const) {
        x.add(
          "tapir_dhcp6_leases",
          "gauge",
          "DHCPv6 leases (ia na: addresses, pd: delegated prefixes) bound and not expired",
          { interface: sv.nic.name, ia },
          sv.activeLeases(ia),
        );
      }
    }
    if (!(sv instanceof Dhcpv4Server)) continue;
    x.add(
      "tapir_dhcp4_leases",
      "gauge",
      "DHCPv4 leases bound and not expired",
      { interface: sv.nic.name },
      sv.activeLeases(),
    );
  }
  const fw = stack.firewall;
  if (fw !== null) {
    const h = "Connections in the conntrack table";
    x.add("tapir_conntrack_entries", "gauge", h, { family: "ipv4" }, fw.conntrack.size);
    x.add("tapir_conntrack_entries", "gauge", h, { family: "ipv6" }, fw.conntrack6.size);
  }
  return x.text();
}

/** Serve `GET /metrics` for `stack` on `listen` until `close()`. */
export function serveMetrics(
  stack: Stack,
  listen: { hostname: string; port: number },
  onListen: (addr: Deno.NetAddr) => void = () => {},
): { close(): Promise<void> } {
  const server = Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    onListen: onListen,
  }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/metrics") {
      return new Response("tapir: metrics are at /metrics\n", { status: 404 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405 });
    }
    return new Response(renderMetrics(stack), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  });
  return { close: () => server.shutdown() };
}
