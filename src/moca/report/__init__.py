"""Evaluation reports: the comparison table (MoCA, baselines, floors), figures, MLflow logging."""

from moca.report.build import build_report, log_report
from moca.report.table import RunSpec, build_table, relative_gain, render_markdown

__all__ = ["RunSpec", "build_report", "build_table", "log_report", "relative_gain", "render_markdown"]
