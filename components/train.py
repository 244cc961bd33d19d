from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def train(dataset: Input[Dataset], pairs: Input[Dataset], benchmark: str, config_json: str, parent_run_id: str,
          data_version: str, git_sha: str, config_hash: str, model: Output[Model]) -> float:
    """Train the adapters into the `model` artifact (GPU image and resources set by the pipeline); returns the
    final loss."""
    import json
    from pathlib import Path

    from moca.runtime import setup_process
    from moca.steps.ingest import DATA
    from moca.steps.runner import Inputs
    from moca.steps.train import run

    setup_process()
    inputs = Inputs(data=Path(dataset.path) / DATA, benchmark=benchmark, data_version=data_version,
                    upstream={"pairs": pairs.path}, parent_run_id=parent_run_id, config_hash=config_hash)
    result = run(json.loads(config_json), inputs, model.path)
    model.metadata["config_hash"] = config_hash
    return float(result.metrics["final_loss"])
