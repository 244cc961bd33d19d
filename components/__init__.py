"""Kubeflow Pipelines v2 components, one per file, each a thin wrapper over its `moca.steps` function.

Every component takes `data_version`, `git_sha` and `config_hash` as parameters even where the step does not
read them: KFP's cache key is built from parameters and artifact URIs, never file contents, so these are what make
a cached result stand for the same data, code and config. Components import only `moca` at run time (their
source is embedded in the compiled YAML), so they run in the moca images without this folder.
"""

# The image a component is compiled with when the config names none; `moca pipeline compile` replaces it with
# the digest-pinned image of configs/pipeline_*.yaml for every task.
DEFAULT_IMAGE = "moca-cpu:0.1.0"
