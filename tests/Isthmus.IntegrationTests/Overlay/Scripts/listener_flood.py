#!/usr/bin/env python3
"""Abuses one router port, bounded in count and time, and reports what the router did (one JSON line).

listener_flood.py HOST PORT --frames N --half-open N [--control] [--slow N] [--deadline S] [--seed N]

- half-open: N connections that never send a byte, held open until the router closes them (it must: a
  deadline for the whole handshake, and a bound on pending handshakes that sheds the oldest).
- frames: N malformed frames, each on a connection of its own (the router closes after the first error):
  random garbage, truncated leg headers, structurally valid leg headers with bad MACs or bad fields,
  oversized data after a header, bad TLS records, and (--control, for a LAN port) bogus control frames
  inside a real TLS 1.3 channel: 4 GiB and 4 MiB lengths, truncation, invalid JSON, wrong messages.
- slow: N slow-loris senders trickling a leg header one byte every 0.5 s; the router must cut them off.

Prints READY once the half-open connections are open (so a test can check that legitimate traffic still
works), then one JSON object with the counts and outcomes. Every connection has a timeout; the whole run
ends by --deadline.
"""
import argparse
import json
import os
import random
import resource
import select
import socket
import ssl
import struct
import sys
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("--frames", type=int, default=5000)
p.add_argument("--half-open", type=int, default=1000)
p.add_argument("--control", action="store_true")
p.add_argument("--slow", type=int, default=10)
p.add_argument("--threads", type=int, default=8)
p.add_argument("--deadline", type=float, default=180.0)
p.add_argument("--seed", type=int, default=1)
args = p.parse_args()
target = (args.host, args.port)
t0 = time.monotonic()
end_by = t0 + args.deadline
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

lock = threading.Lock()
outcomes = {}  # kind -> {"closed": n, "reply": n, "hung": n, "refused": n}


def count(kind, outcome):
    with lock:
        outcomes.setdefault(kind, {}).setdefault(outcome, 0)
        outcomes[kind][outcome] += 1


