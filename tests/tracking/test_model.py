"""The registered model as a served model (docs/tracking.md, "Serving"): binary image and audio in, an audio-pixel map
out; requirements that name the project's own wheel, logged with the model; no MLflow warning when it is logged;
`mlflow models predict` on a real frame; and a model that cannot predict is never logged."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moca.errors import DataError, WeightsError
from moca.tracking import pyfunc, runs


class _Records(logging.Handler):
    """Every record of MLflow's own loggers (they do not propagate to pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _log_quietly(weights: Path, config: Path, backbones: dict) -> tuple[object, list[str]]:
    """Log the model; returns its ModelInfo and every MLflow warning (log record or Python warning) on the way."""
    handler = _Records()
    logging.getLogger("mlflow").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught, runs.pipeline_run("serve"):
            warnings.simplefilter("always")
            logged = pyfunc.log_model(weights, config, backbones)
    finally:
        logging.getLogger("mlflow").removeHandler(handler)
    # Deprecations inside libraries are hidden by Python's default filters: only what a user would see counts.
    mlflow_warnings = [f"{w.category.__name__}: {w.message}" for w in caught
                       if "mlflow" in w.filename and not issubclass(w.category, DeprecationWarning)]
    return logged, mlflow_warnings + [r.getMessage() for r in handler.records]


def test_the_model_takes_bytes_returns_maps_and_names_its_own_wheel(tmp_tracking: str, tmp_path: Path,
                                                                    model_files) -> None:
    import mlflow

    logged, noise = _log_quietly(*model_files(tmp_path / "model"))
    assert noise == []  # e.g. "Failed to validate serving input example", "Add type hints to predict"

    model = mlflow.pyfunc.load_model(logged.model_uri)
    schema = model.metadata.signature
    assert [(c.name, c.type.name) for c in schema.inputs.inputs] == [("image", "binary"), ("audio", "binary")]
    assert schema.outputs.to_dict() == [{"type": "array", "items": {"type": "array", "items": {"type": "float"}},
                                         "name": "map", "required": True}]
    local = Path(mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=str(tmp_path / "downloaded")))
    requirements = (local / "requirements.txt").read_text().split()
    (wheel_line,) = [r for r in requirements if r.endswith(".whl")]
    assert wheel_line.startswith("artifacts/moca-") and not any(r.split("==")[0] == "moca" for r in requirements)
    with zipfile.ZipFile(local / wheel_line) as wheel:  # pip installs it from the model folder (MLflow's cwd)
        names = set(wheel.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        assert "Name: moca" in wheel.read(metadata).decode()
    assert {"moca/__init__.py", "moca/tracking/pyfunc.py", "moca/components/register.py"} <= names
    serving = json.loads((local / "serving_input_example.json").read_text())["dataframe_split"]
    assert serving["columns"] == ["image", "audio"]
    assert base64.b64decode(serving["data"][0][0]).startswith(b"\x89PNG")  # base64 bytes, not a server path

    example = pyfunc.example_input()
    out = model.predict(example)
    assert list(out.columns) == ["map"] and out["map"][0].shape == (64, 64)
    assert out["map"][0].dtype == np.float32 and 0.0 <= out["map"][0].min() <= out["map"][0].max() <= 1.0
    broken = pd.DataFrame({"image": [example["image"][0]] * 2, "audio": [example["audio"][0], b"RIFF but no"]})
    with pytest.raises(DataError, match="input row 1: audio: unreadable audio"):
        model.predict(broken)


def test_a_model_that_cannot_predict_is_never_logged(tmp_tracking: str, tmp_path: Path, model_files) -> None:
    import mlflow

    weights, config, backbones = model_files(tmp_path / "model")
    weights.write_bytes(b"not a torch checkpoint")
    with pytest.raises(WeightsError, match="cannot predict its serving example, so it is not logged"):
        with runs.pipeline_run("broken"):
            pyfunc.log_model(weights, config, backbones)
    assert mlflow.search_logged_models(experiment_ids=[runs.ensure_experiment()], output_format="list") == []


def _request(image: bytes, audio: bytes) -> dict:
    """What a client POSTs to /invocations: base64 of the encoded frame and of the WAV file."""
    return {"dataframe_split": {"columns": ["image", "audio"],
                                "data": [[base64.b64encode(image).decode(), base64.b64encode(audio).decode()]]}}


@pytest.mark.slow  # the `mlflow models predict` process imports MLflow and torch: ~20-40 s on the shared cores
def test_mlflow_models_predict_on_a_real_frame(tmp_tracking: str, tmp_path: Path, model_files) -> None:
    import mlflow

    from moca.data.layout import list_videos
    from moca.data.synth import SynthConfig, synthesize
    from moca.infer import predict_frames

    data = tmp_path / "data"
    synthesize(data, SynthConfig(benchmark="s4", videos=6, seed=0, image_size=96))
    video = list_videos(data, "s4", "test")[0]
    image, audio = video.frames[0].image.read_bytes(), Path(video.audio).read_bytes()
    weights, config, backbones = model_files(tmp_path / "model")
    logged, _ = _log_quietly(weights, config, backbones)
    version = mlflow.register_model(logged.model_uri, "moca").version
    request = tmp_path / "request.json"
    request.write_text(json.dumps(_request(image, audio)))
    result = subprocess.run(
        [sys.executable, "-m", "mlflow", "models", "predict", "-m", f"models:/moca/{version}", "-i", str(request),
         "-t", "json", "--env-manager", "local", "-o", str(tmp_path / "response.json")],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    (prediction,) = json.loads((tmp_path / "response.json").read_text())["predictions"]
    served = np.asarray(prediction["map"], dtype=np.float32)
    expected = predict_frames(weights.parent, pd.DataFrame({"image": [image], "audio": [audio]}))[0]
    assert served.shape == expected.shape == (96, 96)
    np.testing.assert_allclose(served, expected, atol=1e-5)
