"""Loading wavs (stereo, other rates, short, silent, corrupt, empty) and building ImageBind's clip input."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from moca.data.audio import AudioConfig, clip_bounds, clip_melspec, frame_audio_input, load_waveform, resample
from moca.errors import ConfigError, DataError

EPS_LOG = math.log(torch.finfo(torch.float32).eps)


def write_wav(path: Path, data: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), data, rate, subtype="FLOAT")
    return path


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_mono_16k_is_read_unchanged(tmp_path: Path) -> None:
    data = tone(440, 0.5, 16000)
    wave = load_waveform(write_wav(tmp_path / "a.wav", data, 16000))
    assert wave.dtype == torch.float32 and wave.shape == (8000,)
    np.testing.assert_array_equal(wave.numpy(), data)


def test_stereo_is_averaged(tmp_path: Path) -> None:
    left, right = tone(440, 0.5, 16000), np.full(8000, 0.25, dtype=np.float32)
    wave = load_waveform(write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000))
    np.testing.assert_allclose(wave.numpy(), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_rates_are_resampled_keeping_the_tone(tmp_path: Path, rate: int) -> None:
    wave = load_waveform(write_wav(tmp_path / "r.wav", tone(440, 1.0, rate), rate))
    assert wave.shape == (math.ceil(rate * 16000 / rate),)  # ceil(n * new / orig) with n = rate samples
    expected = tone(440, 1.0, 16000)
    # away from the edges (the filter sees zeros beyond them) the resampled tone is the 16 kHz tone
    np.testing.assert_allclose(wave.numpy()[200:-200], expected[200:-200], atol=2e-3)


def test_resample_is_identity_at_equal_rates_and_counts_samples() -> None:
    x = torch.randn(2, 1000)
    assert resample(x, 16000, 16000) is x
    assert resample(x, 44100, 16000).shape == (2, math.ceil(1000 * 160 / 441))


def test_silent_audio_is_allowed_and_sits_on_the_log_floor(tmp_path: Path) -> None:
    wave = load_waveform(write_wav(tmp_path / "q.wav", np.zeros(32000, np.float32), 16000))
    cfg = AudioConfig()
    spec = clip_melspec(wave, cfg)
    assert torch.all(spec[..., :198] == EPS_LOG) and torch.all(spec[..., 198:] == 0)


def test_empty_wav_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(DataError, match="empty.wav.*empty audio"):
        load_waveform(path)


def test_corrupt_and_missing_wav_are_refused_naming_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    before = corrupt.read_bytes()
    with pytest.raises(DataError, match="corrupt.wav"):
        load_waveform(corrupt)
    assert corrupt.read_bytes() == before  # nothing on disk is touched
    with pytest.raises(DataError, match="missing.wav"):
        load_waveform(tmp_path / "missing.wav")


def test_clip_bounds_match_imagebind_sampler_and_centering() -> None:
    clip_cfg = AudioConfig(window="clip")
    assert clip_bounds(5.0, None, clip_cfg) == [(0, 2), (Fraction(3, 2), Fraction(7, 2)), (3, 5)]
    assert clip_bounds(1.0, None, clip_cfg) == [(0, 2)] * 3  # shorter than a clip: every clip starts at 0
    centred = AudioConfig()
    assert clip_bounds(5.0, 2.9375, centred) == [(Fraction(1.9375), Fraction(3.9375))]
    assert clip_bounds(5.0, 0.9375, centred) == [(0, 2)]  # shifted right to stay inside the file
    assert clip_bounds(5.0, 4.9375, centred) == [(3, 5)]  # shifted left
    assert clip_bounds(1.0, 0.5, centred) == [(0, 2)]


def test_frame_input_shape_and_normalisation() -> None:
    torch.manual_seed(0)
    wave = torch.randn(80000) * 0.1
    cfg = AudioConfig()
    out = frame_audio_input(wave, 2.9375, cfg)
    assert out.shape == (1, 1, 128, 204)
    raw = clip_melspec(wave[31000:63000], cfg)  # 1.9375 s .. 3.9375 s at 16 kHz
    assert torch.equal(out[0], (raw - cfg.mean) / cfg.std)
    assert frame_audio_input(wave, None, AudioConfig(window="clip")).shape == (3, 1, 128, 204)


def test_too_short_audio_is_padded() -> None:
    cfg = AudioConfig()
    spec = clip_melspec(torch.full((100,), 0.1), cfg)  # under one 25 ms window: padded to 400 samples, 1 frame
    assert spec.shape == (1, 128, 204) and torch.all(spec[..., 1:] == 0)
    spec = clip_melspec(torch.randn(16000), cfg)  # 1 s: 98 frames, then zeros to 204 as ImageBind pads
    assert torch.all(spec[..., 98:] == 0) and torch.all(spec[..., :98] != 0)
    assert frame_audio_input(torch.randn(100), 0.5, cfg).shape == (1, 1, 128, 204)


def test_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="window"):
        AudioConfig(window="middle")
    with pytest.raises(ConfigError, match="std"):
        AudioConfig(std=0)
