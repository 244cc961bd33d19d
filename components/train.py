from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def train(dataset: Input[Dataset], pairs: Input[Dataset], benchmark: str, config_json: str, experiment: str,
          data_version: str, git_sha: str, config_hash: str, lr: float, epochs: int, max_steps: int,
          batch_size: int, model: Output[Model]) -> float:
    """Train the adapters into the `model` artifact (GPU image and resources set by the pipeline); returns the
    final loss."""
    from moca.runtime import setup_process
    from moca.steps.pod import run_step

    setup_process()
    runtime = {"lr": lr, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size}
    result = run_step("train", config_json, model.path, dataset=dataset.path, benchmark=benchmark,
                      data_version=data_version, experiment=experiment, config_hash=config_hash,
                      upstream={"pairs": pairs.path}, runtime=runtime)  # fmt: skip
    model.metadata["config_hash"] = config_hash
    return float(result.metrics["final_loss"])
