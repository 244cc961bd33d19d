from kfp import dsl
from kfp.dsl import Dataset, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def ingest(source: str, rev: str, remote: str, benchmark: str, parent_run_id: str, git_sha: str, config_hash: str,
           dataset: Output[Dataset]) -> str:
    """Fetch the named data version into the `dataset` artifact (its `data/` folder); returns the data version."""
    from moca.steps.ingest import data_version, ingest
    from moca.steps.manifest import require_outputs

    result = ingest(source, dataset.path, benchmark, rev=rev, remote=remote, parent_run_id=parent_run_id)
    require_outputs(f"{dataset.path}/data", f"{dataset.path}/manifest.json")
    dataset.metadata["data_version"] = data_version(result)
    return data_version(result)
