/**
 * `Deno.bench` of tapir's TCP between two stacks in one process on a
 * memory link (bench/_tcp_mem.ts; no privileges, no FFI): a 64 MiB bulk
 * transfer with offloads (GSO super-frames, partial checksums) and
 * without (1500-byte frames), and 1,000 short connections (connect,
 * accept, server closes, client reads the EOF and closes). The manual
 * clock moves only when nothing else can run, so the time is the stacks'
 * CPU cost. Each bulk iteration prints nothing; `deno bench` reports the
 * time per transfer (64 MiB in t s = 0.537 / t Gbit/s).
 *
 *     deno bench --allow-read bench/tcp_bench.ts
 *
 * bench/e2e_tcp_bench.ts (`deno task bench:tcp`) runs the same transfer in
 * a fresh process and prints it in Gbit/s beside the kernel's.
 *
 * @module
 */
import { acceptRate, bulkOnce } from "./_tcp_mem.ts";

const MIB64 = 64 << 20;

Deno.bench({
  name: "TCP bulk 64 MiB a → b, memory link with offloads (IPv4)",
  group: "tcp bulk",
  baseline: true,
  n: 10,
  warmup: 2,
  fn: async () => {
    await bulkOnce(MIB64, true, 4);
  },
});

Deno.bench({
  name: "TCP bulk 64 MiB a → b, memory link with offloads (IPv6)",
  group: "tcp bulk",
  n: 10,
  warmup: 2,
  fn: async () => {
    await bulkOnce(MIB64, true, 6);
  },
});

Deno.bench({
  name: "TCP bulk 16 MiB a → b, memory link without offloads (1500-byte frames)",
  group: "tcp bulk",
  n: 5,
  warmup: 1,
  fn: async () => {
    await bulkOnce(16 << 20, false, 4);
  },
});

Deno.bench({
  name: "TCP 1,000 short connections (connect, accept, close), 64 in flight",
  n: 10,
  warmup: 2,
  fn: async () => {
    await acceptRate(1000, 64);
  },
});
