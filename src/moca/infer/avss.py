"""Zero-shot class labels for AVSS (method.md item 10): MoCA is class-agnostic, so its binary masks are named by
ImageBind's text embeddings of the 70 AVSS class names.

For each frame, the predicted foreground (from a `moca infer` run on AVSS) is cut out with everything else blurred,
as OWOD-BIND does for its crops, embedded with ImageBind's vision tower, and compared with the text embeddings of
"a photo of a {class}." for the 70 sounding classes; the best class paints the mask, background stays 0. The
output, `OUT/{key}.npy` int64 class maps (+ a palette PNG for viewing), is scored with `--protocol semantic`.

One class per frame: a frame with several sources of different classes (AVSS v1m) gets the class of their union;
splitting masks into instances would need the individual SAM proposals.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from moca.data.layout import list_videos
from moca.data.palette import AVSS_CLASSES, index_to_colour
from moca.errors import DataError
from moca.evaluate import read_prediction
from moca.infer.outputs import AVSS_EVAL_SIZE, load_frame
from moca.io import atomic_write_bytes, write_json
from moca.models import WeightsSpec
from moca.progress import progress

MANIFEST = "label_manifest.json"
PROMPT = "a photo of a {}."


def class_prompts(classes: tuple[str, ...] = AVSS_CLASSES) -> list[str]:
    """Text prompts for the sounding classes (background, index 0, is never a label): 'emergency-car' -> words."""
    return [PROMPT.format(name.replace("-", " ")) for name in classes[1:]]


def best_class(crop_embedding: torch.Tensor, text_embeddings: torch.Tensor) -> int:
    """AVSS class index (1..70) whose text embedding (row i = class i + 1) is most similar to the crop's."""
    return int((text_embeddings @ crop_embedding).argmax()) + 1


def paint(mask: np.ndarray, class_index: int) -> np.ndarray:
    """(H, W) int64 class map: `class_index` on the mask, background (0) elsewhere."""
    return np.where(mask, class_index, 0).astype(np.int64)


def _save(out: Path, key: str, classes: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, classes, allow_pickle=False)
    atomic_write_bytes(out / f"{key}.npy", buffer.getvalue())
    png = io.BytesIO()
    Image.fromarray(index_to_colour(classes)).save(png, format="PNG")
    atomic_write_bytes(out / f"{key}.png", png.getvalue())


@torch.no_grad()
def label_predictions(pred_dir: str | Path, data_root: str | Path, split: str, out_dir: str | Path,
                      imagebind: str = "imagebind_huge", weights: WeightsSpec | str | None = None,
                      blur_kernel: int = 21) -> dict:
    """Label the binary AVSS predictions in `pred_dir` with AVSS classes; returns the manifest written to `out_dir`."""
    from moca.baselines.owod_bind import blurred_crops
    from moca.data.datasets import avss_eval_image
    from moca.models import build_model, encode_text
    from moca.models.imagebind import VISION, embed
    from moca.models.registry import usable_weights

    pred_dir, out = Path(pred_dir), Path(out_dir)
    if not pred_dir.is_dir():
        raise DataError(pred_dir, "prediction folder not found")
    started = time.perf_counter()
    weights = usable_weights(imagebind, weights, "--imagebind-weights")
    if weights is None:
        torch.manual_seed(0)  # random-init backbone (tests/demo): the same one every run
    model = build_model(imagebind, weights)
    texts = encode_text(model, class_prompts())
    counts = {"frames": 0, "labelled": 0, "empty": 0}
    for video in progress(list_videos(data_root, "avss", split), desc=f"label avss/{split}"):
        for frame in (f for f in video.frames if f.mask is not None):
            mask = read_prediction(pred_dir, frame, AVSS_EVAL_SIZE, "binary") > 0.5
            counts["frames"] += 1
            if not mask.any():
                counts["empty"] += 1
                _save(out, frame.key, paint(mask, 0))
                continue
            rgb = load_frame(frame, "avss")
            rows, cols = np.nonzero(mask)
            box = torch.tensor([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], dtype=torch.float32)
            (crop,) = blurred_crops(rgb, torch.from_numpy(mask)[None], box, blur_kernel)
            crop_embedding = embed(model, VISION, avss_eval_image(crop)[None])[0]
            _save(out, frame.key, paint(mask, best_class(crop_embedding, texts)))
            counts["labelled"] += 1
    manifest = {"kind": "moca-avss-labels", "method": "moca-zero-shot-labels", "source": str(pred_dir),
                "imagebind": imagebind, "prompt": PROMPT, "counts": counts,
                "seconds": round(time.perf_counter() - started, 3)}
    write_json(out / MANIFEST, manifest)
    return manifest
