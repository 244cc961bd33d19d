from __future__ import annotations

from pathlib import Path

import pytest

from moca import storage
from moca.errors import StorageError


def _keys(bucket: str, prefix: str = "") -> list[str]:
    listing = storage.s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def _fail_first(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[str]:
    """Make the next `failures` S3 requests answer 500 (botocore's before-send hook), then let requests through."""
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def stream(self, **_: object):
            yield b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"

    seen: list[str] = []
    real_client = storage.s3_client

    def inject(request, **_: object):
        seen.append(request.method)
        if len(seen) <= failures:
            return AWSResponse(request.url, 500, {}, _Raw())
        return None

    def client_with_faults(endpoint_url=None, policy=None):
        client = real_client(endpoint_url, policy)
        client.meta.events.register("before-send.s3", inject)
        return client

    monkeypatch.setattr(storage, "s3_client", client_with_faults)
    return seen


def test_round_trip_file_and_folder(s3_env, tmp_path: Path) -> None:
    bucket = s3_env.create_bucket()
    src = tmp_path / "weights.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    uri = f"s3://{bucket}/models/weights.bin"
    storage.upload(src, uri)
    assert storage.exists(uri)
    assert _keys(bucket) == ["models/weights.bin"]  # the temporary key was deleted after the commit
    out = storage.download(uri, tmp_path / "out" / "w.bin")
    assert out.read_bytes() == src.read_bytes()

    folder = tmp_path / "report"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<p>hi</p>")
    (folder / "sub" / "a.json").write_text("{}")
    storage.upload(folder, f"s3://{bucket}/runs/r1/report/")
    assert _keys(bucket, "runs/") == ["runs/r1/report/index.html", "runs/r1/report/sub/a.json"]


def test_missing_key_is_a_clear_error(s3_env, tmp_path: Path) -> None:
    bucket = s3_env.create_bucket()
    uri = f"s3://{bucket}/nope.bin"
    assert not storage.exists(uri)
    with pytest.raises(StorageError, match="nope.bin: not found"):
        storage.download(uri, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_local_and_file_uris(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("hello")
    assert storage.download(src.as_uri(), tmp_path / "b.txt").read_text() == "hello"
    storage.upload(src, str(tmp_path / "copy" / "a.txt"))
    assert (tmp_path / "copy" / "a.txt").read_text() == "hello"
    with pytest.raises(StorageError, match="not found"):
        storage.download(str(tmp_path / "missing"), tmp_path / "c.txt")
    with pytest.raises(StorageError, match="unsupported URI scheme 'ftp'"):
        storage.download("ftp://host/x", tmp_path / "d.txt")


def test_transient_500s_are_retried_then_succeed(s3_env, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_env.create_bucket()
    src = tmp_path / "f.bin"
    src.write_bytes(b"payload")
    seen = _fail_first(monkeypatch, failures=2)
    storage.upload(src, f"s3://{bucket}/f.bin")
    assert len(seen) > 2  # two injected failures, then the real requests
    assert storage.download(f"s3://{bucket}/f.bin", tmp_path / "g.bin").read_bytes() == b"payload"
    assert _keys(bucket) == ["f.bin"]


def test_endpoint_answering_500_retries_then_fails_and_rerun_completes(
        s3_env, always_500, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_env.create_bucket()
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 4096)
    uri = f"s3://{bucket}/deep/f.bin"
    monkeypatch.setenv("MOCA_S3_ENDPOINT_URL", f"http://127.0.0.1:{always_500.server_address[1]}")
    with pytest.raises(StorageError, match=r"deep/f.bin: upload failed after 3 attempt\(s\); last error"):
        storage.upload(src, uri)
    assert always_500.requests >= 3
    monkeypatch.setenv("MOCA_S3_ENDPOINT_URL", s3_env.endpoint)
    assert _keys(bucket) == []  # nothing reached the real store, so nothing partial either
    storage.upload(src, uri)
    assert _keys(bucket) == ["deep/f.bin"]


def test_server_stopped_mid_upload_then_rerun_completes(make_s3_server, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_s3_server()
    server.start()
    try:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        bucket = server.create_bucket()
        folder = tmp_path / "ckpts"
        folder.mkdir()
        for i in range(3):
            (folder / f"{i}.bin").write_bytes(bytes([i]) * 2048)

        real_upload = storage._s3_upload_file
        calls = []

        def upload_then_outage(*args, **kwargs):
            if calls:  # the store goes away after the first file is committed
                server.stop()
            calls.append(args[1])
            return real_upload(*args, **kwargs)

        monkeypatch.setattr(storage, "_s3_upload_file", upload_then_outage)
        with pytest.raises(StorageError, match=r"1.bin: upload failed after 3 attempt\(s\)"):
            storage.upload(folder, f"s3://{bucket}/ckpts")
        monkeypatch.setattr(storage, "_s3_upload_file", real_upload)

        server.start()  # same port; moto keeps its state in-process
        assert _keys(bucket) == ["ckpts/0.bin"]  # only the fully committed object, no partial one
        storage.upload(folder, f"s3://{bucket}/ckpts")
        assert _keys(bucket) == ["ckpts/0.bin", "ckpts/1.bin", "ckpts/2.bin"]
        for i in range(3):
            got = storage.download(f"s3://{bucket}/ckpts/{i}.bin", tmp_path / "back" / f"{i}.bin")
            assert got.read_bytes() == bytes([i]) * 2048
    finally:
        server.stop()


def test_download_outage_leaves_no_partial_file(s3_env, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_env.create_bucket()
    src = tmp_path / "f.bin"
    src.write_bytes(b"data")
    storage.upload(src, f"s3://{bucket}/f.bin")
    dest_dir = tmp_path / "dl"
    dest_dir.mkdir()
    _fail_first(monkeypatch, failures=100)
    with pytest.raises(StorageError, match="download failed after 3 attempt"):
        storage.download(f"s3://{bucket}/f.bin", dest_dir / "f.bin")
    assert list(dest_dir.iterdir()) == []


def test_allowed_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = tmp_path / "allowed"
    inside.mkdir()
    roots = [str(inside), "s3://moca-models/prod"]
    storage.check_uri_allowed(str(inside / "a.pt"), roots)
    storage.check_uri_allowed((inside / "b.pt").as_uri(), roots)
    storage.check_uri_allowed("s3://moca-models/prod/x.pt", roots)
    for bad in [str(inside / ".." / "secret"), "file:///etc/passwd", "s3://moca-models/prodX/y",
                "s3://other/prod/x", "https://example.com/w.pt"]:
        with pytest.raises(StorageError, match="outside the allowed roots"):
            storage.check_uri_allowed(bad, roots)
    storage.check_uri_allowed("file:///etc/passwd", [])  # nothing configured: laptop default allows all
    monkeypatch.setenv("MOCA_ALLOWED_ROOTS", str(inside))
    with pytest.raises(StorageError, match="outside the allowed roots"):
        storage.download("file:///etc/hostname", tmp_path / "h")
