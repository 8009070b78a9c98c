"""One generic registry: decorator registration, selection by name, comma list, wildcard or ``all``."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown or duplicate name; ``str(err)`` is a one-line message for the user."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A name -> item mapping filled by the ``register`` decorator.

    >>> METHODS = Registry("method")
    >>> @METHODS.register("vanilla_kd")
    ... class VanillaKD: ...
    >>> METHODS.get("vanila_kd")
    Traceback (most recent call last):
    ...
    benchmark.registry.RegistryError: unknown method 'vanila_kd'; did you mean 'vanilla_kd'?
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``item`` under ``name``; a duplicate name is an error."""

        def decorate(item: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return decorate

    def get(self, name: str) -> T:
        """The item registered as ``name``, or a RegistryError with a did-you-mean suggestion."""
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(self._unknown(name)) from None

    def select(self, spec: str) -> list[str]:
        """Names for ``all``, a comma list (``a,b``) or wildcards (``kd_*``), in registration order."""
        wanted = [part.strip() for part in spec.split(",") if part.strip()]
        if not wanted:
            raise RegistryError(f"no {self.kind} given; choose from {', '.join(self._items)}")
        chosen: list[str] = []
        for pattern in wanted:
            if pattern == "all":
                matches = list(self._items)
            elif any(ch in pattern for ch in "*?["):
                matches = [n for n in self._items if fnmatch.fnmatchcase(n, pattern)]
                if not matches:
                    raise RegistryError(f"no {self.kind} matches {pattern!r}; choose from {', '.join(self._items)}")
            else:
                self.get(pattern)
                matches = [pattern]
            chosen.extend(m for m in matches if m not in chosen)
        return chosen

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose from {', '.join(self._items)}"
        return f"unknown {self.kind} {name!r}{hint}"
