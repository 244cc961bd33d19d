"""DINO pair mining (method.md item 2): descriptors, memory-bounded kNN, and the `mine-pairs` step.

    from moca.mining import MiningConfig, mine_pairs
    manifest = mine_pairs("data/avsbench", "s4", "runs/pairs", MiningConfig(model="dino_tiny"))
"""

from moca.mining.descriptors import (
    CacheStats,
    DescriptorCache,
    Encoder,
    cls_encoder,
    describe_frames,
    preprocess,
)
from moca.mining.ivf import IvfSettings, mine_neighbours_ivf
from moca.mining.knn import Neighbours, mine_neighbours
from moca.mining.run import DINO_MODELS, MiningConfig, build_dino_encoder, dino_identity, mine_pairs

__all__ = [
    "DINO_MODELS", "CacheStats", "DescriptorCache", "Encoder", "IvfSettings", "MiningConfig", "Neighbours",
    "build_dino_encoder", "cls_encoder", "describe_frames", "dino_identity", "mine_neighbours", "mine_neighbours_ivf",
    "mine_pairs", "preprocess",
]
