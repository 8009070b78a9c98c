"""The selection-signal study's bookkeeping: splits never overlap, signals are read from the right weights."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets.mitbih import DS1

SPEC = importlib.util.spec_from_file_location("selection_study", Path(__file__).parents[1] / "tools" /
                                              "selection_study.py")
study = importlib.util.module_from_spec(SPEC)  # type: ignore[arg-type]
sys.modules["selection_study"] = study  # dataclasses look their module up while the file executes
SPEC.loader.exec_module(study)  # type: ignore[union-attr]


@pytest.mark.parametrize("fold", sorted(study.PSEUDO_TEST))
def test_develop_splits_stay_inside_ds1_and_never_overlap(fold: int) -> None:
    split = study.develop_split(fold)
    train, val, test = set(split.train), set(split.val), set(split.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(DS1)
    assert {208, 209} <= train  # the F-rich and S-rich records always train
    assert set(study.V4) <= val


def epoch(correct_s: int) -> dict[str, dict[str, object]]:
    """Scores of two records: 124 (validation) with ``correct_s`` of 10 S beats right, 101 (held out) likewise."""
    def record(right: int) -> dict[str, object]:
        conf = np.zeros((5, 5), dtype=int)
        conf[0, 0], conf[1, 1], conf[1, 0] = 50, right, 10 - right
        return {"confusion": conf.tolist(), "ce_sum": [5.0, float(10 - right), 0.0, 0.0, 0.0]}
    return {"124": record(correct_s), "101": record(correct_s)}


def test_best_epoch_rule_scores_the_epoch_its_signal_picks() -> None:
    run = {"epochs": [{"raw": epoch(2)}, {"raw": epoch(9)}, {"raw": epoch(5), "ema": epoch(7)}]}
    signal, truth = study.signal_and_truth(run, (124,), (101,), "macro_f1", "best_epoch")
    assert signal == truth == study.pooled_metrics(epoch(9), (101,))["macro_f1"]
    final = study.signal_and_truth(run, (124,), (101,), "balanced_acc", "final")
    ema = study.signal_and_truth(run, (124,), (101,), "balanced_acc", "ema_final")
    assert final[0] == pytest.approx((1.0 + 0.5) / 2) and ema[0] == pytest.approx((1.0 + 0.7) / 2)
    assert study.pooled_metrics(epoch(9), (124,))["neg_loss"] == pytest.approx(-(5.0 + 1.0) / 60)


def test_a_claimed_architecture_is_skipped_by_other_processes() -> None:
    import multiprocessing

    with study.claim("test-phase", "arch0") as mine:
        assert mine
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.apply(_try_claim, ("test-phase", "arch0")) is False
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_try_claim, ("test-phase", "arch0")) is True


def _try_claim(phase: str, name: str) -> bool:
    import importlib.util as util
    import sys as system

    spec = util.spec_from_file_location("selection_study", Path(__file__).parents[1] / "tools" / "selection_study.py")
    module = util.module_from_spec(spec)  # type: ignore[arg-type]
    system.modules["selection_study"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    with module.claim(phase, name) as mine:
        return mine


def test_the_studys_validation_pool_is_protocol_v2s() -> None:
    from datasets import mitbih

    assert set(study.V8) == set(mitbih.VAL_RECORDS) and set(study.V4) == set(mitbih.VAL_RECORDS_V1)