def wait_closed(s, timeout):
    """Reads until the router closes (EOF or reset); 'reply' if it answered first, 'hung' if it never closed."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return "reply" if got else "closed"
            got += data
            if len(got) > 1 << 20:
                return "hung"  # a router never streams to an offender
    except (ConnectionResetError, BrokenPipeError):
        return "reply" if got else "closed"
    except ssl.SSLError:
        return "closed"
    except socket.timeout:
        return "hung"
    except OSError:
        return "closed"


def leg_header(rng, kind=1, version=1, magic=b"ISTL", fresh=True):
    ts = int(time.time() * 1000) if fresh else rng.randrange(0, 1 << 63)
    body = magic + bytes([version, kind]) + struct.pack(">H", 0) + rng.randbytes(16)
    body += struct.pack(">IHIH", rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(16))
    body += struct.pack(">qQ", ts, rng.getrandbits(64)) + b"\0" * 4
    return body + rng.randbytes(32) + b"\0" * 8  # a MAC nobody computed, padding


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


CTX = tls_context()


def control_frame(rng):
    choice = rng.randrange(6)
    if choice == 0:
        return "control-4GiB-length", struct.pack(">I", 0xFFFFFFFF) + rng.randbytes(16)
    if choice == 1:
        return "control-4MiB-truncated", struct.pack(">I", 4 << 20) + rng.randbytes(64)
    if choice == 2:
        junk = rng.randbytes(rng.randrange(1, 200))
        return "control-not-json", struct.pack(">I", len(junk)) + junk
    if choice == 3:
        msg = json.dumps({"type": "ping"}).encode()
        return "control-ping-before-enrol", struct.pack(">I", len(msg)) + msg
    if choice == 4:
        msg = json.dumps({"type": "enrol", "name": "x" * rng.randrange(1, 80), "spki": "!!", "proof": "AA==", "signature": "AA==", "data": "1"}).encode()
        return "control-bad-enrol", struct.pack(">I", len(msg)) + msg
    return "control-zero-length", struct.pack(">I", 0)


def one_frame(rng):
    choices = ["garbage", "truncated-header", "bad-mac", "bad-fields", "header-then-junk", "bad-tls"]
    if args.control:
        choices += ["control"] * 2
    kind = rng.choice(choices)
    payload = b""
    if kind == "garbage":
        payload = rng.randbytes(rng.randrange(1, 300))
        if payload[0] in (0x16, ord("I")):
            payload = b"\x00" + payload
    elif kind == "truncated-header":
        payload = leg_header(rng)[: rng.randrange(1, 96)]
    elif kind == "bad-mac":
        payload = leg_header(rng)
    elif kind == "bad-fields":
        payload = leg_header(rng, kind=rng.choice([0, 4, 255]), version=rng.choice([0, 2, 255]), fresh=rng.random() < 0.5)
    elif kind == "header-then-junk":
        payload = leg_header(rng) + rng.randbytes(rng.randrange(1, 4096))
    elif kind == "bad-tls":
        payload = b"\x16\x03" + bytes([rng.randrange(0, 5)]) + struct.pack(">H", rng.randrange(0, 65536)) + rng.randbytes(rng.randrange(0, 400))
    try:
        raw = socket.create_connection(target, timeout=15)
    except OSError:
        count(kind, "refused")
        return
    try:
        if kind == "control":
            try:
                s = CTX.wrap_socket(raw)
            except (OSError, ssl.SSLError):
                count("control-tls", "closed")
                return
            sub, payload = control_frame(rng)
            try:
                s.settimeout(15)
                s.recv(4096)  # the challenge
                s.sendall(payload)
            except (OSError, ssl.SSLError):
                pass
            count(sub, wait_closed(s, 20))
            s.close()
            return
        try:
            raw.sendall(payload)
            raw.shutdown(socket.SHUT_WR)  # truncation: the router sees the end of what it got
        except OSError:
            pass
        count(kind, wait_closed(raw, 20))
    finally:
        raw.close()


def flood(worker, n):
    rng = random.Random(args.seed * 1000 + worker)
    for _ in range(n):
        if time.monotonic() > end_by:
            count("skipped-deadline", "skipped")
            continue
        one_frame(rng)


def slow_loris(i, result):
    rng = random.Random(args.seed * 7919 + i)
    header = leg_header(rng)
    start = time.monotonic()
    try:
        s = socket.create_connection(target, timeout=15)
    except OSError:
        result.append(("refused", 0.0))
        return
    s.setblocking(False)
    for b in header:
        if time.monotonic() > min(end_by, start + 60):
            result.append(("hung", time.monotonic() - start))
            s.close()
            return
        try:
            s.send(bytes([b]))
        except OSError:
            result.append(("closed", time.monotonic() - start))
            s.close()
            return
        poller = select.poll()  # not select(): descriptors above 1024 are the norm here
        poller.register(s, select.POLLIN)
        if poller.poll(500):
            try:
                data = s.recv(1)
            except OSError:
                data = b""
            if not data:
                result.append(("closed", time.monotonic() - start))
                s.close()
                return
    result.append(("completed-header", time.monotonic() - start))
    s.close()


# 1. Half-open connections, kept until the router closes them.
half = []
for _ in range(args.half_open):
    try:
        s = socket.create_connection(target, timeout=15)
        s.setblocking(False)
        half.append(s)
    except OSError:
        count("half-open", "refused")
print("READY", len(half), flush=True)

# 2. Slow-loris senders and the flood of malformed frames, together.
slow_results = []
slow_threads = [threading.Thread(target=slow_loris, args=(i, slow_results)) for i in range(args.slow)]
per_thread = [args.frames // args.threads + (1 if i < args.frames % args.threads else 0) for i in range(args.threads)]
flooders = [threading.Thread(target=flood, args=(i, n)) for i, n in enumerate(per_thread)]
for t in slow_threads + flooders:
    t.start()
for t in flooders:
    t.join()
flood_seconds = time.monotonic() - t0

# 3. Every half-open connection must have been closed by the router by now or soon.
open_ = {s.fileno(): s for s in half}
closed_half = 0
poller = select.poll()
for fd in open_:
    poller.register(fd, select.POLLIN)
wait_until = min(end_by, time.monotonic() + 60)
while open_ and time.monotonic() < wait_until:
    for fd, _ in poller.poll(1000):
        s = open_.get(fd)
        if s is None:
            continue
        try:
            data = s.recv(1)
        except OSError:
            data = b""
        if not data:
            closed_half += 1
            poller.unregister(fd)
            del open_[fd]
            s.close()
for s in open_.values():
    s.close()
for t in slow_threads:
    t.join(timeout=max(0.0, end_by - time.monotonic()))

frames_sent = sum(v for kind, o in outcomes.items() for k, v in o.items() if kind not in ("half-open", "skipped-deadline") and k != "refused")
print(json.dumps({
    "frames": frames_sent,
    "half_open_opened": len(half),
    "half_open_closed_by_router": closed_half,
    "half_open_still_open": len(open_),
    "slow_loris": [{"outcome": o, "seconds": round(t, 2)} for o, t in slow_results],
    "outcomes": outcomes,
    "flood_seconds": round(flood_seconds, 1),
    "total_seconds": round(time.monotonic() - t0, 1),
}), flush=True)
