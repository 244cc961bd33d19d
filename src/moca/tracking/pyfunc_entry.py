"""Models-from-code entry point: MLflow runs this file to build the pyfunc, so no pickle is stored or loaded."""

import mlflow

from moca.tracking.pyfunc import MocaPyfunc

mlflow.models.set_model(MocaPyfunc())
