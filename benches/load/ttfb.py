#!/usr/bin/env python3
"""Time to first byte through a proxy, from a plain socket client.

    ttfb.py LABEL URL [COUNT]

Sends COUNT (default 3) sequential GETs on fresh connections and prints one JSON line:
the medians, in ms, of the time from sending the request to the end of the response
head (`head_ms`), to the first byte of the body after it (`first_byte_ms`; for a chunked
body that is the first chunk's size line, which travels with its data), and to the end
of the response (`total_ms`), plus whether the body held the injected element.
"""

import json
import socket
import statistics
import sys
import time
from urllib.parse import urlsplit


def one(host, port, path):
    with socket.create_connection((host, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        start = time.perf_counter()
        s.sendall(request.encode())
        data, head_at, first_at = b"", None, None
        while True:
            block = s.recv(65536)
            now = time.perf_counter()
            if not block:
                break
            data += block
            if head_at is None and b"\r\n\r\n" in data:
                head_at = now
            if head_at is not None and first_at is None and len(data) > data.index(b"\r\n\r\n") + 4:
                first_at = now
        end = time.perf_counter()
    ms = lambda t: round((t - start) * 1000, 1) if t else None
    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return ms(head_at), ms(first_at), ms(end), status, b"<invent-assistant" in data


def main():
    label, url = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    u = urlsplit(url)
    runs = [one(u.hostname, u.port or 80, u.path or "/") for _ in range(count)]
    med = lambda xs: round(statistics.median(xs), 1) if all(x is not None for x in xs) else None
    print(json.dumps({
        "target": label,
        "head_ms": med([r[0] for r in runs]),
        "first_byte_ms": med([r[1] for r in runs]),
        "total_ms": med([r[2] for r in runs]),
        "status": runs[0][3],
        "injected": all(r[4] for r in runs),
        "samples_first_byte_ms": [r[1] for r in runs],
    }))


if __name__ == "__main__":
    main()
