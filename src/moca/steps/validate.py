"""Validate: Great Expectations suites and Data Docs on the dataset, plus drift against the champion's data.

The report is written into the step folder whether the data passes or not (a failed validation is exactly when
people read it), and the step itself succeeds either way: `info.passed` is the verdict. Callers that must stop
on bad data call `require_passed` (the CLI exits 1, the in-process pipeline raises); the Kubeflow pipeline
gates on the component's `passed` output, because KFP publishes a task's artifacts only when it succeeds.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moca.errors import ValidationFailed
from moca.io import atomic_write_text, read_json
from moca.steps.runner import Inputs, StepResult, step
from moca.validation.drift import DriftThresholds
from moca.validation.suites import ValidationConfig

PAGE, SUMMARY, STATS = "report.html", "summary.txt", "stats.json"


@dataclass
class ValidateConfig(ValidationConfig):
    drift: DriftThresholds = field(default_factory=DriftThresholds)


def _drift(stats_path: Path | None, champion: tuple[str, dict[str, Any]] | None, thresholds: DriftThresholds,
           folder: Path) -> dict[str, Any]:
    from moca.validation.drift import compare_stats, load_stats

    if champion is None or stats_path is None:
        return {"drift": "not checked: no champion yet" if champion is None else "not checked: no statistics"}
    version, reference = champion
    report = compare_stats(reference, load_stats(stats_path), thresholds)
    atomic_write_text(folder / "drift.json", report.to_json())
    atomic_write_text(folder / "drift.md", f"Reference: data of champion v{version}\n\n{report.to_markdown()}")
    return {"drift": f"vs champion v{version}", "drift_flagged": [i.statistic for i in report.flagged]}


def render_page(validation: dict[str, Any], drift_md: str | None) -> str:
    """One self-contained HTML page (what the KFP UI shows inline); the full Data Docs site is beside it."""
    rows = "".join(
        f"<tr><td>{'pass' if e['success'] else '<b>FAIL</b>'}</td><td>{html.escape(e['table'])}</td>"
        f"<td>{html.escape(e['expectation'])}</td><td>{html.escape(str(e['column']))}{html.escape(e['condition'])}"
        f"</td><td>{e['unexpected'] if e['unexpected'] is not None else ''}</td></tr>"
        for e in validation.get("expectations", []))  # fmt: skip
    failures = "".join(f"<li>{html.escape(line)}</li>" for line in validation.get("failures", []))
    drift = f"<h2>Drift</h2><pre>{html.escape(drift_md)}</pre>" if drift_md else ""
    verdict = "PASSED" if validation["passed"] else "FAILED"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>moca validation {verdict}</title></head><body>"
            f"<h1>Data validation: {validation['benchmark']} {verdict}</h1>"
            f"<p>{validation.get('videos', '?')} videos, {validation.get('frames', '?')} frames.</p>"
            f"{'<h2>Failures</h2><ul>' + failures + '</ul>' if failures else ''}"
            f"<h2>Expectations</h2><table border='1'><tr><th>result</th><th>table</th><th>expectation</th>"
            f"<th>column</th><th>unexpected</th></tr>{rows}</table>{drift}</body></html>\n")  # fmt: skip


def _champion(inputs: Inputs) -> tuple[str, dict[str, Any]] | None:
    """The drift reference: the champion's training-data statistics, looked up only in a tracked run."""
    if not inputs.parent_run_id:
        return None
    from moca.tracking.registry import champion_training_stats

    return champion_training_stats(inputs.model_name)


def _champion_version(config: ValidateConfig, inputs: Inputs) -> dict[str, str]:
    if not inputs.parent_run_id:
        return {"champion": ""}
    from moca.tracking.registry import champion

    current = champion(inputs.model_name)
    return {"champion": str(current.version) if current else ""}


@step("validate", section="validate", config=ValidateConfig, produces="report", outputs=(SUMMARY, PAGE),
      key_inputs=_champion_version)
def run(config: ValidateConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    """Validate `inputs.data`: Data Docs, summary.txt, validation.json, stats.json, report.html, drift files."""
    from moca.validation.report import validate_dataset

    result = validate_dataset(inputs.dataset(), inputs.benchmark, folder, config=config,
                              data_version=inputs.version())
    drift_info = _drift(result.stats, _champion(inputs), config.drift, folder)
    drift_md = (folder / "drift.md").read_text(encoding="utf-8") if (folder / "drift.md").is_file() else None
    atomic_write_text(folder / PAGE, render_page(read_json(result.json), drift_md))
    artifacts = [n for n in ("data_docs", "gx", SUMMARY, "validation.json", PAGE, "drift.json", "drift.md")
                 if (folder / n).exists()]  # fmt: skip
    return {"metrics": {"passed": result.passed, "failures": len(result.failures),
                        "drift_flagged": len(drift_info.get("drift_flagged", []))},
            "info": {"passed": result.passed, "failures": result.failures[:50], **drift_info,
                     "stats": STATS if result.stats else None},
            "artifacts": artifacts}  # fmt: skip


def require_passed(result: StepResult, data: str | Path) -> None:
    """Raise ValidationFailed (with the first failures and where the report is) when the data failed."""
    if not result.info["passed"]:
        raise ValidationFailed(f"{data}: {result.manifest['config']['benchmark']} data failed validation; report in "
                               f"{result.out} ({'; '.join(result.info['failures'][:3])})")
