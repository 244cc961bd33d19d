"""Great Expectations suites: what a usable AVSBench benchmark looks like, one suite per table.

GE validates one table per suite, and our checks live at three grains, so each benchmark gets three suites:
`{benchmark}.frames` (one row per frame), `{benchmark}.videos` (one per video) and `{benchmark}.splits` (one per
split). Each expectation names the id columns GE should report for failing rows, so Data Docs and the summary
name the offending files, not row numbers.
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
TABLES = ("frames", "videos", "splits")
# Columns GE reports for each failing row, per table (see module docstring).
ID_COLUMNS: dict[str, list[str]] = {
    "frames": ["image_path", "mask_path"],
    "videos": ["video", "audio_path"],
    "splits": ["split"],
}


@dataclass
class ValidationConfig:
    expected_counts: dict[str, int] | None = None  # videos per split; None: at least one in every split
    image_size: int = 224  # S4/MS3 frames are square; AVSS frames may be any size (resized at evaluation)
    sample_rate: int = 16000
    audio_tolerance_s: float = 0.05  # a clip of N frames needs N seconds of audio, minus this
    seconds_per_frame: float = 1.0  # AVSBench samples one frame per second
    max_examples: int = 20  # failing rows named per expectation in the summary

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


def _frame_expectations(benchmark: str, config: ValidationConfig) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    out = [
        E.ExpectColumnValuesToBeNull(column="image_problem", meta={"why": "every frame image exists and decodes"}),
        E.ExpectColumnValuesToBeInSet(column="mode", value_set=["RGB"]),
        E.ExpectColumnValuesToBeInSet(column="mask_present", value_set=[True], row_condition=_is("mask_expected", True),
                                      meta={"why": "every annotated frame has its mask"}),  # fmt: skip
        E.ExpectColumnValuesToBeInSet(column="mask_readable", value_set=[True],
                                      row_condition=_is("mask_present", True)),
        E.ExpectColumnValuesToBeInSet(column="mask_stray", value_set=[False], row_condition=_is("mask_readable", True),
                                      meta={"why": "binary {0,255} (S4), palette 0/1 (MS3), AVSS palette colours"}),
        E.ExpectColumnValuesToBeInSet(column="mask_size_ok", value_set=[True],
                                      row_condition=_is("mask_readable", True)),
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


def _split_expectations(config: ValidationConfig) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    if config.expected_counts is None:
        return [E.ExpectColumnValuesToBeBetween(column="videos", min_value=1, meta={"why": "no split is empty"})]
    return [
        E.ExpectColumnValuesToBeBetween(column="videos", min_value=n, max_value=n, row_condition=_is("split", split))
        for split, n in config.expected_counts.items()
    ]


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
        SuiteSpec("splits", _split_expectations(config)),
    ]
