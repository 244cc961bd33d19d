"""`moca evaluate`: official AVSBench scores of a prediction folder (thin shell around moca.evaluate)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        pred: Path = typer.Option(..., "--pred", help="Predictions: PRED/{key}.png or .npy logits."),
        data: Path = typer.Option(..., "--data", help="AVSBench root (Single-source/, Multi-sources/ or metadata.csv)."),
        benchmark: str = typer.Option(..., "--benchmark", help="s4, ms3 or avss."),
        split: str = typer.Option("test", "--split", help="train, val or test."),
        out: Path = typer.Option(..., "--out", help="Where to write the scores (JSON, written atomically)."),
        protocol: str = typer.Option("binary", "--protocol", help="binary, or semantic (AVSS only)."),
    ) -> None:
        """Score predictions with the official mIoU and F-score; print both and write them with per-video detail."""
        from moca.evaluate import evaluate_predictions
        from moca.io import write_json

        result = evaluate_predictions(pred, data, benchmark, split, protocol)
        write_json(out, result)
        typer.echo(
            f"{benchmark}/{split} ({protocol}): mIoU {result['miou']:.4f}  F-score {result['fscore']:.4f}  "
            f"({result['num_videos']} videos, {result['num_frames']} frames) -> {out}"
        )
