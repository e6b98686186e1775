#!/usr/bin/env python3
"""The kernel's side of bench/e2e_tcp_bench.ts: TCP on Linux's own sockets.

Usage:
  _tcp_peer.py sink   --listen|--connect HOST PORT [--timeout S] [--cc NAME]
  _tcp_peer.py source --listen|--connect HOST PORT --bytes N [--timeout S] [--cc NAME]
  _tcp_peer.py accept --listen HOST PORT [--timeout S]
  _tcp_peer.py connrate --connect HOST PORT --seconds S [--parallel P]
  _tcp_peer.py idle --conns N

Every mode stops by itself (--timeout, default 120 s, bounds each transfer
and the accept server; connrate runs --seconds) and prints one JSON line.

  sink      reads until EOF: {"bytes", "seconds", "gbps", "cc"}, seconds
            from the connection's start (accept/connect) to EOF.
  source    writes N bytes (1 MiB writes of a fixed block), then shuts the
            write side and waits for the peer's EOF: {"bytes", "seconds",
            "gbps", "cc"}, seconds from the start to the peer's EOF.

  --cc NAME sets the connection's congestion control (TCP_CONGESTION, on
            the listening socket before the handshake and on the accepted
            one, or on the socket before it connects), so the kernel's
            figures do not depend on the namespace's default
            (net.ipv4.tcp_congestion_control, inherited from the host's);
            without it the default is used. "cc" is what the connection
            ran (getsockopt TCP_CONGESTION), either way.
  accept    accepts and closes each connection at once until SIGTERM or
            --timeout: {"accepted", "seconds", "rate"}.
  connrate  keeps P connections in flight for S seconds: connect, wait for
            the server's FIN (it accepts and closes), close; {"connections",
            "errors", "seconds", "cps"}.
  idle      N idle connections over loopback (client and accepted ends held
            open, nothing sent) in this namespace; the kernel's slab memory
            (sum over /proc/slabinfo of active objects x object size) before
            and after: {"conns", "slabBefore", "slabAfter",
            "bytesPerConnection"} (both ends; the Python objects, user
            memory, are not counted).

Addresses are the benchmark's own namespaces' (documentation ranges).
"""
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time

BLOCK = 1 << 20


def opt(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def endpoint():
    for how in ("--listen", "--connect"):
        if how in sys.argv:
            i = sys.argv.index(how)
            return how[2:], sys.argv[i + 1], int(sys.argv[i + 2])
    raise SystemExit("--listen HOST PORT or --connect HOST PORT")


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def set_cc(s, cc):
    """TCP_CONGESTION = cc on `s` (nothing when cc is None); raises if the kernel refuses it."""
    if cc is not None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())


