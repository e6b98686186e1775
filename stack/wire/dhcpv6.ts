/**
 * DHCPv6 (RFC 8415) messages and options: a zero-copy reader for client
 * and server messages and their nested options (IA_NA, IA_PD and the
 * addresses and prefixes inside), and a writer that builds options in
 * place, nested ones by back-patching their length.
 *
 * ```
 *  0               8              16              24             31
 * +---------------+---------------+---------------+---------------+
 * |    msg-type   |               transaction-id (24)             |
 * +---------------+---------------+---------------+---------------+
 * |  option-code (16)             |  option-len (16)              |
 * |  option-data (option-len bytes) ...                           |
 * ```
 *
 * Relay messages (RELAY-FORW/REPL: msg-type, hop-count, link-address,
 * peer-address, then options) have their own header; the reader reports
 * them as such and a server may refuse them.
 *
 * @module
 */

export const DHCPV6_CLIENT_PORT = 546;
export const DHCPV6_SERVER_PORT = 547;
// deno-fmt-ignore
/** All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1). */
export const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Uint8Array = Uint8Array.of(
  0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2,
);
/** Bytes before the first option of a client/server message. */
export const DHCPV6_HEADER_LEN = 4;
/** Bytes before the first option of a relay message. */
export const DHCPV6_RELAY_HEADER_LEN = 34;

/** msg-type (RFC 8415 §7.3). */
export const Dhcpv6MessageType = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;

/** Names of msg-type values, for logs and counters. */
export const DHCPV6_MESSAGE_NAMES: Readonly<Record<number, string>> = {
  1: "SOLICIT",
  2: "ADVERTISE",
  3: "REQUEST",
  4: "CONFIRM",
  5: "RENEW",
  6: "REBIND",
  7: "REPLY",
  8: "RELEASE",
  9: "DECLINE",
  10: "RECONFIGURE",
  11: "INFORMATION-REQUEST",
  12: "RELAY-FORW",
  13: "RELAY-REPL",
};

/** Option codes (RFC 8415 §21, RFC 3646, RFC 8415 §21.23). */
export const Dhcpv6Option = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  IAADDR: 5,
  ORO: 6,
  PREFERENCE: 7,
  ELAPSED_TIME: 8,
  RELAY_MSG: 9,
  AUTH: 11,
  UNICAST: 12,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  USER_CLASS: 15,
  VENDOR_CLASS: 16,
  VENDOR_OPTS: 17,
  INTERFACE_ID: 18,
  RECONF_MSG: 19,
  RECONF_ACCEPT: 20,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  IA_PD: 25,
  IAPREFIX: 26,
  INFORMATION_REFRESH_TIME: 32,
  SOL_MAX_RT: 82,
  INF_MAX_RT: 83,
} as const;

/** Status codes (RFC 8415 §21.13). */
export const Dhcpv6Status = {
  SUCCESS: 0,
  UNSPEC_FAIL: 1,
  NO_ADDRS_AVAIL: 2,
  NO_BINDING: 3,
  NOT_ON_LINK: 4,
  USE_MULTICAST: 5,
  NO_PREFIX_AVAIL: 6,
} as const;

/** DUID types (RFC 8415 §11). */
export const DuidType = { LLT: 1, EN: 2, LL: 3, UUID: 4 } as const;

/** Why a message did not parse. */
export type Dhcpv6ParseError = "truncated" | "option-overrun";

/** One option: its code and a view of its data (valid while the packet is). */
export interface Dhcpv6OptionView {
  code: number;
  data: Uint8Array;
}

/**
 * Read the options in `b` (a message's option area or a nested option's
 * body): every option, in order, as views. Fails when an option header or
 * its data runs past the end.
 */
export function parseDhcpv6Options(b: Uint8Array): Dhcpv6OptionView[] | Dhcpv6ParseError {
  const out: Dhcpv6OptionView[] = [];
  let i = 0;
  while (i < b.length) {
    if (i + 4 > b.length) return "truncated";
    const code = (b[i]! << 8) | b[i + 1]!;
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (i + 4 + len > b.length) return "option-overrun";
    out.push({ code, data: b.subarray(i + 4, i + 4 + len) });
    i += 4 + len;
  }
  return out;
}

/** A parsed client/server message (not a relay message). */
export interface Dhcpv6Message {
  msgType: number;
  /** 24-bit transaction id. */
  xid: number;
  options: Dhcpv6OptionView[];
}

/** A parsed relay message (RELAY-FORW / RELAY-REPL). */
export interface Dhcpv6RelayMessage {
  msgType: 12 | 13;
  hopCount: number;
  linkAddress: Uint8Array;
  peerAddress: Uint8Array;
  options: Dhcpv6OptionView[];
}

