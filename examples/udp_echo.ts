/**
 * A UDP echo service (RFC 862) on tapir's stack, written the way it would
 * be against Deno's own UDP: only `Deno.listenDatagram(...)` became
 * `stack.listenDatagram(...)`.
 *
 *     deno run --allow-ffi --allow-read --allow-env examples/udp_echo.ts CONFIG [PORT]
 *
 * CONFIG is a tapir config whose interfaces name TAP devices (root or
 * CAP_NET_ADMIN); PORT defaults to 7. It answers on every address of
 * both families until SIGINT or SIGTERM.
 */
import { buildStack, LinkDriver, loadConfig, openTap, type TapEndpoint } from "../mod.ts";

const [file, portArg] = Deno.args;
if (file === undefined) {
  console.error("usage: udp_echo.ts CONFIG [PORT]");
  Deno.exit(2);
}
const config = await loadConfig(file);
const taps: TapEndpoint[] = [];
const { stack } = buildStack(config, {
  openLink: (iface) => {
    const tap = openTap({ device: iface.tap, mtu: iface.mtu, offload: iface.offload });
    taps.push(tap);
    return tap;
  },
});
const driver = new LinkDriver();
for (const t of taps) driver.add(t);

// The service: the same code as with Deno.listenDatagram.
const conn = stack.listenDatagram({ hostname: "::", port: Number(portArg ?? 7), transport: "udp" });
console.log(`echo on ${conn.addr.hostname} port ${conn.addr.port}`);
const serve = (async () => {
  for await (const [data, from] of conn) await conn.send(data, from);
})();

const stop = () => driver.stop();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await driver.run();
conn.close();
await serve;
stack.close();
