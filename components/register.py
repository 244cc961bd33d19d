from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def register(model: Input[Model], evaluation: Input[Dataset], report: Input[Dataset], config_json: str,
             parent_run_id: str, data_version: str, model_name: str, git_sha: str, config_hash: str,
             promotion: Output[Dataset]) -> NamedTuple("Promotion", version=str, promoted=bool):
    """Log the pyfunc, register it as `model_name`, promote it to @champion only if it beats the champion; then
    close the MLflow parent run."""
    import json
    from collections import namedtuple

    from moca.runtime import setup_process
    from moca.steps.register import run
    from moca.steps.runner import Inputs
    from moca.tracking.runs import finish_pipeline_run

    setup_process()
    inputs = Inputs(data_version=data_version, parent_run_id=parent_run_id, model_name=model_name,
                    config_hash=config_hash,
                    upstream={"model": model.path, "evaluation": evaluation.path, "report": report.path})
    result = run(json.loads(config_json), inputs, promotion.path)
    finish_pipeline_run(parent_run_id, "FINISHED", metrics=result.metrics)
    return namedtuple("Promotion", ["version", "promoted"])(result.info["version"], bool(result.info["promoted"]))
