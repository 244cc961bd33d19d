"""Evaluate: official AVSBench scores of the predictions (moca.evaluate), as JSON and a Markdown table.

A failure here (missing or unreadable prediction, no annotated frames) raises, so nothing gets registered.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from moca.errors import MocaError
from moca.io import atomic_write_text, write_json
from moca.steps.config import EvaluateConfig
from moca.steps.manifest import StepResult, digest, require_outputs, run_step
from moca.steps.tracking import log_step, step_tracking

SCORES, TABLE = "evaluation.json", "evaluation.md"


def render_table(result: dict[str, Any]) -> str:
    lines = [f"## Evaluation: {result['benchmark']} / {result['split']} ({result['protocol']} protocol)", "",
             "| metric | value |", "|---|---|", f"| mIoU | {result['miou']:.4f} |",
             f"| F-score | {result['fscore']:.4f} |",
             f"| videos | {result['num_videos']} |", f"| frames | {result['num_frames']} |"]  # fmt: skip
    if result.get("per_category"):
        lines += ["", "| category | mIoU | F-score | videos |", "|---|---|---|---|"]
        lines += [f"| {name} | {row['miou']:.4f} | {row['fscore']:.4f} | {row['num_videos']} |"
                  for name, row in result["per_category"].items()]  # fmt: skip
    return "\n".join(lines) + "\n"


def evaluate(predictions: str | Path, data: str | Path, out: str | Path, benchmark: str, data_version: str,
             config: EvaluateConfig | None = None, parent_run_id: str | None = None) -> StepResult:
    from moca.evaluate import evaluate_predictions

    predictions, data, out = Path(predictions), Path(data), Path(out)
    config = config or EvaluateConfig()
    step_config = {"benchmark": benchmark, **asdict(config)}

    def body(folder: Path) -> dict:
        result = evaluate_predictions(predictions, data, benchmark, config.split, config.protocol)
        scores = {"miou": result["miou"], "fscore": result["fscore"]}
        if not all(math.isfinite(v) for v in scores.values()):
            raise MocaError(f"{predictions}: evaluation produced non-finite scores {scores}; "
                            "nothing will be registered")
        write_json(folder / SCORES, result)
        atomic_write_text(folder / TABLE, render_table(result))
        return {"metrics": {f"{config.split}.{k}": v for k, v in scores.items()},
                "info": {"split": config.split, "metric": config.metric, **scores}, "artifacts": [SCORES, TABLE]}

    inputs = {"data": data_version, "predictions": digest(predictions)}
    with step_tracking("evaluate", parent_run_id, step_config):
        result = run_step("evaluate", out, inputs, step_config, body, data_version=data_version)
        log_step(result)
    require_outputs(out / SCORES, out / TABLE)
    return result
