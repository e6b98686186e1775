/**
 * A plain wire between two TAP devices, no stack: every frame read from
 * one TAP is written to the other, through {@link LinkDriver}. The
 * baseline of what the link layer alone costs.
 *
 * Usage (inside a network namespace, as root):
 *
 *     deno run --allow-ffi bench/link_wire.ts TAP_A TAP_B [--no-offload] [--mtu N]
 *
 * Runs until SIGINT/SIGTERM, then closes both TAPs and prints the
 * endpoints' counters as JSON on stdout.
 *
 * @module
 */
import { LinkDriver, openTap, type TapEndpoint } from "../link/mod.ts";
import type { PacketBuffer } from "../stack/wire/mod.ts";

const args = [...Deno.args];
const offload = !args.includes("--no-offload");
const mtuAt = args.indexOf("--mtu");
const mtu = mtuAt >= 0 ? Number(args[mtuAt + 1]) : undefined;
const names = args.filter((a, i) => !a.startsWith("--") && (mtuAt < 0 || i !== mtuAt + 1));
if (names.length !== 2) {
  console.error("usage: link_wire.ts TAP_A TAP_B [--no-offload] [--mtu N]");
  Deno.exit(2);
}

const a = openTap({ device: names[0]!, offload, mtu });
const b = openTap({ device: names[1]!, offload, mtu });

/** Forwards every frame of one endpoint to another. */
class Wire {
  constructor(readonly to: TapEndpoint) {}
  deliverFrame(pkt: PacketBuffer): void {
    this.to.writePacket(pkt);
  }
}
a.attach(new Wire(b));
b.attach(new Wire(a));

const driver = new LinkDriver();
driver.add(a);
driver.add(b);
const stop = () => driver.stop();
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
console.error(`link_wire: ${a.name} <-> ${b.name} (offload ${offload})`);
await driver.run();
Deno.removeSignalListener("SIGTERM", stop);
Deno.removeSignalListener("SIGINT", stop);
a.close();
b.close();
console.log(JSON.stringify({ [a.name]: a.stats, [b.name]: b.stats, polls: driver.polls }));
