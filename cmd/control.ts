/**
 * The control socket of a running tapir: a Unix stream socket that answers
 * one request line (`stats`, `routes`, `neighbors`, `addresses`, `ra`, `firewall`) with one
 * JSON document, then closes. `tapir show` is its client.
 *
 * @module
 */
import type { Stack } from "../stack/mod.ts";
import { formatIpv4, formatIpv6, formatMac } from "../stack/wire/mod.ts";
import { nudStateName } from "../stack/neighbor_cache.ts";

/** The default socket path for a tapir whose hostname is `hostname`. */
export function defaultControlPath(hostname: string): string {
  const dir = Deno.env.get("TMPDIR") ?? "/tmp";
  return `${dir}/tapir-${hostname}.sock`;
}

/** What the socket answers for each request. */
export function controlAnswer(stack: Stack, what: string): unknown {
  switch (what) {
    case "stats":
      return stack.snapshotStats();
    case "routes":
      return [
        ...stack.ipv4.routes.routes().map((r) => ({
          to: `${formatIpv4(r.prefix)}/${r.prefixLen}`,
          type: r.type,
          via: r.gateway === null ? null : formatIpv4(r.gateway),
          dev: stack.nics.get(r.nicId)?.name ?? null,
          metric: r.metric,
          source: r.source,
        })),
        ...stack.ipv6.routes.routes().map((r) => ({
          to: `${formatIpv6(r.prefix)}/${r.prefixLen}`,
          type: r.type,
          via: r.gateway === null ? null : formatIpv6(r.gateway),
          dev: stack.nics.get(r.nicId)?.name ?? null,
          metric: r.metric,
          source: r.source,
        })),
      ];
    case "neighbors": {
      const out: unknown[] = [];
      for (const nic of stack.nics.values()) {
        for (const e of stack.ipv6.nicState(nic)?.neighbors.entries() ?? []) {
          out.push({
            dev: nic.name,
            address: e.key,
            mac: e.mac === null ? null : formatMac(e.mac),
            state: e.state,
            queued: e.queued,
          });
        }
        const st = stack.ipv4.nicState(nic);
        for (const e of st?.neighbors.entries() ?? []) {
          out.push({
            dev: nic.name,
            address: formatIpv4(e.key as number),
            mac: e.mac === null ? null : formatMac(e.mac),
            state: typeof e.state === "number" ? nudStateName(e.state) : e.state,
            queued: e.queued,
          });
        }
      }
      return out;
    }
    case "addresses": {
      const out: Record<string, unknown> = {};
      for (const nic of stack.nics.values()) {
        out[nic.name] = {
          mac: formatMac(nic.mac),
          mtu: nic.mtu(),
          up: nic.isUp(),
          ipv4: stack.ipv4.describeAddresses(nic),
          ipv6: stack.ipv6.describeAddresses(nic),
        };
      }
      return out;
    }
    case "firewall":
      // The iptables-save -c style dump, as text (`tapir show firewall` prints it as is).
      return { dump: stack.firewall?.dump() ?? "# no firewall rules configured\n" };
    case "ra": {
      const out: Record<string, unknown> = {};
      const advertising = new Set(stack.ra.routerNics());
      for (const nic of stack.nics.values()) {
        const host = stack.ra.hostState(nic);
        if (host === null && !advertising.has(nic)) continue;
        out[nic.name] = { advertising: advertising.has(nic), acceptRa: host !== null, ...host };
      }
      return { interfaces: out, stats: { ...stack.ra.stats } };
    }
    default:
      return {
        error: `unknown request "${what}": use stats, routes, neighbors, addresses, ra or firewall`,
      };
  }
}

/** Serve `stack` on the Unix socket at `path` until `close()`. */
export function serveControl(stack: Stack, path: string): { close(): void } {
  try {
    Deno.removeSync(path);
  } catch {
    // No stale socket to remove.
  }
  const listener = Deno.listen({ transport: "unix", path });
  const loop = (async () => {
    for await (const conn of listener) {
      (async () => {
        try {
          const buf = new Uint8Array(256);
          const n = await conn.read(buf);
          const what = new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim();
          const body = JSON.stringify(controlAnswer(stack, what)) + "\n";
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
