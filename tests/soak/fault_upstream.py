#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 upstream for the soak test (tests/soak/run.sh).

    fault_upstream.py PORT

Listens on 127.0.0.1:PORT. Clean answers, with keep-alive and Content-Length:

    /data...               JSON (about 20 KB)
    any path with /big     a 1 MB HTML page
    any path with /slow    the 100 KB page after 300 ms
    anything else          a 100 KB HTML page (it has a </body>: the widget goes in)

Faults, by path (the client's expected outcome, through the proxy, in brackets):

    /fault/reset           head (Content-Length) and 30 KB of the page, then RST
                           [200 cut short, or 502]
    /fault/reset-json      the same for the JSON body (passed through) [200 cut short, or 502]
    /fault/reset-chunked   chunked head and some chunks, then RST [200 cut short, or 502]
    /fault/short           Content-Length, half the page, then FIN [200 cut short, or 502]
    /fault/stall           head and 30 KB, then silence for STALL_HOLD seconds
                           [cut short after limits.body_stall_timeout]
    /fault/stall-head      reads the request, answers nothing for STALL_HOLD seconds
                           [504 after upstream.response_timeout]
    /fault/trickle         an 8 KB page, 256 bytes every 40 ms [200, intact, with the widget]
    /fault/malformed       not HTTP, in a few variants [502]
    /fault/bigheaders      a response head of about 40 KB, over the proxy's 16 KiB [502]
    /fault/close           reads the request and closes (FIN or RST) without answering [502]

The page contents are deterministic; fault_clients.py imports them to check bodies.
"""

import asyncio
import itertools
import json
import socket
import struct
import sys

STALL_HOLD = 8.0
TRICKLE_STEP = 256
TRICKLE_DELAY = 0.04


def html_page(size: int, title: str) -> bytes:
    """A plain page of about `size` bytes: head, many paragraphs with links, </body>."""
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n<link rel=\"stylesheet\" href=\"/site.css\">\n"
        "<script src=\"/app.js\" defer></script>\n</head>\n<body>\n<main>\n"
    )
    tail = "</main>\n<footer><p>soak &copy; test</p></footer>\n</body>\n</html>\n"
    parts = [head]
    length = len(head) + len(tail)
    for i in itertools.count():
        block = (
            f"<article class=\"card\" id=\"a{i}\"><h2><a href=\"/post/{i}\">Post {i}</a></h2>"
            f"<p>Paragraph {i}: lorem ipsum dolor sit amet, <em>consectetur</em> adipiscing "
            f"elit, sed do eiusmod tempor <a href=\"/tag/{i % 17}\">tag {i % 17}</a>.</p>"
            "<!-- a comment --><img src=\"/i.png\" alt=\"\"></article>\n"
        )
        if length + len(block) > size:
            break
        parts.append(block)
        length += len(block)
    parts.append(tail)
    return "".join(parts).encode()


def json_body(size: int) -> bytes:
    items, length = [], 2
    for i in itertools.count():
        item = {"id": i, "name": f"item {i}", "tags": ["a", "b", str(i % 7)], "price": i * 3}
        length += len(json.dumps(item)) + 2
        if length > size:
            break
        items.append(item)
    return json.dumps({"items": items}).encode()


PAGE = html_page(100_000, "soak page")
BIG_PAGE = html_page(1_000_000, "soak big page")
TRICKLE_PAGE = html_page(8_000, "soak trickle page")
JSON = json_body(20_000)

MALFORMED = [
    b"SSH-2.0-OpenSSH_9.6 this is not HTTP\r\n\r\n",
    b"\x00\x01\x02\x03\xff\xfe garbage \x80\x81\r\n\r\n",
    b"HTTP/1.1 two hundred OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nBad Header Name: x\r\nContent-Length: 2\r\n\r\nok",
]
malformed_turn = itertools.count()
close_turn = itertools.count()


def head(status: str, content_type: str, length=None, extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{framing}{extra}\r\n").encode()


HTML = "text/html; charset=utf-8"


def rst(writer: asyncio.StreamWriter) -> None:
    """Closes the connection with a TCP reset (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def read_request(reader: asyncio.StreamReader):
    """The request line's target, or None at end of stream. Bodies are read and dropped."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    if length:
        await reader.readexactly(length)
    return parts[1].split("?", 1)[0]


async def clean(path: str, writer: asyncio.StreamWriter) -> None:
    if path.startswith("/data"):
        body, ctype = JSON, "application/json"
    elif "/big" in path:
        body, ctype = BIG_PAGE, HTML
    else:
        if "/slow" in path:
            await asyncio.sleep(0.3)
        body, ctype = PAGE, HTML
    writer.write(head("200 OK", ctype, len(body)) + body)
    await writer.drain()


async def fault(path: str, writer: asyncio.StreamWriter) -> bool:
    """Serves a fault; True when the connection may be kept alive."""
    kind = path[len("/fault/"):]
    if kind in ("reset", "reset-json", "short"):
        body, ctype = (JSON, "application/json") if kind == "reset-json" else (PAGE, HTML)
        # Never all of it: a body sent whole would be a clean answer, and its connection
        # (pooled by the proxy) would be reset under the next request.
        cut = min(30_000, len(body) // 2)
        writer.write(head("200 OK", ctype, len(body)) + body[:cut])
        await writer.drain()
        await asyncio.sleep(0.05)
        if kind == "short":
            writer.close()
        else:
            rst(writer)
        return False
    if kind == "reset-chunked":
        writer.write(head("200 OK", HTML))
        for i in range(0, 40_000, 8_000):
            piece = PAGE[i : i + 8_000]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        rst(writer)
        return False
    if kind == "stall":
        writer.write(head("200 OK", HTML, len(PAGE)) + PAGE[:30_000])
        await writer.drain()
        await asyncio.sleep(STALL_HOLD)
        writer.close()
        return False
    if kind == "stall-head":
        await asyncio.sleep(STALL_HOLD)
        writer.close()
        return False
    if kind == "trickle":
        writer.write(head("200 OK", HTML, len(TRICKLE_PAGE)))
        for i in range(0, len(TRICKLE_PAGE), TRICKLE_STEP):
            writer.write(TRICKLE_PAGE[i : i + TRICKLE_STEP])
            await writer.drain()
            await asyncio.sleep(TRICKLE_DELAY)
        return True
    if kind == "malformed":
        writer.write(MALFORMED[next(malformed_turn) % len(MALFORMED)])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        return False
    if kind == "bigheaders":
        extra = "".join(f"X-Big-{i}: {'v' * 1000}\r\n" for i in range(40))
        writer.write(head("200 OK", HTML, len(PAGE), extra) + PAGE)
        await writer.drain()
        writer.close()
        return False
    if kind == "close":
        if next(close_turn) % 2:
            rst(writer)
        else:
            writer.close()
        return False
    writer.write(head("404 Not Found", "text/plain", 9) + b"no fault\n")
    await writer.drain()
    return True


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            path = await read_request(reader)
            if path is None:
                break
            if path.startswith("/fault/"):
                if not await fault(path, writer):
                    return
            else:
                await clean(path, writer)
    except (ConnectionError, OSError):
        pass  # the proxy went away first (a client aborted, a stall was cut)
    finally:
        writer.close()


async def main() -> None:
    port = int(sys.argv[1])
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024, limit=1 << 20)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
