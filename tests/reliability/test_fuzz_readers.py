"""Structure-aware fuzzing of the readers (tests/data/test_fuzz.py feeds them random bytes; this feeds them *nearly
valid* files, which reach much deeper into PIL, libsndfile and pandas): a real PNG or wav damaged by truncation or
flipped bytes, PNGs in every mode and bit depth, wavs at any rate, width and channel count, and metadata CSVs whose
names try to escape the dataset root. The only acceptable outcomes are a value or a DataError naming the file;
every example has a deadline, so a hang fails the test instead of stalling CI.
"""

from __future__ import annotations

import io
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from moca.data.layout import list_videos
from moca.data.readers import read_image, read_mask, read_wav
from moca.errors import DataError

FUZZ = settings(max_examples=60, deadline=timedelta(seconds=5), derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
PNG_MODES = ["1", "L", "P", "RGB", "RGBA", "I;16", "LA"]


def _png_bytes(mode: str, width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "I;16":  # 16-bit grey: PIL cannot convert to it, only build it from uint16 data
        image = Image.fromarray(rng.integers(0, 2**16, (height, width), dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _wav_bytes(rate: int, channels: int, frames: int, subtype: str, seed: int) -> bytes:
    samples = np.random.default_rng(seed).uniform(-1, 1, (frames, channels))
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def _damage(data: bytes, cut: float | None, flips: list[tuple[float, int]]) -> bytes:
    """Truncate at a fraction of the length, and/or XOR bytes at fractional positions (header and body alike)."""
    damaged = bytearray(data[: int(len(data) * cut)] if cut is not None else data)
    for where, mask in flips:
        if damaged:
            damaged[int(where * (len(damaged) - 1))] ^= mask
    return bytes(damaged)


def _value_or_named_error(call, path: Path) -> None:
    try:
        call()
    except DataError as exc:
        assert str(path) in str(exc)


damage = st.tuples(st.none() | st.floats(0, 1), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4))


@FUZZ
@given(mode=st.sampled_from(PNG_MODES), width=st.integers(1, 48), height=st.integers(1, 48),
       seed=st.integers(0, 2**16), damage=damage, benchmark=st.sampled_from(["s4", "ms3", "avss"]))
def test_damaged_png_in_any_mode_is_read_or_refused_by_name(mode, width, height, seed, damage, benchmark) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frame.png"
        path.write_bytes(_damage(_png_bytes(mode, width, height, seed), *damage))
        _value_or_named_error(lambda: read_image(path), path)
        _value_or_named_error(lambda: read_mask(path, benchmark), path)


@FUZZ
@given(rate=st.sampled_from([1, 8000, 16000, 22050, 44100, 96000]), channels=st.integers(1, 4),
       frames=st.integers(0, 400), subtype=st.sampled_from(["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8"]),
       seed=st.integers(0, 2**16), damage=damage)
def test_damaged_wav_of_any_shape_is_read_or_refused_by_name(rate, channels, frames, subtype, seed, damage) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audio.wav"
        path.write_bytes(_damage(_wav_bytes(rate, channels, frames, subtype, seed), *damage))
        try:
            samples, got_rate = read_wav(path)
        except DataError as exc:
            assert str(path) in str(exc)
            return
        # Whatever is returned must be what the readers promise: finite float32 in [-1, 1], (channels, n > 0).
        assert samples.dtype == np.float32 and samples.ndim == 2 and samples.shape[1] > 0
        assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0 and got_rate > 0


# Names a hostile or careless metadata drop may carry: traversal, absolute paths, Windows separators, NUL, blanks.
HOSTILE = ["..", "../x", "../../etc/passwd", "/etc/passwd", "a/../../b", "\\..\\x", "C:\\x", "x\x00y", "", " ",
           ".", "~", "a/b", "ok"]
S4_CATEGORIES = ["dog", "..", "/abs", "a/../..", "cat"]


@FUZZ
@given(rows=st.lists(st.tuples(st.sampled_from(HOSTILE) | st.text(alphabet="./\\ab~", max_size=8),
                               st.sampled_from(S4_CATEGORIES), st.sampled_from(["train", "val", "test"])),
                     min_size=1, max_size=6))
def test_metadata_paths_never_escape_the_root(rows) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "avsbench"
        csv = root / "Single-source" / "s4_meta_data.csv"
        csv.parent.mkdir(parents=True)
        lines = ["name,start,category,split"] + [f'"{name}",0,"{cat}",{split}' for name, cat, split in rows]
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            videos = list_videos(root, "s4")
        except DataError as exc:
            assert str(csv) in str(exc)
            return
        resolved_root = root.resolve()
        for video in videos:  # a listing that was accepted must only ever point inside the dataset root
            paths = [video.audio] + [p for f in video.frames for p in (f.image, f.mask) if p is not None]
            for path in paths:
                assert Path(path).resolve().is_relative_to(resolved_root), (video.name, path)
