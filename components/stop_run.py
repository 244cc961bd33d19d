from kfp import dsl

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def stop_run(parent_run_id: str, reason: str) -> None:
    """The gate's failing branch: mark the MLflow run failed and fail this task, so the KFP run shows as failed."""
    from moca.errors import ValidationFailed
    from moca.runtime import setup_process
    from moca.tracking.runs import finish_pipeline_run

    setup_process()
    finish_pipeline_run(parent_run_id, "FAILED")
    raise ValidationFailed(f"data failed validation, training not started: {reason}")
