from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def infer(dataset: Input[Dataset], model: Input[Model], benchmark: str, config_json: str, experiment: str,
          data_version: str, git_sha: str, eval_split: str, predictions: Output[Dataset]) -> None:
    """Audio-pixel maps refined with SAM proposals (MPM) for every frame of the split, as `{key}.npy` logits."""
    from moca.runtime import setup_process
    from moca.steps.pod import run_step

    setup_process()
    run_step("infer", config_json, predictions.path, dataset=dataset.path, benchmark=benchmark,
             data_version=data_version, experiment=experiment, upstream={"model": model.path},
             runtime={"eval_split": eval_split})  # fmt: skip
