/**
 * Reload: apply the difference between the running config and a new one
 * to a running stack while packets flow, keeping its state (conntrack and
 * NAT bindings, neighbor caches, SLAAC addresses, RA timers of unchanged
 * interfaces).
 *
 * Applied live: interfaces added (when the caller can open links) and
 * removed, each interface's addresses, forwarding and redirect flags
 * and `[interface.ra]` (an RA with the new settings leaves at once; an
 * interface that stops advertising sends its final RAs), the static
 * routes, and the firewall tables (swapped in one step like
 * `iptables-restore`, counters of unchanged rules kept; named sets keep
 * their entries unless their definition changed), and `[tcp]`. What needs new
 * devices or a new stack — an interface's TAP, MAC,
 * MTU or offloads, `accept_ra`, static neighbors, `[router]` settings other
 * than forwarding, the conntrack size, `[metrics]` — is reported as not applied, and
 * the running value stays until tapir is restarted.
 *
 * @module
 */
import type { Nic, Stack } from "../stack/mod.ts";
import { Firewall } from "../stack/firewall/mod.ts";
import { formatIpv4, formatIpv6 } from "../stack/wire/mod.ts";
import type { LinkEndpoint } from "../stack/mod.ts";
import {
  addInterface,
  addRoutes,
  applyDelegations,
  applyDhcp,
  applyDhcp6,
  applyDhcp6Client,
  applyDhcpClient,
  applyDns,
  hasRules,
  type ServiceOptions,
} from "./build.ts";
import type { Config, InterfaceConfig } from "./types.ts";

/** What {@link applyConfig} did. */
export interface ReloadResult {
  /** One line per change applied. */
  applied: string[];
  /** One line per change that only a restart applies. */
  notApplied: string[];
}

/** How {@link applyConfig} adds and removes interfaces (without them, that needs a restart). */
export interface ReloadLinks {
  /** Open (or make) the link of a new interface. May throw (the interface is then not added). */
  openLink(iface: InterfaceConfig): LinkEndpoint;
  /** An interface was removed: its NIC is closed; release what the caller keeps for it. */
  removed?(name: string, nic: Nic): void;
  /** Lease stores and wall time for services started by the reload. */
  services?: ServiceOptions;
}

/** A stable text of a config value (Maps, Sets and byte arrays included), for equality. */
export function fingerprint(x: unknown): string {
  return JSON.stringify(x, (_k, v) => {
    if (v instanceof Map) return { map: [...v.entries()] };
    if (v instanceof Set) return { set: [...v.values()] };
    if (v instanceof Uint8Array) return { bytes: [...v] };
    return v;
  });
}

const same = (a: unknown, b: unknown) => fingerprint(a) === fingerprint(b);

/**
 * Whether two firewall configs are the same, without a fingerprint of
 * every rule (100k rules would take a quarter second each): a rule is
 * its text in its table, chain and scope (the parser derives the rest
 * from them, and from the sets, which are compared whole).
 */
function sameFirewall(a: Config["firewall"], b: Config["firewall"]): boolean {
  const { shared: as, ipv4: a4, ipv6: a6, trace: at, ...arest } = a;
  const { shared: bs, ipv4: b4, ipv6: b6, trace: bt, ...brest } = b;
  if (at?.text !== bt?.text || !same(arest, brest)) return false;
  const scopes = [[as, bs], [a4, b4], [a6, b6]] as const;
  for (const [x, y] of scopes) {
    const xt = x as unknown as Record<string, FirewallTable>;
    const yt = y as unknown as Record<string, FirewallTable>;
    const names = Object.keys(xt);
    if (names.length !== Object.keys(yt).length) return false;
    for (const name of names) {
      const p = xt[name]!, q = yt[name];
      if (q === undefined || p.defined !== q.defined || p.chains.size !== q.chains.size) {
        return false;
      }
      for (const [cn, c] of p.chains) {
        const d = q.chains.get(cn);
        if (d === undefined || d.builtin !== c.builtin || d.policy !== c.policy) return false;
        if (d.rules.length !== c.rules.length) return false;
        for (let i = 0; i < c.rules.length; i++) {
          if (c.rules[i]!.text !== d.rules[i]!.text) return false;
        }
      }
    }
  }
  return true;
}

type FirewallTable = Config["firewall"]["shared"]["filter"];

