"""Patient influence: how much one test patient moves a score (issue 31, part A).

For a row of runs (seeds) with per-patient test confusions, each patient is left out in turn and the score recomputed
from the others (``benchmark.scores``, so a pooled score re-sums and a patient-level one re-weighs). A patient's
*change* is the mean over seeds of (score without it - score with every patient): positive when the patient pulls
the row down. The most influential patient is the one with the largest absolute change. On MIT-BIH's DS2 one record
(232) holds 75 % of the S beats and moves the pooled macro-F1 of some rows by 4-6 points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.scores import score_patients


def leave_one_out(conf: np.ndarray, metric: str, scored: Sequence[int]) -> np.ndarray:
    """``(S, P, K, K)`` per-seed, per-patient confusions -> ``(S, P)``: each seed's score with patient p left out."""
    n_patients = conf.shape[1]
    if n_patients < 2:
        raise ValueError("leaving a patient out needs at least two patients")
    others = np.array([[q for q in range(n_patients) if q != p] for p in range(n_patients)])  # (P, P-1)
    return score_patients(conf[:, others], metric, scored)


@dataclass(frozen=True)
class Influence:
    """Each patient's change of the mean-over-seeds score when it is left out, largest absolute change first."""

    patients: tuple[str, ...] = ()
    changes: tuple[float, ...] = ()

    @property
    def top(self) -> str | None:
        """The most influential patient (None without patients)."""
        return self.patients[0] if self.patients else None

    def change_of(self, patient: str) -> float:
        return self.changes[self.patients.index(patient)]


def influence(conf: np.ndarray, patients: Sequence[str], metric: str, scored: Sequence[int]) -> Influence:
    """The patients of ``conf`` (``(S, P, K, K)``, in ``patients`` order) ordered by influence; ties by name."""
    if conf.shape[1] < 2:
        return Influence()
    full = score_patients(conf, metric, scored)  # (S,)
    changes = (leave_one_out(conf, metric, scored) - full[:, None]).mean(axis=0)
    order = sorted(range(len(patients)), key=lambda i: (-abs(float(changes[i])), str(patients[i])))
    return Influence(tuple(str(patients[i]) for i in order), tuple(float(changes[i]) for i in order))
