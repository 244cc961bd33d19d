from kfp import dsl
from kfp.dsl import Dataset, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def ingest(config_json: str, rev: str, parent_run_id: str, git_sha: str, config_hash: str,
           dataset: Output[Dataset]) -> str:
    """Fetch data version `rev` (a run parameter; see the `data` section) into the `dataset` artifact (its `data/`
    folder); returns the data version."""
    import json

    from moca.runtime import setup_process
    from moca.steps.ingest import data_version, run
    from moca.steps.runner import Inputs

    setup_process()
    result = run({**json.loads(config_json), "rev": rev}, Inputs(parent_run_id=parent_run_id), dataset.path)
    dataset.metadata["data_version"] = data_version(result)
    return data_version(result)
