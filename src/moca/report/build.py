"""`moca report`: the comparison table (Markdown + JSON), the qualitative grid and the bar plot, optionally logged
to MLflow as artifacts of an evaluation run.

    from moca.report import RunSpec, build_report
    build_report([RunSpec("MoCA + MPM", "s4", Path("preds/moca"))], {"s4": Path("data")}, "test", Path("report"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moca.errors import ConfigError, DataError
from moca.io import atomic_write_text, write_json
from moca.report.figures import bar_plot, comparison_grid, qualitative_grid
from moca.report.table import RunSpec, build_table, render_markdown

TABLE_MD, TABLE_JSON, BARS, GRID = "report.md", "report.json", "scores.png", "qualitative_{bench}.png"
COMPARISON = "comparison_{bench}.png"


def _figure_run(table: dict[str, Any], bench: str) -> dict[str, Any] | None:
    """The MoCA run to draw: one with MPM when there is one (its masks are the final ones), else any MoCA run."""
    moca = [r for r in table["rows"] if r["kind"] == "moca" and bench in r["pred_dirs"]]
    with_mpm = [r for r in moca if "mpm" in r["method"]]
    return (with_mpm or moca or [None])[0]


def build_report(runs: list[RunSpec], data: dict[str, Path], split: str, out: Path, protocol: str = "binary",
                 videos: int = 4, compare_maps: Sequence[str] = ()) -> dict[str, Any]:
    """Write report.md, report.json, scores.png and qualitative_{benchmark}.png into `out`; returns the table.

    `compare_maps` names runs whose audio-pixel maps to draw side by side (e.g. before and after training) in
    comparison_{benchmark}.png, beside the final masks of every run that is not a floor."""
    if not runs:
        raise ConfigError("report: no runs given (use --runs NAME=PRED_DIR)")
    for run in runs:
        if run.benchmark not in data:
            raise ConfigError(f"report: run {run.name!r} is on {run.benchmark} but no --data root was given for it")
        if not run.pred_dir.is_dir():
            raise DataError(run.pred_dir, f"prediction folder of run {run.name!r} not found")
    table = build_table(runs, data, split, protocol)
    figures = {"scores": str(bar_plot(table, out / BARS).name)}
    for bench in table["benchmarks"]:
        row = _figure_run(table, bench)
        if row is not None:
            path = qualitative_grid(Path(row["pred_dirs"][bench]), data[bench], bench, split,
                                    out / GRID.format(bench=bench), videos, title=f"{row['name']} ({bench}/{split})")
            if path is not None:
                figures[f"qualitative_{bench}"] = path.name
        if compare_maps:
            path = _comparison(table, runs, compare_maps, data[bench], bench, split, out, videos)
            if path is not None:
                figures[f"comparison_{bench}"] = path.name
    table["figures"] = figures
    markdown = render_markdown(table) + "\n" + "\n".join(f"![{k}]({v})" for k, v in figures.items()) + "\n"
    atomic_write_text(out / TABLE_MD, markdown)
    write_json(out / TABLE_JSON, table)
    return table


def _comparison(table: dict[str, Any], runs: list[RunSpec], compare_maps: Sequence[str], data_root: Path,
                bench: str, split: str, out: Path, videos: int) -> Path | None:
    folders = {r.name: r.pred_dir for r in runs if r.benchmark == bench}
    unknown = [name for name in compare_maps if name not in folders]
    if unknown:
        raise ConfigError(f"report: compare_maps names no run on {bench}: {', '.join(unknown)}")
    maps = [(name, folders[name]) for name in compare_maps]
    masks = [(r["name"], folders[r["name"]]) for r in table["rows"] if r["kind"] != "floor" and r["name"] in folders]
    return comparison_grid(maps, masks, data_root, bench, split, out / COMPARISON.format(bench=bench), videos,
                           title=f"the same {bench}/{split} frames, run by run")


def log_report(out: Path, table: dict[str, Any], run_id: str | None = None, experiment: str = "moca") -> str:
    """Log the report folder as artifacts (under its folder name) of evaluation run `run_id`, or of a new run named
    "evaluation-report"; the table's scores become metrics. Returns the run id."""
    import mlflow

    from moca.tracking import runs

    runs.configure()
    experiment_id = runs.ensure_experiment(experiment)
    start = {"run_id": run_id} if run_id else {"run_name": "evaluation-report", "experiment_id": experiment_id}
    with mlflow.start_run(**start) as run:
        runs.log_artifacts(out, artifact_path=None)
        metrics = {}
        for row in table["rows"]:
            slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in row["name"])
            for bench, score in row["scores"].items():
                metrics[f"{slug}.{bench}.miou"] = score["miou"]
                metrics[f"{slug}.{bench}.fscore"] = score["fscore"]
        runs.log_metrics(metrics)
        return run.info.run_id
