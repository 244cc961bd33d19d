"""`moca train`: train the AdaAV adapters on mined pairs (single process, torchrun, or a PyTorchJob)."""

from __future__ import annotations

from pathlib import Path

import typer


def train_command(
    config: Path = typer.Option(..., "--config", help="Training YAML (see configs/demo.yaml)."),
    pairs: Path = typer.Option(..., "--pairs", help="pairs.parquet written by `moca mine-pairs`."),
    out: Path = typer.Option(..., "--out", help="Run folder: config.yaml, checkpoints/, adapters.pt, manifest."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest intact checkpoint in --out."),
    data: Path = typer.Option(None, "--data", help="AVSBench root; overrides data.root in the config."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Override max_steps (smoke runs)."),
) -> None:
    """Train the adapters; each rank of a torchrun / Kubeflow PyTorchJob launch runs this same command."""
    from moca.train.run import load_train_config, run_training

    cfg = load_train_config(config)
    if max_steps is not None:
        cfg.max_steps = max_steps
    result = run_training(cfg, pairs, out, resume=resume, data_root=data)
    typer.echo(f"trained {result.steps} steps (resumed from {result.resumed_from}); "
               f"final loss {result.losses[-1]:.4f}; adapters in {out / 'adapters.pt'}")




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
