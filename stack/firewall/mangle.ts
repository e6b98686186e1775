/**
 * The targets that edit a packet in place and let it go on through the
 * chain (iptables' XT_CONTINUE targets of the mangle table): DSCP and TOS
 * (the IPv4 TOS byte / IPv6 Traffic Class), TTL and HL, CONNMARK, and
 * NPTv6's SNPT and DNPT (RFC 6296). The IPv4 header checksum is patched
 * incrementally (RFC 1624); NPTv6 is checksum-neutral by construction.
 *
 * @module
 */
import { checksumUpdate16 } from "../wire/checksum.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import type { Conn } from "./conntrack.ts";
import { Npt } from "./nat.ts";
import type { Target } from "./rule_types.ts";

/** What an edit reads and updates of the packet at hand (match.ts's PacketInfo has this shape). */
export interface EditedPacket {
  family: 4 | 6;
  pkt: PacketBuffer | null;
  ipOff: number;
  /** IPv6: offsets of the addresses. */
  srcOff: number;
  dstOff: number;
  ttl: number;
  mark: number;
}

/** The targets a {@link PacketEditor} applies. */
export type EditTarget = Extract<
  Target,
  { kind: "SNPT" | "DNPT" | "CONNMARK" | "DSCP" | "TOS" | "TTL" | "HL" }
>;

const EDIT_KINDS: ReadonlySet<string> = new Set([
  "SNPT",
  "DNPT",
  "CONNMARK",
  "DSCP",
  "TOS",
  "TTL",
  "HL",
]);

/** Whether `t` is applied by a {@link PacketEditor}. */
export function isEditTarget(t: Target | undefined): t is EditTarget {
  return t !== undefined && EDIT_KINDS.has(t.kind);
}

/**
 * One editing target, ready to apply (its NPTv6 adjustment computed once).
 *
 * @example
 * ```ts
 * import { PacketEditor } from "./mangle.ts";
 * const e = new PacketEditor({ kind: "TTL", op: "dec", value: 5 });
 * console.assert(e.target.kind === "TTL");
 * ```
 */
export class PacketEditor {
  readonly #npt: Npt | null;

  /** @param target the rule's target */
  constructor(readonly target: EditTarget) {
    const t = target;
    this.#npt = t.kind === "SNPT" || t.kind === "DNPT"
      ? new Npt(
        t.from.address as Uint8Array,
        t.from.prefixLen,
        t.to.address as Uint8Array,
        t.to.prefixLen,
      )
      : null;
  }

  /**
   * Edit the packet `p` describes (its fields follow the edit).
   *
   * @param conn the packet's connection (CONNMARK), or null
   * @returns false to drop the packet (NPTv6 could not translate it)
   */
  apply(p: EditedPacket, conn: Conn | null): boolean {
    const t = this.target;
    const pkt = p.pkt!, d = pkt.data, off = p.ipOff;
    switch (t.kind) {
      case "SNPT":
      case "DNPT":
        // ip6tables' NPT targets; an IPv4 packet never reaches them (the rule is IPv6).
        if (p.family !== 6) return true;
        return this.#npt!.map(d, t.kind === "SNPT" ? p.srcOff : p.dstOff);
      case "CONNMARK": {
        if (conn === null) return true;
        if (t.mode === "set") conn.mark = ((conn.mark & ~t.ctMask) ^ t.value) >>> 0;
        else if (t.mode === "save") {
          conn.mark = ((conn.mark & ~t.ctMask) ^ (p.mark & t.nfMask)) >>> 0;
        } else p.mark = ((p.mark & ~t.nfMask) ^ (conn.mark & t.ctMask)) >>> 0;
        return true;
      }
      case "DSCP":
        setTos(p, (tosOf(p) & 0x03) | (t.dscp << 2));
        return true;
      case "TOS":
        setTos(p, ((tosOf(p) & ~t.mask) ^ t.value) & 0xff);
        return true;
      case "TTL":
      case "HL": {
        const ttl = p.ttl;
        const next = t.op === "set"
          ? t.value
          : t.op === "dec"
          ? Math.max(0, ttl - t.value)
          : Math.min(255, ttl + t.value);
        if (next === ttl) return true;
        if (p.family === 4) {
          // The TTL shares its header word with the protocol.
          const v = pkt.view;
          const old = v.getUint16(off + 8);
          d[off + 8] = next;
          v.setUint16(off + 10, checksumUpdate16(v.getUint16(off + 10), old, v.getUint16(off + 8)));
        } else d[off + 7] = next;
        p.ttl = next;
        return true;
      }
    }
  }
}

/** The IPv4 TOS byte or the IPv6 Traffic Class (RFC 8200 §7). */
function tosOf(p: EditedPacket): number {
  const d = p.pkt!.data, off = p.ipOff;
  return p.family === 4 ? d[off + 1]! : ((d[off]! & 0x0f) << 4) | (d[off + 1]! >> 4);
}

/** Set the TOS byte (IPv4, header checksum patched) or the Traffic Class (IPv6). */
function setTos(p: EditedPacket, tos: number): void {
  const pkt = p.pkt!, d = pkt.data, v = pkt.view, off = p.ipOff;
  if (p.family === 4) {
    const old = v.getUint16(off);
    if (d[off + 1] === tos) return;
    d[off + 1] = tos;
    v.setUint16(off + 10, checksumUpdate16(v.getUint16(off + 10), old, v.getUint16(off)));
  } else {
    d[off] = (d[off]! & 0xf0) | (tos >> 4);
    d[off + 1] = (d[off + 1]! & 0x0f) | ((tos & 0x0f) << 4);
  }
}
