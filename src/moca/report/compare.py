"""What a pipeline run's model does, next to what it would do without training and next to the baselines.

    from moca.report.compare import compare_model
    report, table = compare_model(run / "train" / "model", run / "infer" / "predictions", data, "s4", out)

Rows, all on the run's test split and on the same foundation models (the run's backbone and SAM):
- MoCA + MPM: the pipeline's own predictions;
- MoCA, coarse mask: the trained adapters without MPM;
- no training + MPM and no training, coarse mask: the same model with every adapter gate at 0, i.e. the frozen
  backbone alone (`moca.infer.model.write_untrained`), so the table shows what training added;
- OWOD-BIND with the same backbone and SAM (its SAM-boxes variant unless a detector is configured); `owod_sam`
  overrides SAM's automatic generator settings for it (named in the row);
- the floors: centre prior and all-foreground.
The comparison grid draws the audio-pixel maps before and after training beside every final mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from moca.io import read_json

TRAINED_MPM = "MoCA + MPM (SAM points)"
TRAINED_COARSE = "MoCA, coarse mask (no MPM)"
UNTRAINED_MPM = "no training (gates 0) + MPM"
UNTRAINED_COARSE = "no training (gates 0), coarse mask"


def _owod_config(model_dir: Path, infer_config: dict[str, Any], automatic: dict[str, Any]) -> dict[str, Any]:
    """OWOD-BIND on the run's own foundation models: its backbone (with weights) and its SAM, whose automatic
    generator settings `automatic` overrides."""
    trained = yaml.safe_load((model_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    model = trained.get("model") or {}
    sam = {**(infer_config.get("sam") or {}), **automatic}
    return {"imagebind": model.get("backbone", "imagebind_huge"), "imagebind_weights": model.get("backbone_weights"),
            "sam": sam, "audio": trained.get("audio") or {}}


def compare_model(model_dir: Path, predictions: Path, data: Path, benchmark: str, out: Path,
                  owod_sam: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Compare a trained model (a train step folder) and its infer step's `predictions`: infer the other rows into
    `out`, run the baselines there, and build the report in `out/report`; returns its folder and the table."""
    from moca.baselines import run_baseline
    from moca.infer.model import write_untrained
    from moca.report.build import build_report
    from moca.report.table import RunSpec
    from moca.steps import infer
    from moca.steps.runner import Inputs

    infer_config = read_json(predictions / "infer_manifest.json")["config"]
    split = infer_config.get("split", "test")
    untrained = write_untrained(model_dir, out / "untrained-model")
    folders = {TRAINED_MPM: predictions}
    extra = ((TRAINED_COARSE, "trained-coarse", model_dir, "none"),
             (UNTRAINED_MPM, "untrained-mpm", untrained, infer_config["mpm"]),
             (UNTRAINED_COARSE, "untrained-coarse", untrained, "none"))
    for name, folder, model, mpm in extra:
        folders[name] = out / folder
        infer.run({**infer_config, "mpm": mpm}, Inputs(data=data, benchmark=benchmark, upstream={"model": model}),
                  folders[name])
    owod = "OWOD-BIND (same backbone and SAM" + "".join(f", {k} {v}" for k, v in (owod_sam or {}).items()) + ")"
    baselines = {owod: ("owod-bind", _owod_config(model_dir, infer_config, owod_sam or {})),
                 "centre prior": ("centre", None), "all-foreground": ("all-foreground", None)}
    for name, (baseline, config) in baselines.items():
        folders[name] = out / baseline
        run_baseline(baseline, data, benchmark, split, folders[name], config)
    runs = [RunSpec(name, benchmark, folder) for name, folder in folders.items()]
    report = out / "report"
    table = build_report(runs, {benchmark: data}, split, report, compare_maps=[UNTRAINED_COARSE, TRAINED_COARSE])
    return report, table
