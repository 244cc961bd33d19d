"""`moca data ...`: dataset commands. Other modules add theirs to `data_app` (e.g. `moca data validate`)."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(no_args_is_help=True, help="AVSBench data: synthesise, validate, inspect.")


@data_app.command("synth")
def synth_command(
    out: Path = typer.Option(..., "--out", help="New (or empty) folder to write the dataset into."),
    benchmark: str = typer.Option("s4", "--benchmark", help="s4, ms3 or avss."),
    videos: int = typer.Option(20, "--videos", min=1, help="Number of videos (split 70/15/15 %)."),
    seed: int = typer.Option(0, "--seed", help="Same seed and arguments -> the same bytes."),
) -> None:
    """Write a synthetic dataset in the exact AVSBench layout (frames, wavs, masks, metadata CSV)."""
    from moca.data.synth import SynthConfig, synthesize

    root = synthesize(out, SynthConfig(benchmark=benchmark, videos=videos, seed=seed))
    typer.echo(f"wrote {videos} synthetic {benchmark} videos to {root}")


@data_app.command("publish")
def publish_command(
    dvc_file: Path = typer.Argument(Path("data.dvc"), help="The .dvc file naming the version (after `dvc push`)."),
    to: str = typer.Option(..., "--to", help="The data pointer to move: s3://BUCKET/pointers/NAME.dvc."),
    remote: str | None = typer.Option(None, "--remote",
                                      help="DVC remote (name or URL) holding the version; default: the default."),
) -> None:
    """Point a data pointer in the store at the version DVC_FILE names: what recurring runs, the in-cluster submit
    Job and the Prefect flow read at each run (they have no git checkout)."""
    from moca.versioning import publish

    typer.echo(f"{to} -> {publish(dvc_file, to, remote=remote)}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
