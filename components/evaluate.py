from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def evaluate(dataset: Input[Dataset], predictions: Input[Dataset], benchmark: str, evaluate_json: str,
             parent_run_id: str, data_version: str, git_sha: str, config_hash: str, scores: Output[Dataset],
             metrics: Output[Metrics], table: Output[Markdown]) -> NamedTuple("Scores", miou=float, fscore=float):
    """Official AVSBench metrics; a failure stops the run before anything is registered."""
    import json
    import shutil
    from collections import namedtuple

    from moca.config import from_dict
    from moca.steps.config import EvaluateConfig
    from moca.steps.evaluate import TABLE, evaluate
    from moca.steps.manifest import require_outputs

    result = evaluate(f"{predictions.path}/predictions", f"{dataset.path}/data", scores.path, benchmark,
                      data_version, config=from_dict(EvaluateConfig, json.loads(evaluate_json), "evaluate"),
                      parent_run_id=parent_run_id)
    shutil.copyfile(f"{scores.path}/{TABLE}", table.path)
    require_outputs(table.path, f"{scores.path}/evaluation.json")
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    return namedtuple("Scores", ["miou", "fscore"])(result.info["miou"], result.info["fscore"])
