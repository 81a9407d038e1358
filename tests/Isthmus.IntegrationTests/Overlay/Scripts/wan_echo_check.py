# Connects once (no retry) to an echo server at VIP:PORT, sends BYTES deterministic bytes, half-closes and
# reads the echo to EOF. Prints "ECHOED <bytes> OK" if the echo equals what was sent, else "ECHO DIFFERS";
# a failed connect or socket error prints "ERROR <errno name>" and exits 1.
import errno, random, socket, sys

host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = random.Random(7).randbytes(total)
try:
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except OSError as e:
    print(f"ERROR {errno.errorcode.get(e.errno, e.errno)} {e}", flush=True)
    sys.exit(1)
print(f"ECHOED {len(got)} OK" if bytes(got) == data else f"ECHO DIFFERS ({len(got)} bytes)", flush=True)
sys.exit(0 if bytes(got) == data else 1)
