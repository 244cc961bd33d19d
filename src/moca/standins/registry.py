"""The shipped stand-ins: name -> registry model, weights file, sha256, corpus and recipe (`weights/standins.json`).

    from moca.standins import standin_weights, build_standin
    spec = standin_weights("dino_tiny_standin")     # WeightsSpec(file URI, sha256): use it wherever weights go
    model = build_standin("sam_tiny_standin")       # moca.models.build_model("sam_tiny", spec)

A stand-in is NOT the real model: it is the registry's tiny config of the real model class, trained for minutes on
a synthetic corpus with its real counterpart's objective, so that the demo and the tests exercise a model that
carries what the real one carries. Weights load through `moca.models.weights` (sha256 checked, weights_only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from moca.errors import ConfigError
from moca.models.weights import WeightsSpec

WEIGHTS_DIR = Path(__file__).parent / "weights"
# SAM's automatic generator as the SAM stand-in is used (OWOD-BIND's boxes, `infer.mpm: auto`): its quality scores
# are not calibrated to SAM's 0.88 / 0.95 thresholds (it keeps ~1 mask a frame, the whole image), and SAM's 32x32
# grid costs ~12 s a frame with tiny SAM on one CPU core. Measured in the gates (docs/standins_gates.json).
AUTOMATIC_SAM = {"points_per_side": 8, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
MANIFEST = "standins.json"


@dataclass(frozen=True)
class StandIn:
    name: str  # e.g. "dino_tiny_standin"
    model: str  # the `moca.models` registry name it loads into, e.g. "dino_tiny"
    file: str  # file name in the weights folder
    sha256: str
    corpus: dict[str, Any]  # the synthetic corpus it trained on (benchmark, videos, seed, generator version)
    recipe: dict[str, Any]  # the objective and its settings

    def path(self, folder: Path = WEIGHTS_DIR) -> Path:
        return folder / self.file

    def weights(self, folder: Path = WEIGHTS_DIR) -> WeightsSpec:
        return WeightsSpec(self.path(folder).resolve().as_uri(), sha256=self.sha256)


def read_manifest(folder: Path = WEIGHTS_DIR) -> dict[str, StandIn]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{path}: no stand-in manifest; build them with `python -m moca.standins build`")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["standins"]
        return {e["name"]: StandIn(**e) for e in entries}
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a stand-in manifest ({exc})") from exc


def list_standins(folder: Path = WEIGHTS_DIR) -> list[str]:
    return sorted(read_manifest(folder))


def get_standin(name: str, folder: Path = WEIGHTS_DIR) -> StandIn:
    standins = read_manifest(folder)
    if name not in standins:
        raise ConfigError(f"unknown stand-in {name!r}; shipped: {', '.join(sorted(standins))}")
    return standins[name]


def standin_weights(name: str, folder: Path = WEIGHTS_DIR) -> WeightsSpec:
    """The weights spec (file URI + sha256) of stand-in `name`, for any config that takes weights."""
    return get_standin(name, folder).weights(folder)


def build_standin(name: str, folder: Path = WEIGHTS_DIR) -> nn.Module:
    """Stand-in `name` as a model, through `moca.models.build_model` (hash-checked, weights_only, strict)."""
    from moca.models import build_model

    standin = get_standin(name, folder)
    return build_model(standin.model, standin.weights(folder))
