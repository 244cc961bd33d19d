from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def validate(dataset: Input[Dataset], benchmark: str, config_json: str, experiment: str, data_version: str,
             model_name: str, git_sha: str, report: Output[Dataset],
             page: Output[HTML]) -> NamedTuple("ValidationOutputs", passed=bool, summary=str):
    """Great Expectations + drift. Succeeds either way so the report is always published; `passed` gates the run."""
    import shutil
    from collections import namedtuple
    from pathlib import Path

    from moca.runtime import setup_process
    from moca.steps.pod import run_step
    from moca.steps.validate import PAGE

    setup_process()
    result = run_step("validate", config_json, report.path, dataset=dataset.path, benchmark=benchmark,
                      data_version=data_version, experiment=experiment, model_name=model_name)
    shutil.copyfile(Path(report.path) / PAGE, page.path)
    passed = bool(result.info["passed"])
    summary = "passed" if passed else "; ".join(result.info["failures"][:5])
    return namedtuple("ValidationOutputs", ["passed", "summary"])(passed, summary)
