"""Procedural AVSBench look-alike: the same folders, names, CSVs and mask formats, with scenes whose answer is known.

Each scene is a textured background with 2-5 moving objects. Every object belongs to one of `SYNTH_CLASSES`, a
class being a *look* (shape + colour + texture, shared by all videos, so DINO-like similarity can find same-class
frames) and a *sound* (harmonic tone, noise band, pulses, chirp...). Some objects sound, the others are silent
distractors of other classes drawn in exactly the same style and sizes, so a model that only looks cannot tell which
object is the source: it has to listen. The audio is the mix of the sounding objects' signatures plus light noise.
With `scene_context` > 0 a video's background is, with that probability, the *scene* of its sounding class (as a
concert hall goes with instruments): a frame-level cue shared by all its objects, so it does not say which object
sounds, but frames that look alike then tend to share their sound, as real videos do (docs/training.md).

Masks are exact: objects are drawn without anti-aliasing, in depth order, and each pixel remembers which object
painted it last, so a mask is precisely the visible part of the sounding objects (occlusion included).

Determinism: every video draws from its own generator seeded by (seed, video index), so the bytes written depend
only on the arguments, and a video's content does not change when N changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from moca.config import to_dict

# the readers' own path builders: the generator writes exactly where the readers will look
from moca.data.layout import (
    AVSS_SUBSETS,
    BENCHMARKS,
    FRAMES_PER_CLIP,
    SPLITS,
    _avss_video,
    _ms3_video,
    _s4_video,
    check_benchmark,
)
from moca.data.palette import AVSS_CLASSES, avss_palette
from moca.errors import ConfigError, DataError
from moca.progress import progress

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SynthClass:
    name: str
    shape: str
    colour: tuple[int, int, int]
    texture: str
    sound: str
    pitch_hz: float


# Twelve classes: every shape, colour, texture and sound is distinct, so each modality alone identifies the class.
SYNTH_CLASSES: tuple[SynthClass, ...] = (
    SynthClass("disc_harmonic", "disc", (220, 60, 50), "stripes", "harmonic", 220.0),
    SynthClass("square_noise", "square", (50, 110, 220), "checker", "noise", 1500.0),
    SynthClass("triangle_pulses", "triangle", (240, 200, 40), "dots", "pulses", 660.0),
    SynthClass("diamond_chirp", "diamond", (60, 190, 80), "rings", "chirp", 400.0),
    SynthClass("ring_square", "ring", (200, 70, 200), "solid", "square", 150.0),
    SynthClass("cross_tremolo", "cross", (250, 140, 30), "stripes", "tremolo", 880.0),
    SynthClass("star_harmonic", "star", (40, 200, 210), "checker", "harmonic", 330.0),
    SynthClass("hexagon_noise", "hexagon", (150, 90, 40), "dots", "noise", 4000.0),
    SynthClass("ellipse_pulses", "ellipse", (230, 230, 230), "rings", "pulses", 1200.0),
    SynthClass("crescent_chirp", "crescent", (120, 60, 230), "solid", "chirp", 900.0),
    SynthClass("bar_square", "bar", (30, 30, 30), "checker", "square", 95.0),
    SynthClass("plus_tremolo", "plus", (250, 120, 160), "dots", "tremolo", 520.0),
)


def avss_class_index(synth_class: int) -> int:
    """AVSS palette index used for synthetic class `synth_class` (0 is background, so classes start at 1)."""
    return synth_class + 1


@dataclass(frozen=True)
class SynthConfig:
    benchmark: str = "s4"
    videos: int = 20
    seed: int = 0
    image_size: int = 224
    sample_rate: int = 16000
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train, val, test
    distractors: tuple[int, int] = (1, 2)  # inclusive range of silent objects per video
    ms3_sources: tuple[int, int] = (2, 3)  # inclusive range of sounding objects for MS3 and AVSS v1m
    radius_px: tuple[float, float] = (24.0, 40.0)
    noise_level: float = 0.03  # background noise RMS relative to the sources' mix
    # Probability that a video's background is the *scene* of its (first) sounding class: a base colour and weave
    # direction of that class's own (`SCENES`, unrelated to any object's colour), as real scenes predict their
    # sounds (a concert hall, a kitchen). It is a frame-level cue, the same for every object of the frame, so
    # within a frame only listening still tells the source from the distractors; but frames that look alike now
    # tend to share the sounding class, which is what DINO-mined pairs rely on (docs/training.md). 0 keeps the
    # generator's bytes exactly as before.
    scene_context: float = 0.0
    png_compress_level: int = 1  # zlib level for PNG frames/masks: 1 is ~2x faster than PIL's 6, files ~10 % larger
    classes: int = field(default=len(SYNTH_CLASSES))

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ConfigError(f"synth: unknown benchmark {self.benchmark!r}; expected one of {BENCHMARKS}")
        if self.videos < 1:
            raise ConfigError(f"synth: videos must be >= 1, got {self.videos}")
        if not 3 <= self.classes <= len(SYNTH_CLASSES):
            raise ConfigError(f"synth: classes must be in 3..{len(SYNTH_CLASSES)}, got {self.classes}")
        if self.image_size < 64:
            raise ConfigError(f"synth: image_size must be >= 64, got {self.image_size}")
        if not 0.0 <= self.scene_context <= 1.0:
            raise ConfigError(f"synth: scene_context must be in [0, 1], got {self.scene_context}")


# ---------------------------------------------------------------------------------------------------------------
# Looks: shapes and textures as implicit functions of object-local coordinates (unit radius).


SHAPE_REACH = 1.15  # farthest point of any shape from its centre, in radii (the square's corner: 0.8 * sqrt(2))


def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r2 = x * x + y * y
    ax, ay = np.abs(x), np.abs(y)
    if shape == "disc":
        return r2 <= 1.0
    if shape == "square":
        return np.maximum(ax, ay) <= 0.8
    if shape == "diamond":
        return ax + ay <= 1.0
    if shape == "ring":
        return (r2 <= 1.0) & (r2 >= 0.5**2)
    if shape == "ellipse":
        return x * x + (y / 0.6) ** 2 <= 1.0
    if shape == "bar":
        return (ax <= 0.42) & (ay <= 1.0)
    if shape == "cross":  # an X: two diagonal bars
        u, v = (x + y) / np.sqrt(2), (x - y) / np.sqrt(2)
        return ((np.abs(u) <= 0.28) | (np.abs(v) <= 0.28)) & (r2 <= 1.0)
    if shape == "plus":
        return ((ax <= 0.3) & (ay <= 0.95)) | ((ay <= 0.3) & (ax <= 0.95))
    if shape == "crescent":
        return (r2 <= 1.0) & ((x - 0.45) ** 2 + y * y >= 0.75**2)
    if shape in {"triangle", "hexagon"}:  # intersection of half-planes along regular-polygon normals
        sides, apothem = (3, 0.5) if shape == "triangle" else (6, 0.87)
        inside = np.ones_like(x, dtype=bool)
        for k in range(sides):
            angle = -np.pi / 2 + 2 * np.pi * k / sides
            inside &= x * np.cos(angle) + y * np.sin(angle) <= apothem
        return inside
    if shape == "star":
        angle = np.arctan2(y, x)
        return np.sqrt(r2) <= 0.5 + 0.45 * np.cos(5 * angle) ** 2
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Brightness modulation in [0, 1] over the object, in its own rotating frame (so it moves with the object)."""
    if texture == "stripes":
        return 0.5 + 0.5 * np.sign(np.sin(6.0 * x))
    if texture == "checker":
        return ((np.floor(2.5 * x) + np.floor(2.5 * y)) % 2).astype(np.float32)
    if texture == "dots":
        return (np.sin(9.0 * x) * np.sin(9.0 * y) < 0.35).astype(np.float32)
    if texture == "rings":
        return 0.5 + 0.5 * np.sign(np.sin(10.0 * np.sqrt(x * x + y * y)))
    return np.ones_like(x)  # solid


