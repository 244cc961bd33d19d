"""Infer: audio-pixel maps refined with SAM proposals (MPM) for the evaluation split (moca.infer), into
`out/predictions/` as `{frame key}.npy` saturated logits, which is what the evaluate step reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moca.steps.manifest import StepResult, digest, require_outputs, run_step
from moca.steps.tracking import log_step, step_tracking

PREDICTIONS = "predictions"


def infer(data: str | Path, model: str | Path, out: str | Path, benchmark: str, split: str, data_version: str,
          config: dict[str, Any] | None = None, parent_run_id: str | None = None) -> StepResult:
    """`model` is the train step's model folder (adapters.pt + config.yaml); `config` an InferConfig mapping."""
    from moca.infer import infer_config, run_inference

    data, model, out = Path(data), Path(model), Path(out)
    settings = infer_config(config or {})  # fail on a bad config before any work
    step_config = {"benchmark": benchmark, "split": split, "infer": dict(config or {})}

    def body(folder: Path) -> dict:
        manifest = run_inference(model, data, benchmark, split, folder / PREDICTIONS, settings)
        counts = manifest["counts"]
        return {"metrics": {k: counts[k] for k in ("predicted", "proposals", "kept", "fallbacks")},
                "info": {"method": manifest["method"], "predictions": PREDICTIONS}}  # fmt: skip

    inputs = {"data": data_version, "model": digest(model / "adapters.pt"),
              "model_config": digest(model / "config.yaml")}
    with step_tracking("infer", parent_run_id, step_config):
        result = run_step("infer", out, inputs, step_config, body, data_version=data_version)
        log_step(result)
    require_outputs(out / PREDICTIONS)
    return result
