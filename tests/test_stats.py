"""Statistics of the leaderboard: scores from confusion matrices, patient-bootstrap CIs, paired tests, tied ranks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from benchmark import scores, stats

K = 4


def _patients(skill: float, seed: int, n_seeds: int = 3, n_patients: int = 20, n: int = 120) -> np.ndarray:
    """(seeds, patients, K, K) confusions of a classifier right with probability ``skill`` (else a random class)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_seeds, n_patients, K, K))
    for s in range(n_seeds):
        for p in range(n_patients):
            true = rng.integers(0, K, n)
            pred = np.where(rng.random(n) < skill, true, rng.integers(0, K, n))
            np.add.at(out[s, p], (true, pred), 1)
    return out


def test_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, K, 500), rng.integers(0, K, 500)
    pred[:200] = true[:200]
    conf = np.zeros((K, K))
    np.add.at(conf, (true, pred), 1)
    assert scores.score_confusions(conf, "macro_f1", range(K)) == pytest.approx(f1_score(true, pred, average="macro"))
    assert scores.score_confusions(conf, "kappa", range(K)) == pytest.approx(cohen_kappa_score(true, pred))
    assert scores.score_confusions(conf, "accuracy", range(K)) == pytest.approx(np.mean(true == pred))
    with pytest.raises(ValueError, match="'auroc' cannot be scored"):
        scores.score_confusions(conf, "auroc", range(K))


def test_patient_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    conf = _patients(0.7, seed=1)
    mean = np.mean(scores.score_confusions(conf.sum(axis=1), "macro_f1", range(K)))
    interval = stats.patient_interval(conf, "macro_f1", range(K))
    assert interval.kind == "patients" and interval.low < mean < interval.high
    assert interval.high - interval.low < 0.1
    assert stats.patient_interval(conf, "macro_f1", range(K)) == interval  # fixed RNG seed


def test_paired_comparison_covers_a_known_difference() -> None:
    known = (0.8 + 0.2 / K) - (0.5 + 0.5 / K)  # expected accuracies: right, or a random class that may be right
    covered = 0
    for replicate in range(10):
        better, worse = _patients(0.8, seed=10 + replicate), _patients(0.5, seed=100 + replicate)
        result = stats.compare_patients(better, worse, "accuracy", range(K), n_resamples=500)
        observed = np.mean(scores.score_confusions(better.sum(axis=1), "accuracy", range(K))
                           - scores.score_confusions(worse.sum(axis=1), "accuracy", range(K)))
        assert result.diff == pytest.approx(observed) and result.low < observed < result.high
        assert result.p < 0.01 and result.test == "paired permutation over patients" and result.n_pairs == 3
        covered += result.low < known < result.high
    assert covered >= 8  # a 95 % interval: 10 replicates miss more than 2 times with probability < 2 %


def test_paired_comparison_of_equals_has_a_ci_containing_zero() -> None:
    result = stats.compare_patients(_patients(0.7, seed=4), _patients(0.7, seed=5), "macro_f1", range(K))
    assert result.low < 0 < result.high and result.p > 0.05


def test_seed_level_fallbacks() -> None:
    interval = stats.seed_interval([0.5, 0.6, 0.7])
    assert interval.kind == "seeds" and interval.low < 0.6 < interval.high
    assert stats.seed_interval([0.5]).kind == "none"
    comparison = stats.compare_seeds([0.61, 0.72, 0.83, 0.74, 0.95], [0.5] * 5)
    assert comparison.test == "Wilcoxon over seeds" and comparison.diff == pytest.approx(0.27)
    assert comparison.p == pytest.approx(0.0625)  # the smallest two-sided p with 5 seeds
    assert stats.compare_seeds([0.5, 0.5], [0.5, 0.5]).p == 1.0


def test_tied_ranks() -> None:
    means = [0.70, 0.90, 0.86, 0.60, 0.71]
    lows = [0.68, 0.85, 0.84, 0.55, 0.69]
    highs = [0.72, 0.95, 0.88, 0.65, 0.73]
    assert stats.tied_ranks(means, lows, highs) == ["=3", "=1", "=1", "5", "=3"]
    assert stats.tied_ranks([0.5, 0.7], [float("nan")] * 2, [float("nan")] * 2) == ["2", "1"]  # no CI: points


def test_holm_adjusts_within_the_family_and_keeps_order() -> None:
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> raised to 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = stats.holm([0.5, float("nan"), 0.2])  # NaN stays NaN and is not counted: family of 2
    assert adjusted[0] == pytest.approx(0.5) and adjusted[2] == pytest.approx(0.4) and np.isnan(adjusted[1])
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
