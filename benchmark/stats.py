"""Leaderboard statistics: confidence intervals that resample patients, paired comparisons, ranks with ties.

Why patients. Test beats (MIT-BIH) and epochs (Sleep-EDF) of one patient are strongly correlated; the unit that
generalises is the patient (the DS2 records, the held-out subjects), so every interval and test here resamples or
permutes whole patients, using the per-patient test confusion matrices each record stores
(``RunResult.test_confusion_by_group``). The statistic is always the quantity the table shows: the mean over seeds of
the main metric, each seed scored from its (resampled) patients' confusion matrices (``benchmark.scores``: summed for
a pooled score, weighed patient by patient for a patient-level one); one resample draws
the same patients for every seed, so seeds stay paired. Training noise is the ``std`` over seeds beside it.

- ``patient_interval``: 95 % percentile bootstrap over patients (``scipy.stats.bootstrap``).
- ``compare``: method minus baseline on their common seeds. CI: paired patient bootstrap (one draw of patients for
  both). p-value: two-sided paired permutation test over patients (``scipy.stats.permutation_test``,
  ``permutation_type="samples"``: each patient's predictions by the two methods are swapped at random). Chosen over
  Wilcoxon on seeds because 3-5 seeds cannot reach p < 0.05 with any difference (the smallest two-sided Wilcoxon
  p for n = 5 is 0.0625) and seeds do not sample the test population; and over a bootstrap p because the
  permutation test is exact in its assumption (exchangeable method labels per patient under no difference).
- ``holm``: Holm's step-down adjustment of one family's p-values (every row of one sub-table compared with the
  same baseline), so that a reader scanning a table for "p < 0.05" is protected against the many comparisons it
  shows (familywise error at most alpha). Holm rather than Bonferroni because it is uniformly more powerful under
  the same assumptions (none on dependence); rather than Benjamini-Hochberg because a leaderboard claim is "this
  method beats the baseline", one error per table is already one too many. scipy has no Holm (only BH/BY in
  ``false_discovery_control``), and five lines do not justify statsmodels as a dependency.
- Records without per-patient confusions (schema < 3) fall back to seed-level statistics: a Student-t interval over
  the seeds' values and, for pairs, the Wilcoxon signed-rank test on the per-seed differences; ``kind`` says which.

Every random draw comes from ``numpy.random.default_rng(RNG_SEED)``, so the same records give the same tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from benchmark.scores import score_patients

CONFIDENCE = 0.95
N_RESAMPLES = 2000
RNG_SEED = 20260
PATIENTS, SEEDS, NONE = "patients", "seeds", "none"  # what an interval or test resampled
_BATCH = 200  # resamples per vectorised call (bounds memory: batch x seeds x patients x classes^2)


@dataclass(frozen=True)
class Interval:
    """A confidence interval and what it resampled: ``patients`` (bootstrap), ``seeds`` (t-interval) or ``none``."""

    low: float = math.nan
    high: float = math.nan
    kind: str = NONE


@dataclass(frozen=True)
class Comparison:
    """Mean over common seeds of (method - baseline), its CI, a two-sided p-value, the test and the seeds paired."""

    diff: float = math.nan
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    test: str = NONE
    n_pairs: int = 0


def patient_array(per_seed: Sequence[Mapping[str, Sequence[Sequence[int]]]], patients: Sequence[str],
                  n_classes: int) -> np.ndarray:
    """The seeds' per-patient confusions as an array ``(seeds, patients, K, K)``; a patient a seed lacks is zeros."""
    out = np.zeros((len(per_seed), len(patients), n_classes, n_classes))
    for s, groups in enumerate(per_seed):
        for p, name in enumerate(patients):
            if name in groups:
                out[s, p] = np.asarray(groups[name], dtype=float)
    return out


def _seed_mean_score(conf: np.ndarray, idx: np.ndarray, metric: str, scored: Sequence[int]) -> np.ndarray:
    """Mean over seeds of ``metric`` of the patients ``idx`` (``(..., P)`` indices); conf is (S, P, K, K)."""
    picked = conf[:, np.asarray(idx, dtype=np.int64)]  # (S, ..., P, K, K)
    return score_patients(picked, metric, scored).mean(axis=0)


