"""A static description of the registered methods, read from their source without importing them.

``python -m benchmark list`` must not pay for torch, optuna and scikit-learn just to print names and one-line
summaries, so this module reads ``methods/__init__.py`` for the method modules (in import = registration order)
and each module's syntax tree for ``@register_method("name")`` classes and their literal ``summary``,
``uses_teacher``, ``reference`` and ``ablations`` class attributes (inherited along base classes in the same module;
the ``Method`` defaults otherwise). ``tests/test_catalog.py`` checks that it agrees with the imported registry.
"""

from __future__ import annotations

import ast
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

METHODS_DIR = Path(__file__).resolve().parent.parent / "methods"
DEFAULTS = {"summary": "", "uses_teacher": True, "reference": False, "ablations": ()}


@dataclass(frozen=True)
class MethodInfo:
    """What ``list`` shows about a method."""

    name: str
    module: str
    summary: str = ""
    uses_teacher: bool = True
    reference: bool = False
    ablations: tuple[dict[str, object], ...] = ()  # ``Method.ablations``: the variants ``run --ablations`` adds

    @property
    def kind(self) -> str:
        return "reference" if self.reference else "method"


def method_modules(methods_dir: Path = METHODS_DIR) -> list[str]:
    """Module names imported by ``methods/__init__.py`` (``from methods import a, b``), in order."""
    tree = ast.parse((methods_dir / "__init__.py").read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "methods":
            names.extend(alias.name for alias in node.names if alias.name not in names)
    return names


def _registered_name(decorator: ast.expr) -> str | None:
    """``"x"`` for ``@register_method("x")`` or ``@METHODS.register("x")``, else None."""
    if not (isinstance(decorator, ast.Call) and decorator.args and isinstance(decorator.args[0], ast.Constant)):
        return None
    func = decorator.func
    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return decorator.args[0].value if called in ("register_method", "register") else None


def _class_attributes(node: ast.ClassDef, known: dict[str, dict[str, object]]) -> dict[str, object]:
    """Literal ``summary``/``uses_teacher``/``reference``/``ablations`` of a class, over those of its known bases."""
    values: dict[str, object] = dict(DEFAULTS)
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in known:
            values.update(known[base.id])
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign):
            targets = [stmt.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in DEFAULTS and stmt.value is not None:
                try:
                    values[target.id] = ast.literal_eval(stmt.value)
                except ValueError:
                    pass  # not a literal: keep the inherited value
    return values


def module_methods(module: str, methods_dir: Path = METHODS_DIR) -> list[MethodInfo]:
    """The methods a module registers, in source order."""
    tree = ast.parse((methods_dir / f"{module}.py").read_text(encoding="utf-8"))
    classes: dict[str, dict[str, object]] = {}
    found: list[MethodInfo] = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        classes[node.name] = _class_attributes(node, classes)
        for decorator in node.decorator_list:
            name = _registered_name(decorator)
            if name is not None:
                attrs = classes[node.name]
                found.append(MethodInfo(name, f"methods.{module}", str(attrs["summary"]),
                                        bool(attrs["uses_teacher"]), bool(attrs["reference"]),
                                        tuple(attrs["ablations"])))  # type: ignore[arg-type]
    return found


def method_catalog(methods_dir: Path = METHODS_DIR) -> list[MethodInfo]:
    """Every registered method, in registration order, without importing any method module."""
    return [info for module in method_modules(methods_dir) for info in module_methods(module, methods_dir)]


def variant_name(options: Mapping[str, object]) -> str:
    """``{"aux_heads": False}`` -> ``aux_heads=false``: a run with non-default options is recorded apart."""
    return ",".join(f"{name}={value if isinstance(value, str) else json.dumps(value)}"
                    for name, value in sorted(options.items()))


def matches(name: str, pattern: str | None) -> bool:
    """``list PATTERN``: a wildcard (``*kd*``), else a case-insensitive substring; no pattern matches all."""
    if not pattern:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatch(name.lower(), pattern.lower())
    return pattern.lower() in name.lower()
