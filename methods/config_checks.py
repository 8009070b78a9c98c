"""Checks of method config values: each field's type (from its annotation) and the ranges a Config declares.

A Config lists its ranges in ``checks`` (``{"alpha": between(0, 1), "temperature": positive()}``); the base
config runs ``validate`` in ``__post_init__``, so a bad value is a ConfigError before any compute.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """A method config with an unknown, mistyped or out-of-range field; the message names it."""


@dataclass(frozen=True)
class Range:
    """A numeric range; ``low_open``/``high_open`` exclude the bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: Any) -> bool:
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def holds(self, value: Any) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


Check = Range | OneOf


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Range:
    return Range(low, high, low_open, high_open)


def positive() -> Range:
    return Range(low=0, low_open=True)


def at_least(low: float) -> Range:
    return Range(low=low)


def one_of(*values: Any) -> OneOf:
    return OneOf(values)


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (int for float is fine; bool is never a number)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_type_ok(value, arm) for arm in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    if origin in (tuple, list):
        return isinstance(value, (tuple, list))
    return True  # anything richer is the method's to check


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def validate(config: Any, checks: dict[str, Any]) -> None:
    """Raise ConfigError naming the first field of ``config`` with a wrong type or out of its range; ints given
    for float fields become floats."""
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value, annotation = getattr(config, f.name), hints.get(f.name, Any)
        if not _type_ok(value, annotation):
            raise ConfigError(f"{type(config).__qualname__}.{f.name} must be {_type_name(annotation)}, got {value!r}")
        if annotation is float and isinstance(value, int):
            object.__setattr__(config, f.name, float(value))
        check = checks.get(f.name)
        if check is not None and value is not None and not check.holds(value):
            raise ConfigError(f"{type(config).__qualname__}.{f.name} must be {check}, got {value!r}")
