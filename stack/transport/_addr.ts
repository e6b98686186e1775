/**
 * Host names and `Deno.NetAddr` for the socket APIs (datagram and stream):
 * tapir's stack has no resolver, so a hostname is an address literal
 * ("[...]" allowed for IPv6).
 *
 * @module
 */
import { AddressParseError, formatIpv4, formatIpv6, parseIpAddress } from "../wire/ip_address.ts";
import type { IpAddr } from "./udp.ts";

/**
 * The address a socket API's `hostname` names.
 *
 * @throws Deno.errors.AddrNotAvailable when it is not an address literal
 */
export function parseHost(hostname: string): IpAddr {
  try {
    return parseIpAddress(hostname.startsWith("[") ? hostname.slice(1, -1) : hostname).address;
  } catch (e) {
    if (e instanceof AddressParseError) {
      throw new Deno.errors.AddrNotAvailable(`Cannot parse hostname "${hostname}": ${e.message}`);
    }
    throw e;
  }
}

/** True for 0.0.0.0 and ::. */
export const isUnspecified = (a: IpAddr): boolean =>
  typeof a === "number" ? a === 0 : a.every((b) => b === 0);

/** A `Deno.NetAddr` for an address and port. */
export function netAddr<T extends "tcp" | "udp">(a: IpAddr, port: number, transport: T) {
  return {
    transport,
    hostname: typeof a === "number" ? formatIpv4(a) : formatIpv6(a),
    port,
  };
}
