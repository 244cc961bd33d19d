"""Credentials come only from the environment and never land anywhere: with fake secrets set (as Kubernetes Secrets
would), run the steps of a pipeline run (ingest, validate, evaluate, register and promote) with MLflow tracking,
then scan every byte written (step folders, manifests, reports, the MLflow database and artifacts) and every log
line and console output for them. tests/tracking/ checks the scrubber on hand-made leaks; this checks the steps.
Two full kfp.local runs get the same scan in test_concurrent_runs.py.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).parent))
from bench_load import write_predictions  # noqa: E402
from leaks import FAKE_SECRETS, scan_for_secrets  # noqa: E402


def test_no_credential_reaches_any_output_of_the_steps(s4_small: Path, tmp_path: Path, tmp_tracking: str,
                                                       monkeypatch: pytest.MonkeyPatch, caplog, capfd,
                                                       tiny_model) -> None:
    from moca.steps import evaluate, ingest, register, validate
    from moca.steps.runner import Inputs
    from moca.tracking.runs import finish_pipeline_run, start_pipeline_run

    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    work = tmp_path / "run"
    parent = start_pipeline_run("leak-scan", params={"data": str(s4_small)})
    ingested = ingest.run(ingest.IngestConfig(path=str(s4_small)), Inputs(parent_run_id=parent), work / "ingest")
    inputs = Inputs(data=ingested.out / "data", data_version=ingest.data_version(ingested), parent_run_id=parent,
                    config_hash="cfg")
    checked = validate.run(validate.ValidateConfig(), inputs, work / "validate")
    predictions = write_predictions(inputs.data, tmp_path / "pred")
    scores = evaluate.run(evaluate.EvaluateConfig(), replace(inputs, upstream={"predictions": predictions}),
                          work / "evaluate")
    upstream = {"model": tiny_model(tmp_path / "model"), "evaluation": scores.out, "report": checked.out}
    promoted = register.run(register.RegisterConfig(), replace(inputs, upstream=upstream), work / "register")
    finish_pipeline_run(parent)
    assert promoted.info["promoted"]  # the run really went all the way through

    out, err = capfd.readouterr()
    store = Path(tmp_tracking.removeprefix("sqlite:///")).parent
    scanned, leaks = scan_for_secrets([work, store], {"logs": caplog.text, "stdout": out, "stderr": err})
    assert scanned > 50 and not leaks, leaks
