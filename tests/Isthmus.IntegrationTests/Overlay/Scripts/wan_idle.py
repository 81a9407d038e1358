# Opens COUNT connections to VIP:PORT and keeps them idle; on a line "CHECK" on stdin sends one byte on each
# and expects it echoed; prints "OPEN n", then "CHECKED ok/failed counts". Any error is counted, not fatal.
import socket, sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns = []
for i in range(count):
    conns.append(socket.create_connection((host, port), timeout=60))
print(f"OPEN {len(conns)}", flush=True)
for line in sys.stdin:
    if line.strip() != "CHECK":
        continue
    ok = failed = 0
    for c in conns:
        try:
            c.sendall(b"x")
            if c.recv(1) == b"x":
                ok += 1
            else:
                failed += 1
        except OSError:
            failed += 1
    print(f"CHECKED {ok} {failed}", flush=True)
