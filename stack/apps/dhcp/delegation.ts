/**
 * A LAN interface that numbers itself from prefixes delegated to WAN
 * DHCPv6 clients (RFC 7084 L-2..L-4, L-13): for each part it takes, the
 * `subnet`-th /64 of the delegated prefix gets an address of the router's
 * own (`::1`) on the LAN and a Prefix Information option in the LAN's RAs
 * with the delegation's lifetimes, counting down. When the delegation goes
 * (expired, released, replaced) the address is removed and the old /64 is
 * advertised with preferred lifetime 0 and a valid lifetime of at most two
 * hours, counting down (L-13), so LAN hosts deprecate their addresses in it
 * at once; then it is dropped from the RAs.
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Ipv6 } from "../../ipv6/ipv6.ts";
import type { RaAdvertPrefix, RaAdvertSettings, RouterAdvertisements } from "../../ipv6/ra.ts";
import type { Clock, Timer } from "../../clock.ts";
import { formatIpv6, ipv6Equal } from "../../wire/ip_address.ts";
import type { Dhcpv6Client, Dhcpv6DelegatedPrefix } from "./client6.ts";

/** One /64 this LAN takes from a WAN client's delegation. */
export interface DelegatedPart {
  client: Dhcpv6Client;
  subnet: number;
  onLink: boolean;
  autonomous: boolean;
}

/** What the LAN side needs of a stack. */
export interface DelegationHost {
  readonly ipv6: Ipv6;
  readonly ra: RouterAdvertisements;
  readonly clock: Clock;
}

/** RFC 7084 L-13: a withdrawn prefix keeps a valid lifetime of at most two hours. */
const WITHDRAW_VALID_MS = 2 * 3600_000;

/** The `subnet`-th /64 of `p`, or null when `p` has no room for it. */
export function delegatedSubnet(p: Dhcpv6DelegatedPrefix, subnet: number): Uint8Array | null {
  if (p.prefixLen > 64 || subnet >= 2 ** (64 - p.prefixLen)) return null;
  const out = p.prefix.slice(0, 16);
  out.fill(0, 8);
  // Bits prefixLen..63 hold the subnet id (the prefix's own bits there are zero).
  let s = subnet;
  for (let i = 7; i >= 0 && s > 0; i--) {
    out[i] = out[i]! | (s & 0xff);
    s = Math.floor(s / 256);
  }
  return out;
}

interface Held {
  lan64: Uint8Array;
  address: Uint8Array;
  prefix: Dhcpv6DelegatedPrefix;
}

/**
 * The delegated prefixes of one LAN interface.
 *
 * @example
 * ```ts
 * import { delegatedSubnet } from "./delegation.ts";
 * import { formatIpv6, parseIpv6 } from "../../wire/mod.ts";
 * const p = { prefix: parseIpv6("2001:db8:100::"), prefixLen: 56, preferredUntil: 0, validUntil: 0 };
 * console.assert(formatIpv6(delegatedSubnet(p, 1)!) === "2001:db8:100:1::");
 * console.assert(delegatedSubnet(p, 256) === null);
 * ```
 */
export class DelegatedLan {
  readonly #held = new Map<DelegatedPart, Held>();
  /** Withdrawn /64s, advertised with preferred 0 until `until`. */
  #withdrawn: { lan64: Uint8Array; until: number; part: DelegatedPart }[] = [];
  readonly #listeners = new Map<DelegatedPart, (p: Dhcpv6DelegatedPrefix | null) => void>();
  #timer: Timer | null = null;
  /** The RA settings of the interface without the delegated prefixes; null: it does not advertise. */
  #base: RaAdvertSettings | null;
  /** Called with a line for the log on each change. */
  onLog: ((line: string) => void) | null = null;
  /** Called with the /64s in use after each change (e.g. to renumber a DHCPv6 server's pools). */
  onChange: ((lan64s: Uint8Array[]) => void) | null = null;

  constructor(
    readonly host: DelegationHost,
    readonly nic: Nic,
    readonly parts: DelegatedPart[],
    base: RaAdvertSettings | null,
  ) {
    this.#base = base;
    for (const part of parts) {
      const f = (p: Dhcpv6DelegatedPrefix | null) => this.#changed(part, p);
      this.#listeners.set(part, f);
      part.client.onPrefix.add(f);
      const now = part.client.prefix;
      if (now !== null) this.#changed(part, now);
    }
  }

