from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def train(dataset: Input[Dataset], pairs: Input[Dataset], benchmark: str, train_json: str, parent_run_id: str,
          data_version: str, git_sha: str, config_hash: str, model: Output[Model]) -> float:
    """Train the adapters (GPU image and resources set by the pipeline); returns the final loss."""
    import json

    from moca.steps.manifest import require_outputs
    from moca.steps.train import train

    result = train(f"{dataset.path}/data", f"{pairs.path}/pairs/pairs.parquet", model.path, benchmark, data_version,
                   json.loads(train_json), parent_run_id=parent_run_id)
    require_outputs(f"{model.path}/model/adapters.pt", f"{model.path}/model/config.yaml")
    model.metadata["config_hash"] = config_hash
    return float(result.metrics["final_loss"])
