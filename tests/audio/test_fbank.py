"""The Kaldi fbank reimplementation against kaldi-native-fbank (80 bins) and the 128-bin filter bank's properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moca.data.audio import kaldi_fbank, mel_filter_bank, mel_scale

knf = pytest.importorskip("kaldi_native_fbank")


def knf_fbank(waveform: torch.Tensor, num_bins: int) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hanning"
    opts.mel_opts.num_bins = num_bins
    online = knf.OnlineFbank(opts)
    online.accept_waveform(16000, waveform.tolist())
    online.input_finished()
    return np.stack([online.get_frame(i) for i in range(online.num_frames_ready)])


def chirp(seconds: float = 1.0, rate: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return (0.3 * torch.sin(2 * math.pi * (50 * t + 3000 * t**2))).float()


@pytest.mark.parametrize("kind", ["noise", "chirp"])
def test_matches_kaldi_native_fbank_at_80_bins(kind: str) -> None:
    torch.manual_seed(0)
    noise = torch.randn(16000) * 0.1
    # the chirp gets a noise floor: bands with ~zero energy sit on the log floor, where float32 rounding of
    # tiny energies differs in relative terms between the two implementations
    wave = noise if kind == "noise" else chirp() + 0.5 * noise
    ours = kaldi_fbank(wave, num_mel_bins=80).numpy()
    ref = knf_fbank(wave, 80)
    assert ours.shape == ref.shape == (98, 80)
    np.testing.assert_allclose(ours, ref, atol=3e-4, rtol=0)


def test_frame_count_follows_snip_edges() -> None:
    for n in (400, 559, 560, 32000):
        assert kaldi_fbank(torch.zeros(n) + 0.1).shape == (1 + (n - 400) // 160, 128)
    with pytest.raises(ValueError, match="shorter than one"):
        kaldi_fbank(torch.zeros(399))


def test_htk_mel_formula() -> None:
    assert mel_scale(700.0 * (math.e - 1)) == pytest.approx(1127.0)
    assert mel_scale(0.0) == 0.0
    assert float(mel_scale(torch.tensor([1000.0]))[0]) == pytest.approx(1127.0 * math.log(1 + 1000 / 700), rel=1e-6)


def test_128_bin_bank_has_exactly_one_empty_filter() -> None:
    # 512-point FFT at 16 kHz: bin centres are 31.25 Hz apart, wider than the lowest mel triangles. Triangle 3
    # spans 62.96..93.01 Hz, strictly between the bin centres at 62.5 and 93.75 Hz, so it holds no bin.
    banks = mel_filter_bank(128, 512, 16000)
    assert banks.shape == (128, 257)
    empty = (banks.sum(dim=1) == 0).nonzero().flatten().tolist()
    assert empty == [3]
    assert mel_filter_bank(80, 512, 16000).sum(dim=1).min() > 0  # the setting kaldi-native-fbank accepts


def test_128_bin_bank_band_edges_and_shape() -> None:
    banks = mel_filter_bank(128, 512, 16000).double()
    freqs = torch.arange(257) * 31.25
    assert banks[:, -1].abs().sum() == 0  # Nyquist column padded with 0
    assert banks.min() >= 0 and banks.max() <= 1
    assert banks[:, freqs <= 20.0].sum() == 0  # nothing below low_freq = 20 Hz
    delta = (mel_scale(8000.0) - mel_scale(20.0)) / 129
    for index in (0, 64, 127):  # each triangle is zero outside its two neighbours' centres
        left, right = mel_scale(20.0) + index * delta, mel_scale(20.0) + (index + 2) * delta
        mels = 1127.0 * torch.log(1 + freqs / 700)
        outside = (mels <= left - 1e-3) | (mels >= right + 1e-3)
        assert banks[index, outside].sum() == 0
        assert banks[index, ~outside].sum() > 0


def test_empty_filter_floors_at_float32_eps_and_tone_lands_in_its_filter() -> None:
    t = torch.arange(16000, dtype=torch.float64) / 16000
    center_hz = 700 * (math.exp((mel_scale(20.0) + 101 * (mel_scale(8000.0) - mel_scale(20.0)) / 129) / 1127) - 1)
    tone = (0.5 * torch.sin(2 * math.pi * center_hz * t)).float()  # centre of filter 100
    feats = kaldi_fbank(tone)
    assert torch.all(feats[:, 3] == math.log(torch.finfo(torch.float32).eps))
    assert feats.mean(dim=0).argmax().item() == 100
