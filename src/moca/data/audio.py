"""ImageBind's audio front end in plain torch: wav -> 16 kHz mono -> Kaldi fbank clips (method.md item 1).

ImageBind calls `torchaudio.compliance.kaldi.fbank` (pure torch) and `torchaudio.functional.resample`; torchaudio's
loader now needs torchcodec, so both are reimplemented here, following torchaudio's code step by step (same float32
arithmetic, same order of operations), and only for the arguments ImageBind passes:

    fbank(w, htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
          num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10)

plus torchaudio's defaults for the rest: remove_dc_offset, preemphasis 0.97, round_to_power_of_two (512-point
FFT), snip_edges, power spectrum, log with a float32-epsilon floor, low_freq 20 Hz, high_freq = Nyquist.
(`htk_compat` only reorders the energy column, which `use_energy=False` drops, so it changes nothing here.)

Behaviour on awkward input (see docs/metrics.md, "Audio"):
- stereo / multi-channel: mean over channels (ImageBind's fbank would read channel 0 only; AVSBench is mono).
- other sample rates: windowed-sinc resampling exactly as torchaudio's default (Hann window, 6 zero crossings,
  rolloff 0.99), i.e. what ImageBind does.
- shorter than a clip: the clip keeps the samples that exist and its spectrogram is zero-padded to 204 frames, as
  ImageBind does; a clip shorter than one 25 ms window is first zero-padded to one window (ImageBind would crash).
- silent: allowed; every fbank value is log(float32 eps) ~= -15.94 before normalisation.
- empty (no samples), unreadable, or non-finite samples: DataError naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from moca.data.readers import read_wav
from moca.errors import ConfigError

WINDOWS = ("centered", "clip")
# torchaudio's log floor and epsilon: float32 machine epsilon.
_EPSILON = torch.tensor(torch.finfo(torch.float32).eps)


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 16000
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    target_length: int = 204  # fbank frames per clip after pad/cut
    clip_duration_s: float = 2.0
    clips_per_video: int = 3  # used by window="clip"
    mean: float = -4.268
    std: float = 9.138
    # "centered": one 2 s clip centred on the frame time; "clip": ImageBind's 3 clips spread over the whole file.
    window: str = "centered"

    def __post_init__(self) -> None:
        if self.window not in WINDOWS:
            raise ConfigError(f"audio.window: {self.window!r} is not one of {WINDOWS}")
        for name in ("sample_rate", "num_mel_bins", "frame_length_ms", "frame_shift_ms", "target_length",
                     "clip_duration_s", "clips_per_video", "std"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ConfigError(f"audio.{name} must be positive, got {getattr(self, name)!r}")


# ---------------------------------------------------------------------------------------------- Kaldi fbank


def mel_scale(freq: torch.Tensor | float) -> torch.Tensor | float:
    """HTK mel scale, as Kaldi and torchaudio use it: 1127 ln(1 + f / 700)."""
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


def mel_filter_bank(
    num_bins: int, padded_window_size: int, sample_rate: float, low_freq: float = 20.0, high_freq: float = 0.0
) -> torch.Tensor:
    """Triangular mel filters (num_bins, padded_window_size // 2 + 1), float32, as torchaudio's `get_mel_banks`.

    Triangles are equally spaced on the mel scale between low_freq and high_freq (<= 0 means Nyquist + high_freq)
    and evaluated at the FFT bin centres. The Nyquist column is always 0 (torchaudio pads it on). With few FFT
    bins per filter at low frequencies a filter can cover no bin centre and be all zero: at 16 kHz, 25 ms
    (512-point FFT) and 128 bins exactly one is (kaldi-native-fbank refuses that setting for this reason).
    """
    if num_bins <= 3 or padded_window_size % 2:
        raise ValueError(f"need num_bins > 3 and an even window, got {num_bins}, {padded_window_size}")
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"bad band edges low={low_freq} high={high_freq} for Nyquist {nyquist}")
    fft_bin_width = sample_rate / padded_window_size
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high_freq)
    mel_delta = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + index * mel_delta
    center = mel_low + (index + 1.0) * mel_delta
    right = mel_low + (index + 2.0) * mel_delta
    mel = mel_scale(fft_bin_width * torch.arange(padded_window_size / 2)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))
    return torch.nn.functional.pad(banks, (0, 1), mode="constant", value=0)


def kaldi_fbank(
    waveform: torch.Tensor,
    sample_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    dither: float = 0.0,
    preemphasis: float = 0.97,
    remove_dc_offset: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> torch.Tensor:
    """Log mel filter bank energies (frames, num_mel_bins) of a 1-D waveform, matching torchaudio's Kaldi fbank
    with window_type="hanning", use_energy=False (ImageBind's call). Frames: 1 + (n - window) // shift."""
    if waveform.dim() != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {tuple(waveform.shape)}")
    window_size = int(sample_rate * frame_length * 0.001)
    window_shift = int(sample_rate * frame_shift * 0.001)
    if not (2 <= window_size <= len(waveform)):
        raise ValueError(f"waveform of {len(waveform)} samples is shorter than one {window_size}-sample window")
    padded = 2 ** (window_size - 1).bit_length()  # FFT size: the next power of two (400 -> 512)
    dtype = waveform.dtype
    num_frames = 1 + (len(waveform) - window_size) // window_shift
    # snip_edges=True: only whole windows, as a strided view (no copy).
    frames = waveform.as_strided((num_frames, window_size), (window_shift * waveform.stride(0), waveform.stride(0)))
    if dither != 0.0:
        x = torch.max(_EPSILON.to(dtype), torch.rand(frames.shape, dtype=dtype))
        frames = frames + torch.sqrt(-2 * x.log()) * torch.cos(2 * math.pi * x) * dither
    if remove_dc_offset:
        frames = frames - frames.mean(dim=1, keepdim=True)
    if preemphasis != 0.0:
        # y[i] = x[i] - 0.97 x[i-1], with x[-1] := x[0] (Kaldi's rule for the first sample)
        previous = torch.nn.functional.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)
        frames = frames - preemphasis * previous[:, :-1]
    frames = frames * torch.hann_window(window_size, periodic=False, dtype=dtype).unsqueeze(0)
    frames = torch.nn.functional.pad(frames, (0, padded - window_size))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    banks = mel_filter_bank(num_mel_bins, padded, sample_rate, low_freq, high_freq).to(dtype)
    return torch.max(torch.mm(power, banks.T), _EPSILON.to(dtype)).log()


# ---------------------------------------------------------------------------------------------- loading


def resample(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """Band-limited resampling of (..., n), identical to torchaudio.functional.resample's default.

    Polyphase form: both rates are divided by their gcd; each of the `new` output phases is a windowed-sinc
    filter (Hann window, 6 zero crossings, cut-off 0.99 x the lower Nyquist) applied with stride `orig`.
    Output length: ceil(n * new / orig).
    """
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    zero_crossings, rolloff = 6, 0.99
    base_freq = min(orig, new) * rolloff
    width = math.ceil(zero_crossings * orig / base_freq)
    dtype = waveform.dtype
    idx = torch.arange(-width, width + orig, dtype=dtype)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype)[:, None, None] / new + idx
    t = (t * base_freq).clamp_(-zero_crossings, zero_crossings)
    window = torch.cos(t * math.pi / zero_crossings / 2) ** 2
    t = t * math.pi
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t) * window * (base_freq / orig)
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])
    length = flat.shape[1]
    flat = torch.nn.functional.pad(flat, (width, width + orig))
    out = torch.nn.functional.conv1d(flat[:, None], kernels, stride=orig)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)[..., : math.ceil(new * length / orig)]
    return out.reshape(shape[:-1] + out.shape[-1:])


