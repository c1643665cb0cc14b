#!/usr/bin/env python3
"""TCP bulk transfer with SHA-256 on both ends, for the interop tests.

  tcp.py recv PORT            -> prints "<bytes> <sha256>" after EOF
  tcp.py send HOST PORT MIB   -> sends MIB MiB of random data, prints the same
"""
import hashlib
import os
import socket
import sys


def recv(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(1)
    server.settimeout(120)
    conn, _ = server.accept()
    conn.settimeout(120)
    digest, total = hashlib.sha256(), 0
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
    print(total, digest.hexdigest(), flush=True)


def send(host, port, mib):
    conn = socket.create_connection((host, port), timeout=30)
    conn.settimeout(120)
    digest, total = hashlib.sha256(), 0
    block = os.urandom(1 << 20)
    for i in range(mib):
        # A different megabyte each time, cheaply: rotate the random block.
        chunk = block[i % 4096:] + block[: i % 4096]
        conn.sendall(chunk)
        digest.update(chunk)
        total += len(chunk)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)
    conn.close()
    print(total, digest.hexdigest(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(int(sys.argv[2]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
