/**
 * Lab files (`tapir lab FILE`): nodes, each a configuration validated like
 * a file's, the links between their interfaces, and probes with expected
 * outcomes.
 *
 * @module
 */
import {
  formatIpAddress,
  type IpAddress,
  ipv6IsLinkLocalUnicast,
  ipv6IsUnspecified,
} from "../stack/wire/mod.ts";
import {
  arr,
  at,
  bool,
  checkKeys,
  Ctx,
  describe,
  didYouMean,
  duration,
  idx,
  int,
  isTable,
  oneOf,
  optInt,
  optStr,
  readTable,
  reqStr,
  str,
  type Tbl,
} from "./_check.ts";
import { addressAt, cidrAt, CONFIG_KEYS, validateConfig } from "./_validate.ts";
import { labLinkFaults } from "./_lab_faults.ts";
import { parseToml, throwIfErrors } from "./config.ts";
import { LAB_SERVICE_PORTS, type LabServiceType } from "../stack/apps/lab_services.ts";
import type {
  Config,
  LabConfig,
  LabLinkConfig,
  LabNodeConfig,
  LabServiceConfig,
  LeaseProbeConfig,
  LinkEnd,
  ProbeConfig,
  ProbeExpect,
  TransferProbeConfig,
} from "./types.ts";

const S = 1000;
const NODE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,30}$/;
const EXPECTS: readonly ProbeExpect[] = [
  "reachable",
  "unreachable",
  "net-unreachable",
  "host-unreachable",
  "port-unreachable",
  "admin-prohibited",
  "frag-needed",
  "time-exceeded",
  "timeout",
];
/** Outcomes of a `tcp` probe (the first is the default). */
const TCP_EXPECTS: readonly ProbeExpect[] = [
  "connected",
  "refused",
  "reset",
  "timeout",
  "unreachable",
];
/** Outcomes of a `transfer` probe (the first is the default). */
const TRANSFER_EXPECTS: readonly ProbeExpect[] = [
  "complete",
  "refused",
  "reset",
  "timeout",
  "unreachable",
];
const SERVICE_TYPES = Object.keys(LAB_SERVICE_PORTS) as LabServiceType[];
const SERVICE_KEYS = ["type", "port", "address", "udp", "bytes", "body", "body_bytes"] as const;
/** Largest chargen `bytes`, http `body_bytes` and transfer `bytes` (1 TiB and 1 GiB: bounded, still huge). */
const MAX_STREAM_BYTES = 2 ** 40;
const MAX_BODY_BYTES = 2 ** 30;
/** Probe keys that only ping, traceroute and udp probes take. */
const ICMP_PROBE_KEYS = [
  "count",
  "size",
  "dont_fragment",
  "interval",
  "max_hops",
  "expect_mtu",
  "expect_path",
  "expect_from",
];
/** Probe keys that only transfer probes take. */
const TRANSFER_KEYS = ["service", "bytes", "expect_bytes", "expect_sha256", "expect_status"];
const PROBE_KEYS = [
  "from",
  "at",
  "ping",
  "traceroute",
  "udp",
  "tcp",
  "transfer",
  "port",
  ...TRANSFER_KEYS,
  "count",
  "size",
  "dont_fragment",
  "interval",
  "max_hops",
  "timeout",
  "expect",
  "expect_mtu",
  "expect_path",
  "expect_from",
  "lease",
  "family",
  "expect_in",
  "expect_prefix_in",
  "expect_dns",
] as const;

/**
 * Parse and validate a lab file's text.
 *
 * @param text TOML text with a `[lab]` table
 * @param file file name used in error positions
 * @returns the validated lab
 * @throws ConfigErrors listing every problem (node paths like `lab.node[0].interface[1].addresses[0]`)
 * @example
 * ```ts
 * import { parseLabConfig } from "./lab.ts";
 * const lab = parseLabConfig('[[lab.node]]\nname = "h1"\n[[lab.node.interface]]\nname = "eth0"\n');
 * console.assert(lab.nodes[0]!.config.interfaces[0]!.name === "eth0" && lab.duration === 60_000);
 * ```
 */
export function parseLabConfig(text: string, file?: string): LabConfig {
  const { tree, locator } = parseToml(text, file);
  const ctx = new Ctx();
  const lab = validateLab(ctx, tree);
  throwIfErrors(ctx, locator, file);
  return lab;
}

