"""The model registry: register a version, make it `@champion` only if it beats the champion, roll back, compare.

Rules (issue 6, item 5; issue 8, item 4):
- a version is registered only by `register_and_promote`, which the pipeline calls after evaluation succeeded; a
  metric that is missing or not finite is refused before anything is registered;
- the new version takes `@champion` only if its metric on the configured split is *strictly* better (ties keep the
  champion); the first version becomes champion; a champion lacking that metric is never replaced automatically;
- the scores are metrics of the version's logged model (MLflow 3 LoggedModel metrics, `<split>.<name>`, e.g.
  `test.miou`): what the UI shows on the version, `search_logged_models` orders by, and promotion compares; every
  version carries tags for its provenance (data version, git SHA, config hash) and the promotion decision;
- the registered model keeps `moca.champion_history` (JSON list of versions, oldest first) so `rollback_champion`
  can restore the previous champion.

Race safety: on a local SQLite store, promotions hold an exclusive file lock beside the database, so two processes
promoting at once are serialised and leave one consistent champion. An MLflow server offers no lock or
compare-and-set on aliases; there the champion is re-read right before the alias is written and the decision is
redone if it moved. That narrows the window to a few milliseconds but cannot close it: run promotions for one model
from one place at a time (the pipeline's register step, which Kubeflow/Prefect run once per schedule).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from moca.errors import MocaError
from moca.tracking.runs import configure, git_sha, local_store_path
from moca.tracking.scrub import scrub_obj

log = logging.getLogger(__name__)
MODEL_NAME = os.environ.get("MOCA_MODEL_NAME", "moca")
CHAMPION = "champion"
HISTORY_TAG = "moca.champion_history"
PROMOTION_METRIC_TAG = "moca.promotion_metric"  # "<split>/<metric>/<max|min>": how this version asks to be judged
DECISION_TAG = "moca.promotion"
REQUIRED_TAGS = ("data_version", "git_sha", "config_hash")
CAS_RETRIES = 5


@dataclass(frozen=True)
class PromotionResult:
    version: str
    promoted: bool
    previous_champion: str | None
    reason: str


def metric_key(metric_name: str, split: str) -> str:
    return f"{split}.{metric_name}"


def model_metrics(client: Any, model_id: str) -> dict[str, float]:
    """The metrics of logged model `model_id`, the newest value of each."""
    newest: dict[str, Any] = {}
    for metric in client.get_logged_model(model_id).metrics or []:
        current = newest.get(metric.key)
        if current is None or (metric.timestamp, metric.step) >= (current.timestamp, current.step):
            newest[metric.key] = metric
    return {key: float(metric.value) for key, metric in newest.items()}


def version_model_id(version: Any) -> str | None:
    """The logged model a version was registered from. Stores that do not keep `model_id` keep the source
    `models:/<model id>`, which is where the UI reads it from too."""
    match = re.fullmatch(r"models:/([^/@]+)", version.source or "")
    return version.model_id or (match[1] if match else None)


def version_metrics(client: Any, version: Any) -> dict[str, float]:
    """A version's scores as the UI shows them: its logged model's metrics, or, for a version registered from a
    run's artifacts, that run's metrics."""
    if model_id := version_model_id(version):
        return model_metrics(client, model_id)
    return dict(client.get_run(version.run_id).data.metrics) if version.run_id else {}


@contextlib.contextmanager
def promotion_lock() -> Iterator[None]:
    """Serialise promotions on a local store (exclusive flock beside the database); a no-op against a server."""
    store = local_store_path()
    if store is None:
        yield
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{store}.promote.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _client() -> Any:
    from mlflow import MlflowClient

    configure()
    return MlflowClient()


def _champion_version(client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _history(client: Any, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]


def _set_champion(client: Any, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    history = _history(client, name)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps([*history, version]))


def _judge(client: Any, name: str, version: str, champion: str | None) -> tuple[bool, str]:
    """Whether `version` should replace `champion`, by the metric `version` was registered with."""
    if champion is None:
        return True, "first model: no champion yet"
    if champion == version:
        return False, f"v{version} is already the champion"
    tags = client.get_model_version(name, version).tags
    try:
        split, metric, direction = tags[PROMOTION_METRIC_TAG].split("/")
    except (KeyError, ValueError) as exc:
        raise MocaError(f"model {name} v{version}: no valid {PROMOTION_METRIC_TAG} tag; cannot judge it") from exc
    key = metric_key(metric, split)
    new = version_metrics(client, client.get_model_version(name, version))[key]
    old = version_metrics(client, client.get_model_version(name, champion)).get(key)
    if old is None:
        return False, f"champion v{champion} has no {key}; not comparable, keeping it (promote by hand if meant)"
    better = new > old if direction == "max" else new < old
    relation = "beats" if better else ("ties" if new == old else "does not beat")
    return better, f"{key}: v{version} = {new:.6g} {relation} champion v{champion} = {old:.6g}"


def promote_version(version: str | int, force: bool = False, name: str = MODEL_NAME) -> PromotionResult:
    """Make `version` champion if it beats the current one (or unconditionally with `force`)."""
    client = _client()
    version = str(version)
    client.get_model_version(name, version)  # raises a clear MLflow error for an unknown version
    with promotion_lock():
        for _ in range(CAS_RETRIES):
            champion = _champion_version(client, name)
            promote, reason = (True, "forced by hand") if force else _judge(client, name, version, champion)
            if champion == version:
                promote = False
            if not promote:
                client.set_model_version_tag(name, version, DECISION_TAG, f"kept champion: {reason}")
                return PromotionResult(version, False, champion, reason)
            # Compare-and-set by re-reading: if another promoter moved the alias meanwhile, judge again.
            if _champion_version(client, name) != champion:
                continue
            _set_champion(client, name, version)
            client.set_model_version_tag(name, version, DECISION_TAG, f"promoted: {reason}")
            return PromotionResult(version, True, champion, reason)
    raise MocaError(f"model {name}: the champion changed {CAS_RETRIES} times while promoting v{version}; retry")


def check_scores(scores: Mapping[str, Any], where: str = "evaluation") -> None:
    """Refuse a missing or non-finite score before anything is logged or registered."""
    bad = {key: value for key, value in scores.items()
           if not isinstance(value, (int, float)) or not math.isfinite(value)}  # fmt: skip
    if bad or not scores:
        raise MocaError(f"{where}: unusable scores {bad or dict(scores)}: evaluation did not produce a usable score; "
                        "nothing registered")


def log_scores(model_id: str, scores: Mapping[str, float], dataset: Any | None = None) -> None:
    """Log evaluation scores (`{"test.miou": 0.41, ...}`) as metrics of logged model `model_id` and of the active
    run, measured on `dataset` (moca.tracking.datasets.data_input). Checked first (`check_scores`): MLflow's model
    metrics would store NaN as 0.0 and infinity as the largest float."""
    from moca.tracking.runs import log_metrics

    check_scores(scores, f"model {model_id}")
    log_metrics(dict(scores), model_id=model_id, dataset=dataset)


def register_and_promote(model_uri: str, metric_name: str, split: str, tags: Mapping[str, Any] | None = None,
                         higher_is_better: bool = True, name: str = MODEL_NAME) -> PromotionResult:
    """Register the logged model `model_uri` (`models:/m-...`) as a new version of `name` and promote it if it beats
    the champion on its `<split>.<metric_name>` metric.

    Call this only after evaluation succeeded and its scores were logged on the model (`log_scores`); a model
    without that score registers nothing. `tags` must hold data_version and config_hash (git_sha is filled in when
    absent).
    """
    import mlflow

    if not model_uri.startswith("models:/m-"):
        raise MocaError(f"{model_uri}: not a logged model URI (models:/m-...); nothing registered")
    key = metric_key(metric_name, split)
    if key not in model_metrics(_client(), model_uri.removeprefix("models:/")):
        raise MocaError(f"{model_uri}: has no {key} score (log_scores): evaluation did not produce a usable score; "
                        "nothing registered")
    version_tags: dict[str, Any] = {"git_sha": git_sha(), **(tags or {})}
    missing = [t for t in REQUIRED_TAGS if t not in version_tags]
    if missing:
        raise MocaError(f"register_and_promote needs tag(s) {missing}; nothing registered")
    version_tags[PROMOTION_METRIC_TAG] = f"{split}/{metric_name}/{'max' if higher_is_better else 'min'}"
    clean = {str(k): str(v) for k, v in scrub_obj({str(k): str(v) for k, v in version_tags.items()}).items()}
    registered = mlflow.register_model(model_uri, name, tags=clean)
    return promote_version(registered.version, name=name)


def rollback_champion(name: str = MODEL_NAME) -> PromotionResult:
    """Give `@champion` back to the version that held it before the current one."""
    client = _client()
    with promotion_lock():
        history = _history(client, name)
        current = _champion_version(client, name)
        if len(history) < 2:
            raise MocaError(f"model {name}: no previous champion to roll back to (history {history})")
        demoted, restored = history[-1], history[-2]
        if current != demoted:
            raise MocaError(f"model {name}: @champion is v{current} but the history ends with v{demoted}; "
                            "the alias was changed outside moca, fix it by hand")
        client.set_registered_model_alias(name, CHAMPION, restored)
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[:-1]))
        client.set_model_version_tag(name, demoted, DECISION_TAG, f"rolled back in favour of v{restored}")
        return PromotionResult(restored, True, demoted, f"rolled back from v{demoted} to v{restored}")


def compare_versions(name: str = MODEL_NAME) -> Any:
    """A DataFrame, one row per version (newest first): champion marker, the scores (its logged model's metrics, as
    the UI shows them), the metric promotion judged it by, provenance tags, and the promotion decision."""
    import pandas as pd

    client = _client()
    versions = client.search_model_versions(f"name='{name}'")
    champion = _champion_version(client, name)  # search results do not carry aliases on every store
    rows, scores = [], {}
    for mv in versions:
        scores[int(mv.version)] = version_metrics(client, mv)
        judged_by = mv.tags.get(PROMOTION_METRIC_TAG, "").split("/")
        rows.append({"version": int(mv.version), "champion": "*" if str(mv.version) == champion else "",
                     "judged_by": f"{judged_by[0]}.{judged_by[1]} ({judged_by[2]})" if len(judged_by) == 3 else "",
                     **{key: mv.tags.get(key, "") for key in REQUIRED_TAGS},
                     "created": pd.Timestamp(mv.creation_timestamp, unit="ms"),
                     "decision": mv.tags.get(DECISION_TAG, "")})  # fmt: skip
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows).join(pd.DataFrame.from_dict(scores, orient="index"), on="version")
    metric_columns = sorted({key for values in scores.values() for key in values})
    frame = frame[["version", "champion", *metric_columns, *[c for c in rows[0] if c not in ("version", "champion")]]]
    return frame.sort_values("version", ascending=False, ignore_index=True)


# Where the register step keeps the statistics of the data a version was trained on (the next run's drift
# reference), inside that version's MLflow run.
TRAINING_STATS = "training_data/stats.json"


def champion(name: str = MODEL_NAME) -> Any | None:
    """The `@champion` version of `name` (an MLflow ModelVersion), or None when there is no model or champion."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def newest_version(name: str = MODEL_NAME) -> Any | None:
    versions = _client().search_model_versions(f"name='{name}'")
    return max(versions, key=lambda v: int(v.version)) if versions else None


