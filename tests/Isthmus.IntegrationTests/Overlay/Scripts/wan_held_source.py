# Connects to VIP:PORT (blocking) and prints CONNECTED; on the stdin line GO sends BYTES deterministic pseudo-random
# bytes in 1 MiB writes, printing "WROTE <bytes so far>" after each, then "SENT <sha256> <bytes>";
# half-closes and prints "REPLY <answer>". Any socket error is an exception (exit 1).
import hashlib, random, socket, sys

host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# A blocking connect (no timeout) returns only when the far program accepted: the WAN leg is then open.
s = socket.socket()
s.connect((host, port))
print("CONNECTED", flush=True)
if sys.stdin.readline().strip() != "GO":
    sys.exit(2)
h, r, sent = hashlib.sha256(), random.Random(5), 0
while sent < total:
    chunk = r.randbytes(min(1 << 20, total - sent))
    s.sendall(chunk)
    h.update(chunk)
    sent += len(chunk)
    print(f"WROTE {sent}", flush=True)
print(f"SENT {h.hexdigest()} {total}", flush=True)
s.shutdown(socket.SHUT_WR)
reply = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    reply += d
print("REPLY " + reply.decode().strip(), flush=True)
