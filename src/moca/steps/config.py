"""The pipeline config (`configs/pipeline_*.yaml`): one section per step plus how Kubeflow runs them.

Step sections reuse the libraries' own config dataclasses (validation, drift, mining, training), so a key means
the same thing in `moca mine-pairs`, `moca train` and the pipeline. `train` may name a training YAML (relative to
the pipeline config) instead of spelling it out, or `include` one and override some of its top-level keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moca.config import config_hash, from_dict, load_yaml, to_dict
from moca.data.layout import SPLITS, check_benchmark
from moca.errors import ConfigError
from moca.mining import MiningConfig
from moca.validation.drift import DriftThresholds
from moca.validation.suites import ValidationConfig

COMPONENTS = ("start_run", "ingest", "validate", "stop_run", "mine_pairs", "train", "infer", "evaluate", "register")


@dataclass
class DataSource:
    path: str = "data"  # the DVC-tracked dataset folder (AVSBench root), relative to the working directory
    rev: str = ""  # git revision whose data.dvc names the version to fetch; "" = the folder as it is
    # The DVC remote to fetch from: a name in .dvc/config, or a URL (s3://bucket/prefix), which pods need since
    # they have no DVC checkout; "" = the repository's default remote.
    remote: str = ""
    benchmark: str = "s4"

    def __post_init__(self) -> None:
        check_benchmark(self.benchmark)


@dataclass
class EvaluateConfig:
    split: str = "test"
    metric: str = "miou"  # what promotion compares: miou or fscore (higher is better)
    protocol: str = "binary"

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"evaluate.split: {self.split!r} is not one of {SPLITS}")
        if self.metric not in ("miou", "fscore"):
            raise ConfigError(f"evaluate.metric: {self.metric!r} is not one of miou, fscore")


@dataclass
class GpuConfig:
    enabled: bool = False  # request an accelerator for the GPU components (train, infer)
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = 1
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)  # {key, operator, value, effect}


@dataclass
class KfpConfig:
    # Images pinned by digest on a cluster (repo@sha256:...); `images` overrides one component's image.
    cpu_image: str = "moca-cpu:0.1.0"
    gpu_image: str = "moca-gpu:0.1.0"
    gpu_components: tuple[str, ...] = ("train", "infer")
    images: dict[str, str] = field(default_factory=dict)
    retries: int = 2
    backoff_s: int = 30
    gpu: GpuConfig = field(default_factory=GpuConfig)
    pod_labels: dict[str, str] = field(default_factory=lambda: {"moca.io/pipeline-access": "true"})
    caching: bool = True

    def __post_init__(self) -> None:
        unknown = (set(self.images) | set(self.gpu_components)) - set(COMPONENTS)
        if unknown:
            raise ConfigError(f"kfp: unknown component(s) {sorted(unknown)}; known: {COMPONENTS}")

    def image(self, component: str) -> str:
        default = self.gpu_image if component in self.gpu_components else self.cpu_image
        return self.images.get(component, default)


@dataclass
class RetrainConfig:
    """The Prefect retraining flow (pipelines/retrain_flow.py)."""

    cron: str = "0 3 * * *"  # 5-field cron (Prefect); Kubeflow recurring runs use 6 fields
    dvc_file: str = "data.dvc"  # names the newest data version
    webhook_url: str = ""  # POSTed a JSON summary of each flow run; "" = log only
    wait_timeout_s: int = 6 * 3600  # how long to wait for a Kubeflow run


@dataclass
class PipelineConfig:
    name: str = "moca-training"
    experiment: str = "moca"
    model_name: str = "moca"
    data: DataSource = field(default_factory=DataSource)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    drift: DriftThresholds = field(default_factory=DriftThresholds)
    mining: MiningConfig = field(default_factory=MiningConfig)
    train: dict[str, Any] = field(default_factory=dict)  # a moca.train TrainConfig mapping
    infer: dict[str, Any] = field(default_factory=dict)  # a moca.infer config mapping
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    kfp: KfpConfig = field(default_factory=KfpConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    def section(self, name: str) -> dict[str, Any]:
        """A step's config as plain JSON data (what components receive as a string parameter)."""
        value = getattr(self, name)
        return json.loads(json.dumps(value if isinstance(value, dict) else to_dict(value), default=str))

    def model_config_hash(self) -> str:
        """Hash of everything that decides the model (the Kubeflow section only decides where it runs)."""
        return config_hash({k: self.section(k) for k in ("data", "validation", "mining", "train", "infer", "evaluate")})


def load_pipeline_config(path: str | Path) -> PipelineConfig:
    path = Path(path)
    raw = load_yaml(path)
    train = raw.get("train", {})
    if isinstance(train, str):  # a training YAML beside the pipeline config
        train = {"include": train}
    if isinstance(train, dict) and "include" in train:  # that YAML, with the other keys overriding its top level
        overrides = {k: v for k, v in train.items() if k != "include"}
        raw["train"] = {**load_yaml(path.parent / str(train["include"])), **overrides}
    config = from_dict(PipelineConfig, raw, where=str(path))
    from moca.train.run import TrainConfig

    from moca.infer import infer_config

    # Fail now, not in the train or infer pod an hour into the run.
    from_dict(TrainConfig, config.train, where=f"{path}: train")
    infer_config(config.infer)
    return config