def patient_interval(conf: np.ndarray, metric: str, scored: Sequence[int], n_resamples: int = N_RESAMPLES,
                     seed: int = RNG_SEED) -> Interval:
    """95 % percentile bootstrap CI of the mean-over-seeds ``metric``, resampling patients; conf is (S, P, K, K)."""
    n_patients = conf.shape[1]
    if n_patients < 2:
        return Interval()

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        return _seed_mean_score(conf, np.moveaxis(idx, axis, -1), metric, scored)

    res = sps.bootstrap((np.arange(n_patients),), statistic, vectorized=True, n_resamples=n_resamples,
                        batch=_BATCH, method="percentile", confidence_level=CONFIDENCE,
                        rng=np.random.default_rng(seed))
    return Interval(float(res.confidence_interval.low), float(res.confidence_interval.high), PATIENTS)


def seed_interval(values: Sequence[float]) -> Interval:
    """95 % Student-t CI of the mean over seeds; none for fewer than 2 finite values."""
    array = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if array.size < 2:
        return Interval()
    sem = float(np.std(array, ddof=1) / math.sqrt(array.size))
    if sem == 0:
        return Interval(float(array.mean()), float(array.mean()), SEEDS)
    low, high = sps.t.interval(CONFIDENCE, array.size - 1, loc=float(array.mean()), scale=sem)
    return Interval(float(low), float(high), SEEDS)


def compare_patients(a: np.ndarray, b: np.ndarray, metric: str, scored: Sequence[int],
                     n_resamples: int = N_RESAMPLES, seed: int = RNG_SEED) -> Comparison:
    """Method ``a`` minus baseline ``b`` (each (S, P, K, K), seeds and patients aligned): paired patient bootstrap
    CI and a paired permutation test over patients."""
    n_seeds, n_patients = a.shape[:2]
    diff = float(np.mean(score_patients(a, metric, scored) - score_patients(b, metric, scored)))
    if n_patients < 2:
        return Comparison(diff=diff, test=NONE, n_pairs=n_seeds)
    stacked = np.concatenate([a, b], axis=1)  # patient i of a at i, of b at n_patients + i

    def difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
        return _seed_mean_score(stacked, x, metric, scored) - _seed_mean_score(stacked, y, metric, scored)

    idx = np.arange(n_patients)
    boot = sps.bootstrap((idx, idx + n_patients), difference, vectorized=True, paired=True, batch=_BATCH,
                         n_resamples=n_resamples, method="percentile", confidence_level=CONFIDENCE,
                         rng=np.random.default_rng(seed))
    perm = sps.permutation_test((idx, idx + n_patients), difference, permutation_type="samples", vectorized=True,
                                n_resamples=n_resamples, batch=_BATCH, rng=np.random.default_rng(seed))
    return Comparison(diff, float(boot.confidence_interval.low), float(boot.confidence_interval.high),
                      float(perm.pvalue), "paired permutation over patients", n_seeds)


def compare_seeds(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Method minus baseline from per-seed values on common seeds: t-interval and Wilcoxon signed-rank p-value."""
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return Comparison()
    interval = seed_interval(diffs.tolist())
    p = math.nan
    if diffs.size >= 2:
        p = 1.0 if np.all(diffs == 0) else float(sps.wilcoxon(diffs, zero_method="zsplit").pvalue)
    return Comparison(float(diffs.mean()), interval.low, interval.high, p, "Wilcoxon over seeds", int(diffs.size))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in input order; NaN entries stay NaN and do not count towards the family size."""
    finite_at = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(finite_at, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (len(finite_at) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals share a point."""
    return a[0] <= b[1] and b[0] <= a[1]


def tied_ranks(means: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> list[str]:
    """Competition ranks by mean (descending); a row whose CI overlaps its group leader's CI shares its rank.

    Rows are walked best first; the first row not tied with the current leader starts a new group ranked by its
    position. A shared rank reads ``=1`` on every row of the group, a lone one ``1``. A row without an interval is
    its mean (a point). Returned in input order.
    """
    def interval(i: int) -> tuple[float, float]:
        low, high = lows[i], highs[i]
        return (low, high) if math.isfinite(low) and math.isfinite(high) else (means[i], means[i])

    order = sorted(range(len(means)), key=lambda i: -means[i] if math.isfinite(means[i]) else math.inf)
    groups: list[list[int]] = []
    for i in order:
        if groups and overlaps(interval(groups[-1][0]), interval(i)):
            groups[-1].append(i)
        else:
            groups.append([i])
    ranks = [""] * len(means)
    position = 1
    for group in groups:
        for i in group:
            ranks[i] = f"={position}" if len(group) > 1 else str(position)
        position += len(group)
    return ranks
