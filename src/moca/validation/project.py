"""The Great Expectations project of one validation run: file-backed, in the report folder, rerunnable by GE users.

    report/
      manifest.parquet, tables/*.parquet      the batches: frames, videos, one table of videos per split
      gx/great_expectations.yml               data source `moca` (a pandas filesystem source over the report folder)
      gx/expectations/{benchmark}/...json     the saved Expectation Suites
      gx/validation_definitions/, gx/checkpoints/moca.{benchmark}.json
      gx/uncommitted/validations/             the validation results, under the run name
      data_docs/index.html                    the Data Docs site, readable offline (moca.validation.datadocs)

The project lives with its run rather than in the repo: the suites depend on the run's ValidationConfig (expected
counts, sizes), the results and Data Docs are outputs of the run, and the folder travels as one artifact (KFP,
MLflow) that anyone can open offline or rerun:

    import great_expectations as gx
    context = gx.get_context(mode="file", project_root_dir="report")
    context.checkpoints.get("moca.s4").run()
    context.build_data_docs()  # then rerun moca.validation.datadocs.make_offline on report/data_docs

The data source's base directory is the report folder's absolute path (GE resolves a relative one against the
working directory), so a moved folder needs `context.data_sources.update_pandas_filesystem(...)` before a rerun.
Run name and batch definition name carry the dataset version, so every Data Docs page says which data it checked.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pandas as pd

from moca.io import atomic_write_bytes
from moca.validation.suites import ID_COLUMNS, ValidationConfig, suite_specs

GX_DIR, TABLES_DIR, DOCS_DIR, SITE = "gx", "tables", "data_docs", "moca"
FRAMES_TABLE = "manifest.parquet"  # the frames batch is the manifest itself (also the drift input)
SOURCE = "moca"


def checkpoint_name(benchmark: str) -> str:
    return f"moca.{benchmark}"


def run_name(benchmark: str, data_version: str) -> str:
    return f"{benchmark} data {data_version}"


def table_path(table: str) -> str:
    """Where a table's batch lives, relative to the report folder."""
    return FRAMES_TABLE if table == "frames" else f"{TABLES_DIR}/{table}.parquet"


def write_table(path: Path, table: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


def _site_config() -> dict[str, Any]:
    renderer = {"module_name": "moca.validation.datadocs", "class_name": "VersionedValidationResultsPageRenderer"}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,  # the walkthrough modal and call-to-action cards only link to GE's website
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": f"../{DOCS_DIR}/"},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "site_section_builders": {"validations": {"renderer": renderer}},
    }


def _context(report_dir: Path) -> Any:
    """A new file-backed project in `report_dir/gx`, configured for moca: one Data Docs site, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=report_dir)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # moca.progress reports progress instead
    context.variables.data_docs_sites = {SITE: _site_config()}
    context.variables.config_variables_file_path = None  # no secrets here; GE would re-read the file per lookup
    context.variables.save()
    return gx.get_context(mode="file", project_root_dir=report_dir)  # reload: the site list is read at start


def _safe(text: str) -> str:
    """A data version as GE names it in folders (run names become paths): keep it readable, drop path separators."""
    return re.sub(r"[^A-Za-z0-9._:+=@-]+", "_", text).strip("._") or "unknown"


def create_checkpoint(report_dir: Path, benchmark: str, config: ValidationConfig, data_version: str
                      ) -> tuple[Any, Any]:  # fmt: skip
    """Save the data source, suites, validation definitions and checkpoint of `benchmark` into `report_dir/gx`;
    returns (checkpoint, context)."""
    import great_expectations as gx

    context = _context(report_dir)
    source = context.data_sources.add_pandas_filesystem(SOURCE, base_directory=report_dir.resolve())
    definitions = []
    for spec in suite_specs(benchmark, config):
        batch = source.add_parquet_asset(spec.table).add_batch_definition_path(f"data {_safe(data_version)}",
                                                                                path=table_path(spec.table))
        name = f"{benchmark}.{spec.table}"
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=spec.expectations))
        definition = gx.ValidationDefinition(name=name, data=batch, suite=suite)
        definitions.append(context.validation_definitions.add(definition))
    # No UpdateDataDocsAction: it rebuilds the whole site once per validation result (5 builds, ~3 s); the site is
    # built once after the run instead (`context.build_data_docs()` after a rerun by hand).
    return context.checkpoints.add(gx.Checkpoint(
        name=checkpoint_name(benchmark), validation_definitions=definitions,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ID_COLUMNS},
    )), context  # fmt: skip


def run_checkpoint(report_dir: Path, benchmark: str, config: ValidationConfig, data_version: str) -> tuple[Any, Path]:
    """Create the project and run its checkpoint on the tables already in `report_dir`; returns (result, index)."""
    from great_expectations.core.run_identifier import RunIdentifier

    from moca.validation.datadocs import make_offline

    checkpoint, context = create_checkpoint(report_dir, benchmark, config, data_version)
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_name(benchmark, _safe(data_version))))
    context.build_data_docs(site_names=[SITE])
    site = report_dir / DOCS_DIR
    make_offline(site)
    return result, site / "index.html"
