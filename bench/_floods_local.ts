/**
 * The floods of bench/e2e_floods_bench.ts without TAPs, root or other
 * processes: a router {@link Stack} on memory links (tests/topology's
 * labs, manual clock) gets each flood's frames handed to its NIC the way a
 * TAP read would (one receive buffer, `nic.deliverFrame`), with the clock
 * moving as at `--pps`. It prints, per flood, the stack's cost per frame
 * (µs), the memory held (V8 heap plus ArrayBuffers, after full GCs) at the
 * end of the flood and 60 s of stack time after it, and the counters that
 * moved most. For quick before/after figures of one fix, and for a CPU
 * profile of one flood path:
 *
 *     deno run --v8-flags=--expose-gc -A bench/_floods_local.ts [--only frag4,...] [--packets 300000] [--pps 200000] [--prof DIR]
 *
 * `--prof DIR` takes a V8 CPU profile of each flood's loop (node:inspector)
 * into `DIR/<flood>.cpuprofile` and prints the functions with the most
 * self time.
 *
 * @module
 */
import { HEADROOM, PacketBuffer } from "../stack/wire/packet_buffer.ts";
import type { Nic, Stack } from "../stack/mod.ts";
import type { ManualClock } from "../stack/clock.ts";
import { ADDR, routerLab } from "../tests/topology/_topology.ts";
import { arp, ipv4, PROTO, udp } from "../tests/topology/_packets.ts";
import {
  ADDR6,
  frag,
  icmp6,
  ip6,
  na,
  NH,
  ns,
  routerLab6,
  T6,
  udp6,
} from "../tests/topology/_topology6.ts";
import { firewallFrom } from "../tests/stack/firewall/_fw.ts";
import { internetChecksum } from "../stack/wire/checksum.ts";
import { Session } from "node:inspector";

const gc = (globalThis as { gc?: () => void }).gc;

/** V8 heap plus ArrayBuffer memory after full collections (bytes). */
function held(): number {
  if (gc !== undefined) { for (let i = 0; i < 3; i++) gc(); }
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

function opt(name: string, def: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1]! : def;
}

/** A random number source for the frames (not the stack's). */
let seed = 0x12345678;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

/** A flood: a router to flood, the NIC it comes in on, and a frame maker that patches `f`. */
interface Flood {
  setup(): { r: Stack; clock: ManualClock; nic: Nic; flush(): void };
  /** Write frame number `i` into `f` at HEADROOM; returns its length. */
  frame(f: Uint8Array, i: number): number;
}

const rx = new PacketBuffer();

function eth(f: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  f.set(dst, HEADROOM);
  f.set(src, HEADROOM + 6);
  f[HEADROOM + 12] = type >> 8;
  f[HEADROOM + 13] = type & 0xff;
}

function randMac(m: Uint8Array): Uint8Array {
  m[0] = 0x02;
  for (let i = 1; i < 6; i++) m[i] = rnd() & 0xff;
  return m;
}

const mac = new Uint8Array(6);
const ALL_NODES_MAC = new Uint8Array([0x33, 0x33, 0, 0, 0, 1]);
const BCAST = new Uint8Array(6).fill(0xff);

