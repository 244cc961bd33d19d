"""`moca demo`: the whole workflow on one machine with no server (what `make demo` runs).

synthetic S4 data (fixed seed) in data/ -> `dvc add` + push to the local remote -> the Kubeflow pipeline through
kfp.local (ingest of that exact version, validation, pairs, training, SAM inference, evaluation, registration)
-> MLflow (SQLite under .moca/) with `@champion` -> a summary of where every result is.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import typer

from moca.cli._steps import SetOption

DATA = Path("data")
DVC_FILE = Path("data.dvc")
DEMO_CONFIG = Path("configs/pipeline_demo.yaml")
DEMO_VIDEOS = 60
# As the stand-ins' gate sets (moca.standins.corpus.SCENE_CONTEXT); their pre-training corpus has none, on purpose.
DEMO_SCENE_CONTEXT = 0.8


def _synthesise(videos: int, seed: int, scene_context: float) -> bool:
    """Make data/ hold the synthetic dataset for these settings; returns whether it had to be (re)generated."""
    from moca.data.synth import SynthConfig, synthesize
    from moca.errors import DataError

    config = SynthConfig(benchmark="s4", videos=videos, seed=seed, scene_context=scene_context)
    marker = DATA / "synth.json"
    if DATA.exists():
        if not marker.is_file():
            raise DataError(DATA, "exists and is not a synthetic demo dataset; move it away to run the demo")
        described = json.loads(marker.read_text(encoding="utf-8")).get("config", {})
        if (described.get("seed"), described.get("videos"), described.get("scene_context", 0.0)) == \
                (seed, videos, scene_context):
            return False
    staging = DATA.with_name(".data.demo-staging")
    shutil.rmtree(staging, ignore_errors=True)
    synthesize(staging, config)
    if DATA.exists():  # the previous version stays in the DVC cache and remote; data/ is the workspace copy
        shutil.rmtree(DATA)
    staging.rename(DATA)
    return True


def _pipeline_run_id(model_version: str) -> str:
    """The MLflow pipeline run that registered `model_version` (the register step's run is nested in it)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    register_run = client.get_model_version("moca", model_version).run_id
    return client.get_run(register_run).data.tags["mlflow.parentRunId"]


def _first(run_folder: Path, pattern: str) -> Path | None:
    return next(iter(sorted(run_folder.glob(pattern))), None)


def demo_command(
    out: Path = typer.Option(Path(".moca/demo"), "--out", help="Where the pipeline's task outputs go."),
    seed: int = typer.Option(0, "--seed", help="Synthetic data seed: a new seed is a new data version."),
    videos: int = typer.Option(DEMO_VIDEOS, "--videos", min=6, help="Synthetic S4 videos (split 70/15/15 %)."),
    scene_context: float = typer.Option(DEMO_SCENE_CONTEXT, "--scene-context", min=0.0, max=1.0,
                                        help="P(a video's background is its sounding class's scene), as in real "
                                             "videos; 0 leaves pair mining nothing to find."),
    config: Path = typer.Option(DEMO_CONFIG, "--config", help="Pipeline config."),
    sets: list[str] = SetOption,
) -> None:
    """Synthetic data -> DVC -> the Kubeflow pipeline via kfp.local -> MLflow model with @champion."""
    from moca.report import log_report
    from moca.report.compare import compare_model
    from moca.standins.registry import AUTOMATIC_SAM
    from moca.steps.kubeflow import run_local
    from moca.tracking.registry import champion
    from moca.tracking.runs import tracking_uri
    from moca.versioning import add_and_push, data_version

    started = time.perf_counter()
    regenerated = _synthesise(videos, seed, scene_context)
    recorded = data_version(DVC_FILE) if DVC_FILE.is_file() else None
    version = add_and_push(DATA)
    note = ("as data.dvc records" if version == recorded
            else "data.dvc now names it: commit it, or git checkout data.dvc")
    typer.echo(f"data: {'generated' if regenerated else 'reused'} {DATA}/ (seed {seed}, {videos} videos); "
               f"version {version} pushed to the DVC remote ({note})")
    before = champion("moca")
    pipeline_started = time.perf_counter()
    run_folder = run_local(config, out, data_rev=version, run_name=f"moca-demo-seed{seed}", overrides=sets)
    pipeline_s = time.perf_counter() - pipeline_started
    promotion = json.loads((run_folder / "register" / "promotion" / "promotion.json").read_text(encoding="utf-8"))
    after = champion("moca")
    report, table = compare_model(run_folder / "train" / "model", run_folder / "infer" / "predictions", DATA, "s4",
                                  out / "compare" / run_folder.name, owod_sam=AUTOMATIC_SAM)
    log_report(report, table, run_id=_pipeline_run_id(str(promotion["version"])))
    docs = _first(run_folder, "validate/report/data_docs/**/index.html")
    drift = run_folder / "validate" / "report" / "drift.md"
    lines = [
        "",
        f"moca demo finished in {time.perf_counter() - started:.0f} s (pipeline {pipeline_s:.0f} s through kfp.local)",
        f"  data version        {version} (DVC remote: .moca/dvc-remote)",
        f"  registered model    moca v{promotion['version']}: {'PROMOTED' if promotion['promoted'] else 'not promoted'}"
        f" ({promotion['reason']})",
        f"  champion            moca@champion = v{after.version if after else '?'}"
        f" (before: {'v' + str(before.version) if before else 'none'})",
        f"  validation report   {run_folder / 'validate' / 'page'}",
        f"  Data Docs           {docs}",
        f"  drift vs champion   {drift if drift.is_file() else 'not checked (no champion before this run)'}",
        f"  evaluation report   {run_folder / 'evaluate' / 'table'}",
        f"  comparison          {report / 'report.md'} (+ scores.png, comparison_s4.png, qualitative_s4.png; also "
        "artifacts of the MLflow pipeline run)",
        f"  task outputs        {run_folder}",
        f"  look at it all      mlflow ui --backend-store-uri {tracking_uri()} --port 5000",
        "  test mIoU / F       (synthetic data and stand-in models: not paper numbers)",
    ]
    lines += [f"    {row['scores']['s4']['miou']:.3f} / {row['scores']['s4']['fscore']:.3f}  {row['name']}"
              for row in table["rows"]]
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
