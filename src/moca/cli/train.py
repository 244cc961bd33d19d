"""`moca train` (the train step: single process, torchrun, or a PyTorchJob) and `moca pretrain-tiny`."""

from __future__ import annotations

from pathlib import Path

import typer

from moca.cli._steps import ConfigOption, MetricsOption, SetOption, TrackOption


def train_command(
    pairs: Path = typer.Option(..., "--pairs", help="A `moca mine-pairs` folder, or its pairs.parquet."),
    out: Path = typer.Option(..., "--out", help="The step folder: config.yaml, checkpoints/, adapters.pt, "
                             "train_manifest.json, manifest.json."),
    data: Path = typer.Option(None, "--data", help="AVSBench root; default: train.data.root of the config."),
    config: Path = ConfigOption,
    sets: list[str] = SetOption,
    track: bool = TrackOption,
    metrics: Path = MetricsOption,
) -> None:
    """Train the adapters; each rank of a torchrun / Kubeflow PyTorchJob launch runs this same command.

    Rerun into the same --out to continue an interrupted run (exactly, from its newest checkpoint); a run with other
    settings there is refused, naming the keys that differ. Settings: the `train` section
    (--set train.max_steps=100)."""
    from moca.cli._steps import load, run_step
    from moca.errors import ConfigError
    from moca.steps.runner import Inputs

    settings = load("train", config, sets)
    root = data or (Path(settings.train.data.root) if settings.train.data.root else None)
    if root is None:
        raise ConfigError("no dataset: pass --data or set train.data.root")
    inputs = Inputs(data=root, benchmark=settings.train.data.benchmark, upstream={"pairs": pairs})
    result = run_step("train", "train", settings, inputs, out, track, metrics)
    typer.echo(f"trained {result.metrics['steps']:.0f} steps (resumed from {result.info['resumed_from']}); final "
               f"loss {result.metrics['final_loss']:.4f}; adapters in {out / 'adapters.pt'}")


def pretrain_tiny_command(
    data: Path = typer.Option(..., "--data", help="Synthetic AVSBench root (train split is used)."),
    out: Path = typer.Option(..., "--out", help="File for the pre-trained tiny ImageBind state dict."),
    steps: int = typer.Option(300, "--steps", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=2),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """STAND-IN for real weights: align tiny ImageBind's image and audio towers on synthetic data (demo only)."""
    from moca.train.pretrain import pretrain_tiny

    digest = pretrain_tiny(data, out, steps=steps, batch_size=batch_size, seed=seed)
    typer.echo(f"wrote {out} (sha256 {digest}); use it as model.backbone_weights: "
               f"{{uri: {out.resolve().as_uri()}, sha256: {digest}}}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("pretrain-tiny")(pretrain_tiny_command)
