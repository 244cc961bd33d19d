"""`validate_dataset`: manifest -> the run's Great Expectations checkpoint -> Data Docs, summary.txt, validation.json.

Everything a user needs to fix the data is written into one report folder; the function never raises for bad
data (only for a bad config), so a pipeline step can always publish the report of a failed validation.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from moca.errors import ConfigError, DataError, ValidationFailed
from moca.io import atomic_write_text, sha256_tree, write_json
from moca.validation.drift import manifest_stats
from moca.validation.manifest import build_manifest, split_tables, video_table
from moca.validation.project import DOCS_DIR, FRAMES_TABLE, GX_DIR, TABLES_DIR, run_checkpoint, table_path, write_table
from moca.validation.suites import ValidationConfig

log = logging.getLogger("moca.validation")
PROBLEM_COLUMNS = {"image_problem": "image_path", "mask_problem": "mask_path", "audio_problem": "audio_path"}


@dataclass
class ValidationResult:
    passed: bool
    failures: list[str]  # one human-readable line per failed expectation and per problem file
    report_dir: Path
    summary: Path
    json: Path
    manifest: Path | None = None  # None when the metadata CSV itself could not be read
    stats: Path | None = None
    data_docs: Path | None = None  # the Data Docs index.html
    data_version: str = ""  # the dataset version the run name and batches carry
    expectations: list[dict[str, Any]] = field(default_factory=list)

    def raise_if_failed(self) -> None:
        """For gates (the pipeline's validate step): stop with ValidationFailed naming the report."""
        if not self.passed:
            more = f" (+{len(self.failures) - 3} more)" if len(self.failures) > 3 else ""
            shown = "; ".join(self.failures[:3]) + more
            raise ValidationFailed(f"data failed validation, see {self.summary}: {shown}")


def _example_column(table: str, column: str) -> str:
    """Which id column names the file a failing row is about (a mask check names the mask, ...)."""
    if table == "frames":
        return "mask_path" if column.startswith(("mask", "fg_")) else "image_path"
    if table == "videos":
        return {"video": "video", "frames_on_disk": "image_path"}.get(column, "audio_path")
    return "video"


def _describe(kwargs: dict[str, Any]) -> str:
    def plain(value: Any) -> Any:  # GE stores bounds as floats: 296.0 reads better as 296
        return int(value) if isinstance(value, float) and value.is_integer() else value

    keys = ("value", "value_set", "min_value", "max_value", "mostly")
    parts = [f"{k}={plain(kwargs[k])}" for k in keys if kwargs.get(k) is not None]
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict) and "column" in condition:  # GE stores Column(c) == v as a dict
        condition = f"{condition['column']['name']} {condition['operator']} {condition['parameter']}"
    where = f" where {condition}" if condition else ""
    return f"({', '.join(parts)}){where}" if parts else where


def _expectation_record(table: str, result: Any, max_examples: int) -> dict[str, Any]:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "condition_parser"}}
    column = kwargs.get("column") or ",".join(kwargs[k] for k in ("column_A", "column_B") if k in kwargs)
    details = result.result or {}
    name_column = _example_column(table, column)
    examples = [
        f"{row.get(name_column)} ({_observed(row, column)})" for row in details.get("unexpected_index_list") or []
    ][:max_examples]
    return {
        "table": table,
        "expectation": config.type,
        "column": column,
        "condition": _describe(kwargs),
        "success": bool(result.success),
        "checked": details.get("element_count"),
        "unexpected": details.get("unexpected_count"),
        "observed": details.get("observed_value"),
        "examples": examples,
        "error": (result.exception_info or {}).get("exception_message") if not result.success else None,
    }


def _observed(row: dict[str, Any], column: str) -> str:
    return ", ".join(f"{c}={row.get(c)}" for c in column.split(","))


def _records(result: Any, benchmark: str, max_examples: int) -> list[dict[str, Any]]:
    """One record per expectation of every suite the checkpoint ran, in suite order."""
    records = []
    for suite_result in result.run_results.values():
        table = suite_result.suite_name.removeprefix(f"{benchmark}.")
        records += [_expectation_record(table, r, max_examples) for r in suite_result.results]
    return records


def problem_lines(manifest: pd.DataFrame) -> list[str]:
    """'path: problem' for every distinct problem file (a wav's problem is on each of its frames: listed once)."""
    lines: dict[str, None] = {}
    for problem, path in PROBLEM_COLUMNS.items():
        bad = manifest.loc[manifest[problem].notna(), [path, problem]]
        lines.update((f"{p}: {text}", None) for p, text in bad.itertuples(index=False))
    return list(lines)


