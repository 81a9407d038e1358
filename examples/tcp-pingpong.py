#!/usr/bin/env python3
"""A two-task TCP job for a personal cluster: `srun -N2 --ntasks-per-node=1 python3 tcp-pingpong.py`.

The task on the step's first node serves; the other connects to it by node name (the overlay resolves it
to the node's VIP), measures round trips of small messages and the throughput of a bulk transfer, and
prints one line. Plain sockets, nothing Isthmus-specific: the program does not know it runs on an overlay.
"""
import os
import socket
import statistics
import subprocess
import sys
import time

PORT = 5201
ROUNDS = 200
BULK = 16 << 20


def recv_exactly(conn, n):
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(min(1 << 20, n - len(data)))
        if not chunk:
            raise ConnectionError("peer closed early")
        data += chunk
    return bytes(data)


def serve():
    with socket.create_server(("0.0.0.0", PORT)) as listener:
        listener.settimeout(60)
        conn, _ = listener.accept()
        with conn:
            for _ in range(ROUNDS + 1):  # the client's first echo tells it the server is there
                conn.sendall(recv_exactly(conn, 64))
            recv_exactly(conn, BULK)
            conn.sendall(b"k")


def connect(server, me):
    # The server task may start a moment later. Across the overlay a connect can complete before the far
    # end is known to listen (the far agent then resets the stream), so the retry covers the first echo too.
    deadline = time.monotonic() + 30
    while True:
        conn = None
        try:
            conn = socket.create_connection((server, PORT), timeout=30)
            conn.sendall(b"p" * 64)
            recv_exactly(conn, 64)
            break
        except OSError:
            if conn is not None:
                conn.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with conn:
        rtts = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            conn.sendall(b"p" * 64)
            recv_exactly(conn, 64)
            rtts.append(time.perf_counter() - start)
        start = time.perf_counter()
        conn.sendall(b"x" * BULK)
        recv_exactly(conn, 1)
        seconds = time.perf_counter() - start
        peer = conn.getpeername()[0]
    print(f"tcp {me} -> {server} ({peer}): {ROUNDS} round trips of 64 B, median {statistics.median(rtts) * 1e6:.0f} us; "
          f"{BULK >> 20} MiB in {seconds:.2f} s = {BULK * 8 / seconds / 1e6:.0f} Mbit/s")


def main():
    nodes = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_STEP_NODELIST"]],
                           check=True, capture_output=True, text=True).stdout.split()
    me = os.environ["SLURMD_NODENAME"]
    if len(nodes) != 2:
        sys.exit(f"tcp-pingpong: needs two nodes, the step has {nodes}")
    if me == nodes[0]:
        serve()
    else:
        connect(nodes[0], me)


if __name__ == "__main__":
    main()
