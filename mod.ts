/**
 * tapir as a library: a userspace IPv4/IPv6 network stack and router.
 *
 * - the stack: {@link Stack}, NICs, IPv4, ARP, ICMP, UDP, routing,
 *   {@link ping}/{@link traceroute}, clocks ({@link ManualClock});
 * - packet formats in `stack/wire` (addresses, headers, checksums);
 * - links: TAP devices through FFI, in-memory links, pcap capture;
 * - config: TOML → a validated {@link Config}, {@link buildStack},
 *   and the virtual lab ({@link runLab}).
 *
 * @example
 * ```ts
 * import { ManualClock, MemoryLink, parseIpv4, ping, Stack } from "./mod.ts";
 * const clock = new ManualClock();
 * const [a, b] = MemoryLink.pair({ clock });
 * const h1 = new Stack({ clock }), h2 = new Stack({ clock });
 * h1.ipv4.addAddress(h1.addNic(a, { name: "eth0" }), parseIpv4("192.0.2.1"), 24);
 * h2.ipv4.addAddress(h2.addNic(b, { name: "eth0" }), parseIpv4("192.0.2.2"), 24);
 * const done = ping(h1, { dst: parseIpv4("192.0.2.2"), count: 1 });
 * for (let i = 0; i < 20; i++) clock.advance(100);
 * console.assert((await done).received === 1);
 * ```
 *
 * @module
 */
export * from "./stack/mod.ts";
export * from "./stack/wire/mod.ts";
export * from "./link/mod.ts";
export * from "./config/mod.ts";
// stack/ and config/ both name RouteType and NeighborConfig; the stack's win here.
export type { NeighborConfig, RouteType } from "./stack/mod.ts";
export { type BuildOptions, buildStack, type BuiltStack } from "./config/build.ts";
export {
  type LabResult,
  type ProbeOutcome,
  runLab,
  type RunLabOptions,
} from "./config/lab_runner.ts";
