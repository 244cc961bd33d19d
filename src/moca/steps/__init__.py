"""The pipeline's steps, the only front door to the library for the CLI, the Kubeflow components, the Prefect flow
and the tests. Each step module owns one config dataclass and one `run(config, inputs, out)`; the one generic
layer they all run through (manifest, skip-on-rerun, resume, MLflow nesting) is `moca.steps.runner`.

    ingest -> validate -> mine_pairs -> train -> infer -> evaluate -> register

`PIPELINE` is that order, the one declaration both the Kubeflow pipeline (`moca.pipelines.training_pipeline`) and
the in-process runner (`moca.steps.inprocess`) are built from: each step reads its upstream inputs by role
(`Step.reads`), and a role is the output of the step that `produces` it. This package stays light: step modules
are imported when used.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

PIPELINE = ("ingest", "validate", "mine_pairs", "train", "infer", "evaluate", "register")

# The values people change from run to run (Kubeflow's "Create run" form): pipeline parameter -> the config keys it
# sets. Each task applies those of its own section as `--set` overrides; everything else is baked in at compile
# time. `data_rev` (what ingest fetches) is the one other pipeline parameter.
RUNTIME_PARAMETERS = {
    "lr": ("train.lr",),
    "epochs": ("train.epochs",),
    "max_steps": ("train.max_steps",),
    "batch_size": ("train.batch_size",),
    "eval_split": ("infer.split", "evaluate.split"),  # the benchmark split predicted and scored
    "promotion_metric": ("register.metric",),
}


def step_run(name: str) -> Any:
    """The `run(config, inputs, out)` of step `name`."""
    return importlib.import_module(f"moca.steps.{name}").run


def step_spec(name: str) -> Any:
    """The `moca.steps.runner.Step` of step `name`: its config section, what it reads and produces."""
    return step_run(name).step


def runtime_overrides(values: Mapping[str, Any], section: str | None = None) -> list[str]:
    """`--set` overrides (`train.lr=0.001`) for the runtime parameter `values` given, those of `section` only when
    named. Values are written as JSON, which YAML reads back with their types."""
    return [f"{key}={json.dumps(value)}" for name, value in values.items() for key in RUNTIME_PARAMETERS[name]
            if section is None or key.split(".", 1)[0] == section]  # fmt: skip


def producers() -> dict[str, str]:
    """Role -> the step producing it (`pairs` -> `mine_pairs`, `model` -> `train`, ...)."""
    return {step_spec(name).produces: name for name in PIPELINE}
