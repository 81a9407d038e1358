# Probes a path through the overlay; every mode first connects with retries for up to 60 s (a router that
# just restarted needs its nodes to re-enrol).
#   ping VIP PORT COUNT     against wan_echo.py: COUNT 16-byte round trips on one connection, after 20 warm-up
#                           ones (retried until they work); prints "RTT <median> <p10> <p90>" in microseconds.
#   send VIP PORT BYTES     against wan_sink.py: sends BYTES known bytes, half-closes, reads the answer; prints
#                           "SENT <sha256> <bytes> <seconds>" (first byte to answer) and "REPLY <answer>".
#   udp VIP PORT COUNT      against udp_echo.py: COUNT datagrams, one at a time, 0.5 s for each answer;
#                           prints "UDP <sent> <answered>".
import hashlib, random, socket, sys, time

mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def connect():
    deadline = time.monotonic() + 60
    while True:
        try:
            return socket.create_connection((host, port), timeout=600)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

def warm_up():
    # A connection may open and then be reset while the nodes re-enrol: retry until 20 round trips work.
    deadline = time.monotonic() + 60
    while True:
        s = connect()
        try:
            for _ in range(20):
                s.sendall(b"w" * 16)
                got = b""
                while len(got) < 16:
                    d = s.recv(64)
                    if not d:
                        raise ConnectionResetError("closed")
                    got += d
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

if mode == "ping":
    s = warm_up()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg, times = b"p" * 16, []
    for i in range(n):
        t = time.perf_counter()
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(64)
            if not d:
                raise SystemExit("echo server closed")
            got += d
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    print(f"RTT {times[len(times) // 2]:.0f} {times[len(times) // 10]:.0f} {times[len(times) * 9 // 10]:.0f}", flush=True)
elif mode == "send":
    s = connect()
    h, r, left = hashlib.sha256(), random.Random(4), n
    start = time.monotonic()
    while left:
        chunk = r.randbytes(min(1 << 20, left))
        s.sendall(chunk)
        h.update(chunk)
        left -= len(chunk)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        reply += d
    print(f"SENT {h.hexdigest()} {n} {time.monotonic() - start:.3f}", flush=True)
    print("REPLY " + reply.decode().strip(), flush=True)
elif mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    # The path may still be coming up: wait for a first answer (bounded) before counting.
    deadline = time.monotonic() + 60
    while True:
        s.sendto(b"warm", (host, port))
        try:
            s.recvfrom(2048)
            break
        except socket.timeout:
            if time.monotonic() > deadline:
                raise SystemExit("no UDP answer within 60 s")
    answered = 0
    for i in range(n):
        s.sendto(b"d%05d" % i, (host, port))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                if data == b"d%05d" % i:
                    answered += 1
                    break
        except socket.timeout:
            pass
    print(f"UDP {n} {answered}", flush=True)
