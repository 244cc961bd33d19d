from kfp import dsl

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def start_run(run_name: str, experiment: str, config_json: str, git_sha: str, config_hash: str) -> str:
    """Open the MLflow parent run of this pipeline run; every step logs a nested run under the returned id."""
    import json

    from moca.runtime import setup_process
    from moca.tracking.runs import start_pipeline_run

    setup_process()
    return start_pipeline_run(run_name, params=json.loads(config_json), experiment=experiment,
                              tags={"moca.config_hash": config_hash, "moca.git_sha": git_sha})
