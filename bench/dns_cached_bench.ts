/**
 * The DNS forwarder's cached-query path without FFI: a gateway built from a
 * config as `tapir run` builds it (`[dns] interfaces = ["lan0"]`), its
 * cache filled over memory links from a scripted upstream (A and AAAA for
 * `h0..h{N-1}.bench.test`, TTL 1 h, as bench/e2e_dns_bench.ts's dnsmasq
 * serves them), then the client's query frames (recorded as the client's
 * stack wrote them, IPv4 or IPv6) copied one by one into a receive buffer
 * (as a TAP read would) and handed to the LAN NIC; the LAN link counts the
 * answers (no copy).
 *
 *     deno run -A bench/dns_cached_bench.ts [--queries 1000000] [--names 1000] [--family 4|6]
 *
 * Prints µs per cached query (one query in, one answer out: parse, cache,
 * the UDP/IP/Ethernet reply path), the best and the median of five
 * windows, and checks that every query was a cache hit answered on the LAN. `--cpu-prof` on the same command profiles it;
 * `deno bench bench/dns_cached_bench.ts` runs the same path as a `Deno.bench`.
 *
 * @module
 */
import { parseConfig } from "../config/mod.ts";
import { buildStack } from "../config/build.ts";
import { MemoryLink } from "../link/mod.ts";
import { type DnsForwarder, ManualClock, type Nic, type Stack } from "../stack/mod.ts";
import type { LinkEndpoint, NetworkDispatcher } from "../stack/mod.ts";
import { DnsType, DnsWriter, parseDns, parseIpv4, parseIpv6 } from "../stack/wire/mod.ts";
import { HEADROOM, PacketBuffer } from "../stack/wire/packet_buffer.ts";

/**
 * A link endpoint that passes writes to `inner` and, while `record` is set,
 * keeps a copy of each frame; while `sink` is set it only counts them.
 */
class TapEndpoint implements LinkEndpoint {
  readonly name: string;
  readonly capabilities: { readonly offloads: boolean };
  record = false;
  sink = false;
  readonly frames: Uint8Array[] = [];
  written = 0;
  /** The last frame written while sinking (a view, valid until the next write). */
  last: Uint8Array | null = null;
  readonly #inner: LinkEndpoint;

  constructor(inner: LinkEndpoint) {
    this.#inner = inner;
    this.name = inner.name;
    this.capabilities = inner.capabilities;
  }
  mtu(): number {
    return this.#inner.mtu();
  }
  attach(d: NetworkDispatcher | null): void {
    this.#inner.attach(d);
  }
  writePacket(pkt: PacketBuffer): boolean {
    if (this.sink) {
      this.written++;
      this.last = pkt.data.subarray(pkt.start, pkt.end);
      return true;
    }
    if (this.record) this.frames.push(pkt.data.slice(pkt.start, pkt.end));
    return this.#inner.writePacket(pkt);
  }
  isUp(): boolean {
    return true;
  }
  close(): void {
    this.#inner.close();
  }
}

/** The rig: a gateway with a filled cache and the frames that ask it. */
export interface DnsRig {
  gateway: Stack;
  forwarder: DnsForwarder;
  lan: Nic;
  /** The gateway's LAN link (counts answers once sinking). */
  lanLink: TapEndpoint;
  /** The client's queries as frames to the gateway, one per name and type. */
  frames: Uint8Array[];
  /** Deliver query `i % frames.length` to the gateway's LAN NIC. */
  inject(i: number): void;
  close(): void;
}

const ZONE = "bench.test";
const SERVER4 = "192.0.2.1", SERVER6 = "2001:db8:53::1";

