"""Tiny hand-built AVSBench trees with every layout quirk, written with PIL/soundfile (not by the generator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from avs_files import frame, save_png, save_wav, square_mask
from PIL import Image

from moca.data.palette import avss_palette


@pytest.fixture
def s4_root(tmp_path: Path) -> Path:
    """Two S4 videos: `vidA` in train (mask for frame 1 only) and `vidB` in test (masks for frames 1-5)."""
    root = tmp_path / "avsbench"
    meta = root / "Single-source/s4_meta_data.csv"
    meta.parent.mkdir(parents=True)
    meta.write_text("name,start,category,split\nvidA,0,dog_barking,train\nvidB,3,male_speech,test\n")
    base = root / "Single-source/s4_data"
    for name, category, split in [("vidA", "dog_barking", "train"), ("vidB", "male_speech", "test")]:
        for k in range(1, 6):
            save_png(base / "visual_frames" / split / category / name / f"{name}_{k}.png", frame(10 * k))
            if split != "train" or k == 1:
                save_png(base / "gt_masks" / split / category / name / f"{name}_{k}.png", square_mask(), "L")
        save_wav(base / "audio_wav" / split / category / f"{name}.wav")
    return root


@pytest.fixture
def ms3_root(tmp_path: Path) -> Path:
    """One MS3 video: `.mp4_` frame names with no split folder, palette masks (index 1 foreground)."""
    root = tmp_path / "avsbench"
    meta = root / "Multi-sources/ms3_meta_data.csv"
    meta.parent.mkdir(parents=True)
    meta.write_text("video_id,split\nclipM,val\n")
    base = root / "Multi-sources/ms3_data"
    for k in range(1, 6):
        save_png(base / "visual_frames/clipM" / f"clipM.mp4_{k}.png", frame(20 * k))
        mask = Image.fromarray(square_mask(on=1), "P")
        mask.putpalette(avss_palette(256).flatten().tolist())
        path = base / "gt_masks/val/clipM" / f"clipM_{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        mask.save(path)
    save_wav(base / "audio_wav/val/clipM.wav", channels=2)
    return root


@pytest.fixture
def avss_root(tmp_path: Path) -> Path:
    """AVSS: a v1s train clip (label for frame 0 only), a v1m test clip, a v2 test clip (10 frames, 10 s),
    frames 320x240 JPG as in the release, colour-coded labels."""
    root = tmp_path / "avss"
    root.mkdir()
    (root / "metadata.csv").write_text(
        "vid,uid,s_min,s_sec,a_obj,split,label\n"
        "a,uS,0,0,dog,train,v1s\nb,uM,0,0,dog_man,test,v1m\nc,u2,0,0,man,test,v2\n"
    )
    palette = avss_palette()
    for uid, label, frames, annotated in [("uS", "v1s", 5, 1), ("uM", "v1m", 5, 5), ("u2", "v2", 10, 10)]:
        for i in range(frames):
            path = root / label / uid / "frames" / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame(100, (240, 320))).save(path)
            if i < annotated:
                labels = np.zeros((240, 320), np.int64)
                labels[:120, :160] = 17  # dog
                labels[120:, 160:] = 41  # man
                save_png(root / label / uid / "labels_rgb" / f"{i}.png", palette[labels])
        save_wav(root / label / uid / "audio.wav", seconds=float(frames))
    return root