/** Parse one DHCPv6 message from a UDP payload. */
export function parseDhcpv6(
  b: Uint8Array,
): Dhcpv6Message | Dhcpv6RelayMessage | Dhcpv6ParseError {
  if (b.length < DHCPV6_HEADER_LEN) return "truncated";
  const msgType = b[0]!;
  if (msgType === Dhcpv6MessageType.RELAY_FORW || msgType === Dhcpv6MessageType.RELAY_REPL) {
    if (b.length < DHCPV6_RELAY_HEADER_LEN) return "truncated";
    const options = parseDhcpv6Options(b.subarray(DHCPV6_RELAY_HEADER_LEN));
    if (typeof options === "string") return options;
    return {
      msgType,
      hopCount: b[1]!,
      linkAddress: b.subarray(2, 18),
      peerAddress: b.subarray(18, 34),
      options,
    };
  }
  const options = parseDhcpv6Options(b.subarray(DHCPV6_HEADER_LEN));
  if (typeof options === "string") return options;
  return { msgType, xid: (b[1]! << 16) | (b[2]! << 8) | b[3]!, options };
}

/** The first option with `code`, or undefined. */
export function findOption(
  opts: readonly Dhcpv6OptionView[],
  code: number,
): Uint8Array | undefined {
  for (const o of opts) if (o.code === code) return o.data;
  return undefined;
}

/** An IA_NA or IA_PD as a client sent it. */
export interface IaView {
  iaid: number;
  t1: number;
  t2: number;
  options: Dhcpv6OptionView[];
}

/** Read an IA_NA or IA_PD body (IAID, T1, T2, options). */
export function parseIa(data: Uint8Array): IaView | Dhcpv6ParseError {
  if (data.length < 12) return "truncated";
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const options = parseDhcpv6Options(data.subarray(12));
  if (typeof options === "string") return options;
  return { iaid: v.getUint32(0), t1: v.getUint32(4), t2: v.getUint32(8), options };
}

/** An IAADDR (address, preferred and valid lifetimes). */
export interface IaAddrView {
  address: Uint8Array;
  preferred: number;
  valid: number;
  options: Dhcpv6OptionView[];
}

/** Read an IAADDR body. */
export function parseIaAddr(data: Uint8Array): IaAddrView | Dhcpv6ParseError {
  if (data.length < 24) return "truncated";
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const options = parseDhcpv6Options(data.subarray(24));
  if (typeof options === "string") return options;
  return {
    address: data.subarray(0, 16),
    preferred: v.getUint32(16),
    valid: v.getUint32(20),
    options,
  };
}

/** An IAPREFIX (lifetimes, prefix length, prefix). */
export interface IaPrefixView {
  preferred: number;
  valid: number;
  prefixLen: number;
  prefix: Uint8Array;
  options: Dhcpv6OptionView[];
}

/** Read an IAPREFIX body. */
export function parseIaPrefix(data: Uint8Array): IaPrefixView | Dhcpv6ParseError {
  if (data.length < 25) return "truncated";
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const options = parseDhcpv6Options(data.subarray(25));
  if (typeof options === "string") return options;
  return {
    preferred: v.getUint32(0),
    valid: v.getUint32(4),
    prefixLen: data[8]!,
    prefix: data.subarray(9, 25),
    options,
  };
}

/** The codes an ORO asks for (odd trailing byte ignored). */
export function parseOro(data: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < data.length; i += 2) out.push((data[i]! << 8) | data[i + 1]!);
  return out;
}

/** A STATUS_CODE body: the code and its message. */
export function parseStatus(data: Uint8Array): { code: number; message: string } | null {
  if (data.length < 2) return null;
  return {
    code: (data[0]! << 8) | data[1]!,
    message: new TextDecoder().decode(data.subarray(2)),
  };
}

/**
 * Builds one message in a caller's buffer. Options are written in place;
 * `open(code)` starts a nested option and `close()` fills in its length.
 *
 * @example
 * ```ts
 * import { Dhcpv6Writer, Dhcpv6MessageType, Dhcpv6Option } from "./dhcpv6.ts";
 * const w = new Dhcpv6Writer(new Uint8Array(512));
 * w.header(Dhcpv6MessageType.REPLY, 0x123456);
 * w.open(Dhcpv6Option.IA_NA).u32(1).u32(0).u32(0);
 * w.close();
 * console.assert(w.length === 4 + 4 + 12);
 * ```
 */
export class Dhcpv6Writer {
  #n = 0;
  readonly #open: number[] = [];
  readonly #v: DataView;

  constructor(readonly buf: Uint8Array) {
    this.#v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#n;
  }

  /** The message written (a view of the buffer). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.#n);
  }

  /**
   * Start (or restart) the message: msg-type and 24-bit transaction id.
   *
   * @throws RangeError when the buffer is shorter than the 4-byte header
   */
  header(msgType: number, xid: number): this {
    this.#n = 0;
    this.#open.length = 0;
    this.#room(DHCPV6_HEADER_LEN);
    this.buf[0] = msgType;
    this.buf[1] = (xid >>> 16) & 0xff;
    this.buf[2] = (xid >>> 8) & 0xff;
    this.buf[3] = xid & 0xff;
    this.#n = 4;
    return this;
  }

