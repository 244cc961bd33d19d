"""`validate_dataset`: manifest -> Great Expectations suites -> Data Docs, summary.txt, validation.json.

Everything a user needs to fix the data is written into one report folder; the function never raises for bad
data (only for a bad config), so a pipeline step can always publish the report of a failed validation.
"""

from __future__ import annotations

import io
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from moca.errors import ConfigError, DataError, ValidationFailed
from moca.io import atomic_write_bytes, atomic_write_text, write_json
from moca.validation.drift import manifest_stats
from moca.validation.manifest import build_manifest, split_table, video_table
from moca.validation.suites import ID_COLUMNS, ValidationConfig, suite_specs

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
    expectations: list[dict[str, Any]] = field(default_factory=list)

    def raise_if_failed(self) -> None:
        """For gates (the pipeline's validate step): stop with ValidationFailed naming the report."""
        if not self.passed:
            more = f" (+{len(self.failures) - 3} more)" if len(self.failures) > 3 else ""
            shown = "; ".join(self.failures[:3]) + more
            raise ValidationFailed(f"data failed validation, see {self.summary}: {shown}")


def _example_column(table: str, column: str) -> str:
    """Which id column names the file a failing row is about (a mask check names the mask, ...)."""
    ids = ID_COLUMNS[table]
    if table == "frames" and column.startswith(("mask", "fg_")):
        return "mask_path"
    if table == "videos" and column != "video":
        return "audio_path"
    return ids[0]


def _describe(kwargs: dict[str, Any]) -> str:
    def plain(value: Any) -> Any:  # GE stores bounds as floats: 296.0 reads better as 296
        return int(value) if isinstance(value, float) and value.is_integer() else value

    parts = [f"{k}={plain(kwargs[k])}" for k in ("value_set", "min_value", "max_value") if kwargs.get(k) is not None]
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict) and "column" in condition:  # GE stores Column(c) == v as a dict
        condition = f"{condition['column']['name']} {condition['operator']} {condition['parameter']}"
    where = f" where {condition}" if condition else ""
    return f"({', '.join(parts)}){where}" if parts else where


def _expectation_record(table: str, result: Any, max_examples: int) -> dict[str, Any]:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "condition_parser"}}
    column = kwargs.get("column", "")
    details = result.result or {}
    name_column = _example_column(table, column)
    examples = [
        f"{row.get(name_column)} ({column}={row.get(column)})" for row in details.get("unexpected_index_list") or []
    ][:max_examples]
    return {
        "table": table,
        "expectation": config.type,
        "column": column,
        "condition": _describe(kwargs),
        "success": bool(result.success),
        "checked": details.get("element_count"),
        "unexpected": details.get("unexpected_count"),
        "examples": examples,
        "error": (result.exception_info or {}).get("exception_message") if not result.success else None,
    }


def _gx_context(docs_dir: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # moca.progress reports progress instead
    context.add_data_docs_site(
        site_name="moca",
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
        },
    )
    return context


def run_suites(benchmark: str, tables: dict[str, pd.DataFrame], config: ValidationConfig, docs_dir: Path
               ) -> tuple[list[dict[str, Any]], Path]:  # fmt: skip
    """Validate each table against its suite; returns one record per expectation and the Data Docs index."""
    import great_expectations as gx

    context = _gx_context(docs_dir)
    source = context.data_sources.add_pandas("moca")
    records = []
    for spec in suite_specs(benchmark, config):
        name = f"{benchmark}.{spec.table}"
        batch = source.add_dataframe_asset(spec.table).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=spec.expectations))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        # GE's pandas engine compares with Python values; nullable pandas types would hide NA rows from some checks
        frame = tables[spec.table].astype(object).where(tables[spec.table].notna(), None)
        result = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ID_COLUMNS[spec.table]},
        )
        records += [_expectation_record(spec.table, r, config.max_examples) for r in result.results]
    index = Path(context.build_data_docs(site_names=["moca"])["moca"].removeprefix("file://"))
    return records, index


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
        what = f"{r['table']}: {r['expectation']}({r['column']}){r['condition']}"
        count = f" failed for {r['unexpected']} of {r['checked']} rows" if r["unexpected"] is not None else " failed"
        detail = f": {'; '.join(r['examples'])}" if r["examples"] else (f": {r['error']}" if r["error"] else "")
        lines.append(what + count + detail)
    return lines


def _summary_text(benchmark: str, root: Path, passed: bool, failed: list[str], problems: list[str]) -> str:
    out = [f"moca data validate: {benchmark} at {root}: {'PASSED' if passed else 'FAILED'}"]
    if failed:
        out += ["", f"Failed expectations ({len(failed)}):", *(f"- {line}" for line in failed)]
    if problems:
        out += ["", f"Problem files ({len(problems)}):", *(f"- {line}" for line in problems)]
    return "\n".join(out) + "\n"


def _write_parquet(path: Path, table: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


def _clear_outputs(report_dir: Path) -> None:
    """Remove a previous run's outputs, so a report folder never mixes two runs (Data Docs keep old pages)."""
    if report_dir.exists() and not report_dir.is_dir():
        raise ConfigError(f"{report_dir}: report path exists and is not a folder")
    report_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(report_dir / "data_docs", ignore_errors=True)
    for name in ("manifest.parquet", "stats.json"):
        (report_dir / name).unlink(missing_ok=True)


def validate_dataset(root: str | Path, benchmark: str, report_dir: str | Path,
                     expected_counts: dict[str, int] | None = None, config: ValidationConfig | None = None,
                     ) -> ValidationResult:  # fmt: skip
    """Validate a benchmark's files; write manifest.parquet, stats.json, Data Docs, summary.txt, validation.json."""
    root, report_dir = Path(root), Path(report_dir)
    config = config or ValidationConfig()
    if expected_counts is not None:
        config = ValidationConfig(**{**asdict(config), "expected_counts": expected_counts})
    _clear_outputs(report_dir)
    result = ValidationResult(False, [], report_dir, report_dir / "summary.txt", report_dir / "validation.json")
    try:
        manifest = build_manifest(root, benchmark)
    except DataError as exc:  # the metadata CSV is unreadable or unsafe: nothing else can be checked
        result.failures = [f"metadata: {exc}"]
        atomic_write_text(result.summary, _summary_text(benchmark, root, False, result.failures, []))
        write_json(result.json, {"passed": False, "benchmark": benchmark, "failures": result.failures})
        return result
    result.manifest, result.stats = report_dir / "manifest.parquet", report_dir / "stats.json"
    _write_parquet(result.manifest, manifest)
    write_json(result.stats, manifest_stats(manifest))
    videos = video_table(manifest)
    tables = {"frames": manifest, "videos": videos, "splits": split_table(videos)}
    result.expectations, result.data_docs = run_suites(benchmark, tables, config, report_dir / "data_docs")
    failed, problems = _failure_lines(result.expectations), problem_lines(manifest)
    result.passed = not failed and not problems
    result.failures = failed + problems
    atomic_write_text(result.summary, _summary_text(benchmark, root, result.passed, failed, problems))
    write_json(result.json, {
        "passed": result.passed, "benchmark": benchmark, "failures": result.failures, "config": asdict(config),
        "expectations": result.expectations, "frames": len(manifest), "videos": len(videos),
        "outputs": {k: str(v) for k, v in asdict(result).items() if isinstance(v, Path)},
    })  # fmt: skip
    log.info("validation of %s %s: %d failure line(s)", benchmark, "passed" if result.passed else "FAILED",
             len(result.failures))  # fmt: skip
    return result
