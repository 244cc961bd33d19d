"""The Kubeflow training pipeline (`training_pipeline.py`) and the Prefect retraining flow (`retrain_flow.py`)."""
