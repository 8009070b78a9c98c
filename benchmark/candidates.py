"""The candidates a NAS method evaluated during its search, as the search audit reads them back from a record.

A method's ``search_trace`` (``RunContext.record_candidate``) lists what it evaluated, at which fidelity, with its
search-time score. ``Method.candidate_pool`` turns it into a ``CandidatePool`` (by default ``TracePool``: one entry per
distinct candidate, its latest evaluation kept) and ``Method.candidate_arch`` rebuilds one candidate as an ArchSpec.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from benchmark.results import ResultError
from datasets.base import stable_hash


class UnbuildableCandidate(ValueError):
    """A traced candidate that is no network (e.g. over the parameter budget, never trained): the audit skips it."""


class AuditUnsupported(ResultError):
    """A method (or record) whose search trace cannot be turned into architectures; the message says why (the CLI
    prints it as one line, like any unreadable record)."""


@dataclass(frozen=True)
class TraceEntry:
    """One distinct candidate: what it is (as data), its search-time score and the fidelity of that score."""

    candidate: dict[str, Any]
    score: float
    fidelity: str

    @property
    def id(self) -> str:
        return stable_hash(self.candidate, length=12)


class CandidatePool(Protocol):
    """The distinct candidates of one search, best search-time score first or in a seeded random order."""

    def __len__(self) -> int: ...

    def by_score(self) -> Iterator[TraceEntry]: ...

    def at_random(self, rng: np.random.Generator) -> Iterator[TraceEntry]: ...


class TracePool:
    """The trace's entries, one per distinct candidate (``key``: the whole candidate by default); a candidate
    evaluated again (a higher fidelity, a later supernet epoch) keeps its latest evaluation. Entries with a
    non-finite score are left out. Ties in score keep trace order."""

    def __init__(self, trace: Sequence[dict[str, Any]], key: Callable[[dict[str, Any]], Any] | None = None) -> None:
        latest: dict[str, TraceEntry] = {}
        for row in trace:
            try:
                entry = TraceEntry(dict(row["candidate"]), float(row["score"]), str(row.get("fidelity", "")))
            except (KeyError, TypeError, ValueError):
                raise AuditUnsupported(f"search trace entry {row!r:.80} lacks a candidate or a score") from None
            if not math.isfinite(entry.score):
                continue
            ident = json.dumps(key(entry.candidate) if key else entry.candidate, sort_keys=True, default=str)
            latest.pop(ident, None)  # re-inserted: dict order follows the latest evaluation
            latest[ident] = entry
        self.entries = list(latest.values())

    def __len__(self) -> int:
        return len(self.entries)

    def by_score(self) -> Iterator[TraceEntry]:
        order = sorted(range(len(self.entries)), key=lambda i: -self.entries[i].score)
        return (self.entries[i] for i in order)

    def at_random(self, rng: np.random.Generator) -> Iterator[TraceEntry]:
        return (self.entries[i] for i in rng.permutation(len(self.entries)))
