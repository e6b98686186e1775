/**
 * The Linux programs the end-to-end tests and benchmarks drive, and the
 * Debian package of each: the one list that `deno task test` (through
 * tests/ensure_tools.ts), `.ci/run` and the tests' ignore decisions read.
 * Adding a tool is one line here.
 *
 * @module
 */

/** Command (or absolute path) → the Debian package that installs it. */
export const TOOLS: Readonly<Record<string, string>> = {
  ip: "iproute2",
  ss: "iproute2",
  tc: "iproute2",
  ping: "iputils-ping",
  arping: "iputils-arping",
  tracepath: "iputils-tracepath",
  traceroute: "traceroute",
  ndisc6: "ndisc6",
  rdisc6: "ndisc6",
  iperf3: "iperf3",
  tshark: "tshark",
  tcpdump: "tcpdump",
  nc: "netcat-openbsd",
  socat: "socat",
  curl: "curl",
  radvd: "radvd",
  "systemd-analyze": "systemd",
  promtool: "prometheus",
  "/usr/bin/python3": "python3",
  scapy: "python3-scapy",
  udhcpc: "udhcpc",
  dhclient: "isc-dhcp-client",
  dhcpcd: "dhcpcd-base",
  "kea-dhcp4": "kea-dhcp4-server",
  "kea-dhcp6": "kea-dhcp6-server",
  perfdhcp: "kea-admin",
  dig: "bind9-dnsutils",
  dnsmasq: "dnsmasq-base",
  dnsperf: "dnsperf",
  iptables: "iptables",
  ip6tables: "iptables",
  ipset: "ipset",
  nft: "nftables",
  "atk6-flood_router26": "thc-ipv6",
  "atk6-flood_solicitate6": "thc-ipv6",
  "atk6-flood_advertise6": "thc-ipv6",
  "atk6-toobig6": "thc-ipv6",
  frag6: "ipv6toolkit",
  flow6: "ipv6toolkit",
};

/** Tools that are not commands: how to tell whether each is present. */
const PROBES: Readonly<Record<string, string[]>> = {
  scapy: ["/usr/bin/python3", "-c", "import scapy"],
};

function onPath(cmd: string): boolean {
  const candidates = cmd.includes("/")
    ? [cmd]
    : (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "").map((d) => `${d}/${cmd}`);
  for (const c of candidates) {
    try {
      const st = Deno.statSync(c);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/** True when `tool` (a key of {@link TOOLS}) is present on this machine. */
export function hasTool(tool: string): boolean {
  const probe = PROBES[tool];
  if (probe === undefined) return onPath(tool);
  if (!onPath(probe[0]!)) return false;
  try {
    return new Deno.Command(probe[0]!, { args: probe.slice(1), stdout: "null", stderr: "null" })
      .outputSync().code === 0;
  } catch {
    return false;
  }
}

/** The tools of `tools` that are missing here (every tool of {@link TOOLS} by default). */
export function missingTools(tools: readonly string[] = Object.keys(TOOLS)): string[] {
  return tools.filter((t) => !hasTool(t));
}

/** The Debian packages that provide `tools`, without repeats, sorted. */
export function packagesFor(tools: readonly string[]): string[] {
  return [...new Set(tools.map((t) => TOOLS[t] ?? t))].sort();
}
