/**
 * DNR (RFC 9463) byte vectors, assembled by hand: one commented line per
 * field in the order of the RFC's figures (§6.1 RA, §4.1 DHCPv6, §5.1
 * DHCPv4) and of RFC 9460 §2.2 for SvcParams (key, length, value, keys
 * ascending). Neither scapy 2.5.0 nor tshark 4.0 knows these options.
 */
import type { DnrInstance } from "../../../stack/wire/dnr.ts";
import { parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { hex } from "./_helpers.ts";

const v4 = (s: string) => new Uint8Array(s.split(".").map(Number));

export const DOT: DnrInstance = {
  priority: 1,
  adn: "dot.example",
  addresses: [parseIpv6("2001:db8::53")],
  alpn: ["dot"],
  port: 853,
  dohpath: null,
};

// RFC 9463 §6.1, DoT on port 853, lifetime 1800 s.
export const RA_DOT = hex(
  "90", // Type 144 (DNR)
  "08", // Length 8 (× 8 octets = 64)
  "0001", // Service Priority 1
  "00000708", // Lifetime 1800
  "000d", // ADN Length 13
  "03646f74", //   "dot"
  "076578616d706c65", //   "example"
  "00", //   root
  "0010", // Addr Length 16
  "20010db8000000000000000000000053", //   2001:db8::53
  "000e", // SvcParams Length 14
  "0001", //   key 1 (alpn)
  "0004", //   length 4
  "03646f74", //     alpn-id "dot"
  "0003", //   key 3 (port)
  "0002", //   length 2
  "0355", //     853
  "00000000000000", // Padding: 57 bytes to 64
);

// RFC 9463 §6.1 in ADN-only mode (§3.1.6): no addresses, no SvcParams; infinite lifetime.
export const RA_ADN_ONLY = hex(
  "90", // Type 144
  "04", // Length 4 (32 bytes)
  "0002", // Service Priority 2
  "ffffffff", // Lifetime infinity
  "0012", // ADN Length 18
  "087265736f6c766572", //   "resolver"
  "076578616d706c65", //   "example"
  "00", //   root
  "00000000", // Padding: 28 bytes to 32
);

export const DOH: DnrInstance = {
  priority: 1,
  adn: "doh.example",
  addresses: [parseIpv6("2001:db8::1"), parseIpv6("2001:db8::2")],
  alpn: ["h2", "h3"],
  port: null,
  dohpath: "/dns-query{?dns}",
};

// RFC 9463 §4.1: DoH with two addresses (RFC 9461 §5: dohpath).
export const DHCPV6_DOH = hex(
  "0090", // OPTION_V6_DNR 144
  "0051", // option-len 81
  "0001", // Service Priority 1
  "000d", // ADN Length 13
  "03646f68076578616d706c6500", //   "doh" "example" root
  "0020", // Addr Length 32
  "20010db8000000000000000000000001", //   2001:db8::1
  "20010db8000000000000000000000002", //   2001:db8::2
  "0001", // SvcParams (to the end of the option): key 1 (alpn)
  "0006", //   length 6
  "026832", //     "h2"
  "026833", //     "h3"
  "0007", //   key 7 (dohpath)
  "0010", //   length 16
  "2f646e732d71756572797b3f646e737d", //     "/dns-query{?dns}"
);

// RFC 9463 §5.1: two instances, DoT at 192.0.2.53 and an ADN-only one.
export const DHCPV4_TWO = hex(
  "a2", // Code 162 (OPTION_V4_DNR)
  "36", // Len 54
  "001d", // DNR-Instance-Data Length 29
  "0001", //   Service Priority 1
  "0d", //   ADN Length 13
  "03646f74076578616d706c6500", //   "dot" "example" root
  "04", //   Addr Length 4
  "c0000235", //   192.0.2.53
  "0001", //   SvcParams: key 1 (alpn)
  "0004", //     length 4
  "03646f74", //     "dot"
  "0015", // DNR-Instance-Data Length 21
  "0002", //   Service Priority 2
  "12", //   ADN Length 18
  "087265736f6c766572076578616d706c6500", //   "resolver" "example" root (ADN-only)
);

export const ADN_ONLY: DnrInstance = {
  priority: 2,
  adn: "resolver.example",
  addresses: [],
  alpn: [],
  port: null,
  dohpath: null,
};

/** The two instances of {@link DHCPV4_TWO}. */
export const DHCPV4_LIST: DnrInstance[] = [
  {
    priority: 1,
    adn: "dot.example",
    addresses: [v4("192.0.2.53")],
    alpn: ["dot"],
    port: null,
    dohpath: null,
  },
  ADN_ONLY,
];
