#!/usr/bin/env python3
"""Small programs for the communication-domain tests, run under `isthmus run` (the shim interposes them).

  domain_probe.py tcp HOST PORT             connect, send "hello", read the echo: "OK" or "ERROR errno=NAME"
  domain_probe.py udp HOST PORT             one datagram, wait 2 s for the echo: "OK", "TIMEOUT" or "ERROR errno=NAME"
  domain_probe.py resolve NAME              gethostbyname: "RESOLVED ip" or "NOTFOUND"
  domain_probe.py tcp-hold HOST PORT        one connection, a line every 200 ms (at most 20 minutes): "ECHO n" per
                                            echo, then "ERROR errno=NAME" or "CLOSED" when the connection ends
  domain_probe.py udp-loop HOST PORT        one socket, a datagram every 200 ms (at most 20 minutes): "REPLY n" or "MISS n"
  domain_probe.py tcp-until HOST PORT       connects every 50 ms (at most 60 s) until an echo works: "FAIL unixtime errno=NAME"
                                            per failure (printed once per errno), then "OK unixtime"
  domain_probe.py udp-until HOST PORT       the same with one datagram and a 200 ms wait for its echo
  domain_probe.py tcp-echo HOST PORT        an echo server (each connection echoes what it reads, as it reads it):
                                            prints LISTENING, then "ACCEPT ip:port" per connection
  domain_probe.py relay HOST PORT TO_HOST TO_PORT
                                            a TCP proxy as a user would write it: listens on HOST:PORT, prints
                                            LISTENING, and pipes each connection to TO_HOST:TO_PORT
HOST may be a name; the shim resolves it through the agent.
"""
import errno
import select
import socket
import sys
import threading
import time


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def connect(host, port):
    """A blocking connect (no timeout), so that the program gets the overlay's errno itself; a timeout
    would make the socket non-blocking, and a non-blocking connect to loopback completes before the far
    end is known (the failure then arrives as ECONNRESET, see docs/ARCHITECTURE.md)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.connect((host, port))
    except OSError:
        s.close()
        raise
    s.settimeout(20)
    return s


def tcp(host, port):
    try:
        s = connect(host, port)
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print("OK" if data == b"hello" else "MISMATCH %r" % data)
    except socket.gaierror:
        print("ERROR errno=NOTFOUND")
    except OSError as e:
        print("ERROR errno=%s" % name(e))


def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(b"ping", (host, port))
        data, _ = s.recvfrom(65536)
        print("OK" if data == b"ping" else "MISMATCH")
    except socket.timeout:
        print("TIMEOUT")
    except socket.gaierror:
        print("ERROR errno=NOTFOUND")
    except OSError as e:
        print("ERROR errno=%s" % name(e))


def resolve(host):
    try:
        print("RESOLVED %s" % socket.gethostbyname(host))
    except OSError:
        print("NOTFOUND")


def tcp_hold(host, port):
    s = connect(host, port)
    print("CONNECTED", flush=True)
    deadline = time.time() + 1200
    n = 0
    try:
        while time.time() < deadline:
            line = b"line %d\n" % n
            s.sendall(line)
            got = b""
            while len(got) < len(line):
                chunk = s.recv(len(line) - len(got))
                if not chunk:
                    print("CLOSED", flush=True)
                    return
                got += chunk
            print("ECHO %d" % n, flush=True)
            n += 1
            time.sleep(0.2)
    except OSError as e:
        print("ERROR errno=%s" % name(e), flush=True)


def udp_loop(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    deadline = time.time() + 1200
    n = 0
    while time.time() < deadline:
        try:
            s.sendto(b"n%d" % n, (host, port))
            data, _ = s.recvfrom(65536)
            print("REPLY %d" % n, flush=True)
        except socket.timeout:
            print("MISS %d" % n, flush=True)
        except OSError as e:
            print("ERROR %d errno=%s" % (n, name(e)), flush=True)
        n += 1
        time.sleep(0.2)


def until(once, host, port):
    deadline = time.time() + 60
    seen = set()
    while time.time() < deadline:
        result = once(host, port)
        now = time.time()
        if result == "OK":
            print("OK %.3f" % now, flush=True)
            return 0
        if result not in seen:
            seen.add(result)
            print("FAIL %.3f errno=%s" % (now, result), flush=True)
        time.sleep(0.05)
    print("GAVE_UP", flush=True)
    return 1


def tcp_once(host, port):
    try:
        s = connect(host, port)
        s.sendall(b"x")
        ok = s.recv(1) == b"x"
        s.close()
        return "OK" if ok else "MISMATCH"
    except socket.gaierror:
        return "NOTFOUND"
    except OSError as e:
        return name(e)


def udp_once(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        s.sendto(b"u", (host, port))
        return "OK" if s.recvfrom(65536)[0] == b"u" else "MISMATCH"
    except socket.timeout:
        return "TIMEOUT"
    except socket.gaierror:
        return "NOTFOUND"
    except OSError as e:
        return name(e)
    finally:
        s.close()


def pipe(a, b):
    try:
        while True:
            r, _, _ = select.select([a, b], [], [], 60)
            if not r:
                continue
            for src in r:
                dst = b if src is a else a
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    rest = dst.recv(65536)
                    while rest:
                        src.sendall(rest)
                        rest = dst.recv(65536)
                    return
                dst.sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def echo(c):
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            c.sendall(data)
    except OSError:
        pass
    finally:
        c.close()


def tcp_echo(host, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(16)
    print("LISTENING", flush=True)
    for _ in range(1000):
        c, peer = srv.accept()
        print("ACCEPT %s:%d" % peer, flush=True)
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def relay(host, port, to_host, to_port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(16)
    print("LISTENING", flush=True)
    for _ in range(1000):
        c, peer = srv.accept()
        print("ACCEPT %s:%d" % peer, flush=True)
        try:
            up = connect(to_host, to_port)
        except OSError as e:
            print("UPSTREAM_ERROR errno=%s" % name(e), flush=True)
            c.close()
            continue
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()


def main(argv):
    mode = argv[1]
    if mode == "resolve":
        resolve(argv[2])
    elif mode == "tcp":
        tcp(argv[2], int(argv[3]))
    elif mode == "udp":
        udp(argv[2], int(argv[3]))
    elif mode == "tcp-hold":
        tcp_hold(argv[2], int(argv[3]))
    elif mode == "udp-loop":
        udp_loop(argv[2], int(argv[3]))
    elif mode == "tcp-until":
        return until(tcp_once, argv[2], int(argv[3]))
    elif mode == "udp-until":
        return until(udp_once, argv[2], int(argv[3]))
    elif mode == "tcp-echo":
        tcp_echo(argv[2], int(argv[3]))
    elif mode == "relay":
        relay(argv[2], int(argv[3]), argv[4], int(argv[5]))
    else:
        print("unknown mode %s" % mode)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
