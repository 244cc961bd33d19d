"""The ingest step fetching a DVC data version from S3 while the store goes away: it retries with backoff, fails
with a message naming the object, leaves no partial dataset (and no manifest claiming success), and a rerun after
the store is back completes with the exact version. (tests/storage/ covers the same faults on single transfers.)
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from moca import storage
from moca.errors import StorageError
from moca.io import sha256_tree
from moca.steps.ingest import DATA, IngestConfig, data_version, run
from moca.steps.runner import MANIFEST, Inputs


def ingest(source: str, out: Path, rev: str, remote: str = ""):
    return run(IngestConfig(path=source, rev=rev, remote=remote), Inputs(), out)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - DVC's content address


def push_dvc_layout(folder: Path, remote: str) -> str:
    """Upload `folder` in DVC 3's remote layout (files/md5/ab/cdef..., plus the .dir listing); return its version."""
    entries = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        md5 = _md5(file.read_bytes())
        storage.upload(file, f"{remote}/files/md5/{md5[:2]}/{md5[2:]}")
        entries.append({"md5": md5, "relpath": file.relative_to(folder).as_posix()})
    listing = json.dumps(entries).encode()
    version = _md5(listing) + ".dir"
    (folder.parent / "listing.json").write_bytes(listing)
    storage.upload(folder.parent / "listing.json", f"{remote}/files/md5/{version[:2]}/{version[2:]}")
    return version


@pytest.fixture
def dvc_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory whose .dvc/config names the S3 remote (what ingest resolves a rev against)."""
    checkout = tmp_path / "checkout"
    (checkout / ".dvc").mkdir(parents=True)
    monkeypatch.chdir(checkout)
    return checkout


def test_ingest_survives_a_store_outage_mid_fetch(make_s3_server, dvc_checkout: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from moca.data.synth import SynthConfig, synthesize

    s4_small = synthesize(tmp_path / "source", SynthConfig(benchmark="s4", videos=3, seed=0))
    server = make_s3_server()
    server.start()
    try:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        remote = f"s3://{server.create_bucket()}/dvc"
        (dvc_checkout / ".dvc" / "config").write_text(
            f"[core]\n    remote = s3\n['remote \"s3\"']\n    url = {remote}\n")
        version = push_dvc_layout(s4_small, remote)

        real_download, fetched = storage.download, []

        def download_then_outage(uri: str, dest: Path, policy=None) -> Path:
            if len(fetched) == 5:  # the store goes away after five objects arrived
                server.stop()
            fetched.append(uri)
            return real_download(uri, dest, policy)

        monkeypatch.setattr(storage, "download", download_then_outage)
        out = tmp_path / "run" / "ingest"
        with caplog.at_level(logging.WARNING, logger="moca.storage"):
            with pytest.raises(StorageError, match=r"files/md5/.*: download failed after 3 attempt\(s\)"):
                ingest("data", out, version)
        assert sum("retrying in" in r.getMessage() for r in caplog.records) == 2  # backoff between 3 attempts
        assert not (out / DATA).exists() and not (out / MANIFEST).exists()  # nothing a later step could trust
        assert [p.name for p in out.parent.rglob("*") if ".tmp-" in p.name] == []  # staging folder cleaned up

        server.start()  # same port; moto keeps its state in-process
        result = ingest("data", out, version)
        assert data_version(result) == version and not result.skipped
        restored = out / DATA
        (restored / ".moca-data-version").unlink()  # the version marker fetch adds; the rest is the dataset
        assert sha256_tree(restored) == sha256_tree(s4_small)
    finally:
        server.stop()


def test_ingest_in_a_pod_fetches_by_remote_url_without_a_dvc_checkout(s3_env, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Pipeline pods have no .dvc/config: `data.remote` (a URL) is all ingest needs to fetch a version."""
    from moca.data.synth import SynthConfig, synthesize

    source = synthesize(tmp_path / "source", SynthConfig(benchmark="s4", videos=3, seed=1))
    remote = f"s3://{s3_env.create_bucket()}/dvc"
    version = push_dvc_layout(source, remote)
    pod_workdir = tmp_path / "pod"
    pod_workdir.mkdir()
    monkeypatch.chdir(pod_workdir)
    result = ingest("data", tmp_path / "run" / "ingest", version, remote)
    assert data_version(result) == version
    (tmp_path / "run" / "ingest" / DATA / ".moca-data-version").unlink()
    assert sha256_tree(tmp_path / "run" / "ingest" / DATA) == sha256_tree(source)
