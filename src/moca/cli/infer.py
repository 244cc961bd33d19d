"""`moca infer`, `moca baseline NAME` and `moca report`: predictions, training-free baselines, comparison report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

BENCH_HELP = "s4, ms3 or avss."


def _infer_overrides(config: Path | None, **options: Any) -> dict[str, Any]:
    """The infer config: the YAML file (its `infer:` section when it has one), then the non-None CLI options."""
    from moca.config import load_yaml

    data = load_yaml(config) if config else {}
    data = dict(data.get("infer", data))
    sam = dict(data.get("sam") or {})
    for key in ("model", "weights", "pred_iou_thresh", "stability_score_thresh", "points_per_side"):
        value = options.pop(f"sam_{key}", None)
        if value is not None:
            sam[key] = value
    if sam:
        data["sam"] = sam
    data.update({k: v for k, v in options.items() if v is not None})
    return data


def _sam_weights(uri: str | None, sha256: str | None) -> dict[str, Any] | None:
    return {"uri": uri, "sha256": sha256} if uri else None


def infer_command(
    model: str = typer.Option(..., "--model", help="Training output folder, adapters.pt, or MLflow URI "
                              "(models:/moca@champion, runs:/..., models:/m-...)."),
    data: Path = typer.Option(..., "--data", help="AVSBench root."),
    benchmark: str = typer.Option(..., "--benchmark", help=BENCH_HELP),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    out: Path = typer.Option(..., "--out", help="Prediction folder: {key}.png/.npy, _maps/, _coarse/, manifest."),
    mpm: str = typer.Option(None, "--mpm", help="none | points (default) | auto."),
    coarse: str = typer.Option(None, "--coarse", help="threshold (default) | kmeans."),
    sam: str = typer.Option(None, "--sam", help="SAM model: sam_vit_h (default) or sam_tiny (demo/tests)."),
    sam_weights: str = typer.Option(None, "--sam-weights", help="SAM checkpoint URI (file://, s3://, https://)."),
    sam_sha256: str = typer.Option(None, "--sam-sha256", help="Expected sha256 of the SAM checkpoint."),
    pred_iou_thresh: float = typer.Option(None, "--pred-iou-thresh", help="Automatic generator (SAM default 0.88)."),
    stability_thresh: float = typer.Option(None, "--stability-thresh", help="Automatic generator (SAM default 0.95)."),
    device: str = typer.Option(None, "--device", help="cpu (default) or cuda."),
    config: Path = typer.Option(None, "--config", help="YAML with infer settings (an `infer:` section or bare)."),
) -> None:
    """Predict masks: audio-pixel map -> coarse mask -> SAM mask proposal matching; resumable."""
    from moca.infer import run_inference

    settings = _infer_overrides(config, mpm=mpm, coarse=coarse, device=device, sam_model=sam,
                                sam_weights=_sam_weights(sam_weights, sam_sha256),
                                sam_pred_iou_thresh=pred_iou_thresh, sam_stability_score_thresh=stability_thresh)
    manifest = run_inference(model, data, benchmark, split, out, settings)
    counts = manifest["counts"]
    typer.echo(f"{manifest['method']}: {counts['predicted']} frames predicted, {counts['skipped_existing']} already "
               f"done, {counts['fallbacks']} MPM fallbacks -> {out}")


def register(app: typer.Typer) -> None:
    app.command("infer")(infer_command)
