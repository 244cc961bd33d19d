"""Compile, run locally (kfp.local), submit and schedule the training pipeline (`moca.pipelines.training_pipeline`).

The pipeline and its components live in the repository's `pipelines/` and `components/` folders, installed as the
packages `moca.pipelines` and `moca.components` (pyproject.toml maps them), so this works from any folder. KFP
embeds each component's source in the compiled YAML; the images need only the installed `moca` package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.errors import ConfigError, MocaError
from moca.steps.config import COMPONENTS, PipelineConfig, load_pipeline_config
from moca.steps.ingest import CONTENT_HASH
from moca.tracking.runs import git_sha

log = logging.getLogger("moca.steps")


class PipelineFailed(MocaError):
    """A pipeline task failed (its own log names the cause)."""


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\n", " ")


@dataclass
class BuiltPipeline:
    config: PipelineConfig
    func: Any  # the @dsl.pipeline function
    git_sha: str


def build(config_path: str | Path, overrides: Sequence[str] = ()) -> BuiltPipeline:
    from moca.pipelines.training_pipeline import build_pipeline

    config = load_pipeline_config(config_path, overrides)
    sha = git_sha()
    return BuiltPipeline(config, build_pipeline(config, sha), sha)


def compile_pipeline(config_path: str | Path, out: str | Path, overrides: Sequence[str] = ()) -> Path:
    """Write the KFP IR YAML of the pipeline `config_path` (with `--set` overrides) describes."""
    from kfp import compiler

    built = build(config_path, overrides)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # KFP writes the file itself; compile to a sibling and rename so a reader never sees half a YAML.
    partial = out.with_name(f".{out.name}.partial.yaml")
    compiler.Compiler().compile(built.func, str(partial))
    partial.replace(out)
    return out


def resolve_data_rev(config: PipelineConfig, data_rev: str | None) -> str:
    """A git rev becomes the DVC md5 its `.dvc` file names here: pods have no git checkout to resolve it in. A DVC
    md5, a content hash, a data pointer (read by the run's start_run task, so each run of a schedule gets the
    newest version) and "" (the folder as is) pass unchanged."""
    import dataclasses

    from moca.steps.ingest import resolve_version
    from moca.versioning import VERSION_PATTERN, is_pointer

    rev = config.data.rev if data_rev is None else data_rev
    if not rev or VERSION_PATTERN.match(rev) or CONTENT_HASH.match(rev) or is_pointer(rev):
        return rev
    return resolve_version(dataclasses.replace(config.data, rev=rev))


def _arguments(config: PipelineConfig, data_rev: str | None, run_name: str | None) -> dict[str, str]:
    return {"data_rev": resolve_data_rev(config, data_rev),
            "run_name": run_name or f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"}  # fmt: skip


PLACEHOLDER_DIGEST = re.compile(r"@sha256:0{64}$")


def check_cluster_ready(config: PipelineConfig, data_rev: str) -> None:
    """What a cluster run cannot do without: images that exist (no placeholder digest) and a data version pods can
    fetch (not the submitting machine's folder)."""
    images = {name: config.kfp.image(name) for name in COMPONENTS}
    placeholders = sorted(name for name, image in images.items() if PLACEHOLDER_DIGEST.search(image))
    if placeholders:
        raise ConfigError(f"kfp: {', '.join(placeholders)} would run a placeholder image digest "
                          f"({images[placeholders[0]]}); `make images` pins the pushed digests (docker/README.md)")
    if not data_rev or CONTENT_HASH.match(data_rev):
        raise ConfigError("data.rev: a cluster run needs a data version its pods can fetch: a DVC md5, a data "
                          "pointer (s3://.../NAME.dvc) or a git rev of data.dvc, not the local folder")


@contextlib.contextmanager
def _recording_run_folders(pipeline_root: Path) -> Iterator[list[Path]]:
    """The run folders kfp.local names in this process. It does not return them, and with two runs sharing a
    pipeline root (two users, a nightly and a manual run) "the folder that appeared" is ambiguous."""
    from unittest import mock

    from kfp.local import executor_input_utils

    name_run = executor_input_utils.get_local_pipeline_resource_name
    folders: list[Path] = []

    def recording(pipeline_name: str) -> str:
        name = name_run(pipeline_name)
        folders.append(pipeline_root / name)
        return name

    with mock.patch.object(executor_input_utils, "get_local_pipeline_resource_name", recording):
        yield folders


@contextlib.contextmanager
def _run_key() -> Iterator[str]:
    """What Kubeflow gives every pod of a run from its `pipeline/runid` label: a run key, here a fresh one that
    kfp.local's task subprocesses inherit."""
    from moca.steps.pod import RUN_KEY_ENV

    previous = os.environ.get(RUN_KEY_ENV)
    os.environ[RUN_KEY_ENV] = key = f"local-{uuid.uuid4()}"
    try:
        yield key
    finally:
        if previous is None:
            os.environ.pop(RUN_KEY_ENV, None)
        else:
            os.environ[RUN_KEY_ENV] = previous


def run_local(config_path: str | Path, pipeline_root: str | Path, data_rev: str | None = None,
              run_name: str | None = None, overrides: Sequence[str] = ()) -> Path:
    """Run the very same pipeline with kfp.local in subprocesses of this interpreter (no Docker, no cluster);
    returns the run's folder (one subfolder per task, holding its output artifacts). With `kfp.caching`, kfp.local's
    own cache (`pipeline_root/.kfp_cache`) reuses the tasks whose inputs did not change, as Kubeflow would."""
    from kfp import local

    built = build(config_path, overrides)
    pipeline_root = Path(pipeline_root).resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    # use_venv=False: tasks run with this interpreter, where moca is installed (no pip install per task).
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True,
               enable_caching=built.config.kfp.caching)  # fmt: skip
    started = time.perf_counter()
    with warnings.catch_warnings():
        # kfp.local warns on every task that the images and display names are unused here: true and expected.
        warnings.filterwarnings("ignore", message=".*(non-Python base image|have no effect in the current local)")
        try:
            with _recording_run_folders(pipeline_root) as run_folders, _run_key():
                built.func(**_arguments(built.config, data_rev, run_name))
        except RuntimeError as exc:  # kfp.local's way of saying a task failed; its log is above
            raise PipelineFailed(_plain(str(exc))) from exc
    (run_folder,) = run_folders
    log.info("kfp.local run finished in %.1f s; task outputs in %s", time.perf_counter() - started, run_folder)
    return run_folder


