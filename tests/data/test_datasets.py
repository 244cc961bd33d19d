from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from moca.data.datasets import (
    CLIP_MEAN,
    CLIP_STD,
    EvalFrames,
    TrainFrames,
    WaveformAudio,
    avss_eval_mask,
    imagebind_image,
)
from moca.data.layout import VideoRef
from moca.data.palette import AVSS_CLASSES, avss_palette, colour_to_index


def fake_audio(video: VideoRef, time_s: float) -> torch.Tensor:
    """Stand-in for the audio front end: encodes the request so tests can see which window was asked for."""
    return torch.full((1, 1, 128, 204), time_s)


def test_train_frames_have_no_masks(s4_root: Path) -> None:
    dataset = TrainFrames(s4_root, "s4", audio_fn=fake_audio)
    assert len(dataset) == 5  # every frame of the train video, annotated or not
    item = dataset[2]
    assert item["image"].shape == (3, 224, 224) and item["image"].dtype == torch.float32
    assert item["audio"].shape == (1, 1, 128, 204) and item["audio"][0, 0, 0, 0] == pytest.approx(2 + 15 / 16)
    expected_ids = ("vidA", 2, "dog_barking/vidA/vidA_3", "dog_barking")
    assert (item["video"], item["frame"], item["key"], item["category"]) == expected_ids
    assert "mask" not in item
    expected = (30 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)  # frame 3 is uniform grey 30
    assert torch.allclose(item["image"][:, 100, 100], expected, atol=1e-6)
    # FrameStore protocol for the training loop: the same tensors by key
    assert torch.equal(dataset.image("dog_barking/vidA/vidA_3"), item["image"])


def test_eval_frames_skip_unannotated_frames(s4_root: Path) -> None:
    assert len(EvalFrames(s4_root, "s4", "train", audio_fn=fake_audio)) == 1  # S4 train: frame 1 only
    dataset = EvalFrames(s4_root, "s4", "test", with_audio=False)
    item = dataset[4]
    assert "audio" not in item and item["mask"].shape == (224, 224) and int(item["mask"].sum()) == 50 * 60


def test_avss_eval_resizes_and_pads(avss_root: Path) -> None:
    dataset = EvalFrames(avss_root, "avss", "test", audio_fn=fake_audio)
    assert len(dataset) == 10 + 10  # v1m padded from 5 to 10 frames, v2 has 10
    real, padded = dataset[0], dataset[7]
    assert real["mask"].shape == (224, 224) and real["mask"].dtype == torch.int64
    # nearest resize keeps the quadrants' classes exactly (320x240 -> 224x224)
    assert real["mask"][0, 0] == AVSS_CLASSES.index("dog") and real["mask"][-1, -1] == AVSS_CLASSES.index("man")
    assert set(real["mask"].unique().tolist()) == {0, 17, 41}
    assert padded["padded"] and not real["padded"]
    assert int(padded["mask"].sum()) == 0 and torch.count_nonzero(padded["audio"]) == 0
    black = (0 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(padded["image"][:, 5, 5], black)
    assert len(EvalFrames(avss_root, "avss", "test", pad_avss=False, audio_fn=fake_audio)) == 15


def test_imagebind_transform_matches_torchvision() -> None:
    rng = np.random.default_rng(0)
    reference = transforms.Compose(
        [
            transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert torch.equal(imagebind_image(image), reference(Image.fromarray(image)))
    assert imagebind_image(image).shape == (3, 224, 224)


def test_default_audio_is_the_imagebind_front_end(ms3_root: Path) -> None:
    audio = WaveformAudio()
    dataset = TrainFrames(ms3_root, "ms3", "val", audio_fn=audio)
    from moca.data.audio import AudioConfig, frame_audio_input, load_waveform

    first, last = dataset[0]["audio"], dataset[4]["audio"]
    assert first.shape[1:] == (1, 128, 204) and torch.isfinite(first).all()
    assert len(audio._waveforms) == 1  # the stereo wav was decoded once for both frames
    waveform = load_waveform(dataset.videos[0].audio)
    assert torch.equal(last, frame_audio_input(waveform, 4 + 15 / 16, AudioConfig()))  # frame 5's window


def test_avss_mask_resize_equals_resizing_the_colour_labels() -> None:
    labels = np.random.default_rng(0).integers(0, 71, (240, 320))
    colours = Image.fromarray(avss_palette()[labels]).resize((224, 224), Image.Resampling.NEAREST)
    assert np.array_equal(avss_eval_mask(labels), colour_to_index(np.asarray(colours)))