def champion_training_stats(name: str = MODEL_NAME) -> tuple[str, dict[str, Any]] | None:
    """(champion version, statistics of the data it was trained on), or None when there is no champion or it
    kept no statistics (then drift is not checked)."""
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow.exceptions import MlflowException

    from moca.io import read_json

    current = champion(name)
    if current is None or not current.run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="moca-champion-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=current.run_id, artifact_path=TRAINING_STATS,
                                                       dst_path=tmp)
        except (MlflowException, OSError) as exc:
            log.warning("champion v%s has no %s (%s); drift not checked", current.version, TRAINING_STATS, exc)
            return None
        return str(current.version), read_json(Path(path))


def pinned_model_uri(uri: str) -> str:
    """`models:/NAME@ALIAS` -> `models:/NAME/VERSION` (what the alias names now); other URIs unchanged. A step
    keyed on a model must not take an alias that later moves for the same input."""
    if not uri.startswith("models:/") or "@" not in uri:
        return uri
    from mlflow.exceptions import MlflowException

    from moca.errors import WeightsError

    name, _, alias = uri.removeprefix("models:/").partition("@")
    try:
        version = _client().get_model_version_by_alias(name, alias).version
    except MlflowException as exc:
        raise WeightsError(f"{uri}: no such registered model alias ({exc})") from exc
    return f"models:/{name}/{version}"
