"""Kubeflow Pipelines v2 components, one per step, each a thin wrapper: parse its config section, call the step's
`moca.steps.<step>.run` (the same function the CLI, the Prefect flow and the tests call), set its outputs.

Installed as the package `moca.components` (pyproject.toml maps this folder), so the pipeline imports it from any
working directory. Each component's primary output artifact IS its step folder, named by the role downstream steps
read it as (`pairs`, `model`, ...; moca.steps.PIPELINE). Every component takes `data_version`, `git_sha` and
`config_hash` as parameters even where its step does not read them: KFP's cache key is built from parameters and
artifact URIs, never file contents, so these are what make a cached result stand for the same data, code and
config. Component bodies import only `moca` at run time (KFP embeds their source in the compiled YAML), so they
run in the moca images as they are.
"""

# The image a component is compiled with when the config names none; `moca pipeline compile` replaces it with
# the digest-pinned image of configs/pipeline_*.yaml for every task.
DEFAULT_IMAGE = "moca-cpu:0.1.0"
