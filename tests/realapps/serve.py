# SPDX-License-Identifier: Apache-2.0
# MicroPython as a TLS server with its own `tls` module (its BIO callbacks around a MicroPython
# socket object, as in fetch.py): accepts one connection on 127.0.0.1:PORT, reads one HTTP
# request whose body (Content-Length) goes to UPLOAD_OUT, and answers 200 with the bytes of FILE.
# usage: micropython serve.py PORT CERT KEY UPLOAD_OUT FILE
import sys
import os
import socket
import tls

CHUNK = 16384
port, cert, key, upload_out, body = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
with open(cert, "rb") as c, open(key, "rb") as k:
    ctx.load_cert_chain(c.read(), k.read())
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
ls.listen(1)
s, _ = ls.accept()
ss = ctx.wrap_socket(s, server_side=True)


def write_all(b):
    m = memoryview(b)
    while m:
        m = m[ss.write(m) :]


data = b""
while b"\r\n\r\n" not in data:
    d = ss.read(CHUNK)
    if not d:
        print("no HTTP header end in", len(data), "bytes")
        sys.exit(1)
    data += d
i = data.find(b"\r\n\r\n")
want = 0
for line in data[:i].split(b"\r\n"):
    if line.lower().startswith(b"content-length:"):
        want = int(line[15:])
got = len(data) - i - 4
with open(upload_out, "wb") as f:
    f.write(data[i + 4 :])
    while got < want:
        d = ss.read(min(CHUNK, want - got))
        if not d:
            break
        f.write(d)
        got += len(d)
size = os.stat(body)[6]
write_all(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
with open(body, "rb") as f:
    while True:
        d = f.read(CHUNK)
        if not d:
            break
        write_all(d)
ss.close()
ls.close()
print("request body", got, "of", want, "bytes; sent", size)
