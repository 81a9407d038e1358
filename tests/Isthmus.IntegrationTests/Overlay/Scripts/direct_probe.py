#!/usr/bin/env python3
"""Addresses, errno and bytes of one overlay TCP stream, for the direct-path tests.

direct_probe.py serve HOST PORT   (serve6: an AF_INET6 dual-stack listener, HOST "::")
    Echo server (thread per connection); prints LISTENING, then for every connection
    "ACCEPTED peer=IP:PORT local=IP:PORT getpeername=IP:PORT" (accept's address, getsockname, getpeername).
direct_probe.py echo HOST PORT BYTES MODE
    MODE blocking or nonblocking (a non-blocking connect: EINPROGRESS, poll for POLLOUT, SO_ERROR).
    Connects, prints "CONNECTED local=IP:PORT peer=IP:PORT", sends BYTES random bytes while reading the
    echo, half-closes, and prints "OK <bytes> <sha256 sent> <sha256 received>", or "ERROR errno=NAME".
"""
import errno
import hashlib
import os
import select
import socket
import sys
import threading

# print() writes the text and the newline separately; one lock keeps lines from several threads whole.
_out = threading.Lock()


def say(line):
    with _out:
        print(line, flush=True)

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


def fmt(addr):
    return f"{addr[0]}:{addr[1]}"


if mode in ("serve", "serve6"):
    if mode == "serve6":
        # Dual-stack, as iperf3 -s and many servers listen: peers appear as ::ffff:VIP.
        srv = socket.socket(socket.AF_INET6)
        srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    else:
        srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(64)
    print("LISTENING", flush=True)

    def serve(conn, peer):
        say(f"ACCEPTED peer={fmt(peer)} local={fmt(conn.getsockname())} getpeername={fmt(conn.getpeername())}")
        with conn:
            while True:
                data = conn.recv(262144)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    for _ in range(1000):
        conn, peer = srv.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
    sys.exit(0)

total, how = int(sys.argv[4]), sys.argv[5]
s = socket.socket()
try:
    if how == "nonblocking":
        s.setblocking(False)
        rc = s.connect_ex((host, port))
        if rc != errno.EINPROGRESS:
            raise OSError(rc, os.strerror(rc))
        select.select([], [s], [], 30)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        s.setblocking(True)
    else:
        s.connect((host, port))
except OSError as e:
    print(f"ERROR errno={errno.errorcode.get(e.errno, e.errno)}", flush=True)
    sys.exit(0)
print(f"CONNECTED local={fmt(s.getsockname())} peer={fmt(s.getpeername())}", flush=True)
payload = os.urandom(total)
received = hashlib.sha256()
got = 0


def send():
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)


sender = threading.Thread(target=send)
sender.start()
try:
    while True:
        data = s.recv(262144)
        if not data:
            break
        received.update(data)
        got += len(data)
except OSError as e:
    print(f"ERROR errno={errno.errorcode.get(e.errno, e.errno)}", flush=True)
    sys.exit(0)
sender.join()
print(f"OK {got} {hashlib.sha256(payload).hexdigest()} {received.hexdigest()}", flush=True)
