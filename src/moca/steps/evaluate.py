"""Evaluate: official AVSBench scores of the predictions (moca.evaluate), as `evaluation.json` and a Markdown
table `evaluation.md`. A failure (missing or unreadable prediction, no annotated frame, a non-finite score)
raises, so nothing gets registered."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.data.layout import SPLITS
from moca.errors import ConfigError, MocaError
from moca.io import atomic_write_text, write_json
from moca.steps.runner import Inputs, step

SCORES, TABLE = "evaluation.json", "evaluation.md"


@dataclass
class EvaluateConfig:
    split: str = "test"
    protocol: str = "binary"  # binary (S4, MS3, AVSS class-agnostic) or semantic (AVSS classes)

    def __post_init__(self) -> None:
        from moca.evaluate import PROTOCOLS

        if self.split not in SPLITS:
            raise ConfigError(f"evaluate.split: {self.split!r} is not one of {SPLITS}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"evaluate.protocol: {self.protocol!r} is not one of {PROTOCOLS}")


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


@step("evaluate", section="evaluate", config=EvaluateConfig, produces="evaluation", reads=("predictions",),
      outputs=(SCORES, TABLE))
def run(config: EvaluateConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    from moca.evaluate import evaluate_predictions

    predictions = inputs.path("predictions")
    result = evaluate_predictions(predictions, inputs.dataset(), inputs.benchmark, config.split, config.protocol)
    scores = {"miou": result["miou"], "fscore": result["fscore"]}
    if not all(math.isfinite(v) for v in scores.values()):
        raise MocaError(f"{predictions}: evaluation produced non-finite scores {scores}; nothing will be registered")
    write_json(folder / SCORES, result)
    atomic_write_text(folder / TABLE, render_table(result))
    return {"metrics": {f"{config.split}.{k}": v for k, v in scores.items()},
            "info": {"split": config.split, "protocol": config.protocol, **scores, "videos": result["num_videos"],
                     "frames": result["num_frames"]},
            "artifacts": [SCORES, TABLE]}
