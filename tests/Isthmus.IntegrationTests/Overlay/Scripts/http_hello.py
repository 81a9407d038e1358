#!/usr/bin/env python3
"""A one-page HTTP server for SOCKS tests: http_hello.py ADDR PORT TEXT. Logs each client address."""
import http.server
import sys

text = sys.argv[3].encode() + b"\n"


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, fmt, *args):
        print("CLIENT %s:%d %s" % (self.client_address[0], self.client_address[1], fmt % args), flush=True)


server = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Hello)
print("LISTENING", flush=True)
server.serve_forever()
