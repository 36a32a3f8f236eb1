"""A real HTTP server on 127.0.0.1 for download tests: serves bytes by path, honours
Range (or pretends not to), and can cut a response short or corrupt it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """What the server holds and how it misbehaves; requests are logged."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: Send at most this many body bytes per response, then close (0: no cut).
    cut_after: int = 0
    #: Flip one byte in the middle of every response body.
    corrupt: bool = False
    #: Answer every request with the whole file (200), ignoring Range.
    ignore_range: bool = False
    log: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            rng = self.headers.get("Range")
            served.log.append((name, rng))
            if name not in served.files:
                self.send_error(404)
                return
            body = served.files[name]
            start = 0
            if rng and not served.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_error(416)
                    return
            payload = bytearray(body[start:])
            if served.corrupt and payload:
                payload[len(payload) // 2] ^= 0xFF
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            sent = payload[: served.cut_after] if served.cut_after else payload
            self.wfile.write(bytes(sent))
            self.wfile.flush()
            if served.cut_after:
                self.close_connection = True

    return Handler


@contextmanager
def serving(served: Served) -> Iterator[Served]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