function cidrText(a: InterfaceConfig["addresses"][number]): string {
  return `${a.family === 4 ? formatIpv4(a.address) : formatIpv6(a.address)}/${a.prefixLen}`;
}

/**
 * Apply `next` to `stack`, which runs `prev` (its NICs by interface name in
 * `nics`). Never throws on a valid config; the caller validated `next`.
 */
export function applyConfig(
  stack: Stack,
  nics: Map<string, Nic>,
  prev: Config,
  next: Config,
  links?: ReloadLinks,
): ReloadResult {
  const applied: string[] = [];
  const notApplied: string[] = [];
  const { forwarding: _pf, ...prevRouter } = prev.router;
  const { forwarding: _nf, ...nextRouter } = next.router;
  for (const k of Object.keys(nextRouter) as (keyof typeof nextRouter)[]) {
    if (!same(prevRouter[k], nextRouter[k])) notApplied.push(`router.${k} changed`);
  }
  const prevIfaces = new Map(prev.interfaces.map((i) => [i.name, i]));
  const nextIfaces = new Map(next.interfaces.map((i) => [i.name, i]));
  for (const name of prevIfaces.keys()) {
    if (nextIfaces.has(name)) continue;
    const nic = nics.get(name);
    if (links === undefined || nic === undefined) {
      notApplied.push(`interface ${name} removed`);
      continue;
    }
    // As `ip link del`: final RAs, then addresses, neighbors and its routes go.
    stack.removeNic(nic);
    nics.delete(name);
    links.removed?.(name, nic);
    applied.push(`interface ${name} removed`);
  }
  for (const [name, n] of nextIfaces) {
    const p = prevIfaces.get(name);
    const nic = nics.get(name);
    if (p !== undefined && nic !== undefined) {
      applyInterface(stack, nic, p, n, applied, notApplied);
      if (!same(p.dhcp, n.dhcp)) {
        try {
          const r = applyDhcp(stack, nic, n, links?.services);
          applied.push(`interface ${name}: DHCPv4 server ${r} (leases kept)`);
        } catch (e) {
          notApplied.push(
            `interface ${name}: DHCPv4 server: ${e instanceof Error ? e.message : e}`,
          );
        }
      }
      if (!same(p.dhcp6, n.dhcp6)) {
        try {
          const r = applyDhcp6(stack, nic, n, links?.services);
          applied.push(`interface ${name}: DHCPv6 server ${r} (leases kept)`);
        } catch (e) {
          notApplied.push(
            `interface ${name}: DHCPv6 server: ${e instanceof Error ? e.message : e}`,
          );
        }
      }
      if (!same(p.dhcpClient, n.dhcpClient)) {
        applied.push(`interface ${name}: DHCPv4 client ${applyDhcpClient(stack, nic, n)}`);
      }
      if (!same(p.dhcp6Client, n.dhcp6Client)) {
        applied.push(`interface ${name}: DHCPv6 client ${applyDhcp6Client(stack, nic, n)}`);
      }
      continue;
    }
    if (links === undefined) {
      notApplied.push(`interface ${name} added`);
      continue;
    }
    try {
      const inactive: string[] = [];
      const added = addInterface(stack, next.router, n, links.openLink(n), inactive);
      nics.set(name, added);
      applyDhcp(stack, added, n, links.services);
      applyDhcp6(stack, added, n, links.services);
      applyDhcpClient(stack, added, n);
      applyDhcp6Client(stack, added, n);
      applied.push(`interface ${name} added`);
      for (const what of inactive) notApplied.push(`${what}: not acted on`);
    } catch (e) {
      notApplied.push(`interface ${name} added: ${e instanceof Error ? e.message : e}`);
    }
  }
  // LANs numbered from a delegation follow the DHCPv6 clients now running.
  const touched = prev.interfaces.length !== next.interfaces.length ||
    next.interfaces.some((n) => {
      const p = prevIfaces.get(n.name);
      return p === undefined || !same(p.ra, n.ra) || !same(p.dhcp6Client, n.dhcp6Client) ||
        !same(p.dhcp6, n.dhcp6);
    });
  if (touched) applyDelegations(stack, nics, next.interfaces);
  if (!same(prev.dns, next.dns) || prev.interfaces.length !== next.interfaces.length) {
    try {
      applied.push(`dns: forwarder ${applyDns(stack, nics, next.dns)}`);
    } catch (e) {
      notApplied.push(`dns: ${e instanceof Error ? e.message : e}`);
    }
  }
  if (!same(prev.tcp, next.tcp)) {
    // As sysctls: what a connection reads at setup (buffers, options, congestion control)
    // applies to new connections; timers and limits to open ones too.
    Object.assign(stack.tcp.settings, next.tcp);
    applied.push("tcp: settings applied");
  }
  if (!same(prev.metrics, next.metrics)) notApplied.push("metrics.listen changed");
  if (!same(prev.routes, next.routes)) {
    const n4 = stack.ipv4.routes.removeWhere((r) => r.source === "static");
    const n6 = stack.ipv6.routes.removeWhere((r) => r.source === "static");
    addRoutes(stack, nics, next.routes);
    applied.push(`routes: ${n4 + n6} static routes replaced by ${next.routes.length}`);
  }
  if (!sameFirewall(prev.firewall, next.firewall)) {
    if (prev.firewall.conntrack.max !== next.firewall.conntrack.max) {
      notApplied.push("firewall.conntrack.max changed");
    }
    const fw = stack.firewall;
    if (fw !== null) {
      const sets = fw.reconfigure(next.firewall);
      applied.push("firewall: tables replaced (connections and counters of unchanged rules kept)");
      for (const line of sets) applied.push(`firewall: ${line}`);
    } else if (hasRules(next)) {
      const created = new Firewall(stack, next.firewall);
      created.install();
      stack.firewall = created;
      applied.push("firewall: tables installed");
    }
  }
  return { applied, notApplied };
}

