"""`moca mine-pairs`: the mine_pairs step, DINO positive/negative pairs for a training split (docs/mining.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from moca.cli._steps import BenchmarkOption, ConfigOption, DataOption, MetricsOption, SetOption, TrackOption


def mine_pairs_command(
    data: Path = DataOption,
    benchmark: str = BenchmarkOption,
    out: Path = typer.Option(..., "--out", help="The step folder: pairs.parquet, negatives.parquet, "
                             "mining_manifest.json, descriptor_cache/, manifest.json."),
    config: Path = ConfigOption,
    sets: list[str] = SetOption,
    track: bool = TrackOption,
    metrics: Path = MetricsOption,
) -> None:
    """Mine top-K positives from other videos and sampled negatives for every frame of a split.

    Settings are the `mining` section: --set mining.model=dino_vitb16, mining.weights={uri: ..., sha256: ...},
    mining.k=10, ...
    A released DINO without weights is refused (--set mining.weights=random runs it randomly initialised)."""
    from moca.cli._steps import load, run_step
    from moca.steps.runner import Inputs

    result = run_step("mine_pairs", "mine-pairs", load("mine_pairs", config, sets),
                      Inputs(data=data, benchmark=benchmark), out, track, metrics)
    info = result.info
    typer.echo(f"{info['pairs']} positive pairs and {info['negatives']} negatives for {info['frames']} frames of "
               f"{info['videos']} videos (descriptor cache {info['cache_hits']} hit / {info['cache_misses']} "
               f"computed) -> {out}")


def register(app: typer.Typer) -> None:
    app.command("mine-pairs")(mine_pairs_command)