def get_cc(s):
    """The congestion control `s` runs."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()


def open_conn(how, host, port, timeout, cc=None):
    """A connected socket and the time it was connected (or accepted)."""
    if how == "listen":
        ls = socket.socket(family(host), socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_cc(ls, cc)
        ls.bind((host, port))
        ls.listen(16)
        ls.settimeout(timeout)
        c, _ = ls.accept()
        ls.close()
        set_cc(c, cc)
    else:
        # A peer that is still starting refuses for a moment: retry for up to 10 s.
        until = time.monotonic() + 10
        while True:
            c = socket.socket(family(host), socket.SOCK_STREAM)
            try:
                set_cc(c, cc)
                c.settimeout(timeout)
                c.connect((host, port))
                break
            except (ConnectionRefusedError, OSError):
                c.close()
                if time.monotonic() > until:
                    raise
                time.sleep(0.05)
    c.settimeout(timeout)
    return c, time.perf_counter()


def sink(how, host, port, timeout, cc):
    c, t0 = open_conn(how, host, port, timeout, cc)
    ran = get_cc(c)
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    got = 0
    while True:
        n = c.recv_into(view)
        if n == 0:
            break
        got += n
    secs = time.perf_counter() - t0
    c.close()
    return {"bytes": got, "seconds": secs, "gbps": got * 8 / secs / 1e9, "cc": ran}


def source(how, host, port, total, timeout, cc):
    c, t0 = open_conn(how, host, port, timeout, cc)
    ran = get_cc(c)
    block = memoryview(bytes(range(256)) * (BLOCK // 256))
    sent = 0
    while sent < total:
        n = min(BLOCK, total - sent)
        c.sendall(block[:n])
        sent += n
    c.shutdown(socket.SHUT_WR)
    # The peer's EOF: everything was received (and the peer closed).
    while c.recv(65536):
        pass
    secs = time.perf_counter() - t0
    c.close()
    return {"bytes": sent, "seconds": secs, "gbps": sent * 8 / secs / 1e9, "cc": ran}


def accept_server(host, port, timeout):
    ls = socket.socket(family(host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4096)
    ls.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    n = 0
    t0 = time.perf_counter()
    first = last = None
    while not stop and time.perf_counter() - t0 < timeout:
        try:
            c, _ = ls.accept()
        except (socket.timeout, InterruptedError):
            continue
        c.close()
        n += 1
        last = time.perf_counter()
        if first is None:
            first = last
    secs = (last - first) if first is not None and last > first else 0
    return {"accepted": n, "seconds": secs, "rate": n / secs if secs > 0 else 0}


def connrate(host, port, seconds, parallel):
    sel = selectors.DefaultSelector()
    fam = family(host)
    done = errors = 0
    t0 = time.perf_counter()
    until = t0 + seconds

    def start():
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_WRITE, "connecting")

    for _ in range(parallel):
        start()
    while sel.get_map():
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            if key.data == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    errors += 1
                    sel.unregister(s)
                    s.close()
                else:
                    sel.modify(s, selectors.EVENT_READ, "open")
                    continue
            else:
                try:
                    data = s.recv(64)
                except OSError:
                    data = None
                    errors += 1
                if data:
                    continue
                sel.unregister(s)
                s.close()
                if data is not None:
                    done += 1
            if time.perf_counter() < until:
                start()
        if time.perf_counter() > until + 10:
            break  # stragglers: give up on them
    secs = time.perf_counter() - t0
    return {"connections": done, "errors": errors, "seconds": secs, "cps": done / secs}


def slab_bytes():
    total = 0
    with open("/proc/slabinfo") as f:
        for line in f.readlines()[2:]:
            p = line.split()
            total += int(p[1]) * int(p[3])
    return total


def idle(conns):
    """Client ends in a forked child, accepted ends here: each process stays under RLIMIT_NOFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < conns + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, conns + 64), hard))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    port = ls.getsockname()[1]
    # One connection first, so that lazily made kernel objects exist before the baseline.
    w = socket.create_connection(("127.0.0.1", port))
    wa, _ = ls.accept()
    w.close()
    wa.close()
    time.sleep(0.2)
    before = slab_bytes()
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        ls.close()
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
        os.write(done_w, b"x")
        os.read(go_r, 1)  # hold them until the parent has measured
        for c in held:
            c.close()
        os._exit(0)
    held = []
    for _ in range(conns):
        a, _ = ls.accept()
        held.append(a)
    os.read(done_r, 1)
    time.sleep(0.5)
    after = slab_bytes()
    os.write(go_w, b"x")
    os.waitpid(pid, 0)
    for a in held:
        a.close()
    return {
        "conns": conns,
        "slabBefore": before,
        "slabAfter": after,
        "bytesPerConnection": (after - before) / conns,
    }


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    timeout = float(opt("--timeout", "120"))
    cc = opt("--cc")
    if mode == "sink":
        r = sink(*endpoint(), timeout, cc)
    elif mode == "source":
        r = source(*endpoint(), int(opt("--bytes", "0")), timeout, cc)
    elif mode == "accept":
        _, host, port = endpoint()
        r = accept_server(host, port, timeout)
    elif mode == "connrate":
        _, host, port = endpoint()
        r = connrate(host, port, float(opt("--seconds", "5")), int(opt("--parallel", "32")))
    elif mode == "idle":
        r = idle(int(opt("--conns", "10000")))
    else:
        raise SystemExit(__doc__)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
