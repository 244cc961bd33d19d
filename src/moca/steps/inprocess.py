"""Every step of `moca.steps.PIPELINE` in this process, in order, under one MLflow parent run: the Kubeflow pipeline
without Kubeflow, wired from the same declaration (each step's inputs are the folders of the steps producing the
roles it reads). For debugging with a plain traceback, for DVC stages and for measuring what kfp.local adds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from moca.steps import PIPELINE, producers, step_run, step_spec
from moca.steps.config import PipelineConfig
from moca.steps.ingest import DATA, data_version
from moca.steps.runner import Inputs, StepResult
from moca.steps.validate import require_passed
from moca.tracking.runs import finish_pipeline_run, git_sha, start_pipeline_run


def run_pipeline(config: PipelineConfig, run_dir: str | Path, run_name: str,
                 data_rev: str | None = None) -> dict[str, StepResult]:
    """Run every step into `run_dir/<step>/`; returns the step results by name. Bad data stops the run after
    validation (ValidationFailed, report kept); a failing step fails the parent run and leaves earlier outputs."""
    run_dir = Path(run_dir)
    config_hash = config.model_config_hash()
    # One machine: fetch the data once into the run folder, not by reference for each step.
    source = dataclasses.replace(config.data, rev=config.data.rev if data_rev is None else data_rev,
                                 by_reference=False)
    parent = start_pipeline_run(run_name, params=config.section("data"), experiment=config.experiment,
                                tags={"moca.config_hash": config_hash, "moca.git_sha": git_sha()})
    tracked = Inputs(benchmark=config.data.benchmark, parent_run_id=parent, model_name=config.model_name,
                     config_hash=config_hash)
    done = {"ingest": step_run("ingest")(source, tracked, run_dir / "ingest")}
    inputs = dataclasses.replace(tracked, data=run_dir / "ingest" / DATA, data_version=data_version(done["ingest"]))
    made_by = producers()
    for name in PIPELINE[1:]:
        spec = step_spec(name)
        upstream = {role: run_dir / made_by[role] for role in spec.reads}
        done[name] = step_run(name)(getattr(config, spec.section), dataclasses.replace(inputs, upstream=upstream),
                                    run_dir / name)
        if name == "validate" and not done[name].info["passed"]:
            finish_pipeline_run(parent, "FAILED")
            require_passed(done[name], inputs.data)
    finish_pipeline_run(parent, "FINISHED", metrics=done["register"].metrics)
    return done
