"""The patient-level scores (docs/evaluation.md) and patient influence on hand-made confusions with known values."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import scores
from benchmark.influence import influence, leave_one_out

# Two classes (N, S). Patient A: 100 N right, 90 S right. Patient B: 100 N right, its 10 S beats all called N.
A = [[100, 0], [0, 90]]
B = [[100, 0], [10, 0]]
BOTH = np.array([A, B], dtype=float)  # (P=2, K, K)
SCORED = [0, 1]


def _macro_f1(n_row: list[float], s_row: list[float]) -> float:
    """Macro-F1 of a 2x2 matrix [[n_row], [s_row]] worked out by hand."""
    tp_n, fn_n = n_row
    fn_s, tp_s = s_row
    f1_n = 2 * tp_n / (2 * tp_n + fn_n + fn_s)
    f1_s = 2 * tp_s / (2 * tp_s + fn_s + fn_n)
    return (f1_n + f1_s) / 2


def test_pooled_macro_f1_sums_the_patients() -> None:
    # N row [200, 0], S row [10, 90]: F1 N 400/410, F1 S 180/190
    expected = (400 / 410 + 180 / 190) / 2
    assert scores.score_patients(BOTH, "macro_f1", SCORED) == pytest.approx(expected)
    assert expected == pytest.approx(_macro_f1([200, 0], [10, 90]))


def test_patient_weighted_gives_each_patient_half_of_the_s_row() -> None:
    # both patients have >= 10 S beats: each counts 50 of the 100; N rows equal already
    weighted = scores.patient_weighted(BOTH)
    np.testing.assert_allclose(weighted, [[200, 0], [50, 50]])
    assert scores.score_patients(BOTH, "macro_f1_patients", SCORED) == pytest.approx((400 / 450 + 100 / 150) / 2)


def test_patient_weighted_keeps_a_patient_below_min_beats_as_counted() -> None:
    small = np.array([A, B, [[100, 0], [0, 5]]], dtype=float)  # C: 5 S beats, right
    weighted = scores.patient_weighted(small)
    # A and B share their 100 S beats equally; C's 5 stay as they are; the row total stays 105
    np.testing.assert_allclose(weighted[1], [50, 55])
    np.testing.assert_allclose(weighted.sum(axis=-1), small.sum(axis=(0, -1)))


def test_capped_limits_a_patient_to_a_quarter_then_rescales() -> None:
    # S: A 90 -> 25, B 10 stays, rescaled by 100/35; N: 100 each -> 50 each, rescaled by 2 (unchanged)
    capped = scores.capped(BOTH)
    np.testing.assert_allclose(capped, [[200, 0], [1000 / 35, 2500 / 35]])
    expected = _macro_f1([200, 0], [1000 / 35, 2500 / 35])
    assert scores.score_patients(BOTH, "macro_f1_capped", SCORED) == pytest.approx(expected)
    assert expected == pytest.approx((0.93333333 + 0.83333333) / 2)


def test_per_patient_balanced_sensitivity() -> None:
    # A: Se N 1, Se S 1 -> 1; B: Se N 1, Se S 0 -> 0.5; mean 0.75
    assert scores.score_patients(BOTH, "balanced_se_patients", SCORED) == pytest.approx(0.75)
    # a class below MIN_BEATS does not count in that patient's mean: C's 5 S beats all missed
    missed = np.array([[[100, 0], [5, 0]]], dtype=float)
    assert scores.score_patients(missed, "balanced_se_patients", SCORED) == pytest.approx(1.0)


def test_scores_are_vectorised_over_leading_axes() -> None:
    stacked = np.stack([BOTH, BOTH[::-1]])  # (2, P, K, K): patient order does not matter
    for metric in scores.SCORABLE:
        values = scores.score_patients(stacked, metric, SCORED)
        assert values.shape == (2,)
        assert values[0] == pytest.approx(values[1])
        assert values[0] == pytest.approx(scores.score_patients(BOTH, metric, SCORED))


def test_unknown_metric_names_the_choices() -> None:
    with pytest.raises(ValueError, match="macro_f1_patients"):
        scores.score_patients(BOTH, "auroc", SCORED)


def test_leave_one_out_and_influence() -> None:
    conf = BOTH[None]  # one seed
    loo = leave_one_out(conf, "macro_f1", SCORED)
    # without A: only B, N row [100, 0], S row [10, 0] -> F1 N 200/210, F1 S 0; without B: perfect
    np.testing.assert_allclose(loo, [[(200 / 210) / 2, 1.0]])
    found = influence(conf, ["A", "B"], "macro_f1", SCORED)
    full = (400 / 410 + 180 / 190) / 2
    assert found.top == "A"
    assert found.change_of("A") == pytest.approx((200 / 210) / 2 - full)
    assert found.change_of("B") == pytest.approx(1.0 - full)


def test_influence_averages_over_seeds() -> None:
    conf = np.stack([BOTH, BOTH[[1, 0]][::-1]])  # both seeds the same patients in the same order
    once = influence(BOTH[None], ["A", "B"], "macro_f1_patients", SCORED)
    twice = influence(conf, ["A", "B"], "macro_f1_patients", SCORED)
    assert twice.patients == once.patients
    np.testing.assert_allclose(twice.changes, once.changes)
    assert influence(BOTH[None, :1], ["A"], "macro_f1", SCORED).top is None