# ---------------------------------------------------------------------------------------------------------------
# Sounds: one signature per class, RMS-normalised so that sources mix at comparable loudness.


def _band_noise(n: int, rate: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    return np.fft.irfft(spectrum, n)


def _signature(sound: str, pitch: float, t: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    two_pi_t = 2 * np.pi * t
    if sound == "harmonic":
        wave = sum(0.6**h * np.sin(two_pi_t * pitch * (h + 1)) for h in range(5))
    elif sound == "noise":
        wave = _band_noise(len(t), rate, pitch * 0.7, pitch * 1.4, rng)
    elif sound == "pulses":  # tone bursts, 4 per second, smooth-edged so they do not click
        gate = np.clip(3.0 * np.sin(2 * np.pi * 4.0 * t), 0.0, 1.0)
        wave = gate * np.sin(two_pi_t * pitch)
    elif sound == "chirp":  # upward sweep over one octave, restarting every half second
        phase = 0.5 * ((t * 2.0) % 1.0)  # seconds into the current sweep
        wave = np.sin(2 * np.pi * pitch * (phase + phase**2))
    elif sound == "square":  # odd harmonics only, 1/h amplitudes
        wave = sum(np.sin(two_pi_t * pitch * h) / h for h in range(1, 16, 2))
    elif sound == "tremolo":
        wave = (0.55 + 0.45 * np.sin(2 * np.pi * 6.0 * t)) * np.sin(two_pi_t * pitch)
    else:
        raise ValueError(f"unknown sound {sound!r}")
    wave = np.asarray(wave, dtype=np.float64)
    return wave / (np.sqrt(np.mean(wave**2)) + 1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Scenes.


@dataclass(frozen=True)
class SceneObject:
    synth_class: int
    sounding: bool
    radius: float
    start: tuple[float, float]
    end: tuple[float, float]
    wobble: float  # amplitude (px) of a slow sinusoidal sway on top of the straight path
    phase: float
    angle: float
    spin: float  # radians over the clip
    tint: float  # per-instance brightness jitter


# One scene per class for `scene_context`: muted base colours spread over the hue circle (in the backgrounds'
# usual 70-170 range, so a scene is not brighter or duller than a random background) and a weave direction.
SCENES: tuple[tuple[tuple[float, float, float], float], ...] = tuple(
    (tuple(round(120 + 45 * float(np.cos(2 * np.pi * ((k * 5 % 12) / 12 + third / 3))), 1) for third in range(3)),
     round(np.pi * k / 12, 4))
    for k in range(len(SYNTH_CLASSES))
)


def _background(size: int, rng: np.random.Generator, scene: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """A smooth textured background. `scene` (base colour, weave angle) replaces the random base colour and weave
    direction; the random draws still happen, so every other draw of `rng` (the audio's too) stays the same."""
    base = rng.uniform(70, 170, size=3)
    if scene is not None:
        base = scene[0]
    coarse = (base + rng.normal(0, 25, size=(5, 5, 3))).clip(0, 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, freq = rng.uniform(0, np.pi), rng.uniform(0.05, 0.15)
    if scene is not None:
        angle = scene[1]
    weave = 10.0 * np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))[..., None]
    # mottling at 1/8 resolution rather than per-pixel grain: it looks as busy but PNG-compresses ~2x faster
    mottle = (128 + rng.normal(0, 12, size=(size // 8, size // 8, 3))).clip(0, 255).astype(np.uint8)
    mottle = np.asarray(Image.fromarray(mottle).resize((size, size), Image.Resampling.BILINEAR), np.float32) - 128
    return (smooth + weave + mottle).clip(0, 255).astype(np.uint8)


def _place_objects(
    classes: list[int], sounding: list[bool], cfg: SynthConfig, rng: np.random.Generator
) -> list[SceneObject]:
    """Objects with straight-ish paths inside the frame, spaced so they rarely hide each other completely."""
    size, placed = cfg.image_size, []
    for cls, sounds in zip(classes, sounding):
        radius = rng.uniform(*cfg.radius_px) * size / 224
        margin = radius + 2
        for _attempt in range(40):  # rejection sampling; after 40 tries accept an overlap (the mask handles it)
            start = tuple(rng.uniform(margin, size - margin, 2))
            end = tuple(rng.uniform(margin, size - margin, 2))
            clear = all(
                min(np.hypot(*np.subtract(start, o.start)), np.hypot(*np.subtract(end, o.end)))
                > 0.9 * (radius + o.radius)
                for o in placed
            )
            if clear:
                break
        placed.append(
            SceneObject(
                synth_class=cls,
                sounding=sounds,
                radius=radius,
                start=start,  # type: ignore[arg-type]
                end=end,  # type: ignore[arg-type]
                wobble=float(rng.uniform(0, 6)),
                phase=float(rng.uniform(0, 2 * np.pi)),
                angle=float(rng.uniform(0, 2 * np.pi)),
                spin=float(rng.uniform(-1.0, 1.0)),
                tint=float(rng.uniform(0.85, 1.1)),
            )
        )
    order = rng.permutation(len(placed))  # depth order: later objects are drawn in front
    return [placed[i] for i in order]


def render_frame(
    objects: list[SceneObject], background: np.ndarray, progress_t: float
) -> tuple[np.ndarray, np.ndarray]:
    """The frame at clip position `progress_t` in [0, 1] and the owner map (index into `objects`, -1 = background)."""
    size = background.shape[0]
    image = background.copy()
    owner = np.full((size, size), -1, dtype=np.int16)
    for index, obj in enumerate(objects):
        cx = obj.start[0] + (obj.end[0] - obj.start[0]) * progress_t
        cy = obj.start[1] + (obj.end[1] - obj.start[1]) * progress_t
        cx += obj.wobble * np.sin(2 * np.pi * progress_t + obj.phase)
        cy += obj.wobble * np.cos(2 * np.pi * progress_t + obj.phase)
        r = obj.radius
        reach = SHAPE_REACH * r
        x0, x1 = max(int(cx - reach) - 1, 0), min(int(cx + reach) + 2, size)
        y0, y1 = max(int(cy - reach) - 1, 0), min(int(cy + reach) + 2, size)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = (xx + 0.5 - cx) / r, (yy + 0.5 - cy) / r
        angle = obj.angle + obj.spin * progress_t
        x = dx * np.cos(angle) + dy * np.sin(angle)
        y = -dx * np.sin(angle) + dy * np.cos(angle)
        inside = _shape_mask(SYNTH_CLASSES[obj.synth_class].shape, x, y)
        look = SYNTH_CLASSES[obj.synth_class]
        shade = 0.6 + 0.4 * _texture(look.texture, x, y)
        colour = (np.asarray(look.colour, np.float32) * obj.tint * shade[..., None]).clip(0, 255).astype(np.uint8)
        image[y0:y1, x0:x1][inside] = colour[inside]
        owner[y0:y1, x0:x1][inside] = index
    return image, owner


def mix_audio(objects: list[SceneObject], seconds: float, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Int16 mono: the sounding objects' signatures (pitch jittered per instance) plus light white noise."""
    n = int(round(seconds * cfg.sample_rate))
    t = np.arange(n) / cfg.sample_rate
    mix = np.zeros(n)
    for obj in objects:
        if obj.sounding:
            look = SYNTH_CLASSES[obj.synth_class]
            pitch = look.pitch_hz * rng.uniform(0.97, 1.03)
            mix += rng.uniform(0.7, 1.0) * _signature(look.sound, pitch, t, cfg.sample_rate, rng)
    mix += cfg.noise_level * np.sqrt(np.mean(mix**2)) * rng.standard_normal(n)
    mix *= 0.5 / (np.abs(mix).max() + 1e-12)  # headroom; PCM16 keeps the shape
    return np.round(mix * 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------------------------------
# The AVSBench layouts.


@dataclass(frozen=True)
class VideoPlan:
    index: int
    name: str
    split: str
    subset: str | None  # AVSS label (v1s/v1m/v2)
    frames: int
    objects: tuple[SceneObject, ...]


def split_plan(videos: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> list[str]:
    """Split of each video: the given fractions, at least one video per split when there are >= 3 videos."""
    if videos >= 3:
        val = max(1, int(round(videos * fractions[1])))
        test = max(1, int(round(videos * fractions[2])))
        counts = [videos - val - test, val, test]
    else:
        counts = [videos, 0, 0]
    splits = [s for s, c in zip(SPLITS, counts) for _ in range(c)]
    return [splits[i] for i in rng.permutation(videos)]


def _plan_video(index: int, split: str, cfg: SynthConfig) -> VideoPlan:
    rng = np.random.default_rng([cfg.seed, index, GENERATOR_VERSION])
    subset = tuple(AVSS_SUBSETS)[index % len(AVSS_SUBSETS)] if cfg.benchmark == "avss" else None
    if cfg.benchmark == "s4" or subset == "v1s":
        n_sources = 1
    elif subset == "v2":
        n_sources = int(rng.integers(1, cfg.ms3_sources[1] + 1))
    else:
        n_sources = int(rng.integers(cfg.ms3_sources[0], cfg.ms3_sources[1] + 1))
    n_distractors = int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))
    classes = [int(c) for c in rng.permutation(cfg.classes)[: n_sources + n_distractors]]
    objects = _place_objects(classes, [i < n_sources for i in range(len(classes))], cfg, rng)
    frames = AVSS_SUBSETS[subset] if subset else FRAMES_PER_CLIP
    name = f"synth{cfg.seed}_{index:05d}"
    return VideoPlan(index, name, split, subset, frames, tuple(objects))


def plan_videos(cfg: SynthConfig) -> list[VideoPlan]:
    """Every video's split and scene, exactly as `synthesize` draws them (for analyses that need the objects)."""
    splits = split_plan(cfg.videos, cfg.split_fractions, np.random.default_rng([cfg.seed, GENERATOR_VERSION]))
    return [_plan_video(i, split, cfg) for i, split in enumerate(splits)]


def frame_position(plan: VideoPlan, frame: int) -> float:
    """Clip position in [0, 1] at which frame `frame` of `plan` is rendered."""
    return frame / max(plan.frames - 1, 1)


def instance_masks(plan: VideoPlan, frame: int, image_size: int) -> np.ndarray:
    """(H, W) int16 owner map of frame `frame`: the index into `plan.objects` of the object that painted each pixel,
    -1 for background (occlusion included), exactly as the written frame was drawn. Object shapes do not depend on
    the background, so this re-renders them without touching any file: a pre-training corpus gets instance masks
    while its folders keep the AVSBench layout (`moca.standins` trains the SAM stand-in on them)."""
    blank = np.zeros((image_size, image_size, 3), np.uint8)
    return render_frame(list(plan.objects), blank, frame_position(plan, frame))[1]


def _sounding_mask(objects: tuple[SceneObject, ...], owner: np.ndarray) -> np.ndarray:
    sources = [i for i, o in enumerate(objects) if o.sounding]
    return np.isin(owner, sources)


def _class_map(objects: tuple[SceneObject, ...], owner: np.ndarray) -> np.ndarray:
    """AVSS class index per pixel: the sounding objects' classes, background (0) elsewhere (silent ones too)."""
    lut = np.array([avss_class_index(o.synth_class) if o.sounding else 0 for o in objects] + [0], dtype=np.int64)
    return lut[owner]  # owner -1 picks the trailing 0


def _save_png(image: Image.Image, path: Path, level: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", compress_level=level)


def _write_video(plan: VideoPlan, root: Path, cfg: SynthConfig) -> None:
    if cfg.benchmark == "s4":
        ref = _s4_video(root, plan.name, SYNTH_CLASSES[_first_source(plan)].name, plan.split)
    elif cfg.benchmark == "ms3":
        ref = _ms3_video(root, plan.name, plan.split)
    else:
        ref = _avss_video(root, plan.name, plan.subset, plan.split)  # type: ignore[arg-type]
    rng = np.random.default_rng([cfg.seed, plan.index, GENERATOR_VERSION, 1])
    background = _background(cfg.image_size, rng, video_scene(plan, cfg))
    ms3_palette = avss_palette(256).flatten().tolist()
    level = cfg.png_compress_level
    for frame in ref.frames:
        image, owner = render_frame(list(plan.objects), background, frame_position(plan, frame.index))
        frame.image.parent.mkdir(parents=True, exist_ok=True)
        if cfg.benchmark == "avss":
            Image.fromarray(image).save(frame.image, format="JPEG", quality=92)
        else:
            _save_png(Image.fromarray(image), frame.image, level)
        if frame.mask is None:
            continue
        if cfg.benchmark == "s4":
            mask = Image.fromarray(_sounding_mask(plan.objects, owner).astype(np.uint8) * 255, "L")
            _save_png(mask, frame.mask, level)
        elif cfg.benchmark == "ms3":
            mask = Image.fromarray(_sounding_mask(plan.objects, owner).astype(np.uint8), "P")
            mask.putpalette(ms3_palette)
            _save_png(mask, frame.mask, level)
        else:
            _save_png(Image.fromarray(avss_palette()[_class_map(plan.objects, owner)]), frame.mask, level)
    ref.audio.parent.mkdir(parents=True, exist_ok=True)
    audio = mix_audio(list(plan.objects), float(plan.frames), cfg, rng)
    soundfile.write(ref.audio, audio, cfg.sample_rate, subtype="PCM_16", format="WAV")


def video_scene(plan: VideoPlan, cfg: SynthConfig) -> tuple[np.ndarray, float] | None:
    """The scene (base colour, weave angle) of the video's first sounding class with probability `scene_context`,
    jittered per video; None: a random background. Drawn from the video's own scene generator."""
    if cfg.scene_context <= 0:
        return None
    rng = np.random.default_rng([cfg.seed, plan.index, GENERATOR_VERSION, 2])
    if rng.random() >= cfg.scene_context:
        return None
    colour, angle = SCENES[_first_source(plan)]
    return np.asarray(colour) + rng.normal(0, 8, size=3), angle + float(rng.normal(0, 0.1))


def _first_source(plan: VideoPlan) -> int:
    return next(o.synth_class for o in plan.objects if o.sounding)


def _metadata_csv(plans: list[VideoPlan], benchmark: str) -> tuple[Path, str]:
    if benchmark == "s4":
        rows = ["name,start,category,split"]
        rows += [f"{p.name},0,{SYNTH_CLASSES[_first_source(p)].name},{p.split}" for p in plans]
        return Path("Single-source/s4_meta_data.csv"), "\n".join(rows) + "\n"
    if benchmark == "ms3":
        rows = ["video_id,split"] + [f"{p.name},{p.split}" for p in plans]
        return Path("Multi-sources/ms3_meta_data.csv"), "\n".join(rows) + "\n"
    rows = ["vid,uid,s_min,s_sec,a_obj,split,label"]
    for p in plans:
        sources = "_".join(AVSS_CLASSES[avss_class_index(o.synth_class)] for o in p.objects if o.sounding)
        rows.append(f"{p.name},{p.name},0,0,{sources},{p.split},{p.subset}")
    return Path("metadata.csv"), "\n".join(rows) + "\n"


def _describe(plans: list[VideoPlan], cfg: SynthConfig) -> dict:
    """`synth.json`: what was generated, so tests and reports can check answers (not part of AVSBench)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "config": to_dict(cfg),
        "classes": [to_dict(c) for c in SYNTH_CLASSES[: cfg.classes]],
        "videos": [
            {
                "name": p.name,
                "split": p.split,
                "subset": p.subset,
                "sources": [SYNTH_CLASSES[o.synth_class].name for o in p.objects if o.sounding],
                "distractors": [SYNTH_CLASSES[o.synth_class].name for o in p.objects if not o.sounding],
            }
            for p in plans
        ],
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def synthesize(out: str | Path, cfg: SynthConfig) -> Path:
    """Write a synthetic `cfg.benchmark` dataset under `out` (which must not exist, or be an empty folder).

    Everything is written into a hidden sibling folder first and renamed onto `out` at the end, so an interrupted
    run never leaves a half-written dataset where a reader would take it for complete.
    """
    out = Path(out)
    check_benchmark(cfg.benchmark)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(out, "output exists and is not an empty folder; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        plans = plan_videos(cfg)
        for plan in progress(plans, desc=f"synth {cfg.benchmark}"):
            _write_video(plan, staging, cfg)
        csv_path, csv_text = _metadata_csv(plans, cfg.benchmark)
        (staging / csv_path).parent.mkdir(parents=True, exist_ok=True)
        (staging / csv_path).write_text(csv_text, encoding="utf-8")
        # plain writes inside the staging folder: the final rename is what makes the dataset appear atomically
        (staging / "synth.json").write_text(json.dumps(_describe(plans, cfg), indent=2) + "\n", encoding="utf-8")
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; the dataset should not be
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
        raise
    return out
