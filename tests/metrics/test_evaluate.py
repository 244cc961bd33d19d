"""`moca evaluate` on small hand-built AVSBench folders with hand-computed scores, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from moca.cli.evaluate import register
from moca.data.palette import index_to_colour
from moca.errors import DataError
from moca.evaluate import evaluate_predictions

TOL = 1e-6
SIZE = 8
G = np.zeros((SIZE, SIZE), dtype=bool)
G[:4, :4] = True  # 16 of 64 pixels
EMPTY = np.zeros((SIZE, SIZE), dtype=bool)
INVERTED_F = 1.3 * 0.25 / (0.3 * 0.25 + 1)  # inverted prediction: only t=0 keeps pixels; precision 16/64, recall 1


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


@pytest.fixture
def s4_root(tmp_path: Path) -> Path:
    """Two S4 test videos: catA/va (5 frames with G) and catB/vb (frames 1-4 with G, frame 5 empty)."""
    root = tmp_path / "data"
    meta = root / "Single-source/s4_meta_data.csv"
    meta.parent.mkdir(parents=True)
    meta.write_text("name,start,category,split\nva,0,catA,test\nvb,0,catB,test\nvc,0,catA,train\n")
    for category, name in (("catA", "va"), ("catB", "vb")):
        for k in range(1, 6):
            mask = EMPTY if (name, k) == ("vb", 5) else G
            save_png(root / f"Single-source/s4_data/gt_masks/test/{category}/{name}/{name}_{k}.png",
                     mask.astype(np.uint8) * 255)  # fmt: skip
    return root


def write_logits(pred: Path, key: str, mask: np.ndarray) -> None:
    path = pred / f"{key}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.where(mask, 10.0, -10.0).astype(np.float32))


def s4_keys(name: str, category: str) -> list[str]:
    return [f"{category}/{name}/{name}_{k}" for k in range(1, 6)]


def test_png_probability_maps_perfect(s4_root: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    for category, name in (("catA", "va"), ("catB", "vb")):
        for k, key in enumerate(s4_keys(name, category), 1):
            mask = EMPTY if (name, k) == ("vb", 5) else G
            save_png(pred / f"{key}.png", mask.astype(np.uint8) * 255)
    result = evaluate_predictions(pred, s4_root, "s4", "test")
    assert result["miou"] == pytest.approx(1.0, abs=TOL)
    assert result["fscore"] == pytest.approx(1.0, abs=TOL)  # value 255 -> s = 1.0 reaches even the last threshold
    assert (result["num_videos"], result["num_frames"]) == (2, 10)
    assert set(result["per_category"]) == {"catA", "catB"}


def test_npy_logits_hand_computed(s4_root: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    for key in s4_keys("va", "catA"):
        write_logits(pred, key, G)  # perfect
    for key in s4_keys("vb", "catB"):
        write_logits(pred, key, ~G)  # inverted; on the empty frame 5 the 16 pixels of G are correct background
    result = evaluate_predictions(pred, s4_root, "s4", "test")
    assert result["per_video"]["catB/vb"]["miou"] == pytest.approx((0 * 4 + 16 / 64) / 5, abs=TOL)
    assert result["per_video"]["catB/vb"]["fscore"] == pytest.approx(INVERTED_F, abs=TOL)
    assert result["miou"] == pytest.approx((1.0 + 0.05) / 2, abs=TOL)
    assert result["fscore"] == pytest.approx((1.0 + INVERTED_F) / 2, abs=TOL)
    assert result["per_category"]["catA"] == pytest.approx({"miou": 1.0, "fscore": 1.0, "num_videos": 1}, abs=TOL)


def test_missing_and_missized_predictions_name_the_file(s4_root: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    for key in s4_keys("va", "catA") + s4_keys("vb", "catB")[:-1]:
        write_logits(pred, key, G)
    with pytest.raises(DataError, match=r"vb_5\.png: missing prediction"):
        evaluate_predictions(pred, s4_root, "s4", "test")
    save_png(pred / "catB/vb/vb_5.png", np.zeros((SIZE, SIZE + 1), np.uint8))
    with pytest.raises(DataError, match=r"vb_5\.png: prediction is 8x9, expected 8x8"):
        evaluate_predictions(pred, s4_root, "s4", "test")
    palette = Image.fromarray(np.ones((SIZE, SIZE), np.uint8), "P")
    palette.putpalette(index_to_colour(np.arange(71)).reshape(-1).tolist())  # a label map: index 1 is a colour
    palette.save(pred / "catB/vb/vb_5.png")
    with pytest.raises(DataError, match=r"vb_5\.png: binary predictions must be greyscale .*not P with a colour"):
        evaluate_predictions(pred, s4_root, "s4", "test")
    (pred / "catB/vb/vb_5.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"vb_5\.npy: unreadable"):
        evaluate_predictions(pred, s4_root, "s4", "test")
    np.savez(pred / "catB/vb/vb_5.npy", logits=np.zeros((SIZE, SIZE), np.float32))
    (pred / "catB/vb/vb_5.npy.npz").rename(pred / "catB/vb/vb_5.npy")  # np.savez appends .npz
    with pytest.raises(DataError, match=r"vb_5\.npy: is an \.npz archive, not a \.npy array"):
        evaluate_predictions(pred, s4_root, "s4", "test")


def test_predictions_saved_by_the_official_save_mask_are_read(s4_root: Path, tmp_path: Path) -> None:
    """AVSBench's `save_mask` writes PRED/{video}/{video}_{0..4}.png, 0/255 through `convert('P')`: a palette
    PNG on the grey ramp, no category folder, frames from 0. They score as the keyed PNGs do."""
    keyed, official = tmp_path / "keyed", tmp_path / "official"
    for category, name in (("catA", "va"), ("catB", "vb")):
        for k, key in enumerate(s4_keys(name, category), 1):
            mask = (G if k % 2 else ~G).astype(np.uint8) * 255
            save_png(keyed / f"{key}.png", mask)
            target = official / name / f"{name}_{k - 1}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).convert("P").save(target, format="PNG")
    assert Image.open(official / "va" / "va_0.png").mode == "P"
    expected = evaluate_predictions(keyed, s4_root, "s4", "test")
    read = evaluate_predictions(official, s4_root, "s4", "test")
    assert (read["miou"], read["fscore"]) == (expected["miou"], expected["fscore"]) and 0 < read["miou"] < 1
    (official / "vb" / "vb_4.png").unlink()
    with pytest.raises(DataError, match=r"vb_5\.png: missing prediction \(looked for \.png and \.npy, and "
                                        r"vb/vb_4\.png as save_mask names it\)"):
        evaluate_predictions(official, s4_root, "s4", "test")


@pytest.fixture
def avss_root(tmp_path: Path) -> Path:
    """One AVSS v1m test video, 5 frames of 224x224: class 5 on the left half of frame 0, background elsewhere."""
    root = tmp_path / "avss"
    root.mkdir()
    (root / "metadata.csv").write_text("uid,label,split\nclipA,v1m,test\n")
    for i in range(5):
        classes = np.zeros((224, 224), dtype=np.int64)
        if i == 0:
            classes[:, :112] = 5
        save_png(root / f"v1m/clipA/labels_rgb/{i}.png", index_to_colour(classes))
    return root


def test_avss_semantic_with_padding_and_binary(avss_root: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    for i in range(5):
        classes = np.zeros((224, 224), dtype=np.int64)
        if i == 0:
            classes[:, :112] = 5
        if i == 1:
            classes[:, :56] = 9  # a class that is never in the ground truth: counted once, IoU 0
        if i < 2:
            save_png(pred / f"v1m/clipA/labels_rgb/{i}.png", index_to_colour(classes))
        else:
            (pred / f"v1m/clipA/labels_rgb/{i}.npy").parent.mkdir(parents=True, exist_ok=True)
            np.save(pred / f"v1m/clipA/labels_rgb/{i}.npy", classes)
    result = evaluate_predictions(pred, avss_root, "avss", "test", protocol="semantic")
    # background over 10 frames (5 padded): IoU 1 except frame 1 where 3/4 of it is predicted -> (9 + 0.75) / 10
    # class 5: IoU 1 on frame 0 (count 1); class 9: 0 (count 1)
    assert result["miou"] == pytest.approx((0.975 + 1 + 0) / 71, abs=TOL)
    background_f = 1.3 * 1 * 0.75 / (0.3 * 1 + 0.75)
    assert result["fscore"] == pytest.approx(((9 + background_f) / 10 + 1) / 71, abs=TOL)
    assert result["per_class"]["guitar"]["count"] == 0
    with pytest.raises(DataError, match=r"0\.png: binary predictions must be greyscale"):  # a label map
        evaluate_predictions(pred, avss_root, "avss", "test", protocol="binary")
    np.save(pred / "v1m/clipA/labels_rgb/0.npy", np.zeros((70, 224, 224), np.float32))  # one class short
    with pytest.raises(DataError, match=r"0\.npy: prediction is 70x224x224, expected 71x224x224 \(71 class logits"):
        evaluate_predictions(pred, avss_root, "avss", "test", protocol="semantic")


def test_avss_binary_protocol_uses_non_zero_as_foreground(avss_root: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    for i in range(5):
        foreground = np.zeros((224, 224), dtype=bool)
        foreground[:, :56] = True  # frame 0: a quarter of the image against a half in the GT -> IoU 1/2
        write_logits(pred, f"v1m/clipA/labels_rgb/{i}", foreground)
    result = evaluate_predictions(pred, avss_root, "avss", "test", protocol="binary")
    # frames 1-4 have empty GT: 3/4 of their pixels are correct background
    assert result["miou"] == pytest.approx((0.5 + 4 * 0.75) / 5, abs=TOL)
    assert result["fscore"] == pytest.approx(1.3 * 1 * 0.5 / (0.3 + 0.5), abs=TOL)  # precision 1, recall 1/2


def test_cli_writes_json_and_prints_scores(s4_root: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    for key in s4_keys("va", "catA") + s4_keys("vb", "catB"):
        write_logits(pred, key, G)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands, so typer keeps "evaluate" as a named subcommand
    out = tmp_path / "scores"
    args = ["evaluate", "--pred", str(pred), "--data", str(s4_root), "--benchmark", "s4",
            "--set", "evaluate.split=test"]
    result = CliRunner().invoke(app, args + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output and "F-score" in result.output
    scores = json.loads((out / "evaluation.json").read_text())
    # vb_5 has empty ground truth and G predicted: IoU 48/64 there
    assert scores["miou"] == pytest.approx((1.0 + (4 + 48 / 64) / 5) / 2, abs=TOL)
    assert scores["benchmark"] == "s4" and scores["split"] == "test"
    before = (out / "evaluation.json").read_bytes()
    (pred / "catA/va/va_1.npy").unlink()
    failed = CliRunner().invoke(app, args + ["--out", str(out)])
    assert isinstance(failed.exception, DataError)
    assert (out / "evaluation.json").read_bytes() == before  # a failed rerun leaves the last good scores