def load_waveform(path: str | Path, sample_rate: int = 16000, data: bytes | None = None) -> torch.Tensor:
    """Mono float32 waveform (n,) at `sample_rate`: channels averaged, resampled if needed (module docstring).
    With `data`, the WAV bytes are decoded instead of the file and `path` only names them in errors."""
    samples, rate = read_wav(path, data)  # DataError for missing, undecodable, empty or non-finite audio
    mono = torch.from_numpy(samples).mean(dim=0)
    return resample(mono, rate, sample_rate)


# ---------------------------------------------------------------------------------------------- model input


def clip_bounds(duration_s: float, time_s: float | None, cfg: AudioConfig) -> list[tuple[Fraction, Fraction]]:
    """(start, end) seconds of each clip.

    "clip": pytorchvideo's ConstantClipsPerVideoSampler, as ImageBind uses it: `clips_per_video` starts spread
    evenly over [0, duration - clip] (all at 0 when the file is shorter than a clip).
    "centered": one clip centred on `time_s`, shifted to stay inside the file so it holds a full clip of real
    audio whenever the file is long enough.
    """
    clip = Fraction(cfg.clip_duration_s)
    if cfg.window == "clip":
        last_start = Fraction(max(duration_s - cfg.clip_duration_s, 0))
        step = last_start / max(cfg.clips_per_video - 1, 1)
        return [(step * i, step * i + clip) for i in range(cfg.clips_per_video)]
    if time_s is None:
        raise ValueError('window="centered" needs the frame time')
    start = Fraction(time_s) - clip / 2
    start = max(min(start, Fraction(duration_s) - clip), Fraction(0))
    return [(start, start + clip)]


def clip_melspec(clip: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """ImageBind's waveform2melspec: (1, mel, target_length) log-mel of one clip, zero-padded or cut in time."""
    window = int(cfg.sample_rate * cfg.frame_length_ms * 0.001)
    clip = clip - clip.mean()
    if len(clip) < window:
        clip = torch.nn.functional.pad(clip, (0, window - len(clip)))
    spec = kaldi_fbank(clip, cfg.sample_rate, cfg.num_mel_bins, cfg.frame_length_ms, cfg.frame_shift_ms).T
    missing = cfg.target_length - spec.shape[1]
    spec = torch.nn.functional.pad(spec, (0, missing)) if missing > 0 else spec[:, : cfg.target_length]
    return spec.unsqueeze(0)


def frame_audio_input(waveform: torch.Tensor, time_s: float | None, cfg: AudioConfig) -> torch.Tensor:
    """Normalised ImageBind audio input (clips, 1, num_mel_bins, target_length) for a frame at `time_s`
    (ignored, and may be None, with window="clip", whose clips cover the whole file)."""
    if waveform.dim() != 1 or len(waveform) == 0:
        raise ValueError(f"expected a non-empty 1-D waveform, got shape {tuple(waveform.shape)}")
    rate = cfg.sample_rate
    specs = [
        clip_melspec(waveform[int(start * rate) : int(end * rate)], cfg)
        for start, end in clip_bounds(len(waveform) / rate, time_s, cfg)
    ]
    return (torch.stack(specs) - cfg.mean) / cfg.std
