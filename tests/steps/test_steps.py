"""The steps called directly: manifests, reruns, the validation gate, evaluation and registration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from moca.data.layout import list_videos
from moca.errors import ConfigError, ValidationFailed
from moca.io import read_json, sha256_tree
from moca.steps.evaluate import evaluate
from moca.steps.ingest import data_version, ingest
from moca.steps.manifest import MANIFEST, run_step
from moca.steps.validate import validate


def write_predictions(data: Path, out: Path, flip: bool = False) -> Path:
    """The ground-truth masks of the test split as PNG probability maps (inverted with `flip`)."""
    for video in list_videos(data, "s4", "test"):
        for frame in video.frames:
            if frame.mask is None:
                continue
            mask = np.asarray(Image.open(frame.mask).convert("L")) > 0
            target = out / f"{frame.key}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(((mask != flip) * 255).astype(np.uint8)).save(target)
    return out


def test_ingest_names_the_version_by_content_and_skips_an_identical_rerun(s4_source, tmp_path):
    first = ingest(s4_source, tmp_path / "ingest", "s4")
    assert data_version(first) == sha256_tree(s4_source)
    assert not first.skipped and sha256_tree(first.out / "data") == sha256_tree(s4_source)
    manifest = read_json(first.out / MANIFEST)
    assert manifest["inputs"] == {"source": sha256_tree(s4_source)}
    assert set(manifest) >= {"config_hash", "git_sha", "outputs", "timings_s", "data_version", "info"}
    again = ingest(s4_source, tmp_path / "ingest", "s4")
    assert again.skipped and again.manifest == first.manifest


def test_a_changed_input_reruns_and_a_foreign_folder_is_never_cleared(tmp_path):
    calls = []

    def body(folder: Path) -> dict:
        calls.append(folder)
        (folder / "out.txt").write_text("x")
        return {"metrics": {"m": 1}}

    run_step("demo", tmp_path / "a", {"x": "1"}, {"k": 1}, body)
    assert run_step("demo", tmp_path / "a", {"x": "1"}, {"k": 1}, body).skipped
    assert not run_step("demo", tmp_path / "a", {"x": "2"}, {"k": 1}, body).skipped
    (tmp_path / "a" / "out.txt").write_text("tampered")  # a damaged output is recomputed, not trusted
    assert not run_step("demo", tmp_path / "a", {"x": "2"}, {"k": 1}, body).skipped
    assert len(calls) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an earlier output"):
        run_step("demo", tmp_path / "mine", {}, {}, body)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep"


def test_validation_failure_raises_and_leaves_the_report(s4_source, tmp_path):
    broken = shutil.copytree(s4_source, tmp_path / "broken")
    frame = next(iter(list_videos(broken, "s4", "train"))).frames[0].image
    frame.write_bytes(b"not a png")
    with pytest.raises(ValidationFailed, match="failed validation"):
        validate(broken, tmp_path / "validate", "s4", "v-broken")
    report = tmp_path / "validate"
    assert "FAILED" in (report / "report" / "summary.txt").read_text()
    assert (report / "report" / "data_docs" / "index.html").is_file()
    page = (report / "report.html").read_text()
    assert "FAILED" in page and frame.name in page
    assert read_json(report / MANIFEST)["info"]["passed"] is False


def test_evaluate_scores_known_predictions(s4_source, tmp_path):
    perfect = evaluate(write_predictions(s4_source, tmp_path / "perfect"), s4_source, tmp_path / "e1", "s4", "v")
    assert perfect.metrics == {"test.miou": pytest.approx(1.0), "test.fscore": pytest.approx(1.0)}
    assert "| mIoU | 1.0000 |" in (tmp_path / "e1" / "evaluation.md").read_text()
    flipped = write_predictions(s4_source, tmp_path / "inv", flip=True)
    inverted = evaluate(flipped, s4_source, tmp_path / "e2", "s4", "v")
    assert inverted.metrics["test.miou"] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_failure_writes_no_scores(s4_source, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="missing prediction"):
        evaluate(tmp_path / "empty", s4_source, tmp_path / "e", "s4", "v")
    assert not (tmp_path / "e" / "evaluation.json").exists()
    assert not (tmp_path / "e" / MANIFEST).exists()


def _model_folder(path: Path, seed: int) -> Path:
    path.mkdir(parents=True)
    torch.save({"gate": torch.full((1,), float(seed))}, path / "adapters.pt")
    model = {"backbone": "imagebind_tiny", "adapter": {"positions": [2, 4], "bottleneck": 32, "heads": 4}}
    (path / "config.yaml").write_text(yaml.safe_dump({"model": model, "seed": seed}))
    return path


def _scores(path: Path, miou: float) -> Path:
    path.write_text(json.dumps({"miou": miou, "fscore": miou / 2, "split": "test"}))
    return path


@pytest.mark.slow  # three pyfunc models logged and registered: ~25-50 s on the shared 2 cores
def test_register_promotes_first_and_better_models_only(tmp_tracking, tmp_path):
    from moca.steps.register import register_and_promote
    from moca.steps.tracking import champion, champion_training_stats, finish_pipeline_run, start_pipeline_run

    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"videos_per_split": {"train": 8}, "frames": 40}))
    outcomes = []
    for index, miou in enumerate([0.5, 0.4, 0.6]):  # first, worse, better (ties: tests/tracking)
        parent = start_pipeline_run(f"run-{index}")
        model, scores = _model_folder(tmp_path / f"m{index}", index), _scores(tmp_path / f"s{index}.json", miou)
        result = register_and_promote(model, scores, stats, tmp_path / f"r{index}", f"data-{index}", "cfg", "test",
                                      "miou", parent)
        finish_pipeline_run(parent)
        outcomes.append((result.info["version"], result.info["promoted"]))
    assert outcomes == [("1", True), ("2", False), ("3", True)]
    assert str(champion("moca").version) == "3" and champion("moca").tags["data_version"] == "data-2"
    version, reference = champion_training_stats("moca")
    assert version == "3" and reference["frames"] == 40
