from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from moca import versioning
from moca.errors import DataError, StorageError
from moca.io import sha256_tree

REPO_ROOT = Path(__file__).resolve().parents[2]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def write_dataset(folder: Path, variant: str) -> None:
    (folder / "Single-source" / "clips").mkdir(parents=True, exist_ok=True)
    (folder / "Single-source" / "meta.csv").write_text(f"name,split\nclip-{variant},train\n")
    (folder / "Single-source" / "clips" / "a.bin").write_bytes(variant.encode() * 500)
    (folder / "Single-source" / "clips" / "b.bin").write_bytes(b"shared bytes")


@pytest.fixture
def dvc_repo(tmp_path: Path, s3_env) -> Path:
    """A git + DVC repo using the project's .dvc/config, its `s3` remote pointed at a fresh moto bucket."""
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    bucket = s3_env.create_bucket()
    config = (REPO_ROOT / ".dvc" / "config").read_text().replace("s3://moca-data/dvc", f"s3://{bucket}/dvc")
    (repo / ".dvc" / "config").write_text(config)
    shutil.copy(REPO_ROOT / ".dvc" / ".gitignore", repo / ".dvc" / ".gitignore")
    git("init", "-q", cwd=repo)
    git("config", "user.email", "t@example.com", cwd=repo)
    git("config", "user.name", "test", cwd=repo)
    return repo


def test_data_version_reads_the_md5(tmp_path: Path) -> None:
    dvc_file = tmp_path / "data.dvc"
    dvc_file.write_text("outs:\n- md5: 59431835bbbbd9b7daf16aee0a13bf4b.dir\n  size: 6\n  nfiles: 2\n  path: data\n")
    assert versioning.data_version(dvc_file) == "59431835bbbbd9b7daf16aee0a13bf4b.dir"
    dvc_file.write_text("outs:\n- md5: not-a-hash\n  path: data\n")
    with pytest.raises(DataError, match="data.dvc: md5 'not-a-hash' is not a DVC md5"):
        versioning.data_version(dvc_file)
    dvc_file.write_text("just: text\n")
    with pytest.raises(DataError, match="outs"):
        versioning.data_version(dvc_file)
    with pytest.raises(DataError, match="DVC file not found"):
        versioning.data_version(tmp_path / "missing.dvc")


def test_push_to_s3_and_fetch_by_version_and_by_rev(dvc_repo: Path, tmp_path: Path) -> None:
    data = dvc_repo / "data"
    write_dataset(data, "one")
    v1 = versioning.add_and_push(data, remote="s3")
    assert v1.endswith(".dir") and v1 == versioning.data_version(dvc_repo / "data.dvc")
    git("add", "data.dvc", ".dvc", cwd=dvc_repo)
    git("commit", "-qm", "data v1", cwd=dvc_repo)
    rev1 = git("rev-parse", "HEAD", cwd=dvc_repo)

    write_dataset(data, "two")
    v2 = versioning.add_and_push(data, remote="s3")
    assert v2 != v1
    git("commit", "-qam", "data v2", cwd=dvc_repo)

    shutil.rmtree(dvc_repo / ".dvc" / "cache")  # prove the bytes come from S3, not the local cache
    runs = tmp_path / "runs"
    by_md5 = versioning.fetch(v1, runs / "a" / "data", remote="s3", root=dvc_repo)
    by_rev = versioning.fetch(rev1, runs / "b" / "data", remote="s3", root=dvc_repo)
    latest = versioning.fetch("HEAD", runs / "c" / "data", remote="s3", root=dvc_repo)
    assert (by_md5 / "Single-source" / "meta.csv").read_text() == "name,split\nclip-one,train\n"
    assert sha256_tree(by_md5) == sha256_tree(by_rev)
    s3_url = versioning.remote_url("s3", root=dvc_repo)
    by_url = versioning.fetch(v1, runs / "d" / "data", remote=s3_url, root=tmp_path)  # no DVC repo needed
    assert sha256_tree(by_url) == sha256_tree(by_md5)
    assert (latest / "Single-source" / "clips" / "a.bin").read_bytes() == b"two" * 500
    assert (latest / versioning.VERSION_MARKER).read_text().strip() == v2
    # A rerun into the same run folder reuses it; a different version there is refused, not overwritten.
    assert versioning.fetch(v1, by_md5, remote="s3", root=dvc_repo) == by_md5
    with pytest.raises(DataError, match="does not hold data version"):
        versioning.fetch(v2, by_md5, remote="s3", root=dvc_repo)


def test_fetch_detects_corruption_and_missing_versions(dvc_repo: Path, tmp_path: Path) -> None:
    data = dvc_repo / "data"
    write_dataset(data, "x")
    version = versioning.add_and_push(data)  # the default (local folder) remote
    remote = versioning.remote_url(root=dvc_repo)
    assert Path(remote) == (dvc_repo / ".moca" / "dvc-remote").resolve()

    md5 = versioning._md5(data / "Single-source" / "clips" / "a.bin")
    obj = Path(versioning._object_uri(remote, md5))
    obj.chmod(0o644)
    obj.write_bytes(b"bit rot")
    out = tmp_path / "run" / "data"
    with pytest.raises(StorageError, match="does not match its md5"):
        versioning.fetch(version, out, root=dvc_repo)
    assert not out.exists() and list(out.parent.iterdir()) == []  # nothing half-fetched left behind

    with pytest.raises(StorageError, match="not found"):
        versioning.fetch("0" * 32 + ".dir", out, root=dvc_repo)
    with pytest.raises(DataError, match="cannot read it at git rev 'nope'"):
        versioning.fetch("nope", out, root=dvc_repo)
    with pytest.raises(DataError, match="no remote named 'missing'"):
        versioning.fetch(version, out, remote="missing", root=dvc_repo)


def test_a_file_url_remote_is_refused_before_dvc_pushes_into_a_relative_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    write_dataset(repo / "data", "one")
    remote = tmp_path / "remote"
    (repo / ".dvc" / "config").write_text(f"[core]\n    no_scm = true\n    remote = local\n"
                                          f"['remote \"local\"']\n    url = {remote.as_uri()}\n")  # fmt: skip
    with pytest.raises(DataError, match=r"config: remote 'local': url 'file:.*plain path"):
        versioning.add_and_push(repo / "data")
    assert not (repo / "data.dvc").exists() and not (repo / "file:").exists()
    (repo / ".dvc" / "config").write_text(f"[core]\n    no_scm = true\n    remote = local\n"
                                          f"['remote \"local\"']\n    url = {remote}\n")  # fmt: skip
    version = versioning.add_and_push(repo / "data")
    assert versioning.remote_url(root=repo) == str(remote)
    assert (remote / "files" / "md5" / version[:2] / version[2:]).is_file()  # DVC 3's layout, where moca reads
