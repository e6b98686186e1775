/**
 * Harnesses for the TCP engine tests, on memory links and the manual clock:
 *
 * - {@link RawPeer}: one stack and, on the other end of its link, a host
 *   without a stack that injects hand-made segments (Ethernet + IP + TCP
 *   with correct checksums) and decodes every segment the stack sends,
 *   with the clock time it arrived. It answers ARP and Neighbor
 *   Solicitations ({@link RawHost}) and has taught the stack its MAC.
 * - {@link stackPair}: two stacks with chosen TCP settings, link delay,
 *   faults and a per-frame tap that can drop chosen segments.
 */
import {
  type LinkEndpoint,
  ManualClock,
  type Nic,
  SeededRandom,
  Stack,
} from "../../../stack/mod.ts";
import type { TcpConnection, TcpListener, TcpSettings } from "../../../stack/transport/mod.ts";
import { type LinkFaults, MemoryLink } from "../../../link/mod.ts";
import {
  finishChecksum,
  formatIpv4,
  formatIpv6,
  ipv4PseudoHeaderSum,
  onesSum,
  type PacketBuffer,
  parseIpv4,
  parseIpv6,
  parseTcpOptions,
  TcpFlags,
  TcpOptions,
  tcpOptionsLen,
  type TcpOptionsOut,
  writeTcpOptions,
} from "../../../stack/wire/mod.ts";
import { RawHost, rawMac } from "../../topology/_lab.ts";
import { icmp, ipv4 } from "../../topology/_packets.ts";
import { checksum6, icmp6, ip6 } from "../../topology/_packets6.ts";

export const { FIN, SYN, RST, PSH, ACK } = TcpFlags;

type Link = ReturnType<typeof MemoryLink.pair>[0];

/** Addresses of the stack (first) and the peer (second) per family. */
export const ADDRS = {
  4: ["192.0.2.1", "192.0.2.2"],
  6: ["2001:db8::1", "2001:db8::2"],
} as const;

/** A TCP segment seen on the wire, decoded independently of the stack's own parser. */
export interface WireSeg {
  /** Clock ms it was delivered to (or written by) the tap. */
  at: number;
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  mss: number;
  wscale: number;
  sackPermitted: boolean;
  ts: { val: number; ecr: number } | null;
  /** SACK blocks in option order. */
  sack: [number, number][];
  payload: Uint8Array;
  /** IP packet length (header included). */
  ipLen: number;
  /** The TCP checksum is correct (false for a partial checksum left for an offload). */
  checksumOk: boolean;
  /** The IP packet (kept by {@link RawPeer} only; empty elsewhere). */
  ip: Uint8Array;
}

/** Decode the TCP segment in an Ethernet frame, or null when it carries none. */
export function decodeTcp(f: Uint8Array, at = 0, keepIp = false): WireSeg | null {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const et = v.getUint16(12);
  const ip = 14;
  let l4: number, len: number, src: string, dst: string, family: 4 | 6, ipLen: number;
  let pseudo: number;
  if (et === 0x0800) {
    if (f[ip + 9] !== 6) return null;
    const ihl = (f[ip]! & 15) * 4;
    ipLen = v.getUint16(ip + 2);
    l4 = ip + ihl;
    len = ipLen - ihl;
    src = formatIpv4(v.getUint32(ip + 12));
    dst = formatIpv4(v.getUint32(ip + 16));
    family = 4;
    pseudo = ipv4PseudoHeaderSum(v.getUint32(ip + 12), v.getUint32(ip + 16), 6, len);
  } else if (et === 0x86dd) {
    if (f[ip + 6] !== 6) return null;
    len = v.getUint16(ip + 4);
    ipLen = 40 + len;
    l4 = ip + 40;
    src = formatIpv6(f, ip + 8);
    dst = formatIpv6(f, ip + 24);
    family = 6;
    pseudo = onesSum(f, ip + 8, 32, 0) + len + 6;
  } else {
    return null;
  }
  const hl = (f[l4 + 12]! >> 4) * 4;
  const o = new TcpOptions();
  parseTcpOptions(f, l4, hl, o);
  const sack: [number, number][] = [];
  for (let i = 0; i < o.sackCount; i++) sack.push([o.sack[2 * i]!, o.sack[2 * i + 1]!]);
  return {
    at,
    family,
    src,
    dst,
    sport: v.getUint16(l4),
    dport: v.getUint16(l4 + 2),
    seq: v.getUint32(l4 + 4),
    ack: v.getUint32(l4 + 8),
    flags: f[l4 + 13]!,
    window: v.getUint16(l4 + 14),
    mss: o.mss,
    wscale: o.wscale,
    sackPermitted: o.sackPermitted,
    ts: o.hasTimestamps ? { val: o.tsVal, ecr: o.tsEcr } : null,
    sack,
    payload: f.slice(l4 + hl, l4 + len),
    ipLen,
    checksumOk: finishChecksum(onesSum(f, l4, len, pseudo)) === 0,
    ip: keepIp ? f.slice(ip, ip + ipLen) : new Uint8Array(0),
  };
}

