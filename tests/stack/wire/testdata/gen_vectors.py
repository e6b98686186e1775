#!/usr/bin/python3
"""Builds the byte vectors of tests/stack/wire/*_test.ts with scapy 2.5.0 and
prints them as TypeScript `hex(...)` calls with one commented line per header
field. Run: /usr/bin/python3 tests/stack/wire/testdata/gen_vectors.py"""
import socket
import struct

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPOption, raw  # noqa: F401


def ip4(b):
    return socket.inet_ntoa(bytes(b))


def mac(b):
    return ":".join(f"{x:02x}" for x in b)


class Out:
    def __init__(self):
        self.lines = []

    def f(self, b, comment):
        self.lines.append(f'    "{bytes(b).hex()}", // {comment}')


def ipv4_options(o, opts, base=20):
    i = 0
    while i < len(opts):
        t = opts[i]
        if t == 0:
            o.f(opts[i:], f"End of Option List and padding ({len(opts) - i} bytes)")
            return
        if t == 1:
            o.f(opts[i:i + 1], "No Operation")
            i += 1
            continue
        ln = opts[i + 1]
        body = opts[i:i + ln]
        name = {7: "Record Route", 68: "Timestamp", 148: "Router Alert", 130: "Security"}.get(t, f"option {t}")
        if t == 7:
            o.f(body[:3], f"{name}: type 7, length {ln}, pointer {body[2]}")
            for j in range(3, ln, 4):
                o.f(body[j:j + 4], f"  route slot {ip4(body[j:j + 4])}")
        elif t == 68:
            o.f(body[:4], f"{name}: type 68, length {ln}, pointer {body[2]}, overflow {body[3] >> 4}, flags {body[3] & 15}")
            for j in range(4, ln, 4):
                o.f(body[j:j + 4], f"  slot 0x{body[j:j + 4].hex()}")
        elif t == 148:
            o.f(body, f"{name}: type 148, length 4, value {struct.unpack('!H', body[2:4])[0]}")
        else:
            o.f(body, f"{name}: type {t}, length {ln}")
        i += ln


def ipv4(o, b):
    ihl = b[0] & 15
    o.f(b[0:1], f"version 4, IHL {ihl}")
    o.f(b[1:2], f"DSCP/ECN 0x{b[1]:02x}")
    o.f(b[2:4], f"total length {struct.unpack('!H', b[2:4])[0]}")
    o.f(b[4:6], f"identification 0x{b[4:6].hex()}")
    ff = struct.unpack('!H', b[6:8])[0]
    o.f(b[6:8], f"flags DF={ff >> 14 & 1} MF={ff >> 13 & 1}, fragment offset {(ff & 0x1fff) * 8} bytes")
    o.f(b[8:9], f"TTL {b[8]}")
    o.f(b[9:10], f"protocol {b[9]}")
    o.f(b[10:12], "header checksum")
    o.f(b[12:16], f"source {ip4(b[12:16])}")
    o.f(b[16:20], f"destination {ip4(b[16:20])}")
    ipv4_options(o, b[20:ihl * 4])
    return b[ihl * 4:]


def icmp(o, b):
    t, c = b[0], b[1]
    o.f(b[0:1], f"type {t}")
    o.f(b[1:2], f"code {c}")
    o.f(b[2:4], "checksum")
    if t in (0, 8):
        o.f(b[4:6], f"identifier {struct.unpack('!H', b[4:6])[0]}")
        o.f(b[6:8], f"sequence {struct.unpack('!H', b[6:8])[0]}")
        if len(b) > 8:
            o.f(b[8:], f"data ({len(b) - 8} bytes)")
    else:
        if t == 3:
            o.f(b[4:6], "unused")
            o.f(b[6:8], f"next-hop MTU {struct.unpack('!H', b[6:8])[0]}")
        elif t == 12:
            o.f(b[4:5], f"pointer {b[4]}")
            o.f(b[5:8], "unused")
        else:
            o.f(b[4:8], "unused")
        o.lines.append("    // quoted datagram:")
        rest = ipv4(o, b[8:])
        o.f(rest, f"quoted payload ({len(rest)} bytes)")


