"""Register and promote: log the trained model as an MLflow pyfunc, register it, and make it `@champion` only if
it beats the current champion on the configured split and metric (ties keep the champion; moca.tracking.registry).

The model version's run also keeps the statistics of the data it was trained on (`training_data/stats.json`),
which is what the next run's validate step compares new data against (drift).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from moca.errors import ConfigError
from moca.io import read_json, write_json
from moca.steps.manifest import StepResult, digest, require_outputs, run_step
from moca.steps.tracking import TRAINING_STATS, log_step, step_tracking
from moca.tracking import runs

PROMOTION = "promotion.json"


def _backbones(model_config: Path) -> dict[str, dict[str, str]]:
    """What the frozen backbone is (the registered model names it; it is too large to copy into each version)."""
    model = (yaml.safe_load(model_config.read_text(encoding="utf-8")) or {}).get("model", {})
    weights = model.get("backbone_weights")
    if weights:
        return {model["backbone"]: {"uri": str(weights["uri"]), "sha256": str(weights.get("sha256") or "")}}
    # A randomly initialised backbone (demo, tests) is reproduced from the training seed, not from a file.
    return {model.get("backbone", "unknown"): {"uri": "random-init", "sha256": ""}}


def register_and_promote(model: str | Path, evaluation: str | Path, training_stats: str | Path | None,
                         out: str | Path, data_version: str, config_hash: str, split: str, metric: str,
                         parent_run_id: str | None, model_name: str = "moca") -> StepResult:
    """`model` is the train step's model folder (adapters.pt, config.yaml); `evaluation` its evaluation.json."""
    from moca.tracking.pyfunc import log_model
    from moca.tracking.registry import register_and_promote as register

    if not parent_run_id:
        raise ConfigError("register_and_promote runs inside a tracked pipeline run (pass parent_run_id)")
    model, evaluation, out = Path(model), Path(evaluation), Path(out)
    scores = read_json(evaluation)
    step_config = {"model_name": model_name, "split": split, "metric": metric, "config_hash": config_hash}
    inputs = {"model": digest(model / "adapters.pt"), "evaluation": digest(evaluation), "data": data_version}

    def body(folder: Path) -> dict:
        if scores.get("split") != split:
            raise ConfigError(f"{evaluation}: scores are for split {scores.get('split')!r}, promotion uses {split!r}")
        model_uri = log_model(model / "adapters.pt", model / "config.yaml", _backbones(model / "config.yaml"))
        if training_stats is not None:
            runs.log_artifacts(Path(training_stats), artifact_path=str(Path(TRAINING_STATS).parent))
        others = {f"{split}.{name}": scores[name] for name in ("miou", "fscore") if name != metric}
        decision = register(model_uri, metric, scores[metric], split, name=model_name, metrics=others,
                            tags={"data_version": data_version, "config_hash": config_hash})
        record: dict[str, Any] = {**asdict(decision), "model_uri": model_uri, "model_name": model_name}
        write_json(folder / PROMOTION, record)
        return {"metrics": {"promoted": decision.promoted, "version": float(decision.version)}, "info": record,
                "artifacts": [PROMOTION]}

    with step_tracking("register_and_promote", parent_run_id, step_config):
        result = run_step("register_and_promote", out, inputs, step_config, body, data_version=data_version)
        log_step(result)
    require_outputs(out / PROMOTION)
    return result
