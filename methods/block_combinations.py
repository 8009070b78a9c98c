"""The architecture candidates of a block-wise search (DNA): one path per block, scored by the sum of its blocks'
scores, within a parameter budget. A block-wise trace scores paths per block, so every budget-feasible combination
has a search-time score without ever having been built; this pool enumerates them (vectorised) for the search audit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from benchmark.candidates import AuditUnsupported, TraceEntry

MAX_COMBINATIONS = 50_000_000  # a score and a parameter count each: 800 MB at this size


class BlockCombinationPool:
    """``blocks[i]``: the (path, score, params) of block i's scored paths. A combination's score is the sum of its
    paths' scores (higher is better); those whose paths' params exceed ``budget`` are left out."""

    def __init__(self, blocks: Sequence[Sequence[tuple[list[str], float, int]]], budget: int, fidelity: str) -> None:
        if not blocks or any(not paths for paths in blocks):
            raise AuditUnsupported("the block-wise search trace has a block without scored paths")
        total = math.prod(len(paths) for paths in blocks)
        if total > MAX_COMBINATIONS:
            raise AuditUnsupported(f"{total:,} path combinations: too many to rank (at most {MAX_COMBINATIONS:,})")
        self.paths = [[list(path) for path, _, _ in block] for block in blocks]
        self.fidelity = fidelity
        score, params = np.zeros(1), np.zeros(1, dtype=np.int64)
        for block in blocks:  # flat index = row-major over blocks
            score = np.add.outer(score, np.array([s for _, s, _ in block], dtype=float)).ravel()
            params = np.add.outer(params, np.array([p for _, _, p in block], dtype=np.int64)).ravel()
        feasible = np.flatnonzero((params <= budget) & np.isfinite(score))
        self.scores = score
        self.feasible = feasible
        self.shape = tuple(len(block) for block in blocks)

    def __len__(self) -> int:
        return len(self.feasible)

    def entry(self, flat: int) -> TraceEntry:
        choice = np.unravel_index(flat, self.shape)
        candidate: dict[str, Any] = {"paths": [self.paths[i][int(j)] for i, j in enumerate(choice)]}
        return TraceEntry(candidate, float(self.scores[flat]), self.fidelity)

    def by_score(self) -> Iterator[TraceEntry]:
        order = self.feasible[np.argsort(-self.scores[self.feasible], kind="stable")]
        return (self.entry(int(i)) for i in order)

    def at_random(self, rng: np.random.Generator) -> Iterator[TraceEntry]:
        return (self.entry(int(i)) for i in rng.permutation(self.feasible))
