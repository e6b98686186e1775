/**
 * The rule sets of the firewall scale benchmarks (bench/firewall_scale_bench.ts
 * in process, bench/e2e_firewall_bench.ts over TAP): rules of the kinds real
 * rule sets have, none of which the benchmarks' flows match.
 *
 * @module
 */
import { formatIpv4 } from "../stack/wire/mod.ts";

/**
 * `n` rules of the kinds real rule sets have, none of which the benchmark
 * flows (UDP 40000 → 9, from lan0 to wan0) match: IPv4 and IPv6 sources
 * and destinations with ports, ports on interfaces, other interfaces.
 */
export function scaleRules(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = (0x0a000000 + i * 13) >>> 0;
    const port = 1000 + (i % 30000);
    switch (i % 6) {
      case 0:
        out.push(`-s ${formatIpv4(a)} -j DROP`);
        break;
      case 1:
        out.push(`-d ${formatIpv4(a & 0xffffff00)}/24 -p tcp --dport ${port} -j DROP`);
        break;
      case 2:
        out.push(`-s fd01:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64 -j DROP`);
        break;
      case 3:
        out.push(`-i wan0 -p udp --dport ${port} -j REJECT`);
        break;
      case 4:
        out.push(`-i eth${i % 1000} -o lan0 -j DROP`);
        break;
      default:
        out.push(`-d fd00::${(i & 0xffff).toString(16)} -p udp --sport ${port} -j DROP`);
    }
  }
  return out;
}
