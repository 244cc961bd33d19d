"""The registered model: an MLflow pyfunc holding the adapter weights, the config and the backbone manifest.

The model folder (`model_dir` artifact) holds `adapter.safetensors` (or `.pt`), `config.yaml` and
`backbones.json` (backbone name -> {uri, sha256}); the frozen backbones themselves are too large to copy into
every version, so they are fetched by URI and checked against their sha256 at load time. The model is logged as
code (`pyfunc_entry.py`), not as a pickle, so loading a registered model never unpickles anything.

The serving contract (docs/tracking.md): one row per frame, `image` = the encoded frame (PNG or JPEG bytes) and
`audio` = the clip (WAV bytes), both `binary` columns, so a served model receives base64 strings in JSON and never
reads a path on the server; the output is one row per input row, `map` = the normalised audio-pixel map (H x W
floats in [0, 1], at the frame's size). Its requirements name the project's own wheel, logged with the model
(`moca` on the public index is another project).
"""

from __future__ import annotations

import importlib.metadata
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from moca.errors import MocaError, WeightsError
from moca.io import atomic_write_text, read_json, write_json
from moca.tracking.scrub import scrub, scrub_obj

INPUT_COLUMNS = ("image", "audio")
OUTPUT_COLUMN = "map"
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")
# Installed with --no-deps (docs/dependencies.md): pip would replace the pinned torch for its undeclared extras.
EXTRA_REQUIREMENTS = ("imagebind-unofficial",)


class MocaPyfunc(mlflow.pyfunc.PythonModel):
    """predict(rows of image bytes + audio bytes) -> one audio-pixel map per row, delegated to `moca.infer`."""

    def load_context(self, context):  # noqa: ANN001
        self.model_dir = Path(context.artifacts["model_dir"])
        for name in ("config.yaml", "backbones.json"):
            if not (self.model_dir / name).is_file():
                raise WeightsError(f"{self.model_dir / name}: missing from the logged model")

    # A DataFrame hint: MLflow derives no schema from it (the explicit signature is logged) and asks for no hint.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ANN001
        return predict_maps(self.model_dir, model_input)


def predict_maps(model_dir: Path, model_input: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in INPUT_COLUMNS if c not in model_input.columns]
    if missing:
        raise MocaError(f"model input lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}")
    from moca.infer import predict_frames  # lazily: it pulls torch and the backbones

    return pd.DataFrame({OUTPUT_COLUMN: predict_frames(model_dir, model_input)})


def signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.schema import Array

    return ModelSignature(inputs=Schema([ColSpec(DataType.binary, column) for column in INPUT_COLUMNS]),
                          outputs=Schema([ColSpec(Array(Array(DataType.float)), OUTPUT_COLUMN)]))


def example_input() -> pd.DataFrame:
    """One row of the serving contract: a 64x64 PNG (a lit square on grey) and one second of a 440 Hz tone."""
    import soundfile
    from PIL import Image

    frame = np.full((64, 64, 3), 96, dtype=np.uint8)
    frame[16:48, 16:48] = (220, 120, 40)
    image = io.BytesIO()
    Image.fromarray(frame).save(image, format="PNG")
    rate = 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    audio = io.BytesIO()
    soundfile.write(audio, tone.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return pd.DataFrame({"image": [image.getvalue()], "audio": [audio.getvalue()]})


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


def requirements(wheel: Path) -> list[str]:
    """pip requirements of the model: the project's wheel (an artifact of the model, installed with its pinned
    dependencies) and the packages moca installs beside it."""
    extras = []
    for name in EXTRA_REQUIREMENTS:
        try:
            extras.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return [f"artifacts/{wheel.name}", *extras]


def log_model(adapter_weights: Path, config_yaml: Path, backbones: dict[str, dict[str, str]],
              name: str = "model") -> Any:
    """Log the pyfunc (in the active run, if any); returns MLflow's ModelInfo (`model_id`, `model_uri`).

    The model must predict its serving example first: one that cannot serve is never logged (WeightsError)."""
    from moca.tracking.runs import git_sha
    from moca.tracking.wheel import project_wheel

    wheel = project_wheel()
    example = example_input()
    with tempfile.TemporaryDirectory(prefix="moca-model-") as staging:
        model_dir = stage_model_dir(Path(adapter_weights), Path(config_yaml), backbones, Path(staging) / "model")
        try:
            predict_maps(model_dir, example)
        except MocaError as exc:
            raise WeightsError(f"the model cannot predict its serving example, so it is not logged: {exc}") from exc
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(ENTRY_FILE),
            artifacts={"model_dir": str(model_dir), "wheel": str(wheel)},
            signature=signature(),
            input_example=example,
            pip_requirements=requirements(wheel),
            metadata={"moca_version": importlib.metadata.version("moca"), "git_sha": git_sha()},
        )


def read_backbones(model_dir: Path) -> dict[str, dict[str, str]]:
    return read_json(Path(model_dir) / "backbones.json")
