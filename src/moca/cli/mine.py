"""`moca mine-pairs`: DINO positive/negative pairs for a training split (see docs/mining.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from moca.data.layout import BENCHMARKS, SPLITS


def mine_pairs_command(
    data: Path = typer.Option(..., "--data", help="AVSBench root (Single-source/, Multi-sources/ or metadata.csv)."),
    benchmark: str = typer.Option(..., "--benchmark", help=f"One of {', '.join(BENCHMARKS)}."),
    out: Path = typer.Option(..., "--out", help="Folder for pairs.parquet, negatives.parquet, manifest.json."),
    split: str = typer.Option("train", "--split", help=f"One of {', '.join(SPLITS)}."),
    model: str = typer.Option("dino_vitb16", "--model", help="dino_vitb16 (real) or dino_tiny (random init, tests)."),
    weights: str | None = typer.Option(None, "--weights", help="Checkpoint URI: file://, s3://, https:// or a path."),
    sha256: str | None = typer.Option(None, "--sha256", help="Expected sha256 of --weights (checked before use)."),
    k: int = typer.Option(10, "--k", help="Positives per anchor, from other videos."),
    negatives: int = typer.Option(10, "--negatives", help="Negatives per anchor, from the least similar half."),
    batch_size: int = typer.Option(64, "--batch-size", help="Frames per encoder forward."),
    chunk_size: int = typer.Option(
        256, "--chunk-size", help="Anchor rows per similarity block (peak memory ~ 30 bytes x rows x frames)."
    ),
    seed: int = typer.Option(0, "--seed", help="Negative sampling, and the init of a model without --weights."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the encoder (cpu, cuda)."),
    cache: Path | None = typer.Option(None, "--cache", help="Descriptor cache folder (default: OUT/descriptor_cache)."),
) -> None:
    """Mine top-K positives from other videos and sampled negatives for every frame of a split."""
    from moca.errors import ConfigError
    from moca.mining import MiningConfig, mine_pairs

    if sha256 is not None and weights is None:
        raise ConfigError("--sha256 given without --weights")
    spec = None
    if weights is not None:
        from moca.models import WeightsSpec

        spec = WeightsSpec(weights, sha256=sha256)
    config = MiningConfig(model=model, k=k, negatives=negatives, batch_size=batch_size, chunk_size=chunk_size,
                          seed=seed, device=device)
    manifest = mine_pairs(data, benchmark, out, config, split=split, weights=spec, cache_dir=cache)
    counts, timings = manifest["counts"], manifest["timings_s"]
    typer.echo(
        f"{counts['pairs']} positive pairs and {counts['negatives']} negatives for {counts['frames']} frames of "
        f"{counts['videos']} videos (cache {counts['cache_hits']} hit / {counts['cache_misses']} computed) "
        f"in {timings['total']:.1f} s -> {out}"
    )


def register(app: typer.Typer) -> None:
    app.command("mine-pairs")(mine_pairs_command)
