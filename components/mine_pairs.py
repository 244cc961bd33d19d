from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def mine_pairs(dataset: Input[Dataset], benchmark: str, config_json: str, parent_run_id: str, data_version: str,
               git_sha: str, config_hash: str, pairs: Output[Dataset]) -> None:
    """DINO pairs over the training split into the `pairs` artifact (`pairs.parquet`, `negatives.parquet`)."""
    import json
    from pathlib import Path

    from moca.runtime import setup_process
    from moca.steps.ingest import DATA
    from moca.steps.mine_pairs import run
    from moca.steps.runner import Inputs

    setup_process()
    inputs = Inputs(data=Path(dataset.path) / DATA, benchmark=benchmark, data_version=data_version,
                    parent_run_id=parent_run_id, config_hash=config_hash)
    run(json.loads(config_json), inputs, pairs.path)
