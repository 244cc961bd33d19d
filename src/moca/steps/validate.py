"""Validate: Great Expectations suites and Data Docs on the ingested data, plus drift against the champion's data.

The report folder is always written (a failed validation is exactly when people read it); only then does the
step raise ValidationFailed, so the pipeline stops before training with the report in place.
"""

from __future__ import annotations

import html
from dataclasses import asdict
from pathlib import Path
from typing import Any

from moca.errors import ValidationFailed
from moca.io import atomic_write_text, read_json
from moca.steps.manifest import StepResult, require_outputs, run_step
from moca.steps.tracking import champion_training_stats, log_step, step_tracking
from moca.validation.drift import DriftThresholds, compare_stats, load_stats
from moca.validation.suites import ValidationConfig

REPORT, PAGE = "report", "report.html"


def _drift(stats_path: Path | None, champion: tuple[str, dict[str, Any]] | None, thresholds: DriftThresholds,
           folder: Path) -> dict[str, Any]:
    if champion is None or stats_path is None:
        return {"drift": "not checked: no champion yet" if champion is None else "not checked: no statistics"}
    version, reference = champion
    report = compare_stats(reference, load_stats(stats_path), thresholds)
    atomic_write_text(folder / "drift.json", report.to_json())
    atomic_write_text(folder / "drift.md", f"Reference: data of champion v{version}\n\n{report.to_markdown()}")
    return {"drift": f"vs champion v{version}", "drift_flagged": [i.statistic for i in report.flagged]}


def render_page(validation: dict[str, Any], drift_md: str | None) -> str:
    """One self-contained HTML page (what the KFP UI shows inline); the full Data Docs site is in `report/`."""
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


def validate(data: str | Path, out: str | Path, benchmark: str, data_version: str,
             config: ValidationConfig | None = None, drift: DriftThresholds | None = None, model_name: str = "moca",
             parent_run_id: str | None = None, raise_on_failure: bool = True) -> StepResult:
    """Validate `data`; writes `out/report/` (Data Docs, summary, validation.json), `report.html`, drift files."""
    from moca.validation.report import validate_dataset

    data, out = Path(data), Path(out)
    config, drift = config or ValidationConfig(), drift or DriftThresholds()
    step_config = {"benchmark": benchmark, "validation": asdict(config), "drift": asdict(drift)}
    champion = champion_training_stats(model_name) if parent_run_id else None
    inputs = {"data": data_version, "champion": champion[0] if champion else ""}

    def body(folder: Path) -> dict:
        result = validate_dataset(data, benchmark, folder / REPORT, config=config, data_version=data_version)
        drift_info = _drift(result.stats, champion, drift, folder)
        drift_md = (folder / "drift.md").read_text(encoding="utf-8") if (folder / "drift.md").is_file() else None
        atomic_write_text(folder / PAGE, render_page(read_json(result.json), drift_md))
        artifacts = [REPORT, PAGE] + [n for n in ("drift.json", "drift.md") if (folder / n).is_file()]
        return {"metrics": {"passed": result.passed, "failures": len(result.failures),
                            "drift_flagged": len(drift_info.get("drift_flagged", []))},
                "info": {"passed": result.passed, "failures": result.failures[:50], **drift_info,
                         "stats": f"{REPORT}/stats.json" if result.stats else None},
                "artifacts": artifacts}  # fmt: skip

    with step_tracking("validate", parent_run_id, step_config):
        result = run_step("validate", out, inputs, step_config, body, data_version=data_version)
        log_step(result)
        require_outputs(out / REPORT / "summary.txt", out / PAGE)
        if raise_on_failure and not result.info["passed"]:
            raise ValidationFailed(f"{data}: {benchmark} data failed validation; report in {out / REPORT} "
                                   f"({'; '.join(result.info['failures'][:3])})")
    return result