  /** The /64s in use now, as `prefix/64` text. */
  prefixes(): string[] {
    return [...this.#held.values()].map((h) => `${formatIpv6(h.lan64)}/64`);
  }

  /** New RA settings for the interface (a reload); the delegated prefixes stay in them. */
  setBase(base: RaAdvertSettings | null): void {
    this.#base = base;
    this.#advertise();
  }

  close(): void {
    for (const [part, f] of this.#listeners) part.client.onPrefix.delete(f);
    this.#listeners.clear();
    for (const h of this.#held.values()) this.host.ipv6.removeAddress(this.nic, h.address);
    this.#held.clear();
    this.#withdrawn = [];
    this.#timer?.cancel();
    this.#timer = null;
  }

  #changed(part: DelegatedPart, p: Dhcpv6DelegatedPrefix | null): void {
    const old = this.#held.get(part);
    const lan64 = p === null ? null : delegatedSubnet(p, part.subnet);
    if (p !== null && lan64 === null) {
      this.onLog?.(
        `${this.nic.name}: delegated ${
          formatIpv6(p.prefix)
        }/${p.prefixLen} has no /64 number ${part.subnet}`,
      );
    }
    const now = this.host.clock.now();
    if (old !== undefined && (lan64 === null || !ipv6Equal(old.lan64, lan64))) {
      // L-13: withdraw the old /64 (preferred 0; valid at most 2 h, counting down).
      this.host.ipv6.removeAddress(this.nic, old.address);
      this.#held.delete(part);
      const until = Math.min(old.prefix.validUntil, now + WITHDRAW_VALID_MS);
      if (until > now) this.#withdrawn.push({ lan64: old.lan64, until, part });
      this.onLog?.(`${this.nic.name}: ${formatIpv6(old.lan64)}/64 withdrawn`);
    }
    if (p !== null && lan64 !== null) {
      this.#withdrawn = this.#withdrawn.filter((w) => !ipv6Equal(w.lan64, lan64));
      const address = lan64.slice();
      address[15] = 1;
      const a = this.host.ipv6.addAddress(this.nic, address, 64, {
        origin: "dhcp",
        validUntil: p.validUntil,
        preferredUntil: p.preferredUntil,
      });
      a.validUntil = p.validUntil;
      a.preferredUntil = p.preferredUntil;
      if (old === undefined || !ipv6Equal(old.lan64, lan64)) {
        this.onLog?.(
          `${this.nic.name}: ${formatIpv6(lan64)}/64 from ${formatIpv6(p.prefix)}/${p.prefixLen}`,
        );
      }
      this.#held.set(part, { lan64, address, prefix: p });
    }
    this.#advertise();
    this.onChange?.([...this.#held.values()].map((h) => h.lan64));
  }

  /** The /64s in use now. */
  subnets(): Uint8Array[] {
    return [...this.#held.values()].map((h) => h.lan64);
  }

  /** Re-enable the RAs with the base prefixes plus the delegated and withdrawn ones. */
  #advertise(): void {
    this.#timer?.cancel();
    this.#timer = null;
    const now = this.host.clock.now();
    this.#withdrawn = this.#withdrawn.filter((w) => w.until > now);
    const base = this.#base;
    if (base === null) return;
    const extra: RaAdvertPrefix[] = [];
    for (const [part, h] of this.#held) {
      extra.push({
        prefix: { address: h.lan64, prefixLen: 64 },
        onLink: part.onLink,
        autonomous: part.autonomous,
        validLifetime: Math.max(0, h.prefix.validUntil - now),
        preferredLifetime: Math.max(0, h.prefix.preferredUntil - now),
        decrementLifetimes: true,
      });
    }
    for (const w of this.#withdrawn) {
      extra.push({
        prefix: { address: w.lan64, prefixLen: 64 },
        onLink: w.part.onLink,
        autonomous: w.part.autonomous,
        validLifetime: w.until - now,
        preferredLifetime: 0,
        decrementLifetimes: true,
      });
    }
    this.host.ra.enableRouter(this.nic, { ...base, prefixes: [...base.prefixes, ...extra] });
    const next = Math.min(...this.#withdrawn.map((w) => w.until));
    if (Number.isFinite(next)) {
      this.#timer = this.host.clock.schedule(next - now, () => this.#advertise());
    }
  }
}
