"""Prefect 3 retraining flow: new data version? -> validate -> Kubeflow run -> wait -> compare/promote -> notify.

Scheduled by `pipelines/prefect.yaml` (5-field cron; entrypoint `moca.pipelines.retrain_flow:retrain`) or
`python -m moca.pipelines.retrain_flow --serve CONFIG`. The flow only orchestrates: validation is the pipeline's
validate step itself (`moca.steps.validate.run`, with its manifest and report), training and promotion run in the
Kubeflow pipeline, whose register step makes a new version @champion only if it beats the champion; the flow
reports what the registry decided. "New data" means the version `retrain.dvc_file` names differs from the
champion's `data_version`.

It runs where there is no checkout (its image: the package, `configs/` in the working directory): `retrain.dvc_file`
may be a data pointer in the store (`s3://moca-data/pointers/s4.dvc`, `moca data publish`), and the version it
names is validated as fetched from the DVC remote, the very bytes the pipeline will train on.
"""

# No `from __future__ import annotations`: Prefect validates flow parameters from live annotations.
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task


@task
def check_new_data(config_path: str, force: bool) -> dict[str, Any]:
    """The data version `retrain.dvc_file` names (a data pointer is read now), and the champion's."""
    from moca.runtime import setup_process
    from moca.steps.config import load_pipeline_config
    from moca.tracking.registry import champion
    from moca.versioning import data_version

    setup_process()
    config = load_pipeline_config(config_path)
    version = data_version(config.retrain.dvc_file)
    current = champion(config.model_name)
    champion_data = current.tags.get("data_version") if current else None
    return {"data_version": version, "champion": str(current.version) if current else None,
            "champion_data_version": champion_data, "new": force or version != champion_data}  # fmt: skip


@task
def validate_data(config_path: str, data_version: str, report_dir: str) -> dict[str, Any]:
    """The pipeline's validate step on `data_version` as fetched from the DVC remote (into scratch space, removed
    afterwards), before any cluster time is spent; the report stays in `report_dir`."""
    import dataclasses
    import tempfile

    from moca.runtime import setup_process
    from moca.steps import ingest, validate
    from moca.steps.config import load_pipeline_config
    from moca.steps.runner import Inputs

    setup_process()
    config = load_pipeline_config(config_path)
    source = dataclasses.replace(config.data, rev=data_version, by_reference=True)
    with tempfile.TemporaryDirectory(prefix="moca-retrain-") as scratch:
        reference = ingest.run(source, Inputs(), Path(scratch) / "ingest").out
        with ingest.materialised(reference) as data:
            inputs = Inputs(data=data, benchmark=config.data.benchmark, data_version=data_version,
                            model_name=config.model_name)  # fmt: skip
            result = validate.run(config.validate, inputs, report_dir)
    return {"passed": result.info["passed"], "failures": result.info["failures"][:10], "report": str(result.out)}


@task
def launch_pipeline(config_path: str, host: str, data_version: str, pipeline_root: str) -> dict[str, Any]:
    """Run the Kubeflow pipeline on that exact data version: submitted to `host`, or with kfp.local if empty."""
    from moca.runtime import setup_process
    from moca.steps import kubeflow

    setup_process()
    if host:
        return {"run_id": kubeflow.submit(host, config_path, data_rev=data_version), "host": host}
    kubeflow.run_local(config_path, pipeline_root, data_rev=data_version)
    return {"run_id": "local", "host": ""}


@task
def wait_for_run(launched: dict[str, Any], timeout_s: int) -> str:
    from moca.runtime import setup_process
    from moca.steps import kubeflow

    setup_process()
    if not launched["host"]:  # kfp.local runs synchronously: it has already ended, successfully
        return "SUCCEEDED"
    return kubeflow.wait(launched["host"], launched["run_id"], timeout_s)


@task
def compare_and_promote(model_name: str, previous_champion: str | None) -> dict[str, Any]:
    """What the registry decided: the newest version, the champion now, and the promotion reason."""
    from moca.runtime import setup_process
    from moca.tracking.registry import DECISION_TAG, champion, newest_version

    setup_process()
    newest, current = newest_version(model_name), champion(model_name)
    champion_version = str(current.version) if current else None
    return {"newest": str(newest.version) if newest else None, "champion": champion_version,
            "promoted": champion_version is not None and champion_version != previous_champion,
            "decision": newest.tags.get(DECISION_TAG, "") if newest else ""}  # fmt: skip


@task(retries=2, retry_delay_seconds=5)
def notify(summary: dict[str, Any], webhook_url: str) -> None:
    """Log the summary; POST it as JSON to `webhook_url` when one is configured."""
    get_run_logger().info("moca retrain: %s", json.dumps(summary, sort_keys=True))
    if not webhook_url:
        return
    request = urllib.request.Request(webhook_url, data=json.dumps(summary).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@flow(name="moca-retrain", log_prints=True)
def retrain(config: str = "configs/pipeline_demo.yaml", host: str = "", force: bool = False,
            pipeline_root: str = ".moca/pipeline-root") -> dict[str, Any]:
    """One retraining cycle; returns the summary it notified. The validation report of each data version is kept
    in `pipeline_root/retrain-validation/<version>/`."""
    from moca.errors import MocaError, ValidationFailed
    from moca.steps.config import load_pipeline_config

    settings = load_pipeline_config(config)
    webhook = settings.retrain.webhook_url
    data = check_new_data(config, force)
    summary: dict[str, Any] = {"data_version": data["data_version"], "champion_before": data["champion"]}
    if not data["new"]:
        notify({**summary, "outcome": "skipped: no new data version"}, webhook)
        return {**summary, "outcome": "skipped"}
    report_dir = Path(pipeline_root) / "retrain-validation" / data["data_version"]
    checked = validate_data(config, data["data_version"], str(report_dir))
    if not checked["passed"]:
        notify({**summary, "outcome": "invalid data", "failures": checked["failures"],
                "report": checked["report"]}, webhook)  # fmt: skip
        raise ValidationFailed(f"data version {data['data_version']} failed validation: {checked['failures'][:3]}; "
                               f"report in {checked['report']}")
    launched = launch_pipeline(config, host, data["data_version"], pipeline_root)
    state = wait_for_run(launched, settings.retrain.wait_timeout_s)
    summary.update(run_id=launched["run_id"], state=state)
    if state != "SUCCEEDED":
        notify({**summary, "outcome": "pipeline failed"}, webhook)
        raise MocaError(f"Kubeflow run {launched['run_id']} ended {state}")
    result = compare_and_promote(settings.model_name, data["champion"])
    summary.update(result, outcome="promoted" if result["promoted"] else "kept champion")
    notify(summary, webhook)
    return summary


def deployment(config: str = "configs/pipeline_demo.yaml", host: str = "", name: str = "moca-nightly") -> Any:
    """A Prefect deployment of `retrain` on the config's cron (what `--serve` serves)."""
    from moca.errors import ConfigError
    from moca.steps.config import load_pipeline_config

    cron = load_pipeline_config(config).retrain.cron
    if len(cron.split()) != 5:
        raise ConfigError(f"retrain.cron {cron!r}: Prefect takes a 5-field cron (minute hour day month weekday)")
    return retrain.to_deployment(name=name, cron=cron, parameters={"config": config, "host": host})


if __name__ == "__main__":
    from moca.runtime import setup_process

    setup_process()
    if "--serve" in sys.argv:  # a long-running process that runs the flow on its schedule
        from prefect import serve

        serve(deployment(*[a for a in sys.argv[1:] if a != "--serve"]))
    else:
        print(json.dumps(retrain(*sys.argv[1:2]), indent=2))
