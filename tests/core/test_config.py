from dataclasses import dataclass, field

import pytest

from moca.config import config_hash, from_dict, load_yaml
from moca.errors import ConfigError


@dataclass
class Inner:
    positions: tuple[int, ...] = (8, 16)
    width: int = 256


@dataclass
class Outer:
    lr: float = 1e-4
    inner: Inner = field(default_factory=Inner)


def test_nested_dataclass_and_tuple():
    cfg = from_dict(Outer, {"lr": 0.5, "inner": {"positions": [1, 2, 3]}})
    assert cfg.lr == 0.5 and cfg.inner.positions == (1, 2, 3) and cfg.inner.width == 256


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"config.inner: unknown key\(s\) \['widht'\]"):
        from_dict(Outer, {"inner": {"widht": 3}})


def test_yaml_errors_name_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="c.yaml: top level must be a mapping"):
        load_yaml(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="nothere.yaml: config file not found"):
        load_yaml(tmp_path / "nothere.yaml")


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(Outer()) == config_hash(Outer())
    assert config_hash(Outer()) != config_hash(Outer(lr=2e-4))


def test_coerce_accepts_none_an_instance_or_a_mapping():
    from moca.config import coerce

    assert coerce(Inner, None, "x") == Inner()
    inner = Inner(width=1)
    assert coerce(Inner, inner, "x") is inner
    assert coerce(Inner, {"width": 3}, "x") == Inner(width=3)
    with pytest.raises(ConfigError, match=r"sam.weights: unknown key\(s\) \['url'\]"):
        coerce(Inner, {"url": "s3://x"}, "sam.weights")