def submit(host: str, config_path: str | Path, data_rev: str | None = None, run_name: str | None = None,
           overrides: Sequence[str] = ()) -> str:
    """Submit one run to the Kubeflow Pipelines API at `host`; returns the run id. The runtime parameters (lr,
    epochs, ...) default to the config's values, `--set` ones included; the KFP UI can change them per run."""
    import kfp

    built = build(config_path, overrides)
    arguments = _arguments(built.config, data_rev, run_name)
    check_cluster_ready(built.config, arguments["data_rev"])
    client = kfp.Client(host=host)
    result = client.create_run_from_pipeline_func(built.func, arguments=arguments, run_name=arguments["run_name"],
                                                  experiment_name=built.config.experiment)
    return str(result.run_id)


def wait(host: str, run_id: str, timeout_s: int) -> str:
    """Block until the run at `host` ends; returns its final state (SUCCEEDED, FAILED, ...)."""
    import kfp

    run = kfp.Client(host=host).wait_for_run_completion(run_id, timeout=timeout_s)
    return str(run.state)


def check_kfp_cron(cron: str) -> str:
    fields = cron.split()
    if len(fields) != 6:
        raise ConfigError(f"--cron {cron!r}: Kubeflow recurring runs take 6 fields (seconds minutes hours day month "
                          f"weekday), e.g. '0 0 3 * * *'; got {len(fields)}")
    return " ".join(fields)


def schedule(host: str, config_path: str | Path, cron: str, job_name: str | None = None,
             overrides: Sequence[str] = (), package_dir: str | Path = ".moca/pipeline",
             data_rev: str | None = None) -> str:
    """Create a recurring run (6-field cron) at `host`, one at a time and no catch-up; returns its id. Its data
    is a data pointer (each run reads the version it names then) or a pinned DVC md5: a git rev would be resolved
    once, now, and retrain on the same data every time, so it is refused."""
    import kfp

    from moca.versioning import VERSION_PATTERN, is_pointer

    cron = check_kfp_cron(cron)
    built = build(config_path, overrides)
    rev = built.config.data.rev if data_rev is None else data_rev
    if not (is_pointer(rev) or VERSION_PATTERN.match(rev)):
        raise ConfigError(f"data.rev {rev!r}: a recurring run needs a data pointer (s3://.../NAME.dvc, updated with "
                          "`moca data publish`), read at each run, or a pinned DVC md5")
    check_cluster_ready(built.config, rev)
    package = compile_pipeline(config_path, Path(package_dir) / f"{built.config.name}.yaml", overrides)
    client = kfp.Client(host=host)
    experiment = client.create_experiment(name=built.config.experiment)
    recurring = client.create_recurring_run(
        experiment_id=experiment.experiment_id, job_name=job_name or f"{built.config.name}-nightly",
        cron_expression=cron, pipeline_package_path=str(package), params={"data_rev": rev},
        max_concurrency=1, no_catchup=True, enabled=True)  # fmt: skip
    return str(recurring.recurring_run_id)
