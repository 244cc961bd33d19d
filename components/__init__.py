"""Kubeflow Pipelines v2 components, one per step, each a thin wrapper: `setup_process()`, then
`moca.steps.pod.run_step` (the step's own `moca.steps.<step>.run`, which the CLI, the Prefect flow and the tests
call too, with the pod's config section, runtime parameters, MLflow parent run and data), then set the outputs.

Installed as the package `moca.components` (pyproject.toml maps this folder), so the pipeline imports it from any
working directory. Each component's primary output artifact IS its step folder, named by the role downstream steps
read it as (`pairs`, `model`, ...; moca.steps.PIPELINE). KFP's cache key is built from a task's parameters, its
input artifacts (by identity) and its container, never file contents: so a component takes `data_version` (a
content address) and `git_sha` as parameters even where its step does not read them, only the runtime parameters
of its own config section (changing lr retrains but does not re-mine), and nothing that is new per run (the MLflow
parent run is found by the run key in the pod's environment, moca.steps.pod). Component bodies import only `moca`
at run time (KFP embeds their source in the compiled YAML), so they run in the moca images as they are.
"""

# The image a component is compiled with when the config names none; `moca pipeline compile` replaces it with
# the digest-pinned image of configs/pipeline_*.yaml for every task.
DEFAULT_IMAGE = "moca-cpu:0.1.0"