  /**
   * Start (or restart) a relay message (RELAY-FORW / RELAY-REPL, RFC 8415
   * §9): msg-type, hop-count, link-address and peer-address.
   *
   * @throws RangeError when the buffer is shorter than the 34-byte header
   */
  relayHeader(msgType: number, hopCount: number, link: Uint8Array, peer: Uint8Array): this {
    this.#n = 0;
    this.#open.length = 0;
    this.#room(DHCPV6_RELAY_HEADER_LEN);
    this.buf[0] = msgType;
    this.buf[1] = hopCount;
    this.buf.set(link.subarray(0, 16), 2);
    this.buf.set(peer.subarray(0, 16), 18);
    this.#n = DHCPV6_RELAY_HEADER_LEN;
    return this;
  }

  /**
   * A whole option with `data`.
   *
   * @throws RangeError when it does not fit or `data` is over 65535 bytes
   */
  option(code: number, data: Uint8Array = new Uint8Array(0)): this {
    if (data.length > 0xffff) throw new RangeError("DHCPv6 option longer than 65535 bytes");
    this.#room(4 + data.length);
    this.#v.setUint16(this.#n, code);
    this.#v.setUint16(this.#n + 2, data.length);
    this.buf.set(data, this.#n + 4);
    this.#n += 4 + data.length;
    return this;
  }

  /** Start a nested option; its body follows until {@link close}. */
  open(code: number): this {
    this.#room(4);
    this.#v.setUint16(this.#n, code);
    this.#open.push(this.#n);
    this.#n += 4;
    return this;
  }

  /**
   * End the innermost open option, filling in its length.
   *
   * @throws Error without a matching {@link open}
   * @throws RangeError when the body is over 65535 bytes
   */
  close(): this {
    const at = this.#open.pop();
    if (at === undefined) throw new Error("Dhcpv6Writer.close() without open()");
    const len = this.#n - at - 4;
    if (len > 0xffff) throw new RangeError("DHCPv6 option longer than 65535 bytes");
    this.#v.setUint16(at + 2, len);
    return this;
  }

  u8(x: number): this {
    this.#room(1);
    this.buf[this.#n++] = x;
    return this;
  }

  u16(x: number): this {
    this.#room(2);
    this.#v.setUint16(this.#n, x);
    this.#n += 2;
    return this;
  }

  u32(x: number): this {
    this.#room(4);
    this.#v.setUint32(this.#n, x >>> 0);
    this.#n += 4;
    return this;
  }

  raw(b: Uint8Array): this {
    this.#room(b.length);
    this.buf.set(b, this.#n);
    this.#n += b.length;
    return this;
  }

  /** A STATUS_CODE option. */
  status(code: number, message: string): this {
    return this.open(Dhcpv6Option.STATUS_CODE).u16(code).raw(new TextEncoder().encode(message))
      .close();
  }

  #room(n: number): void {
    if (this.#n + n > this.buf.length) throw new RangeError("DHCPv6 message does not fit");
  }
}

/** DUID-LL (RFC 8415 §11.4) for an Ethernet MAC. */
export function duidLl(mac: Uint8Array): Uint8Array {
  const d = new Uint8Array(4 + mac.length);
  d[1] = DuidType.LL;
  d[3] = 1; // hardware type 1: Ethernet
  d.set(mac, 4);
  return d;
}

/** The Ethernet MAC in a DUID-LL or DUID-LLT, or null. */
export function duidMac(duid: Uint8Array): Uint8Array | null {
  if (duid.length < 4 || duid[0] !== 0 || duid[2] !== 0 || duid[3] !== 1) return null;
  if (duid[1] === DuidType.LL && duid.length === 10) return duid.subarray(4);
  if (duid[1] === DuidType.LLT && duid.length === 14) return duid.subarray(8);
  return null;
}

/**
 * RFC 8415 §10 / RFC 1035 §3.1 names, uncompressed (option 24).
 *
 * @throws RangeError when a label is longer than 63 bytes
 */
export function encodeDomainList(names: readonly string[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: number[] = [];
  for (const name of names) {
    for (const label of name.replace(/\.$/, "").split(".")) {
      if (label === "") continue;
      const l = enc.encode(label);
      if (l.length > 63) throw new RangeError(`DNS label longer than 63 bytes: ${label}`);
      parts.push(l.length, ...l);
    }
    parts.push(0);
  }
  return new Uint8Array(parts);
}

/** Option 24 back to names; null when a label runs past the end or a pointer appears. */
export function decodeDomainList(b: Uint8Array): string[] | null {
  const dec = new TextDecoder();
  const out: string[] = [];
  let labels: string[] = [];
  let i = 0;
  while (i < b.length) {
    const l = b[i]!;
    if (l === 0) {
      out.push(labels.join("."));
      labels = [];
      i++;
      continue;
    }
    if (l > 63 || i + 1 + l > b.length) return null;
    labels.push(dec.decode(b.subarray(i + 1, i + 1 + l)));
    i += 1 + l;
  }
  return labels.length === 0 ? out : null;
}

/** True when two DUIDs (or any two byte strings) are the same bytes. */
export function sameDuid(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Colon-separated hex of bytes (DUIDs in logs, lease files and `show`). */
export function hexColon(b: Uint8Array): string {
  let out = "";
  for (let i = 0; i < b.length; i++) out += (i === 0 ? "" : ":") + HEX[b[i]!];
  return out;
}

const HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);