/** Flags as text ("SA", "FA", "R"...), for messages. */
export function flagText(flags: number): string {
  let s = "";
  if (flags & SYN) s += "S";
  if (flags & FIN) s += "F";
  if (flags & RST) s += "R";
  if (flags & PSH) s += "P";
  if (flags & ACK) s += "A";
  return s;
}

/** A segment the raw peer sends. */
export interface SegSpec {
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  flags: number;
  /** Raw window field. Default 65535. */
  window?: number;
  opts?: TcpOptionsOut;
  payload?: Uint8Array;
  /** Spoofed source address (default the peer's). */
  src?: string;
}

/** The TCP bytes (header, options, payload) with the checksum for `src` → `dst`. */
export function tcpBytes(family: 4 | 6, src: string, dst: string, s: SegSpec): Uint8Array {
  const ol = s.opts ? tcpOptionsLen(s.opts) : 0;
  const payload = s.payload ?? new Uint8Array(0);
  const b = new Uint8Array(20 + ol + payload.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, s.sport);
  v.setUint16(2, s.dport);
  v.setUint32(4, s.seq >>> 0);
  v.setUint32(8, (s.ack ?? 0) >>> 0);
  b[12] = ((20 + ol) / 4) << 4;
  b[13] = s.flags;
  v.setUint16(14, s.window ?? 65535);
  if (s.opts) writeTcpOptions(b, 20, s.opts);
  b.set(payload, 20 + ol);
  if (family === 4) {
    const sum = ipv4PseudoHeaderSum(parseIpv4(src), parseIpv4(dst), 6, b.length);
    v.setUint16(16, finishChecksum(onesSum(b, 0, b.length, sum)));
  } else {
    v.setUint16(16, checksum6(src, dst, 6, b));
  }
  return b;
}

/** Options of {@link RawPeer.create}. */
export interface RawPeerOptions {
  family?: 4 | 6;
  tcp?: Partial<TcpSettings>;
  mtu?: number;
  seed?: number;
}

/**
 * A stack (192.0.2.1 / 2001:db8::1) and a raw peer (192.0.2.2 /
 * 2001:db8::2) on one memory link.
 */
export class RawPeer {
  /** Segments the stack sent, in order of arrival at the peer. */
  readonly segs: WireSeg[] = [];
  #taken = 0;
  /** The peer's TSval clock offset. */
  tsBase = 1_000_000;

  private constructor(
    readonly clock: ManualClock,
    readonly stack: Stack,
    readonly nic: Nic,
    readonly host: RawHost,
    readonly family: 4 | 6,
  ) {}

  static create(o: RawPeerOptions = {}): RawPeer {
    const family = o.family ?? 4;
    const clock = new ManualClock();
    const [a, b] = MemoryLink.pair({
      clock,
      names: ["stack:eth0", "peer:eth0"],
      ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    });
    const { stack, nic } = newStack(clock, "s", o.seed ?? 1, a, o.tcp, o.mtu);
    let peer: RawPeer | null = null;
    class TimedHost extends RawHost {
      override deliverFrame(p: PacketBuffer): void {
        const n = this.received.length;
        super.deliverFrame(p);
        if (this.received.length > n && peer !== null) {
          const s = decodeTcp(this.received[n]!, clock.now(), true);
          if (s !== null) peer.segs.push(s);
        }
      }
    }
    const host = new TimedHost(b, rawMac(2), {
      ipv4: parseIpv4(ADDRS[4][1]),
      ipv6: [ADDRS[6][1]],
    });
    host.gatewayMac = nic.mac;
    peer = new RawPeer(clock, stack, nic, host, family);
    clock.advance(5000); // DAD
    // Teach the stack our MAC.
    if (family === 4) host.arpFor(parseIpv4(ADDRS[4][0]));
    else host.solicit(ADDRS[6][0]);
    clock.advance(1);
    clock.advance(1);
    host.clear();
    peer.segs.length = 0;
    return peer;
  }

  /** The stack's address as text. */
  get stackAddr(): string {
    return ADDRS[this.family][0];
  }

