"""Isolation by construction: nothing reachable from a method's run context leads to the test split.

The walk follows every attribute (instance dicts and slots), container item, dict key and value, closure cell,
default argument and bound ``self`` reachable from the context, and fails on a test array (by content or shared
memory), the teacher's logits on the test split, the test split's patient ids, or any path into the data root or the
cache (where the preprocessed test arrays and the teacher store live). Loggers are process-wide and hold no run data,
so they are not walked; modules and classes are code, not run state.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pytest
import torch

from benchmark.context import RunContext
from benchmark.results import JobKey
from benchmark.runner import Job, build_context, load_bundle
from benchmark.teachers import TeacherStore
from datasets.base import DatasetBundle
from methods import METHODS

LEAVES = (str, bytes, int, float, complex, bool, type(None), torch.device, torch.dtype, torch.Generator)


def reachable(root: Any) -> Iterator[tuple[str, Any]]:
    """Every object reachable from ``root`` with the attribute path that reached it first."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("ctx", root)]
    while stack:
        where, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield where, obj
        if isinstance(obj, (*LEAVES, np.ndarray, torch.Tensor, PurePath, logging.Logger, types.ModuleType, type)):
            continue
        if isinstance(obj, dict):
            for k, v in obj.items():
                stack += [(f"{where}[key {k!r}]", k), (f"{where}[{k!r}]", v)]
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack += [(f"{where}[{i}]", v) for i, v in enumerate(obj)]
            continue
        if isinstance(obj, types.MethodType):
            stack += [(f"{where}.__self__", obj.__self__), (f"{where}.__func__", obj.__func__)]
            continue
        if isinstance(obj, types.FunctionType):
            cells = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
            stack += [(f"{where}<closure {i}>", v) for i, v in enumerate(cells)]
            stack += [(f"{where}<defaults>", obj.__defaults__), (f"{where}<kwdefaults>", obj.__kwdefaults__)]
            continue
        if isinstance(obj, functools.partial):
            stack += [(f"{where}.func", obj.func), (f"{where}.args", obj.args), (f"{where}.keywords", obj.keywords)]
            continue
        for name, value in _attributes(obj):
            stack.append((f"{where}.{name}", value))


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    attrs = list(vars(obj).items()) if hasattr(obj, "__dict__") else []
    for klass in type(obj).__mro__:
        for name in getattr(klass, "__slots__", ()):
            if hasattr(obj, name):
                attrs.append((name, getattr(obj, name)))
    return attrs


class Forbidden:
    """What a method must not reach: the test arrays, the teacher's test logits, test patient ids, cache paths."""

    def __init__(self, bundle: DatasetBundle, roots: list[Path], test_logits: list[np.ndarray]) -> None:
        self.arrays = [bundle.test.x, bundle.test.y, bundle.test.groups, *test_logits]
        self.patients = np.unique(bundle.test.groups)
        self.roots = [str(r.resolve()) for r in roots]

    def problem(self, obj: Any) -> str | None:
        if isinstance(obj, PurePath | str) and any(root in str(obj) for root in self.roots):
            return f"a path into the data root or cache: {obj}"
        if isinstance(obj, list | tuple) and obj and all(isinstance(v, int) for v in obj):
            if np.array_equal(np.asarray(obj), self.patients):
                return "the test split's patient ids"
        if isinstance(obj, torch.Tensor):
            obj = obj.detach().cpu().numpy() if obj.layout == torch.strided else None
        if isinstance(obj, np.ndarray) and obj.size:
            for arr in self.arrays:
                if np.shares_memory(obj, arr) or (obj.shape == arr.shape and np.array_equal(obj, arr)):
                    return f"a test array of shape {arr.shape}"
            if np.array_equal(obj, self.patients):
                return "the test split's patient ids"
        return None

    def found(self, root: Any) -> list[str]:
        return [f"{where}: {why}" for where, obj in reachable(root) if (why := self.problem(obj)) is not None]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("isolation-cache")


def context(method: str, cache: Path, data: Path) -> tuple[RunContext, Forbidden]:
    job = Job(JobKey("synthetic", "fixed", "small", "smoke", method, 0), str(data), str(cache), device="cpu")
    bundle = load_bundle(job)
    ctx = build_context(job, bundle, torch.device("cpu"))
    test_x = torch.as_tensor(bundle.test.x)
    logits = [ctx.engine.predict(ctx.teacher_provider(seed).model, test_x).numpy()
              for seed in getattr(ctx.teacher_provider, "seeds", lambda: [])()]
    return ctx, Forbidden(bundle, [cache, data], logits)


@pytest.mark.parametrize("method", METHODS.names())
def test_nothing_reachable_from_a_method_context_leads_to_the_test_split(method: str, cache: Path,
                                                                         tmp_path: Path) -> None:
    ctx, forbidden = context(method, cache, tmp_path)
    instance = METHODS.get(method)()
    assert forbidden.found(ctx) == []
    assert forbidden.found(instance) == []
    assert METHODS.get(method).uses_teacher == bool(ctx.teacher_provider.seeds())  # type: ignore[attr-defined]


def test_the_walk_finds_test_arrays_and_store_paths(cache: Path, tmp_path: Path) -> None:
    """The walk can fail: a context exposing a teacher store (the design before issue 32), a test array deep in its
    notes, or the test patients' ids, is caught, each with the path that reached it."""
    ctx, forbidden = context("vanilla_kd", cache, tmp_path)
    bundle = load_bundle(Job(JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", 0), str(tmp_path),
                             str(cache)))
    ctx.notes["leak"] = {"store": TeacherStore.in_cache(cache)}
    ctx.notes["deep"] = [(torch.as_tensor(bundle.test.x),)]
    ctx.notes["ids"] = sorted(set(bundle.test.groups.tolist()))
    found = forbidden.found(ctx)
    assert any("notes['leak']['store'].root" in f and "path" in f for f in found), found
    assert any("notes['deep'][0][0]" in f and "test array" in f for f in found), found
    assert any("notes['ids']" in f and "patient" in f for f in found), found
