#!/usr/bin/env python3
"""UDP echo server, not interposed: udp_echo.py ADDR PORT. Prints LISTENING, then FROM ip:port size=N per datagram."""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("LISTENING", flush=True)
for _ in range(10000):
    data, frm = s.recvfrom(65536)
    print("FROM %s:%d size=%d" % (frm[0], frm[1], len(data)), flush=True)
    s.sendto(data, frm)
