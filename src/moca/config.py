"""Typed configuration: YAML files map onto dataclasses, and unknown or mistyped keys are errors, not surprises.

`from_dict` is the one place a config value is parsed and typed: every value is checked against its field's
annotation (int, float, bool, str, tuples, lists, dicts, Optional/unions, Literal, nested dataclasses) and a
wrong one is refused with its full key (`train.batch_size: expected an integer, got 'eight'`). `apply_overrides`
puts `--set key.sub=value` (value parsed as YAML) on top of a YAML mapping before it is parsed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from moca.errors import ConfigError

C = TypeVar("C")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")  # YAML 1.1 reads "1e-4" as a string


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a folder, not a config file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def child_key(where: str, name: str) -> str:
    """`train` + `lr` -> `train.lr`; a file prefix (`x.yaml:`) or nothing -> `x.yaml: lr`, `lr`."""
    if not where:
        return name
    return f"{where} {name}" if where.endswith(":") else f"{where}.{name}"


def _describe(hint: Any) -> str:
    """What a value of type `hint` is, in words, for error messages."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        item = args[0] if args else Any
        return "a list" if item is Any else f"a list of {_plural(_describe(item))}"
    if origin is dict or hint is dict:
        return "a mapping"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _plural(words: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "a string": "strings", "a mapping": "mappings",
            "true or false": "true/false values"}.get(words, words)  # fmt: skip


def convert(hint: Any, value: Any, where: str) -> Any:
    """`value` checked against (and converted to) the annotation `hint`; ConfigError naming `where` otherwise."""
    if hint is Any or hint is object:
        return value
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return _convert_union(hint, args, value, where)
    if origin is Literal:
        if value in args:
            return value
    elif dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # type: ignore[arg-type]
            return value
        if isinstance(value, Mapping):
            return from_dict(hint, dict(value), where)  # type: ignore[arg-type]
    elif origin in (tuple, list):
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            return _convert_sequence(hint, origin, args, value, where)
    elif origin is dict or hint is dict:
        if isinstance(value, Mapping):
            key_hint, value_hint = args or (Any, Any)
            return {convert(key_hint, k, where): convert(value_hint, v, child_key(where, str(k)))
                    for k, v in value.items()}  # fmt: skip
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        number = _as_float(value)
        if number is not None:
            return number
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value  # an annotation this parser does not model (a Protocol, a TypeVar): the dataclass checks it
    raise ConfigError(f"{where}: expected {_describe(hint)}, got {value!r}")


def _as_float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _convert_union(hint: Any, args: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where}: expected {_describe(hint)}, got null")
    options = [a for a in args if a is not type(None)]
    # When one member alone takes values of this shape (a mapping for a dataclass or dict, a list for a tuple),
    # its error names the key that is wrong inside the value; otherwise say what the union takes.
    shaped = [o for o in options if _shape(o) == _shape(value)]
    if len(shaped) == 1 and _shape(value) in ("mapping", "list"):
        return convert(shaped[0], value, where)
    for option in options:
        try:
            return convert(option, value, where)
        except ConfigError:
            continue
    raise ConfigError(f"{where}: expected {_describe(hint)}, got {value!r}")


def _shape(hint_or_value: Any) -> str:
    """The YAML shape of a value, or of the values an annotation takes: mapping, list or scalar."""
    if isinstance(hint_or_value, Mapping):
        return "mapping"
    if isinstance(hint_or_value, Sequence) and not isinstance(hint_or_value, (str, bytes)):
        return "list"
    origin = get_origin(hint_or_value)
    if dataclasses.is_dataclass(hint_or_value) or origin is dict or hint_or_value is dict:
        return "mapping"
    if origin in (tuple, list):
        return "list"
    return "scalar"


def _convert_sequence(hint: Any, origin: Any, args: tuple[Any, ...], value: Sequence[Any], where: str) -> Any:
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {_describe(hint)}, got {list(value)!r}")
        items = [convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
    else:
        item = args[0] if args else Any
        items = [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def from_dict(cls: type[C], data: Mapping[str, Any], where: str = "config") -> C:
    """Build dataclass `cls` from `data`, every value typed by its annotation; unknown, missing or mistyped keys
    raise ConfigError naming the key (`where` is the key path of `data`, e.g. `train` or `configs/x.yaml:`)."""
    label = where.removesuffix(":") or cls.__name__
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {unknown}; known: {sorted(fields)}")
    missing = [name for name, f in fields.items() if name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # fmt: skip
    if missing:
        raise ConfigError(f"{child_key(where, missing[0])}: required, not given")
    hints = get_type_hints(cls)
    kwargs = {name: convert(hints[name], value, child_key(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{label}: {exc}") from exc


def coerce(cls: type[C], value: Any, where: str) -> C:
    """`value` as a `cls`: itself, built from a mapping (a YAML section: unknown keys are errors), or the
    defaults when None."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    return from_dict(cls, dict(value), where)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=1e-3` -> (['train', 'lr'], '1e-3'): the value is read as YAML (`x=[1, 2]`, `x=null`, `x=true`)."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc})") from exc
    return [p.strip() for p in parts], value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the YAML mapping `data` with each `key.sub=value` set (creating mappings on the way)."""
    result = json.loads(json.dumps(data, default=str)) if data else {}
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                if node.get(part) is not None:
                    where = ".".join(parts[: depth + 1])
                    raise ConfigError(f"--set {text!r}: {where} is {node[part]!r}, not a mapping")
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return result


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def plain(config: Any) -> Any:
    """A config (dataclass or mapping) as plain JSON data: tuples become lists, other objects their str()."""
    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    return json.loads(json.dumps(data, default=str))


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and tuples stay single values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """`key: old -> new` for every leaf that differs between two plain configs (for "which key changed")."""
    old, new = flatten(plain(before), prefix), flatten(plain(after), prefix)
    return [f"{key}: {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]  # fmt: skip


def config_hash(config: Any) -> str:
    """Stable short hash of a config (dataclass or mapping), used in cache keys and model tags."""
    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
