from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from moca.errors import MocaError
from moca.tracking import registry

TAGS = {"data_version": "d41d8cd98f00b204e9800998ecf8427e", "config_hash": "0123456789abcdef", "git_sha": "abc123"}


def promote(model_uri: str, miou: float, **kwargs):
    return registry.register_and_promote(model_uri, "miou", miou, "test", tags=TAGS, **kwargs)


def champion() -> str | None:
    return registry._champion_version(registry._client(), registry.MODEL_NAME)


def test_first_better_worse_tie(logged_model: str) -> None:
    first = promote(logged_model, 0.40)
    assert (first.version, first.promoted, first.previous_champion) == ("1", True, None)
    assert "first model" in first.reason

    better = promote(logged_model, 0.45)
    assert (better.version, better.promoted, better.previous_champion) == ("2", True, "1")

    worse = promote(logged_model, 0.30)
    assert (worse.promoted, worse.previous_champion) == (False, "2")
    assert "does not beat" in worse.reason

    tie = promote(logged_model, 0.45)
    assert (tie.promoted, tie.previous_champion) == (False, "2")
    assert "ties" in tie.reason
    assert champion() == "2"

    client = registry._client()
    tags = client.get_model_version("moca", "2").tags
    assert tags["data_version"] == TAGS["data_version"] and tags["config_hash"] == TAGS["config_hash"]
    assert tags["git_sha"] == "abc123" and float(tags["metric.test.miou"]) == 0.45
    assert json.loads(client.get_registered_model("moca").tags[registry.HISTORY_TAG]) == ["1", "2"]


def test_lower_is_better_metric(logged_model: str) -> None:
    assert promote(logged_model, 1.0, higher_is_better=False).promoted
    assert not promote(logged_model, 1.5, higher_is_better=False).promoted
    assert promote(logged_model, 0.5, higher_is_better=False).promoted
    assert champion() == "3"


def test_rollback_restores_previous_champion(logged_model: str) -> None:
    promote(logged_model, 0.1)
    promote(logged_model, 0.2)
    promote(logged_model, 0.3)
    assert champion() == "3"
    result = registry.rollback_champion()
    assert (result.version, result.previous_champion) == ("2", "3")
    assert champion() == "2"
    assert registry.rollback_champion().version == "1"
    with pytest.raises(MocaError, match="no previous champion"):
        registry.rollback_champion()
    assert champion() == "1"


def test_failed_evaluation_registers_nothing(logged_model: str) -> None:
    for bad in (float("nan"), float("inf"), None):
        with pytest.raises(MocaError, match="nothing registered"):
            promote(logged_model, bad)  # type: ignore[arg-type]
    with pytest.raises(MocaError, match=r"needs tag\(s\) \['data_version'\]"):
        registry.register_and_promote(logged_model, "miou", 0.5, "test", tags={"config_hash": "x"})
    assert registry._client().search_model_versions("name='moca'") == []


def test_compare_versions_side_by_side(logged_model: str) -> None:
    promote(logged_model, 0.5, metrics={"val.miou": 0.6, "test.fscore": 0.7})
    promote(logged_model, 0.4)
    table = registry.compare_versions()
    assert list(table["version"]) == [2, 1]
    assert list(table["champion"]) == ["", "*"]
    assert list(table["metric.test.miou"]) == [0.4, 0.5]
    assert table.loc[1, "metric.val.miou"] == 0.6 and table.loc[1, "metric.test.fscore"] == 0.7
    assert "kept champion" in table.loc[0, "decision"]


def test_forced_promotion_by_hand(logged_model: str) -> None:
    promote(logged_model, 0.5)
    assert not promote(logged_model, 0.1).promoted
    forced = registry.promote_version(2, force=True)
    assert forced.promoted and champion() == "2"


RACER = textwrap.dedent("""
    import pathlib, sys, time
    from moca.tracking import registry
    barrier = pathlib.Path(sys.argv[3])
    (barrier / sys.argv[2]).touch()  # ready: mlflow is imported
    while not (barrier / "go").exists():  # both processes leave the barrier at the same instant
        time.sleep(0.001)
    r = registry.register_and_promote(sys.argv[1], "miou", float(sys.argv[2]), "test",
                                      tags={"data_version": "d", "config_hash": "c", "git_sha": "g"})
    print(r.version, r.promoted, r.previous_champion)
""")


def _assert_one_consistent_champion(best_score: float) -> None:
    client = registry._client()
    tags_of = {str(mv.version): mv.tags for mv in client.search_model_versions("name='moca'")}
    best = max(tags_of, key=lambda v: float(tags_of[v]["metric.test.miou"]))
    assert champion() == best and float(tags_of[best]["metric.test.miou"]) == best_score
    history = json.loads(client.get_registered_model("moca").tags[registry.HISTORY_TAG])
    assert history[0] == "1" and history[-1] == best
    scores = [float(tags_of[v]["metric.test.miou"]) for v in history]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)  # each promotion strictly improved


def test_racing_threads_leave_one_consistent_champion(logged_model: str) -> None:
    """Threads in one process still contend for the flock (each opens its own lock file description)."""
    from concurrent.futures import ThreadPoolExecutor

    promote(logged_model, 0.50)
    scores = [0.55, 0.70, 0.60, 0.65]
    with ThreadPoolExecutor(len(scores)) as pool:
        results = list(pool.map(lambda score: promote(logged_model, score), scores))
    assert sorted(r.version for r in results) == ["2", "3", "4", "5"]
    _assert_one_consistent_champion(0.70)


@pytest.mark.slow
def test_two_racing_promotions_leave_one_consistent_champion(logged_model: str, tmp_path: Path) -> None:
    import time

    promote(logged_model, 0.50)  # v1 is champion; both racers beat it, one beats the other
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [subprocess.Popen([sys.executable, str(script), logged_model, score, str(barrier)],
                               env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for score in ("0.60", "0.70")]
    deadline = time.monotonic() + 120
    while not all((barrier / s).exists() for s in ("0.60", "0.70")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (barrier / "go").touch()
    outputs = [r.communicate(timeout=120) for r in racers]
    assert all(r.returncode == 0 for r in racers), [err[-2000:] for _, err in outputs]

    assert len(registry._client().search_model_versions("name='moca'")) == 3
    _assert_one_consistent_champion(0.70)

def test_cli_compare_promote_rollback(logged_model: str) -> None:
    from typer.testing import CliRunner

    from moca.cli import _register_all, app

    _register_all()
    runner = CliRunner()
    empty = runner.invoke(app, ["models", "compare"])
    assert empty.exit_code == 0 and "no versions" in empty.output
    promote(logged_model, 0.5)
    promote(logged_model, 0.4)
    table = runner.invoke(app, ["models", "compare", "--format", "csv"])
    assert table.exit_code == 0, table.output
    lines = table.output.strip().splitlines()
    assert lines[0].startswith("version,champion") and lines[1].startswith("2,,") and lines[2].startswith("1,*,")
    forced = runner.invoke(app, ["models", "promote", "2", "--force"])
    assert forced.exit_code == 0 and "v2 promoted: forced by hand" in forced.output
    back = runner.invoke(app, ["models", "rollback"])
    assert back.exit_code == 0 and "rolled back from v2 to v1" in back.output
    assert champion() == "1"
