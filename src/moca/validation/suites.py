"""Great Expectations suites: what a usable AVSBench benchmark looks like, checked on the files' own facts.

GE validates one batch per suite, and the checks live at three grains: `{benchmark}.frames` (one row per frame:
sizes, modes, file sizes, mask encodings and value sets), `{benchmark}.videos` (one row per video: sample rate,
audio length, frame files on disk) and `{benchmark}.split.{train,val,test}` (one batch per split: its row count is
the number of videos). Each expectation names the id columns GE reports for failing rows, so Data Docs and the
summary name the offending files, not row numbers.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from moca.data.layout import AVSS_SUBSETS, FRAMES_PER_CLIP, SPLITS, check_benchmark
from moca.errors import ConfigError

# GE would otherwise report usage; must be set before great_expectations is imported anywhere.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# GE logs hundreds of internal INFO lines at import and per run; its warnings and errors still show.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

# The official release: videos per split (avsbench.md). Synthetic data only needs at least one per split.
AVSBENCH_COUNTS: dict[str, dict[str, int]] = {
    "s4": {"train": 3452, "val": 740, "test": 740},
    "ms3": {"train": 296, "val": 64, "test": 64},
}
TABLES = ("frames", "videos", *(f"split.{split}" for split in SPLITS))
# Columns GE reports for each failing row. One list for every table (a checkpoint has one result format), so the
# video and split tables carry the video's frame and mask folders in `image_path` / `mask_path`.
ID_COLUMNS = ["video", "image_path", "mask_path", "audio_path"]


@dataclass
class ValidationConfig:
    expected_counts: dict[str, int] | None = None  # videos per split; None: at least one in every split
    image_size: int = 224  # S4/MS3 frames are square; AVSS frames may be any size (resized at evaluation)
    sample_rate: int = 16000
    audio_tolerance_s: float = 0.05  # a clip of N frames needs N seconds of audio, minus this
    seconds_per_frame: float = 1.0  # AVSBench samples one frame per second
    max_examples: int = 20  # failing rows named per expectation in the summary
    # A 224x224 frame under 2 kB is one flat colour or a placeholder (blank PNG 0.2-0.7 kB, blank JPEG 1.4 kB; real
    # frames are tens of kB). A few black frames happen (fades), so only `min_frame_share` of frames must pass.
    min_frame_bytes: int = 2048
    max_frame_bytes: int = 20_000_000
    min_frame_share: float = 0.99

    def __post_init__(self) -> None:
        if self.expected_counts is not None:
            unknown = set(self.expected_counts) - set(SPLITS)
            if unknown:
                raise ConfigError(f"expected_counts: unknown split(s) {sorted(unknown)}; expected {SPLITS}")


def parse_expected_counts(text: str | None, benchmark: str) -> dict[str, int] | None:
    """`--expected-counts`: 'avsbench' (the official numbers) or 'train=N,val=N,test=N' (any subset of splits)."""
    if not text:
        return None
    if text == "avsbench":
        if benchmark not in AVSBENCH_COUNTS:
            raise ConfigError(f"--expected-counts avsbench: no official counts known for {benchmark}")
        return dict(AVSBENCH_COUNTS[benchmark])
    counts = {}
    for item in text.split(","):
        split, _, number = item.partition("=")
        if split.strip() not in SPLITS or not number.strip().isdigit():
            raise ConfigError(f"--expected-counts: bad item {item!r}; expected 'avsbench' or 'train=N,val=N,test=N'")
        counts[split.strip()] = int(number)
    return counts


def _is(column: str, value: Any) -> Any:
    from great_expectations.expectations.row_conditions import Column

    return Column(column) == value


def _value_sets(encodings: tuple[frozenset[int], ...]) -> list[str]:
    """`mask_values` a mask of one kind may show: every non-empty subset of an encoding ('0', '255', '0,255')."""
    subsets = {",".join(map(str, sorted(s))) for allowed in encodings for s in [allowed, *({v} for v in allowed)]}
    return sorted(subsets)


def _mask_value_expectations(benchmark: str) -> list[Any]:
    import great_expectations as gx

    from moca.data.palette import NUM_AVSS_CLASSES
    from moca.data.readers import BINARY_MASK_VALUES

    E = gx.expectations
    readable = _is("mask_readable", True)
    if benchmark == "avss":  # class ids by exact palette colour; -1 marks a colour outside the palette
        return [
            E.ExpectColumnValuesToBeBetween(column="mask_min", min_value=0, row_condition=readable,
                                            meta={"why": "every colour is one of the 71 AVSS class colours"}),
            E.ExpectColumnValuesToBeBetween(column="mask_max", max_value=NUM_AVSS_CLASSES - 1, row_condition=readable),
        ]  # fmt: skip
    out = [E.ExpectColumnValuesToBeInSet(column="mask_kind", value_set=sorted(BINARY_MASK_VALUES),
                                         row_condition=readable,
                                         meta={"why": "a binary mask is bilevel, grey or palette, never colour"})]
    out += [E.ExpectColumnValuesToBeInSet(column="mask_values", value_set=_value_sets(encodings),
                                          row_condition=_is("mask_kind", kind),
                                          meta={"why": f"{kind} masks hold " + " or ".join(
                                              "/".join(map(str, sorted(e))) for e in encodings)})
            for kind, encodings in BINARY_MASK_VALUES.items()]  # fmt: skip
    return out


def _frame_expectations(benchmark: str, config: ValidationConfig) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    out = [
        E.ExpectColumnValuesToBeNull(column="image_problem", meta={"why": "every frame image exists and decodes"}),
        E.ExpectColumnValuesToBeBetween(column="image_bytes", min_value=config.min_frame_bytes,
                                        max_value=config.max_frame_bytes, mostly=config.min_frame_share,
                                        meta={"why": "frames are not blank placeholders or stray huge files"}),
        E.ExpectColumnValuesToBeInSet(column="mode", value_set=["RGB"]),
        E.ExpectColumnValuesToBeInSet(column="mask_present", value_set=[True], row_condition=_is("mask_expected", True),
                                      meta={"why": "every annotated frame has its mask"}),
        E.ExpectColumnValuesToBeInSet(column="mask_readable", value_set=[True],
                                      row_condition=_is("mask_present", True)),
        *_mask_value_expectations(benchmark),
        *(E.ExpectColumnPairValuesToBeEqual(column_A=f"mask_{side}", column_B=side,
                                            ignore_row_if="either_value_is_missing",
                                            meta={"why": "each mask has its frame's size"})
          for side in ("width", "height")),
    ]  # fmt: skip
    if benchmark != "avss":  # AVSS frames come in their own sizes and are resized at evaluation
        side = config.image_size
        out += [E.ExpectColumnValuesToBeBetween(column=c, min_value=side, max_value=side) for c in ("width", "height")]
    return out


def _video_expectations(benchmark: str, config: ValidationConfig) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    out = [
        E.ExpectColumnValuesToBeUnique(column="video"),
        E.ExpectColumnValuesToBeNull(column="audio_problem", meta={"why": "every wav exists, decodes, is complete"}),
        E.ExpectColumnValuesToBeBetween(column="sample_rate", min_value=config.sample_rate,
                                        max_value=config.sample_rate),
    ]  # fmt: skip
    # Frames per clip (and so seconds of audio) depend on the AVSS subset; S4/MS3 clips are all 5 frames.
    groups = [(n, _is("category", label)) for label, n in AVSS_SUBSETS.items()] if benchmark == "avss" \
        else [(FRAMES_PER_CLIP, None)]  # fmt: skip
    for frames, condition in groups:
        seconds = frames * config.seconds_per_frame - config.audio_tolerance_s
        out += [
            E.ExpectColumnValuesToBeBetween(column="frames_on_disk", min_value=frames, max_value=frames,
                                            row_condition=condition),
            E.ExpectColumnValuesToBeBetween(column="duration_s", min_value=seconds, row_condition=condition),
        ]  # fmt: skip
    return out


def _split_expectations(config: ValidationConfig, split: str) -> list[Any]:
    """The split's batch has one row per video: its row count is the number of videos."""
    import great_expectations as gx

    E = gx.expectations
    if config.expected_counts is None or split not in config.expected_counts:
        return [E.ExpectTableRowCountToBeBetween(min_value=1, meta={"why": "no split is empty"})]
    return [E.ExpectTableRowCountToEqual(value=config.expected_counts[split])]


@dataclass
class SuiteSpec:
    table: str  # one of TABLES
    expectations: list[Any] = field(default_factory=list)


def suite_specs(benchmark: str, config: ValidationConfig) -> list[SuiteSpec]:
    """The expectations of each table, in TABLES order."""
    check_benchmark(benchmark)
    return [
        SuiteSpec("frames", _frame_expectations(benchmark, config)),
        SuiteSpec("videos", _video_expectations(benchmark, config)),
        *(SuiteSpec(f"split.{split}", _split_expectations(config, split)) for split in SPLITS),
    ]
