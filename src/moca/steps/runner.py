"""The one layer every step runs through: step manifest, skip-on-rerun, resume, MLflow nesting.

A step module defines its body with `@step(...)`; what callers get is `run(config, inputs, out) -> StepResult`:

- `config` is the step's config dataclass (or a mapping of it, parsed and typed here);
- `inputs` an `Inputs`: the dataset, its version, the upstream steps' outputs by role, and the tracking context;
- `out` the step's own folder: its outputs, then `manifest.json` written last (step, input digests, config and
  its hash, git SHA, data version, metrics, timings and a sha256 of every output file).

Rerun into the same folder: with the same inputs, config and code and intact outputs the step is skipped (one hash
pass). Otherwise it is redone in a fresh folder, the earlier outputs set aside until it succeeds (a failed rerun
puts them back) -- except for steps whose folder is worth keeping (`keep=True`: training checkpoints, long
inference): there an attempt with the same settings continues in place (exact resume), and one with other settings
is refused, naming the keys that differ. A folder that holds anything but this step's outputs is never touched.

With `inputs.parent_run_id` the step is a nested MLflow run (params, metrics, the dataset it read as an
`mlflow.data` input named by its data version, tables, the manifest and declared artifacts); a failing step fails
the parent run too. Without it the step runs untracked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from moca.config import changed_keys, coerce, config_hash, flatten, plain
from moca.errors import ConfigError, DataError
from moca.io import read_json, sha256_file, write_json
from moca.tracking.runs import git_sha

log = logging.getLogger("moca.steps")
MANIFEST = "manifest.json"
OWNER = ".moca-step"  # written first: marks the folder as this step's, with the settings of the attempt


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a step reads, the same shape for every step and every caller (CLI, components, flows, tests)."""

    data: Path | None = None  # the dataset root (AVSBench layout); ingest reads its source from its config
    benchmark: str = "s4"
    data_version: str = ""  # names `data` (a DVC md5, a content hash); "" = a digest of its files' sizes and times
    upstream: Mapping[str, str | Path] = dataclasses.field(default_factory=dict)  # role -> step folder, file, URI
    parent_run_id: str = ""  # the MLflow pipeline run to nest under; "" = untracked
    model_name: str = "moca"  # the registered model: drift reference (validate) and registration (register)
    config_hash: str = ""  # the whole pipeline config's hash, recorded on registered versions

    def dataset(self) -> Path:
        if self.data is None:
            raise ConfigError("this step needs a dataset (--data)")
        if not Path(self.data).is_dir():
            raise DataError(self.data, "dataset folder not found")
        return Path(self.data)

    def path(self, role: str) -> Path:
        """A local upstream input; a missing one is named."""
        value = self.upstream.get(role)
        if value is None or str(value) == "":
            raise ConfigError(f"this step needs its {role!r} input")
        path = Path(value)
        if not path.exists():
            raise DataError(path, f"{role} input not found")
        return path

    def version(self) -> str:
        return self.data_version or stat_digest(self.dataset())


@dataclasses.dataclass(frozen=True)
class StepResult:
    step: str
    out: Path
    manifest: dict[str, Any]
    skipped: bool

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.manifest.get("metrics", {}))

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.manifest.get("info", {}))


