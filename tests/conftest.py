"""Shared fixtures: a moto S3 server, a real `mlflow server` process, and a per-test SQLite MLflow store.

Every server listens on 127.0.0.1 on a free port and is stopped by its fixture. Fixtures hand out the environment
a client needs (`.env`) instead of changing os.environ for the whole session, so tests that do not ask for a
store never see one; `s3_env` and `tmp_tracking` apply it to one test through monkeypatch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Fake credentials: moto accepts any; tests scanning for leaks look for these exact strings.
FAKE_ACCESS_KEY = "AKIAMOCATESTFAKE0001"
FAKE_SECRET_KEY = "moca-test-secret-do-not-log-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


@contextlib.contextmanager
def server_process(command: list[str], health_path: str, env: dict[str, str], log_path: Path,
                   timeout_s: float) -> Iterator[str]:
    """Run a server (its `command` holds a `{port}` placeholder) on a free loopback port in its own process group
    until the block ends; yields its base URL once `health_path` answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([part.format(port=port) for part in command], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(url + health_path, timeout_s, process)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="session")
def start_server():
    """`server_process` for tests in other folders (conftest modules are not importable by name)."""
    return server_process


@dataclass
class MotoS3:
    """A moto S3 server on 127.0.0.1. moto keeps its state in-process, so a stop/start keeps the buckets."""

    port: int = field(default_factory=free_port)
    server: object = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MOCA_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            # Three attempts (botocore backs off ~0.5 s, then ~1 s) so fault tests run in seconds, not minutes.
            "MOCA_STORAGE_ATTEMPTS": "3",
            "MOCA_S3_CONNECT_TIMEOUT_S": "2",
            "MOCA_S3_READ_TIMEOUT_S": "10",
        }

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_http(self.endpoint, 20)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def create_bucket(self, name: str | None = None) -> str:
        import boto3

        name = name or f"moca-test-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_SECRET_KEY)
        client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def make_s3_server() -> Iterator[type[MotoS3]]:
    """The MotoS3 class, for a test that needs a private server it can stop and restart (outage tests)."""
    yield MotoS3


@pytest.fixture
def s3_env(s3_server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """The session S3 server with its endpoint and fake credentials in this test's environment."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


@dataclass
class MlflowServer:
    url: str
    artifact_bucket: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def mlflow_server(s3_server: MotoS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` (SQLite backend, artifacts proxied to the moto S3 server). Takes ~20 s to start."""
    root = tmp_path_factory.mktemp("mlflow-server")
    bucket = s3_server.create_bucket("mlflow-artifacts")
    env = {**os.environ, **s3_server.env}
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", f"s3://{bucket}/artifacts",
    ]
    with server_process(command, "/health", env, root / "server.log", 120) as url:
        yield MlflowServer(url=url, artifact_bucket=bucket, env={**s3_server.env, "MLFLOW_TRACKING_URI": url})


