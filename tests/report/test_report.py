"""The report's numbers are `moca evaluate`'s, its gain is (moca - best baseline) / best baseline, and it writes
Markdown, JSON and figures (and logs them to MLflow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from moca.cli import evaluate as evaluate_cli
from moca.cli import infer as infer_cli
from moca.data.layout import list_videos
from moca.evaluate import ground_truth
from moca.infer.outputs import write_prediction, write_side_array, write_side_mask
from moca.io import write_json
from moca.report import RunSpec, build_report, relative_gain


def _write_run(out: Path, root: Path, manifest: tuple[str, str], make) -> Path:  # noqa: ANN001
    """Predictions from `make(truth, index) -> mask` for every annotated test frame, plus a producer manifest."""
    for i, frame in enumerate(f for v in list_videos(root, "s4", "test") for f in v.frames if f.mask is not None):
        truth = ground_truth(frame, "s4") != 0
        mask = make(truth, i)
        write_prediction(out, frame.key, mask)
        write_side_array(out, "maps", frame.key, np.random.default_rng(i).random((16, 16)).astype(np.float32))
        write_side_mask(out, "coarse", frame.key, truth)
    write_json(out / manifest[0], {"method": manifest[1]})
    return out


@pytest.fixture(scope="module")
def runs(s4_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")

    def eroded(truth: np.ndarray, i: int) -> np.ndarray:  # part of the object: a good but imperfect model
        mask = truth.copy()
        mask[: mask.shape[0] // 2 + 4] = False
        return mask if i % 3 else truth

    def shifted(truth: np.ndarray, i: int) -> np.ndarray:  # a weaker baseline
        return np.roll(truth, 6, axis=1)

    return {
        "MoCA": _write_run(base / "moca", s4_data, ("infer_manifest.json", "moca-mpm-points"), eroded),
        "OWOD": _write_run(base / "owod", s4_data, ("baseline_manifest.json", "owod-bind-samboxes"), shifted),
        "Centre": _write_run(base / "centre", s4_data, ("baseline_manifest.json", "centre-prior"),
                             lambda t, i: np.zeros_like(t)),
    }


def test_relative_gain() -> None:
    assert relative_gain(0.6, 0.5) == pytest.approx(0.2)
    assert relative_gain(0.4, 0.5) == pytest.approx(-0.2)
    assert relative_gain(0.4, 0.0) is None


def test_report_numbers_equal_moca_evaluate(runs: dict[str, Path], s4_data: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    infer_cli.register(app)
    evaluate_cli.register(app)
    out = tmp_path / "report"
    args = ["report", "--data", str(s4_data), "--benchmark", "s4", "--split", "test", "--out", str(out)]
    for name, folder in runs.items():
        args += ["--runs", f"{name}={folder}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = json.loads((out / "report.json").read_text())
    rows = {r["name"]: r for r in table["rows"]}
    for name, folder in runs.items():
        scores = tmp_path / f"scores-{name}"
        result = CliRunner().invoke(app, ["evaluate", "--pred", str(folder), "--data", str(s4_data),
                                          "--benchmark", "s4", "--set", "evaluate.split=test", "--out", str(scores)])
        assert result.exit_code == 0, result.output
        expected = json.loads((scores / "evaluation.json").read_text())
        assert rows[name]["scores"]["s4"]["miou"] == expected["miou"]
        assert rows[name]["scores"]["s4"]["fscore"] == expected["fscore"]
        assert table["per_category_s4"][name] == expected["per_category"]
    # kinds from the manifests; the floor is not a baseline, so the gain is over OWOD
    assert [rows[n]["kind"] for n in ("MoCA", "OWOD", "Centre")] == ["moca", "baseline", "floor"]
    assert table["best_baseline"]["s4"]["name"] == "OWOD"
    moca, owod = rows["MoCA"]["scores"]["s4"]["miou"], rows["OWOD"]["scores"]["s4"]["miou"]
    assert rows["MoCA"]["gain_over_best_baseline"]["s4"] == pytest.approx((moca - owod) / owod)
    markdown = (out / "report.md").read_text()
    assert f"{moca:.4f}" in markdown and "S4 per category" in markdown and "qualitative_s4.png" in markdown
    for figure in ("scores.png", "qualitative_s4.png"):
        assert (out / figure).stat().st_size > 1000


def test_report_logged_to_mlflow(runs: dict[str, Path], s4_data: Path, tmp_path: Path, tmp_tracking: str) -> None:
    import mlflow

    from moca.report import log_report

    out = tmp_path / "report"
    table = build_report([RunSpec(n, "s4", p) for n, p in runs.items()], {"s4": s4_data}, "test", out, videos=2)
    run_id = log_report(out, table)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "report")}
    assert {"report/report.md", "report/report.json", "report/qualitative_s4.png", "report/scores.png"} <= artifacts
    metrics = mlflow.get_run(run_id).data.metrics
    assert metrics["MoCA.s4.miou"] == pytest.approx(table["rows"][0]["scores"]["s4"]["miou"])
