# SPDX-License-Identifier: Apache-2.0
# MicroPython: fetch one file over HTTPS with MicroPython's own TLS module (Debian 13's build has
# `tls`, the C core that upstream's `ssl` wraps; both drive Mbed TLS through BIO callbacks around a
# MicroPython socket object). The body goes to OUT, the HTTP status line to stdout.
# usage: micropython fetch.py HOST PORT PATH CA_FILE OUT
import sys
import socket
import tls

host, port, path, ca, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = tls.CERT_REQUIRED
with open(ca, "rb") as f:
    ctx.load_verify_locations(f.read())
s = socket.socket()
s.connect(socket.getaddrinfo(host, port)[0][-1])
ss = ctx.wrap_socket(s, server_hostname="localhost")
ss.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = bytearray()
while True:
    d = ss.read(16384)
    if not d:
        break
    data.extend(d)
ss.close()
i = data.find(b"\r\n\r\n")
if i < 0:
    print("no HTTP header end in", len(data), "bytes")
    sys.exit(1)
print(str(bytes(data[: data.find(b"\r\n")]), "ascii"))
with open(out, "wb") as f:
    f.write(data[i + 4 :])