@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Create an MLflow SQLite schema once (migrations take seconds) for every tmp_tracking store to copy."""
    import mlflow

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def tmp_tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _empty_mlflow_db: Path) -> str:
    """A fresh local MLflow store (SQLite + artifact folder) in tmp_path, set through the environment."""
    store = tmp_path / "tracking"
    store.mkdir()
    shutil.copy(_empty_mlflow_db, store / "mlflow.db")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MOCA_ARTIFACT_ROOT", str(store / "mlartifacts"))
    return uri


def install_into_scratch_venv(wheel: Path, venv: Path) -> Path:
    """A venv at `venv` with this environment's dependencies (a .pth to their site-packages) but none of its moca:
    `wheel`, installed with --no-deps, is the only moca there, as in the images. Returns the venv's site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    dependencies = [p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir()]
    (site / "deps.pth").write_text("\n".join(dependencies) + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    return site


@pytest.fixture(scope="session")
def scratch_venv():
    """`install_into_scratch_venv` for tests (conftest modules are not importable by name)."""
    return install_into_scratch_venv


def write_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A train step folder of the tiny MoCA model (adapters.pt + config.yaml, as `moca train` writes them) with
    untrained adapters: for tests that need a model that loads and predicts (registration, serving), not a good one."""
    import torch
    import yaml

    from moca.models import MocaModel, tiny_moca_config

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)  # the backbone's random init, as training seeds it
    torch.save(MocaModel(tiny_moca_config()).adapter_state_dict(), folder / "adapters.pt")
    model = {"backbone": "imagebind_tiny", "adapter": {"positions": [2, 4], "bottleneck": 32, "heads": 4}}
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": model, "seed": seed}), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_model():
    """`write_tiny_model` for tests."""
    return write_tiny_model


@dataclass
class ImageInstall:
    """The project as the images install it: a non-editable wheel in a scratch venv (no checkout, no `.dvc`)."""

    wheel: Path
    bin: Path  # python3, moca
    site: Path


@pytest.fixture(scope="session")
def image_install(tmp_path_factory: pytest.TempPathFactory) -> ImageInstall:
    """`pip install .` of this checkout into a scratch venv whose big dependencies (torch, mlflow, kfp, ...) are
    this environment's, reached through a .pth file instead of being installed again (~30-60 s, not an install of
    torch). Only the wheel provides `moca` there."""
    root = tmp_path_factory.mktemp("image")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(REPO)], check=True, capture_output=True)  # fmt: skip
    (wheel,) = (root / "dist").glob("moca-*.whl")
    venv = root / "venv"
    return ImageInstall(wheel=wheel, bin=venv / "bin", site=install_into_scratch_venv(wheel, venv))


# The buckets of k8s/README.md step 4 (data, weights, MLflow artifacts) and KFP's own artifact store.
CLUSTER_BUCKETS = ("moca-data", "moca-weights", "moca-mlflow", "mlpipeline")
DATA_POINTER = "s3://moca-data/pointers/s4.dvc"
DVC_REMOTE = "s3://moca-data/dvc"


@pytest.fixture(scope="session")
def cluster_store() -> Iterator[MotoS3]:
    """A private S3 store holding the buckets a deployment has (their names are in the manifests)."""
    server = MotoS3()
    server.start()
    for bucket in CLUSTER_BUCKETS:
        server.create_bucket(bucket)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster_mlflow(cluster_store: MotoS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow server as k8s/base/stack/mlflow.yaml runs it (artifacts proxied to s3://moca-mlflow); its URL."""
    root = tmp_path_factory.mktemp("cluster-mlflow")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--serve-artifacts",
               "--artifacts-destination", f"s3://moca-mlflow/{root.name}"]  # fmt: skip
    with server_process(command, "/health", {**os.environ, **cluster_store.env}, root / "server.log", 180) as url:
        yield url


@dataclass
class Published:
    version: str
    pointer: str
    data: Path  # the dataset as the producer had it


@pytest.fixture(scope="session")
def published_data(cluster_store: MotoS3, image_install: ImageInstall,
                   tmp_path_factory: pytest.TempPathFactory) -> Published:  # fmt: skip
    """Tiny synthetic S4 data published as a data producer does (k8s/README.md): `dvc push` to the remote in the
    store, then `moca data publish` (the installed CLI) of the pointer the runs read."""
    from moca.data.synth import SynthConfig, synthesize
    from moca.versioning import add_and_push

    repo = tmp_path_factory.mktemp("producer")
    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    remote = s3\n"
                                          f"['remote \"s3\"']\n    url = {DVC_REMOTE}\n")  # fmt: skip
    data = synthesize(repo / "data", SynthConfig(benchmark="s4", videos=12, seed=0))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in cluster_store.env.items():
            patch.setenv(name, value)
        version = add_and_push(data)
    env = {"PATH": f"{image_install.bin}:/usr/bin:/bin", "HOME": str(repo), **cluster_store.env}
    result = subprocess.run([str(image_install.bin / "moca"), "data", "publish", "data.dvc", "--to", DATA_POINTER,
                             "--remote", DVC_REMOTE], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and version in result.stdout, result.stderr[-2000:]
    return Published(version=version, pointer=DATA_POINTER, data=data)
