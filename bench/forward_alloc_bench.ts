/**
 * The pure stack forwarding path, without FFI: a router {@link Stack} with
 * a LAN and a WAN NIC; 64-byte-payload UDP frames h1 → h2 are copied from a
 * prebuilt template into one receive buffer (as a TAP read would) and handed
 * to the LAN NIC with `nic.deliverFrame(pkt)`; the WAN link is a counting
 * sink once the router has learned h2's MAC over a real memory link (ARP).
 *
 *     deno run --v8-flags=--expose-gc bench/forward_alloc_bench.ts [--packets 1000000]
 *
 * Prints packets/s, heap used before and after (after `gc()` when exposed),
 * the bytes retained per forwarded packet, and the bytes allocated per
 * packet (heap growth over 10 000-packet windows with no GC inside).
 * `--cpu-prof` on the same command profiles the path.
 *
 * @module
 */
import { MemoryLink } from "../link/mod.ts";
import { ManualClock, SeededRandom, Stack } from "../stack/mod.ts";
import type { LinkEndpoint, NetworkDispatcher, Nic } from "../stack/mod.ts";
import { internetChecksum } from "../stack/wire/checksum.ts";
import { parseIpv4 } from "../stack/wire/ip_address.ts";
import { HEADROOM, PacketBuffer } from "../stack/wire/packet_buffer.ts";

/**
 * A link endpoint that passes writes to `inner` until {@link SinkEndpoint.sink}
 * is set, then only counts them (no copy, no queue).
 */
export class SinkEndpoint implements LinkEndpoint {
  /** The name of the inner endpoint, or "sink". */
  readonly name: string;
  /** The inner endpoint's capabilities, or none. */
  readonly capabilities: { readonly offloads: boolean };
  /** Count instead of forwarding to `inner`. */
  sink: boolean;
  /** Frames written while sinking. */
  written = 0;
  /** Bytes written while sinking. */
  bytes = 0;
  readonly #inner: LinkEndpoint | null;

  /** @param inner the endpoint used until `sink` is set (null: sink from the start) */
  constructor(inner: LinkEndpoint | null, offloads = false) {
    this.#inner = inner;
    this.name = inner?.name ?? "sink";
    this.capabilities = inner?.capabilities ?? { offloads };
    this.sink = inner === null;
  }

  /** 1500, or the inner endpoint's MTU. */
  mtu(): number {
    return this.#inner?.mtu() ?? 1500;
  }

  /** Attach to the inner endpoint (a sink delivers nothing). */
  attach(d: NetworkDispatcher | null): void {
    this.#inner?.attach(d);
  }

  /** Count the frame (sink), or write it to the inner endpoint. */
  writePacket(pkt: PacketBuffer): boolean {
    if (this.sink || this.#inner === null) {
      this.written++;
      this.bytes += pkt.end - pkt.start;
      return true;
    }
    return this.#inner.writePacket(pkt);
  }

  /** Always up. */
  isUp(): boolean {
    return true;
  }

  /** Close the inner endpoint. */
  close(): void {
    this.#inner?.close();
  }
}

/** The router of the rig and what to feed it. */
export interface ForwardRig {
  router: Stack;
  lan: Nic;
  wan: Nic;
  /** Counts every frame the router sends on the WAN. */
  wanSink: SinkEndpoint;
  /** The receive buffer frames are copied into. */
  pkt: PacketBuffer;
  /** The frame h1 → h2 (Ethernet to the router's LAN MAC). */
  template: Uint8Array;
  /** Copy the template into `pkt` and deliver it to the LAN NIC. */
  inject(): void;
}

const H1_MAC = new Uint8Array([0x02, 0, 0x5e, 0, 0, 0x0a]);

/**
 * A frame h1 (192.0.2.10) → h2 (198.51.100.10): Ethernet, IPv4 (TTL 64,
 * checksum filled), UDP 40000 → 9000 with `payload` bytes (checksum 0).
 */
export function udpFrame(dstMac: Uint8Array, payload = 64): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + payload);
  const v = new DataView(f.buffer);
  f.set(dstMac, 0);
  f.set(H1_MAC, 6);
  v.setUint16(12, 0x0800);
  v.setUint8(14, 0x45);
  v.setUint16(16, 20 + 8 + payload);
  v.setUint16(18, 0x1234);
  v.setUint16(20, 0x4000); // DF
  v.setUint8(22, 64);
  v.setUint8(23, 17);
  v.setUint32(26, parseIpv4("192.0.2.10"));
  v.setUint32(30, parseIpv4("198.51.100.10"));
  v.setUint16(24, internetChecksum(f, 14, 20));
  v.setUint16(34, 40000);
  v.setUint16(36, 9000);
  v.setUint16(38, 8 + payload);
  for (let i = 0; i < payload; i++) f[42 + i] = i;
  return f;
}

