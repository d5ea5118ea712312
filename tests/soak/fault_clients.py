#!/usr/bin/env python3
"""The soak test's fault driver (tests/soak/run.sh): for SECONDS, WORKERS concurrent loops
over the upstream's faults (fault_upstream.py) and over abusive clients, each outcome
checked against the one the fault should give.

    fault_clients.py --proxy 127.0.0.1:PORT --seconds S --workers N \
        --stall-timeout 2 --response-timeout 2 --header-timeout 2 --out result.json

Every scenario run is "attributable" (the outcome the injected fault explains) or
"unattributable" (anything else: a complete body where the upstream broke off, a wrong
status, a stall never cut, a clean page damaged, ...). The JSON written to --out has, per
scenario, the counts and the first few unattributable outcomes described.
"""

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_upstream import BIG_PAGE, JSON, PAGE, STALL_HOLD, TRICKLE_PAGE  # noqa: E402

WIDGET_OPEN = b"<invent-assistant"
WIDGET_END = b"</script>"
OP_TIMEOUT = 20.0


class Response:
    """What a client saw: status (0 if no head), head, body, whether the body was complete
    by its framing, the error that ended it, and the time taken."""

    def __init__(self):
        self.status = 0
        self.headers = {}
        self.body = b""
        self.complete = False
        self.framing = None
        self.error = None
        self.elapsed = 0.0

    def __repr__(self):
        return (f"status={self.status} framing={self.framing} body={len(self.body)}B "
                f"complete={self.complete} error={self.error} elapsed={self.elapsed:.2f}s")


