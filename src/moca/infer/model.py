"""Load a trained MoCA model from a training output folder, an adapter checkpoint, or an MLflow model URI.

Accepted `--model` values:
  DIR                         a `moca train` output (adapters.pt + config.yaml) or a logged model folder
                              (adapter.pt / adapter.safetensors + config.yaml + backbones.json)
  DIR/adapters.pt             an adapter checkpoint; its config.yaml must sit beside it
  models:/moca@champion,      anything MLflow can download (registered alias or version, LoggedModel id, run
  models:/m-..., runs:/...    artifact); fetched into a temporary folder, then read as a logged model folder

A backbone without weights (the tiny demo/test configs) is random-initialised exactly as training did: the torch
seed is set to the training seed before the model is built, so the frozen weights are the ones trained against.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import yaml

from moca.config import from_dict
from moca.data.audio import AudioConfig
from moca.errors import ConfigError, WeightsError
from moca.io import atomic_open, read_json, sha256_file
from moca.models import MocaConfig, MocaModel, WeightsSpec, load_checkpoint
from moca.models.moca_model import untrained_adapter_state

log = logging.getLogger(__name__)
ADAPTER_FILES = ("adapters.pt", "adapter.pt", "adapter.safetensors")
REMOTE_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/", "s3://", "http://", "https://")


@dataclass
class LoadedModel:
    model: MocaModel
    audio: AudioConfig
    source: str  # what the user passed
    adapters: Path  # the adapter file actually read
    adapters_sha256: str


def _adapter_file(folder: Path) -> Path | None:
    for name in ADAPTER_FILES:
        if (folder / name).is_file() and (folder / "config.yaml").is_file():
            return folder / name
    return None


def find_adapters(root: Path) -> Path:
    """The adapter file under `root` that has a config.yaml beside it (a downloaded MLflow model nests it)."""
    if root.is_file():
        if (root.parent / "config.yaml").is_file():
            return root
        raise WeightsError(f"{root}: no config.yaml beside the adapter checkpoint")
    found = _adapter_file(root)
    if found is None:
        candidates = sorted(p for p in root.rglob("*")
                            if p.name in ADAPTER_FILES and (p.parent / "config.yaml").is_file())
        found = candidates[0] if candidates else None
    if found is None:
        raise WeightsError(f"{root}: no adapter checkpoint ({', '.join(ADAPTER_FILES)}) with a config.yaml beside it")
    return found


def download_model(uri: str, into: Path) -> Path:
    """Fetch an MLflow model/artifact URI into `into` (the project's tracking store, moca.tracking.runs)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from moca.tracking.runs import configure

    configure()
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(into)))
    except (MlflowException, OSError) as exc:
        raise WeightsError(f"{uri}: could not download the model ({exc})") from exc


def _read_adapters(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    return load_checkpoint(path)


def _model_config(config: dict[str, Any], folder: Path, where: str) -> MocaConfig:
    section = dict(config.get("model") or {})
    model_cfg = from_dict(MocaConfig, section, where=f"{where}: model")
    backbones = folder / "backbones.json"
    if model_cfg.backbone_weights is None and backbones.is_file():
        entry = read_json(backbones).get(model_cfg.backbone) or {}
        if entry.get("uri") and entry["uri"] != "random-init":
            weights = WeightsSpec(entry["uri"], entry.get("sha256") or None)
            model_cfg = replace(model_cfg, backbone_weights=weights)
    return model_cfg


def build_from_folder(adapters: Path, source: str, device: str = "cpu") -> LoadedModel:
    config_path = adapters.parent / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML ({exc})") from exc
    model_cfg = _model_config(config, adapters.parent, str(config_path))
    audio = from_dict(AudioConfig, dict(config.get("audio") or {}), where=f"{config_path}: audio")
    if model_cfg.backbone_weights is None:
        log.warning("%s: backbone %s has no weights; random-initialised from seed %s as in training",
                    source, model_cfg.backbone, config.get("seed", 0))
    torch.manual_seed(int(config.get("seed", 0)))  # reproduces training's random-init backbone (see module doc)
    model = MocaModel(model_cfg)
    model.load_adapter_state_dict(_read_adapters(adapters))
    return LoadedModel(model.to(device).eval(), audio, source, adapters, sha256_file(adapters))


def load_model(uri: str | Path, device: str = "cpu") -> LoadedModel:
    """Load the MoCA model named by `uri` (see the module doc for the accepted forms)."""
    text = str(uri)
    if text.startswith(REMOTE_SCHEMES):
        with tempfile.TemporaryDirectory(prefix="moca-model-") as tmp:
            return build_from_folder(find_adapters(download_model(text, Path(tmp))), text, device)
    path = Path(text)
    if not path.exists():
        raise WeightsError(f"{path}: model not found (expected a folder, an adapter checkpoint or an MLflow URI)")
    return build_from_folder(find_adapters(path), text, device)


def write_untrained(model: Path, out: Path) -> Path:
    """A model folder at `out` that is `model` (a `moca train` folder) before training: the same config and
    backbone, every adapter gate at 0. Inference with it shows what the frozen backbone alone does."""
    adapters = find_adapters(model)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "backbones.json"):
        if (adapters.parent / name).is_file():
            shutil.copyfile(adapters.parent / name, out / name)
    with atomic_open(out / "adapters.pt", "wb") as handle:
        torch.save(untrained_adapter_state(_read_adapters(adapters)), handle)
    return out