/** Validate a parsed lab tree, recording problems in `ctx`. */
export function validateLab(ctx: Ctx, tree: Tbl): LabConfig {
  checkKeys(ctx, tree, "", ["lab"]);
  const t = tree.lab === undefined
    ? (ctx.err("lab", `a lab file needs a [lab] table`), {})
    : readTable(ctx, tree.lab, "lab", ["description", "duration", "node", "link", "probe"]) ?? {};
  const description = str(ctx, t, "description", "lab", "");
  const labDuration = duration(ctx, t, "duration", "lab", 60 * S, 1, 86_400 * S);

  const nodes: LabNodeConfig[] = [];
  arr(ctx, t, "node", "lab").forEach((raw, i) => {
    const path = idx("lab.node", i);
    if (!isTable(raw)) {
      ctx.err(path, `expected a table, found ${Array.isArray(raw) ? "an array" : typeof raw}`);
      return;
    }
    checkKeys(ctx, raw, path, ["name", "service", ...CONFIG_KEYS]);
    const name = reqStr(ctx, raw, "name", path);
    if (name !== undefined && !NODE_NAME.test(name)) {
      ctx.err(
        at(path, "name"),
        `bad node name "${name}" (a letter, then up to 30 letters, digits, "_" or "-")`,
      );
    }
    const dup = nodes.findIndex((n) => n.name === name);
    if (name !== undefined && dup !== -1) {
      ctx.err(at(path, "name"), `duplicate node name "${name}" (also lab.node[${dup}])`);
    }
    const config = validateConfig(ctx, raw, path, { lab: true, hostname: name ?? "node" });
    const services = validateServices(ctx, raw, path, config);
    nodes.push({ name: name ?? `#${i}`, config, services });
  });
  if (t.node === undefined && tree.lab !== undefined) {
    ctx.err("lab.node", `a lab needs at least one [[lab.node]]`);
  }

  const links: LabLinkConfig[] = [];
  const used = new Map<string, string>();
  arr(ctx, t, "link", "lab").forEach((raw, i) => {
    const path = idx("lab.link", i);
    const lt = readTable(ctx, raw, path, ["a", "b", "mtu", "delay", "faults"]);
    if (!lt) return;
    const ends: (LinkEnd | undefined)[] = (["a", "b"] as const).map((k) => {
      const v = reqStr(ctx, lt, k, path);
      if (v === undefined) return undefined;
      const ep = at(path, k);
      const m = /^([^:]+):([^:]+)$/.exec(v);
      if (!m) {
        ctx.err(ep, `expected "NODE:INTERFACE" such as "h1:eth0", found "${v}"`);
        return undefined;
      }
      const node = m[1]!, iface = m[2]!;
      const n = nodes.find((x) => x.name === node);
      if (!n) {
        ctx.err(ep, `no node named "${node}"${didYouMean(node, nodes.map((x) => x.name))}`);
        return undefined;
      }
      if (!n.config.interfaces.some((f) => f.name === iface)) {
        const names = n.config.interfaces.map((f) => f.name);
        ctx.err(
          ep,
          `node "${node}" has no interface named "${iface}"${didYouMean(iface, names)}` +
            (names.length > 0 ? "" : " (it has no interfaces)"),
        );
        return undefined;
      }
      const key = `${node}:${iface}`;
      const prev = used.get(key);
      if (prev !== undefined) {
        ctx.err(ep, `interface ${key} is already on ${prev} (an interface joins at most one link)`);
        return undefined;
      }
      used.set(key, path);
      return { node, interface: iface };
    });
    const [a, b] = ends;
    const mtuOf = (e: LinkEnd) =>
      nodes.find((n) => n.name === e.node)!.config.interfaces.find((f) => f.name === e.interface)!
        .mtu;
    const mtu = optInt(ctx, lt, "mtu", path, 68, 65535);
    const delay = duration(ctx, lt, "delay", path, 0, 0, 60 * S);
    const faults = labLinkFaults(ctx, lt, path, i);
    if (a && b) links.push({ a, b, mtu: mtu ?? Math.min(mtuOf(a), mtuOf(b)), delay, faults });
  });

  const probes: ProbeConfig[] = [];
  arr(ctx, t, "probe", "lab").forEach((raw, i) => {
    const path = idx("lab.probe", i);
    const pt = readTable(ctx, raw, path, PROBE_KEYS);
    if (!pt) return;
    const p = validateProbe(ctx, pt, path, nodes, labDuration);
    if (p) probes.push(p);
  });
  return { description, duration: labDuration, nodes, links, probes };
}

