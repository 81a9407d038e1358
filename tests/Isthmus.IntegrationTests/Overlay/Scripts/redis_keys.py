# A deterministic Redis writer and checker (raw RESP, no client library).
#   write HOST PORT COUNT  SETs w:0 .. w:COUNT-1 to sha256(i), 100 per pipelined batch, 20 ms apart, so the
#                          writes span tens of seconds; every reply must be +OK. Prints "WROTE n" every 1,000
#                          and "DONE COUNT"; any error is an exception (exit 1).
#   check HOST PORT COUNT BENCHKEYS
#                          prints "DBSIZE n", "MATCH m" (w: keys whose value is right) and "BENCH k" (how many
#                          of redis-benchmark's keys key:000000000000 .. key:BENCHKEYS-1 exist; its values are random).
import hashlib, socket, sys, time

def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

class Replies:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""
    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("server closed the connection")
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l
    def exact(self, n):
        while len(self.buf) < n + 2:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("server closed the connection")
            self.buf += d
        v, self.buf = self.buf[:n], self.buf[n + 2:]
        return v
    def reply(self):
        l = self.line()
        kind, rest = l[:1], l[1:]
        if kind == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b":":
            return int(rest)
        return rest

def value(i):
    return hashlib.sha256(str(i).encode()).hexdigest().encode()

mode, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port), timeout=300)
r = Replies(s)
if mode == "write":
    for start in range(0, count, 100):
        batch = range(start, min(start + 100, count))
        s.sendall(b"".join(command("SET", f"w:{i}", value(i)) for i in batch))
        for _ in batch:
            if r.reply() != b"OK":
                raise RuntimeError("SET not OK")
        if (start + 100) % 1000 == 0:
            print(f"WROTE {start + 100}", flush=True)
        time.sleep(0.02)
    print(f"DONE {count}", flush=True)
else:
    bench = int(sys.argv[5])
    s.sendall(command("DBSIZE"))
    print(f"DBSIZE {r.reply()}", flush=True)
    match = 0
    for start in range(0, count, 1000):
        batch = range(start, min(start + 1000, count))
        s.sendall(b"".join(command("GET", f"w:{i}") for i in batch))
        match += sum(1 for i in batch if r.reply() == value(i))
    print(f"MATCH {match}", flush=True)
    s.sendall(command("EXISTS", *("key:%012d" % i for i in range(bench))))
    print(f"BENCH {r.reply()}", flush=True)
