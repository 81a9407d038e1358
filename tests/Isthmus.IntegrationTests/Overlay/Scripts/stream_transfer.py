#!/usr/bin/env python3
"""A known-checksum TCP stream, for checking that a transfer survives whatever else a test does.

stream_transfer.py sink HOST PORT
    Accepts one connection, reads to the end, prints "RECEIVED <bytes> <sha256>".
stream_transfer.py source HOST PORT MIN_BYTES STOP_FILE MBPS
    Sends 1 MiB blocks (each distinct: a counter in its first 8 bytes) at most MBPS MB/s, until it has sent
    MIN_BYTES and STOP_FILE exists (or 20 GB, a bound), then half-closes, waits for the sink to close, and
    prints "SENT <bytes> <sha256>".
echo HOST PORT: an echo server (thread per connection, 1000 connections at most); prints LISTENING.
ping HOST PORT TEXT: sends TEXT, half-closes, prints what came back.
"""
import hashlib
import os
import random
import socket
import struct
import sys
import threading
import time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "sink":
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    print("LISTENING", flush=True)
    conn, _ = srv.accept()
    digest, total = hashlib.sha256(), 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        digest.update(data)
        total += len(data)
    conn.close()
    print("RECEIVED", total, digest.hexdigest(), flush=True)
elif mode == "source":
    min_bytes, stop_file, mbps = int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
    block = bytearray(random.Random(42).randbytes(1 << 20))
    s = socket.create_connection((host, port), timeout=60)
    digest, total, start = hashlib.sha256(), 0, time.monotonic()
    while total < 20 << 30 and not (total >= min_bytes and os.path.exists(stop_file)):
        struct.pack_into(">Q", block, 0, total)
        s.sendall(block)
        digest.update(block)
        total += len(block)
        ahead = total / (mbps * 1e6) - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(120)
    while s.recv(65536):
        pass
    s.close()
    print("SENT", total, digest.hexdigest(), flush=True)
elif mode == "echo":
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(64)
    print("LISTENING", flush=True)

    def serve(c):
        with c:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                c.sendall(data)

    for _ in range(1000):
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
elif mode == "ping":
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(sys.argv[4].encode())
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        got += data
    print(got.decode(), flush=True)
