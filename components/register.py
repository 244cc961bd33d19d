from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def register(model: Input[Model], evaluation: Input[Dataset], report: Input[Dataset], config_json: str,
             experiment: str, data_version: str, model_name: str, git_sha: str, config_hash: str,
             promotion_metric: str, promotion: Output[Dataset]) -> NamedTuple("Promotion", version=str, promoted=bool):
    """Log the pyfunc, register it as `model_name`, promote it to @champion only if it beats the champion; then
    close the MLflow parent run."""
    from collections import namedtuple

    from moca.runtime import setup_process
    from moca.steps.pod import parent_run, run_step
    from moca.tracking.runs import finish_pipeline_run

    setup_process()
    upstream = {"model": model.path, "evaluation": evaluation.path, "report": report.path}
    result = run_step("register", config_json, promotion.path, data_version=data_version, experiment=experiment,
                      model_name=model_name, config_hash=config_hash, upstream=upstream,
                      runtime={"promotion_metric": promotion_metric})  # fmt: skip
    finish_pipeline_run(parent_run(experiment), "FINISHED", metrics=result.metrics)
    return namedtuple("Promotion", ["version", "promoted"])(result.info["version"], bool(result.info["promoted"]))
