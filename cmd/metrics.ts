/**
 * Prometheus metrics of a running tapir: every counter of
 * `Stack.snapshotStats()` in the text exposition format, with the tree's
 * interface and family keys as labels, and the table sizes as gauges.
 * `tapir run` serves them on `[metrics] listen` with `Deno.serve`, on the
 * host's own network (not through tapir's stack).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Stack } from "../stack/mod.ts";
import { METRIC_HELP } from "./_metric_help.ts";

const log = getLogger(["tapir", "metrics"]);

type Labels = [string, string][];
interface Sample {
  labels: Labels;
  value: number;
}
interface Family {
  type: "counter" | "gauge";
  help: string;
  samples: Sample[];
}

/** Where a group of the tree goes: metric name prefix, labels its keys become, JSDoc interfaces. */
interface Owner {
  prefix: string;
  /** Label names the next keys of the path become, in order. */
  labels: string[];
  docs: string[];
}

const STACK_GROUPS: Record<string, Owner & { family?: string }> = {
  ipv4: { prefix: "ip", labels: [], docs: ["Ipv4Stats"], family: "ipv4" },
  ipv6: { prefix: "ip", labels: [], docs: ["Ipv6Stats"], family: "ipv6" },
  icmpv4: { prefix: "icmp", labels: [], docs: ["Icmpv4Stats"], family: "ipv4" },
  icmpv6: { prefix: "icmp", labels: [], docs: ["Icmpv6Stats"], family: "ipv6" },
};

const OWNERS: Record<string, Owner> = {
  nics: { prefix: "nic", labels: ["interface"], docs: ["NicStats"] },
  links: { prefix: "link", labels: ["interface"], docs: ["TapStats", "MemoryLinkStats"] },
  neighbors: { prefix: "neighbor", labels: ["interface", "family"], docs: ["NeighborStats"] },
  reassembly: { prefix: "reassembly", labels: ["family"], docs: ["ReassemblyStats"] },
  ra: { prefix: "ra", labels: [], docs: ["RaStats"] },
  dispatch: { prefix: "dispatch", labels: [], docs: [] },
};

const GAUGES: Record<string, { name: string; labels: string[]; help: string }> = {
  routes: { name: "routes", labels: ["family"], help: "Routes in the routing table." },
  neighbors: {
    name: "neighbors",
    labels: ["interface", "family"],
    help: "Entries in the neighbor cache (ARP for IPv4, NDP for IPv6).",
  },
  addresses: {
    name: "addresses",
    labels: ["interface", "family"],
    help: "Addresses assigned to the interface (tentative and deprecated ones included).",
  },
  conntrack: {
    name: "conntrack_entries",
    labels: ["family"],
    help: "Connections in the connection tracking table.",
  },
};

const EXTRA_HELP: Record<string, string> = {
  dispatch_exceptions: "Exceptions that escaped a protocol handler while a frame was dispatched.",
  driver_polls: "Iterations of the TAP receive loop that awaited a nonblocking poll.",
  driver_sync_polls: "Synchronous polls of the TAP receive loop while traffic flowed.",
};

function snake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[^A-Za-z0-9_]/g, "_").toLowerCase()
    // "notForUs": promtool reads a "us" word as microseconds.
    .replace(/(^|_)us(?=_|$)/g, "$1this_host");
}

