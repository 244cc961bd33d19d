"""Fault injection for storage tests: an endpoint that always answers 500, and a client that fails N times first."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ERROR_XML = b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>injected</Message></Error>"


class _Always500(BaseHTTPRequestHandler):
    def _fail(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests += 1  # type: ignore[attr-defined]
        self.send_response(500)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(ERROR_XML)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(ERROR_XML)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _fail

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def always_500() -> Iterator[ThreadingHTTPServer]:
    """An HTTP endpoint on 127.0.0.1 that answers every request with an S3-style 500; `.requests` counts them."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Always500)
    server.requests = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