# What a step body returns: metrics (floats, logged to MLflow), info (anything, kept in the manifest), artifacts
# (paths relative to the step folder, logged to the step's MLflow run) and tables ({MLflow artifact file: a JSON
# file of rows in the step folder}, logged with mlflow.log_table).
Body = Callable[[Any, Inputs, Path], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    section: str  # its section of the pipeline config (and the prefix of its keys in messages)
    config_type: type
    body: Body
    produces: str  # the role downstream steps read this step's folder as (a KFP output artifact of that name)
    reads: tuple[str, ...] = ()  # upstream roles it reads
    outputs: tuple[str, ...] = ()  # files/folders that must exist and be non-empty after a success
    keep: bool = False
    volatile: tuple[str, ...] = ()  # config keys that do not change the result (devices, workers, paths)
    check: Callable[[Any, Inputs], None] | None = None  # fails fast on unusable settings, before any work
    key_inputs: Callable[[Any, Inputs], Mapping[str, str]] | None = None  # inputs beyond data and upstream
    # The one split of the dataset it reads (from its config), None = all of it: a task on a cluster fetches that.
    data_split: Callable[[Any], str] | None = None


def step(name: str, section: str, config: type, produces: str, reads: tuple[str, ...] = (),
         outputs: tuple[str, ...] = (), keep: bool = False, volatile: tuple[str, ...] = (),
         check: Callable[[Any, Inputs], None] | None = None,
         key_inputs: Callable[[Any, Inputs], Mapping[str, str]] | None = None,
         data_split: Callable[[Any], str] | None = None) -> Callable[[Body], Any]:
    """Turn `body(config, inputs, folder) -> {metrics, info, artifacts}` into the step's `run(config, inputs, out)`."""

    def decorate(body: Body) -> Callable[..., StepResult]:
        spec = Step(name, section, config, body, produces, reads, outputs, keep, volatile, check, key_inputs,
                    data_split)

        @functools.wraps(body)
        def run(config: Any, inputs: Inputs | None = None, out: str | Path = ".") -> StepResult:
            return execute(spec, config, inputs or Inputs(), Path(out))

        run.step = spec  # type: ignore[attr-defined]
        return run

    return decorate


def worker_rank() -> bool:
    """True in ranks > 0 of a distributed launch (torchrun, a PyTorchJob): they run the step's body beside rank 0
    but leave the folder's bookkeeping (clearing, owner record, manifest, MLflow) to it."""
    return int(os.environ.get("RANK", "0") or 0) > 0


def execute(spec: Step, config: Any, inputs: Inputs, out: Path) -> StepResult:
    config = coerce(spec.config_type, config, spec.section)
    if spec.check is not None:
        spec.check(config, inputs)
    full = {"benchmark": inputs.benchmark, spec.section: plain(config)}
    settings = {k: v for k, v in flatten(full).items() if k.removeprefix(f"{spec.section}.") not in spec.volatile}
    digests = {**({"data": inputs.version()} if inputs.data is not None else {}),
               **{role: digest(inputs.upstream[role]) for role in spec.reads if inputs.upstream.get(role)},
               **(spec.key_inputs(config, inputs) if spec.key_inputs else {})}  # fmt: skip
    key = {"step": spec.name, "inputs": dict(sorted(digests.items())), "config_hash": config_hash(settings),
           "git_sha": git_sha()}  # fmt: skip
    if worker_rank():
        return _run_as_worker(spec, config, inputs, out, key, settings)
    with _tracked(spec.name, inputs.parent_run_id, full):
        result = _run_or_reuse(spec, config, inputs, out, key, settings, full)
        if inputs.parent_run_id:
            _log(spec, result, inputs)
        require_outputs(*(out / name for name in spec.outputs))
    return result


def _decide(spec: Step, out: Path, key: dict[str, Any], settings: dict[str, Any]) -> tuple[str, Any]:
    """What a run into `out` does, from the folder as it is: ("reuse", earlier manifest), ("continue", None) an
    attempt of a kept step made with the same settings (other settings raise), or ("redo", whether `out` holds
    an earlier output of this step)."""
    if (earlier := _reusable(out, key)) is not None:
        return "reuse", earlier
    attempt = _attempt(out, spec.name)
    if attempt is not None and spec.keep:
        _refuse_other_settings(spec, out, attempt, key["inputs"], settings)
        return "continue", None
    return "redo", attempt is not None


def _run_as_worker(spec: Step, config: Any, inputs: Inputs, out: Path, key: dict[str, Any],
                   settings: dict[str, Any]) -> StepResult:
    """Rank > 0: reach rank 0's decision from the same (read-only) folder state, then run the body with it."""
    action, earlier = _decide(spec, out, key, settings)
    if action == "reuse":
        return StepResult(spec.name, out, earlier, skipped=True)
    produced = dict(spec.body(config, inputs, out))
    return StepResult(spec.name, out, {**key, "metrics": produced.get("metrics", {}),
                                       "info": produced.get("info", {})}, skipped=False)


def _run_or_reuse(spec: Step, config: Any, inputs: Inputs, out: Path, key: dict[str, Any],
                  settings: dict[str, Any], full: dict[str, Any]) -> StepResult:
    action, detail = _decide(spec, out, key, settings)
    if action == "reuse":
        log.info("%s: inputs, config and code unchanged; reusing %s", spec.name, out)
        return StepResult(spec.name, out, detail, skipped=True)
    if action == "continue":
        log.info("%s: continuing the attempt in %s (same inputs and settings)", spec.name, out)
        (out / MANIFEST).unlink(missing_ok=True)  # a manifest is only ever the record of the attempt that wrote it
        return _run_body(spec, config, inputs, out, key, settings, full)
    with _previous_kept_until_success(out, used=detail):
        return _run_body(spec, config, inputs, out, key, settings, full)


@contextlib.contextmanager
def _previous_kept_until_success(out: Path, used: bool) -> Iterator[None]:
    """Redo a step in a fresh `out`, the earlier outputs set aside: deleted when the step succeeds, put back when it
    fails, so a failed rerun leaves the last good outputs as they were."""
    previous = out.with_name(f".{out.name}.previous")
    if used:
        shutil.rmtree(previous, ignore_errors=True)
        out.rename(previous)
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if used:
            shutil.rmtree(out, ignore_errors=True)
            previous.rename(out)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _run_body(spec: Step, config: Any, inputs: Inputs, out: Path, key: dict[str, Any], settings: dict[str, Any],
              full: dict[str, Any]) -> StepResult:
    write_json(out / OWNER, {"step": spec.name, "inputs": key["inputs"], "settings": settings})
    started = time.time()
    produced = dict(spec.body(config, inputs, out))
    manifest = {
        **key,
        "config": full,
        "data_version": inputs.data_version or None,
        "metrics": {k: float(v) for k, v in produced.get("metrics", {}).items()},
        "info": produced.get("info", {}),
        "artifacts": list(produced.get("artifacts", [])),
        "tables": dict(produced.get("tables", {})),
        "timings_s": {"started": round(started, 3), "total": round(time.time() - started, 3)},
        "outputs": output_hashes(out),
    }
    write_json(out / MANIFEST, manifest)
    return StepResult(spec.name, out, manifest, skipped=False)


def _reusable(out: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The earlier manifest in `out` if it was made with `key` and every file it lists is intact."""
    path = out / MANIFEST
    if not path.is_file() or "unknown" in key["git_sha"]:
        return None
    try:
        manifest = read_json(path)
    except DataError:
        return None
    if not isinstance(manifest, dict) or {k: manifest.get(k) for k in key} != key:
        return None
    return manifest if output_hashes(out) == manifest.get("outputs") else None


def _attempt(out: Path, step_name: str) -> dict[str, Any] | None:
    """What an earlier attempt of this step left in `out` (its owner record), None for an absent or empty
    folder; a folder holding anything else is refused, never cleared."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; a step writes a folder")
    # A file still being written (.tmp, moca.io) does not count: another rank may be writing the owner record.
    if not out.is_dir() or not any(not p.name.endswith(".tmp") for p in out.iterdir()):
        return None
    try:
        owner = read_json(out / OWNER)
    except DataError:
        owner = None
    if not isinstance(owner, dict) or owner.get("step") != step_name:
        raise ConfigError(f"{out}: not empty and not an earlier output of step {step_name!r}; choose a new folder")
    return owner


def _refuse_other_settings(spec: Step, out: Path, attempt: dict[str, Any], digests: dict[str, str],
                           settings: dict[str, Any]) -> None:
    changes = changed_keys(attempt.get("settings", {}), settings)
    changes += [f"input {role} changed" for role in sorted(set(digests) | set(attempt.get("inputs", {})))
                if digests.get(role) != attempt.get("inputs", {}).get(role)]  # fmt: skip
    if changes:
        raise ConfigError(f"{out}: holds a {spec.name} run made with other settings ({'; '.join(changes)}); "
                          "rerun with the same settings to continue it, or choose a new output folder")


def output_hashes(out: Path) -> dict[str, str]:
    return {f.relative_to(out).as_posix(): sha256_file(f) for f in sorted(out.rglob("*"))
            if f.is_file() and f.name not in (MANIFEST, OWNER) and not f.name.endswith(".tmp")}  # fmt: skip


def digest(source: str | Path) -> str:
    """Content digest of an input: sha256 of a file, of a folder's files (its step manifest aside), or the
    pinned form of a model URI (an alias resolved to its version)."""
    text = str(source)
    if ":/" in text and not Path(text).exists():  # models:/..., runs:/..., s3://..., https://...
        from moca.tracking.registry import pinned_model_uri

        return pinned_model_uri(text)
    path = Path(source)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        return hashlib.sha256(json.dumps(output_hashes(path), sort_keys=True).encode()).hexdigest()
    raise DataError(path, "step input not found")


def stat_digest(root: Path) -> str:
    """A quick data version for a dataset named by no version: relative paths, sizes and modification times.
    Any edit changes it (a rerun recomputes); hashing every frame of a real dataset would take minutes."""
    entries = sorted((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                     for p in root.rglob("*") if p.is_file())  # fmt: skip
    return "files:" + hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def require_outputs(*paths: str | Path) -> None:
    """Fail loudly when a step claims success but an output is missing or empty (KFP would pass it on)."""
    for path in map(Path, paths):
        empty = not any(path.iterdir()) if path.is_dir() else not path.is_file() or path.stat().st_size == 0
        if empty:
            raise DataError(path, "step output is missing or empty")


@contextlib.contextmanager
def _tracked(step_name: str, parent_run_id: str, params: Mapping[str, Any]) -> Iterator[None]:
    """A nested MLflow run for the step under `parent_run_id` (nothing when empty); a failure fails the parent."""
    if not parent_run_id:
        yield
        return
    import mlflow

    from moca.tracking import runs

    try:
        with runs.step_run(step_name, params=params, parent_run_id=parent_run_id) as run:
            # Libraries that open their own run (training's tracker) nest under this one, in this experiment.
            mlflow.set_experiment(experiment_id=run.info.experiment_id)
            yield
    except BaseException:
        runs.finish_pipeline_run(parent_run_id, "FAILED")
        raise


def _data_read(result: StepResult, inputs: Inputs) -> tuple[str, Path] | None:
    """(data version, folder) of the dataset a step read, or the one it produced (ingest: `info.data_version`)."""
    if inputs.data is not None:
        return str(result.manifest["inputs"]["data"]), Path(inputs.data)
    if result.info.get("data_version") and result.info.get("data"):
        return str(result.info["data_version"]), result.out / str(result.info["data"])
    return None


def _log(spec: Step, result: StepResult, inputs: Inputs) -> None:
    """Into the active step run: the metrics the body did not log itself, the dataset read (mlflow.data; the
    dataset a step produced goes on the pipeline run too), tables (mlflow.log_table), the manifest and the declared
    artifacts."""
    import mlflow

    from moca.tracking import datasets, runs

    run_id = mlflow.active_run().info.run_id
    runs.set_tags({"moca.skipped": result.skipped, "moca.data_version": result.manifest.get("data_version")})
    logged = mlflow.get_run(run_id).data.metrics  # e.g. scores the register step logged on its model already
    fresh = {k: v for k, v in result.metrics.items() if logged.get(k) != v}
    if fresh:
        runs.log_metrics(fresh)
    if (read := _data_read(result, inputs)) is not None:
        dataset = datasets.data_input(read[0], inputs.benchmark, read[1])
        for target in (run_id, inputs.parent_run_id if spec.produces == "dataset" else ""):
            if target:
                datasets.log_input(dataset, spec.name, target)
    for artifact_file, relative in result.manifest.get("tables", {}).items():
        runs.log_table(read_json(result.out / relative), artifact_file)
    runs.log_artifacts(result.out / MANIFEST, artifact_path="step")
    for relative in result.manifest.get("artifacts", []):
        runs.log_artifacts(result.out / relative)
