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
from moca.errors import ConfigError
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


def _table(names: list[tuple[str, str]], benches: tuple[str, ...] = ("s4",)) -> dict:
    rows = [{"name": n, "kind": k, "scores": {b: {"miou": 0.1 * (i + 1), "fscore": 0.05 * (i + 1)} for b in benches}}
            for i, (n, k) in enumerate(names)]  # fmt: skip
    return {"split": "test", "benchmarks": list(benches), "rows": rows}


def _overlap(a, b) -> bool:  # noqa: ANN001 - matplotlib Bbox
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_bar_plot_reads_cleanly() -> None:
    """Long run names never overlap, each bar carries its value, and a legend names the colours."""
    from moca.report.figures import bar_figure

    names = [("MoCA + MPM (audio-pixel points, k-means coarse masks)", "moca"), ("MoCA (no MPM)", "moca"),
             ("OWOD-BIND (SAM boxes)", "baseline"), ("centre prior", "floor"), ("all-foreground", "floor")]
    fig = bar_figure(_table(names, ("s4", "ms3")))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for axis in fig.axes:
        labels = [t for t in axis.get_yticklabels() if t.get_text()]
        assert [t.get_text().replace("\n", " ") for t in labels] == [n for n, _ in names]  # whole names, wrapped
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert all(box.x0 >= 0 for box in boxes)  # inside the figure, not cut off
        values = sorted(float(t.get_text()) for t in axis.texts)
        assert values == pytest.approx(sorted(axis.containers[0].datavalues), abs=5e-4)
    legend = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert legend == ["MoCA", "baseline", "floor (trivial predictor)"]
    titles = [axis.get_title() for axis in fig.axes]
    assert titles == ["s4 test: mIoU", "s4 test: F-score", "ms3 test: mIoU", "ms3 test: F-score"]


def test_qualitative_grid_has_a_colour_bar(runs: dict[str, Path], s4_data: Path) -> None:
    from moca.report.figures import grid_figure

    fig = grid_figure(runs["MoCA"], s4_data, "s4", "test", videos=2, title="MoCA")
    fig.canvas.draw()
    insets = [child for axis in fig.axes for child in axis.child_axes]  # the bar is inset under the heat maps
    bars = [axis for axis in insets if axis.get_xlabel().startswith("audio-pixel similarity")]
    assert len(bars) == 1 and [t.get_text() for t in bars[0].get_xticklabels()] == ["0.0", "0.5", "1.0"]



def test_comparison_grid_shows_every_run_on_the_same_frames(runs: dict[str, Path], s4_data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from moca.report import figures

    drawn = {}
    save = figures._save

    def capture(fig, out, **options):  # noqa: ANN001, ANN003, ANN202
        drawn[out.name] = [axis.get_title() for axis in fig.axes if axis.get_title()]
        return save(fig, out, **options)

    monkeypatch.setattr(figures, "_save", capture)
    table = build_report([RunSpec(n, "s4", p) for n, p in runs.items()], {"s4": s4_data}, "test", tmp_path,
                         videos=2, compare_maps=["MoCA", "OWOD"])  # fmt: skip
    assert table["figures"]["comparison_s4"] == "comparison_s4.png"
    assert (tmp_path / "comparison_s4.png").stat().st_size > 1000
    # the maps named, then the final mask of every run but the floor
    assert drawn["comparison_s4.png"] == ["frame", "ground truth", "MoCA:\naudio-pixel map",
                                          "OWOD:\naudio-pixel map", "MoCA:\nfinal mask", "OWOD:\nfinal mask"]
    with pytest.raises(ConfigError, match="compare_maps names no run on s4: nope"):
        build_report([RunSpec("MoCA", "s4", runs["MoCA"])], {"s4": s4_data}, "test", tmp_path / "x",
                     compare_maps=["nope"])  # fmt: skip
