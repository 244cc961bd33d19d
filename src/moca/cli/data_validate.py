"""`moca data validate` and `moca data drift`: Great Expectations checks of a dataset, and drift between versions."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from moca.data.layout import BENCHMARKS


def validate_command(
    data: Path = typer.Option(..., "--data", help="AVSBench root (holds Single-source/, Multi-sources/ or metadata.csv)."),
    benchmark: str = typer.Option(..., "--benchmark", help=f"One of {', '.join(BENCHMARKS)}."),
    report: Path = typer.Option(..., "--report", help="Folder for Data Docs, summary.txt, validation.json, manifest."),
    expected_counts: str = typer.Option(
        None, "--expected-counts", help="'avsbench' (official videos per split) or 'train=N,val=N,test=N'. "
        "Default: at least one video in every split.",
    ),
) -> None:  # fmt: skip
    """Check every frame, mask and wav; exit 1 and print what failed when the data fails its suite."""
    from moca.data.layout import check_benchmark
    from moca.validation import parse_expected_counts, validate_dataset

    check_benchmark(benchmark)
    result = validate_dataset(data, benchmark, report, parse_expected_counts(expected_counts, benchmark))
    typer.echo(result.summary.read_text(encoding="utf-8").rstrip())
    typer.echo(f"report: {result.report_dir}" + (f" (Data Docs: {result.data_docs})" if result.data_docs else ""))
    if not result.passed:
        # SystemExit, not typer.Exit: the root runs click with standalone_mode=False, which turns Exit into a
        # return value and would exit 0
        sys.exit(1)


def drift_command(
    reference: Path = typer.Option(..., "--reference", help="stats.json or manifest.parquet of the reference data."),
    current: Path = typer.Option(..., "--current", help="stats.json or manifest.parquet of the new data."),
    out: Path = typer.Option(None, "--out", help="Write drift.json and drift.md into this folder."),
    relative: float = typer.Option(0.25, "--relative", help="Flag scalars whose relative change exceeds this."),
    distribution: float = typer.Option(0.10, "--distribution", help="Flag distributions whose TV distance exceeds this."),
) -> None:  # fmt: skip
    """Compare the manifest statistics of two dataset versions (exit 0 either way: drift is a report, not a gate)."""
    from moca.io import atomic_write_text
    from moca.validation import DriftThresholds, compare_stats
    from moca.validation.drift import load_stats

    report = compare_stats(load_stats(reference), load_stats(current), DriftThresholds(relative, distribution))
    typer.echo(report.to_markdown().rstrip())
    if out is not None:
        atomic_write_text(out / "drift.json", report.to_json())
        atomic_write_text(out / "drift.md", report.to_markdown())


def register(app: typer.Typer) -> None:
    from moca.cli.data import data_app

    data_app.command("validate")(validate_command)
    data_app.command("drift")(drift_command)
