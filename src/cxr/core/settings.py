"""Settings given as JSON objects (presets, split schemes): checked key by key."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: The dataclass field metadata key of a :class:`Bounds`.
BOUNDS = "bounds"


@dataclass(frozen=True)
class Bounds:
    """The numbers a setting takes: ``low`` to ``high``, each end excluded if ``open_*``."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def holds(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def describe(self, whole: bool) -> str:
        """E.g. "a whole number >= 1", "a number in [0, 1)", "a finite number"."""
        kind = "a whole number" if whole else "a number"
        low, high = _show(self.low), _show(self.high)
        if math.isinf(self.low) and math.isinf(self.high):
            return kind if whole else "a finite number"
        if math.isinf(self.high):
            return f"{kind} {'>' if self.open_low else '>='} {low}"
        if math.isinf(self.low):
            return f"{kind} {'<' if self.open_high else '<='} {high}"
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"{kind} in {left}{low}, {high}{right}"


def _show(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def bounded(default: T, **bounds: Any) -> T:
    """A dataclass field holding a number within :class:`Bounds` (checked by
    :func:`from_mapping` and :func:`check_bounds`)."""
    return dataclasses.field(default=default, metadata={BOUNDS: Bounds(**bounds)})


def is_whole(value: object) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_bounds(obj: object, what: str) -> None:
    """Check every :func:`bounded` field of dataclass instance ``obj``."""
    for f in dataclasses.fields(obj):
        if BOUNDS in f.metadata:
            _check_number(what, f, getattr(obj, f.name))


def _check_number(what: str, f: dataclasses.Field, value: object) -> None:
    """A number field's value: whole for an int default, finite, and within its bounds."""
    whole = is_whole(f.default)
    bounds = f.metadata.get(BOUNDS, Bounds())
    fits = is_real(value) and (is_whole(value) or not whole)
    if not fits or not bounds.holds(value):
        raise ValueError(f"{what}: {f.name!r} must be {bounds.describe(whole)}, got {value!r}")


def from_mapping(cls: type[T], cfg: object, what: str, **extra: Any) -> T:
    """Build dataclass ``cls`` from ``cfg``, naming any unknown or missing key.

    ``extra`` supplies defaults that ``cfg`` may override (e.g. a seed given elsewhere). A value
    must be of its default's kind: a whole number for an int, a finite number for a float, a
    list (of its default's elements' kind) for a tuple.
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
        _check_kind(what, fields[name], value)
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except TypeError as err:  # a required value of the wrong type
        raise ValueError(f"{what}: {err}") from None


def _check_kind(what: str, f: dataclasses.Field, value: object) -> None:
    default = f.default
    if default is dataclasses.MISSING:
        return
    if BOUNDS in f.metadata:
        _check_number(what, f, value)
    elif not _same_kind(value, default):
        raise ValueError(f"{what}: {f.name!r} must be {_kind(default)}, got {value!r}")
    elif isinstance(default, (int, float)) and not isinstance(default, bool):
        _check_number(what, f, value)
    elif isinstance(default, tuple) and default and len({_kind(d) for d in default}) == 1:
        item = default[0]
        if isinstance(item, float) and not all(map(is_real, value)):
            raise ValueError(f"{what}: {f.name!r} must be a list of finite numbers, got {value!r}")
        if not all(_same_kind(v, item) for v in value):
            raise ValueError(
                f"{what}: {f.name!r} must be a list, each item {_kind(item)}, got {value!r}"
            )


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
