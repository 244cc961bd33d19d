from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def mine_pairs(dataset: Input[Dataset], benchmark: str, config_json: str, experiment: str, data_version: str,
               git_sha: str, pairs: Output[Dataset]) -> None:
    """DINO pairs over the training split into the `pairs` artifact (`pairs.parquet`, `negatives.parquet`)."""
    from moca.runtime import setup_process
    from moca.steps.pod import run_step

    setup_process()
    run_step("mine_pairs", config_json, pairs.path, dataset=dataset.path, benchmark=benchmark,
             data_version=data_version, experiment=experiment)
