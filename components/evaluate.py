from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def evaluate(dataset: Input[Dataset], predictions: Input[Dataset], benchmark: str, config_json: str,
             parent_run_id: str, data_version: str, git_sha: str, config_hash: str, evaluation: Output[Dataset],
             metrics: Output[Metrics], table: Output[Markdown]) -> NamedTuple("Scores", miou=float, fscore=float):
    """Official AVSBench metrics; a failure stops the run before anything is registered."""
    import json
    import shutil
    from collections import namedtuple
    from pathlib import Path

    from moca.runtime import setup_process
    from moca.steps.evaluate import TABLE, run
    from moca.steps.ingest import DATA
    from moca.steps.runner import Inputs

    setup_process()
    inputs = Inputs(data=Path(dataset.path) / DATA, benchmark=benchmark, data_version=data_version,
                    upstream={"predictions": predictions.path}, parent_run_id=parent_run_id, config_hash=config_hash)
    result = run(json.loads(config_json), inputs, evaluation.path)
    shutil.copyfile(Path(evaluation.path) / TABLE, table.path)
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    return namedtuple("Scores", ["miou", "fscore"])(result.info["miou"], result.info["fscore"])
