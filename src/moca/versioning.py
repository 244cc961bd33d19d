"""Data versioning with DVC: `data.dvc` names the dataset by content hash, remotes hold the bytes.

How DVC is used, and why:
- writing (`add_and_push`) runs the `dvc` CLI in a subprocess. DVC's Python internals (`dvc.repo.Repo.add/push`)
  are not a stable API and configure global logging; the CLI is what users run and what DVC documents.
- reading (`fetch`) reads DVC 3's content-addressed remote layout directly: `<remote>/files/md5/ab/cdef...` holds a
  file, and `<md5>.dir` lists a folder's files as JSON (`[{"md5", "relpath"}]`). This needs no git checkout and no
  DVC workspace, so an ingest step in a pod can fetch the exact version a run names (a git rev of `data.dvc`, or the
  md5 itself), and every file is checked against its md5 on the way, with `moca.storage`'s retries. A reader may
  fetch only some of a version's files (`read_listing` + `fetch_files`): a pipeline task reads the split it needs.
- a data pointer (`moca data publish`) is a `.dvc` file copied into the store (`s3://moca-data/pointers/s4.dvc`):
  the data producer moves it to each new version, and whoever runs without a git checkout (an in-cluster submit, a
  recurring run, the Prefect flow in its image) reads the version it names when the run starts.
Remote URLs come from `.dvc/config` (relative local URLs are resolved by DVC against `.dvc/`); the S3 endpoint and
credentials come from the environment, as everywhere in moca.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from moca import storage
from moca.errors import DataError, StorageError
from moca.io import atomic_write_text
from moca.progress import progress

VERSION_PATTERN = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
VERSION_MARKER = ".moca-data-version"  # written into a fetched folder, so a rerun can reuse it


def is_pointer(rev: str) -> bool:
    """A data pointer: a `.dvc` file in the store, named by URI (`s3://moca-data/pointers/s4.dvc`)."""
    return "://" in rev and rev.endswith(".dvc")


def data_version(dvc_file: str | Path) -> str:
    """The content hash a `.dvc` file records: `<md5>.dir` for a folder, `<md5>` for a file. `dvc_file` may be a
    data pointer in the store (a URI), read as it is now."""
    if "://" in str(dvc_file):
        return _version_from_text(str(dvc_file), _read_remote_text(str(dvc_file)))
    return _version_from_text(Path(dvc_file), _read_text(Path(dvc_file)))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(path, "DVC file not found (run `dvc add` on the dataset first)") from exc


def _read_remote_text(uri: str) -> str:
    with tempfile.TemporaryDirectory(prefix="moca-pointer-") as folder:
        try:
            path = storage.download(uri, Path(folder) / "pointer.dvc")
        except StorageError as exc:
            raise DataError(uri, f"data pointer unreadable ({exc}); publish one with `moca data publish`") from exc
        return path.read_text(encoding="utf-8")


def _version_from_text(where: str | Path, text: str) -> str:
    try:
        outs = yaml.safe_load(text)["outs"]
        md5 = str(outs[0]["md5"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise DataError(where, f"not a DVC file with an `outs[0].md5` entry ({exc})") from exc
    if len(outs) != 1:
        raise DataError(where, f"expected one tracked output, found {len(outs)}")
    if not VERSION_PATTERN.match(md5):
        raise DataError(where, f"md5 {md5!r} is not a DVC md5")
    return md5


def repo_root(start: str | Path = ".") -> Path:
    """The nearest folder at or above `start` holding `.dvc/`."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    raise DataError(start, "not inside a DVC repository (no .dvc/ folder here or above)")


def remote_url(remote: str | None = None, root: str | Path = ".") -> str:
    """The URL of `remote` (default: the repo's default remote), relative paths resolved as DVC does."""
    from dvc.config import Config, ConfigError

    dvc_dir = repo_root(root) / ".dvc"
    try:
        config = Config(dvc_dir=str(dvc_dir))
    except ConfigError as exc:
        raise DataError(dvc_dir / "config", f"unreadable DVC config ({exc})") from exc
    name = remote or config["core"].get("remote")
    if not name:
        raise DataError(dvc_dir / "config", "no remote given and no default remote (`core.remote`) set")
    if name not in config["remote"]:
        raise DataError(dvc_dir / "config", f"no remote named {name!r}; known: {sorted(config['remote'])}")
    url = str(config["remote"][name]["url"])
    if url.startswith("file:"):  # DVC has no file:// scheme (treeverse/dvc#2236): it would push to ./file:/...
        raise DataError(dvc_dir / "config", f"remote {name!r}: url {url!r} is a file:// URL, which DVC takes for a "
                                            "relative path; write a local remote as a plain path")
    return url


