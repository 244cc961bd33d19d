"""Ingest: put the exact dataset version a run names into the run folder, and name that version.

The data version is the content hash of the dataset folder (relative paths + file sha256s), so the same bytes get
the same version wherever they came from; a `rev` fetches the version that git revision's `data.dvc` points to.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from moca.data.layout import check_benchmark, metadata_path
from moca.errors import ConfigError, DataError
from moca.io import sha256_tree
from moca.steps.manifest import StepResult, digest, require_outputs, run_step
from moca.steps.tracking import log_step, step_tracking

DATA = "data"


def _fetch(source: Path, rev: str, into: Path) -> None:
    if rev:
        try:
            from moca.dvc import fetch  # type: ignore[attr-defined]
        except ImportError as exc:
            raise ConfigError(f"data.rev={rev!r} needs DVC support (moca.dvc), which this installation lacks") from exc
        fetch(source, rev, into)
        return
    if not source.is_dir():
        raise DataError(source, "dataset folder not found")
    # Hard links would let a later edit of the source change an ingested version in place: copy.
    shutil.copytree(source, into)


def ingest(source: str | Path, out: str | Path, benchmark: str, rev: str = "",
           parent_run_id: str | None = None) -> StepResult:
    """Copy (or DVC-fetch at `rev`) the dataset into `out/data`; the manifest's `info.data_version` names it."""
    source, out = Path(source), Path(out)
    check_benchmark(benchmark)
    config = {"source": str(source), "rev": rev, "benchmark": benchmark}
    # With a rev, the revision names the content; without, the folder's current content does.
    inputs = {"source": rev} if rev else {"source": digest(source)}

    def body(folder: Path) -> dict:
        _fetch(source, rev, folder / DATA)
        if not metadata_path(folder / DATA, benchmark).is_file():
            raise DataError(metadata_path(folder / DATA, benchmark), f"not a {benchmark} dataset: metadata missing")
        return {"info": {"data_version": sha256_tree(folder / DATA), "data": DATA}}

    with step_tracking("ingest", parent_run_id, config):
        result = run_step("ingest", out, inputs, config, body)
        log_step(result)
    require_outputs(out / DATA)
    return result


def data_version(result: StepResult) -> str:
    return str(result.info["data_version"])
