from typing import NamedTuple

from kfp import dsl

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def start_run(run_name: str, experiment: str, data_rev: str, config_json: str, git_sha: str, lr: float,
              epochs: int, max_steps: int, batch_size: int, eval_split: str,
              promotion_metric: str) -> NamedTuple("Run", data_version=str, config_hash=str):
    """Check the config with this run's parameters, resolve `data_rev` to a content address (a data pointer is read
    now) and open the MLflow parent run; every later task receives the resolved version, never the run's id."""
    from collections import namedtuple

    from moca.runtime import setup_process
    from moca.steps.pod import start

    setup_process()
    runtime = {"lr": lr, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
               "eval_split": eval_split, "promotion_metric": promotion_metric}  # fmt: skip
    version, config_hash = start(run_name, experiment, data_rev, config_json, runtime, git_sha)
    return namedtuple("Run", ["data_version", "config_hash"])(version, config_hash)
