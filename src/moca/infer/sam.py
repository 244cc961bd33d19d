"""SAM mask proposals with the image embedding computed once per frame (method.md item 9).

`SamProposer.set_frame` runs the image encoder once; point prompts, box prompts and SAM's automatic mask generator
then all decode from that one embedding. The automatic generator normally calls `set_image` itself for every
crop and resets it afterwards; here it gets a predictor whose `set_image` is a no-op for the frame already set
(with `crop_n_layers=0` its only crop is the whole frame, so the embedding is identical).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from moca.infer.config import SamConfig


def _predictor_class() -> type:
    from segment_anything import SamPredictor

    class FramePredictor(SamPredictor):
        """A SamPredictor that keeps the embedding of the current frame until a different image is set."""

        def __init__(self, sam: nn.Module):
            self._frame: np.ndarray | None = None
            self.embeddings_computed = 0  # image-encoder runs, for tests and the benchmark
            super().__init__(sam)

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            if self.is_image_set and self._same_frame(image):
                return
            super().set_image(image, image_format)
            self._frame = image
            self.embeddings_computed += 1

        def _same_frame(self, image: np.ndarray) -> bool:
            # the generator passes a crop view (the whole frame when crop_n_layers=0): same memory, same shape
            frame = self._frame
            return (frame is not None and image.shape == frame.shape and image.strides == frame.strides
                    and image.__array_interface__["data"][0] == frame.__array_interface__["data"][0])

        def reset_image(self) -> None:  # the generator resets after each crop; keep the frame's embedding
            if self._frame is None:
                super().reset_image()

        def forget(self) -> None:
            self._frame = None
            super().reset_image()

    return FramePredictor


class SamProposer:
    """Proposals for one frame at a time: `set_frame(rgb)`, then `points(...)`, `boxes(...)` or `automatic()`."""

    def __init__(self, sam: nn.Module, config: SamConfig):
        self.predictor = _predictor_class()(sam)
        self.use_config(config)
        self.frame: np.ndarray | None = None
        self._source: np.ndarray | None = None

    def use_config(self, config: SamConfig) -> None:
        """(Re)build the automatic generator for `config`, keeping the predictor and the current frame's embedding."""
        from segment_anything import SamAutomaticMaskGenerator

        self.config = config
        self.generator = SamAutomaticMaskGenerator(
            self.predictor.model,
            points_per_side=config.points_per_side,
            points_per_batch=config.points_per_batch,
            pred_iou_thresh=config.pred_iou_thresh,
            stability_score_thresh=config.stability_score_thresh,
            box_nms_thresh=config.box_nms_thresh,
            crop_n_layers=0,  # one crop, the whole frame: what lets it reuse the frame's embedding
        )
        self.generator.predictor = self.predictor

    @property
    def embeddings_computed(self) -> int:
        return self.predictor.embeddings_computed

    def set_frame(self, rgb: np.ndarray) -> None:
        """Encode frame `rgb` (H, W, 3) uint8 once; every proposal call until the next frame reuses it (setting the
        same array object again is free)."""
        if self.frame is not None and rgb is self._source:
            return
        self._source = rgb
        self.frame = np.ascontiguousarray(rgb, dtype=np.uint8)
        self.predictor.forget()
        self.predictor.set_image(self.frame)

    def _decode(self, **prompts: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """One batched prompt-encoder/decoder call; per prompt the multimask output with the best predicted IoU."""
        masks, iou, _ = self.predictor.predict_torch(multimask_output=True, **prompts)
        best = iou.argmax(1)
        picked = torch.arange(len(best))
        return masks[picked, best], iou[picked, best]

    @torch.no_grad()
    def points(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks (N, H, W) bool and predicted IoUs (N,) for N single foreground points (x, y) in frame pixels."""
        assert self.frame is not None, "set_frame first"
        coords = self.predictor.transform.apply_coords_torch(xy.float(), self.frame.shape[:2])
        coords = coords.to(self.predictor.device)[:, None, :]
        labels = torch.ones(coords.shape[:2], dtype=torch.int, device=coords.device)
        return self._decode(point_coords=coords, point_labels=labels, boxes=None)

    @torch.no_grad()
    def boxes(self, xyxy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks (N, H, W) bool and predicted IoUs (N,) for N boxes (x0, y0, x1, y1) in frame pixels."""
        assert self.frame is not None, "set_frame first"
        if len(xyxy) == 0:
            height, width = self.frame.shape[:2]
            return torch.zeros(0, height, width, dtype=torch.bool), torch.zeros(0)
        boxes = self.predictor.transform.apply_boxes_torch(xyxy.float(), self.frame.shape[:2])
        return self._decode(point_coords=None, point_labels=None, boxes=boxes.to(self.predictor.device))

    def automatic(self) -> list[dict[str, Any]]:
        """SAM's automatic mask generator on the current frame: dicts with `segmentation` (H, W) bool,
        `bbox` (x, y, w, h), `predicted_iou`, `stability_score`."""
        assert self.frame is not None, "set_frame first"
        return self.generator.generate(self.frame)


def automatic_masks(proposals: list[dict[str, Any]], size: tuple[int, int]) -> torch.Tensor:
    """The `segmentation` masks of automatic proposals stacked to (N, H, W) bool (N may be 0)."""
    if not proposals:
        return torch.zeros(0, *size, dtype=torch.bool)
    return torch.from_numpy(np.stack([p["segmentation"] for p in proposals]))


def build_sam(config: SamConfig, device: str = "cpu", key: str = "sam.weights") -> nn.Module:
    """The SAM model named in `config` with its weights. A released SAM without weights is refused (it would
    propose noise for minutes) unless they are set to "random"; a random-initialised SAM (tiny tests/demo, or
    asked for) uses a fixed seed so that two runs propose the same masks. `key` names the setting in errors."""
    from moca.models import build_model
    from moca.models.registry import usable_weights

    weights = usable_weights(config.model, config.weights, key)
    if weights is None:
        torch.manual_seed(0)
    return build_model(config.model, weights).to(device)
