# Sends BYTES deterministic pseudo-random bytes to VIP:PORT, half-closes, reads the answer to EOF.
# Prints "SENT <sha256> <bytes>" and "REPLY <answer>"; any socket error is an exception (exit 1).
import hashlib, random, socket, sys

host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=600)
h, r, left = hashlib.sha256(), random.Random(4), total
while left:
    chunk = r.randbytes(min(1 << 20, left))
    s.sendall(chunk)
    h.update(chunk)
    left -= len(chunk)
print(f"SENT {h.hexdigest()} {total}", flush=True)
s.shutdown(socket.SHUT_WR)
reply = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    reply += d
try:
    print("REPLY " + reply.decode().strip(), flush=True)
except UnicodeDecodeError:
    print(f"REPLY {len(reply)} bytes", flush=True)
