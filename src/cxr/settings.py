"""Settings given as JSON objects (presets, split schemes): checked key by key."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def from_mapping(cls: type[T], cfg: object, what: str, **extra: Any) -> T:
    """Build dataclass ``cls`` from ``cfg``, naming any unknown or missing key.

    ``extra`` supplies defaults that ``cfg`` may override (e.g. a seed given elsewhere).
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(cfg).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown}; known keys: {', '.join(fields)}")
    values = {**extra, **cfg}
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{what}: missing key(s) {missing}")
    for name, value in cfg.items():
        default = fields[name].default
        if default is not dataclasses.MISSING and not _same_kind(value, default):
            raise ValueError(f"{what}: {name!r} must be {_kind(default)}, got {value!r}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except TypeError as err:  # a required value of the wrong type
        raise ValueError(f"{what}: {err}") from None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (tuple, list)):
        return "a list"
    return f"a {type(value).__name__}"


def _same_kind(value: object, default: object) -> bool:
    return _kind(value) == _kind(default) or (
        isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)
    )
