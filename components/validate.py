from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def validate(dataset: Input[Dataset], benchmark: str, config_json: str, parent_run_id: str, data_version: str,
             model_name: str, git_sha: str, config_hash: str, report: Output[Dataset],
             page: Output[HTML]) -> NamedTuple("ValidationOutputs", passed=bool, summary=str):
    """Great Expectations + drift. Succeeds either way so the report is always published; `passed` gates the run."""
    import json
    import shutil
    from collections import namedtuple
    from pathlib import Path

    from moca.runtime import setup_process
    from moca.steps.ingest import DATA
    from moca.steps.runner import Inputs
    from moca.steps.validate import PAGE, run

    setup_process()
    inputs = Inputs(data=Path(dataset.path) / DATA, benchmark=benchmark, data_version=data_version,
                    parent_run_id=parent_run_id, model_name=model_name, config_hash=config_hash)
    result = run(json.loads(config_json), inputs, report.path)
    shutil.copyfile(Path(report.path) / PAGE, page.path)
    passed = bool(result.info["passed"])
    summary = "passed" if passed else "; ".join(result.info["failures"][:5])
    return namedtuple("ValidationOutputs", ["passed", "summary"])(passed, summary)
