"""The pipeline config (`configs/pipeline_*.yaml`): the step configs composed, one section per step, parsed once.

Each step section IS that step's config dataclass (`data` -> ingest, `validate`, `mining` -> mine_pairs, `train`,
`infer`, `evaluate`, `register`), so a key means the same thing in `moca mine-pairs`, `moca train` and the
pipeline, and `--set mining.k=5` works everywhere. `train` may name a training YAML (relative to the pipeline
config) instead of spelling it out, or `include` one and override some of its top-level keys. `kfp` says how
Kubeflow runs the steps and `retrain` how Prefect schedules them; neither changes what a run computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from moca.config import apply_overrides, config_hash, from_dict, load_yaml, plain
from moca.errors import ConfigError
from moca.mining import MiningConfig
from moca.steps.evaluate import EvaluateConfig
from moca.steps.infer import InferStepConfig
from moca.steps.ingest import IngestConfig
from moca.steps.register import RegisterConfig
from moca.steps.validate import ValidateConfig
from moca.train.run import TrainConfig

COMPONENTS = ("start_run", "ingest", "validate", "stop_run", "mine_pairs", "train", "infer", "evaluate", "register",
              "finish_run")
STEP_SECTIONS = ("data", "validate", "mining", "train", "infer", "evaluate", "register")
# The one label GPU nodes carry (NVIDIA GPU feature discovery sets it), and their taint: the pipeline's GPU tasks,
# the PyTorchJob (k8s/overlays/gpu) and the docs all use these (tests/k8s checks that they agree).
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class GpuConfig:
    enabled: bool = False  # request an accelerator for the GPU components (train, infer)
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = 1
    node_selector: dict[str, str] = field(default_factory=lambda: dict(GPU_NODE_SELECTOR))
    tolerations: list[dict[str, Any]] = field(default_factory=lambda: [dict(GPU_TOLERATION)])


@dataclass
class ResourceConfig:
    """CPU and memory of one task's container (Kubernetes quantities)."""

    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "2Gi"
    memory_limit: str = "8Gi"


@dataclass
class WeightsCacheConfig:
    """The volume backbone weights are cached on, mounted where MOCA_WEIGHTS_CACHE points (k8s/base/kfp)."""

    pvc: str = "moca-weights-cache"  # "" = no volume (each task fetches weights into its own scratch)
    path: str = "/cache/weights"
    # The tasks that load released weights: register too, since the model must predict its serving example
    # (the backbone built) before it is logged (moca.tracking.pyfunc.log_model).
    components: tuple[str, ...] = ("mine_pairs", "train", "infer", "register")


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
    # What each pod's environment is made of: Secret and ConfigMap keys (in the pipeline's namespace, k8s/base/kfp)
    # set as env vars of the same name. The pods have no other configuration.
    secret_env: dict[str, list[str]] = field(default_factory=lambda: {
        "moca-s3": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]})
    config_map_env: dict[str, list[str]] = field(default_factory=lambda: {"moca-env": [
        "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "AWS_DEFAULT_REGION",
        "MOCA_WEIGHTS_CACHE", "MOCA_ALLOWED_ROOTS", "DVC_NO_ANALYTICS", "DO_NOT_TRACK"]})
    weights_cache: WeightsCacheConfig = field(default_factory=WeightsCacheConfig)
    # Requests and limits per component; `default` for those not named.
    resources: dict[str, ResourceConfig] = field(default_factory=lambda: {"default": ResourceConfig()})

    def __post_init__(self) -> None:
        named = set(self.images) | set(self.gpu_components) | set(self.weights_cache.components)
        unknown = (named | set(self.resources) - {"default"}) - set(COMPONENTS)
        if unknown:
            raise ConfigError(f"kfp: unknown component(s) {sorted(unknown)}; known: {COMPONENTS}")
        if "default" not in self.resources:
            raise ConfigError("kfp.resources: needs a `default` entry (the tasks not named)")

    def image(self, component: str) -> str:
        default = self.gpu_image if component in self.gpu_components else self.cpu_image
        return self.images.get(component, default)

    def resources_of(self, component: str) -> ResourceConfig:
        return self.resources.get(component, self.resources["default"])


