"""Frame descriptors for mining: DINO CLS tokens, L2-normalised, computed in batches and cached per frame.

The cache is one `.npz` per model identity (name + weights hash, or the seed of a random init), holding for each
frame its key, the sha256 of its image file and its descriptor. A frame is reused only when both its key and
its image hash match, so an edited image is recomputed and a different model never sees another's vectors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from moca.data.layout import FrameRef
from moca.errors import DataError
from moca.io import atomic_open, sha256_file
from moca.progress import progress

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (B, 3, S, S) ImageNet-normalised images -> (B, D) descriptors (normalised afterwards by describe_frames).
Encoder = Callable[[torch.Tensor], torch.Tensor]


def preprocess(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float (3, size, size): bilinear resize (PIL's, antialiased), ImageNet mean/std.

    Done in PIL/numpy on purpose: per-image torch ops are tiny, and torch's intra-op threads then cost far more
    in synchronisation than the work itself (~100x slower on a busy 2-core machine).
    """
    if image.shape[:2] != (size, size):
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    pixels = (image.astype(np.float32) / 255 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def cls_encoder(model: torch.nn.Module, device: str = "cpu") -> Encoder:
    """A timm VisionTransformer (DINO) as an encoder: the final-norm CLS token of `forward_features`."""
    model = model.to(device).eval()

    @torch.inference_mode()
    def encode(images: torch.Tensor) -> torch.Tensor:
        return model.forward_features(images.to(device))[:, 0].float().cpu()

    return encode


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int


class DescriptorCache:
    """Descriptors of one model, keyed by (frame key, image sha256), in one atomically rewritten `.npz`."""

    def __init__(self, folder: str | Path, model_id: str):
        self.model_id = model_id
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:16]
        self.path = Path(folder) / f"descriptors-{digest}.npz"

    def load(self) -> dict[tuple[str, str], np.ndarray]:
        if not self.path.is_file():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["model_id"]) != self.model_id:
                    raise ValueError(f"written for model {str(data['model_id'])!r}")
                keys, hashes, vectors = data["keys"], data["hashes"], data["descriptors"]
        except Exception as exc:  # a damaged cache only costs a recomputation, never the run
            log.warning("%s: ignoring unusable descriptor cache (%s)", self.path, exc)
            return {}
        return {(str(k), str(h)): v for k, h, v in zip(keys, hashes, vectors)}

    def save(self, entries: dict[tuple[str, str], np.ndarray]) -> None:
        keys = sorted(entries)
        with atomic_open(self.path, "wb") as handle:
            np.savez(
                handle,
                model_id=np.array(self.model_id),
                keys=np.array([k for k, _ in keys], dtype=str),
                hashes=np.array([h for _, h in keys], dtype=str),
                descriptors=np.stack([entries[k] for k in keys]).astype(np.float32),
            )


def image_hash(frame: FrameRef) -> str:
    if not frame.image.is_file():
        raise DataError(frame.image, "frame image not found")
    return sha256_file(frame.image)


def _encode_batch(frames: Sequence[FrameRef], encoder: Encoder, image_size: int) -> np.ndarray:
    from moca.data.readers import read_image

    images = torch.stack([preprocess(read_image(frame.image), image_size) for frame in frames])
    return F.normalize(encoder(images).float(), dim=-1).numpy()


def describe_frames(
    frames: Sequence[FrameRef],
    encoder: Encoder,
    cache: DescriptorCache | None = None,
    batch_size: int = 64,
    image_size: int = 224,
) -> tuple[np.ndarray, list[str], CacheStats]:
    """L2-normalised descriptors (N, D) float32 of `frames`, their image hashes, and cache hit/miss counts.

    Only frames missing from the cache are read and encoded, `batch_size` at a time; the cache is rewritten
    once at the end (atomically), keeping entries of frames this run did not ask for.
    """
    hashes = [image_hash(frame) for frame in progress(frames, desc="hashing frames")]
    known = cache.load() if cache is not None else {}
    missing = [i for i, (frame, digest) in enumerate(zip(frames, hashes)) if (frame.key, digest) not in known]
    batches = [missing[s : s + batch_size] for s in range(0, len(missing), batch_size)]
    for batch in progress(batches, desc="describing frames"):
        vectors = _encode_batch([frames[i] for i in batch], encoder, image_size)
        known.update({(frames[i].key, hashes[i]): vector for i, vector in zip(batch, vectors)})
    if cache is not None and missing:
        cache.save(known)
    descriptors = np.stack([known[(frame.key, digest)] for frame, digest in zip(frames, hashes)])
    return descriptors.astype(np.float32), hashes, CacheStats(hits=len(frames) - len(missing), misses=len(missing))
