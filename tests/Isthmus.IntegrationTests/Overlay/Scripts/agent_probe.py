#!/usr/bin/env python3
"""Speaks the shim <-> agent control protocol directly (no preload shim), to test the agent's side of it.

  agent_probe.py SOCKET route VIP PORT          -> "ERRNO n"
  agent_probe.py SOCKET name NAME               -> "ERRNO n VIP CANONICAL"
  agent_probe.py SOCKET addr VIP                -> "ERRNO n CANONICAL"
  agent_probe.py SOCKET udp OWN_IMAGE VIP PORT IMAGE_OF_VIP SIZE...
        UDP_ROUTE, then from a socket bound to OWN_IMAGE:0 send one datagram per SIZE to IMAGE_OF_VIP:PORT
        and expect the same bytes back from exactly that address: "OK size=N from=IP:PORT" per datagram.
"""
import socket
import struct
import sys

REQUEST_MAGIC, RESPONSE_MAGIC = 0x4D485349, 0x52485349


def rpc(path, op, dst_ip="0.0.0.0", dst_port=0, payload=b""):
    req = struct.pack("<IHHI", REQUEST_MAGIC, 1, op, 0) + socket.inet_aton(dst_ip) + struct.pack(">HH", dst_port, 0)
    req += b"\0" * 4 + b"\0" * 8 + payload
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(10)
        s.connect(path)
        s.send(req)
        resp = s.recv(1024)
    magic, err = struct.unpack_from("<Ii", resp)
    assert magic == RESPONSE_MAGIC, hex(magic)
    ip = socket.inet_ntoa(resp[8:12])
    (name_len,) = struct.unpack_from("<H", resp, 14)
    return err, ip, resp[16:16 + name_len].decode()


def main(argv):
    path, what = argv[1], argv[2]
    if what == "route":
        print("ERRNO %d" % rpc(path, 3, argv[3], int(argv[4]))[0])
    elif what == "name":
        err, ip, name = rpc(path, 4, payload=argv[3].encode())
        print("ERRNO %d %s %s" % (err, ip, name))
    elif what == "addr":
        err, _, name = rpc(path, 5, argv[3])
        print("ERRNO %d %s" % (err, name))
    elif what == "udp":
        own_image, vip, port, image = argv[3], argv[4], int(argv[5]), argv[6]
        err = rpc(path, 3, vip, port)[0]
        print("ROUTE ERRNO %d" % err)
        if err:
            return 2
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((own_image, 0))
        u.settimeout(5)
        print("LOCAL %s:%d" % u.getsockname())
        for size in map(int, argv[7:]):
            data = bytes((i * 7 + size) % 251 for i in range(size))
            u.sendto(data, (image, port))
            try:
                reply, frm = u.recvfrom(65536)
            except socket.timeout:
                print("TIMEOUT size=%d" % size)
                return 3
            if reply != data or frm != (image, port):
                print("MISMATCH size=%d got=%d from=%s:%d" % (size, len(reply), frm[0], frm[1]))
                return 4
            print("OK size=%d from=%s:%d" % (size, frm[0], frm[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
