#!/usr/bin/python3
"""Builds the byte vectors of tests/stack/wire/{ipv6,ipv6_ext,icmpv6,ndp,mld}_test.ts
with scapy 2.5.0 and prints them as TypeScript `hex(...)` calls with one
commented line per header field. Every vector is a whole IPv6 packet, so the
ICMPv6 checksums are scapy's, over the pseudo header.
Run: /usr/bin/python3 tests/stack/wire/testdata/gen_vectors_ipv6.py"""
import ipaddress
import struct

from scapy.all import raw  # noqa: F401
from scapy.layers.inet import UDP  # noqa: F401
from scapy.layers.inet6 import (  # noqa: F401
    HAO, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
    ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6MLDMultAddrRec, ICMPv6MLDone,
    ICMPv6MLQuery, ICMPv6MLQuery2, ICMPv6MLReport, ICMPv6MLReport2, ICMPv6ND_NA, ICMPv6ND_NS,
    ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6ND_RS, ICMPv6NDOptDNSSL, ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo, ICMPv6NDOptRDNSS, ICMPv6NDOptRedirectedHdr,
    ICMPv6NDOptRouteInfo, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptUnknown, ICMPv6PacketTooBig,
    ICMPv6ParamProblem, ICMPv6TimeExceeded, Jumbo, Pad1, PadN, RouterAlert,
)


def ip6(b):
    return str(ipaddress.IPv6Address(bytes(b)))


def mac(b):
    return ":".join(f"{x:02x}" for x in b)


def u16(b):
    return struct.unpack("!H", bytes(b))[0]


def u32(b):
    return struct.unpack("!I", bytes(b))[0]


class Out:
    def __init__(self):
        self.lines = []

    def f(self, b, comment):
        if len(b):
            self.lines.append(f'    "{bytes(b).hex()}", // {comment}')

    def c(self, comment):
        self.lines.append(f"    // {comment}")


def ipv6_hdr(o, b):
    w = u32(b[0:4])
    o.f(b[0:4], f"version {w >> 28}, traffic class 0x{(w >> 20) & 0xff:02x}, flow label 0x{w & 0xfffff:05x}")
    o.f(b[4:6], f"payload length {u16(b[4:6])}")
    o.f(b[6:7], f"next header {b[6]}")
    o.f(b[7:8], f"hop limit {b[7]}")
    o.f(b[8:24], f"source {ip6(b[8:24])}")
    o.f(b[24:40], f"destination {ip6(b[24:40])}")
    return b[6], b[40:]


OPT_NAMES = {0: "Pad1", 1: "PadN", 5: "Router Alert", 0xc2: "Jumbo Payload", 0xc9: "Home Address"}


def tlv_options(o, b):
    i = 0
    while i < len(b):
        t = b[i]
        if t == 0:
            o.f(b[i:i + 1], "  Pad1")
            i += 1
            continue
        ln = b[i + 1]
        name = OPT_NAMES.get(t, "unknown")
        o.f(b[i:i + 2 + ln], f"  option 0x{t:02x} ({name}, action {t >> 6:02b}), length {ln}")
        i += 2 + ln


def ext_chain(o, nh, b):
    """Annotates extension headers; returns the upper-layer type and bytes."""
    while True:
        if nh in (0, 60):
            ln = (b[1] + 1) * 8
            o.f(b[0:2], f"{'Hop-by-Hop' if nh == 0 else 'Destination Options'}: next header {b[0]}, length {ln} bytes")
            tlv_options(o, b[2:ln])
        elif nh == 43:
            ln = (b[1] + 1) * 8
            o.f(b[0:4], f"Routing: next header {b[0]}, length {ln} bytes, type {b[2]}, segments left {b[3]}")
            o.f(b[4:ln], "  routing data")
        elif nh == 44:
            ln = 8
            fo = u16(b[2:4])
            o.f(b[0:4], f"Fragment: next header {b[0]}, offset {fo & 0xfff8} bytes, M={fo & 1}")
            o.f(b[4:8], f"  identification 0x{b[4:8].hex()}")
            if fo & 0xfff8:
                o.f(b[8:], f"fragment data ({len(b) - 8} bytes)")
                return -1, b[len(b):]
        elif nh == 51:
            ln = (b[1] + 2) * 4
            o.f(b[0:4], f"Authentication Header: next header {b[0]}, length {ln} bytes, reserved")
            o.f(b[4:ln], "  SPI, sequence number, ICV")
        else:
            return nh, b
        nh, b = b[0], b[ln:]


def upper(o, nh, b):
    if nh == 58:
        icmpv6(o, b)
    elif nh == 17:
        o.f(b[0:8], f"UDP {u16(b[0:2])} -> {u16(b[2:4])}, length {u16(b[4:6])}, checksum")
        o.f(b[8:], f"UDP payload ({len(b) - 8} bytes)")
    elif nh >= 0:
        o.f(b, f"payload ({len(b)} bytes)")


