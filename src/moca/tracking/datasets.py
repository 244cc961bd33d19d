"""Datasets as MLflow run inputs (`mlflow.data`): which data version every run and every score came from.

A step that reads a dataset records it on its run, named by benchmark (`avsbench-s4`), its digest the data version
(a DVC md5 `<32 hex>.dir` names the exact bytes; MLflow keeps 36 characters, which such an md5 fills exactly), its
source a `dvc` source naming the version and the folder it was read from. With the folder at hand, the dataset
carries the metadata table (one row per video), so the UI shows its schema and size. Scores logged against the
dataset (`runs.log_metrics(..., dataset=)`) point at the same name and digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.data.dataset_source import DatasetSource

MAX_DIGEST = 36  # MLflow's column width for dataset digests
VERSION_TAG = "moca.data_version"  # the full version, when it is longer than a digest may be


class DvcDatasetSource(DatasetSource):
    """A data version (DVC md5, or a content hash for an unversioned folder) and the folder a step read it from;
    `load()` fetches a DVC version from the repository's default remote into a new folder."""

    def __init__(self, version: str, path: str = "") -> None:
        self.version = version
        self.path = path

    @staticmethod
    def _get_source_type() -> str:
        return "dvc"

    def load(self, dst_path: str | None = None) -> str:
        import tempfile

        from moca.versioning import fetch

        target = Path(dst_path or tempfile.mkdtemp(prefix="moca-data-")) / "data"
        return str(fetch(self.version, target))

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # built explicitly, never guessed from a string

    @classmethod
    def _resolve(cls, raw_source: Any) -> DvcDatasetSource:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "path": self.path}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> DvcDatasetSource:
        return cls(str(source_dict.get("version", "")), str(source_dict.get("path", "")))


def dataset_name(benchmark: str) -> str:
    return f"avsbench-{benchmark}"


def data_input(version: str, benchmark: str, root: str | Path | None = None) -> Any:
    """The mlflow.data Dataset of data version `version` (with its metadata table when `root` holds it)."""
    import mlflow.data
    from mlflow.data.meta_dataset import MetaDataset

    from moca.data.layout import metadata_path

    source = DvcDatasetSource(version, str(root or ""))
    name, digest = dataset_name(benchmark), version[:MAX_DIGEST]
    metadata = metadata_path(root, benchmark) if root is not None else None
    if metadata is None or not metadata.is_file():
        return MetaDataset(source, name=name, digest=digest)
    import pandas as pd

    # Read as text: the UI shows the table's schema and row count, nothing here needs numbers.
    return mlflow.data.from_pandas(pd.read_csv(metadata, dtype=str), source=source, name=name, digest=digest)


def log_input(dataset: Any, context: str, run_id: str) -> None:
    """Record `dataset` as an input of run `run_id`, in `context` (the step that read it)."""
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)]
    if isinstance(dataset.source, DvcDatasetSource) and len(dataset.source.version) > MAX_DIGEST:
        tags.append(InputTag(VERSION_TAG, dataset.source.version))
    MlflowClient().log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=tags)])