def _dvc(args: list[str], root: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    command = [sys.executable, "-m", "dvc", *args]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise StorageError(f"`dvc {' '.join(args)}` failed in {root}: {' | '.join(tail)}")
    return result.stdout


def add_and_push(data_dir: str | Path, remote: str | None = None) -> str:
    """`dvc add` the folder (writing `<folder>.dvc` beside it) and `dvc push` it; returns its data version."""
    data_dir = Path(data_dir).resolve()
    if not data_dir.is_dir():
        raise DataError(data_dir, "not a folder; nothing to version")
    root = repo_root(data_dir)
    remote_url(remote, root)  # a remote DVC would misread fails here, before anything is added or pushed
    target = data_dir.relative_to(root).as_posix()
    _dvc(["add", "--quiet", target], root)
    _dvc(["push", "--quiet", *(["--remote", remote] if remote else []), f"{target}.dvc"], root)
    return data_version(root / f"{target}.dvc")


def version_at_rev(rev: str, dvc_file: str = "data.dvc", root: str | Path = ".") -> str:
    """The data version `dvc_file` recorded at git revision `rev`."""
    root = repo_root(root)
    result = subprocess.run(["git", "show", f"{rev}:{dvc_file}"], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise DataError(root / dvc_file, f"cannot read it at git rev {rev!r}: {result.stderr.strip()}")
    return _version_from_text(f"{dvc_file}@{rev}", result.stdout)


def publish(dvc_file: str | Path, pointer: str, remote: str | None = None, root: str | Path = ".") -> str:
    """Point the data pointer `pointer` (a `.dvc` URI in the store) at the version `dvc_file` names; returns it.
    The version must already be in the remote (`dvc push`), so a pointer never names data nobody can fetch; the
    pointer is replaced atomically (moca.storage), so a reader sees the old version or the new one."""
    if not is_pointer(pointer):
        raise DataError(pointer, "a data pointer is a .dvc file named by URI, e.g. s3://moca-data/pointers/s4.dvc")
    version = data_version(dvc_file)
    base = remote_base(remote, root)
    if not storage.exists(_object_uri(base, version)):
        raise DataError(dvc_file, f"version {version} is not in the remote {base}: `dvc push` it first")
    storage.upload(Path(dvc_file), pointer)
    return version


def remote_base(remote: str | None = None, root: str | Path = ".") -> str:
    """The remote's URL: `remote` itself when it is one (what a pod without a DVC checkout uses), else the URL of
    the remote it names in `.dvc/config` (default: the default remote)."""
    return remote if remote and "://" in remote else remote_url(remote, root)


def _object_uri(remote: str, md5: str) -> str:
    separator = "/" if "://" in remote else os.sep
    return separator.join([remote.rstrip("/"), "files", "md5", md5[:2], md5[2:]])


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - DVC's content address, not a security hash
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_object(remote: str, md5: str, dest: Path) -> None:
    uri = _object_uri(remote, md5)
    storage.download(uri, dest)
    if _md5(dest) != md5.removesuffix(".dir"):
        dest.unlink()
        raise StorageError(f"{uri}: content does not match its md5 {md5} (corrupted remote object)")


def read_listing(version: str, base: str) -> list[dict[str, Any]]:
    """The files of folder version `<md5>.dir` in the remote at `base`: `[{"md5", "relpath"}]`, checked."""
    if not version.endswith(".dir"):
        raise DataError(version, "not a folder version (<md5>.dir)")
    with tempfile.TemporaryDirectory(prefix="moca-listing-") as folder:
        listing = Path(folder) / "listing.json"
        _fetch_object(base, version, listing)
        entries = json.loads(listing.read_text())
    for entry in entries:
        relpath = Path(entry["relpath"])
        if relpath.is_absolute() or ".." in relpath.parts:
            raise DataError(_object_uri(base, version), f"unsafe path {entry['relpath']!r} in listing")
    return entries


def fetch_files(base: str, entries: Iterable[dict[str, Any]], into: Path, desc: str) -> None:
    """Each listed file from the remote at `base` into `into/<relpath>`, checked against its md5."""
    for entry in progress(list(entries), desc=desc):
        _fetch_object(base, entry["md5"], into / entry["relpath"])


def fetch(rev_or_version: str, out_dir: str | Path, remote: str | None = None, dvc_file: str = "data.dvc",
          root: str | Path = ".") -> Path:
    """Materialise the data version a run names into `out_dir` (a run-scoped folder) and return it.

    `rev_or_version` is a DVC md5 (`<32 hex>[.dir]`) or a git revision of `dvc_file`; `remote` is a remote's name
    in `.dvc/config` or its URL (`s3://bucket/prefix`, `file:///...`). The folder is assembled
    beside `out_dir` and renamed into place, so `out_dir` is either absent or complete. An existing `out_dir`
    holding the same version is reused; one holding anything else is an error (never overwritten).
    """
    version = rev_or_version if VERSION_PATTERN.match(rev_or_version) else version_at_rev(rev_or_version,
                                                                                          dvc_file, root)
    out_dir = Path(out_dir)
    if out_dir.exists():
        marker = out_dir / VERSION_MARKER
        if marker.is_file() and marker.read_text().strip() == version:
            return out_dir
        raise DataError(out_dir, f"exists and does not hold data version {version}; use a new run folder")
    base = remote_base(remote, root)
    staging = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if version.endswith(".dir"):
            fetch_files(base, read_listing(version, base), staging, desc=f"fetch data {version[:8]}")
        else:
            _fetch_object(base, version, staging / "data")
        atomic_write_text(staging / VERSION_MARKER, version + "\n")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
