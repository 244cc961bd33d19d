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


def _weights(uri: str | None, sha256: str | None) -> dict[str, Any] | None:
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
                                sam_weights=_weights(sam_weights, sam_sha256),
                                sam_pred_iou_thresh=pred_iou_thresh, sam_stability_score_thresh=stability_thresh)
    manifest = run_inference(model, data, benchmark, split, out, settings)
    counts = manifest["counts"]
    typer.echo(f"{manifest['method']}: {counts['predicted']} frames predicted, {counts['skipped_existing']} already "
               f"done, {counts['fallbacks']} MPM fallbacks -> {out}")


def baseline_command(
    name: str = typer.Argument(..., help="centre | all-foreground | owod-bind | at-gdino-sam."),
    data: Path = typer.Option(..., "--data", help="AVSBench root."),
    benchmark: str = typer.Option(..., "--benchmark", help=BENCH_HELP),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    out: Path = typer.Option(..., "--out", help="Prediction folder ({key}.png/.npy + baseline_manifest.json)."),
    fraction: float = typer.Option(None, "--fraction", help="centre: area fraction of the ellipse (0.25)."),
    detector: str = typer.Option(None, "--detector", help="owod-bind: 'module:factory' class-agnostic detector; "
                                 "without it SAM proposals give the boxes (reported as owod-bind-samboxes)."),
    tagger: str = typer.Option(None, "--tagger", help="at-gdino-sam: 'module:factory' audio tagger."),
    text_detector: str = typer.Option(None, "--text-detector", help="at-gdino-sam: 'module:factory' detector."),
    imagebind: str = typer.Option(None, "--imagebind", help="imagebind_huge (default) or imagebind_tiny."),
    imagebind_weights: str = typer.Option(None, "--imagebind-weights", help="ImageBind checkpoint URI."),
    imagebind_sha256: str = typer.Option(None, "--imagebind-sha256"),
    sam: str = typer.Option(None, "--sam", help="SAM model: sam_vit_h (default) or sam_tiny."),
    sam_weights: str = typer.Option(None, "--sam-weights", help="SAM checkpoint URI."),
    sam_sha256: str = typer.Option(None, "--sam-sha256"),
    pred_iou_thresh: float = typer.Option(None, "--pred-iou-thresh", help="SAM generator (default 0.88)."),
    stability_thresh: float = typer.Option(None, "--stability-thresh", help="SAM generator (default 0.95)."),
    config: Path = typer.Option(None, "--config", help="YAML with baseline settings (a `baseline:` section or bare)."),
) -> None:
    """Run a training-free baseline or floor; writes predictions in the `moca infer` layout."""
    from moca.baselines import run_baseline
    from moca.config import load_yaml

    settings = dict(load_yaml(config)) if config else {}
    settings = dict(settings.get("baseline", settings))
    sam_settings = dict(settings.get("sam") or {})
    for key, value in (("model", sam), ("weights", _weights(sam_weights, sam_sha256)),
                       ("pred_iou_thresh", pred_iou_thresh), ("stability_score_thresh", stability_thresh)):
        if value is not None:
            sam_settings[key] = value
    if sam_settings:
        settings["sam"] = sam_settings
    overrides = {"centre_fraction": fraction, "detector": detector, "tagger": tagger, "text_detector": text_detector,
                 "imagebind": imagebind, "imagebind_weights": _weights(imagebind_weights, imagebind_sha256)}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    manifest = run_baseline(name, data, benchmark, split, out, settings)
    counts = manifest["counts"]
    typer.echo(f"{manifest['method']}: {counts['predicted']} frames predicted ({counts['empty']} empty), "
               f"{counts['skipped_existing']} already done -> {out}")


def _parse_runs(values: list[str], default_benchmark: str) -> list[Any]:
    from moca.errors import ConfigError
    from moca.report import RunSpec

    specs = []
    for value in values:
        label, sep, folder = value.partition("=")
        if not sep or not label or not folder:
            raise ConfigError(f"--runs {value!r}: expected NAME=PRED_DIR (or NAME@BENCHMARK=PRED_DIR)")
        name, _, bench = label.partition("@")
        specs.append(RunSpec(name, bench or default_benchmark, Path(folder)))
    return specs


def _parse_data(values: list[str], benchmarks: list[str]) -> dict[str, Path]:
    """`--data DIR` (every benchmark) or `--data B=DIR` per benchmark."""
    roots: dict[str, Path] = {}
    for value in values:
        bench, sep, folder = value.partition("=")
        if sep:
            roots[bench] = Path(folder)
        else:
            roots.update({b: Path(value) for b in benchmarks if b not in roots})
    return roots


def report_command(
    runs: list[str] = typer.Option(..., "--runs", help="NAME=PRED_DIR (repeat); NAME@ms3=DIR for another benchmark."),
    data: list[str] = typer.Option(..., "--data", help="AVSBench root, or B=DIR per benchmark (repeat)."),
    benchmark: str = typer.Option("s4", "--benchmark", help="Benchmark of runs given without @B."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    out: Path = typer.Option(..., "--out", help="Report folder: report.md/.json, scores.png, qualitative_*.png."),
    protocol: str = typer.Option("binary", "--protocol", help="binary, or semantic (AVSS)."),
    videos: int = typer.Option(4, "--videos", min=1, help="Videos in the qualitative grid."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the report as MLflow artifacts."),
    run_id: str = typer.Option(None, "--run-id", help="Evaluation run to attach the artifacts to (with --mlflow)."),
) -> None:
    """Compare MoCA, the baselines and the floors in one table (+ figures), scored like `moca evaluate`."""
    from moca.report import build_report, log_report

    specs = _parse_runs(runs, benchmark)
    roots = _parse_data(data, list(dict.fromkeys(s.benchmark for s in specs)))
    table = build_report(specs, roots, split, out, protocol, videos)
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    if mlflow:
        typer.echo(f"logged to MLflow run {log_report(out, table, run_id)}")


def label_avss_command(
    pred: Path = typer.Option(..., "--pred", help="Binary AVSS predictions (a `moca infer` output)."),
    data: Path = typer.Option(..., "--data", help="AVSS root (the folder holding metadata.csv)."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    out: Path = typer.Option(..., "--out", help="Class-index predictions ({key}.npy + palette .png)."),
    imagebind: str = typer.Option("imagebind_huge", "--imagebind", help="imagebind_huge or imagebind_tiny."),
    imagebind_weights: str = typer.Option(None, "--imagebind-weights", help="ImageBind checkpoint URI."),
    imagebind_sha256: str = typer.Option(None, "--imagebind-sha256"),
) -> None:
    """Zero-shot AVSS class labels for binary masks (ImageBind text embeddings of the 70 class names); score the
    output with `moca evaluate --protocol semantic`."""
    from moca.infer.avss import label_predictions
    from moca.models import WeightsSpec

    weights = WeightsSpec(imagebind_weights, imagebind_sha256) if imagebind_weights else None
    manifest = label_predictions(pred, data, split, out, imagebind, weights)
    typer.echo(f"labelled {manifest['counts']['labelled']} frames ({manifest['counts']['empty']} empty) -> {out}")


def register(app: typer.Typer) -> None:
    app.command("infer")(infer_command)
    app.command("baseline")(baseline_command)
    app.command("report")(report_command)
    app.command("label-avss")(label_avss_command)
