#!/usr/bin/env python3
"""Bounded link-layer floods for bench/e2e_floods_bench.ts.

Usage: _floodgen.py MODE IFACE DST_MAC --seconds S --count N [--pps R] [mode options]

scapy builds one template frame per mode; each packet is that template with
its random fields (MACs, addresses, ports, IDs) patched in place and any
checksum the patch breaks recomputed, written to IFACE through one AF_PACKET
socket (scapy's own send path costs ~100 us a packet; this costs ~2). It
stops by itself after --count packets or --seconds, whichever comes first,
and prints one JSON line: {"packets", "seconds", "pps"}.

Modes (every address is the benchmark's own, in documentation ranges):

  arp-random      ARP requests for --target from random sender MACs and random
                  sender addresses of --net (.1 and .2 excepted: the router and
                  the measured host), as a neighbour table filler
  arp-gratuitous  gratuitous ARP (sender = target address, broadcast) for random
                  addresses of --net from random MACs
  frag4           first fragments (MF=1, offset 0, random ID) of 1,000-byte UDP
                  datagrams from --src to --dst that never complete
  frag6           the IPv6 form: Fragment header M=1, offset 0, random ID,
                  1,232 bytes, from --src to --dst
  udp-unresolved  64-byte UDP from --src to random hosts of --net that do not
                  exist (the router queues them waiting for ARP)
  udp-flows       64-byte UDP from --src to --dst with random source and
                  destination ports: one new conntrack entry each
"""
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import time

from scapy.all import ARP, IP, UDP, Ether, IPv6, IPv6ExtHdrFragment, Raw  # type: ignore


def opt(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def csum16(b):
    """The Internet checksum (RFC 1071) of an even-length header."""
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def rand_mac():
    # Locally administered unicast (RFC 7042 §2.1): 02-... with the group bit clear.
    return b"\x02" + os.urandom(5)


def host_picker(net):
    """Random host addresses of `net` as 4 bytes, without .0, .1, .2 and broadcast."""
    n = ipaddress.ip_network(net)
    base = int(n.network_address)
    size = n.num_addresses
    def pick():
        return struct.pack("!I", base + random.randrange(3, size - 1))
    return pick


def main():
    mode, iface, dst_mac = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = float(opt("--seconds", "10"))
    count = int(opt("--count", "1000000"))
    pps = float(opt("--pps", "0"))
    src_mac = open(f"/sys/class/net/{iface}/address").read().strip()
    eth = Ether(src=src_mac, dst=dst_mac)

    if mode in ("arp-random", "arp-gratuitous"):
        pick = host_picker(opt("--net"))
        target = opt("--target", "0.0.0.0")
        gratuitous = mode == "arp-gratuitous"
        tpl = bytearray(bytes(
            Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=1, hwsrc=src_mac, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=target)
        ))
        # Ethernet source 6..12, ARP sender MAC 22..28, sender IP 28..32, target IP 38..42.
        def patch(f):
            mac = rand_mac()
            ip = pick()
            f[6:12] = mac
            f[22:28] = mac
            f[28:32] = ip
            if gratuitous:
                f[38:42] = ip
    elif mode == "frag4":
        tpl = bytearray(bytes(
            eth / IP(src=opt("--src"), dst=opt("--dst"), flags="MF", frag=0, id=1)
            / UDP(sport=40000, dport=9) / Raw(b"\x00" * 992)
        ))
        # IPv4 ID 18..20, header checksum 24..26 over 14..34.
        def patch(f):
            f[18:20] = os.urandom(2)
            f[24:26] = b"\x00\x00"
            f[24:26] = struct.pack("!H", csum16(bytes(f[14:34])))
    elif mode == "frag6":
        tpl = bytearray(bytes(
            eth / IPv6(src=opt("--src"), dst=opt("--dst"))
            / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=1) / Raw(b"\x00" * 1184)
        ))
        # Fragment header at 54: Identification 58..62; no checksum covers it.
        def patch(f):
            f[58:62] = os.urandom(4)
    elif mode == "udp-unresolved":
        pick = host_picker(opt("--net"))
        tpl = bytearray(bytes(
            eth / IP(src=opt("--src"), dst="0.0.0.0", ttl=64)
            / UDP(sport=40000, dport=9, chksum=0) / Raw(b"\x00" * 64)
        ))
        # Destination 30..34; UDP checksum 0 (RFC 768: none).
        def patch(f):
            f[30:34] = pick()
            f[24:26] = b"\x00\x00"
            f[24:26] = struct.pack("!H", csum16(bytes(f[14:34])))
    elif mode == "udp-flows":
        tpl = bytearray(bytes(
            eth / IP(src=opt("--src"), dst=opt("--dst"), ttl=64)
            / UDP(sport=1, dport=1, chksum=0) / Raw(b"\x00" * 64)
        ))
        # Source and destination ports 34..38; the IPv4 header does not change.
        def patch(f):
            f[34:38] = os.urandom(4)
    else:
        raise SystemExit(f"unknown mode {mode}")

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    frame = bytearray(tpl)
    sent = 0
    t0 = time.monotonic()
    until = t0 + seconds
    while sent < count:
        now = time.monotonic()
        if now > until:
            break
        if pps > 0 and sent > pps * (now - t0):
            time.sleep(0.001)
            continue
        # Check the clock only every 64 packets.
        for _ in range(min(64, count - sent)):
            patch(frame)
            try:
                s.send(frame)
                sent += 1
            except (BlockingIOError, OSError):
                # A full device queue (ENOBUFS): the packet is not sent.
                pass
    secs = time.monotonic() - t0
    print(json.dumps({"packets": sent, "seconds": secs, "pps": sent / secs if secs > 0 else 0}))


main()