def packet(o, b):
    nh, rest = ipv6_hdr(o, b)
    nh, rest = ext_chain(o, nh, rest)
    upper(o, nh, rest)


ND_OPT = {1: "Source Link-Layer Address", 2: "Target Link-Layer Address", 3: "Prefix Information",
          4: "Redirected Header", 5: "MTU", 14: "Nonce", 24: "Route Information", 25: "RDNSS", 31: "DNSSL"}


def nd_options(o, b):
    i = 0
    while i < len(b):
        t, ln = b[i], b[i + 1] * 8
        x = b[i:i + ln]
        name = ND_OPT.get(t, "unknown")
        if t in (1, 2):
            o.f(x[0:2], f"option {t} ({name}), length 8")
            o.f(x[2:8], f"  {mac(x[2:8])}")
        elif t == 3:
            o.f(x[0:4], f"option 3 (Prefix Information), length 32, prefix length {x[2]}, L={x[3] >> 7} A={(x[3] >> 6) & 1}")
            o.f(x[4:8], f"  valid lifetime {u32(x[4:8])}")
            o.f(x[8:12], f"  preferred lifetime {u32(x[8:12])}")
            o.f(x[12:16], "  reserved")
            o.f(x[16:32], f"  prefix {ip6(x[16:32])}")
        elif t == 4:
            o.f(x[0:8], f"option 4 (Redirected Header), length {ln}, reserved")
            o.c("  redirected packet:")
            nh, rest = ipv6_hdr(o, x[8:])
            o.f(rest, f"  quoted payload ({len(rest)} bytes)")
        elif t == 5:
            o.f(x[0:4], "option 5 (MTU), length 8, reserved")
            o.f(x[4:8], f"  MTU {u32(x[4:8])}")
        elif t == 24:
            o.f(x[0:4], f"option 24 (Route Information), length {ln}, prefix length {x[2]}, preference {(x[3] >> 3) & 3}")
            o.f(x[4:8], f"  route lifetime {u32(x[4:8])}")
            o.f(x[8:], f"  prefix bytes ({ln - 8})")
        elif t == 25:
            o.f(x[0:4], f"option 25 (RDNSS), length {ln}, reserved")
            o.f(x[4:8], f"  lifetime {u32(x[4:8])}")
            for j in range(8, ln, 16):
                o.f(x[j:j + 16], f"  server {ip6(x[j:j + 16])}")
        elif t == 31:
            o.f(x[0:4], f"option 31 (DNSSL), length {ln}, reserved")
            o.f(x[4:8], f"  lifetime {u32(x[4:8])}")
            o.f(x[8:], "  domain names (DNS wire encoding) and padding")
        else:
            o.f(x, f"option {t} ({name}), length {ln}")
        i += ln


def icmpv6(o, b):
    t, c = b[0], b[1]
    o.f(b[0:1], f"ICMPv6 type {t}")
    o.f(b[1:2], f"code {c}")
    o.f(b[2:4], "checksum")
    if t in (128, 129):
        o.f(b[4:6], f"identifier {u16(b[4:6])}")
        o.f(b[6:8], f"sequence {u16(b[6:8])}")
        o.f(b[8:], f"data ({len(b) - 8} bytes)")
    elif t < 128:
        label = {2: f"MTU {u32(b[4:8])}", 4: f"pointer {u32(b[4:8])}"}.get(t, "unused")
        o.f(b[4:8], label)
        o.c("quoted packet:")
        nh, rest = ipv6_hdr(o, b[8:])
        o.f(rest, f"quoted payload ({len(rest)} bytes)")
    elif t == 133:
        o.f(b[4:8], "reserved")
        nd_options(o, b[8:])
    elif t == 134:
        o.f(b[4:5], f"cur hop limit {b[4]}")
        o.f(b[5:6], f"flags M={b[5] >> 7} O={(b[5] >> 6) & 1} Prf={(b[5] >> 3) & 3}")
        o.f(b[6:8], f"router lifetime {u16(b[6:8])}")
        o.f(b[8:12], f"reachable time {u32(b[8:12])}")
        o.f(b[12:16], f"retrans timer {u32(b[12:16])}")
        nd_options(o, b[16:])
    elif t in (135, 136):
        if t == 136:
            o.f(b[4:8], f"flags R={b[4] >> 7} S={(b[4] >> 6) & 1} O={(b[4] >> 5) & 1}, reserved")
        else:
            o.f(b[4:8], "reserved")
        o.f(b[8:24], f"target {ip6(b[8:24])}")
        nd_options(o, b[24:])
    elif t == 137:
        o.f(b[4:8], "reserved")
        o.f(b[8:24], f"target {ip6(b[8:24])}")
        o.f(b[24:40], f"destination {ip6(b[24:40])}")
        nd_options(o, b[40:])
    elif t in (130, 131, 132):
        o.f(b[4:6], f"maximum response {u16(b[4:6])}")
        o.f(b[6:8], "reserved")
        o.f(b[8:24], f"multicast address {ip6(b[8:24])}")
        if t == 130 and len(b) >= 28:
            o.f(b[24:25], f"S={(b[24] >> 3) & 1} QRV={b[24] & 7}")
            o.f(b[25:26], f"QQIC {b[25]}")
            o.f(b[26:28], f"number of sources {u16(b[26:28])}")
            for j in range(28, len(b), 16):
                o.f(b[j:j + 16], f"source {ip6(b[j:j + 16])}")
    elif t == 143:
        o.f(b[4:6], "reserved")
        o.f(b[6:8], f"number of records {u16(b[6:8])}")
        i = 8
        while i < len(b):
            n, aux = u16(b[i + 2:i + 4]), b[i + 1] * 4
            o.f(b[i:i + 4], f"record type {b[i]}, aux data 0, sources {n}")
            o.f(b[i + 4:i + 20], f"  multicast address {ip6(b[i + 4:i + 20])}")
            for j in range(n):
                s = i + 20 + 16 * j
                o.f(b[s:s + 16], f"  source {ip6(b[s:s + 16])}")
            i += 20 + 16 * n + aux
    else:
        o.f(b[4:], f"body ({len(b) - 4} bytes)")


