"""Synthetic dataset: deterministic, shaped as promised, split by fake subject, and learnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datasets.base import DATASETS, DatasetBundle
from datasets.synthetic import Synthetic


@pytest.fixture(scope="module")
def bundle() -> DatasetBundle:
    return Synthetic().load(Path("unused"), Path("unused"))


def test_registered() -> None:
    assert DATASETS.get("synthetic") is Synthetic


def test_shapes(bundle: DatasetBundle) -> None:
    assert bundle.input_shape == (2, 128) and bundle.n_classes == 5 and bundle.split == "fixed"
    assert bundle.scored_classes == bundle.classes == ("A", "B", "C", "D", "E")
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (3200, 400, 400)
    for split in (bundle.train, bundle.val, bundle.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64 and split.groups.dtype == np.int64
        assert min(split.class_counts(5)) > 0


def test_imbalanced(bundle: DatasetBundle) -> None:
    counts = bundle.train.class_counts(5)
    assert counts[0] > 2 * counts[4]


def test_subjects_disjoint(bundle: DatasetBundle) -> None:
    sets = [set(s.groups.tolist()) for s in (bundle.train, bundle.val, bundle.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_deterministic(bundle: DatasetBundle) -> None:
    again = Synthetic().load(Path("elsewhere"), Path("elsewhere"))
    assert np.array_equal(again.train.x, bundle.train.x) and np.array_equal(again.test.y, bundle.test.y)
    assert (again.split_hash, again.data_checksum) == (bundle.split_hash, bundle.data_checksum)


def test_learnable(bundle: DatasetBundle) -> None:
    """A tiny CNN beats the majority-class rate on validation after two epochs."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(2, 8, 7, padding=3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool1d(8),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 5),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.from_numpy(bundle.train.x), torch.from_numpy(bundle.train.y)
    for _ in range(2):
        for idx in torch.randperm(len(y)).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        pred = model(torch.from_numpy(bundle.val.x)).argmax(1).numpy()
    majority = max(bundle.val.class_counts(5)) / len(bundle.val)
    assert (pred == bundle.val.y).mean() > majority + 0.15


def test_the_default_student_learns_it_at_smoke(tmp_path: Path) -> None:
    """One smoke epoch of the default student reaches macro-F1 >= 0.6, so a method that learns nothing stands out."""
    from benchmark.results import JobKey
    from benchmark.runner import Job, run_one

    result = run_one(Job(JobKey("synthetic", "fixed", "small", "smoke", "student", 0), str(tmp_path),
                         str(tmp_path / "cache"), device="cpu"))
    assert result.ok, result.error
    assert result.metrics["macro_f1"] >= 0.6
