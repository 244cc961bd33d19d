from kfp import dsl
from kfp.dsl import Dataset, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def ingest(config_json: str, rev: str, experiment: str, git_sha: str, dataset: Output[Dataset]) -> str:
    """Fetch data version `rev` (a content address: start_run resolved it) into the `dataset` artifact, or write a
    reference to it there (`data.by_reference`); returns the data version."""
    import json

    from moca.runtime import setup_process
    from moca.steps.ingest import data_version
    from moca.steps.pod import run_step

    setup_process()
    config = json.dumps({**json.loads(config_json), "rev": rev})
    result = run_step("ingest", config, dataset.path, experiment=experiment)
    dataset.metadata["data_version"] = data_version(result)
    return data_version(result)