function applyInterface(
  stack: Stack,
  nic: Nic,
  p: InterfaceConfig,
  n: InterfaceConfig,
  applied: string[],
  notApplied: string[],
): void {
  const name = n.name;
  for (const k of ["tap", "mac", "mtu", "offload", "up", "capture"] as const) {
    if (!same(p[k], n[k])) notApplied.push(`interface ${name}: ${k} changed`);
  }
  if (p.acceptRa !== n.acceptRa) notApplied.push(`interface ${name}: accept_ra changed`);
  if (!same(p.neighbors, n.neighbors)) notApplied.push(`interface ${name}: neighbors changed`);
  const before = new Set(p.addresses.map(cidrText));
  const after = new Set(n.addresses.map(cidrText));
  for (const a of p.addresses) {
    if (after.has(cidrText(a))) continue;
    if (a.family === 4) stack.ipv4.removeAddress(nic, a.address);
    else stack.ipv6.removeAddress(nic, a.address);
    applied.push(`interface ${name}: address ${cidrText(a)} removed`);
  }
  for (const a of n.addresses) {
    if (before.has(cidrText(a))) continue;
    if (a.family === 4) stack.ipv4.addAddress(nic, a.address, a.prefixLen);
    else if (stack.ipv6.nicState(nic) !== undefined) {
      stack.ipv6.addAddress(nic, a.address, a.prefixLen);
    }
    applied.push(`interface ${name}: address ${cidrText(a)} added`);
  }
  const v4 = stack.ipv4.nicState(nic);
  if (v4 !== undefined) {
    if (v4.forwarding !== n.forwarding.ipv4) {
      v4.forwarding = n.forwarding.ipv4;
      applied.push(`interface ${name}: IPv4 forwarding ${n.forwarding.ipv4 ? "on" : "off"}`);
    }
    v4.sendRedirects = n.sendRedirects.ipv4;
  }
  const v6 = stack.ipv6.nicState(nic);
  if (v6 !== undefined) {
    if (v6.forwarding !== n.forwarding.ipv6) {
      stack.ipv6.setForwarding(nic, n.forwarding.ipv6);
      applied.push(`interface ${name}: IPv6 forwarding ${n.forwarding.ipv6 ? "on" : "off"}`);
    }
    v6.sendRedirects = n.sendRedirects.ipv6;
    if (!same(p.ra, n.ra)) {
      if (n.ra.enabled) {
        // Restarts advertising with the new settings: the first RA leaves now.
        stack.ra.enableRouter(nic, n.ra);
        applied.push(`interface ${name}: router advertisements with the new settings`);
      } else if (p.ra.enabled) {
        stack.ra.disableRouter(nic, true);
        applied.push(`interface ${name}: router advertisements stopped (final RAs sent)`);
      }
    }
  }
}
