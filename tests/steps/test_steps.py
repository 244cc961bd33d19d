"""The steps called directly through their one entry, `run(config, inputs, out)`: manifests, skip-on-rerun,
resume and refusal of other settings, the validation verdict, evaluation and registration."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moca.data.layout import list_videos
from moca.errors import ConfigError, ValidationFailed
from moca.io import read_json, sha256_file, sha256_tree
from moca.steps import evaluate, ingest, validate
from moca.steps.runner import MANIFEST, Inputs, step


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
    config = ingest.IngestConfig(path=str(s4_source))
    first = ingest.run(config, Inputs(), tmp_path / "ingest")
    assert ingest.data_version(first) == sha256_tree(s4_source)
    assert not first.skipped and sha256_tree(first.out / "data") == sha256_tree(s4_source)
    manifest = read_json(first.out / MANIFEST)
    assert manifest["inputs"] == {"source": sha256_tree(s4_source)}
    assert set(manifest) >= {"config_hash", "git_sha", "outputs", "timings_s", "data_version", "info"}
    again = ingest.run({"path": str(s4_source)}, Inputs(), tmp_path / "ingest")  # a mapping is parsed the same
    assert again.skipped and again.manifest == first.manifest


@dataclass
class ToyConfig:
    k: int = 1


def _toy_steps(calls: list[Path]):
    def body(config: ToyConfig, inputs: Inputs, folder: Path) -> dict:
        calls.append(folder)
        (folder / "out.txt").write_text(f"k={config.k} {inputs.upstream.get('x', '')}")
        return {"metrics": {"m": 1}}

    cheap = step("toy", section="toy", config=ToyConfig, produces="toy", reads=("x",), outputs=("out.txt",))(body)
    kept = step("toy", section="toy", config=ToyConfig, produces="toy", outputs=("out.txt",), keep=True)(body)
    return cheap, kept


def test_a_changed_input_reruns_and_a_foreign_folder_is_never_cleared(tmp_path):
    calls: list[Path] = []
    run, _ = _toy_steps(calls)
    source = tmp_path / "x.txt"
    source.write_text("1")
    inputs = Inputs(upstream={"x": source})
    run(ToyConfig(), inputs, tmp_path / "a")
    assert run(ToyConfig(), inputs, tmp_path / "a").skipped
    source.write_text("2")
    assert not run(ToyConfig(), inputs, tmp_path / "a").skipped  # an input changed
    assert not run(ToyConfig(k=2), inputs, tmp_path / "a").skipped  # the config changed
    (tmp_path / "a" / "out.txt").write_text("tampered")  # a damaged output is recomputed, not trusted
    assert not run(ToyConfig(k=2), inputs, tmp_path / "a").skipped
    assert len(calls) == 4
    assert read_json(tmp_path / "a" / MANIFEST)["inputs"] == {"x": sha256_file(source)}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an earlier output"):
        run(ToyConfig(), inputs, tmp_path / "mine")
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep"


def test_a_kept_folder_continues_with_the_same_settings_and_names_the_keys_that_differ(tmp_path):
    calls: list[Path] = []
    _, run = _toy_steps(calls)
    out = tmp_path / "train"
    out.mkdir()
    (out / ".moca-step").write_text(json.dumps({"step": "toy", "inputs": {}, "settings": {"benchmark": "s4",
                                                                                          "toy.k": 3}}))
    (out / "checkpoint").write_text("partial work")  # an interrupted attempt with k=3
    with pytest.raises(ConfigError, match=r"other settings \(toy.k: 3 -> 1\)") as refused:
        run(ToyConfig(), Inputs(), out)
    assert "choose a new output folder" in str(refused.value) and not calls
    assert (out / "checkpoint").read_text() == "partial work"  # never cleared
    result = run(ToyConfig(k=3), Inputs(), out)  # the same settings: continued in place
    assert not result.skipped and (out / "checkpoint").is_file() and calls == [out]


def test_validation_failure_keeps_the_report_and_require_passed_raises(s4_source, tmp_path):
    broken = shutil.copytree(s4_source, tmp_path / "broken")
    frame = next(iter(list_videos(broken, "s4", "train"))).frames[0].image
    frame.write_bytes(b"not a png")
    report = tmp_path / "validate"
    result = validate.run(validate.ValidateConfig(), Inputs(data=broken, data_version="v-broken"), report)
    assert result.info["passed"] is False and read_json(report / MANIFEST)["info"]["passed"] is False
    with pytest.raises(ValidationFailed, match="failed validation"):
        validate.require_passed(result, broken)
    assert "FAILED" in (report / "summary.txt").read_text()
    assert (report / "data_docs" / "index.html").is_file()
    page = (report / "report.html").read_text()
    assert "FAILED" in page and frame.name in page


def test_evaluate_scores_known_predictions(s4_source, tmp_path):
    def scores(predictions: Path, out: Path):
        inputs = Inputs(data=s4_source, data_version="v", upstream={"predictions": predictions})
        return evaluate.run(evaluate.EvaluateConfig(), inputs, out)

    perfect = scores(write_predictions(s4_source, tmp_path / "perfect"), tmp_path / "e1")
    assert perfect.metrics == {"test.miou": pytest.approx(1.0), "test.fscore": pytest.approx(1.0)}
    assert "| mIoU | 1.0000 |" in (tmp_path / "e1" / "evaluation.md").read_text()
    inverted = scores(write_predictions(s4_source, tmp_path / "inv", flip=True), tmp_path / "e2")
    assert inverted.metrics["test.miou"] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_failure_writes_no_scores(s4_source, tmp_path):
    (tmp_path / "empty").mkdir()
    inputs = Inputs(data=s4_source, data_version="v", upstream={"predictions": tmp_path / "empty"})
    with pytest.raises(Exception, match="missing prediction"):
        evaluate.run(evaluate.EvaluateConfig(), inputs, tmp_path / "e")
    assert not (tmp_path / "e" / "evaluation.json").exists()
    assert not (tmp_path / "e" / MANIFEST).exists()


def test_inputs_a_step_needs_are_named(s4_source, tmp_path):
    with pytest.raises(ConfigError, match="needs its 'predictions' input"):
        evaluate.run({}, Inputs(data=s4_source), tmp_path / "e")
    with pytest.raises(ConfigError, match="needs a dataset"):
        evaluate.run({}, Inputs(upstream={"predictions": tmp_path}), tmp_path / "e")
    with pytest.raises(ConfigError, match="evaluate.protocol: 'semantics' is not one of"):
        evaluate.run({"protocol": "semantics"}, Inputs(data=s4_source), tmp_path / "e")


def _evaluation(path: Path, miou: float) -> Path:
    path.mkdir(parents=True)
    (path / "evaluation.json").write_text(json.dumps({"miou": miou, "fscore": miou / 2, "split": "test",
                                                      "benchmark": "s4"}))
    (path / "per_category.json").write_text(json.dumps([{"category": "dog", "miou": miou, "fscore": miou / 2}]))
    return path


@pytest.mark.slow  # three pyfunc models logged and registered: ~25-50 s on the shared 2 cores
def test_register_promotes_first_and_better_models_only(tmp_tracking, tmp_path, tiny_model):
    import mlflow

    from moca.steps import register
    from moca.tracking.registry import champion, champion_training_stats, version_metrics
    from moca.tracking.runs import finish_pipeline_run, start_pipeline_run

    report = tmp_path / "report"
    report.mkdir()
    (report / "stats.json").write_text(json.dumps({"videos_per_split": {"train": 8}, "frames": 40}))
    outcomes = []
    for index, miou in enumerate([0.5, 0.4, 0.6]):  # first, worse, better (ties: tests/tracking)
        parent = start_pipeline_run(f"run-{index}")
        upstream = {"model": tiny_model(tmp_path / f"m{index}", index), "report": report,
                    "evaluation": _evaluation(tmp_path / f"e{index}", miou)}
        inputs = Inputs(data_version=f"data-{index}", upstream=upstream, parent_run_id=parent, config_hash="cfg")
        result = register.run(register.RegisterConfig(), inputs, tmp_path / f"r{index}")
        finish_pipeline_run(parent)
        outcomes.append((result.info["version"], result.info["promoted"]))
    assert outcomes == [("1", True), ("2", False), ("3", True)]
    assert str(champion("moca").version) == "3" and champion("moca").tags["data_version"] == "data-2"
    # the scores are metrics of the version (its logged model) and of the register run, never tags
    client = mlflow.MlflowClient()
    assert version_metrics(client, champion("moca")) == {"test.miou": 0.6, "test.fscore": 0.3}
    assert not any(key.startswith("metric") for key in champion("moca").tags)
    assert client.get_run(champion("moca").run_id).data.metrics == {"test.miou": 0.6, "test.fscore": 0.3}
    table = mlflow.load_table("evaluation/per_category.json", run_ids=[champion("moca").run_id])
    assert table["category"].tolist() == ["dog"] and table["miou"].tolist() == pytest.approx([0.6])
    version, reference = champion_training_stats("moca")
    assert version == "3" and reference["frames"] == 40
    with pytest.raises(ConfigError, match="tracked pipeline run"):
        register.run({}, Inputs(upstream=upstream), tmp_path / "untracked")


def test_a_tracked_cli_run_nests_its_step_and_a_rerun_is_skipped(s4_source, tmp_path, tmp_tracking, capsys):
    """`moca evaluate --track`: the command's own MLflow run with the evaluate step nested under it; the same
    command again reuses the step folder (the CLI gets the runner's skip-on-rerun)."""
    import mlflow

    from moca.cli import _register_all, run

    _register_all()
    predictions = write_predictions(s4_source, tmp_path / "pred")
    args = ["evaluate", "--pred", str(predictions), "--data", str(s4_source), "--benchmark", "s4",
            "--out", str(tmp_path / "scores"), "--track"]
    assert run(args) == 0
    assert read_json(tmp_path / "scores" / MANIFEST)["step"] == "evaluate"
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    (parent,) = [r for r in runs if r.data.tags.get("moca.kind") == "cli"]
    (child,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.run_name == "moca evaluate" and parent.info.status == "FINISHED"
    assert child.info.run_name == "evaluate" and child.data.metrics["test.miou"] == pytest.approx(1.0)
    assert run(args[:-1]) == 0 and "unchanged since its last run; reused" in capsys.readouterr().out
