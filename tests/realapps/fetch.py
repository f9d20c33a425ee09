# SPDX-License-Identifier: Apache-2.0
# MicroPython: one HTTPS request with MicroPython's own TLS module (Debian 13's build has `tls`,
# the C core that upstream's `ssl` wraps; both drive Mbed TLS through BIO callbacks around a
# MicroPython socket object). A GET of PATH, or with UPLOAD a POST of that file's bytes; the
# response body goes to OUT as it arrives, the HTTP status line to stdout. TIMEOUT: the socket's
# settimeout() in seconds (MicroPython sets SO_RCVTIMEO and SO_SNDTIMEO).
# usage: micropython fetch.py HOST PORT PATH CA_FILE OUT [UPLOAD|- [TIMEOUT]]
import sys
import os
import socket
import tls

CHUNK = 16384
host, port, path, ca, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
upload = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] != "-" else None
timeout = float(sys.argv[7]) if len(sys.argv) > 7 else None
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = tls.CERT_REQUIRED
with open(ca, "rb") as f:
    ctx.load_verify_locations(f.read())
s = socket.socket()
s.settimeout(timeout)
s.connect(socket.getaddrinfo(host, port)[0][-1])
ss = ctx.wrap_socket(s, server_hostname="localhost")


def write_all(b):
    # (a stream write may take part of the buffer)
    m = memoryview(b)
    while m:
        m = m[ss.write(m) :]


head = "POST " if upload else "GET "
head += path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
if upload:
    head += "Content-Type: application/octet-stream\r\n"
    head += "Content-Length: " + str(os.stat(upload)[6]) + "\r\n"
write_all((head + "\r\n").encode())
if upload:
    with open(upload, "rb") as f:
        while True:
            d = f.read(CHUNK)
            if not d:
                break
            write_all(d)
# The header, then the body straight to OUT (a 64 MiB body would not fit MicroPython's heap).
data = b""
while b"\r\n\r\n" not in data:
    d = ss.read(CHUNK)
    if not d:
        print("no HTTP header end in", len(data), "bytes")
        sys.exit(1)
    data += d
i = data.find(b"\r\n\r\n")
print(str(data[: data.find(b"\r\n")], "ascii"))
with open(out, "wb") as f:
    f.write(data[i + 4 :])
    while True:
        d = ss.read(CHUNK)
        if not d:
            break
        f.write(d)
ss.close()
