# Opens COUNT connections to an echo server at VIP:PORT one after another: each sends 16 known bytes, reads
# them back and closes. Prints "CONNECTED <ok> <failed> <seconds>" (failures counted, not fatal).
import socket, sys, time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = failed = 0
start = time.monotonic()
for i in range(count):
    payload = f"{i:016d}".encode()
    try:
        with socket.create_connection((host, port), timeout=30) as s:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                d = s.recv(len(payload) - len(got))
                if not d:
                    break
                got += d
        if got == payload:
            ok += 1
        else:
            failed += 1
    except OSError:
        failed += 1
print(f"CONNECTED {ok} {failed} {time.monotonic() - start:.3f}", flush=True)
