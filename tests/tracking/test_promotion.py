"""Registration and `@champion` promotion, judged by the versions' metrics (their logged models' metrics).

The models registered here are what the register step leaves before registering: a LoggedModel whose metrics are
its scores. The registry reads only those metrics, so they are MLflow 3 external models (no weights), made in
milliseconds; tests/tracking/test_comparison.py registers real pyfunc models through the register step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from moca.errors import MocaError
from moca.tracking import registry

TAGS = {"data_version": "d41d8cd98f00b204e9800998ecf8427e", "config_hash": "0123456789abcdef", "git_sha": "abc123"}


def make_scored_model(scores: dict[str, float]) -> str:
    """The `models:/m-...` URI of a new LoggedModel carrying `scores` as its metrics."""
    import mlflow

    from moca.tracking.runs import ensure_experiment

    with mlflow.start_run(experiment_id=ensure_experiment()):
        model = mlflow.create_external_model(name="model")
        registry.log_scores(model.model_id, scores)
    return f"models:/{model.model_id}"


def promote(miou: float | None, others: dict[str, float] | None = None, **kwargs):
    """Register a new model scored `test.miou` = miou and `others` (as the register step leaves one), promote it.
    `miou=None` with `others` leaves test.miou out."""
    scores = dict(others or {}) if miou is None and others else {"test.miou": miou, **(others or {})}
    return registry.register_and_promote(make_scored_model(scores), "miou", "test", tags=TAGS, **kwargs)


def champion() -> str | None:
    return registry._champion_version(registry._client(), registry.MODEL_NAME)


def test_first_better_worse_tie(tmp_tracking: str) -> None:
    first = promote(0.40)
    assert (first.version, first.promoted, first.previous_champion) == ("1", True, None)
    assert "first model" in first.reason

    better = promote(0.45)
    assert (better.version, better.promoted, better.previous_champion) == ("2", True, "1")

    worse = promote(0.30)
    assert (worse.promoted, worse.previous_champion) == (False, "2")
    assert "does not beat" in worse.reason

    tie = promote(0.45)
    assert (tie.promoted, tie.previous_champion) == (False, "2")
    assert "ties" in tie.reason
    assert champion() == "2"

    client = registry._client()
    version = client.get_model_version("moca", "2")
    assert version.tags["data_version"] == TAGS["data_version"] and version.tags["config_hash"] == TAGS["config_hash"]
    assert version.tags["git_sha"] == "abc123" and not any(key.startswith("metric") for key in version.tags)
    assert registry.version_metrics(client, version) == {"test.miou": 0.45}  # a metric, as the UI shows it
    assert json.loads(client.get_registered_model("moca").tags[registry.HISTORY_TAG]) == ["1", "2"]


def test_lower_is_better_metric(tmp_tracking: str) -> None:
    assert promote(1.0, higher_is_better=False).promoted
    assert not promote(1.5, higher_is_better=False).promoted
    assert promote(0.5, higher_is_better=False).promoted
    assert champion() == "3"


def test_rollback_restores_previous_champion(tmp_tracking: str) -> None:
    promote(0.1)
    promote(0.2)
    promote(0.3)
    assert champion() == "3"
    result = registry.rollback_champion()
    assert (result.version, result.previous_champion) == ("2", "3")
    assert champion() == "2"
    assert registry.rollback_champion().version == "1"
    with pytest.raises(MocaError, match="no previous champion"):
        registry.rollback_champion()
    assert champion() == "1"


def test_failed_evaluation_registers_nothing(tmp_tracking: str) -> None:
    for bad in (float("nan"), float("inf"), None, "0.5"):
        with pytest.raises(MocaError, match="nothing registered"):
            promote(bad)  # type: ignore[arg-type]
    with pytest.raises(MocaError, match="has no test.miou score"):
        promote(None, {"val.miou": 0.5})  # scored on another split than the one promotion judges
    with pytest.raises(MocaError, match=r"needs tag\(s\) \['data_version'\]"):
        registry.register_and_promote(make_scored_model({"test.miou": 0.5}), "miou", "test", tags={"config_hash": "x"})
    with pytest.raises(MocaError, match="not a logged model URI"):
        registry.register_and_promote("runs:/abc/model", "miou", "test", tags=TAGS)
    assert registry._client().search_model_versions("name='moca'") == []


def test_compare_versions_side_by_side(tmp_tracking: str) -> None:
    promote(0.5, {"val.miou": 0.6, "test.fscore": 0.7})
    promote(0.4)
    table = registry.compare_versions()
    assert list(table.columns[:5]) == ["version", "champion", "test.fscore", "test.miou", "val.miou"]
    assert list(table["version"]) == [2, 1]
    assert list(table["champion"]) == ["", "*"]
    assert list(table["test.miou"]) == [0.4, 0.5] and list(table["judged_by"]) == ["test.miou (max)"] * 2
    assert table.loc[1, "val.miou"] == 0.6 and table.loc[1, "test.fscore"] == 0.7
    assert pd.isna(table.loc[0, "val.miou"])
    assert "kept champion" in table.loc[0, "decision"]


def test_newest_score_of_a_model_counts(tmp_tracking: str) -> None:
    """A score logged again on the same model (a re-evaluation) replaces the older value."""
    import mlflow

    uri = make_scored_model({"test.miou": 0.2})
    with mlflow.start_run():
        registry.log_scores(uri.removeprefix("models:/"), {"test.miou": 0.3})
    assert registry.model_metrics(registry._client(), uri.removeprefix("models:/")) == {"test.miou": 0.3}


def test_forced_promotion_by_hand(tmp_tracking: str) -> None:
    promote(0.5)
    assert not promote(0.1).promoted
    forced = registry.promote_version(2, force=True)
    assert forced.promoted and champion() == "2"


RACER = textwrap.dedent("""
    import pathlib, sys, time
    from moca.tracking import registry
    barrier = pathlib.Path(sys.argv[3])
    (barrier / sys.argv[2]).touch()  # ready: mlflow is imported
    while not (barrier / "go").exists():  # both processes leave the barrier at the same instant
        time.sleep(0.001)
    r = registry.register_and_promote(sys.argv[1], "miou", "test",
                                      tags={"data_version": "d", "config_hash": "c", "git_sha": "g"})
    print(r.version, r.promoted, r.previous_champion)
