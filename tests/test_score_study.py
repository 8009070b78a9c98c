"""The primary-score study (tools/score_study.py): its measures on hand-made confusions and the committed rule."""

from __future__ import annotations

import numpy as np
import pytest
from tool_loader import load_tool

study = load_tool("score_study")


def _m(influence: float, d1: float) -> object:
    return study.Measures(seed_sd=1.0, between_sd=d1, discriminability=d1, influence=influence, rank_stability=1.0,
                          mean=50.0)


def _sets(e1: dict[str, tuple[float, float]], e2_d: dict[str, float]) -> tuple[dict, dict]:
    return ({k: _m(*v) for k, v in e1.items()}, {k: _m(0.0, d) for k, d in e2_d.items()})


POOLED_E1 = {"macro_f1": (3.0, 1.0)}
E2_ALL = dict.fromkeys(study.CANDIDATES, 1.0)


def test_no_eligible_candidate_keeps_the_pooled_score() -> None:
    e1, e2 = _sets({**POOLED_E1, "macro_f1_patients": (2.5, 3.0), "macro_f1_capped": (2.1, 3.0),
                    "balanced_se_patients": (4.0, 3.0)}, E2_ALL)
    chosen, steps = study.apply_rule(e1, e2)
    assert chosen == "macro_f1"
    assert sum("not eligible" in s for s in steps) == 3 and "no candidate remains" in steps[-1]


def test_the_highest_discriminability_wins_unless_tied_then_faithfulness_decides() -> None:
    e1, e2 = _sets({**POOLED_E1, "macro_f1_patients": (1.0, 1.0), "macro_f1_capped": (1.0, 2.0),
                    "balanced_se_patients": (1.0, 1.9)}, E2_ALL)
    assert study.apply_rule(e1, e2)[0] == "macro_f1_capped"  # balanced Se within 15 %, capped first in the order
    e1, e2 = _sets({**POOLED_E1, "macro_f1_patients": (1.0, 1.8), "macro_f1_capped": (1.0, 2.0),
                    "balanced_se_patients": (1.0, 1.0)}, E2_ALL)
    assert study.apply_rule(e1, e2)[0] == "macro_f1_patients"  # within 15 % of the best, and first


def test_a_candidate_that_loses_the_differences_between_models_is_passed_over() -> None:
    e1, e2 = _sets({**POOLED_E1, "macro_f1_patients": (1.0, 3.0), "macro_f1_capped": (1.0, 1.0),
                    "balanced_se_patients": (5.0, 1.0)}, {**E2_ALL, "macro_f1_patients": 0.4})
    chosen, steps = study.apply_rule(e1, e2)
    assert chosen == "macro_f1_capped"
    assert any("passed over" in s and "E2" in s for s in steps)


def test_measures_on_models_that_differ_only_by_seed_noise() -> None:
    rng = np.random.default_rng(0)
    conf = np.zeros((3, 3, 6, 5, 5))  # models, seeds, patients, K, K
    for m in range(3):
        for s in range(3):
            for p in range(6):
                right = rng.integers(80, 100, size=5)
                conf[m, s, p] = np.diag(right) + np.eye(5)[:, [1, 2, 3, 4, 0]] * (100 - right)
    found = study.measures(conf, "macro_f1")
    assert found.seed_sd > 0 and found.influence > 0 and -1 <= found.rank_stability <= 1
    same = np.repeat(conf[:1], 3, axis=0)  # three identical models: no spread between them
    assert study.measures(same, "macro_f1").between_sd == pytest.approx(0.0)


def test_the_committed_study_is_what_the_stored_runs_give() -> None:
    import json

    committed = json.loads((study.OUT / "score-study.json").read_text(encoding="utf-8"))
    e1 = {name: study.measures(study.e1_confusions(), name) for name in study.CANDIDATES}
    e2 = {name: study.measures(study.e2_confusions()[1], name) for name in study.CANDIDATES}
    chosen, steps = study.apply_rule(e1, e2)
    assert (chosen, steps) == (committed["chosen"], committed["steps"])
    for name in study.CANDIDATES:
        assert e1[name].influence == pytest.approx(committed["e1"][name]["influence"])