def udp(o, b):
    o.f(b[0:2], f"source port {struct.unpack('!H', b[0:2])[0]}")
    o.f(b[2:4], f"destination port {struct.unpack('!H', b[2:4])[0]}")
    o.f(b[4:6], f"length {struct.unpack('!H', b[4:6])[0]}")
    o.f(b[6:8], "checksum")
    if len(b) > 8:
        o.f(b[8:], f"payload {bytes(b[8:])!r}")


def tcp(o, b):
    o.f(b[0:2], f"source port {struct.unpack('!H', b[0:2])[0]}")
    o.f(b[2:4], f"destination port {struct.unpack('!H', b[2:4])[0]}")
    o.f(b[4:8], f"sequence {struct.unpack('!I', b[4:8])[0]}")
    o.f(b[8:12], f"acknowledgment {struct.unpack('!I', b[8:12])[0]}")
    hl = (b[12] >> 4) * 4
    o.f(b[12:13], f"data offset {b[12] >> 4}")
    o.f(b[13:14], f"flags 0x{b[13]:02x}")
    o.f(b[14:16], f"window {struct.unpack('!H', b[14:16])[0]}")
    o.f(b[16:18], "checksum")
    o.f(b[18:20], f"urgent pointer {struct.unpack('!H', b[18:20])[0]}")
    i = 20
    while i < hl:
        k = b[i]
        if k == 0:
            o.f(b[i:hl], "End of Option List")
            break
        if k == 1:
            o.f(b[i:i + 1], "NOP")
            i += 1
            continue
        ln = b[i + 1]
        if k == 2:
            o.f(b[i:i + ln], f"MSS option: kind 2, length 4, value {struct.unpack('!H', b[i + 2:i + 4])[0]}")
        else:
            o.f(b[i:i + ln], f"option kind {k}, length {ln}")
        i += ln
    if len(b) > hl:
        o.f(b[hl:], f"payload {bytes(b[hl:])!r}")


def arp(o, b):
    o.f(b[0:2], "hardware type 1 (Ethernet)")
    o.f(b[2:4], "protocol type 0x0800 (IPv4)")
    o.f(b[4:5], "hardware length 6")
    o.f(b[5:6], "protocol length 4")
    o.f(b[6:8], f"operation {struct.unpack('!H', b[6:8])[0]}")
    o.f(b[8:14], f"sender MAC {mac(b[8:14])}")
    o.f(b[14:18], f"sender IP {ip4(b[14:18])}")
    o.f(b[18:24], f"target MAC {mac(b[18:24])}")
    o.f(b[24:28], f"target IP {ip4(b[24:28])}")


def ip_packet(o, b):
    rest = ipv4(o, b)
    p = b[9]
    if p == 1:
        icmp(o, rest)
    elif p == 17:
        udp(o, rest)
    elif p == 6:
        tcp(o, rest)
    elif rest:
        o.f(rest, f"payload ({len(rest)} bytes)")


def show(name, expr, kind):
    pkt = eval(expr)
    b = raw(pkt)
    o = Out()
    {"ip": ip_packet, "arp": arp, "icmp": icmp, "udp": udp, "tcp": tcp}[kind](o, b)
    print(f"// {name}\n// scapy 2.5.0: {expr}")
    print("  hex(\n" + "\n".join(o.lines) + "\n  ),\n")


