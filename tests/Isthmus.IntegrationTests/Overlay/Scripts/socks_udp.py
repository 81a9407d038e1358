#!/usr/bin/env python3
"""SOCKS5 UDP ASSOCIATE client (RFC 1928), not interposed: socks_udp.py PROXY_HOST PROXY_PORT DEST_NAME PORT SIZE...

Sends one datagram per SIZE to DEST_NAME:PORT (ATYP 3, resolved by the agent) and prints
"OK size=N from=ip:port" for each echo whose payload is equal, the address being the one in the reply header.
"""
import socket
import struct
import sys

proxy = (sys.argv[1], int(sys.argv[2]))
name, port = sys.argv[3].encode(), int(sys.argv[4])
tcp = socket.create_connection(proxy, timeout=10)
tcp.sendall(b"\x05\x01\x00")
assert tcp.recv(2) == b"\x05\x00"
tcp.sendall(b"\x05\x03\x00\x01" + b"\0" * 6)
reply = tcp.recv(10)
assert reply[:2] == b"\x05\x00", reply.hex()
relay = (socket.inet_ntoa(reply[4:8]), struct.unpack(">H", reply[8:10])[0])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(5)
for size in map(int, sys.argv[5:]):
    data = bytes((i * 3 + size) % 251 for i in range(size))
    udp.sendto(b"\0\0\0\x03" + bytes([len(name)]) + name + struct.pack(">H", port) + data, relay)
    packet, _ = udp.recvfrom(65536)
    assert packet[:3] == b"\0\0\0" and packet[3] == 1, packet[:4].hex()
    frm = "%s:%d" % (socket.inet_ntoa(packet[4:8]), struct.unpack(">H", packet[8:10])[0])
    if packet[10:] != data:
        print("MISMATCH size=%d got=%d" % (size, len(packet) - 10))
        sys.exit(3)
    print("OK size=%d from=%s" % (size, frm), flush=True)
