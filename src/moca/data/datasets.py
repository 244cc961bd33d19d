"""PyTorch datasets over AVSBench frames: `TrainFrames` (no masks) and `EvalFrames` (with masks).

An item is one frame: a dict with `image` (3, 224, 224) float, normalised as ImageBind's vision transform does
(bicubic resize of the short side to 224, centre crop, CLIP mean/std), `audio` (clips, 1, 128, 204) for the
frame's time window, `video`, `frame` (index in the clip), `key` (the prediction name) and `category`; evaluation
items add `mask` (H, W): uint8 {0,1} for S4/MS3, int64 class indices for AVSS, and `padded`.

The audio part is injectable (`audio_fn(video, time_s) -> tensor`) so a precomputed-feature cache or a test
stand-in can replace the front end. The default decodes each video's wav once
(`moca.data.audio.load_waveform`) and cuts the frame's window from it (`frame_audio_input`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from moca.data.audio import AudioConfig, frame_audio_input, load_waveform
from moca.data.layout import FrameRef, VideoRef, list_videos
from moca.data.readers import read_image, read_mask

IMAGE_SIZE = 224
# ImageBind's vision transform uses the CLIP normalisation
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
AVSS_PADDED_FRAMES = 10  # the official AVSS loader pads every clip to the length of a v2 clip

AudioFn = Callable[[VideoRef, float], torch.Tensor]


def _normalise(rgb: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (tensor - mean) / std


@lru_cache(maxsize=4)
def _imagebind_transform(size: int) -> Callable[[Image.Image], torch.Tensor]:
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )


def imagebind_image(rgb: np.ndarray, size: int = IMAGE_SIZE) -> torch.Tensor:
    """ImageBind's vision transform, verbatim: short side -> `size` (bicubic), centre crop, CLIP mean/std."""
    return _imagebind_transform(size)(Image.fromarray(rgb))


def avss_eval_image(rgb: np.ndarray, size: int = IMAGE_SIZE) -> torch.Tensor:
    """The official AVSS evaluation resize: the whole frame, bilinear, to size x size (no crop)."""
    image = Image.fromarray(rgb)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return _normalise(np.asarray(image))


