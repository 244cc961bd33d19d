"""All steps in one process, in pipeline order: what the Kubeflow pipeline does, without Kubeflow.

Used to measure what kfp.local adds (benchmarks/bench_pipeline.py) and to debug a step with a plain traceback.
The pipeline (pipelines/training_pipeline.py) remains the one production path.
"""

from __future__ import annotations

from pathlib import Path

from moca.steps.config import PipelineConfig
from moca.steps.evaluate import evaluate
from moca.steps.infer import infer
from moca.steps.ingest import data_version, ingest
from moca.steps.manifest import StepResult
from moca.steps.mine_pairs import mine_pairs
from moca.steps.register import register_and_promote
from moca.steps.tracking import finish_pipeline_run, start_pipeline_run
from moca.steps.train import train
from moca.steps.validate import validate


def run_all(config: PipelineConfig, run_dir: str | Path, data_rev: str, run_name: str,
            git_sha: str) -> dict[str, StepResult]:
    """Run every step into `run_dir/<step>/` under one MLflow parent run; returns the step results by name."""
    # A failing step marks the parent run FAILED itself (moca.steps.tracking.step_tracking).
    run_dir, benchmark = Path(run_dir), config.data.benchmark
    config_hash = config.model_config_hash()
    parent = start_pipeline_run(run_name, params=config.section("data"), experiment=config.experiment,
                                tags={"moca.config_hash": config_hash, "moca.git_sha": git_sha})
    done: dict[str, StepResult] = {}
    done["ingest"] = ingest(config.data.path, run_dir / "ingest", benchmark, rev=data_rev,
                            remote=config.data.remote, parent_run_id=parent)
    version, data = data_version(done["ingest"]), run_dir / "ingest" / "data"
    tracked = {"data_version": version, "parent_run_id": parent}
    done["validate"] = validate(data, run_dir / "validate", benchmark, config=config.validation, drift=config.drift,
                                model_name=config.model_name, **tracked)  # fmt: skip
    done["mine_pairs"] = mine_pairs(data, run_dir / "mine_pairs", benchmark, config=config.mining, **tracked)
    done["train"] = train(data, run_dir / "mine_pairs" / "pairs" / "pairs.parquet", run_dir / "train", benchmark,
                          config=config.train, **tracked)  # fmt: skip
    model = run_dir / "train" / "model"
    done["infer"] = infer(data, model, run_dir / "infer", benchmark, config.evaluate.split, config=config.infer,
                          **tracked)  # fmt: skip
    done["evaluate"] = evaluate(run_dir / "infer" / "predictions", data, run_dir / "evaluate", benchmark,
                                config=config.evaluate, **tracked)  # fmt: skip
    done["register"] = register_and_promote(
        model, run_dir / "evaluate" / "evaluation.json", run_dir / "validate" / "report" / "stats.json",
        run_dir / "register", version, config_hash, config.evaluate.split, config.evaluate.metric, parent,
        model_name=config.model_name)  # fmt: skip
    finish_pipeline_run(parent, "FINISHED", metrics=done["register"].metrics)
    return done
