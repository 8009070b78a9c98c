"""A tiny, deterministic, learnable dataset for fast tests (no files: generated from a seeded RNG)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from datasets.base import Dataset, DatasetBundle, SplitArrays, register_dataset, stable_hash

SPEC: dict[str, Any] = {
    "version": 2,
    "seed": 20240,
    "classes": ("A", "B", "C", "D", "E"),
    "class_probs": (0.35, 0.25, 0.18, 0.13, 0.09),
    "sizes": {"train": 3200, "val": 400, "test": 400},
    "subjects": {"train": 12, "val": 4, "test": 4},
    "channels": 2,
    "length": 128,
    "cycles": (1.0, 3.0, 8.0, 16.0, 32.0),  # channel 0: sine cycles per window, by class
    "pulse_at": (0.2, 0.35, 0.5, 0.65, 0.8),  # channel 1: Gaussian pulse position (fraction of the window), by class
    "pulse_width": 0.1,  # channel 1: the pulse's sd (fraction of the window)
    "noise": 0.3,
}
SPLITS = ("train", "val", "test")


def subject_ids(split: str) -> np.ndarray:
    """Fake subject ids, disjoint between splits: train 0..11, val 12..15, test 16..19."""
    start = sum(SPEC["subjects"][s] for s in SPLITS[: SPLITS.index(split)])
    return np.arange(start, start + SPEC["subjects"][split])


def make_split(split: str) -> SplitArrays:
    """One split, generated from its own seeded stream (so the splits do not depend on each other's sizes)."""
    rng = np.random.default_rng([SPEC["seed"], SPLITS.index(split)])
    n, length = SPEC["sizes"][split], SPEC["length"]
    y = rng.choice(len(SPEC["classes"]), size=n, p=SPEC["class_probs"])
    subjects = subject_ids(split)
    groups = rng.choice(subjects, size=n)
    gain = dict(zip(subjects.tolist(), rng.uniform(0.7, 1.3, len(subjects)), strict=True))  # subject effect
    t = np.arange(length) / length
    cycles = np.asarray(SPEC["cycles"])[y, None] * rng.uniform(0.9, 1.1, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    centre = np.asarray(SPEC["pulse_at"])[y, None] + rng.normal(0, 0.03, (n, 1))
    x = np.empty((n, SPEC["channels"], length), dtype=np.float32)
    x[:, 0] = np.sin(2 * np.pi * cycles * t + phase)
    x[:, 1] = 2.0 * np.exp(-0.5 * ((t - centre) / SPEC["pulse_width"]) ** 2)
    x *= np.asarray([gain[g] for g in groups.tolist()], dtype=np.float32)[:, None, None]
    x += rng.normal(0, SPEC["noise"], x.shape).astype(np.float32)
    return SplitArrays(x=x, y=y.astype(np.int64), groups=groups.astype(np.int64))


def arrays_hash(splits: dict[str, SplitArrays]) -> str:
    """sha256 (16 hex) of every split's array bytes."""
    digest = hashlib.sha256()
    for name in SPLITS:
        for arr in (splits[name].x, splits[name].y, splits[name].groups):
            digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()[:16]


@register_dataset("synthetic")
class Synthetic(Dataset):
    """Synthetic 5-class signals for fast tests; input (2, 128), 3200/400/400 samples, fixed split.

    Channel 0 is a sine whose frequency depends on the class (1-32 cycles a window, +-10%, random phase); channel 1
    a Gaussian pulse whose position depends on the class. Each fake subject scales its samples (0.7-1.3), and
    Gaussian noise (sd 0.3) is added. Classes are imbalanced (35/25/18/13/9%). ``groups`` are fake subject ids,
    disjoint between splits. Sized so that one smoke epoch (50 steps of 64) teaches the default student
    (macro-F1 ~0.96), so a method that learns nothing stands out from the majority-class baseline (~0.10).
    ``data_root`` and ``cache_dir`` are ignored: generation takes milliseconds.
    """

    name = "synthetic"
    classes = SPEC["classes"]
    scored_classes = SPEC["classes"]
    citation = "synthetic (KD-NAS Bench test data)"

    def load(self, data_root: Path | None = None, cache_dir: Path | None = None, fold: int = 0) -> DatasetBundle:
        if fold != 0:
            raise ValueError(f"synthetic has one fixed split; fold={fold}")
        splits = {name: make_split(name) for name in SPLITS}
        return DatasetBundle(
            name=self.name,
            split=self.split_name(fold),
            classes=self.classes,
            scored_classes=self.scored_classes,
            train=splits["train"],
            val=splits["val"],
            test=splits["test"],
            split_hash=stable_hash({"sizes": SPEC["sizes"], "subjects": SPEC["subjects"], "seed": SPEC["seed"]}),
            data_checksum=stable_hash({"spec": SPEC, "arrays": arrays_hash(splits)}),
            card={
                "description": "synthetic class-dependent sine + pulse with subject gain and noise",
                "input_shape": (SPEC["channels"], SPEC["length"]),
                "class_counts": {n: dict(zip(self.classes, s.class_counts(5), strict=True)) for n, s in splits.items()},
                "spec": SPEC,
            },
        )
