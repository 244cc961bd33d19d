"""OWOD-BIND (method.md "Baselines"): class-agnostic boxes -> SAM mask per box -> ImageBind picks the sounding ones.

    boxes (confidence > 0.15, boxes as large as the image dropped) -> SAM mask per box (box prompts, one image
    embedding per frame) -> each crop with everything outside its mask blurred (21x21 Gaussian) -> ImageBind
    similarity crop vs audio, times 20 -> softmax over the frame's crops -> keep crops with probability > 0.2
    -> union of their masks (empty when none passes)

The boxes come from a class-agnostic detector (`BoxSource`, configured as "module:factory"). Without one, SAM's
automatic proposals supply them; that variant is reported as `owod-bind-samboxes`, never as OWOD-BIND itself.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from moca.baselines.config import BaselineConfig
from moca.infer.sam import SamProposer


class BoxSource(Protocol):
    def boxes(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Class-agnostic boxes (N, 4) x0 y0 x1 y1 in pixels and their confidences (N,) for frame `rgb`."""
        ...


class SamAutoBoxes:
    """Boxes from SAM's automatic mask generator (bbox of each proposal; confidence = its predicted IoU)."""

    def __init__(self, proposer: SamProposer):
        self.proposer = proposer

    def boxes(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        self.proposer.set_frame(rgb)
        found = self.proposer.automatic()
        if not found:
            return torch.zeros(0, 4), torch.zeros(0)
        xywh = torch.tensor([p["bbox"] for p in found], dtype=torch.float32)
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
        return xyxy, torch.tensor([p["predicted_iou"] for p in found], dtype=torch.float32)


def filter_boxes(boxes: torch.Tensor, scores: torch.Tensor, size: tuple[int, int], confidence: float,
                 image_ratio: float) -> torch.Tensor:
    """Keep mask (N,): confidence above `confidence`, and not as large as the image (area < image_ratio * H*W)."""
    height, width = size
    area = (boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)
    return (scores > confidence) & (area < image_ratio * height * width)


def select_crops(similarity: torch.Tensor, logit_scale: float, keep_probability: float) -> torch.Tensor:
    """Keep mask (N,) over a frame's crops: softmax(logit_scale * similarity) > keep_probability."""
    if similarity.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    return torch.softmax(logit_scale * similarity.float(), dim=0) > keep_probability


def blurred_crops(rgb: np.ndarray, masks: torch.Tensor, boxes: torch.Tensor, kernel: int) -> list[np.ndarray]:
    """One uint8 crop per (mask, box): the box region of the frame with everything outside the mask blurred."""
    from torchvision.transforms.functional import gaussian_blur

    image = torch.tensor(rgb).permute(2, 0, 1)  # a copy: frames from PIL are read-only arrays
    blurred = gaussian_blur(image.float(), [kernel, kernel]).round().to(torch.uint8)
    crops = []
    height, width = rgb.shape[:2]
    for mask, box in zip(masks, boxes):
        composite = torch.where(mask[None], image, blurred).permute(1, 2, 0).numpy()
        x0, y0 = int(box[0].clamp(0, width - 1)), int(box[1].clamp(0, height - 1))
        x1, y1 = max(int(box[2].ceil().clamp(1, width)), x0 + 1), max(int(box[3].ceil().clamp(1, height)), y0 + 1)
        crops.append(np.ascontiguousarray(composite[y0:y1, x0:x1]))
    return crops


class OwodBind:
    """OWOD-BIND for one frame at a time: `predict(rgb, audio_input) -> (H, W) bool`."""

    def __init__(self, imagebind: torch.nn.Module, proposer: SamProposer, box_source: BoxSource, cfg: BaselineConfig):
        self.imagebind, self.proposer, self.box_source, self.cfg = imagebind, proposer, box_source, cfg

    @torch.no_grad()
    def audio_embedding(self, audio: torch.Tensor) -> torch.Tensor:
        """(clips, 1, 128, 204) -> (D,) L2-normalised, the clip embeddings averaged (as ImageBind does)."""
        from moca.models.imagebind import AUDIO, embed

        return torch.nn.functional.normalize(embed(self.imagebind, AUDIO, audio).mean(0), dim=0)

    @torch.no_grad()
    def crop_embeddings(self, crops: list[np.ndarray]) -> torch.Tensor:
        from moca.data.datasets import avss_eval_image
        from moca.models.imagebind import VISION, embed

        # the whole crop resized to 224 (no centre crop): an elongated object must not lose its ends
        return embed(self.imagebind, VISION, torch.stack([avss_eval_image(c) for c in crops]))

    @torch.no_grad()
    def predict(self, rgb: np.ndarray, audio: torch.Tensor) -> np.ndarray:
        size = rgb.shape[:2]
        boxes, scores = self.box_source.boxes(rgb)
        boxes = boxes[filter_boxes(boxes, scores, size, self.cfg.box_confidence, self.cfg.image_box_ratio)]
        empty = np.zeros(size, dtype=bool)
        if len(boxes) == 0:
            return empty
        self.proposer.set_frame(rgb)  # free when the box source (SamAutoBoxes) already encoded this frame
        masks, _iou = self.proposer.boxes(boxes)
        masks = masks.cpu()
        similarity = self.crop_embeddings(blurred_crops(rgb, masks, boxes, self.cfg.blur_kernel)) @ \
            self.audio_embedding(audio)
        keep = select_crops(similarity, self.cfg.logit_scale, self.cfg.keep_probability)
        return masks[keep].any(0).numpy() if keep.any() else empty
