"""The ``datasets`` package is this repo's (not Hugging Face's), registers its datasets, and its cache helper works."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import datasets
from datasets.base import DATASETS
from datasets.cache import atomic_open, load_or_build

REPO = Path(__file__).resolve().parents[1]


def test_package_is_ours() -> None:
    assert Path(datasets.__file__).resolve().is_relative_to(REPO / "datasets")


def test_registered() -> None:
    assert {"mitbih", "synthetic"} <= set(DATASETS.names())


def test_load_or_build(tmp_path: Path) -> None:
    calls: list[int] = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"a": np.arange(5), "b": np.ones((2, 3), dtype=np.float32)}

    path = tmp_path / "sub" / "x.npz"
    first = load_or_build(path, build)
    second = load_or_build(path, build)
    assert len(calls) == 1 and np.array_equal(second["b"], first["b"]) and second["b"].dtype == np.float32
    path.write_bytes(path.read_bytes()[:100])  # a truncated cache file is rebuilt
    assert np.array_equal(load_or_build(path, build)["a"], np.arange(5)) and len(calls) == 2
    assert np.array_equal(load_or_build(path, build, required=("c",))["a"], np.arange(5)) and len(calls) == 3
    assert [p.name for p in path.parent.iterdir()] == ["x.npz"]


def test_atomic_open_failure_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    try:
        with atomic_open(path) as handle:
            handle.write(b"partial")
            raise RuntimeError("interrupted")
    except RuntimeError:
        pass
    assert os.listdir(tmp_path) == []
