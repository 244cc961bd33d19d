"""Data validation: a per-frame manifest, Great Expectations suites with Data Docs, and manifest drift.

Importing this package does not import great_expectations (slow to start); `validate_dataset` does, lazily.
"""

from moca.validation.drift import DriftReport, DriftThresholds, compare_stats, manifest_stats
from moca.validation.manifest import build_manifest
from moca.validation.report import ValidationResult, validate_dataset
from moca.validation.suites import AVSBENCH_COUNTS, ValidationConfig, parse_expected_counts

__all__ = [
    "AVSBENCH_COUNTS", "DriftReport", "DriftThresholds", "ValidationConfig", "ValidationResult", "build_manifest",
    "compare_stats", "manifest_stats", "parse_expected_counts", "validate_dataset",
]  # fmt: skip
