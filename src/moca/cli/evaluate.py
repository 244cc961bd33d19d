"""`moca evaluate`: the evaluate step, official AVSBench scores of a prediction folder."""

from __future__ import annotations

from pathlib import Path

import typer

from moca.cli._steps import BenchmarkOption, ConfigOption, DataOption, MetricsOption, SetOption, TrackOption


def evaluate_command(
    pred: Path = typer.Option(..., "--pred", help="Predictions: PRED/{key}.npy logits or .png maps (a `moca infer` "
                              "folder); official AVSBench save_mask output is read too (docs/metrics.md)."),
    data: Path = DataOption,
    benchmark: str = BenchmarkOption,
    out: Path = typer.Option(..., "--out", help="The step folder: evaluation.json (with per-video detail), "
                             "evaluation.md, manifest.json."),
    config: Path = ConfigOption,
    sets: list[str] = SetOption,
    track: bool = TrackOption,
    metrics: Path = MetricsOption,
) -> None:
    """Score predictions with the official mIoU and F-score; print both.

    Settings: the `evaluate` section (--set evaluate.split=val, --set evaluate.protocol=semantic for AVSS classes)."""
    from moca.cli._steps import load, run_step
    from moca.steps.runner import Inputs

    settings = load("evaluate", config, sets)
    result = run_step("evaluate", "evaluate", settings, Inputs(data=data, benchmark=benchmark,
                                                               upstream={"predictions": pred}), out, track, metrics)
    info = result.info
    typer.echo(f"{benchmark}/{info['split']} ({info['protocol']}): mIoU {info['miou']:.4f}  F-score "
               f"{info['fscore']:.4f}  ({info['videos']} videos, {info['frames']} frames) -> {out / 'evaluation.json'}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
