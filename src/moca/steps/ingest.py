"""Ingest: make the exact dataset version a run names readable by the steps, and name that version.

What a run may name (`rev`), and the data version it becomes (the content address every later step records):
- a DVC md5 (`<md5>.dir`): that version, fetched from the DVC remote and checked file by file (moca.versioning);
- a data pointer, a `.dvc` file in the store (`s3://moca-data/pointers/s4.dvc`, `moca data publish`): the version
  it names when the run resolves it, so a recurring run picks up each new version without a git checkout;
- a git revision of `data.dvc`: the version it names there (needs the checkout: `moca pipeline run` resolves it on
  the submitting machine, since pods have none);
- "" (local runs): the folder `path` as it is, copied; its version is its content hash (relative paths + file
  sha256s), and a 64-hex `rev` is such a hash, which the copy must match.

With `by_reference` (a DVC version on a cluster) the step checks the version is in the remote and writes only a
reference (`reference.json`: version, remote URL, benchmark); each later task then fetches just the split it reads
(`materialised`), instead of every task downloading the whole dataset artifact.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.data.layout import check_benchmark, list_videos, metadata_path
from moca.errors import ConfigError, DataError
from moca.io import read_json, sha256_tree, write_json
from moca.steps.runner import Inputs, StepResult, step

log = logging.getLogger("moca.steps")
DATA, REFERENCE = "data", "reference.json"
CONTENT_HASH = re.compile(r"^[0-9a-f]{64}$")  # sha256_tree of a folder


@dataclass
class IngestConfig:
    path: str = "data"  # the DVC-tracked dataset folder (AVSBench root), relative to the working directory
    # A DVC md5, a data pointer URI (s3://.../NAME.dvc), a git revision of `path`.dvc, or "" = the folder as is.
    rev: str = ""
    # The DVC remote to fetch from: a name in .dvc/config, or a URL (s3://bucket/prefix), which pods need since
    # they have no DVC checkout; "" = the repository's default remote.
    remote: str = ""
    benchmark: str = "s4"
    # Pass a reference to the version instead of a copy (a cluster: each task fetches only the split it reads).
    by_reference: bool = False

    def __post_init__(self) -> None:
        check_benchmark(self.benchmark)


def resolve_version(config: IngestConfig) -> str:
    """The content address of the data `config` names, resolved now (a pointer is read, a git rev looked up)."""
    from moca.versioning import VERSION_PATTERN, data_version, is_pointer, version_at_rev

    rev = config.rev
    if not rev:
        if not Path(config.path).is_dir():
            raise DataError(config.path, "dataset folder not found")
        return sha256_tree(config.path)
    if VERSION_PATTERN.match(rev) or CONTENT_HASH.match(rev):
        return rev
    if is_pointer(rev):
        return data_version(rev)
    try:
        return version_at_rev(rev, f"{Path(config.path).as_posix()}.dvc")
    except DataError as exc:
        raise DataError(rev, f"a git revision, which cannot be resolved here ({exc.problem}); name a DVC md5 or a "
                             "data pointer (s3://.../NAME.dvc, `moca data publish`), or submit from a checkout, "
                             "which resolves it") from exc  # fmt: skip


def _copy(config: IngestConfig, into: Path, expected: str) -> str:
    source = Path(config.path)
    if not source.is_dir():
        raise DataError(source, "dataset folder not found")
    # Hard links would let a later edit of the source change an ingested version in place: copy.
    shutil.copytree(source, into)
    version = sha256_tree(into)
    if expected and version != expected:
        raise DataError(source, f"content changed since the run named it ({expected[:12]} -> {version[:12]})")
    return version


def _reference(config: IngestConfig, version: str, folder: Path) -> dict[str, Any]:
    """Check `version` is in the remote and holds a dataset of the benchmark; write the reference to it."""
    from moca.versioning import read_listing, remote_base

    if not version.endswith(".dir"):
        raise ConfigError(f"data.by_reference needs a DVC folder version, not {version!r}")
    base = remote_base(config.remote or None)
    relpaths = {entry["relpath"] for entry in read_listing(version, base)}
    metadata = metadata_path(".", config.benchmark).as_posix()
    if metadata not in relpaths:
        raise DataError(f"{base} {version}", f"not a {config.benchmark} dataset: {metadata} missing")
    reference = {"data_version": version, "remote": base, "benchmark": config.benchmark, "files": len(relpaths)}
    write_json(folder / REFERENCE, reference)
    return reference


def _source(config: IngestConfig, inputs: Inputs) -> dict[str, str]:
    """With a rev, the revision names the content; without, the folder's current content does."""
    if config.rev:
        return {"source": config.rev}
    if not Path(config.path).is_dir():
        raise DataError(config.path, "dataset folder not found")
    return {"source": sha256_tree(config.path)}


