"""Evaluate: official AVSBench scores of the predictions (moca.evaluate), as `evaluation.json`, a Markdown table
`evaluation.md`, the per-video (and per-category, per-class) tables as JSON rows (MLflow tables in a tracked run)
and, for a MoCA prediction folder, `qualitative.png`. A failure (missing or unreadable prediction, no annotated
frame, a non-finite score) raises, so nothing gets registered."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.data.layout import SPLITS
from moca.errors import ConfigError, MocaError
from moca.io import atomic_write_text, write_json
from moca.steps.runner import Inputs, step

SCORES, TABLE, FIGURE = "evaluation.json", "evaluation.md", "qualitative.png"
# The tables of a result: its key, and the name of each row's key column.
TABLES = {"per_video": "video", "per_category": "category", "per_class": "class"}


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


def table_files(folder: Path) -> dict[str, Path]:
    """The tables an evaluation folder holds, by MLflow artifact file (`evaluation/per_category.json`, ...): the
    evaluate and register runs log them under the same names, so the UI compares them across runs."""
    files = {f"evaluation/{name}.json": folder / f"{name}.json" for name in TABLES}
    return {artifact: path for artifact, path in files.items() if path.is_file()}


def _write_tables(result: dict[str, Any], folder: Path) -> dict[str, str]:
    for name, key in TABLES.items():
        if result.get(name):
            write_json(folder / f"{name}.json", [{key: label, **row} for label, row in result[name].items()])
    return {artifact: path.name for artifact, path in table_files(folder).items()}


@step("evaluate", section="evaluate", config=EvaluateConfig, produces="evaluation", reads=("predictions",),
      outputs=(SCORES, TABLE), data_split=lambda config: config.split)
def run(config: EvaluateConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    from moca.evaluate import evaluate_predictions

    predictions = inputs.path("predictions")
    result = evaluate_predictions(predictions, inputs.dataset(), inputs.benchmark, config.split, config.protocol)
    scores = {"miou": result["miou"], "fscore": result["fscore"]}
    if not all(math.isfinite(v) for v in scores.values()):
        raise MocaError(f"{predictions}: evaluation produced non-finite scores {scores}; nothing will be registered")
    write_json(folder / SCORES, result)
    atomic_write_text(folder / TABLE, render_table(result))
    tables = _write_tables(result, folder)
    figure = []
    if (predictions / "_maps").is_dir():  # a MoCA folder: its audio-pixel maps and coarse masks can be drawn
        from moca.report.figures import qualitative_grid

        title = f"{inputs.benchmark}/{config.split}: mIoU {scores['miou']:.3f}, F {scores['fscore']:.3f}"
        drawn = qualitative_grid(predictions, inputs.dataset(), inputs.benchmark, config.split, folder / FIGURE,
                                 title=title)
        figure = [FIGURE] if drawn is not None else []
    return {"metrics": {f"{config.split}.{k}": v for k, v in scores.items()},
            "info": {"split": config.split, "protocol": config.protocol, **scores, "videos": result["num_videos"],
                     "frames": result["num_frames"]},
            "artifacts": [SCORES, TABLE, *figure], "tables": tables}
