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


@dataclass
class Typed:
    count: int = 1
    rate: float = 0.5
    flag: bool = True
    name: str = "x"
    sizes: tuple[int, ...] = (1,)
    pair: tuple[float, float] = (0.0, 1.0)
    table: dict[str, int] | None = None
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize(("data", "message"), [
    ({"count": "eight"}, "cfg.count: expected an integer, got 'eight'"),
    ({"count": 1.5}, "cfg.count: expected an integer, got 1.5"),
    ({"count": True}, "cfg.count: expected an integer, got True"),
    ({"flag": "no"}, "cfg.flag: expected true or false, got 'no'"),
    ({"rate": "fast"}, "cfg.rate: expected a number, got 'fast'"),
    ({"name": 3}, "cfg.name: expected a string, got 3"),
    ({"sizes": "2,4"}, "cfg.sizes: expected a list of integers, got '2,4'"),
    ({"sizes": [2, "x"]}, r"cfg.sizes\[1\]: expected an integer, got 'x'"),
    ({"pair": [1.0]}, r"cfg.pair: expected a list of 2 values \(a number, a number\), got \[1.0\]"),
    ({"table": {"train": "many"}}, "cfg.table.train: expected an integer, got 'many'"),
    ({"table": [1]}, r"cfg.table: expected a mapping, got \[1\]"),
    ({"inner": {"width": "wide"}}, "cfg.inner.width: expected an integer, got 'wide'"),
    ({"inner": 3}, "cfg.inner: expected a mapping, got 3"),
])  # fmt: skip
def test_values_are_checked_against_their_annotations_and_name_the_key(data, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        from_dict(Typed, data, "cfg")


def test_accepted_forms_are_typed_once():
    cfg = from_dict(Typed, {"rate": "1e-4", "count": 3, "sizes": [2, 4], "pair": [1, 2], "table": {"a": 1}})
    assert cfg.rate == 1e-4 and isinstance(cfg.rate, float)  # YAML 1.1 reads 1e-4 as a string
    assert cfg.sizes == (2, 4) and cfg.pair == (1.0, 2.0) and isinstance(cfg.pair[0], float)
    assert from_dict(Typed, {"rate": 2}).rate == 2.0 and from_dict(Typed, {"table": None}).table is None


def test_a_missing_required_key_is_named():
    @dataclass
    class Needs:
        uri: str

    with pytest.raises(ConfigError, match="^weights.uri: required, not given$"):
        from_dict(Needs, {}, "weights")


def test_overrides_are_yaml_values_on_dotted_keys():
    from moca.config import apply_overrides

    data = {"train": {"lr": 1.0, "model": None}, "name": "a"}
    out = apply_overrides(data, ["train.lr=1e-3", "train.model.adapter.positions=[2, 4]", "name=b", "new.flag=true",
                                 "train.tracking=false", "kfp.images={train: x}"])
    assert out == {"train": {"lr": "1e-3", "model": {"adapter": {"positions": [2, 4]}}, "tracking": False},
                   "name": "b", "new": {"flag": True}, "kfp": {"images": {"train": "x"}}}
    assert data["train"]["lr"] == 1.0  # the input is not modified
    for bad, message in (("train.lr", "expected KEY=VALUE"), ("=1", "expected KEY=VALUE"),
                         ("name.sub=1", "name is 'a', not a mapping"), ("x=[1", "not valid YAML")):
        with pytest.raises(ConfigError, match=message):
            apply_overrides(data, [bad])


def test_changed_keys_names_each_differing_leaf():
    from moca.config import changed_keys

    before = {"lr": 0.1, "model": {"adapter": {"positions": (2, 4)}}, "steps": 8}
    after = {"lr": 0.1, "model": {"adapter": {"positions": [2, 4]}}, "steps": 4, "extra": 1}
    assert changed_keys(before, after, "train") == ["train.extra: '(unset)' -> 1", "train.steps: 8 -> 4"]
