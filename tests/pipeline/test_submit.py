"""`moca pipeline run --host` and `moca pipeline schedule` against a fake kfp.Client (no cluster here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pipeline_configs import write_config
from typer.testing import CliRunner

POINTER = "s3://moca-data/pointers/s4.dvc"


class FakeClient:
    """Records what moca asks of the Kubeflow Pipelines API."""

    instances: list[FakeClient] = []

    def __init__(self, host: str):
        self.host, self.calls = host, []
        FakeClient.instances.append(self)

    def create_run_from_pipeline_func(self, pipeline_func, arguments, run_name, experiment_name):
        self.calls.append(("run", pipeline_func, arguments, run_name, experiment_name))
        return SimpleNamespace(run_id="run-123")

    def create_experiment(self, name):
        self.calls.append(("experiment", name))
        return SimpleNamespace(experiment_id="exp-1")

    def create_recurring_run(self, **kwargs):
        self.calls.append(("recurring", kwargs))
        return SimpleNamespace(recurring_run_id="rr-9")


@pytest.fixture
def fake_kfp(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    import kfp

    FakeClient.instances = []
    monkeypatch.setattr(kfp, "Client", FakeClient)
    return FakeClient


def _cli(*args: str) -> str:
    from moca.cli import _register_all, app

    _register_all()
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("rev", ["0123456789abcdef0123456789abcdef.dir", POINTER])
def test_run_host_submits_the_pipeline_with_the_data_rev(fake_kfp, tmp_path, monkeypatch, rev):
    monkeypatch.chdir(tmp_path)  # any folder: the pipeline is an installed package
    config = write_config(tmp_path / "p.yaml", tmp_path / "data")
    output = _cli("pipeline", "run", "--host", "http://127.0.0.1:9", "--config", str(config), "--data-rev", rev,
                  "--run-name", "nightly-1", "--set", "train.lr=0.02")
    assert "submitted run run-123" in output
    (client,) = fake_kfp.instances
    (kind, func, arguments, run_name, experiment), = client.calls
    assert client.host == "http://127.0.0.1:9" and kind == "run"
    assert arguments == {"data_rev": rev, "run_name": "nightly-1"} and run_name == "nightly-1"  # a pointer as is
    assert experiment == "moca" and func.name == "moca-demo"
    assert func.component_spec.inputs["lr"].default == 0.02  # --set moves a runtime parameter's default


def test_schedule_creates_one_recurring_run_that_reads_the_data_pointer(fake_kfp, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the compiled package goes under ./.moca/pipeline
    config = write_config(tmp_path / "p.yaml", tmp_path / "data")
    output = _cli("pipeline", "schedule", "--host", "http://127.0.0.1:9", "--cron", "0 0 3 * * *", "--config",
                  str(config), "--data-rev", POINTER)
    assert "created recurring run rr-9" in output
    (client,) = fake_kfp.instances
    assert client.calls[0] == ("experiment", "moca")
    kind, kwargs = client.calls[1]
    assert kind == "recurring" and kwargs["cron_expression"] == "0 0 3 * * *"
    assert kwargs["experiment_id"] == "exp-1" and kwargs["max_concurrency"] == 1 and kwargs["no_catchup"] is True
    assert kwargs["params"] == {"data_rev": POINTER}  # read by each run's start_run, so new data is picked up
    package = Path(kwargs["pipeline_package_path"])
    compiled = next(yaml.safe_load_all(package.read_text()))
    assert compiled["pipelineInfo"]["name"] == "moca-demo"


@pytest.mark.parametrize("rev, problem", [("main", "a recurring run needs a data pointer"),
                                          ("", "a recurring run needs a data pointer")])
def test_schedule_refuses_data_that_would_never_change(fake_kfp, tmp_path, rev, problem):
    from moca.errors import ConfigError
    from moca.steps.kubeflow import schedule

    with pytest.raises(ConfigError, match=problem):
        schedule("http://127.0.0.1:9", write_config(tmp_path / "p.yaml", tmp_path / "d"), "0 0 3 * * *",
                 data_rev=rev)
    assert fake_kfp.instances == []


def test_a_cluster_run_refuses_placeholder_images_and_the_local_folder(fake_kfp, tmp_path):
    from moca.errors import ConfigError, DataError
    from moca.steps.kubeflow import submit

    zero = "reg/moca-gpu@sha256:" + "0" * 64
    with pytest.raises(ConfigError, match="infer, train would run a placeholder image digest"):
        submit("http://127.0.0.1:9", write_config(tmp_path / "a.yaml", tmp_path / "d", kfp={"gpu_image": zero}),
               data_rev=POINTER)
    with pytest.raises(ConfigError, match="a cluster run needs a data version its pods can fetch"):
        submit("http://127.0.0.1:9", write_config(tmp_path / "b.yaml", tmp_path / "d"), data_rev="")
    with pytest.raises(DataError, match="a git revision, which cannot be resolved here"):
        submit("http://127.0.0.1:9", write_config(tmp_path / "c.yaml", tmp_path / "d"), data_rev="main")
    assert fake_kfp.instances == []


def test_schedule_refuses_a_five_field_cron_before_calling_kfp(fake_kfp, tmp_path):
    from moca.errors import ConfigError
    from moca.steps.kubeflow import schedule

    with pytest.raises(ConfigError, match="6 fields"):
        schedule("http://127.0.0.1:9", write_config(tmp_path / "p.yaml", tmp_path / "d"), "0 3 * * *")
    assert fake_kfp.instances == []


def test_run_needs_exactly_one_target(tmp_path):
    from moca.cli import _register_all, app

    _register_all()
    result = CliRunner().invoke(app, ["pipeline", "run", "--config", str(tmp_path / "p.yaml")])
    assert result.exit_code != 0 and "exactly one of --local or --host" in str(result.exception)
