"""`moca infer` (the infer step), `moca baseline NAME`, `moca report` and `moca label-avss`: predictions,
training-free baselines, the comparison report, AVSS class labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from moca.cli._steps import BenchmarkOption, ConfigOption, DataOption, MetricsOption, SetOption, TrackOption


def infer_command(
    model: str = typer.Option(..., "--model", help="A `moca train` folder, its adapters.pt, or an MLflow model URI "
                              "(models:/moca@champion, runs:/..., models:/m-...)."),
    data: Path = DataOption,
    benchmark: str = BenchmarkOption,
    out: Path = typer.Option(..., "--out", help="The step folder: {key}.npy/.png, _maps/, _coarse/, "
                             "infer_manifest.json, manifest.json."),
    config: Path = ConfigOption,
    sets: list[str] = SetOption,
    track: bool = TrackOption,
    metrics: Path = MetricsOption,
) -> None:
    """Predict masks: audio-pixel map -> coarse mask -> SAM mask proposal matching.

    Rerun into the same --out to finish an interrupted run. Settings: the `infer` section (--set infer.split=val,
    infer.mpm=auto, infer.sam.model=sam_tiny, infer.sam.weights={uri: ..., sha256: ...}, infer.device=cuda, ...).
    A released SAM without weights is refused (--set infer.sam.weights=random runs it randomly initialised)."""
    from moca.cli._steps import load, run_step
    from moca.steps.runner import Inputs

    settings = load("infer", config, sets)
    result = run_step("infer", "infer", settings, Inputs(data=data, benchmark=benchmark, upstream={"model": model}),
                      out, track, metrics)
    info = result.info
    typer.echo(f"{info['method']}: {info['predicted']} frames predicted, {info['skipped_existing']} already done, "
               f"{info['fallbacks']} MPM fallbacks -> {out}")


def baseline_command(
    name: str = typer.Argument(..., help="centre | all-foreground | owod-bind | at-gdino-sam."),
    data: Path = DataOption,
    benchmark: str = BenchmarkOption,
    split: str = typer.Option("test", "--split", help="train, val or test."),
    out: Path = typer.Option(..., "--out", help="Prediction folder ({key}.png/.npy + baseline_manifest.json)."),
    config: Path = typer.Option(None, "--config", help="YAML with baseline settings (a `baseline:` section or bare)."),
    sets: list[str] = SetOption,
) -> None:
    """Run a training-free baseline or floor; writes predictions in the `moca infer` layout.

    Settings: the `baseline` section (--set baseline.centre_fraction=0.3, baseline.sam.model=sam_tiny,
    baseline.imagebind_weights={uri: ..., sha256: ...}, baseline.detector=module:factory, ...)."""
    from moca.baselines import run_baseline
    from moca.baselines.config import BaselineConfig
    from moca.config import apply_overrides, from_dict, load_yaml

    raw = dict(load_yaml(config)) if config else {}
    raw = {"baseline": raw.get("baseline", raw)}
    settings = from_dict(BaselineConfig, apply_overrides(raw, sets).get("baseline") or {}, "baseline")
    manifest = run_baseline(name, data, benchmark, split, out, settings)
    counts = manifest["counts"]
    typer.echo(f"{manifest['method']}: {counts['predicted']} frames predicted ({counts['empty']} empty), "
               f"{counts['skipped_existing']} already done -> {out}")


def _parse_runs(values: list[str], default_benchmark: str) -> list[Any]:
    from moca.errors import ConfigError
    from moca.report import RunSpec

    specs = []
    for value in values:
        label, sep, folder = value.partition("=")
        if not sep or not label or not folder:
            raise ConfigError(f"--runs {value!r}: expected NAME=PRED_DIR (or NAME@BENCHMARK=PRED_DIR)")
        name, _, bench = label.partition("@")
        specs.append(RunSpec(name, bench or default_benchmark, Path(folder)))
    return specs


def _parse_data(values: list[str], benchmarks: list[str]) -> dict[str, Path]:
    """`--data DIR` (every benchmark) or `--data B=DIR` per benchmark."""
    roots: dict[str, Path] = {}
    for value in values:
        bench, sep, folder = value.partition("=")
        if sep:
            roots[bench] = Path(folder)
        else:
            roots.update({b: Path(value) for b in benchmarks if b not in roots})
    return roots


def report_command(
    runs: list[str] = typer.Option(..., "--runs", help="NAME=PRED_DIR, once per run (--runs a=DIR --runs b=DIR); "
                                   "NAME@ms3=DIR for another benchmark."),
    data: list[str] = typer.Option(..., "--data", help="AVSBench root, or B=DIR per benchmark (repeat)."),
    benchmark: str = typer.Option("s4", "--benchmark", help="Benchmark of runs given without @B."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    out: Path = typer.Option(..., "--out", help="Report folder: report.md/.json, scores.png, qualitative_*.png."),
    protocol: str = typer.Option("binary", "--protocol", help="binary, or semantic (AVSS)."),
    videos: int = typer.Option(4, "--videos", min=1, help="Videos in the qualitative grid."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the report as MLflow artifacts."),
    run_id: str = typer.Option(None, "--run-id", help="Evaluation run to attach the artifacts to (with --mlflow)."),
) -> None:
    """Compare MoCA, the baselines and the floors in one table (+ figures), scored like `moca evaluate`."""
    from moca.report import build_report, log_report

    specs = _parse_runs(runs, benchmark)
    roots = _parse_data(data, list(dict.fromkeys(s.benchmark for s in specs)))
    table = build_report(specs, roots, split, out, protocol, videos)
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    if mlflow:
        typer.echo(f"logged to MLflow run {log_report(out, table, run_id)}")


def label_avss_command(
    pred: Path = typer.Option(..., "--pred", help="Binary AVSS predictions (a `moca infer` output)."),
    data: Path = typer.Option(..., "--data", help="AVSS root (the folder holding metadata.csv)."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    out: Path = typer.Option(..., "--out", help="Class-index predictions ({key}.npy + palette .png)."),
    imagebind: str = typer.Option("imagebind_huge", "--imagebind", help="imagebind_huge or imagebind_tiny."),
    imagebind_weights: str = typer.Option(None, "--imagebind-weights", help="ImageBind checkpoint URI, or 'random' "
                                          "(random init: meaningless labels, smoke tests only)."),
    imagebind_sha256: str = typer.Option(None, "--imagebind-sha256", help="Its sha256 (required for imagebind_huge)."),
) -> None:
    """Zero-shot AVSS class labels for binary masks (ImageBind text embeddings of the 70 class names).

    Score the output with `moca evaluate --set evaluate.protocol=semantic`."""
    from moca.infer.avss import label_predictions
    from moca.models import WeightsSpec
    from moca.models.registry import RANDOM

    weights: Any = imagebind_weights
    if imagebind_weights and imagebind_weights != RANDOM:
        weights = WeightsSpec(imagebind_weights, imagebind_sha256)
    manifest = label_predictions(pred, data, split, out, imagebind, weights)
    typer.echo(f"labelled {manifest['counts']['labelled']} frames ({manifest['counts']['empty']} empty) -> {out}")


def register(app: typer.Typer) -> None:
    app.command("infer")(infer_command)
    app.command("baseline")(baseline_command)
    app.command("report")(report_command)
    app.command("label-avss")(label_avss_command)