def parse(buf: bytes, response: Response) -> bool:
    """Parses `buf` (all bytes received so far) into `response`; True once it is complete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    response.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    response.headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        response.headers[name.strip().lower()] = value.strip()
    rest = buf[end + 4:]
    if "content-length" in response.headers:
        response.framing = "length"
        want = int(response.headers["content-length"])
        response.body = rest[:want]
        response.complete = len(rest) >= want
        return response.complete
    if response.headers.get("transfer-encoding", "").lower() == "chunked":
        response.framing = "chunked"
        body, pos = [], 0
        while True:
            nl = rest.find(b"\r\n", pos)
            if nl < 0:
                break
            size = int(rest[pos:nl].split(b";")[0] or b"0", 16)
            if size == 0:
                if rest.find(b"\r\n", nl + 2) >= 0:  # the (empty) trailer section
                    response.body = b"".join(body)
                    response.complete = True
                    return True
                break
            if len(rest) < nl + 2 + size + 2:
                body.append(rest[nl + 2: nl + 2 + size])
                break
            body.append(rest[nl + 2: nl + 2 + size])
            pos = nl + 2 + size + 2
        response.body = b"".join(body)
        return False
    # An HTTP/1.1 response without framing ends at close: a cut could not be told apart.
    response.framing = "close"
    response.body = rest
    return False


def linger0(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def exchange(addr, request: bytes, *, recv_size=65536, delay=0.0, rcvbuf=None,
                   abort_after=None, abort_rst=False, close_after=None) -> Response:
    """Sends `request` on a new connection and reads the answer: `recv_size` bytes at a
    time with `delay` between reads; `abort_after` bytes, or `close_after` seconds, and the
    client goes away (`abort_rst`: with a reset)."""
    loop = asyncio.get_running_loop()
    response = Response()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    started = time.monotonic()
    buf = bytearray()
    try:
        await loop.sock_connect(sock, addr)
        await loop.sock_sendall(sock, request)
        if close_after is not None:
            await asyncio.sleep(close_after)
            response.error = "client closed"
            return response
        while True:
            chunk = await loop.sock_recv(sock, recv_size)
            if not chunk:
                response.error = response.error or "eof"
                break
            buf += chunk
            if parse(bytes(buf), response):
                break
            if abort_after is not None and len(buf) >= abort_after:
                response.error = "client aborted"
                break
            if delay:
                await asyncio.sleep(delay)
    except (ConnectionError, OSError) as e:
        response.error = type(e).__name__
        parse(bytes(buf), response)
    finally:
        response.elapsed = time.monotonic() - started
        if abort_rst:
            try:
                linger0(sock)
            except OSError:
                pass
        sock.close()
    return response


def get(path: str, extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: soak.test\r\nUser-Agent: soak-fault-client\r\n"
            f"Accept: text/html,application/xhtml+xml\r\n{extra}\r\n").encode()


def strip_widget(body: bytes):
    """The body without the one injected widget, or None if it has none (or several)."""
    start = body.find(WIDGET_OPEN)
    if start < 0 or body.find(WIDGET_OPEN, start + 1) >= 0:
        return None
    end = body.find(WIDGET_END, start)
    if end < 0:
        return None
    return body[:start] + body[end + len(WIDGET_END):]


def intact_page(r: Response, original: bytes):
    if r.status != 200 or not r.complete:
        return f"want 200 complete: {r}"
    stripped = strip_widget(r.body)
    if stripped is None:
        return f"no widget (once) in the page: {r}"
    if stripped != original:
        return f"page damaged: {len(stripped)}B besides the widget, want {len(original)}B: {r}"
    return None


def cut_short(r: Response, sent: int):
    """A fault in mid-body: a 502 (head not yet sent), or a 200 that never looks complete."""
    if r.status == 502:
        return None
    if r.status != 200:
        return f"want 502 or a 200 cut short: {r}"
    if r.complete:
        return f"a broken-off body arrived as complete: {r}"
    if r.framing == "close":
        return f"a broken-off body without framing (indistinguishable from complete): {r}"
    if len(r.body) > sent:
        return f"more body than the upstream sent ({sent}B): {r}"
    return None


class Driver:
    def __init__(self, args):
        host, port = args.proxy.rsplit(":", 1)
        self.addr = (host, int(port))
        self.args = args
        self.results = {}

    def record(self, kind: str, problem, seconds: float):
        entry = self.results.setdefault(kind, {"runs": 0, "attributable": 0, "unattributable": 0,
                                               "examples": [], "seconds_total": 0.0, "seconds_max": 0.0})
        entry["runs"] += 1
        entry["seconds_total"] += seconds
        entry["seconds_max"] = max(entry["seconds_max"], seconds)
        if problem is None:
            entry["attributable"] += 1
        else:
            entry["unattributable"] += 1
            if len(entry["examples"]) < 5:
                entry["examples"].append(problem)

    # Each scenario returns None (the expected outcome) or a description of what went wrong.

    async def reset(self):
        return cut_short(await exchange(self.addr, get("/fault/reset")), 30_000)

    async def reset_json(self):
        return cut_short(await exchange(self.addr, get("/fault/reset-json")), len(JSON) // 2)

    async def reset_chunked(self):
        return cut_short(await exchange(self.addr, get("/fault/reset-chunked")), 40_000)

    async def short(self):
        return cut_short(await exchange(self.addr, get("/fault/short")), len(PAGE) // 2)

    async def stall(self):
        r = await exchange(self.addr, get("/fault/stall"))
        problem = cut_short(r, 30_000)
        if problem:
            return problem
        lo, hi = self.args.stall_timeout * 0.9, STALL_HOLD - 0.5
        if not lo <= r.elapsed < hi:
            return f"want the stall cut after {self.args.stall_timeout}s (before the upstream gives up at {STALL_HOLD}s): {r}"
        return None

    async def stall_head(self):
        r = await exchange(self.addr, get("/fault/stall-head"))
        if r.status != 504:
            return f"want 504: {r}"
        if not self.args.response_timeout * 0.9 <= r.elapsed < STALL_HOLD - 0.5:
            return f"want the 504 after {self.args.response_timeout}s: {r}"
        return None

    async def trickle(self):
        return intact_page(await exchange(self.addr, get("/fault/trickle")), TRICKLE_PAGE)

    async def _status(self, path, want):
        r = await exchange(self.addr, get(path))
        return None if r.status == want and r.complete else f"want {want}: {r}"

    async def malformed(self):
        return await self._status("/fault/malformed", 502)

    async def bigheaders(self):
        return await self._status("/fault/bigheaders", 502)

    async def close(self):
        return await self._status("/fault/close", 502)

    async def client_abort(self):
        # A 1 MB page: the client reads 16 KiB of it and goes away, half the time with a reset.
        r = await exchange(self.addr, get("/client/abort/big"), abort_after=16_384, abort_rst=random.random() < 0.5)
        return None if r.status == 200 else f"want a 200 head before the abort: {r}"

    async def client_early_abort(self):
        # The client is gone before the upstream (300 ms) answers.
        await exchange(self.addr, get("/client/early/slow"), close_after=0.1, abort_rst=random.random() < 0.5)
        return None

    async def slow_reader(self):
        # 1 MB at 8 KiB per 20 ms through an 8 KiB receive buffer: seconds, past
        # body_stall_timeout, and the page must arrive whole (a slow client never counts).
        r = await exchange(self.addr, get("/client/slow-reader/big"), recv_size=8192, delay=0.02, rcvbuf=8192)
        return intact_page(r, BIG_PAGE)

    async def slowloris(self):
        """A request head sent a byte every 200 ms, never finished: the proxy must close
        the connection after limits.header_read_timeout (with a 408 or without)."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        limit = self.args.header_timeout
        started = time.monotonic()
        head = b"GET /client/slowloris HTTP/1.1\r\nHost: soak.test\r\nX-Slow: " + b"a" * 10_000
        answer = b""
        try:
            await loop.sock_connect(sock, self.addr)
            for byte in head:
                if time.monotonic() - started > limit + 4:
                    return f"a slowloris head still read {time.monotonic() - started:.1f}s on (limit {limit}s)"
                try:
                    await loop.sock_sendall(sock, bytes([byte]))
                except (ConnectionError, OSError):
                    break  # closed by the proxy
                try:
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.2)
                except asyncio.TimeoutError:
                    continue
                if not chunk:
                    break
                answer += chunk
            else:
                return "a slowloris head was read to its end"
        except (ConnectionError, OSError):
            pass
        finally:
            sock.close()
        elapsed = time.monotonic() - started
        if answer and not answer.startswith(b"HTTP/1.1 408"):
            return f"a slowloris client got {answer[:40]!r}, want a close or 408"
        if elapsed < limit * 0.9:
            return f"a slowloris client was cut off after {elapsed:.2f}s, before {limit}s"
        return None

    async def big_request_head(self):
        """A 150 KB request head, over limits.max_header_size (128 KiB): 431, or the
        connection reset while the client was still sending it."""
        r = await exchange(self.addr, get("/client/bighead", "X-Big: " + "b" * 150_000 + "\r\n"))
        if r.status == 431 or (r.status == 0 and r.error in ("ConnectionResetError", "BrokenPipeError", "eof")):
            return None
        return f"want 431 or a reset: {r}"

    async def clean_page(self):
        """A control: a clean page on a fresh connection, between the faults."""
        return intact_page(await exchange(self.addr, get("/client/clean")), PAGE)

    SCENARIOS = ["reset", "reset_json", "reset_chunked", "short", "stall", "stall_head", "trickle",
                 "malformed", "bigheaders", "close", "client_abort", "client_early_abort",
                 "slow_reader", "slowloris", "big_request_head", "clean_page"]

    async def worker(self, index: int, deadline: float):
        turn = index * 5
        while time.monotonic() < deadline:
            kind = self.SCENARIOS[turn % len(self.SCENARIOS)]
            turn += 1
            started = time.monotonic()
            try:
                problem = await asyncio.wait_for(getattr(self, kind)(), OP_TIMEOUT)
            except asyncio.TimeoutError:
                problem = f"no outcome within {OP_TIMEOUT}s"
            except Exception as e:  # noqa: BLE001 - any surprise is an unattributable outcome
                problem = f"{type(e).__name__}: {e}"
            self.record(kind, problem, time.monotonic() - started)

    async def run(self):
        deadline = time.monotonic() + self.args.seconds
        await asyncio.gather(*(self.worker(i, deadline) for i in range(self.args.workers)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--proxy", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--stall-timeout", type=float, required=True)
    p.add_argument("--response-timeout", type=float, required=True)
    p.add_argument("--header-timeout", type=float, required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    random.seed(8)
    driver = Driver(args)
    asyncio.run(driver.run())
    Path(args.out).write_text(json.dumps(driver.results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
