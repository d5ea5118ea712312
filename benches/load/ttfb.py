#!/usr/bin/env python3
"""Time to first byte through a proxy, from a plain socket client.

    ttfb.py LABEL URL [COUNT] [gzip]

Sends COUNT (default 3) sequential GETs on fresh connections and prints one JSON line:
the medians, in ms, of the time from sending the request to the end of the response
head (`head_ms`), to the first byte of the body after it (`first_byte_ms`; for a chunked
body that is the first chunk's size line, which travels with its data), and to the end
of the response (`total_ms`), plus whether the body held the injected element.

With `gzip` the request accepts gzip, the (chunked) body is decoded as it arrives, and
`first_byte_ms` is when its first KiB of page has been decoded: a compressed page's
first bytes count once the browser can read them.
"""

import json
import socket
import statistics
import sys
import time
import zlib
from urllib.parse import urlsplit


class GzipBody:
    """A chunked, gzip-compressed body decoded as its bytes arrive."""

    def __init__(self):
        self.raw, self.pos, self.page = b"", 0, b""
        self.inflate = zlib.decompressobj(wbits=31)

    def take(self, body):
        """`body`: every body byte so far (after the head)."""
        self.raw = body
        while True:
            end = self.raw.find(b"\r\n", self.pos)
            if end < 0:
                return
            size = int(self.raw[self.pos:end].split(b";")[0], 16)
            if len(self.raw) < end + 2 + size + 2:
                return
            self.page += self.inflate.decompress(self.raw[end + 2:end + 2 + size])
            self.pos = end + 2 + size + 2
            if size == 0:
                return


def one(host, port, path, coding=None):
    with socket.create_connection((host, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        accept = f"Accept-Encoding: {coding}\r\n" if coding else ""
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/html\r\n{accept}Connection: close\r\n\r\n"
        gz = GzipBody() if coding else None
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
            if head_at is None or first_at is not None:
                continue
            body = data[data.index(b"\r\n\r\n") + 4:]
            if gz:
                gz.take(body)
            if len(gz.page if gz else body) >= (1024 if gz else 1):
                first_at = now
        end = time.perf_counter()
    if gz:
        gz.take(data[data.index(b"\r\n\r\n") + 4:])
    ms = lambda t: round((t - start) * 1000, 1) if t else None
    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return ms(head_at), ms(first_at), ms(end), status, b"<invent-assistant" in (gz.page if gz else data)


def main():
    label, url = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    coding = sys.argv[4] if len(sys.argv) > 4 else None
    u = urlsplit(url)
    runs = [one(u.hostname, u.port or 80, u.path or "/", coding) for _ in range(count)]
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