function isTree(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function helpOf(docs: string[], key: string): string | undefined {
  const found = new Set<string>();
  for (const d of docs) {
    const h = METRIC_HELP[d]?.[key];
    if (h !== undefined) found.add(h);
  }
  return found.size === 0 ? undefined : [...found].join(" / ");
}

class Exposition {
  readonly families = new Map<string, Family>();

  add(name: string, type: Family["type"], help: string, labels: Labels, value: number): void {
    let f = this.families.get(name);
    if (f === undefined) {
      f = { type, help, samples: [] };
      this.families.set(name, f);
    } else if (!f.help.includes(help)) {
      f.help = `${f.help} / ${help}`;
    }
    f.samples.push({ labels, value });
  }

  /** Counters of `node`, under metric name parts `parts`; the next keys become `pending` labels. */
  walk(node: unknown, parts: string[], labels: Labels, pending: string[], docs: string[]): void {
    if (typeof node === "number") {
      const key = parts[parts.length - 1] ?? "";
      const base = `tapir_${parts.map(snake).join("_")}`;
      const help = helpOf(docs, key) ?? EXTRA_HELP[base.slice(6)] ??
        `${parts.map(snake).join(" ").replaceAll("_", " ")}.`;
      this.add(`${base}_total`, "counter", help, labels, node);
      return;
    }
    if (!isTree(node)) return;
    for (const [k, v] of Object.entries(node)) {
      if (pending.length > 0) {
        this.walk(v, parts, [...labels, [pending[0]!, k]], pending.slice(1), docs);
      } else {
        this.walk(v, [...parts, k], labels, [], docs);
      }
    }
  }

  gauges(tables: unknown): void {
    if (!isTree(tables)) return;
    for (const [k, v] of Object.entries(tables)) {
      const g = GAUGES[k] ?? { name: snake(k), labels: [], help: `Entries in ${k}.` };
      const visit = (node: unknown, labels: Labels, pending: string[]) => {
        if (typeof node === "number") {
          this.add(`tapir_${g.name}`, "gauge", g.help, labels, node);
        } else if (isTree(node)) {
          for (const [kk, vv] of Object.entries(node)) {
            visit(vv, [...labels, [pending[0] ?? "key", kk]], pending.slice(1));
          }
        }
      };
      visit(v, [], g.labels);
    }
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${name} ${f.type}`);
      for (const s of f.samples) {
        const l = s.labels.length === 0
          ? ""
          : `{${s.labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
        out.push(`${name}${l} ${s.value}`);
      }
    }
    return out.join("\n") + "\n";
  }
}

function escapeHelp(s: string): string {
  return s.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabel(s: string): string {
  return s.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/**
 * A stats snapshot (`Stack.snapshotStats()`) in Prometheus' text
 * exposition format: every counter as `tapir_<owner>_<counter>_total`
 * (`tapir_nic_frames_received_total{interface="lan0"}`,
 * `tapir_ip_packets_forwarded_total{family="ipv4"}`), the `tables` part as
 * gauges (`tapir_routes{family="ipv6"}`).
 *
 * @param snapshot what `Stack.snapshotStats()` returns
 * @returns the exposition text
 */
export function renderMetrics(snapshot: Record<string, unknown>): string {
  const e = new Exposition();
  for (const [owner, node] of Object.entries(snapshot)) {
    if (owner === "tables") {
      e.gauges(node);
    } else if (owner === "stack" && isTree(node)) {
      for (const [k, v] of Object.entries(node)) {
        const g = STACK_GROUPS[k];
        if (typeof v === "number") e.walk(v, [k], [], [], ["StackStats"]);
        else if (g !== undefined) {
          e.walk(v, [g.prefix], g.family ? [["family", g.family]] : [], [], g.docs);
        } else {
          const doc = `${k.charAt(0).toUpperCase()}${k.slice(1)}Stats`;
          e.walk(v, [k], [], [], [doc]);
        }
      }
    } else if (owner === "firewall" && isTree(node)) {
      for (const [k, v] of Object.entries(node)) {
        if (k === "conntrack") e.walk(v, ["conntrack"], [], ["family"], ["ConntrackStats"]);
        else if (k === "filter") e.walk(v, ["firewall"], [], [], ["FirewallStats"]);
        else e.walk(v, ["firewall", k], [], [], []);
      }
    } else {
      const o = OWNERS[owner] ?? { prefix: owner, labels: [], docs: [] };
      e.walk(node, [o.prefix], [], o.labels, o.docs);
    }
  }
  return e.text();
}

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Serve `GET /metrics` for `stack` on `hostname:port` (the host's network).
 *
 * @returns the server; `shutdown()` it when tapir stops
 */
export function serveMetrics(
  stack: Stack,
  listen: { hostname: string; port: number },
): Deno.HttpServer {
  return Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    onListen: (a) => log.info("metrics at http://{addr}/metrics", { addr: fmtAddr(a) }),
  }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/metrics") {
      return new Response("not found: try /metrics\n", { status: 404 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405 });
    }
    return new Response(renderMetrics(stack.snapshotStats()), {
      headers: { "content-type": METRICS_CONTENT_TYPE },
    });
  });
}

function fmtAddr(a: Deno.NetAddr): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