A, B = "192.0.2.1", "198.51.100.2"
RR = "IPOption(b'\\x07\\x0b\\x04' + bytes(8))"
TS = "IPOption(b'\\x44\\x0c\\x05\\x00' + bytes(8))"
TS1 = "IPOption(b'\\x44\\x14\\x05\\x01' + bytes(16))"
RA = "IPOption(b'\\x94\\x04\\x00\\x00')"
CASES = [
    ("ipv4 udp", f"IP(src='{A}', dst='{B}', ttl=64, id=0x1234, flags='DF')/UDP(sport=40000, dport=53)/b'hello'", "ip"),
    ("ipv4 rr", f"IP(src='{A}', dst='{B}', ttl=64, id=1, options=[{RR}])/ICMP(id=7, seq=1)", "ip"),
    ("ipv4 ts", f"IP(src='{A}', dst='{B}', ttl=64, id=2, options=[{TS}])/ICMP(id=7, seq=2)", "ip"),
    ("ipv4 ts1", f"IP(src='{A}', dst='{B}', ttl=64, id=2, options=[{TS1}])/ICMP(id=7, seq=2)", "ip"),
    ("ipv4 ra", f"IP(src='{A}', dst='224.0.0.22', ttl=1, tos=0xc0, id=3, options=[{RA}], proto=2)/(b'\\x22' + bytes(7))", "ip"),
    ("ipv4 frag1", f"IP(src='{A}', dst='{B}', ttl=64, id=0xabcd, flags='MF', frag=0, proto=17)/bytes(16)", "ip"),
    ("ipv4 frag2", f"IP(src='{A}', dst='{B}', ttl=64, id=0xabcd, flags=0, frag=2, proto=17)/bytes(8)", "ip"),
    ("icmp echo request", "ICMP(type=8, id=0x1234, seq=1)/b'abcdefgh'", "icmp"),
    ("icmp echo reply", "ICMP(type=0, id=0x1234, seq=1)/b'abcdefgh'", "icmp"),
    ("icmp frag needed", f"ICMP(type=3, code=4, nexthopmtu=1400)/IP(src='{A}', dst='{B}', ttl=63, id=0x1234, flags='DF', len=1500)/UDP(sport=40000, dport=53, len=1480, chksum=0x1111)", "icmp"),
    ("icmp port unreach", f"ICMP(type=3, code=3)/IP(src='{A}', dst='{B}', ttl=64, id=0x1234)/UDP(sport=40000, dport=33434, len=8, chksum=0)", "icmp"),
    ("icmp time exceeded", f"ICMP(type=11, code=0)/IP(src='{A}', dst='{B}', ttl=1, id=0x1234)/UDP(sport=40000, dport=33434, len=8, chksum=0)", "icmp"),
    ("icmp param problem", f"ICMP(type=12, code=0, ptr=22)/IP(src='{A}', dst='{B}', ttl=64, id=1, options=[IPOption(b'\\x07\\x0b\\x02' + bytes(8))], proto=1)/ICMP(id=7, seq=1)", "icmp"),
    ("arp request", "ARP(op=1, hwsrc='02:00:00:00:00:01', psrc='192.0.2.1', hwdst='00:00:00:00:00:00', pdst='192.0.2.2')", "arp"),
    ("arp reply", "ARP(op=2, hwsrc='02:00:00:00:00:02', psrc='192.0.2.2', hwdst='02:00:00:00:00:01', pdst='192.0.2.1')", "arp"),
    ("udp", f"IP(src='{A}', dst='{B}', ttl=64, id=0x1234, flags='DF')/UDP(sport=40000, dport=53)/b'hello'", "ip"),
    ("udp odd", f"IP(src='{A}', dst='{B}', ttl=64, id=0x1235)/UDP(sport=5353, dport=5353)/b'abc'", "ip"),
    ("tcp syn mss", f"IP(src='{A}', dst='{B}', ttl=64, id=0x4321, flags='DF')/TCP(sport=40000, dport=80, seq=1000, flags='S', window=64240, options=[('MSS', 1460)])", "ip"),
    ("tcp ack data", f"IP(src='{B}', dst='{A}', ttl=64, id=0x4322, flags='DF')/TCP(sport=80, dport=40000, seq=5000, ack=1001, flags='PA', window=502)/b'HTTP'", "ip"),
]

if __name__ == "__main__":
    for c in CASES:
        show(*c)