def avss_eval_mask(mask: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """PIL nearest-neighbour resize of a class-index map, as the official loader resizes its label images
    (nearest picks existing pixels, so resizing indices equals resizing the colours and mapping them after)."""
    if mask.shape == (size, size):
        return mask
    resized = Image.fromarray(mask.astype(np.int32), "I").resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(resized).astype(np.int64)


class WaveformAudio:
    """Default `audio_fn`: ImageBind audio input for a frame, decoding each video's wav once.

    Items of a video are usually requested together (sequential evaluation, or frames of a clip), so a small LRU
    of decoded waveforms avoids re-decoding the same file five times without holding a whole dataset in memory.
    """

    def __init__(self, cfg: AudioConfig | None = None, cache_videos: int = 8):
        self.cfg = cfg if cfg is not None else AudioConfig()
        self.cache_videos = cache_videos
        self._waveforms: OrderedDict[Path, torch.Tensor] = OrderedDict()

    def waveform(self, path: Path) -> torch.Tensor:
        if path in self._waveforms:
            self._waveforms.move_to_end(path)
        else:
            self._waveforms[path] = load_waveform(path, self.cfg.sample_rate)
            while len(self._waveforms) > self.cache_videos:
                self._waveforms.popitem(last=False)
        return self._waveforms[path]

    def __call__(self, video: VideoRef, time_s: float) -> torch.Tensor:
        return frame_audio_input(self.waveform(video.audio), time_s, self.cfg)


@dataclass(frozen=True)
class _Entry:
    video: VideoRef
    frame: FrameRef
    padded: bool = False  # an AVSS padding frame: black image, background mask


class _FrameDataset(torch.utils.data.Dataset):
    """Frames of one split, listed up front from the metadata; files are read per item."""

    def __init__(
        self,
        root: str | Path,
        benchmark: str,
        split: str,
        audio_fn: AudioFn | None = None,
        with_audio: bool = True,
    ):
        self.root, self.benchmark, self.split = Path(root), benchmark, split
        self.videos = list_videos(root, benchmark, split)
        self.entries = self._entries()
        self.with_audio = with_audio
        self.audio_fn = (audio_fn or WaveformAudio()) if with_audio else None
        self._by_key = {e.frame.key: i for i, e in enumerate(self.entries)}

    def _entries(self) -> list[_Entry]:
        return [_Entry(v, f) for v in self.videos for f in v.frames]

    def __len__(self) -> int:
        return len(self.entries)

    def _image(self, entry: _Entry) -> torch.Tensor:
        return imagebind_image(read_image(entry.frame.image))

    def _audio(self, entry: _Entry) -> torch.Tensor:
        assert self.audio_fn is not None
        return self.audio_fn(entry.video, entry.frame.time_s)

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        item: dict[str, Any] = {
            "image": self._image(entry),
            "video": entry.video.name,
            "frame": entry.frame.index,
            "key": entry.frame.key,
            "category": entry.video.category or "",
        }
        if self.with_audio:
            item["audio"] = self._audio(entry)
        return item

    # `moca.train.data.FrameStore`: frames by prediction key, for the pair-mining training loop
    def image(self, key: str) -> torch.Tensor:
        return self._image(self.entries[self._by_key[key]])

    def audio(self, key: str) -> torch.Tensor:
        return self._audio(self.entries[self._by_key[key]])


class TrainFrames(_FrameDataset):
    """Every frame of a split (default train), without masks: what unsupervised training and pair mining read."""

    def __init__(self, root: str | Path, benchmark: str, split: str = "train", **kwargs: Any):
        super().__init__(root, benchmark, split, **kwargs)


class EvalFrames(_FrameDataset):
    """Annotated frames of a split with their masks (frames without ground truth, like S4 train 2-5, are skipped).

    AVSS follows the official evaluation: images resized bilinear and masks nearest to 224x224, and with
    `pad_avss=True` each 5-frame clip is padded to 10 frames with black images and background masks, as the
    official loader does (the AVSS metric counts those frames).
    """

    def __init__(self, root: str | Path, benchmark: str, split: str = "test", pad_avss: bool = True, **kwargs: Any):
        self.pad_avss = pad_avss and benchmark == "avss"
        super().__init__(root, benchmark, split, **kwargs)

    def _entries(self) -> list[_Entry]:
        entries = []
        for video in self.videos:
            entries += [_Entry(video, f) for f in video.frames if f.mask is not None]
            if self.pad_avss:
                last = video.frames[-1]
                for i in range(len(video.frames), AVSS_PADDED_FRAMES):
                    key = f"{video.category}/{video.name}/padded/{i}"
                    entries.append(_Entry(video, FrameRef(i, last.image, None, key, last.time_s), padded=True))
        return entries

    def _image(self, entry: _Entry) -> torch.Tensor:
        if entry.padded:
            return _normalise(np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))
        if self.benchmark == "avss":
            return avss_eval_image(read_image(entry.frame.image))
        return super()._image(entry)

    def _audio(self, entry: _Entry) -> torch.Tensor:
        audio = super()._audio(entry)
        return torch.zeros_like(audio) if entry.padded else audio  # padded frames are silent

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = super().__getitem__(index)
        entry = self.entries[index]
        if entry.padded:
            mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.int64)
        else:
            assert entry.frame.mask is not None
            mask = read_mask(entry.frame.mask, self.benchmark)
            if self.benchmark == "avss":
                mask = avss_eval_mask(mask)
        item["mask"] = torch.from_numpy(np.ascontiguousarray(mask))
        item["padded"] = entry.padded
        return item
