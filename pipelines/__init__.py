"""The Kubeflow training pipeline (`training_pipeline.py`) and the Prefect retraining flow (`retrain_flow.py`),
installed as the package `moca.pipelines` (pyproject.toml maps this folder)."""
