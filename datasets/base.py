"""What every dataset provides: a spec (classes, splits, source) and a loader returning split arrays."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.registry import Registry


class DataError(RuntimeError):
    """Missing, truncated or corrupt input data; the message is one line naming the file."""


@dataclass(frozen=True)
class SplitArrays:
    """One split: inputs ``x`` (N, C, L) float32, labels ``y`` (N,) int64, ``groups`` (N,) record/subject ids."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.x) == len(self.y) == len(self.groups)):
            lengths = f"x={len(self.x)} y={len(self.y)} groups={len(self.groups)}"
            raise ValueError(f"split arrays disagree in length: {lengths}")

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self, n_classes: int) -> list[int]:
        return np.bincount(self.y, minlength=n_classes).tolist()

    def capped_per_class(self, max_per_class: int, seed: int) -> SplitArrays:
        """At most ``max_per_class`` random rows of each class (all rows of smaller classes), in their original
        order: a small training split that keeps every class, for smoke runs on real data."""
        rng = np.random.default_rng(seed)
        keep = np.zeros(len(self.y), dtype=bool)
        for label in np.unique(self.y):
            rows = np.flatnonzero(self.y == label)
            keep[rows if len(rows) <= max_per_class else rng.choice(rows, max_per_class, replace=False)] = True
        return SplitArrays(self.x[keep], self.y[keep], self.groups[keep])


@dataclass(frozen=True)
class DataView:
    """The part of a dataset a method may see: train and validation splits, never test."""

    name: str
    split: str  # e.g. "inter-patient" or "fold03"
    classes: tuple[str, ...]
    scored_classes: tuple[str, ...]  # classes averaged by macro metrics
    train: SplitArrays
    val: SplitArrays
    split_hash: str  # hash of the split definition (which records/subjects go where)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class DatasetBundle(DataView):
    """A loaded dataset for one split/fold: the runner keeps ``test``; methods get ``view()`` (train and val)."""

    test: SplitArrays = field(kw_only=True)
    data_checksum: str = field(kw_only=True)  # hash of the source files' checksums + preprocessing config
    card: dict[str, Any] = field(default_factory=dict, kw_only=True)  # window, rate, filtering, normalisation

    def view(self, max_train_per_class: int | None = None) -> DataView:
        """Everything but the test split; ``max_train_per_class`` caps each class of the training split (a fixed
        random subset, the same for every method and seed)."""
        train = self.train if max_train_per_class is None else self.train.capped_per_class(max_train_per_class, 0)
        return DataView(self.name, self.split, self.classes, self.scored_classes, train, self.val, self.split_hash)


class Dataset(ABC):
    """A dataset spec: name, classes, folds and how to load (and fetch) it from a data root."""

    name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    scored_classes: ClassVar[tuple[str, ...]]
    main_metric: ClassVar[str] = "macro_f1"
    # leaderboard per-class columns: "S" shows Se and +P of class S, "f1:N1" the F1 of class N1
    highlight_classes: ClassVar[tuple[str, ...]] = ()
    n_folds: ClassVar[int] = 1  # 1: a fixed train/val/test split; >1: cross-validation folds
    citation: ClassVar[str] = ""

    @abstractmethod
    def load(self, data_root: Path, cache_dir: Path, fold: int = 0) -> DatasetBundle:
        """Load (from cache when possible) the split for ``fold``; raise DataError naming any bad file."""

    def prepare(self, data_root: Path, cache_dir: Path) -> None:
        """Check the source files and build the caches once, before jobs load folds (default: load fold 0)."""
        self.load(data_root, cache_dir, 0)

    def split_name(self, fold: int = 0) -> str:
        return "fixed" if self.n_folds == 1 else f"fold{fold:02d}"

    def missing_files(self, data_root: Path) -> list[str]:
        """Relative paths (under ``data_root``) that ``load`` needs but are absent; empty when complete."""
        return []

    def verify(self, data_root: Path) -> None:
        """Check the present source files as ``load`` would (checksums); DataError naming the first bad one.
        Default: nothing beyond ``missing_files`` to check."""
        return None

    def fetch(
        self, data_root: Path, base_url: str | None = None, progress: bool = True, *, jobs: int = 4
    ) -> list[str]:
        """Download missing files (``jobs`` at a time) and verify them; returns the relative paths it fetched."""
        raise DataError(f"dataset {self.name!r} cannot be downloaded")


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short sha256 of ``obj`` serialised as canonical JSON (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


class ExternalTestSet(ABC):
    """A database used only to test models trained on another dataset (``for_dataset``), never to train or select:
    its beats come through that dataset's preprocessing, labelled with its classes, grouped by patient."""

    name: ClassVar[str]
    for_dataset: ClassVar[str]  # the registered dataset whose models it tests
    citation: ClassVar[str] = ""

    @abstractmethod
    def load(self, data_root: Path, cache_dir: Path) -> tuple[SplitArrays, str]:
        """Every usable beat (``groups``: the patient) and a checksum of the sources and preprocessing; DataError
        naming any bad or missing file."""

    @abstractmethod
    def card(self) -> dict[str, Any]:
        """What was read and how (records, lead, rate, window), as data for the records it scores."""


DATASETS: Registry[type[Dataset]] = Registry("dataset")
register_dataset = DATASETS.register
EXTERNAL_SETS: Registry[type[ExternalTestSet]] = Registry("external test set")
register_external = EXTERNAL_SETS.register
