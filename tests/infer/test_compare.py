"""The demo's comparison (moca.report.compare): every row is inferred or run on the same test split, the untrained
rows are the model with its gates at 0, and the report draws the maps before and after training."""

from __future__ import annotations

from pathlib import Path

from infer_helpers import LOW_SAM_THRESHOLDS

from moca.report.compare import TRAINED_COARSE, TRAINED_MPM, UNTRAINED_COARSE, UNTRAINED_MPM, compare_model
from moca.steps import infer
from moca.steps.runner import Inputs


def test_compare_model_scores_every_row_on_the_same_split(s4_data: Path, tiny_checkpoint: Path,
                                                          tmp_path: Path) -> None:  # fmt: skip
    sam = {"model": "sam_tiny"}
    predictions = tmp_path / "predictions"
    infer.run({"mpm": "points", "sam": sam}, Inputs(data=s4_data, benchmark="s4",
                                                    upstream={"model": tiny_checkpoint}), predictions)  # fmt: skip
    automatic = {k: v for k, v in LOW_SAM_THRESHOLDS.items() if k != "model"}
    report, table = compare_model(tiny_checkpoint, predictions, s4_data, "s4", tmp_path / "compare", automatic)
    rows = {row["name"]: row for row in table["rows"]}
    owod = next(name for name in rows if name.startswith("OWOD-BIND"))
    assert list(rows) == [TRAINED_MPM, TRAINED_COARSE, UNTRAINED_MPM, UNTRAINED_COARSE, owod, "centre prior",
                          "all-foreground"]
    assert "points_per_side 8" in owod  # the generator's settings are named in the row
    assert [rows[n]["kind"] for n in rows] == ["moca"] * 4 + ["baseline", "floor", "floor"]
    # the checkpoint's gates are open, so training changed the map: the untrained rows differ from the trained ones
    assert rows[TRAINED_COARSE]["scores"]["s4"] != rows[UNTRAINED_COARSE]["scores"]["s4"]
    assert {"scores", "comparison_s4", "qualitative_s4"} <= set(table["figures"])
    assert (report / "comparison_s4.png").stat().st_size > 1000
