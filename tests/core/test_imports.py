"""Each Kubeflow task is a fresh interpreter, so whatever a module imports at import time every task pays for
(docs/benchmarks/pipeline.md: seconds per task for torch, MLflow, Great Expectations). The light modules and every
component's own imports must not pull the heavy libraries: a step imports those when it runs, and only the steps
that use them. Checked in one fresh interpreter, in order: what each target adds to `sys.modules` is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "mlflow", "great_expectations", "matplotlib", "timm", "segment_anything", "imagebind", "boto3",
         "dvc", "prefect", "sqlalchemy", "kfp.kubernetes")  # fmt: skip
# The front door and the per-process plumbing: not even pandas or kfp (the CLI's --help stays fast).
CORE = ("moca", "moca.steps", "moca.runtime", "moca.steps.pod", "moca.steps.runner", "moca.tracking",
        "moca.tracking.runs", "moca.components", "moca.cli")  # fmt: skip
# Steps whose work needs none of the heavy libraries at import (validate loads Great Expectations when it runs).
LIGHT_STEPS = ("moca.steps.ingest", "moca.steps.validate", "moca.steps.evaluate", "moca.steps.register")
COMPONENTS = tuple(sorted(p.stem for p in (Path(__file__).parents[2] / "components").glob("*.py")
                          if p.stem != "__init__"))  # fmt: skip

# For a component: what its task process imports before the step runs, as kfp.dsl.executor_main does it (the
# executor, the component's module) and then the import statements at the top of the component's body.
PROBE = """
import ast, importlib, inspect, json, sys, textwrap

def component_imports(name):
    import kfp.dsl.executor_main  # noqa: F401
    function = getattr(importlib.import_module(f"moca.components.{name}"), name).python_func
    for node in ast.parse(textwrap.dedent(inspect.getsource(function))).body[0].body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            exec(compile(ast.Module([node], []), f"<{name} body>", "exec"), {})

added = {}
for kind, target in json.loads(sys.argv[1]):
    before = set(sys.modules)
    component_imports(target) if kind == "component" else importlib.import_module(target)
    added[target] = sorted(set(sys.modules) - before)
print(json.dumps(added))
"""


def _forbidden(target: str) -> tuple[str, ...]:
    return (*HEAVY, "pandas", "kfp") if target in CORE else HEAVY


@pytest.fixture(scope="module")
def added_modules() -> dict[str, list[str]]:
    targets = [("module", m) for m in (*CORE, *LIGHT_STEPS)] + [("component", c) for c in COMPONENTS]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(targets)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("target", [*CORE, *LIGHT_STEPS, *COMPONENTS])
def test_import_pulls_no_heavy_library(added_modules, target):
    heavy = [m for m in added_modules[target] if any(m == h or m.startswith(f"{h}.") for h in _forbidden(target))]
    top = sorted({m.split(".")[0] for m in heavy})
    assert not heavy, f"importing {target} pulls {top} (first: {heavy[:3]}): import them where they are used"


def test_probe_sees_a_heavy_import():
    """The probe can fail: a module that does import a heavy library (pandas, the cheapest) is seen doing it."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps([["module", "moca.data.layout"]])],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "pandas" in json.loads(done.stdout.splitlines()[-1])["moca.data.layout"]


def test_setup_process_freezes_objects_before_the_final_collection():
    """What the heavy imports leave behind is frozen at exit, once however often setup_process ran, so the
    interpreter's last collections skip it; the exit hook registered first runs last and sees that."""
    code = (
        "import atexit, gc\n"
        "calls, freeze = [], gc.freeze\n"
        "gc.freeze = lambda: calls.append(1) or freeze()\n"
        "atexit.register(lambda: print('exit', len(calls), gc.get_freeze_count() > 0))\n"
        "from moca.runtime import setup_process\n"
        "setup_process(); setup_process()\n"
        "print('running', len(calls), gc.get_freeze_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["running", "0", "0", "exit", "1", "True"]
