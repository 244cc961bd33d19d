"""The registered model: an MLflow pyfunc holding the adapter weights, the config and the backbone manifest.

The model folder (`model_dir` artifact) holds `adapter.safetensors` (or `.pt`), `config.yaml` and
`backbones.json` (backbone name -> {uri, sha256}); the frozen backbones themselves are too large to copy into
every version, so they are fetched by URI and checked against their sha256 at load time. The model is logged as
code (`pyfunc_entry.py`), not as a pickle, so loading a registered model never unpickles anything.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from moca.errors import MocaError, WeightsError
from moca.io import atomic_write_text, read_json, write_json
from moca.tracking.scrub import scrub, scrub_obj

INPUT_COLUMNS = ("image", "audio")
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")


class MocaPyfunc(mlflow.pyfunc.PythonModel):
    """predict(rows of image path + audio path) -> one audio-pixel map per row, delegated to `moca.infer`."""

    # No type hints on predict: MLflow would try to derive a signature from them; the explicit one is logged.
    def load_context(self, context):  # noqa: ANN001
        self.model_dir = Path(context.artifacts["model_dir"])
        for name in ("config.yaml", "backbones.json"):
            if not (self.model_dir / name).is_file():
                raise WeightsError(f"{self.model_dir / name}: missing from the logged model")

    def predict(self, context, model_input, params=None):  # noqa: ANN001
        missing = [c for c in INPUT_COLUMNS if c not in model_input.columns]
        if missing:
            raise MocaError(f"model input lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}")
        from moca.infer import predict_frames  # lazily: it pulls torch and the backbones

        return predict_frames(self.model_dir, model_input)


def stage_model_dir(adapter_weights: Path, config_yaml: Path, backbones: dict[str, dict[str, str]],
                    into: Path) -> Path:
    """Assemble the model folder; each backbone entry must name its `uri` and `sha256`."""
    for name, entry in backbones.items():
        if not {"uri", "sha256"} <= set(entry):
            raise WeightsError(f"backbone {name!r}: needs 'uri' and 'sha256', got {sorted(entry)}")
    for source in (adapter_weights, config_yaml):
        if not Path(source).is_file():
            raise WeightsError(f"{source}: not found; cannot log the model")
    into.mkdir(parents=True, exist_ok=True)
    shutil.copy2(adapter_weights, into / f"adapter{Path(adapter_weights).suffix}")
    # The config is text that travels with every version: a credential pasted into it must not.
    atomic_write_text(into / "config.yaml", scrub(Path(config_yaml).read_text(encoding="utf-8")))
    write_json(into / "backbones.json", scrub_obj(backbones))
    return into


def log_model(adapter_weights: Path, config_yaml: Path, backbones: dict[str, dict[str, str]],
              name: str = "model", example: Any | None = None) -> str:
    """Log the pyfunc in the active run; returns its model URI (`models:/m-...`) for `register_and_promote`."""
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(inputs=Schema([ColSpec("string", column) for column in INPUT_COLUMNS]))
    if example is None:
        example = pd.DataFrame({"image": ["frames/video_1.png"], "audio": ["audio/video.wav"]})
    with tempfile.TemporaryDirectory(prefix="moca-model-") as staging:
        model_dir = stage_model_dir(Path(adapter_weights), Path(config_yaml), backbones, Path(staging) / "model")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(ENTRY_FILE),
            artifacts={"model_dir": str(model_dir)},
            signature=signature,
            input_example=example,
            # Requirements are the project itself; inference would scan every import and take long.
            pip_requirements=["moca"],
        )
    return info.model_uri


def read_backbones(model_dir: Path) -> dict[str, dict[str, str]]:
    return read_json(Path(model_dir) / "backbones.json")
