/**
 * The control socket of a running tapir: a Unix stream socket (mode 0600)
 * that answers one request line (`stats`, `routes`, `neighbors`,
 * `addresses`, `ra`, `firewall`, `reload`) with one JSON document, then
 * closes. `tapir show` and `tapir reload` are its clients.
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
import type { Stack } from "../stack/mod.ts";
import { formatIpv4, formatIpv6, formatMac } from "../stack/wire/mod.ts";
import { nudStateName } from "../stack/neighbor_cache.ts";
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
        error:
          `unknown request "${what}": use stats, routes, neighbors, addresses, ra, firewall or reload`,
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
