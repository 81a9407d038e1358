"""A blocking accept under a 1 ms SIGALRM storm (interposition brief, conformance item 19).

    signal_accept.py VIP PORT

Python's handlers run on the main thread, which sits in accept(): the handler count can only grow if
the blocked accept is interrupted, the handler runs, and accept is restarted (PEP 475). A helper thread
prints "TICKS n" every 50 ms so the test can see that happen before it connects; then
"ACCEPT IP PORT" with the peer accept() reported, and the peer gets b"hi".
"""
import signal
import socket
import sys
import threading
import time

vip, port = sys.argv[1], int(sys.argv[2])
ticks = 0


def on_alarm(*_):
    global ticks
    ticks += 1


def report():
    while True:
        print(f"TICKS {ticks}", flush=True)
        time.sleep(0.05)


signal.signal(signal.SIGALRM, on_alarm)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((vip, port))
s.listen(4)
print(f"LISTENING {vip}:{port}", flush=True)
threading.Thread(target=report, daemon=True).start()
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
c, peer = s.accept()
signal.setitimer(signal.ITIMER_REAL, 0, 0)
print(f"ACCEPT {peer[0]} {peer[1]}", flush=True)
c.sendall(b"hi")
c.close()