@step("ingest", section="data", config=IngestConfig, produces="dataset", key_inputs=_source)
def run(config: IngestConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    """Fetch or copy the data into `folder/data`, or (`by_reference`) write `folder/reference.json`; the
    manifest's `info.data_version` names the version. A git rev is resolved against the current directory."""
    version = resolve_version(config) if config.rev else ""
    if config.by_reference:
        reference = _reference(config, version, folder)
        return {"info": {"data_version": version, "reference": REFERENCE, "fetched_with": "reference",
                         "files": reference["files"]}}  # fmt: skip
    if version and not CONTENT_HASH.match(version):
        from moca.versioning import fetch

        fetch(version, folder / DATA, remote=config.remote or None)
    else:
        version = _copy(config, folder / DATA, version)
    if not metadata_path(folder / DATA, config.benchmark).is_file():
        raise DataError(metadata_path(folder / DATA, config.benchmark),
                        f"not a {config.benchmark} dataset: metadata missing")  # fmt: skip
    return {"info": {"data_version": version, "data": DATA,
                     "fetched_with": "copy" if CONTENT_HASH.match(version) else "dvc"}}  # fmt: skip


def data_version(result: StepResult) -> str:
    return str(result.info["data_version"])


def _owned_by_other_splits(root: Path, benchmark: str, split: str) -> tuple[set[str], set[str]]:
    """(files, folders) relative to `root` that belong to videos of splits other than `split`."""
    files, folders = set(), set()
    for video in list_videos(root, benchmark):
        if video.split == split:
            continue
        files.add(video.audio.relative_to(root).as_posix())
        for frame in video.frames:
            for path in (frame.image, frame.mask):
                if path is not None:
                    folders.add(path.parent.relative_to(root).as_posix())
    return files, folders


def _split_entries(entries: list[dict[str, Any]], root: Path, benchmark: str, split: str) -> list[dict[str, Any]]:
    """The listed files a reader of `split` needs: everything but the other splits' videos (so shared files such
    as metadata always come along)."""
    files, folders = _owned_by_other_splits(root, benchmark, split)
    return [e for e in entries if e["relpath"] not in files and e["relpath"].rsplit("/", 1)[0] not in folders]


@contextlib.contextmanager
def materialised(dataset: str | Path, split: str | None = None) -> Iterator[Path]:
    """The dataset root an ingest step folder gives access to: its `data/` folder, or, for a reference, a scratch
    folder holding the files of `split` (all of them with None) fetched from the remote, removed afterwards."""
    from moca.versioning import fetch_files, read_listing

    dataset = Path(dataset)
    if (dataset / DATA).is_dir():
        yield dataset / DATA
        return
    if not (dataset / REFERENCE).is_file():
        raise DataError(dataset, f"holds neither {DATA}/ nor {REFERENCE}: not an ingest step's output")
    reference = read_json(dataset / REFERENCE)
    version, base, benchmark = reference["data_version"], reference["remote"], reference["benchmark"]
    with tempfile.TemporaryDirectory(prefix="moca-data-") as scratch:
        root = Path(scratch) / DATA
        entries = read_listing(version, base)
        metadata = metadata_path(".", benchmark).as_posix()
        fetch_files(base, [e for e in entries if e["relpath"] == metadata], root, desc="fetch metadata")
        if split is not None:
            entries = _split_entries(entries, root, benchmark, split)
        rest = [e for e in entries if e["relpath"] != metadata]
        fetch_files(base, rest, root, desc=f"fetch {split or 'all'} data {version[:8]}")
        moved = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        log.info("data %s (%s split): fetched %d files, %d bytes", version, split or "every", len(rest) + 1, moved)
        yield root
