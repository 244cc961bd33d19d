"""Ingest: put the exact dataset version a run names into the run folder, and name that version.

With `rev` (a DVC md5, or a git revision of the `.dvc` file) the version is fetched from the DVC remote and checked
file by file (moca.versioning); the data version is the DVC md5. Without it the folder is copied as it is and the
data version is its content hash (relative paths + file sha256s), so the same bytes get the same version.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from moca.data.layout import check_benchmark, metadata_path
from moca.errors import DataError
from moca.io import sha256_tree
from moca.steps.manifest import StepResult, digest, require_outputs, run_step
from moca.steps.tracking import log_step, step_tracking

DATA = "data"


def _fetch(source: Path, rev: str, into: Path, remote: str = "") -> str:
    """Materialise the data into `into`; returns its data version."""
    if rev:
        from moca.versioning import VERSION_PATTERN, fetch, version_at_rev

        version = rev if VERSION_PATTERN.match(rev) else version_at_rev(rev, f"{source.as_posix()}.dvc")
        fetch(version, into, remote=remote or None)
        return version
    if not source.is_dir():
        raise DataError(source, "dataset folder not found")
    # Hard links would let a later edit of the source change an ingested version in place: copy.
    shutil.copytree(source, into)
    return sha256_tree(into)


def ingest(source: str | Path, out: str | Path, benchmark: str, rev: str = "", remote: str = "",
           parent_run_id: str | None = None) -> StepResult:
    """DVC-fetch (`rev`: md5 or git rev of `<source>.dvc`) or copy the dataset into `out/data`; the manifest's
    `info.data_version` names it. A rev is resolved against the current directory's DVC repo."""
    source, out = Path(source), Path(out)
    check_benchmark(benchmark)
    config = {"source": str(source), "rev": rev, "remote": remote, "benchmark": benchmark}
    # With a rev, the revision names the content; without, the folder's current content does.
    inputs = {"source": rev} if rev else {"source": digest(source)}

    def body(folder: Path) -> dict:
        version = _fetch(source, rev, folder / DATA, remote)
        if not metadata_path(folder / DATA, benchmark).is_file():
            raise DataError(metadata_path(folder / DATA, benchmark), f"not a {benchmark} dataset: metadata missing")
        return {"info": {"data_version": version, "data": DATA, "fetched_with": "dvc" if rev else "copy"}}

    with step_tracking("ingest", parent_run_id, config):
        result = run_step("ingest", out, inputs, config, body)
        log_step(result)
    require_outputs(out / DATA)
    return result


def data_version(result: StepResult) -> str:
    return str(result.info["data_version"])
