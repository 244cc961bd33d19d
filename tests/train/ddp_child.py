"""One rank of the data-parallel test: stand-in model, environment as the Kubeflow training operator sets it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from train_standins import StandInModel, StandInStore, margin_objective, stand_in_pairs  # noqa: E402

from moca.train import distributed as D  # noqa: E402
from moca.train.config import LoopConfig  # noqa: E402
from moca.train.data import PairDataset  # noqa: E402
from moca.train.loop import train  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    ctx = D.init_distributed("cpu")
    cfg = LoopConfig(batch_size=8, grad_accum=int(sys.argv[2]), epochs=2, lr=1e-2, checkpoint_every=100,
                     tracking=False, cache_prefix=False, device="cpu")
    dataset = PairDataset(stand_in_pairs(), StandInStore(), seed=0)
    # rank-dependent init on purpose: the loop must broadcast rank 0's adapters before the first step
    result = train(StandInModel(adapter_seed=ctx.rank), margin_objective, dataset, cfg, out, config_hash="h",
                   model_id="standin", ctx=ctx)
    if ctx.is_main:
        torch.save({"adapters": result.adapters, "losses": result.losses}, out / "result.pt")
    D.shutdown(ctx)