@dataclass
class RetrainConfig:
    """The Prefect retraining flow (moca.pipelines.retrain_flow)."""

    cron: str = "0 3 * * *"  # 5-field cron (Prefect); Kubeflow recurring runs use 6 fields
    # Names the newest data version: a local .dvc file, or a data pointer in the store (s3://.../NAME.dvc), which
    # is what the flow reads in its image (no checkout there).
    dvc_file: str = "data.dvc"
    webhook_url: str = ""  # POSTed a JSON summary of each flow run; "" = log only
    wait_timeout_s: int = 6 * 3600  # how long to wait for a Kubeflow run


@dataclass
class PipelineConfig:
    name: str = "moca-training"
    experiment: str = "moca"  # the MLflow experiment of the pipeline runs
    model_name: str = "moca"  # the registered model: drift reference and where new versions go
    data: IngestConfig = field(default_factory=IngestConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferStepConfig = field(default_factory=InferStepConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    register: RegisterConfig = field(default_factory=RegisterConfig)
    kfp: KfpConfig = field(default_factory=KfpConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    def __post_init__(self) -> None:
        for (key, value), (other, expected) in (
            (("train.data.benchmark", self.train.data.benchmark), ("data.benchmark", self.data.benchmark)),
            (("mining.split", self.mining.split), ("train.data.split", self.train.data.split)),
            (("infer.split", self.infer.split), ("evaluate.split", self.evaluate.split)),
        ):  # fmt: skip
            if value != expected:
                raise ConfigError(f"{key} is {value!r} but {other} is {expected!r}; the pipeline needs them equal")

    def section(self, name: str) -> dict[str, Any]:
        """A section as plain JSON data (what components receive as a string parameter)."""
        return plain(getattr(self, name))

    def model_config_hash(self) -> str:
        """Hash of everything that decides the model (`kfp` and `retrain` only decide where and when it runs)."""
        return config_hash({name: self.section(name) for name in STEP_SECTIONS})


def _is_step_config(raw: dict[str, Any], section: str) -> bool:
    """Whether a YAML given for step section `section` is that section itself (configs/demo.yaml for train) rather
    than a pipeline config: its keys are that section's fields (or, with a stray key, more of them are)."""
    keys = set(raw)
    own = {f.name for f in fields(get_type_hints(PipelineConfig)[section])}
    pipeline = {f.name for f in fields(PipelineConfig)}
    if keys <= own or not keys:
        return bool(keys)
    return not keys <= pipeline and len(keys & own) >= len(keys & pipeline)


def _resolve_include(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`train: FILE` or `train: {include: FILE, key: override}`: the training YAML beside the pipeline config."""
    train = raw.get("train")
    if isinstance(train, str):
        train = {"include": train}
    if isinstance(train, dict) and "include" in train:
        overrides = {k: v for k, v in train.items() if k != "include"}
        raw = {**raw, "train": {**load_yaml(folder / str(train["include"])), **overrides}}
    return raw


def load_config(path: str | Path | None = None, overrides: Sequence[str] = (), section: str | None = None,
                ) -> PipelineConfig:  # fmt: skip
    """The config of a run: the YAML at `path` (a pipeline config, or with `section` also that step's own YAML,
    which becomes that section), then the `--set key=value` overrides, parsed and typed once."""
    raw = load_yaml(path) if path is not None else {}
    if section is not None and _is_step_config(raw, section):
        raw = {section: raw}
    if path is not None:
        raw = _resolve_include(raw, Path(path).parent)
    return from_dict(PipelineConfig, apply_overrides(raw, overrides), f"{path}:" if path is not None else "")


def load_pipeline_config(path: str | Path, overrides: Sequence[str] = ()) -> PipelineConfig:
    """A config for a whole pipeline run, every step's settings checked now (weights named with their hash, the
    benchmark the training expects), not in a pod an hour into the run."""
    return check_pipeline_config(load_config(path, overrides))


def check_pipeline_config(config: PipelineConfig) -> PipelineConfig:
    """Run every step's own check on its section (returns `config`)."""
    from moca.steps import PIPELINE, step_spec
    from moca.steps.runner import Inputs

    inputs = Inputs(benchmark=config.data.benchmark)
    for name in PIPELINE:
        spec = step_spec(name)
        if spec.check is not None:
            spec.check(getattr(config, spec.section), inputs)
    return config
