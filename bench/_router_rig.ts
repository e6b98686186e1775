/**
 * A router built from a TOML config as `tapir run` builds it, with both
 * NICs on counting sinks and h1's and h2's MACs as static neighbors, fed
 * prebuilt UDP frames h1 → h2 (IPv4 or IPv6) straight into the LAN NIC: only
 * the router's own per-packet work is measured (no hubs, no hosts, no FFI).
 * The firewall's cost is this rig with and without a `[firewall]` part.
 *
 *     deno run -A bench/_router_rig.ts [--packets 2000000] [--family 4|6|both] [--configs plain,ct,nat100] [--rounds 3] [--thrash KiB]
 *
 * prints ns per packet for each config and family, and the ratio to plain
 * (`--thrash`: the time of writing to that much memory after each packet is
 * included; it stands in for what the syscalls between packets do to the
 * caches).
 * `--cpu-prof` on the same command profiles the path.
 *
 * @module
 */
import { buildStack } from "../config/build.ts";
import { parseConfig } from "../config/mod.ts";
import { ManualClock, SeededRandom } from "../stack/mod.ts";
import type { Nic, Stack } from "../stack/mod.ts";
import { HEADROOM, PacketBuffer } from "../stack/wire/packet_buffer.ts";
import { SinkEndpoint, udpFrame } from "./forward_alloc_bench.ts";
import { ip6, udp6 } from "../tests/topology/_packets6.ts";

/** The addresses of the rig (those of bench:firewall's namespaces). */
const H1_MAC = new Uint8Array([0x02, 0, 0x5e, 0, 0, 0x0a]);
const H1_6 = "2001:db8:1::2";
const H2_6 = "2001:db8:2::2";

/** bench:firewall's nat100 (bench/firewall_bench.ts's 100 rules and MASQUERADE on the WAN). */
const NAT100 = (() => {
  const rules = [
    ...Array.from({ length: 98 }, (_, i) => `-p tcp --dport ${1000 + i} -j DROP`),
    "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    "-i lan0 -o wan0 -j ACCEPT",
  ];
  return `
[firewall.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
[firewall.filter]
forward = { policy = "drop", rules = [${rules.map((r) => JSON.stringify(r)).join(", ")}] }
`;
})();

/** The firewall part of each config the rig knows. */
export const RIG_CONFIGS: Record<string, string> = {
  plain: "",
  // Conntrack and the two rules every stateful rule set has, no NAT.
  ct: `
[firewall.filter]
forward = { policy = "drop", rules = ["-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", "-i lan0 -o wan0 -j ACCEPT"] }
`,
  nat100: NAT100,
};

/** A frame h1 → h2 over IPv6: UDP 40000 → 9000 with `payload` bytes, checksum filled. */
export function udp6Frame(dstMac: Uint8Array, payload = 64): Uint8Array {
  const packet = ip6({
    src: H1_6,
    dst: H2_6,
    proto: 17,
    payload: udp6(H1_6, H2_6, 40000, 9000, payload),
  });
  const f = new Uint8Array(14 + packet.length);
  f.set(dstMac, 0);
  f.set(H1_MAC, 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  f.set(packet, 14);
  return f;
}

/** The router of the rig and what to feed it. */
export interface RouterRig {
  router: Stack;
  lan: Nic;
  wanSink: SinkEndpoint;
  /** Copy the family's template into the receive buffer and deliver it to the LAN NIC. */
  inject(): void;
}

/** Build the router of `config` (a key of {@link RIG_CONFIGS} or TOML) for `family`. */
export function routerRig(family: 4 | 6, config: string, payload = 64): RouterRig {
  const firewall = RIG_CONFIGS[config] ?? config;
  const toml = `
[router]
hostname = "rig"
forwarding = true
[router.ipv6]
dad_transmits = 0

[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
neighbors = [{ address = "192.0.2.10", mac = "02:00:5e:00:00:0a" }, { address = "${H1_6}", mac = "02:00:5e:00:00:0a" }]

[[interface]]
name = "wan0"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
neighbors = [{ address = "198.51.100.10", mac = "02:00:5e:00:00:14" }, { address = "${H2_6}", mac = "02:00:5e:00:00:14" }]
${firewall}`;
  const clock = new ManualClock();
  const wanSink = new SinkEndpoint(null);
  const { stack, nics } = buildStack(parseConfig(toml), {
    clock,
    random: new SeededRandom(2),
    openLink: (iface) => iface.name === "wan0" ? wanSink : new SinkEndpoint(null),
  });
  clock.advance(1000);
  const lan = nics.get("lan0")!;
  const template = family === 4 ? udpFrame(lan.mac, payload) : udp6Frame(lan.mac, payload);
  const pkt = new PacketBuffer();
  const inject = () => {
    pkt.data.set(template, HEADROOM);
    pkt.setFrame(HEADROOM, template.length);
    lan.deliverFrame(pkt);
  };
  const before = wanSink.written;
  for (let i = 0; i < 4; i++) inject();
  if (wanSink.written - before !== 4) {
    throw new Error(`rig ${config}/IPv${family}: ${wanSink.written - before} of 4 forwarded`);
  }
  return { router: stack, lan, wanSink, inject };
}

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1]! : dflt;
}

function main(): void {
  const N = Number(arg("--packets", "2000000"));
  const fam = arg("--family", "both");
  const families: (4 | 6)[] = fam === "both" ? [4, 6] : [Number(fam) as 4 | 6];
  const configs = arg("--configs", "plain,ct,nat100").split(",");
  const rounds = Number(arg("--rounds", "3"));
  // --thrash K: after each packet, write one byte in every 64 of K KiB, as
  // the TAP read and write syscalls between two packets evict the caches.
  const thrash = new Uint8Array(Number(arg("--thrash", "0")) * 1024);
  let t = 0;
  const pollute = () => {
    for (let i = 0; i < thrash.length; i += 64) thrash[i] = t;
    t++;
  };
  for (const family of families) {
    const rigs = configs.map((c) => ({ c, rig: routerRig(family, c) }));
    // Warm up each (JIT), then interleave the rounds so drift hits all alike.
    const each = thrash.length === 0 ? (rig: RouterRig) => rig.inject() : (rig: RouterRig) => {
      rig.inject();
      pollute();
    };
    for (const { rig } of rigs) for (let k = 0; k < 100_000; k++) each(rig);
    const ns: Record<string, number[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const { c, rig } of rigs) {
        const w0 = rig.wanSink.written;
        const t0 = performance.now();
        for (let k = 0; k < N; k++) each(rig);
        const ms = performance.now() - t0;
        if (rig.wanSink.written - w0 !== N) {
          throw new Error(`${c}: ${rig.wanSink.written - w0} of ${N} forwarded`);
        }
        (ns[c] ??= []).push((ms * 1e6) / N);
      }
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
    const base = med(ns[configs[0]!]!);
    for (const c of configs) {
      const m = med(ns[c]!);
      console.log(
        `IPv${family} ${c.padEnd(8)} ${m.toFixed(0).padStart(5)} ns/packet (rounds ${
          ns[c]!.map((x) => x.toFixed(0)).join(" ")
        })  rate ×${(base / m).toFixed(2)} of ${configs[0]}`,
      );
    }
  }
}

if (import.meta.main) main();
