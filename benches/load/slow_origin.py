#!/usr/bin/env python3
"""A slow origin for the time-to-first-byte measurement.

    slow_origin.py PORT PAGE [DELAY_S]

Listens on 127.0.0.1:PORT. For every request it sends the response head
(text/html, chunked), the first 2 KiB of PAGE as one chunk, waits DELAY_S seconds
(default 2), then the rest and the last chunk. Keeps connections alive. To a request
that accepts gzip the page goes gzip-compressed (level 6) as it streams: the first 2 KiB
end with a sync flush, so they can be decoded before the rest arrives.
"""

import asyncio
import sys
import zlib

FIRST = 2048


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(reader, writer, page: bytes, delay: float):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")  # requests carry no body here
            if not head:
                break
            close = b"connection: close" in head.lower()
            gzip = b"gzip" in b"".join(l for l in head.lower().split(b"\r\n") if l.startswith(b"accept-encoding:"))
            writer.write(
                b"HTTP/1.1 200 OK\r\n"
                b"Content-Type: text/html; charset=utf-8\r\n"
                b"Transfer-Encoding: chunked\r\n"
                + (b"Content-Encoding: gzip\r\n" if gzip else b"")
                + b"Cache-Control: no-store\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n"
            )
            first, rest = page[:FIRST], page[FIRST:]
            if gzip:
                z = zlib.compressobj(6, zlib.DEFLATED, 31)
                first = z.compress(first) + z.flush(zlib.Z_SYNC_FLUSH)
                rest = z.compress(rest) + z.flush()
            writer.write(chunk(first))
            await writer.drain()
            await asyncio.sleep(delay)
            writer.write(chunk(rest) + b"0\r\n\r\n")
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    with open(path, "rb") as f:
        page = f.read()
    assert b"<!DOCTYPE html>" in page[:FIRST] and b"<html" in page[:FIRST]
    server = await asyncio.start_server(lambda r, w: serve(r, w, page, delay), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