/** Build the rig for `family`: fill the cache with `names` names (A and AAAA), record the queries. */
export function dnsRig(family: 4 | 6, names: number): DnsRig {
  const clock = new ManualClock(1_000_000);
  const [cl, gl] = MemoryLink.pair({ clock, names: ["client:eth0", "gw:lan0"] });
  const [gw, rw] = MemoryLink.pair({ clock, names: ["gw:wan0", "up:eth0"] });
  const clientLink = new TapEndpoint(cl);
  const lanLink = new TapEndpoint(gl);
  const node = (text: string, links: LinkEndpoint[]) => {
    let i = 0;
    return buildStack(parseConfig(text), { clock, openLink: () => links[i++]! }).stack;
  };
  const client = node(
    `[[interface]]\nname = "eth0"\naddresses = ["192.0.2.2/24", "2001:db8:53::2/64"]\n`,
    [clientLink],
  );
  const gateway = node(
    `[router]\nhostname = "bench-dns"\n` +
      `[[interface]]\nname = "lan0"\naddresses = ["${SERVER4}/24", "${SERVER6}/64"]\n` +
      `[[interface]]\nname = "wan0"\naddresses = ["198.51.100.1/25"]\n` +
      `[dns]\ninterfaces = ["lan0"]\nservers = ["198.51.100.53"]\ncache_size = 10000\n`,
    [lanLink, gw],
  );
  const up = node(
    `[[interface]]\nname = "eth0"\naddresses = ["198.51.100.53/25"]\n`,
    [rw],
  );
  // DAD and the first NDP/ARP exchanges.
  clock.advance(5_000);
  const ups = up.udp.bindSocket({
    family: 4,
    port: 53,
    onDatagram: (d) => {
      const q = parseDns(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
      if (typeof q === "string") return;
      const qq = q.questions[0]!;
      const i = Number(/^h(\d+)\./.exec(qq.name)?.[1] ?? -1);
      const w = new DnsWriter(new Uint8Array(512));
      const rdata = qq.type === DnsType.A
        ? new Uint8Array([203, 0, 113, (i % 250) + 1])
        : parseIpv6(`2001:db8:53::${i.toString(16)}`);
      // As dnsmasq answers for a host-record: AA, RD copied, RA, the record with TTL 3600.
      w.header({ id: q.id, flags: 0x8580 | (q.flags & 0x0100), qd: 1, an: 1 })
        .question(qq.name, qq.type)
        .record(qq.name, qq.type, 3600, rdata);
      ups.send(d.src, d.srcPort, w.bytes(), { src: d.dst });
    },
  });
  let answered = 0;
  const cs = client.udp.bindSocket({ family: 0, port: 40000, onDatagram: () => answered++ });
  const server = family === 4 ? parseIpv4(SERVER4) : parseIpv6(SERVER6);
  const ask = (id: number, name: string, type: number) => {
    const w = new DnsWriter(new Uint8Array(512));
    w.header({ id, flags: 0x0100, qd: 1 }).question(name, type);
    cs.send(server, 53, w.bytes());
  };
  // One query first: ARP or NDP on both sides of the gateway (a burst would wait in their queues).
  ask(0xffff, `warm.${ZONE}`, DnsType.A);
  clock.advance(10);
  answered = 0;
  // Once through the names: every query a miss, forwarded and cached.
  const want = 2 * names;
  for (let i = 0; i < names; i++) {
    ask(i & 0xffff, `h${i}.${ZONE}`, DnsType.A);
    ask((i + 1) & 0xffff, `h${i}.${ZONE}`, DnsType.AAAA);
    if (i % 100 === 99) clock.advance(1);
  }
  clock.advance(10);
  if (answered !== want) throw new Error(`fill: ${answered} of ${want} answered`);
  // The same queries again, recorded (answered from the cache).
  clientLink.record = true;
  for (let i = 0; i < names; i++) {
    ask((7 * i) & 0xffff, `h${i}.${ZONE}`, DnsType.A);
    ask((7 * i + 3) & 0xffff, `h${i}.${ZONE}`, DnsType.AAAA);
    if (i % 100 === 99) clock.advance(1);
  }
  clock.advance(10);
  clientLink.record = false;
  const frames = clientLink.frames.filter((f) =>
    f.length > 14 + 28 && f[12] === (family === 4 ? 0x08 : 0x86)
  );
  if (frames.length !== want) throw new Error(`recorded ${frames.length} of ${want} query frames`);
  const forwarder = gateway.services.get("dns") as DnsForwarder;
  const lan = [...gateway.nics.values()].find((n) => n.name === "lan0")!;
  lanLink.sink = true;
  const pkt = new PacketBuffer();
  const inject = (i: number) => {
    const f = frames[i % frames.length]!;
    pkt.data.set(f, HEADROOM);
    pkt.setFrame(HEADROOM, f.length);
    lan.deliverFrame(pkt);
  };
  const close = () => {
    for (const s of [client, gateway, up]) s.close();
  };
  return { gateway, forwarder, lan, lanLink, frames, inject, close };
}

function arg(name: string, def: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1]! : def;
}

function main(): void {
  const n = Number(arg("--queries", "1000000"));
  const names = Number(arg("--names", "1000"));
  const families = arg("--family", "both") === "both"
    ? [4, 6] as const
    : [Number(arg("--family", "4")) as 4 | 6];
  for (const family of families) {
    const rig = dnsRig(family, names);
    // Warm up (JIT) first.
    for (let i = 0; i < 100_000; i++) rig.inject(i);
    const hits0 = rig.forwarder.stats.cacheHits, out0 = rig.lanLink.written;
    // Five windows; the best is the figure (the machine is shared), the median beside it.
    const perQuery: number[] = [];
    const w = Math.ceil(n / 5);
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      for (let i = 0; i < w; i++) rig.inject(i);
      perQuery.push(1000 * (performance.now() - t0) / w);
    }
    const hits = rig.forwarder.stats.cacheHits - hits0, out = rig.lanLink.written - out0;
    const last = rig.lanLink.last!;
    const m = parseDns(last.subarray(family === 4 ? 14 + 28 : 14 + 48));
    perQuery.sort((a, b) => a - b);
    console.log(
      `IPv${family}: ${5 * w} cached queries, 5 windows: ${
        perQuery[0]!.toFixed(3)
      } µs/query best ` +
        `(${Math.round(1e6 / perQuery[0]!)} queries/s), median ${perQuery[2]!.toFixed(3)}; ` +
        `${hits} cache hits, ${out} answers`,
    );
    if (hits !== 5 * w || out !== 5 * w || typeof m === "string" || m.answers.length !== 1) {
      throw new Error(`not every query was answered from the cache (${hits} hits, ${out} out)`);
    }
    rig.close();
  }
}

if (import.meta.main) main();
else {
  for (const family of [4, 6] as const) {
    const rig = dnsRig(family, 1000);
    let i = 0;
    Deno.bench(
      `DNS forwarder: one cached query over IPv${family} (in, parse, cache, answer out)`,
      () => {
        rig.inject(i++);
      },
    );
  }
}
