from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def infer(dataset: Input[Dataset], model: Input[Model], benchmark: str, split: str, infer_json: str,
          parent_run_id: str, data_version: str, git_sha: str, config_hash: str,
          predictions: Output[Dataset]) -> None:
    """Audio-pixel maps refined with SAM proposals (MPM) for every frame of `split`, as `predictions/{key}.npy`."""
    import json

    from moca.steps.infer import infer
    from moca.steps.manifest import require_outputs

    infer(f"{dataset.path}/data", f"{model.path}/model", predictions.path, benchmark, split, data_version,
          json.loads(infer_json), parent_run_id=parent_run_id)
    require_outputs(f"{predictions.path}/predictions")