def _failure_lines(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        if r["success"]:
            continue
        what = f"{r['table']}: {r['expectation']}" + (f"({r['column']})" if r["column"] else "") + r["condition"]
        count = f" failed for {r['unexpected']} of {r['checked']} rows" if r["unexpected"] is not None else \
            f" failed (observed {r['observed']})" if r["observed"] is not None else " failed"  # fmt: skip
        detail = f": {'; '.join(r['examples'])}" if r["examples"] else (f": {r['error']}" if r["error"] else "")
        lines.append(what + count + detail)
    return lines


def _summary_text(benchmark: str, root: Path, version: str, passed: bool, failed: list[str], problems: list[str]
                  ) -> str:  # fmt: skip
    out = [f"moca data validate: {benchmark} at {root}: {'PASSED' if passed else 'FAILED'}", f"data version: {version}"]
    if failed:
        out += ["", f"Failed expectations ({len(failed)}):", *(f"- {line}" for line in failed)]
    if problems:
        out += ["", f"Problem files ({len(problems)}):", *(f"- {line}" for line in problems)]
    return "\n".join(out) + "\n"


def _clear_outputs(report_dir: Path) -> None:
    """Remove a previous run's outputs, so a report folder never mixes two runs (Data Docs keep old pages)."""
    if report_dir.exists() and not report_dir.is_dir():
        raise ConfigError(f"{report_dir}: report path exists and is not a folder")
    report_dir.mkdir(parents=True, exist_ok=True)
    for folder in (DOCS_DIR, GX_DIR, TABLES_DIR):
        shutil.rmtree(report_dir / folder, ignore_errors=True)
    for name in (FRAMES_TABLE, "stats.json"):
        (report_dir / name).unlink(missing_ok=True)


def resolve_data_version(root: Path) -> str:
    """The version of the data at `root` when the caller names none: the DVC md5 moca's fetch recorded in the
    folder, else the sha256 of its files (read once more; cheap next to decoding every frame)."""
    from moca.versioning import VERSION_MARKER

    marker = root / VERSION_MARKER
    if marker.is_file():
        return marker.read_text(encoding="utf-8").strip()
    return "sha256:" + sha256_tree(root)[:16] if root.is_dir() else "unknown (data folder not found)"


def validate_dataset(root: str | Path, benchmark: str, report_dir: str | Path,
                     expected_counts: dict[str, int] | None = None, config: ValidationConfig | None = None,
                     data_version: str | None = None) -> ValidationResult:  # fmt: skip
    """Validate a benchmark's files; write manifest.parquet, stats.json, the GX project (gx/, tables/), Data Docs,
    summary.txt and validation.json. `data_version` (a DVC md5, ...) names the data in the Data Docs' run names."""
    root, report_dir = Path(root), Path(report_dir)
    config = config or ValidationConfig()
    if expected_counts is not None:
        config = ValidationConfig(**{**asdict(config), "expected_counts": expected_counts})
    _clear_outputs(report_dir)
    version = data_version or resolve_data_version(root)
    result = ValidationResult(False, [], report_dir, report_dir / "summary.txt", report_dir / "validation.json",
                              data_version=version)  # fmt: skip
    try:
        manifest = build_manifest(root, benchmark)
    except DataError as exc:  # the metadata CSV is unreadable or unsafe: nothing else can be checked
        result.failures = [f"metadata: {exc}"]
        atomic_write_text(result.summary, _summary_text(benchmark, root, version, False, result.failures, []))
        write_json(result.json, {"passed": False, "benchmark": benchmark, "data_version": version,
                                 "failures": result.failures})  # fmt: skip
        return result
    result.manifest, result.stats = report_dir / FRAMES_TABLE, report_dir / "stats.json"
    videos = video_table(manifest)
    for name, table in {"frames": manifest, "videos": videos, **split_tables(videos)}.items():
        write_table(report_dir / table_path(name), table)
    write_json(result.stats, manifest_stats(manifest))
    checkpoint, result.data_docs = run_checkpoint(report_dir, benchmark, config, version)
    result.expectations = _records(checkpoint, benchmark, config.max_examples)
    failed, problems = _failure_lines(result.expectations), problem_lines(manifest)
    result.passed = not failed and not problems
    result.failures = failed + problems
    atomic_write_text(result.summary, _summary_text(benchmark, root, version, result.passed, failed, problems))
    write_json(result.json, {
        "passed": result.passed, "benchmark": benchmark, "data_version": version, "failures": result.failures,
        "config": asdict(config), "expectations": result.expectations, "frames": len(manifest), "videos": len(videos),
        "outputs": {k: str(v) for k, v in asdict(result).items() if isinstance(v, Path)},
    })  # fmt: skip
    log.info("validation of %s %s: %d failure line(s)", benchmark, "passed" if result.passed else "FAILED",
             len(result.failures))  # fmt: skip
    return result
