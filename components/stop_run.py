from kfp import dsl

from moca.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def stop_run(reason: str) -> None:
    """The gate's failing branch: fail this task, so the KFP run shows as failed (the exit handler then marks the
    MLflow run FAILED)."""
    from moca.errors import ValidationFailed
    from moca.runtime import setup_process

    setup_process()
    raise ValidationFailed(f"data failed validation, training not started: {reason}")
