from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def mine_pairs(dataset: Input[Dataset], benchmark: str, mining_json: str, parent_run_id: str, data_version: str,
               git_sha: str, config_hash: str, pairs: Output[Dataset]) -> None:
    """DINO pairs over the training split into the `pairs` artifact (`pairs/pairs.parquet`, `negatives.parquet`)."""
    import json

    from moca.config import from_dict
    from moca.mining import MiningConfig
    from moca.steps.manifest import require_outputs
    from moca.steps.mine_pairs import mine_pairs

    mine_pairs(f"{dataset.path}/data", pairs.path, benchmark, data_version,
               config=from_dict(MiningConfig, json.loads(mining_json), "mining"), parent_run_id=parent_run_id)
    require_outputs(f"{pairs.path}/pairs/pairs.parquet", f"{pairs.path}/pairs/negatives.parquet")
