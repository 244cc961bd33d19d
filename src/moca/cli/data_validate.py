"""`moca data validate` (the validate step) and `moca data drift`: Great Expectations checks of a dataset, and drift
between two versions."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from moca.cli._steps import BenchmarkOption, ConfigOption, DataOption, MetricsOption, SetOption, TrackOption


def validate_command(
    data: Path = DataOption,
    benchmark: str = BenchmarkOption,
    report: Path = typer.Option(..., "--report", help="The step folder: Data Docs, summary.txt, validation.json, "
                                "stats.json, report.html, manifest.json."),
    expected_counts: str = typer.Option(
        None, "--expected-counts", help="'avsbench' (official videos per split) or 'train=N,val=N,test=N'; "
        "shorthand for --set validate.expected_counts=... Default: at least one video in every split.",
    ),
    config: Path = ConfigOption,
    sets: list[str] = SetOption,
    track: bool = TrackOption,
    metrics: Path = MetricsOption,
) -> None:  # fmt: skip
    """Check every frame, mask and wav; exit 1 and print what failed when the data fails its suite."""
    from moca.cli._steps import load, run_step
    from moca.data.layout import check_benchmark
    from moca.steps.runner import Inputs
    from moca.steps.validate import SUMMARY, require_passed
    from moca.validation import parse_expected_counts

    check_benchmark(benchmark)
    counts = parse_expected_counts(expected_counts, benchmark)
    if counts is not None:
        sets = [*sets, f"validate.expected_counts={json.dumps(counts)}"]
    settings = load("validate", config, sets)
    result = run_step("validate", "data validate", settings, Inputs(data=data, benchmark=benchmark), report, track,
                      metrics)
    typer.echo((report / SUMMARY).read_text(encoding="utf-8").rstrip())
    typer.echo(f"report: {report} (Data Docs: {report / 'data_docs'})")
    require_passed(result, data)


def drift_command(
    reference: Path = typer.Option(..., "--reference", help="stats.json or manifest.parquet of the reference data."),
    current: Path = typer.Option(..., "--current", help="stats.json or manifest.parquet of the new data."),
    out: Path = typer.Option(None, "--out", help="Write drift.json and drift.md into this folder."),
    config: Path = ConfigOption,
    sets: list[str] = SetOption,
) -> None:  # fmt: skip
    """Compare the manifest statistics of two dataset versions (exit 0 either way: drift is a report, not a gate).

    Thresholds: validate.drift (e.g. --set validate.drift.relative=0.3)."""
    from moca.cli._steps import load
    from moca.io import atomic_write_text
    from moca.validation import compare_stats
    from moca.validation.drift import load_stats

    thresholds = load("validate", config, sets).validate.drift
    report = compare_stats(load_stats(reference), load_stats(current), thresholds)
    typer.echo(report.to_markdown().rstrip())
    if out is not None:
        atomic_write_text(out / "drift.json", report.to_json())
        atomic_write_text(out / "drift.md", report.to_markdown())


def register(app: typer.Typer) -> None:
    from moca.cli.data import data_app

    data_app.command("validate")(validate_command)
    data_app.command("drift")(drift_command)
