from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def infer(dataset: Input[Dataset], model: Input[Model], benchmark: str, config_json: str, parent_run_id: str,
          data_version: str, git_sha: str, config_hash: str, predictions: Output[Dataset]) -> None:
    """Audio-pixel maps refined with SAM proposals (MPM) for every frame of the split, as `{key}.npy` logits."""
    import json
    from pathlib import Path

    from moca.runtime import setup_process
    from moca.steps.infer import run
    from moca.steps.ingest import DATA
    from moca.steps.runner import Inputs

    setup_process()
    inputs = Inputs(data=Path(dataset.path) / DATA, benchmark=benchmark, data_version=data_version,
                    upstream={"model": model.path}, parent_run_id=parent_run_id, config_hash=config_hash)
    run(json.loads(config_json), inputs, predictions.path)
