"""Ingest: put the exact dataset version a run names into the step folder (`data/`), and name that version.

With `rev` (a DVC md5, or a git revision of the `.dvc` file) the version is fetched from the DVC remote and checked
file by file (moca.versioning); the data version is the DVC md5. Without it the folder is copied as it is and the
data version is its content hash (relative paths + file sha256s), so the same bytes get the same version.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.data.layout import check_benchmark, metadata_path
from moca.errors import DataError
from moca.io import sha256_tree
from moca.steps.runner import Inputs, StepResult, step

DATA = "data"


@dataclass
class IngestConfig:
    path: str = "data"  # the DVC-tracked dataset folder (AVSBench root), relative to the working directory
    rev: str = ""  # a DVC md5 or a git revision whose data.dvc names the version to fetch; "" = the folder as is
    # The DVC remote to fetch from: a name in .dvc/config, or a URL (s3://bucket/prefix), which pods need since
    # they have no DVC checkout; "" = the repository's default remote.
    remote: str = ""
    benchmark: str = "s4"

    def __post_init__(self) -> None:
        check_benchmark(self.benchmark)


def _fetch(config: IngestConfig, into: Path) -> str:
    """Materialise the data into `into`; returns its data version."""
    source = Path(config.path)
    if config.rev:
        from moca.versioning import VERSION_PATTERN, fetch, version_at_rev

        rev = config.rev
        version = rev if VERSION_PATTERN.match(rev) else version_at_rev(rev, f"{source.as_posix()}.dvc")
        fetch(version, into, remote=config.remote or None)
        return version
    if not source.is_dir():
        raise DataError(source, "dataset folder not found")
    # Hard links would let a later edit of the source change an ingested version in place: copy.
    shutil.copytree(source, into)
    return sha256_tree(into)


def _source(config: IngestConfig, inputs: Inputs) -> dict[str, str]:
    """With a rev, the revision names the content; without, the folder's current content does."""
    if config.rev:
        return {"source": config.rev}
    if not Path(config.path).is_dir():
        raise DataError(config.path, "dataset folder not found")
    return {"source": sha256_tree(config.path)}


@step("ingest", section="data", config=IngestConfig, produces="dataset", outputs=(DATA,), key_inputs=_source)
def run(config: IngestConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    """DVC-fetch (`rev`) or copy `config.path` into `folder/data`; the manifest's `info.data_version` names it.
    A git rev is resolved against the current directory's DVC repository."""
    version = _fetch(config, folder / DATA)
    if not metadata_path(folder / DATA, config.benchmark).is_file():
        raise DataError(metadata_path(folder / DATA, config.benchmark),
                        f"not a {config.benchmark} dataset: metadata missing")  # fmt: skip
    return {"info": {"data_version": version, "data": DATA, "fetched_with": "dvc" if config.rev else "copy"}}


def data_version(result: StepResult) -> str:
    return str(result.info["data_version"])