def show(name, expr):
    b = raw(eval(expr))
    o = Out()
    packet(o, b)
    print(f"// {name}\n// scapy 2.5.0: {expr}")
    print("  hex(\n" + "\n".join(o.lines) + "\n  ),\n")


A, B, R = "2001:db8::1", "2001:db8:1::2", "2001:db8::ff"
LLA, LLR = "fe80::1", "fe80::ff"
MAC_A, MAC_R = "02:00:00:00:00:01", "02:00:00:00:00:ff"
QUOTE = f"IPv6(src='{A}', dst='{B}', hlim=1)/UDP(sport=40000, dport=33434)"
CASES = [
    # ipv6_test.ts
    ("ipv6 udp", f"IPv6(src='{A}', dst='{B}', hlim=64, tc=0xb8, fl=0x12345)/UDP(sport=40000, dport=53)/b'hello'"),
    ("ipv6 no next header", f"IPv6(src='{A}', dst='{B}', hlim=255, nh=59)"),
    # ipv6_ext_test.ts
    ("hbh ra + frag", f"IPv6(src='{A}', dst='{B}')/IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])/IPv6ExtHdrFragment(offset=0, m=1, id=0x12345678)/UDP(sport=40000, dport=33434)/bytes(8)"),
    ("frag nonfirst", f"IPv6(src='{A}', dst='{B}')/IPv6ExtHdrFragment(nh=17, offset=2, m=0, id=0x12345678)/bytes(8)"),
    ("atomic", f"IPv6(src='{A}', dst='{B}')/IPv6ExtHdrFragment(nh=17, offset=0, m=0, id=7)/UDP(sport=1, dport=2)"),
    ("dest + routing", f"IPv6(src='{A}', dst='{B}')/IPv6ExtHdrDestOpt(options=[Pad1(), PadN(optdata=b'\\x00\\x00\\x00')])/IPv6ExtHdrRouting(type=0, segleft=0, addresses=['{R}'])/UDP(sport=40000, dport=53)"),
    ("ah", f"IPv6(src='{A}', dst='{B}', nh=51)/(b'\\x3a\\x04\\x00\\x00' + bytes(20))/ICMPv6EchoRequest(id=1, seq=1)"),
    ("esp", f"IPv6(src='{A}', dst='{B}', nh=50)/bytes(16)"),
    ("jumbo", f"IPv6(src='{A}', dst='{B}')/IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=70000)])/UDP(sport=1, dport=2)"),
    ("hao", f"IPv6(src='{A}', dst='{B}')/IPv6ExtHdrDestOpt(options=[HAO(hoa='{R}')])/UDP(sport=1, dport=2)"),
    # icmpv6_test.ts
    ("echo request", f"IPv6(src='{A}', dst='{B}')/ICMPv6EchoRequest(id=0x1234, seq=1, data=b'abcdefgh')"),
    ("echo reply", f"IPv6(src='{B}', dst='{A}')/ICMPv6EchoReply(id=0x1234, seq=1, data=b'abcdefgh')"),
    ("dest unreach", f"IPv6(src='{R}', dst='{A}')/ICMPv6DestUnreach(code=4)/{QUOTE}"),
    ("packet too big", f"IPv6(src='{R}', dst='{A}')/ICMPv6PacketTooBig(mtu=1280)/{QUOTE}"),
    ("time exceeded", f"IPv6(src='{R}', dst='{A}')/ICMPv6TimeExceeded(code=0)/{QUOTE}"),
    ("param problem", f"IPv6(src='{R}', dst='{A}')/ICMPv6ParamProblem(code=1, ptr=6)/IPv6(src='{A}', dst='{B}', nh=253)/bytes(8)"),
    # ndp_test.ts
    ("rs", f"IPv6(src='{LLA}', dst='ff02::2', hlim=255)/ICMPv6ND_RS()/ICMPv6NDOptSrcLLAddr(lladdr='{MAC_A}')"),
    ("ra", f"IPv6(src='{LLR}', dst='ff02::1', hlim=255)/ICMPv6ND_RA(chlim=64, M=1, O=1, prf=3, routerlifetime=1800, reachabletime=30000, retranstimer=1000)"
     f"/ICMPv6NDOptSrcLLAddr(lladdr='{MAC_R}')/ICMPv6NDOptMTU(mtu=1500)"
     f"/ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=86400, preferredlifetime=14400, prefix='2001:db8:10::')"
     f"/ICMPv6NDOptRouteInfo(plen=48, prf=1, rtlifetime=3600, prefix='2001:db8:ff::', len=2)"
     f"/ICMPv6NDOptRouteInfo(plen=0, prf=3, rtlifetime=600, prefix='::', len=1)"
     f"/ICMPv6NDOptRouteInfo(plen=96, prf=0, rtlifetime=60, prefix='2001:db8:ee::1:0:0')"
     f"/ICMPv6NDOptRDNSS(lifetime=600, dns=['2001:db8:10::53', '2001:db8:10::54'])"
     f"/ICMPv6NDOptDNSSL(lifetime=600, searchlist=['example.net', 'lab.example.org'])"),
    ("ns", f"IPv6(src='{A}', dst='ff02::1:ff00:2', hlim=255)/ICMPv6ND_NS(tgt='2001:db8::2')/ICMPv6NDOptSrcLLAddr(lladdr='{MAC_A}')"),
    ("ns dad nonce", "IPv6(src='::', dst='ff02::1:ff00:1', hlim=255)/ICMPv6ND_NS(tgt='2001:db8::1')/ICMPv6NDOptUnknown(type=14, len=1, data=b'\\x01\\x02\\x03\\x04\\x05\\x06')"),
    ("na", f"IPv6(src='2001:db8::2', dst='{A}', hlim=255)/ICMPv6ND_NA(R=1, S=1, O=0, tgt='2001:db8::2')/ICMPv6NDOptDstLLAddr(lladdr='02:00:00:00:00:02')"),
    ("redirect", f"IPv6(src='{LLR}', dst='{A}', hlim=255)/ICMPv6ND_Redirect(tgt='fe80::2', dst='{B}')/ICMPv6NDOptDstLLAddr(lladdr='02:00:00:00:00:02')"
     f"/ICMPv6NDOptRedirectedHdr(pkt=IPv6(src='{A}', dst='{B}', plen=0, nh=59))"),
    # mld_test.ts
    ("mldv2 query", f"IPv6(src='{LLR}', dst='ff02::1', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLQuery2(mrd=10000, mladdr='::', S=0, QRV=2, QQIC=125)"),
    ("mldv2 gs query", f"IPv6(src='{LLR}', dst='ff0e::101', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLQuery2(mrd=0x8c00, mladdr='ff0e::101', S=1, QRV=7, QQIC=0x8f, sources=['{A}', '{B}'])"),
    ("mldv2 report", f"IPv6(src='{LLA}', dst='ff02::16', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLReport2(records=["
     "ICMPv6MLDMultAddrRec(rtype=4, dst='ff02::1:ff00:1'), "
     f"ICMPv6MLDMultAddrRec(rtype=1, dst='ff0e::101', sources=['{R}']), "
     f"ICMPv6MLDMultAddrRec(rtype=6, dst='ff0e::102', sources=['{A}', '{B}'])])"),
    ("mldv1 query", f"IPv6(src='{LLR}', dst='ff02::1', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLQuery(mrd=10000, mladdr='::')"),
    ("mldv1 report", f"IPv6(src='{LLA}', dst='ff0e::101', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLReport(mrd=0, mladdr='ff0e::101')"),
    ("mldv1 done", f"IPv6(src='{LLA}', dst='ff02::2', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLDone(mrd=0, mladdr='ff0e::101')"),
]

if __name__ == "__main__":
    for c in CASES:
        show(*c)