function lab4(nat = false) {
  return () => {
    const l = routerLab();
    if (nat) {
      firewallFrom(
        l.r,
        `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
      );
    }
    return {
      r: l.r,
      clock: l.clock,
      nic: l.rLan,
      flush: () => {
        l.lan.log.length = 0;
        l.wan.log.length = 0;
      },
    };
  };
}

function lab6(acceptRa = false) {
  return () => {
    const l = routerLab6();
    if (acceptRa) l.r.ra.enableHost(l.rWan, { solicit: false });
    return {
      r: l.r,
      clock: l.clock,
      nic: acceptRa ? l.rWan : l.rLan,
      flush: () => {
        l.lan.log.length = 0;
        l.wan.log.length = 0;
      },
    };
  };
}

/** fe80::<random 64 bits>, written at `off`. */
function randLinkLocal(f: Uint8Array, off: number): void {
  f[off] = 0xfe;
  f[off + 1] = 0x80;
  for (let i = 2; i < 8; i++) f[off + i] = 0;
  for (let i = 8; i < 16; i++) f[off + i] = rnd() & 0xff;
}

/** Recompute the ICMPv6/UDP checksum of an IPv6 packet at `ip` whose upper layer starts at `l4`. */
function fix6(f: Uint8Array, ip: number, l4: number, csumAt: number, proto: number): void {
  const len = (f[ip + 4]! << 8 | f[ip + 5]!) - (l4 - ip - 40);
  f[csumAt] = 0;
  f[csumAt + 1] = 0;
  const p = new Uint8Array(40 + len);
  p.set(f.subarray(ip + 8, ip + 40), 0);
  p[34] = len >> 8;
  p[35] = len & 0xff;
  p[39] = proto;
  p.set(f.subarray(l4, l4 + len), 40);
  const c = internetChecksum(p, 0, p.length);
  f[csumAt] = c >> 8;
  f[csumAt + 1] = c & 0xff;
}

function template(bytes: Uint8Array): (f: Uint8Array) => number {
  return (f) => {
    f.set(bytes, HEADROOM + 14);
    return 14 + bytes.length;
  };
}

const FLOODS: Record<string, Flood> = {
  "arp-random": (() => {
    const a = arp(1, new Uint8Array(6), "192.0.2.3", new Uint8Array(6), ADDR.rLan);
    return {
      setup: lab4(),
      frame(f: Uint8Array) {
        randMac(mac);
        eth(f, BCAST, mac, 0x0806);
        const o = HEADROOM + 14;
        f.set(a, o);
        f.set(mac, o + 8); // sender hardware address
        f[o + 17] = 3 + rnd() % 250; // sender protocol address 192.0.2.x
        return 14 + a.length;
      },
    };
  })(),
  "ns-random": (() => {
    const t = template(ip6({
      src: "fe80::1",
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: ns("fe80::1", "ff02::1", ADDR6.rLan, { slla: new Uint8Array(6) }),
    }));
    return {
      setup: lab6(),
      frame(f: Uint8Array) {
        const n = t(f);
        const ip = HEADROOM + 14;
        randLinkLocal(f, ip + 8);
        randMac(mac);
        eth(f, ALL_NODES_MAC, mac, 0x86dd);
        f.set(mac, ip + 40 + 24 + 2);
        fix6(f, ip, ip + 40, ip + 42, NH.ICMP6);
        return n;
      },
    };
  })(),
  "na-flood": (() => {
    const t = template(ip6({
      src: "fe80::1",
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: na("fe80::1", "ff02::1", "fe80::1", { o: true, tlla: new Uint8Array(6) }),
    }));
    return {
      setup: lab6(),
      frame(f: Uint8Array) {
        const n = t(f);
        const ip = HEADROOM + 14;
        randLinkLocal(f, ip + 8);
        f.copyWithin(ip + 48, ip + 8, ip + 24); // target = source
        randMac(mac);
        eth(f, ALL_NODES_MAC, mac, 0x86dd);
        f.set(mac, ip + 40 + 24 + 2);
        fix6(f, ip, ip + 40, ip + 42, NH.ICMP6);
        return n;
      },
    };
  })(),
  frag4: (() => {
    let ipid = 0;
    return {
      setup: lab4(),
      frame(f: Uint8Array) {
        const b = ipv4({
          src: ADDR.a,
          dst: ADDR.rLan,
          protocol: PROTO.UDP,
          payload: udp(ADDR.a, ADDR.rLan, 4000, 9, 992),
          mf: true,
          id: ipid = (ipid + 1 + (rnd() & 0xff)) & 0xffff,
        });
        eth(f, this.dst!, mac, 0x0800);
        f.set(b, HEADROOM + 14);
        return 14 + b.length;
      },
      dst: undefined as Uint8Array | undefined,
    } as Flood & { dst?: Uint8Array };
  })(),
  frag6: (() => {
    const body = udp6(ADDR6.a, ADDR6.rLan, 4000, 9, 1224);
    const t = template(ip6({
      src: ADDR6.a,
      dst: ADDR6.rLan,
      proto: NH.UDP,
      ext: [frag(0, true, 1)],
      payload: body.subarray(0, 1224),
    }));
    return {
      setup: lab6(),
      frame(f: Uint8Array) {
        const n = t(f);
        const ip = HEADROOM + 14;
        const v = new DataView(f.buffer, ip + 44, 4);
        v.setUint32(0, rnd());
        eth(f, this.dst!, mac, 0x86dd);
        return n;
      },
      dst: undefined as Uint8Array | undefined,
    } as Flood & { dst?: Uint8Array };
  })(),
  "udp-unresolved": {
    setup: lab4(),
    frame(f) {
      const dst = `198.51.100.${20 + rnd() % 230}`;
      const b = ipv4({
        src: ADDR.a,
        dst,
        protocol: PROTO.UDP,
        payload: udp(ADDR.a, dst, 4000, 9, 22),
      });
      eth(f, (this as { dst?: Uint8Array }).dst!, mac, 0x0800);
      f.set(b, HEADROOM + 14);
      return 14 + b.length;
    },
  },
  "nat-flows": {
    setup: lab4(true),
    frame(f) {
      const b = ipv4({
        src: ADDR.a,
        dst: ADDR.b,
        protocol: PROTO.UDP,
        payload: udp(ADDR.a, ADDR.b, 1024 + rnd() % 60000, 1 + rnd() % 60000, 22),
      });
      eth(f, (this as { dst?: Uint8Array }).dst!, mac, 0x0800);
      f.set(b, HEADROOM + 14);
      return 14 + b.length;
    },
  },
  "ra-flood": (() => {
    // flood_router26's RA: router lifetime 65535, MTU, SLLA, 25 prefixes, a route.
    const opts: number[] = [5, 1, 0, 0, 0, 0, 0x05, 0xdc, 1, 1, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 25; i++) {
      opts.push(3, 4, 64, 0xe0, 0, 1, 0xff, 0, 0, 1, 0xff, 0, 0, 0, 0, 0);
      opts.push(0x20, 0x12, 0x31, 0x57 + i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }
    opts.push(24, 3, 64, 0x08, 0, 1, 0xff, 0, 0x20, 0x04, 0x31, 0x70, 0, 0, 0, 0);
    opts.push(0, 0, 0, 0, 0, 0, 0, 0);
    // After the type/code/checksum/hop limit/flags/lifetime word: Reachable
    // Time and Retrans Timer (0), then the options.
    const body = new Uint8Array(8 + opts.length);
    body.set(opts, 8);
    const t = template(ip6({
      src: "fe80::1",
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: icmp6("fe80::1", "ff02::1", T6.RA, 0, 0x4008ffff, body),
    }));
    return {
      setup: lab6(true),
      frame(f: Uint8Array) {
        const n = t(f);
        const ip = HEADROOM + 14;
        randLinkLocal(f, ip + 8);
        randMac(mac);
        eth(f, ALL_NODES_MAC, mac, 0x86dd);
        f.set(mac, ip + 40 + 16 + 8 + 2);
        // Random prefixes: bytes 2..7 of each.
        for (let i = 0; i < 25; i++) {
          const p = ip + 40 + 16 + 16 + i * 32 + 16;
          const r = rnd();
          f[p + 2] = r & 0xff;
          f[p + 3] = (r >> 8) & 0xff;
          f[p + 4] = (r >> 16) & 0xff;
          f[p + 5] = r >>> 24;
        }
        fix6(f, ip, ip + 40, ip + 42, NH.ICMP6);
        return n;
      },
    };
  })(),
};

/** Counters of `s` by dotted path. */
function flat(x: unknown, path: string, out: Map<string, number>): Map<string, number> {
  if (typeof x === "number") out.set(path, x);
  else if (x !== null && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) flat(v, path === "" ? k : `${path}.${k}`, out);
  }
  return out;
}

/** A CPU profiler on this isolate (node:inspector), or null without `--prof`. */
function profiler(dir: string) {
  if (dir === "") return null;
  const s = new Session();
  s.connect();
  const post = <T>(m: string, p?: object) =>
    new Promise<T>((res, rej) => s.post(m, p ?? {}, (e, r) => e ? rej(e) : res(r as T)));
  return {
    start: async () => {
      await post("Profiler.enable");
      await post("Profiler.setSamplingInterval", { interval: 200 });
      await post("Profiler.start");
    },
    stop: async (name: string) => {
      const { profile } = await post<{ profile: CpuProfile }>("Profiler.stop");
      Deno.mkdirSync(dir, { recursive: true });
      Deno.writeTextFileSync(`${dir}/${name}.cpuprofile`, JSON.stringify(profile));
      const self = new Map<string, number>();
      const dt = new Map<number, number>();
      for (let i = 0; i < profile.samples.length; i++) {
        const id = profile.samples[i]!;
        dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
      }
      let total = 0;
      for (const n of profile.nodes) {
        const f = n.callFrame;
        const k = `${f.functionName || "(anon)"} ${f.url.replace(/^.*\/main\//, "")}:${
          f.lineNumber + 1
        }`;
        const t = dt.get(n.id) ?? 0;
        total += t;
        self.set(k, (self.get(k) ?? 0) + t);
      }
      const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25);
      for (const [k, t] of top) {
        console.log(`   ${(100 * t / total).toFixed(1).padStart(5)} %  ${k}`);
      }
    },
  };
}

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  samples: number[];
  timeDeltas: number[];
}

export async function runOne(
  name: string,
  packets: number,
  pps: number,
  prof: string,
): Promise<void> {
  const fl = FLOODS[name]!;
  const s = fl.setup();
  (fl as { dst?: Uint8Array }).dst = s.nic.mac;
  const before = held();
  const c0 = flat(s.r.snapshotStats(), "", new Map());
  const stepMs = 256 * 1000 / pps;
  const p = profiler(prof);
  await p?.start();
  const t0 = performance.now();
  for (let i = 0; i < packets; i++) {
    const len = fl.frame(rx.data, i);
    rx.setFrame(HEADROOM, len);
    s.nic.deliverFrame(rx);
    if ((i & 255) === 255) {
      s.clock.advance(stepMs);
      s.flush();
    }
  }
  const us = (performance.now() - t0) * 1000 / packets;
  await p?.stop(name);
  const during = held();
  const rssEnd = Deno.memoryUsage().rss;
  s.clock.advance(60_000);
  s.flush();
  s.r.pool.trim();
  s.clock.advance(1);
  const after = held();
  const rssAfter = Deno.memoryUsage().rss;
  const c1 = flat(s.r.snapshotStats(), "", new Map());
  const top = [...c1].map(([k, v]) => [k, v - (c0.get(k) ?? 0)] as const)
    .filter(([k, d]) => d > 0 && !k.startsWith("nics.") && !k.startsWith("links."))
    .sort((a, b) => b[1] - a[1]).slice(0, 6);
  console.log(
    `${name.padEnd(15)} ${
      us.toFixed(2).padStart(6)
    } µs/frame (incl. frame making)  held MB: before ${(before / 1e6).toFixed(1)}, end ${
      (during / 1e6).toFixed(1)
    }, +60 s ${(after / 1e6).toFixed(1)}; RSS end ${(rssEnd / 1e6).toFixed(0)}, +60 s ${
      (rssAfter / 1e6).toFixed(0)
    }; pool made ${s.r.pool.made()}`,
  );
  console.log(`   ${top.map(([k, d]) => `${k} +${d}`).join(", ")}`);
}

function frameCost(name: string, packets: number): number {
  const fl = FLOODS[name]!;
  (fl as { dst?: Uint8Array }).dst = new Uint8Array(6);
  const t0 = performance.now();
  for (let i = 0; i < packets; i++) fl.frame(rx.data, i);
  return (performance.now() - t0) * 1000 / packets;
}

if (import.meta.main) {
  const only = opt("--only", Object.keys(FLOODS).join(",")).split(",");
  const packets = Number(opt("--packets", "300000"));
  const pps = Number(opt("--pps", "200000"));
  for (const k of only) {
    if (FLOODS[k] === undefined) throw new Error(`no flood ${k}`);
    console.log(`${k}: making a frame costs ${frameCost(k, 20000).toFixed(2)} µs`);
    await runOne(k, packets, pps, opt("--prof", ""));
  }
}
