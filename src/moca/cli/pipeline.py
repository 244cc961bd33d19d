"""`moca pipeline compile|run|schedule`: the Kubeflow training pipeline (docs/pipeline.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from moca.cli._steps import SetOption

pipeline_app = typer.Typer(no_args_is_help=True, help="The Kubeflow training pipeline: compile, run, schedule.")
DEFAULT_CONFIG = Path("configs/pipeline_demo.yaml")

ConfigOption = typer.Option(DEFAULT_CONFIG, "--config", help="Pipeline config (configs/pipeline_*.yaml).")


@pipeline_app.command("compile")
def compile_command(out: Path = typer.Option(..., "--out", help="Where to write the KFP IR YAML."),
                    config: Path = ConfigOption, sets: list[str] = SetOption) -> None:
    """Compile the pipeline to KFP IR YAML (upload it in the KFP UI, or review it)."""
    from moca.steps.kubeflow import compile_pipeline

    typer.echo(f"wrote {compile_pipeline(config, out, sets)}")


@pipeline_app.command("run")
def run_command(
    config: Path = ConfigOption,
    local: bool = typer.Option(False, "--local", help="Run here with kfp.local (subprocesses, no Docker)."),
    host: str | None = typer.Option(None, "--host", help="Kubeflow Pipelines API URL to submit the run to."),
    data_rev: str | None = typer.Option(None, "--data-rev",
                                        help="DVC md5, data pointer s3://.../NAME.dvc, or git rev of data.dvc."),
    run_name: str | None = typer.Option(None, "--run-name", help="Name of the run (KFP and MLflow)."),
    pipeline_root: Path = typer.Option(Path(".moca/pipeline-root"), "--pipeline-root",
                                       help="With --local: where task outputs go."),
    sets: list[str] = SetOption,
) -> None:
    """Run the pipeline locally (--local) or submit it to a cluster (--host)."""
    from moca.errors import ConfigError

    if local == (host is not None):
        raise ConfigError("give exactly one of --local or --host URL")
    if local:
        from moca.steps.kubeflow import run_local

        run_local(config, pipeline_root, data_rev=data_rev, run_name=run_name, overrides=sets)
        typer.echo(f"pipeline finished; task outputs under {pipeline_root}")
        return
    from moca.steps.kubeflow import submit

    typer.echo(f"submitted run {submit(host, config, data_rev=data_rev, run_name=run_name, overrides=sets)} to {host}")


@pipeline_app.command("schedule")
def schedule_command(
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API URL."),
    cron: str = typer.Option("0 0 3 * * *", "--cron", help="6-field cron: seconds minutes hours day month weekday."),
    config: Path = ConfigOption,
    job_name: str | None = typer.Option(None, "--name", help="Recurring run name (default: <pipeline>-nightly)."),
    data_rev: str | None = typer.Option(None, "--data-rev",
                                        help="Data pointer s3://.../NAME.dvc (read at each run) or a pinned md5."),
    sets: list[str] = SetOption,
) -> None:
    """Create a Kubeflow recurring run of the pipeline (one at a time, no catch-up)."""
    from moca.steps.kubeflow import schedule

    created = schedule(host, config, cron, job_name=job_name, overrides=sets, data_rev=data_rev)
    typer.echo(f"created recurring run {created} ({cron})")


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