  /** The peer's address as text. */
  get peerAddr(): string {
    return ADDRS[this.family][1];
  }

  /** The stack's address in the stack's form. */
  get stackIp(): number | Uint8Array {
    return this.family === 4 ? parseIpv4(this.stackAddr) : parseIpv6(this.stackAddr);
  }

  /** The peer's address in the stack's form. */
  get peerIp(): number | Uint8Array {
    return this.family === 4 ? parseIpv4(this.peerAddr) : parseIpv6(this.peerAddr);
  }

  /** Put one segment on the stack's wire (delivered at the next advance). */
  send(s: SegSpec): void {
    const src = s.src ?? this.peerAddr;
    const tcp = tcpBytes(this.family, src, this.stackAddr, s);
    if (this.family === 4) {
      this.host.sendIp(ipv4({ src, dst: this.stackAddr, protocol: 6, payload: tcp, df: true }));
    } else {
      this.host.send(ip6({ src, dst: this.stackAddr, proto: 6, payload: tcp }));
    }
  }

  /**
   * Send an ICMPv4 "fragmentation needed" (RFC 1191) or an ICMPv6 Packet
   * Too Big (RFC 8201) naming `mtu` and quoting `quoted` (an IP packet the
   * stack sent), from the peer's address.
   */
  sendTooBig(quoted: Uint8Array, mtu: number): void {
    if (this.family === 4) {
      const body = icmp(3, 4, mtu & 0xffff, quoted.subarray(0, 28));
      this.host.sendIp(
        ipv4({ src: this.peerAddr, dst: this.stackAddr, protocol: 1, payload: body }),
      );
    } else {
      const body = icmp6(this.peerAddr, this.stackAddr, 2, 0, mtu, quoted.subarray(0, 1232));
      this.host.send(ip6({ src: this.peerAddr, dst: this.stackAddr, proto: 58, payload: body }));
    }
  }

  /** Send, then let it be delivered and answered (advance by `ms`, default 0). */
  inject(s: SegSpec, ms = 0): WireSeg[] {
    this.send(s);
    this.clock.advance(0);
    this.clock.advance(ms);
    return this.take();
  }

