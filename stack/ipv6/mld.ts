/**
 * MLDv2 (RFC 3810) as a listener: unsolicited reports when tapir joins or
 * leaves a group (retransmitted Robustness − 1 times), and answers to
 * general and group-specific queries, so switches that snoop MLD deliver
 * NDP to tapir.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Timer } from "../clock.ts";
import type { Ipv6Layer as Ipv6 } from "./_layer.ts";
import { MldPacket, type MldRecord, MldRecordType, writeMldPacket } from "../wire/mld.ts";
import type { Ipv6Packet } from "../wire/ipv6.ts";
import { ipv6IsLinkLocalUnicast, ipv6IsUnspecified, parseIpv6 } from "../wire/ip_address.ts";
import { ETHERNET_HEADER_LEN, EtherType, writeEthernetHeader } from "../wire/ethernet.ts";
import { HEADROOM } from "../wire/packet_buffer.ts";
import { ipv6MulticastMac } from "../wire/mac_address.ts";

/** ff02::16, where MLDv2 reports go (RFC 3810 §5.2.14). */
const ALL_MLDV2_ROUTERS = parseIpv6("ff02::16");
const UNSPECIFIED = new Uint8Array(16);
/** RFC 3810 §9.11: Unsolicited Report Interval. */
const UNSOLICITED_REPORT_INTERVAL_MS = 1000;
/** RFC 3810 §9.1: Robustness Variable. */
const ROBUSTNESS = 2;

/** True for groups MLD never reports: ff02::1 and scopes 0 and 1 (RFC 3810 §6). */
function unreported(g: Uint8Array): boolean {
  const scope = g[1]! & 0x0f;
  if (scope <= 1) return true;
  if (g[1] !== 0x02) return false;
  for (let i = 2; i < 15; i++) if (g[i] !== 0) return false;
  return g[15] === 1;
}

/** MLD for one stack. */
export class Mld {
  #timers = new Set<Timer>();
  #mld = new MldPacket();

  constructor(readonly ipv6: Ipv6) {}

  /** A group was joined: report CHANGE_TO_EXCLUDE {} now and once more later. */
  joined(nic: Nic, group: Uint8Array): void {
    if (unreported(group)) return;
    this.#stateChange(nic, group.slice(), MldRecordType.CHANGE_TO_EXCLUDE_MODE);
  }

  /** A group was left: report CHANGE_TO_INCLUDE {}. */
  left(nic: Nic, group: Uint8Array): void {
    if (unreported(group)) return;
    this.#stateChange(nic, group.slice(), MldRecordType.CHANGE_TO_INCLUDE_MODE);
  }

  #stateChange(nic: Nic, group: Uint8Array, type: number): void {
    const records = [{ type, group, sources: [] as Uint8Array[] }];
    this.#sendReport(nic, records);
    for (let i = 1; i < ROBUSTNESS; i++) {
      this.#later(
        Math.floor(this.ipv6.stack.random.float() * UNSOLICITED_REPORT_INTERVAL_MS),
        () => this.#sendReport(nic, records),
      );
    }
  }

  /** RFC 3810 §6.2: answer a query after a random delay up to its Maximum Response Delay. */
  receiveQuery(
    nic: Nic,
    pkt: import("../wire/packet_buffer.ts").PacketBuffer,
    ip: Ipv6Packet,
    off: number,
    len: number,
  ): void {
    const s = this.ipv6.stack.stats.mld;
    // §5.1.14: queries come from a link-local source; others are ignored.
    if (!ipv6IsLinkLocalUnicast(pkt.data, ip.srcOffset())) {
      s.invalidQueriesDropped++;
      return;
    }
    const q = this.#mld.reset(pkt, off);
    if (!q.check(len)) {
      s.invalidQueriesDropped++;
      return;
    }
    s.queriesReceived++;
    const st = this.ipv6.nicState(nic);
    if (st === undefined) return;
    const gOff = q.multicastAddressOffset();
    const general = ipv6IsUnspecified(pkt.data, gOff);
    const groups: Uint8Array[] = [];
    for (const [g] of st.groups.entries()) {
      if (unreported(g)) continue;
      if (general || g.every((b, i) => b === pkt.data[gOff + i])) groups.push(g);
    }
    if (groups.length === 0) return;
    const delay = Math.floor(this.ipv6.stack.random.float() * q.maxResponseMs(len));
    this.#later(
      delay,
      () =>
        this.#sendReport(
          nic,
          groups.map((group) => ({ type: MldRecordType.MODE_IS_EXCLUDE, group, sources: [] })),
        ),
    );
  }

  #later(ms: number, fn: () => void): void {
    const t = this.ipv6.stack.clock.schedule(ms, () => {
      this.#timers.delete(t);
      fn();
    });
    this.#timers.add(t);
  }

  #sendReport(nic: Nic, records: MldRecord[]): void {
    if (!nic.isUp()) return;
    const pool = this.ipv6.stack.pool;
    const b = pool.get();
    if (b === null) return;
    try {
      // §5.2.13: the link-local source, or :: while it is not usable yet (DAD).
      const src = this.ipv6.linkLocalOf(nic) ?? UNSPECIFIED;
      const ipOff = HEADROOM + ETHERNET_HEADER_LEN;
      const n = writeMldPacket(b, ipOff, src, ALL_MLDV2_ROUTERS, { kind: "reportV2", records });
      b.start = HEADROOM;
      b.end = ipOff + n;
      writeEthernetHeader(
        b,
        HEADROOM,
        ipv6MulticastMac(ALL_MLDV2_ROUTERS),
        nic.mac,
        EtherType.IPV6,
      );
      this.ipv6.stack.stats.mld.reportsSent++;
      nic.send(b);
    } finally {
      pool.put(b);
    }
  }

  /** Cancel pending reports. */
  close(): void {
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
  }
}
