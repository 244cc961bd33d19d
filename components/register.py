from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def register(model: Input[Model], scores: Input[Dataset], report: Input[Dataset], model_name: str, split: str,
             metric: str, parent_run_id: str, data_version: str, git_sha: str, config_hash: str,
             promotion: Output[Dataset]) -> NamedTuple("Promotion", version=str, promoted=bool):
    """Log the pyfunc, register it as `model_name`, promote it to @champion only if it beats the champion."""
    from collections import namedtuple

    from moca.steps.manifest import require_outputs
    from moca.steps.register import PROMOTION, register_and_promote
    from moca.steps.tracking import finish_pipeline_run

    result = register_and_promote(f"{model.path}/model", f"{scores.path}/evaluation.json",
                                  f"{report.path}/report/stats.json", promotion.path, data_version, config_hash,
                                  split, metric, parent_run_id, model_name=model_name)
    require_outputs(f"{promotion.path}/{PROMOTION}")
    finish_pipeline_run(parent_run_id, "FINISHED", metrics=result.metrics)
    return namedtuple("Promotion", ["version", "promoted"])(result.info["version"], bool(result.info["promoted"]))
