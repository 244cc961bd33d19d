"""Infer: audio-pixel maps refined with SAM proposals (MPM) for one split (moca.infer), into the step folder as
`{frame key}.npy` saturated logits (+ `.png`), `_maps/`, `_coarse/` and `infer_manifest.json`: what the evaluate
step reads. An interrupted attempt rerun with the same settings skips the frames already predicted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.data.layout import SPLITS
from moca.errors import ConfigError
from moca.infer.config import InferConfig
from moca.steps.runner import Inputs, step


@dataclass(frozen=True)
class InferStepConfig(InferConfig):
    split: str = "test"  # the split whose frames are predicted: the one the evaluate step scores

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.split not in SPLITS:
            raise ConfigError(f"infer.split: {self.split!r} is not one of {SPLITS}")


def check(config: InferStepConfig, inputs: Inputs) -> None:
    """A released SAM without weights would propose noise for minutes: refuse it before any work."""
    from moca.models.registry import usable_weights

    if config.mpm != "none":
        usable_weights(config.sam.model, config.sam.weights, "infer.sam.weights")


def model_source(inputs: Inputs) -> str:
    """The `model` input: a train step folder, its adapters.pt, or an MLflow model URI (models:/moca@champion)."""
    value = str(inputs.upstream.get("model") or "")
    return value if ":/" in value and not Path(value).exists() else str(inputs.path("model"))


@step("infer", section="infer", config=InferStepConfig, produces="predictions", reads=("model",),
      outputs=("infer_manifest.json",), keep=True, volatile=("device",), check=check,
      data_split=lambda config: config.split)
def run(config: InferStepConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    from moca.infer import run_inference

    manifest = run_inference(model_source(inputs), inputs.dataset(), inputs.benchmark, config.split, folder, config)
    counts = manifest["counts"]
    return {"metrics": {k: counts[k] for k in ("predicted", "proposals", "kept", "fallbacks")},
            "info": {"method": manifest["method"], "split": config.split, **counts},
            "artifacts": ["infer_manifest.json"]}  # fmt: skip
