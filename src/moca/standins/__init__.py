"""STAND-IN foundation models: tiny configs of the real DINO, SAM and ImageBind classes, trained on synthetic data.

Real weights cannot be downloaded on the machines the demo and tests run on, and a randomly initialised model
carries nothing (mined DINO pairs at chance, SAM proposing nothing above OWOD-BIND's confidence, no audio-visual
link). Each stand-in is the registry's tiny config of the real class, trained in minutes of one CPU core on a
synthetic corpus that no evaluation uses, with its real counterpart's kind of objective:

| stand-in | registry model | objective |
|---|---|---|
| `dino_tiny_standin` | `dino_tiny` | label-free view invariance (EMA teacher, multi-crop; see `moca.standins.dino`) |
| `sam_tiny_standin` | `sam_tiny` | prompt -> mask on the corpus's instance masks, class-agnostic (`standins.sam`) |
| `imagebind_tiny_standin` | `imagebind_tiny` | image-audio contrastive (`moca.train.pretrain.pretrain_tiny`) |

They are NOT the real models and must never be reported as such. `python -m moca.standins build` rebuilds them
bit for bit; `python -m moca.standins gates` measures what each carries (docs/models.md, "Stand-in models").
"""

from moca.standins.registry import (
    StandIn,
    build_standin,
    get_standin,
    list_standins,
    read_manifest,
    standin_weights,
)

__all__ = ["StandIn", "build_standin", "get_standin", "list_standins", "read_manifest", "standin_weights"]
