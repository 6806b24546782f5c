"""One HTTP request sent byte for byte as written, so no client normalises its path."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """Send `GET target` to the server at `base`; return the status and the raw body."""
    address = urlsplit(base)
    request = (f"GET {target} HTTP/1.1\r\nHost: {address.netloc}\r\n"
               "Connection: close\r\n\r\n").encode("latin-1")
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
