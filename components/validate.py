from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def validate(dataset: Input[Dataset], benchmark: str, validation_json: str, drift_json: str, model_name: str,
             parent_run_id: str, data_version: str, git_sha: str, config_hash: str, report: Output[Dataset],
             page: Output[HTML]) -> NamedTuple("ValidationOutputs", passed=bool, summary=str):
    """Great Expectations + drift. Succeeds either way so the report is always published; `passed` gates the run."""
    import json
    import shutil
    from collections import namedtuple

    from moca.config import from_dict
    from moca.steps.manifest import require_outputs
    from moca.steps.validate import PAGE, validate
    from moca.validation.drift import DriftThresholds
    from moca.validation.suites import ValidationConfig

    result = validate(f"{dataset.path}/data", report.path, benchmark, data_version,
                      config=from_dict(ValidationConfig, json.loads(validation_json), "validation"),
                      drift=from_dict(DriftThresholds, json.loads(drift_json), "drift"), model_name=model_name,
                      parent_run_id=parent_run_id, raise_on_failure=False)
    shutil.copyfile(f"{report.path}/{PAGE}", page.path)
    require_outputs(page.path, f"{report.path}/report/summary.txt")
    passed = bool(result.info["passed"])
    summary = "passed" if passed else "; ".join(result.info["failures"][:5])
    return namedtuple("ValidationOutputs", ["passed", "summary"])(passed, summary)
