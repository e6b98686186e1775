/**
 * Turns a validated {@link Config} into a running {@link Stack}: NICs on the
 * links the caller opens, addresses, static neighbors and routes.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { type Clock, type LinkEndpoint, type Nic, type Random, Stack } from "../stack/mod.ts";
import { formatCidr, ipv4CidrContains, ipv4Mask } from "../stack/wire/mod.ts";
import type { Config, InterfaceConfig } from "./types.ts";

/** Options of {@link buildStack}. */
export interface BuildOptions {
  clock?: Clock;
  random?: Random;
  /** Open (or make) the link of one interface. */
  openLink: (iface: InterfaceConfig) => LinkEndpoint;
}

/** A stack built from a config, with its NICs by interface name. */
export interface BuiltStack {
  stack: Stack;
  nics: Map<string, Nic>;
  /** Config parts that validated but that this version does not act on yet. */
  inactive: string[];
}

const log = getLogger(["tapir", "config"]);

/**
 * Build a stack from `config`.
 *
 * @example
 * ```ts
 * import { buildStack } from "./build.ts";
 * import { parseConfig } from "./mod.ts";
 * import { MemoryLink } from "../link/mod.ts";
 * import { ManualClock } from "../stack/mod.ts";
 * const clock = new ManualClock();
 * const cfg = parseConfig('[[interface]]\nname = "eth0"\naddresses = ["192.0.2.1/24"]\n');
 * const [a] = MemoryLink.pair({ clock });
 * const { stack } = buildStack(cfg, { clock, openLink: () => a });
 * console.assert(stack.ipv4.local.size === 1);
 * ```
 */
export function buildStack(config: Config, opts: BuildOptions): BuiltStack {
  const r = config.router;
  const stack = new Stack({
    clock: opts.clock,
    random: opts.random,
    hostname: r.hostname,
    neighbor: {
      baseReachableTimeMs: r.neighbor.baseReachableTime,
      retransTimeMs: r.neighbor.retransTime,
      multicastProbes: r.neighbor.probes,
      unicastProbes: r.neighbor.probes,
      delayFirstProbeMs: r.neighbor.delayFirstProbe,
      queueLen: r.neighbor.queueLen,
      maxEntries: r.neighbor.maxEntries,
      gcStaleTimeMs: r.neighbor.gcStaleTime,
    },
    ipv4: {
      defaultTtl: r.ipv4.defaultTtl,
      reassemblyTimeoutMs: r.ipv4.reassemblyTimeout,
      reassemblyMemory: r.ipv4.reassemblyMemory,
    },
    icmpRateLimit: { rate: r.icmp.rateLimit, burst: r.icmp.burst },
  });
  const nics = new Map<string, Nic>();
  const inactive: string[] = [];
  try {
    for (const iface of config.interfaces) {
      const link = opts.openLink(iface);
      const nic = stack.addNic(link, {
        name: iface.name,
        mac: iface.mac,
        mtu: iface.mtu,
        forwardingV4: iface.forwarding.ipv4,
        sendRedirects: iface.sendRedirects.ipv4,
      });
      nics.set(iface.name, nic);
      for (const a of iface.addresses) {
        if (a.family === 4) stack.ipv4.addAddress(nic, a.address, a.prefixLen);
        else inactive.push(`interface ${iface.name}: IPv6 address ${formatCidr(a)}`);
      }
      for (const n of iface.neighbors) {
        if (n.address.family === 4) {
          stack.ipv4.nicState(nic)!.neighbors.addStatic(n.address.address, n.mac);
        } else inactive.push(`interface ${iface.name}: static IPv6 neighbor`);
      }
      if (iface.ra.enabled) inactive.push(`interface ${iface.name}: [interface.ra]`);
      if (iface.acceptRa) inactive.push(`interface ${iface.name}: accept_ra`);
    }
    for (const route of config.routes) {
      if (route.to.family !== 4) {
        inactive.push(`route to ${formatCidr(route.to)}`);
        continue;
      }
      let nicId = 0;
      let gateway: number | null = null;
      if (route.type === "unicast") {
        if (route.dev !== undefined) nicId = nics.get(route.dev)!.id;
        if (route.via !== undefined && route.via.family === 4) {
          gateway = route.via.address;
          if (nicId === 0) nicId = connectedNicFor(stack, gateway);
        }
      }
      stack.ipv4.routes.add({
        prefix: (route.to.address & ipv4Mask(route.to.prefixLen)) >>> 0,
        prefixLen: route.to.prefixLen,
        type: route.type,
        nicId,
        gateway,
        metric: route.metric,
        source: "static",
      });
    }
    if (hasRules(config)) inactive.push("[firewall] rules");
  } catch (e) {
    stack.close();
    throw e;
  }
  for (const what of inactive) {
    log.warn("{what} is valid but not acted on yet by this version of tapir", { what });
  }
  return { stack, nics, inactive };
}

function connectedNicFor(stack: Stack, gateway: number): number {
  for (const nic of stack.nics.values()) {
    const st = stack.ipv4.nicState(nic);
    if (st?.addresses.some((a) => ipv4CidrContains(a, gateway))) return nic.id;
  }
  return 0;
}

function hasRules(config: Config): boolean {
  const fw = config.firewall;
  for (const fam of [fw.shared, fw.ipv4, fw.ipv6]) {
    for (const t of [fam.filter, fam.nat, fam.raw]) {
      for (const c of t.chains.values()) {
        if (c.rules.length > 0 || c.policy !== "accept") return true;
      }
    }
  }
  return false;
}
