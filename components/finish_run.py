from kfp import dsl

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def finish_run(status: dsl.PipelineTaskFinalStatus, experiment: str) -> str:
    """The exit handler: runs however the run ended and ends the MLflow parent run the same way (FAILED when any
    task failed, including a pod killed for memory); returns the MLflow status."""
    from moca.runtime import setup_process
    from moca.steps.pod import finish

    setup_process()
    return finish(experiment, status.state, status.error_message or "")
