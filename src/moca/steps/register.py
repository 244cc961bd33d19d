"""Register and promote: log the trained model as an MLflow pyfunc, register it, and make it `@champion` only if
it beats the current champion on the evaluated split and the configured metric (ties keep the champion;
moca.tracking.registry). Runs only inside a tracked pipeline run (it records under the parent run).

The model version's run also keeps the statistics of the data it was trained on (`training_data/stats.json`, from
the validate step's folder), which is what the next run's validate step compares new data against (drift).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from moca.errors import ConfigError
from moca.io import read_json, write_json
from moca.steps.evaluate import SCORES
from moca.steps.runner import Inputs, step

PROMOTION = "promotion.json"
METRICS = ("miou", "fscore")  # both higher-is-better


@dataclass
class RegisterConfig:
    metric: str = "miou"  # what promotion compares: miou or fscore (higher is better)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"register.metric: {self.metric!r} is not one of {', '.join(METRICS)}")


def _backbones(model_config: Path) -> dict[str, dict[str, str]]:
    """What the frozen backbone is (the registered model names it; it is too large to copy into each version)."""
    model = (yaml.safe_load(model_config.read_text(encoding="utf-8")) or {}).get("model", {})
    weights = model.get("backbone_weights")
    if weights:
        return {model["backbone"]: {"uri": str(weights["uri"]), "sha256": str(weights.get("sha256") or "")}}
    # A randomly initialised backbone (demo, tests) is reproduced from the training seed, not from a file.
    return {model.get("backbone", "unknown"): {"uri": "random-init", "sha256": ""}}


def _model_name(config: RegisterConfig, inputs: Inputs) -> dict[str, str]:
    return {"model_name": inputs.model_name, "config_hash": inputs.config_hash}


@step("register", section="register", config=RegisterConfig, produces="promotion",
      reads=("model", "evaluation", "report"), outputs=(PROMOTION,), key_inputs=_model_name)
def run(config: RegisterConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    """`model` is a train step folder (adapters.pt, config.yaml), `evaluation` an evaluate step folder, `report`
    (optional) a validate step folder whose stats.json describes the training data.

    The scores are metrics of the logged model (what the registry compares and the UI shows on the version) and of
    this run, measured on the data version (mlflow.data); the evaluation tables go with them."""
    from moca.steps.evaluate import table_files
    from moca.tracking import runs
    from moca.tracking.datasets import data_input
    from moca.tracking.pyfunc import log_model
    from moca.tracking.registry import TRAINING_STATS, check_scores, log_scores, register_and_promote

    if not inputs.parent_run_id or not inputs.data_version:
        raise ConfigError("the register step runs inside a tracked pipeline run: it needs the parent run id and "
                          "the data version")
    model, evaluation = inputs.path("model"), inputs.path("evaluation")
    result = read_json(evaluation / SCORES)
    split = str(result.get("split"))
    scores = {f"{split}.{name}": result.get(name) for name in METRICS}
    check_scores(scores, str(evaluation / SCORES))
    logged = log_model(model / "adapters.pt", model / "config.yaml", _backbones(model / "config.yaml"))
    log_scores(logged.model_id, scores, data_input(inputs.data_version, str(result.get("benchmark", inputs.benchmark))))
    for artifact_file, path in table_files(evaluation).items():
        runs.log_table(read_json(path), artifact_file)
    if inputs.upstream.get("report") and (inputs.path("report") / "stats.json").is_file():
        runs.log_artifacts(inputs.path("report") / "stats.json", artifact_path=str(Path(TRAINING_STATS).parent))
    decision = register_and_promote(logged.model_uri, config.metric, split, name=inputs.model_name,
                                    tags={"data_version": inputs.data_version, "config_hash": inputs.config_hash})
    record: dict[str, Any] = {**asdict(decision), "model_uri": logged.model_uri, "model_name": inputs.model_name}
    write_json(folder / PROMOTION, record)
    return {"metrics": scores, "info": record, "artifacts": [PROMOTION]}
