"""What the step commands (`moca data validate`, `mine-pairs`, `train`, `infer`, `evaluate`) share: the config
options and one way to run a step, `moca.steps.<step>.run`, so a CLI run gets the step manifest, skip-on-rerun
and, with `--track`, an MLflow run with the step nested under it, exactly as the pipeline's steps do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

ConfigOption = typer.Option(
    None, "--config", help="YAML config: a pipeline config (configs/pipeline_*.yaml) or this step's own section "
    "(e.g. configs/demo.yaml for train).",
)  # fmt: skip
SetOption = typer.Option(
    [], "--set", metavar="KEY=VALUE", help="Set a config key on top of --config, e.g. --set train.lr=1e-3 or "
    "--set infer.sam.model=sam_tiny (repeatable; the value is read as YAML).",
)  # fmt: skip
TrackOption = typer.Option(False, "--track", help="Record the run in MLflow: a run for this command, the step's "
                           "run nested under it (store: $MLFLOW_TRACKING_URI or .moca/).")
MetricsOption = typer.Option(None, "--metrics", help="Also write the step's metrics (its manifest's `metrics`) to "
                             "this JSON file, outside the step folder: what `dvc metrics` reads (dvc.yaml).")
DataOption = typer.Option(..., "--data", help="AVSBench root (the folder holding Single-source/, Multi-sources/ "
                          "or metadata.csv).")
BenchmarkOption = typer.Option(..., "--benchmark", help="s4, ms3 or avss.")


def load(step: str, config: Path | None, sets: list[str]) -> Any:
    """The run's PipelineConfig: --config (a pipeline config or `step`'s own YAML), then every --set."""
    from moca.steps import step_spec
    from moca.steps.config import load_config

    return load_config(config, sets, section=step_spec(step).section)


@contextlib.contextmanager
def _parent_run(command: str, config: Any, track: bool) -> Iterator[str]:
    """With --track, an MLflow run for this command (the step nests under it), FAILED if anything raises. Ranks
    > 0 of a distributed launch record nothing: rank 0 records the run."""
    from moca.steps.runner import worker_rank

    if not track or worker_rank():
        yield ""
        return
    from moca.tracking.runs import finish_pipeline_run, start_pipeline_run

    parent = start_pipeline_run(f"moca {command}", experiment=config.experiment, tags={"moca.kind": "cli"})
    try:
        yield parent
    except BaseException:
        finish_pipeline_run(parent, "FAILED")
        raise
    finish_pipeline_run(parent, "FINISHED")


def run_step(step: str, command: str, config: Any, inputs: Any, out: Path, track: bool,
             metrics: Path | None = None) -> Any:
    """`moca.steps.<step>.run` with this command's section of `config`; returns the StepResult. With `metrics`,
    the step's metrics (`{"test.miou": 0.41, ...}`) are also written there as JSON."""
    import dataclasses

    from moca.io import write_json
    from moca.steps import step_run, step_spec

    with _parent_run(command, config, track) as parent:
        inputs = dataclasses.replace(inputs, parent_run_id=parent, model_name=config.model_name)
        result = step_run(step)(getattr(config, step_spec(step).section), inputs, out)
    if result.skipped:
        typer.echo(f"{out}: inputs, config and code unchanged since its last run; reused")
    if metrics is not None:
        write_json(metrics, result.metrics)
    return result