/**
 * Build the rig: the router learns h2's MAC through ARP over a memory link
 * (one packet forwarded and resolved), then the WAN side becomes a sink.
 */
export function forwardRig(opts: { payload?: number } = {}): ForwardRig {
  const clock = new ManualClock();
  const [rw, h2w] = MemoryLink.pair({ clock, names: ["r:wan0", "h2:eth0"] });
  const router = new Stack({ clock, random: new SeededRandom(2), hostname: "r" });
  const h2 = new Stack({ clock, random: new SeededRandom(3), hostname: "h2" });
  const wanSink = new SinkEndpoint(rw);
  const lan = router.addNic(new SinkEndpoint(null), { name: "lan0", forwardingV4: true });
  const wan = router.addNic(wanSink, { name: "wan0", forwardingV4: true });
  const h2nic = h2.addNic(h2w, { name: "eth0" });
  router.ipv4.addAddress(lan, parseIpv4("192.0.2.1"), 24);
  router.ipv4.addAddress(wan, parseIpv4("198.51.100.1"), 24);
  h2.ipv4.addAddress(h2nic, parseIpv4("198.51.100.10"), 24);
  clock.advance(0);
  const template = udpFrame(lan.mac, opts.payload ?? 64);
  const pkt = new PacketBuffer();
  const inject = () => {
    pkt.data.set(template, HEADROOM);
    pkt.setFrame(HEADROOM, template.length);
    lan.deliverFrame(pkt);
  };
  // The first packet waits for ARP; h2 answers over the memory link.
  inject();
  for (let i = 0; i < 5; i++) clock.advance(0);
  const learned = router.ipv4.nicState(wan)!.neighbors.lookup(parseIpv4("198.51.100.10"));
  if (learned === null) throw new Error("the router did not learn h2's MAC");
  wanSink.sink = true;
  return { router, lan, wan, wanSink, pkt, template, inject };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function main(): void {
  const i = Deno.args.indexOf("--packets");
  const N = i >= 0 ? Number(Deno.args[i + 1]) : 1_000_000;
  const rig = forwardRig();
  const hasGc = typeof (globalThis as { gc?: unknown }).gc === "function";
  // Warm up (JIT) before the baseline.
  for (let k = 0; k < 50_000; k++) rig.inject();
  rig.wanSink.written = 0;
  gc();
  const before = Deno.memoryUsage().heapUsed;
  const t0 = performance.now();
  for (let k = 0; k < N; k++) rig.inject();
  const ms = performance.now() - t0;
  const forwarded = rig.wanSink.written;
  const afterNoGc = Deno.memoryUsage().heapUsed;
  gc();
  const after = Deno.memoryUsage().heapUsed;
  // Allocation per packet: heap growth across small windows (a window with a
  // scavenge inside shows a drop and is skipped).
  const perWindow: number[] = [];
  const W = 10_000;
  for (let w = 0; w < 20; w++) {
    const a = Deno.memoryUsage().heapUsed;
    for (let k = 0; k < W; k++) rig.inject();
    const b = Deno.memoryUsage().heapUsed;
    if (b >= a) perWindow.push((b - a) / W);
  }
  perWindow.sort((x, y) => x - y);
  const median = perWindow.length ? perWindow[perWindow.length >> 1]! : NaN;
  const s = rig.router.stats.ipv4;
  const report = {
    packets: N,
    forwardedToWan: forwarded,
    ipv4PacketsForwarded: s.forwarding.packets,
    seconds: ms / 1000,
    pps: N / (ms / 1000),
    nsPerPacket: (ms * 1e6) / N,
    heapBefore: before,
    heapAfterNoGc: afterNoGc,
    heapAfter: after,
    retainedBytesPerPacket: (after - before) / N,
    allocatedBytesPerPacketMedian: median,
    windowsWithoutGc: perWindow.length,
    gcExposed: hasGc,
  };
  const mb = (n: number) => `${(n / 1048576).toFixed(2)} MB`;
  console.log(
    `forwarded ${forwarded} of ${N} packets (64 B UDP payload) in ${report.seconds.toFixed(3)} s: ${
      (report.pps / 1e6).toFixed(3)
    } Mpps, ${report.nsPerPacket.toFixed(0)} ns/packet
heap used: before ${mb(before)}, after ${mb(afterNoGc)} (no gc), ${mb(after)} (${
      hasGc ? "after gc" : "gc not exposed: run with --v8-flags=--expose-gc"
    })
retained per packet: ${
      report.retainedBytesPerPacket.toFixed(4)
    } B; allocated per packet (median of ${perWindow.length} windows of ${W}): ${
      median.toFixed(2)
    } B`,
  );
  console.log(JSON.stringify(report));
  if (forwarded !== N) throw new Error(`only ${forwarded} of ${N} packets were forwarded`);
}

if (import.meta.main) main();
