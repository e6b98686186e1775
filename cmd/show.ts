/**
 * `tapir show stats|routes|neighbors|addresses|ra|conntrack|firewall|leases|dns|sockets`: ask a running tapir
 * through its control socket.
 *
 * @module
 */
import { defaultControlPath, queryControl } from "./control.ts";
import { formatStatsText } from "./_stats_text.ts";
import {
  formatAddresses,
  formatConntrack,
  formatDns,
  formatLeases,
  formatNeighbors,
  formatRa,
  formatRoutes,
  formatSockets,
} from "./_show_text.ts";

/** Options of {@link showCommand}. */
export interface ShowOptions {
  control?: string;
  hostname?: string;
  json?: boolean;
}

async function print(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
}

// deno-lint-ignore no-explicit-any
const TEXT: Record<string, (answer: any) => string> = {
  stats: (a) => formatStatsText(a),
  routes: formatRoutes,
  addresses: formatAddresses,
  neighbors: formatNeighbors,
  conntrack: formatConntrack,
  ra: formatRa,
  leases: formatLeases,
  dns: formatDns,
  sockets: formatSockets,
};

/** Run `tapir show WHAT`; the exit code. */
export async function showCommand(what: string, o: ShowOptions): Promise<number> {
  const allowed = [
    "stats",
    "routes",
    "neighbors",
    "addresses",
    "firewall",
    "ra",
    "conntrack",
    "leases",
    "dns",
    "sockets",
  ];
  if (!allowed.includes(what)) {
    console.error(`tapir show: unknown "${what}"; use one of ${allowed.join(", ")}`);
    return 2;
  }
  const path = o.control ?? defaultControlPath(o.hostname ?? "tapir");
  let answer: unknown;
  try {
    answer = await queryControl(path, what);
  } catch (e) {
    console.error(
      `tapir show: cannot reach a running tapir at ${path} (${
        e instanceof Error ? e.message : e
      }); start one with \`tapir run FILE\` or pass --control PATH`,
    );
    return 1;
  }
  if (o.json) {
    console.log(JSON.stringify(answer, null, 2));
  } else if (what === "firewall" && typeof (answer as { dump?: unknown }).dump === "string") {
    // The dump is already iptables-save text: print it as is.
    await print((answer as { dump: string }).dump);
  } else {
    await print(TEXT[what]!(answer));
  }
  return 0;
}