""")


def _assert_one_consistent_champion(best_score: float) -> None:
    client = registry._client()
    score_of = {str(mv.version): registry.version_metrics(client, mv)["test.miou"]
                for mv in client.search_model_versions("name='moca'")}
    best = max(score_of, key=score_of.__getitem__)
    assert champion() == best and score_of[best] == best_score
    history = json.loads(client.get_registered_model("moca").tags[registry.HISTORY_TAG])
    assert history[0] == "1" and history[-1] == best
    scores = [score_of[v] for v in history]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)  # each promotion strictly improved


def test_racing_threads_leave_one_consistent_champion(tmp_tracking: str) -> None:
    """Threads in one process still contend for the flock (each opens its own lock file description)."""
    from concurrent.futures import ThreadPoolExecutor

    promote(0.50)
    scores = [0.55, 0.70, 0.60, 0.65]
    with ThreadPoolExecutor(len(scores)) as pool:
        results = list(pool.map(promote, scores))
    assert sorted(r.version for r in results) == ["2", "3", "4", "5"]
    _assert_one_consistent_champion(0.70)


@pytest.mark.slow
def test_two_racing_promotions_leave_one_consistent_champion(tmp_tracking: str, tmp_path: Path) -> None:
    import time

    promote(0.50)  # v1 is champion; both racers beat it, one beats the other
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [subprocess.Popen([sys.executable, str(script), make_scored_model({"test.miou": float(score)}), score,
                                str(barrier)],
                               env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for score in ("0.60", "0.70")]  # fmt: skip
    deadline = time.monotonic() + 120
    while not all((barrier / s).exists() for s in ("0.60", "0.70")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (barrier / "go").touch()
    outputs = [r.communicate(timeout=120) for r in racers]
    assert all(r.returncode == 0 for r in racers), [err[-2000:] for _, err in outputs]

    assert len(registry._client().search_model_versions("name='moca'")) == 3
    _assert_one_consistent_champion(0.70)


def test_cli_compare_promote_rollback(tmp_tracking: str) -> None:
    from typer.testing import CliRunner

    from moca.cli import _register_all, app

    _register_all()
    runner = CliRunner()
    empty = runner.invoke(app, ["models", "compare"])
    assert empty.exit_code == 0 and "no versions" in empty.output
    promote(0.5, {"test.fscore": 0.6})
    promote(0.4, {"test.fscore": 0.7})
    table = runner.invoke(app, ["models", "compare", "--format", "csv"])
    assert table.exit_code == 0, table.output
    lines = table.output.strip().splitlines()
    assert lines[0].startswith("version,champion,test.fscore,test.miou,judged_by")
    assert lines[1].startswith("2,,0.7,0.4,test.miou (max)") and lines[2].startswith("1,*,0.6,0.5,")
    printed = runner.invoke(app, ["models", "compare"])
    assert "champion v1, judged by test.miou (higher is better)" in printed.output, printed.output
    assert "kept champion: test.miou: v2 = 0.4 does not beat champion v1 = 0.5" in printed.output
    forced = runner.invoke(app, ["models", "promote", "2", "--force"])
    assert forced.exit_code == 0 and "v2 promoted: forced by hand" in forced.output
    back = runner.invoke(app, ["models", "rollback"])
    assert back.exit_code == 0 and "rolled back from v2 to v1" in back.output
    assert champion() == "1"
