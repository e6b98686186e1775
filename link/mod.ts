/**
 * Link endpoints: the things that move Ethernet frames for the stack.
 *
 * - {@link openTap} / {@link TapEndpoint}: a Linux TAP device through FFI
 *   into libc (`--allow-ffi`, CAP_NET_ADMIN), with virtio-net offloads.
 * - {@link LinkDriver}: the receive loop of TAP endpoints: drain every fd
 *   synchronously, then wait in one `poll`.
 * - {@link MemoryLink}: an in-process wire between two endpoints, driven
 *   by a {@link Clock}, for tests and the virtual lab, with netem-like
 *   faults per direction ({@link LinkFaults}).
 * - {@link PcapEndpoint}: wraps any endpoint and writes what crosses it
 *   to a pcap file that tshark and Wireshark read.
 *
 * @module
 */
export * from "./tap.ts";
export * from "./driver.ts";
export * from "./memory.ts";
export {
  DEFAULT_FAULT_QUEUE_FRAMES,
  type FaultStats,
  type GilbertElliott,
  isPmtuSignal,
  type LinkFaults,
  linkFaultsProblems,
} from "./faults.ts";
export * from "./pcap.ts";
