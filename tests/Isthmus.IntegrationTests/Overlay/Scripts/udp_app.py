#!/usr/bin/env python3
"""A UDP program as users write them, run under `isthmus run` (its socket calls go through the shim).

  udp_app.py server HOST PORT            echo; prints LISTENING, then "FROM ip:port size=N" per datagram
  udp_app.py connecting-server HOST PORT like iperf3 -u: the first datagram's sender is connected to; prints
                                         "CONNECTED local=ip:port peer=ip:port", then echoes with send/recv
  udp_app.py client HOST PORT SIZE...    unconnected sendto/recvfrom; "OK size=N from=ip:port"
  udp_app.py connected HOST PORT SIZE... connect + send/recv; prints "PEER ip:port", "LOCAL ip:port",
                                         "OK size=N", then dissolves with AF_UNSPEC: "DISSOLVED errno=NAME"
  udp_app.py sendto HOST PORT SIZE       one sendto; prints "SENT n" or "ERROR errno=NAME"
HOST may be a name; it is resolved with getaddrinfo (AF_INET, SOCK_DGRAM).
"""
import ctypes
import errno
import socket
import struct
import sys


def addr(host, port):
    return socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]


def payload(size):
    return bytes((i * 13 + size) % 251 for i in range(size))


def main(argv):
    mode, host, port = argv[1], argv[2], int(argv[3])
    if mode == "server":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, port))
        print("LISTENING %s:%d" % s.getsockname(), flush=True)
        for _ in range(100000):
            data, frm = s.recvfrom(65536)
            print("FROM %s:%d size=%d" % (frm[0], frm[1], len(data)), flush=True)
            s.sendto(data, frm)
        return 0
    if mode == "connecting-server":
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        if ":" in host:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, port))
        print("LISTENING", flush=True)
        data, frm = s.recvfrom(65536)
        s.connect(frm)
        local, peer = s.getsockname(), s.getpeername()
        print("CONNECTED local=%s:%d peer=%s:%d" % (local[0], local[1], peer[0], peer[1]), flush=True)
        s.send(data)
        for _ in range(100000):
            s.send(s.recv(65536))
        return 0
    target = addr(host, port)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    if mode == "sendto":
        try:
            print("SENT %d" % s.sendto(payload(int(argv[4])), target))
        except OSError as e:
            print("ERROR errno=%s" % errno.errorcode.get(e.errno, e.errno))
        return 0
    if mode == "connected":
        s.connect(target)
        print("PEER %s:%d" % s.getpeername())
        print("LOCAL %s:%d" % s.getsockname())
    for size in map(int, argv[4:]):
        data = payload(size)
        if mode == "connected":
            s.send(data)
            reply, frm = s.recv(65536), target
        else:
            s.sendto(data, target)
            reply, frm = s.recvfrom(65536)
        if reply != data:
            print("MISMATCH size=%d got=%d" % (size, len(reply)))
            return 3
        print("OK size=%d from=%s:%d" % (size, frm[0], frm[1]), flush=True)
    if mode == "connected":
        # connect(AF_UNSPEC) dissolves the association (Python has no API for it: use libc).
        libc = ctypes.CDLL(None, use_errno=True)
        unspec = struct.pack("H14x", socket.AF_UNSPEC)
        rc = libc.connect(s.fileno(), ctypes.c_char_p(unspec), len(unspec))
        try:
            s.getpeername()
            print("DISSOLVED rc=%d errno=none" % rc)
        except OSError as e:
            print("DISSOLVED rc=%d errno=%s" % (rc, errno.errorcode.get(e.errno, e.errno)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
