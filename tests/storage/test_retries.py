"""Retries belong to the libraries: botocore's retry modes for S3, urllib3's Retry for HTTPS. moca only configures
them, logs each retry and turns the final failure into one StorageError."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from moca import storage
from moca.errors import StorageError
from moca.storage import RetryPolicy


def test_client_uses_botocore_retry_modes(s3_env, monkeypatch: pytest.MonkeyPatch) -> None:
    assert storage.s3_client().meta.config.retries == {"mode": "standard", "total_max_attempts": 3}  # conftest: 3
    monkeypatch.setenv("MOCA_S3_RETRY_MODE", "adaptive")
    assert storage.s3_client().meta.config.retries == {"mode": "adaptive", "total_max_attempts": 3}
    monkeypatch.setenv("MOCA_S3_RETRY_MODE", "forever")
    with pytest.raises(StorageError, match="MOCA_S3_RETRY_MODE"):
        storage.s3_client()
    monkeypatch.setenv("MOCA_STORAGE_ATTEMPTS", "lots")
    with pytest.raises(StorageError, match="MOCA_STORAGE_ATTEMPTS='lots': expected a whole number"):
        storage.s3_client()


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_each_retry_is_logged_and_the_transfer_completes(s3_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture, mode: str) -> None:
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def stream(self, **_: object):
            yield b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"

    bucket = s3_env.create_bucket()
    monkeypatch.setenv("MOCA_S3_RETRY_MODE", mode)
    sent: list[str] = []
    real_client = storage.s3_client

    def throttled_twice(endpoint_url=None, policy=None):
        client = real_client(endpoint_url, policy)

        def inject(request, **_: object):
            sent.append(request.method)
            return AWSResponse(request.url, 503, {}, _Raw()) if len(sent) <= 2 else None

        client.meta.events.register("before-send.s3", inject)
        return client

    monkeypatch.setattr(storage, "s3_client", throttled_twice)
    (tmp_path / "f.bin").write_bytes(b"x" * 100)
    with caplog.at_level(logging.WARNING, logger="moca.storage"):
        storage.upload(tmp_path / "f.bin", f"s3://{bucket}/f.bin")
    retries = [r.getMessage() for r in caplog.records if "retrying in botocore" in r.getMessage()]
    assert len(retries) == 2 and "attempt 1/3 failed (SlowDown)" in retries[0] and f"{mode} mode" in retries[0]
    assert sent[:3] == ["PUT", "PUT", "PUT"]  # one upload call, retried inside botocore


class _Flaky(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server = self.server
        server.requests += 1  # type: ignore[attr-defined]
        if self.path == "/missing":
            self.send_error(404)
        elif server.requests <= server.failures:  # type: ignore[attr-defined]
            self.send_error(503)
        else:
            body = b"weights" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_http() -> Iterator[ThreadingHTTPServer]:
    """HTTP on 127.0.0.1 that answers 503 for the first `.failures` requests (0 by default), then the body."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    server.requests, server.failures = 0, 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_https_downloads_retry_through_urllib3(flaky_http, tmp_path: Path) -> None:
    """`download` sends https:// here; plain http on loopback exercises the same urllib3 path without TLS."""
    base = f"http://127.0.0.1:{flaky_http.server_address[1]}"
    flaky_http.failures = 2
    got = storage._https_download(f"{base}/w.pt", tmp_path / "w.pt", RetryPolicy(attempts=3))
    assert got.read_bytes() == b"weights" * 1000 and flaky_http.requests == 3
    flaky_http.requests, flaky_http.failures = 0, 100
    with pytest.raises(StorageError, match=r"w.pt: download failed after 3 attempt\(s\); last error: MaxRetryError"):
        storage._https_download(f"{base}/w.pt", tmp_path / "out" / "w.pt", RetryPolicy(attempts=3))
    assert flaky_http.requests == 3
    assert list((tmp_path / "out").glob("*")) == []  # nothing partial, not even a temporary file
    with pytest.raises(StorageError, match="missing: not found"):
        storage._https_download(f"{base}/missing", tmp_path / "m.pt", RetryPolicy(attempts=3))