/** 0.0.0.0 or ::. */
function unspecified(a: IpAddress): boolean {
  return a.family === 4 ? a.address === 0 : ipv6IsUnspecified(a.address);
}

/**
 * `[[lab.node.service]]`: services on the node's own stack. A listen
 * address must be one of the node's static addresses (or "0.0.0.0" / "::");
 * two services may not listen on one port of one transport where their
 * addresses overlap (a wildcard overlaps everything of its family).
 */
function validateServices(
  ctx: Ctx,
  raw: Tbl,
  nodePath: string,
  config: Config,
): LabServiceConfig[] {
  const out: LabServiceConfig[] = [];
  const paths: string[] = [];
  const own = config.interfaces.flatMap((f) => f.addresses.map((c) => formatIpAddress(c)));
  arr(ctx, raw, "service", nodePath).forEach((v, i) => {
    const path = idx(at(nodePath, "service"), i);
    const st = readTable(ctx, v, path, SERVICE_KEYS);
    if (!st) return;
    let type: LabServiceType | undefined;
    if (st.type === undefined) {
      ctx.err(
        at(path, "type"),
        `"type" is required: one of ${SERVICE_TYPES.map((t) => `"${t}"`).join(", ")}`,
      );
    } else {
      const t = oneOf(ctx, st, "type", path, SERVICE_TYPES, "echo");
      if (SERVICE_TYPES.includes(st.type as LabServiceType)) type = t;
    }
    const given = optInt(ctx, st, "port", path, 1, 65535);
    const port = given ?? (type ? LAB_SERVICE_PORTS[type] : 0);
    let address: LabServiceConfig["address"] = null;
    if (st.address !== undefined) {
      const a = addressAt(ctx, st.address, at(path, "address"));
      if (a && !unspecified(a) && !own.includes(formatIpAddress(a))) {
        ctx.err(
          at(path, "address"),
          `${formatIpAddress(a)} is not a static address of this node` +
            (own.length > 0 ? ` (it has ${own.join(", ")})` : ""),
        );
      } else if (a) address = a;
    }
    const udp = bool(ctx, st, "udp", path, false);
    if (udp && type !== undefined && type !== "echo" && type !== "discard") {
      ctx.err(at(path, "udp"), `udp is for echo and discard services`);
    }
    const bytes = optInt(ctx, st, "bytes", path, 1, MAX_STREAM_BYTES);
    if (st.bytes !== undefined && type !== undefined && type !== "chargen") {
      ctx.err(at(path, "bytes"), `bytes is for chargen services (http: body or body_bytes)`);
    }
    const body = optStr(ctx, st, "body", path);
    const bodyBytes = optInt(ctx, st, "body_bytes", path, 0, MAX_BODY_BYTES);
    for (const k of ["body", "body_bytes"]) {
      if (st[k] !== undefined && type !== undefined && type !== "http") {
        ctx.err(at(path, k), `${k} is for http services`);
      }
    }
    if (body !== undefined && bodyBytes !== undefined) {
      ctx.err(at(path, "body_bytes"), `give body (a text) or body_bytes (a pattern), not both`);
    }
    // (A bad port is reported once, not again as a clash of the default port.)
    if (type === undefined || (st.port !== undefined && given === undefined)) return;
    const s: LabServiceConfig = {
      type,
      port,
      address,
      udp,
      ...(bytes !== undefined ? { bytes } : {}),
      ...(body !== undefined ? { body } : {}),
      bodyBytes: bodyBytes ?? 1024,
    };
    const overlaps = (x: LabServiceConfig) => {
      if (x.address === null || s.address === null) return true;
      // "::" takes both families, as the socket API's does.
      if (unspecified(x.address) && (x.address.family === 6 || s.address.family === 4)) return true;
      if (unspecified(s.address) && (s.address.family === 6 || x.address.family === 4)) return true;
      return formatIpAddress(x.address) === formatIpAddress(s.address);
    };
    // Every service listens on TCP, so a UDP clash is always a TCP clash too.
    const clash = out.findIndex((x) => x.port === s.port && overlaps(x));
    if (clash !== -1) {
      ctx.err(at(path, "port"), `TCP port ${s.port} is already served by ${paths[clash]}`);
    }
    out.push(s);
    paths.push(path);
  });
  return out;
}

