"""Scores of confusion matrices: the pooled ones (one matrix) and the patient-level ones (one matrix per patient).

A pooled score sums the patients' matrices and scores the sum, so a patient weighs by its number of beats: on
MIT-BIH's DS2 one record holds 75 % of the S beats. The patient-level scores (docs/evaluation.md, issue 31) weigh
patients instead of beats:

- ``macro_f1_patients`` (patient-weighted macro-F1): in the row of class ``k`` every patient with at least
  ``MIN_BEATS`` beats of ``k`` counts equally (its row divided by its own count, times the eligible patients' mean
  count); a patient with fewer keeps its row as counted. Row totals are unchanged; macro-F1 of the weighted matrix.
- ``macro_f1_capped``: each patient's row ``k`` counts at most ``CAP`` of the class's beats (one pass), then the row
  is rescaled to the class total; macro-F1 of the result.
- ``balanced_se_patients``: per patient, the mean sensitivity over the scored classes it has ``MIN_BEATS`` beats
  of; the mean over patients.

Every function is vectorised over leading axes: per-patient confusions are ``(..., P, K, K)`` (rows true, columns
predicted), so a bootstrap can score thousands of resampled patient sets in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

POOLED = ("macro_f1", "accuracy", "kappa")  # scored from the sum of the patients' matrices
MIN_BEATS = 10  # a patient counts in a class's row (or a class in a patient's score) from this many beats
CAP = 0.25  # the largest share of a class one patient keeps in ``macro_f1_capped``


def divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def score_confusions(confusion: np.ndarray, metric: str, scored: Sequence[int]) -> np.ndarray:
    """``metric`` of each confusion matrix in ``confusion`` (shape ``(..., K, K)``, rows true, columns predicted).

    ``macro_f1`` averages the per-class F1 over the ``scored`` class indices (F1 0 for a class neither present nor
    predicted, as ``benchmark.metrics``); ``accuracy``; ``kappa`` (Cohen's; 0 where chance agreement is 1).
    """
    conf = np.asarray(confusion, dtype=float)
    total = conf.sum(axis=(-2, -1))
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    if metric == "accuracy":
        return divide(diag.sum(axis=-1), total)
    if metric == "macro_f1":
        true, pred = conf.sum(axis=-1), conf.sum(axis=-2)
        f1 = divide(2 * diag, true + pred)
        return f1[..., list(scored)].mean(axis=-1)
    if metric == "kappa":
        observed = divide(diag.sum(axis=-1), total)
        chance = divide((conf.sum(axis=-1) * conf.sum(axis=-2)).sum(axis=-1), total**2)
        return divide(observed - chance, 1 - chance)
    raise ValueError(f"metric {metric!r} cannot be scored from a confusion matrix (one of {', '.join(POOLED)})")


def _reweighted(conf: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The sum over patients of each patient's matrix with row ``k`` multiplied by ``scale[..., p, k]``."""
    return (conf * scale[..., None]).sum(axis=-3)


def patient_weighted(conf: np.ndarray, min_beats: int = MIN_BEATS) -> np.ndarray:
    """``(..., P, K, K)`` -> ``(..., K, K)``: every patient with ``min_beats`` beats of a class weighs equally in
    that class's row; the others keep their counts; row totals unchanged."""
    conf = np.asarray(conf, dtype=float)
    counts = conf.sum(axis=-1)  # (..., P, K): each patient's beats of each class
    eligible = counts >= min_beats
    share = divide((counts * eligible).sum(axis=-2), eligible.sum(axis=-2))  # (..., K): eligible patients' mean
    scale = np.where(eligible, divide(np.broadcast_to(share[..., None, :], counts.shape), counts), 1.0)
    return _reweighted(conf, scale)


def capped(conf: np.ndarray, cap: float = CAP) -> np.ndarray:
    """``(..., P, K, K)`` -> ``(..., K, K)``: each patient's row ``k`` cut to at most ``cap`` of class ``k``'s beats,
    then row ``k`` rescaled to the class total."""
    conf = np.asarray(conf, dtype=float)
    counts = conf.sum(axis=-1)
    total = counts.sum(axis=-2)  # (..., K)
    kept = np.minimum(counts, cap * total[..., None, :])
    rescale = divide(total, kept.sum(axis=-2))
    return _reweighted(conf, divide(kept, counts) * rescale[..., None, :])


def patient_balanced_sensitivity(conf: np.ndarray, scored: Sequence[int], min_beats: int = MIN_BEATS) -> np.ndarray:
    """``(..., P, K, K)`` -> ``(...)``: the mean over patients of each patient's mean sensitivity over the scored
    classes it has ``min_beats`` beats of (patients with no such class left out; 0 when none is left)."""
    conf = np.asarray(conf, dtype=float)
    counts = conf.sum(axis=-1)
    sensitivity = divide(np.diagonal(conf, axis1=-2, axis2=-1), counts)
    mask = np.zeros(counts.shape, dtype=bool)
    mask[..., list(scored)] = counts[..., list(scored)] >= min_beats
    per_patient = divide((sensitivity * mask).sum(axis=-1), mask.sum(axis=-1))  # (..., P)
    has = mask.any(axis=-1)
    return divide((per_patient * has).sum(axis=-1), has.sum(axis=-1))


PatientScore = Callable[[np.ndarray, Sequence[int]], np.ndarray]
PATIENT_SCORES: dict[str, PatientScore] = {
    "macro_f1_patients": lambda conf, scored: score_confusions(patient_weighted(conf), "macro_f1", scored),
    "macro_f1_capped": lambda conf, scored: score_confusions(capped(conf), "macro_f1", scored),
    "balanced_se_patients": patient_balanced_sensitivity,
}
SCORABLE: tuple[str, ...] = (*POOLED, *PATIENT_SCORES)  # every score computable from per-patient confusions


def score_patients(conf: np.ndarray, metric: str, scored: Sequence[int]) -> np.ndarray:
    """``metric`` of each set of per-patient confusions ``(..., P, K, K)`` -> ``(...)``: a pooled metric scores the
    patients' sum, a patient-level one weighs the patients (module docstring)."""
    if metric in PATIENT_SCORES:
        return PATIENT_SCORES[metric](conf, scored)
    if metric in POOLED:
        return score_confusions(np.asarray(conf, dtype=float).sum(axis=-3), metric, scored)
    raise ValueError(f"metric {metric!r} cannot be scored from per-patient confusions (one of {', '.join(SCORABLE)})")
