"""`run_inference` / `moca infer` end to end on synthetic S4 with tiny models: files `moca evaluate` reads,
resume, k-means coarse masks, and `--model` as an MLflow model URI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from infer_helpers import LOW_SAM_THRESHOLDS
from PIL import Image
from typer.testing import CliRunner

from moca.cli import evaluate as evaluate_cli
from moca.cli import infer as infer_cli
from moca.data.layout import list_videos
from moca.errors import ConfigError, WeightsError
from moca.evaluate import evaluate_predictions
from moca.infer import run_inference

POINTS = {"mpm": "points", "sam": LOW_SAM_THRESHOLDS}


def _keys(root: Path) -> list[str]:
    return [f.key for v in list_videos(root, "s4", "test") for f in v.frames if f.mask is not None]


@pytest.fixture(scope="module")
def points_run(s4_data: Path, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pred") / "points"
    run_inference(tiny_checkpoint, s4_data, "s4", "test", out, POINTS)
    return out


def test_writes_saturated_logits_matching_png_and_side_files(points_run: Path, s4_data: Path) -> None:
    keys = _keys(s4_data)
    assert keys
    for key in keys:
        logits = np.load(points_run / f"{key}.npy")
        png = np.asarray(Image.open(points_run / f"{key}.png"))
        assert logits.dtype == np.float32 and set(np.unique(logits)) <= {-10.0, 10.0}
        assert np.array_equal(png == 255, logits > 0) and set(np.unique(png)) <= {0, 255}
        assert np.load(points_run / "_maps" / f"{key}.npy").shape == (16, 16)
        assert (points_run / "_coarse" / f"{key}.png").is_file()
    manifest = json.loads((points_run / "infer_manifest.json").read_text())
    assert manifest["method"] == "moca-mpm-points"
    assert manifest["counts"]["predicted"] == len(keys)
    assert manifest["sam_embeddings"] == len(keys)  # one SAM image embedding per frame
    assert manifest["counts"]["proposals"] >= len(keys)  # at least one point prompt per frame


def test_evaluate_reads_the_predictions(points_run: Path, s4_data: Path) -> None:
    npy = evaluate_predictions(points_run, s4_data, "s4", "test")
    assert 0.0 <= npy["miou"] <= 1.0 and npy["num_frames"] == len(_keys(s4_data))
    png_only = points_run.parent / "png_only"
    for key in _keys(s4_data):  # the PNGs alone score the same: both files carry the same mask
        (png_only / key).parent.mkdir(parents=True, exist_ok=True)
        (png_only / f"{key}.png").write_bytes((points_run / f"{key}.png").read_bytes())
    png = evaluate_predictions(png_only, s4_data, "s4", "test")
    assert png["miou"] == pytest.approx(npy["miou"]) and png["fscore"] == pytest.approx(npy["fscore"])


def test_resume_skips_done_frames_and_redoes_damaged_ones(points_run: Path, s4_data: Path,
                                                          tiny_checkpoint: Path) -> None:
    key = _keys(s4_data)[0]
    good = (points_run / f"{key}.npy").read_bytes()
    (points_run / f"{key}.png").write_bytes(b"not a png")
    manifest = run_inference(tiny_checkpoint, s4_data, "s4", "test", points_run, POINTS)
    assert manifest["counts"]["predicted"] == 1
    assert manifest["counts"]["skipped_existing"] == len(_keys(s4_data)) - 1
    assert (points_run / f"{key}.npy").read_bytes() == good  # same inputs, same result
    Image.open(points_run / f"{key}.png").load()


def test_no_mpm_with_kmeans_outputs_the_coarse_mask(s4_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    manifest = run_inference(tiny_checkpoint, s4_data, "s4", "test", tmp_path, {"mpm": "none", "coarse": "kmeans"})
    assert manifest["method"] == "moca-coarse" and manifest["sam_embeddings"] == 0
    for key in _keys(s4_data):
        coarse = np.asarray(Image.open(tmp_path / "_coarse" / f"{key}.png"))
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"{key}.png")), coarse)
        assert coarse.any()  # k-means keeps at least the most audio-like cluster


def test_bad_inputs_are_clear_errors(s4_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="infer.mpm"):
        run_inference(tiny_checkpoint, s4_data, "s4", "test", tmp_path, {"mpm": "everything"})
    with pytest.raises(WeightsError, match="model not found"):
        run_inference(tmp_path / "nowhere", s4_data, "s4", "test", tmp_path / "out", POINTS)
    with pytest.raises(WeightsError, match="no adapter checkpoint"):
        run_inference(tmp_path, s4_data, "s4", "test", tmp_path / "out", POINTS)
    assert not (tmp_path / "out").exists()


def test_cli_infer_then_evaluate(s4_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    infer_cli.register(app)
    evaluate_cli.register(app)
    out = tmp_path / "pred"
    result = CliRunner().invoke(app, ["infer", "--model", str(tiny_checkpoint), "--data", str(s4_data),
                                      "--benchmark", "s4", "--set", "infer.split=test", "--out", str(out),
                                      "--set", "infer.mpm=none"])
    assert result.exit_code == 0, result.output
    assert "moca-coarse" in result.output
    scores = tmp_path / "scores"
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(out), "--data", str(s4_data), "--benchmark", "s4",
                                      "--out", str(scores)])
    assert result.exit_code == 0, result.output
    assert json.loads((scores / "evaluation.json").read_text())["num_frames"] == len(_keys(s4_data))


def test_model_from_mlflow_uris(s4_data: Path, tiny_checkpoint: Path, points_run: Path, tmp_tracking: str,
                                tmp_path: Path) -> None:
    import mlflow

    from moca.tracking.pyfunc import log_model
    from moca.tracking.runs import configure, ensure_experiment

    configure()
    with mlflow.start_run(experiment_id=ensure_experiment("infer-test")):
        uri = log_model(tiny_checkpoint / "adapters.pt", tiny_checkpoint / "config.yaml",
                        {"imagebind_tiny": {"uri": "random-init", "sha256": ""}}).model_uri
    version = mlflow.register_model(uri, "moca")
    mlflow.MlflowClient().set_registered_model_alias("moca", "champion", version.version)
    key = _keys(s4_data)[0]
    out = tmp_path / "champion"
    manifest = run_inference("models:/moca@champion", s4_data, "s4", "test", out, {"mpm": "none"})
    assert manifest["model"]["source"] == "models:/moca@champion"
    # the logged model holds the same adapters over the same seeded backbone: the same audio-pixel maps (up to
    # float rounding: the resume test re-predicted this frame in a batch of one)
    np.testing.assert_allclose(np.load(out / "_maps" / f"{key}.npy"), np.load(points_run / "_maps" / f"{key}.npy"),
                               atol=1e-5)


def test_pyfunc_predict_frames_returns_one_map_per_row(s4_data: Path, tiny_checkpoint: Path) -> None:
    import pandas as pd

    from moca.infer import predict_frames

    video = list_videos(s4_data, "s4", "test")[0]
    rows = pd.DataFrame({"image": [video.frames[0].image.read_bytes(), video.frames[1].image.read_bytes()],
                         "audio": [Path(video.audio).read_bytes()] * 2})  # the serving contract: encoded bytes
    maps = predict_frames(tiny_checkpoint, rows)
    size = np.asarray(Image.open(video.frames[0].image)).shape[:2]
    assert len(maps) == 2 and all(m.shape == size and m.dtype == np.float32 for m in maps)
    assert all(m.min() >= 0.0 and m.max() <= 1.0 for m in maps)


def test_resume_refuses_a_folder_of_another_config(points_run: Path, s4_data: Path, tiny_checkpoint: Path) -> None:
    before = sorted(p.name for p in points_run.rglob("*"))
    with pytest.raises(ConfigError, match="holds predictions of another run"):
        run_inference(tiny_checkpoint, s4_data, "s4", "test", points_run, {**POINTS, "num_points": 5})
    assert sorted(p.name for p in points_run.rglob("*")) == before


def test_a_released_sam_without_weights_is_refused_before_any_work(s4_data: Path, tiny_checkpoint: Path,
                                                                    tmp_path: Path, capsys) -> None:
    """The default sam_vit_h with no checkpoint would propose noise for minutes on CPU: refused, in the library
    (infer, baselines) and by the step before it loads anything."""
    from moca.baselines import run_baseline
    from moca.cli import _register_all, run

    with pytest.raises(ConfigError, match=r"infer.sam.weights: sam_vit_h needs its released weights"):
        run_inference(tiny_checkpoint, s4_data, "s4", "test", tmp_path / "lib", {"mpm": "points"})
    with pytest.raises(ConfigError, match=r"baseline.sam.weights: sam_vit_h needs its released weights"):
        run_baseline("owod-bind", s4_data, "s4", "test", tmp_path / "baseline", {})
    _register_all()
    args = ["infer", "--model", str(tiny_checkpoint), "--data", str(s4_data), "--benchmark", "s4",
            "--out", str(tmp_path / "cli")]
    assert run(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: infer.sam.weights: sam_vit_h needs its released weights ({uri: ..., sha256: ...}); set "
        "infer.sam.weights=random to run it randomly initialised (meaningless, smoke tests only)"]
    assert not (tmp_path / "cli").exists() and not (tmp_path / "lib" / "infer_manifest.json").exists()