/** `lease = "IF"`: the node's DHCP client on IF holds a lease (in range, with DNS) by `at` + `timeout`. */
function validateLeaseProbe(
  ctx: Ctx,
  pt: Tbl,
  path: string,
  from: string | undefined,
  node: LabNodeConfig | undefined,
  startAt: number,
): ProbeConfig | undefined {
  const iface = optStr(ctx, pt, "lease", path);
  const family = optInt(ctx, pt, "family", path, 4, 6) ?? 4;
  if (family !== 4 && family !== 6) ctx.err(at(path, "family"), `family is 4 or 6`);
  const ifc = node?.config.interfaces.find((f) => f.name === iface);
  if (iface !== undefined && node !== undefined) {
    if (ifc === undefined) {
      ctx.err(at(path, "lease"), `node "${from}" has no interface named "${iface}"`);
    } else if (family === 4 && ifc.dhcpClient === null) {
      ctx.err(at(path, "lease"), `${from}:${iface} runs no DHCPv4 client (addresses = ["dhcp"])`);
    } else if (family === 6 && ifc.dhcp6Client === null) {
      ctx.err(
        at(path, "lease"),
        `${from}:${iface} runs no DHCPv6 client ([interface.dhcp6_client])`,
      );
    }
  }
  for (
    const k of [
      "ping",
      "port",
      "count",
      "size",
      "dont_fragment",
      "max_hops",
      "expect_path",
      ...TRANSFER_KEYS,
    ]
  ) {
    if (pt[k] !== undefined) ctx.err(at(path, k), `"${k}" is not for lease probes`);
  }
  let expectAddressIn: LeaseProbeConfig["expectAddressIn"];
  let expectPrefixIn: LeaseProbeConfig["expectPrefixIn"];
  if (pt.expect_in !== undefined) {
    const ep = at(path, "expect_in");
    const m = typeof pt.expect_in === "string"
      ? /^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$/.exec(pt.expect_in)
      : null;
    const first = m ? addressAt(ctx, m[1], ep) : undefined;
    const last = m ? addressAt(ctx, m[2], ep) : undefined;
    if (m === null) ctx.err(ep, `expected "FIRST-LAST", found ${describe(pt.expect_in)}`);
    else if (first && last) {
      if (first.family !== family || last.family !== family) {
        ctx.err(ep, `expect_in must be IPv${family} addresses (family = ${family})`);
      } else expectAddressIn = { first, last };
    }
  }
  if (pt.expect_prefix_in !== undefined) {
    const ep = at(path, "expect_prefix_in");
    if (family !== 6) ctx.err(ep, `expect_prefix_in is for family = 6 (a delegated prefix)`);
    const c = cidrAt(ctx, pt.expect_prefix_in, ep, false);
    if (c && c.family === 6) {
      expectPrefixIn = { address: c.address as Uint8Array, prefixLen: c.prefixLen };
    } else if (c) ctx.err(ep, `expected an IPv6 prefix`);
  }
  const expectDns: IpAddress[] = [];
  arr(ctx, pt, "expect_dns", path).forEach((v, i) => {
    const a = addressAt(ctx, v, idx(at(path, "expect_dns"), i));
    if (a) expectDns.push(a);
  });
  const expect = oneOf(ctx, pt, "expect", path, ["bound"] as const, "bound");
  const timeout = duration(ctx, pt, "timeout", path, 2 * S, 1, 3_600 * S);
  if (!from || iface === undefined || (family !== 4 && family !== 6)) return undefined;
  return {
    from,
    at: startAt,
    kind: "lease",
    lease: {
      iface,
      family,
      ...(expectAddressIn ? { expectAddressIn } : {}),
      ...(expectPrefixIn ? { expectPrefixIn } : {}),
      expectDns,
    },
    count: 1,
    size: 0,
    dontFragment: false,
    interval: 0,
    maxHops: 0,
    timeout,
    expect,
  };
}

/**
 * A transfer probe's keys: `service` (default: by `port`), `bytes`,
 * `expect_bytes`, `expect_sha256`, `expect_status`.
 */