  /** Segments the stack sent since the last take(). */
  take(): WireSeg[] {
    const out = this.segs.slice(this.#taken);
    this.#taken = this.segs.length;
    return out;
  }

  /** A timestamps option from the peer: TSval from the clock, TSecr the stack's latest TSval. */
  ts(valDelta = 0): { val: number; ecr: number } {
    let ecr = 0;
    for (let i = this.segs.length - 1; i >= 0; i--) {
      const t = this.segs[i]!.ts;
      if (t !== null) {
        ecr = t.val;
        break;
      }
    }
    return { val: (this.tsBase + Math.floor(this.clock.now()) + valDelta) >>> 0, ecr };
  }

  close(): void {
    this.stack.close();
  }
}

/** The state of one raw-peer connection: its ports and both sides' next sequence numbers. */
export interface PeerConn {
  /** The peer's port and the stack's port. */
  sport: number;
  dport: number;
  /** The peer's next sequence number. */
  seq: number;
  /** The next sequence the peer expects from the stack (its ACK). */
  ack: number;
  /** The stack's ISS. */
  stackIss: number;
  /** The peer's ISS. */
  peerIss: number;
  /** Options the peer negotiated. */
  tsOk: boolean;
  sackOk: boolean;
}

/** Options of the peer's SYN in {@link peerConnect}. */
export interface PeerSynOptions {
  sport?: number;
  iss?: number;
  mss?: number;
  /** Window scale shift, or null for none. Default 7. */
  wscale?: number | null;
  sack?: boolean;
  ts?: boolean;
  /** The window field of the SYN. Default 65535. */
  window?: number;
}

/** The options a peer's SYN carries. */
export function synOptions(p: RawPeer, o: PeerSynOptions): TcpOptionsOut {
  const opts: TcpOptionsOut = { mss: o.mss ?? 1460 };
  const ws = o.wscale === undefined ? 7 : o.wscale;
  if (ws !== null) opts.wscale = ws;
  if (o.sack ?? true) opts.sackPermitted = true;
  if (o.ts ?? true) opts.ts = { val: p.ts().val, ecr: 0 };
  return opts;
}

/**
 * The peer opens a connection to `port` on the stack's listener `l`:
 * SYN, the stack's SYN-ACK, the peer's ACK. Returns the accepted
 * connection, the SYN-ACK and the peer's view of the connection.
 */
export function peerConnect(
  p: RawPeer,
  l: TcpListener,
  port: number,
  o: PeerSynOptions = {},
): { conn: TcpConnection; synAck: WireSeg; pc: PeerConn } {
  const iss = o.iss ?? 1_000_000;
  const sport = o.sport ?? 40000;
  const opts = synOptions(p, o);
  const out = p.inject({
    sport,
    dport: port,
    seq: iss,
    flags: SYN,
    opts,
    ...(o.window !== undefined ? { window: o.window } : {}),
  });
  const synAck = out.find((s) => (s.flags & (SYN | ACK)) === (SYN | ACK));
  if (synAck === undefined) throw new Error(`no SYN-ACK: ${out.map((s) => flagText(s.flags))}`);
  const pc: PeerConn = {
    sport,
    dport: port,
    seq: (iss + 1) >>> 0,
    ack: (synAck.seq + 1) >>> 0,
    stackIss: synAck.seq,
    peerIss: iss,
    tsOk: opts.ts !== undefined && synAck.ts !== null,
    sackOk: opts.sackPermitted === true && synAck.sackPermitted,
  };
  p.inject(peerSeg(p, pc, ACK));
  const conn = l.accept();
  if (conn === null) throw new Error("the handshake did not complete");
  return { conn, synAck, pc };
}

/** A segment of `pc` from the peer (its seq and ack, timestamps when negotiated). */
export function peerSeg(
  p: RawPeer,
  pc: PeerConn,
  flags: number,
  o: {
    payload?: Uint8Array;
    seq?: number;
    ack?: number;
    window?: number;
    sack?: [number, number][];
    tsVal?: number;
  } = {},
): SegSpec {
  const opts: TcpOptionsOut = {};
  if (pc.tsOk) {
    const t = p.ts();
    opts.ts = { val: o.tsVal ?? t.val, ecr: t.ecr };
  }
  if (o.sack !== undefined && o.sack.length > 0) {
    opts.sack = o.sack.flat();
    opts.sackCount = o.sack.length;
  }
  return {
    sport: pc.sport,
    dport: pc.dport,
    seq: o.seq ?? pc.seq,
    ack: o.ack ?? pc.ack,
    flags,
    window: o.window ?? 65535,
    opts,
    ...(o.payload !== undefined ? { payload: o.payload } : {}),
  };
}

// ------------------------------------------------------------ two stacks

/** A stack named `name` with one NIC ("eth0") on `link`, with IPv4 /24 and IPv6 /64 addresses. */
export function newStack(
  clock: ManualClock,
  name: string,
  seed: number,
  link: LinkEndpoint,
  tcp: Partial<TcpSettings> | undefined,
  mtu: number | undefined,
  addrs: readonly [string, string] = [ADDRS[4][0], ADDRS[6][0]],
): { stack: Stack; nic: Nic } {
  const stack = new Stack({
    clock,
    random: new SeededRandom(seed),
    hostname: name,
    ...(tcp !== undefined ? { tcp } : {}),
  });
  const nic = stack.addNic(link, { name: "eth0", ipv6: true, ...(mtu ? { mtu } : {}) });
  stack.ipv4.addAddress(nic, parseIpv4(addrs[0]), 24);
  stack.ipv6.addAddress(nic, parseIpv6(addrs[1]), 64);
  return { stack, nic };
}

/** What {@link stackPair}'s tap is told about each frame. */
export interface TapInfo {
  /** "ab": a frame a sent; "ba": one b sent. */
  dir: "ab" | "ba";
  /** The decoded TCP segment, or null for other frames. */
  seg: WireSeg | null;
}

/** Options of {@link stackPair}. */
export interface StackPairOptions {
  /** TCP settings of both stacks (`aTcp`/`bTcp` override per stack). */
  tcp?: Partial<TcpSettings>;
  aTcp?: Partial<TcpSettings>;
  bTcp?: Partial<TcpSettings>;
  mtu?: number;
  offloads?: boolean;
  /** One-way link delay, ms. */
  delayMs?: number;
  faults?: { aToB?: LinkFaults; bToA?: LinkFaults };
  /** Keep every decoded TCP segment in `log`. */
  capture?: boolean;
  /** Return true to drop the frame (the sender sees success). */
  drop?: (t: TapInfo) => boolean;
  seed?: number;
}

/** Two stacks a (192.0.2.1, 2001:db8::1) and b (192.0.2.2, 2001:db8::2). */
export interface StackPair {
  clock: ManualClock;
  a: Stack;
  b: Stack;
  ab: Link;
  ba: Link;
  /** Decoded TCP segments in both directions (with `capture`). */
  log: (WireSeg & { dir: "ab" | "ba" })[];
  close(): void;
}

/** Two stacks on a memory link, with the tap and faults of `o`. */
export function stackPair(o: StackPairOptions = {}): StackPair {
  const clock = new ManualClock();
  const [ab, ba] = MemoryLink.pair({
    clock,
    names: ["a:eth0", "b:eth0"],
    offloads: o.offloads ?? false,
    ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    ...(o.delayMs !== undefined ? { delayMs: o.delayMs } : {}),
    ...(o.faults !== undefined ? { faults: o.faults } : {}),
  });
  const log: (WireSeg & { dir: "ab" | "ba" })[] = [];
  const tapNeeded = o.capture === true || o.drop !== undefined;
  for (const [end, dir] of [[ab, "ab"], [ba, "ba"]] as const) {
    if (!tapNeeded) break;
    const w = end.writePacket.bind(end);
    end.writePacket = (p: PacketBuffer) => {
      const seg = decodeTcp(p.data.subarray(p.start, p.end), clock.now());
      if (o.capture && seg !== null) log.push({ ...seg, dir });
      if (o.drop?.({ dir, seg })) return true;
      return w(p);
    };
  }
  const seed = o.seed ?? 1;
  const na = newStack(clock, "a", seed, ab, { ...o.tcp, ...o.aTcp }, o.mtu);
  const nb = newStack(clock, "b", seed + 1, ba, { ...o.tcp, ...o.bTcp }, o.mtu, [
    ADDRS[4][1],
    ADDRS[6][1],
  ]);
  const a = na.stack, b = nb.stack;
  // Static neighbours: RTT samples are the link's, not ARP's or NDP's.
  for (const [x, peer, i] of [[na, nb, 1], [nb, na, 0]] as const) {
    x.stack.ipv4.nicState(x.nic)!.neighbors.addStatic(parseIpv4(ADDRS[4][i]), peer.nic.mac);
    const k = x.stack.ipv6.keys.key(parseIpv6(ADDRS[6][i]), 0);
    x.stack.ipv6.nicState(x.nic)!.neighbors.addStatic(k, peer.nic.mac);
  }
  clock.advance(5000); // DAD
  return {
    clock,
    a,
    b,
    ab,
    ba,
    log,
    close() {
      a.close();
      b.close();
    },
  };
}

/** Read until the end of the stream (or `max` bytes). */
export async function readAll(
  conn: { read(p: Uint8Array): Promise<number | null> },
  max = Infinity,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  let total = 0;
  while (total < max) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Write all of `data`. */
export async function writeAll(
  conn: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Move `pc.ack` past everything the stack sent in `segs` (the peer received it all). */
export function absorb(pc: PeerConn, segs: WireSeg[]): WireSeg[] {
  for (const s of segs) {
    if (s.sport !== pc.dport || s.dport !== pc.sport) continue;
    const end = (s.seq + s.payload.length + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0)) >>>
      0;
    if (((end - pc.ack) | 0) > 0) pc.ack = end;
  }
  return segs;
}

/**
 * The stack opens a connection to the peer's `port`: its SYN, the peer's
 * SYN-ACK (with the options of `o`), the stack's ACK.
 */
export function stackConnect(
  p: RawPeer,
  port: number,
  o: PeerSynOptions & { localPort?: number } = {},
): { conn: TcpConnection; syn: WireSeg; pc: PeerConn } {
  const conn = p.stack.tcp.connect({
    remote: p.peerIp,
    port,
    ...(o.localPort !== undefined ? { localPort: o.localPort } : {}),
  });
  p.clock.advance(0);
  const syn = p.take().find((s) => s.flags === SYN);
  if (syn === undefined) throw new Error("no SYN");
  const iss = o.iss ?? 2_000_000;
  const pc: PeerConn = {
    sport: port,
    dport: syn.sport,
    seq: iss,
    ack: (syn.seq + 1) >>> 0,
    stackIss: syn.seq,
    peerIss: iss,
    tsOk: (o.ts ?? true) && syn.ts !== null,
    sackOk: (o.sack ?? true) && syn.sackPermitted,
  };
  const opts = synOptions(p, o);
  if (opts.ts !== undefined) opts.ts.ecr = syn.ts?.val ?? 0;
  p.inject({
    sport: port,
    dport: syn.sport,
    seq: iss,
    ack: pc.ack,
    flags: SYN | ACK,
    opts,
    ...(o.window !== undefined ? { window: o.window } : {}),
  });
  pc.seq = (iss + 1) >>> 0;
  return { conn, syn, pc };
}
