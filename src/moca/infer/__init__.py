"""Inference: audio-pixel maps, coarse masks and SAM mask proposal matching (method.md items 8-10).

Heavy modules (torch, segment-anything, the backbones) load when these functions are first called.
"""

from __future__ import annotations

from typing import Any

from moca.infer.config import InferConfig, SamConfig, infer_config

__all__ = ["InferConfig", "SamConfig", "infer_config", "predict_frames", "run_inference"]


def run_inference(*args: Any, **kwargs: Any) -> dict:
    from moca.infer.predict import run_inference as run

    return run(*args, **kwargs)


def predict_frames(*args: Any, **kwargs: Any) -> Any:
    from moca.infer.predict import predict_frames as predict

    return predict(*args, **kwargs)