function validateTransfer(
  ctx: Ctx,
  pt: Tbl,
  path: string,
  port: number | undefined,
): TransferProbeConfig | undefined {
  const byPort = SERVICE_TYPES.find((t) => LAB_SERVICE_PORTS[t] === port);
  let service: LabServiceType | undefined;
  if (pt.service !== undefined) {
    const v = oneOf(ctx, pt, "service", path, SERVICE_TYPES, "echo");
    if (SERVICE_TYPES.includes(pt.service as LabServiceType)) service = v;
  } else if (port === undefined) {
    ctx.err(at(path, "transfer"), `a transfer probe needs "service = ..." or "port = N"`);
  } else if (byPort === undefined) {
    ctx.err(
      at(path, "service"),
      `port ${port} is no service's own: say which it is (service = ${
        SERVICE_TYPES.map((t) => `"${t}"`).join(" | ")
      })`,
    );
  } else service = byPort;
  const bytes = optInt(ctx, pt, "bytes", path, 0, MAX_STREAM_BYTES);
  const eff = service ?? "echo";
  if (bytes !== undefined && service === "http") {
    ctx.err(at(path, "bytes"), `bytes is not for http (the response gives its length)`);
  }
  const expectBytes = optInt(ctx, pt, "expect_bytes", path, 0, MAX_STREAM_BYTES);
  let expectSha256: string | undefined;
  const sha = optStr(ctx, pt, "expect_sha256", path);
  if (sha !== undefined) {
    if (/^[0-9a-fA-F]{64}$/.test(sha)) expectSha256 = sha.toLowerCase();
    else ctx.err(at(path, "expect_sha256"), `expected 64 hex digits (sha256sum's output)`);
  }
  const expectStatus = int(ctx, pt, "expect_status", path, 200, 100, 599);
  if (pt.expect_status !== undefined && service !== undefined && service !== "http") {
    ctx.err(at(path, "expect_status"), `expect_status is for http transfers`);
  }
  if (service === undefined) return undefined;
  const sent = eff === "echo" || eff === "discard" ? bytes ?? 65536 : bytes;
  const defaultExpect = eff === "echo"
    ? sent
    : eff === "discard"
    ? 0
    : eff === "chargen"
    ? bytes
    : undefined;
  const want = expectBytes ?? defaultExpect;
  return {
    service,
    ...(sent !== undefined ? { bytes: sent } : {}),
    ...(want !== undefined ? { expectBytes: want } : {}),
    ...(expectSha256 !== undefined ? { expectSha256 } : {}),
    expectStatus,
  };
}

function validateProbe(
  ctx: Ctx,
  pt: Tbl,
  path: string,
  nodes: LabNodeConfig[],
  labDuration: number,
): ProbeConfig | undefined {
  const from = reqStr(ctx, pt, "from", path);
  const node = from === undefined ? undefined : nodes.find((n) => n.name === from);
  if (from !== undefined && !node) {
    ctx.err(
      at(path, "from"),
      `no node named "${from}"${didYouMean(from, nodes.map((n) => n.name))}`,
    );
  }
  const startAt = duration(ctx, pt, "at", path, 0, 0, labDuration);
  let kind: ProbeConfig["kind"] | undefined;
  const kinds = (["ping", "traceroute", "udp", "tcp", "transfer", "lease"] as const).filter((k) =>
    pt[k] !== undefined
  );
  if (kinds.length > 1) {
    ctx.err(
      at(path, kinds[1]!),
      `a probe has exactly one of "ping", "traceroute", "udp", "tcp", "transfer" and "lease"`,
    );
  } else if (kinds.length === 1) kind = kinds[0];
  else {
    ctx.err(
      path,
      `a probe needs "ping = ADDRESS", "traceroute = ADDRESS", "udp = ADDRESS", "tcp = ADDRESS", "transfer = ADDRESS" or "lease = INTERFACE"`,
    );
  }
  if (kind === "lease") return validateLeaseProbe(ctx, pt, path, from, node, startAt);
  for (const k of ["family", "expect_in", "expect_prefix_in", "expect_dns"]) {
    if (pt[k] !== undefined) ctx.err(at(path, k), `"${k}" is for lease probes`);
  }
  const stream = kind === "tcp" || kind === "transfer";
  if (kind !== "transfer") {
    for (const k of TRANSFER_KEYS) {
      if (pt[k] !== undefined) ctx.err(at(path, k), `"${k}" is for transfer probes`);
    }
  }
  if (stream) {
    for (const k of ICMP_PROBE_KEYS) {
      if (pt[k] !== undefined) ctx.err(at(path, k), `"${k}" is not for ${kind} probes`);
    }
  }
  let port = optInt(ctx, pt, "port", path, 1, 65535);
  const transfer = kind === "transfer" ? validateTransfer(ctx, pt, path, port) : undefined;
  if (transfer) port ??= LAB_SERVICE_PORTS[transfer.service];
  if ((kind === "udp" || kind === "tcp") && port === undefined) {
    ctx.err(at(path, kind), `a ${kind} probe needs "port = N"`);
  }
  if (kind !== undefined && kind !== "udp" && !stream && port !== undefined) {
    ctx.err(at(path, "port"), `port is for udp, tcp and transfer probes`);
  }
  let target: IpAddress | undefined;
  let zone: string | undefined;
  if (kind) {
    const tp = at(path, kind);
    let text = optStr(ctx, pt, kind, path);
    if (text !== undefined) {
      const pct = text.indexOf("%");
      if (pct !== -1) {
        zone = text.slice(pct + 1);
        text = text.slice(0, pct);
      }
      target = addressAt(ctx, text, tp);
      const ll = target?.family === 6 && ipv6IsLinkLocalUnicast(target.address);
      if (target && ll && zone === undefined) {
        ctx.err(
          tp,
          `link-local target ${formatIpAddress(target)} needs a zone, e.g. "${text}%eth0"`,
        );
      } else if (target && !ll && zone !== undefined) {
        ctx.err(tp, `a zone ("%${zone}") is only for IPv6 link-local targets`);
      } else if (
        zone !== undefined && node && !node.config.interfaces.some((f) => f.name === zone)
      ) {
        ctx.err(tp, `node "${from}" has no interface named "${zone}"`);
      }
    }
  }
  const choices = kind === "tcp" ? TCP_EXPECTS : kind === "transfer" ? TRANSFER_EXPECTS : EXPECTS;
  const expect = oneOf(
    ctx,
    pt,
    "expect",
    path,
    choices,
    kind === "udp" ? "port-unreachable" : choices[0]!,
  );
  if (kind === "udp" && (expect === "reachable" || expect === "frag-needed")) {
    // tapir's UDP probe waits for ICMP errors, not for answers.
    ctx.err(
      at(path, "expect"),
      `a udp probe expects port-unreachable, admin-prohibited, host-unreachable, net-unreachable, unreachable or timeout`,
    );
  }
  const expectMtu = optInt(ctx, pt, "expect_mtu", path, 68, 65535);
  if (expectMtu !== undefined && expect !== "frag-needed" && !stream) {
    ctx.err(at(path, "expect_mtu"), `expect_mtu goes with expect = "frag-needed"`);
  }
  const maxHops = int(ctx, pt, "max_hops", path, 30, 1, 255);
  if (pt.max_hops !== undefined && kind === "ping") {
    ctx.err(at(path, "max_hops"), `max_hops is for traceroute`);
  }
  let expectPath: (IpAddress | "*")[] | undefined;
  if (pt.expect_path !== undefined) {
    if (kind === "ping") ctx.err(at(path, "expect_path"), `expect_path is for traceroute`);
    const list: (IpAddress | "*")[] = [];
    arr(ctx, pt, "expect_path", path).forEach((v, j) => {
      if (v === "*") list.push("*");
      else {
        const a = addressAt(ctx, v, idx(at(path, "expect_path"), j));
        if (a) list.push(a);
      }
    });
    expectPath = list;
  }
  const expectFrom = pt.expect_from === undefined
    ? undefined
    : addressAt(ctx, pt.expect_from, at(path, "expect_from"));
  const count = int(ctx, pt, "count", path, 3, 1, 10_000);
  const size = int(ctx, pt, "size", path, 56, 0, 65_507);
  const dontFragment = bool(ctx, pt, "dont_fragment", path, false);
  const interval = duration(ctx, pt, "interval", path, 1 * S, 1, 3_600 * S);
  // A transfer's timeout bounds the whole exchange; the others' one answer.
  const timeout = duration(
    ctx,
    pt,
    "timeout",
    path,
    (kind === "transfer" ? 10 : 2) * S,
    1,
    3_600 * S,
  );
  if (!from || !kind || !target) return undefined;
  if (kind === "transfer" && !transfer) return undefined;
  return {
    from,
    at: startAt,
    kind,
    target,
    ...(port !== undefined ? { port } : {}),
    ...(transfer ? { transfer } : {}),
    ...(zone !== undefined ? { zone } : {}),
    count,
    size,
    dontFragment,
    interval,
    maxHops,
    timeout,
    expect,
    ...(expectMtu !== undefined ? { expectMtu } : {}),
    ...(expectPath ? { expectPath } : {}),
    ...(expectFrom ? { expectFrom } : {}),
  };
}
