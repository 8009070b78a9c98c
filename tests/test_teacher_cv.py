"""Round 5's cross-validation of teacher candidates over DS1: folds, training, the report and its rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tool_loader import load_tool

from benchmark.metrics import count_params
from benchmark.nn.arch import build_model
from benchmark.protocol import BUDGET_TIERS
from datasets.base import SplitArrays
from datasets.mitbih import DS1, DS2

cv = load_tool("teacher_cv")


def test_the_folds_hold_out_every_ds1_record_once_and_never_touch_ds2() -> None:
    held = [r for fold in cv.FOLDS.values() for r in fold]
    assert sorted(held) == sorted(DS1)
    for fold in cv.FOLDS:
        train = cv.training_records(fold)
        assert not set(train) & set(cv.FOLDS[fold]) and not set(train) & set(DS2)
        assert set(train) | set(cv.FOLDS[fold]) == set(DS1)


def test_candidate_names_map_to_what_trains() -> None:
    assert cv.candidate("student").teacher is None and cv.candidate("student").recipe.weights == "final"
    teacher = cv.candidate("teacher:reg_aug_bal100")
    assert teacher.recipe.balance_power == 1.0 and teacher.recipe.weights == "final"
    assert teacher.arch.params["dropout"] == 0.3
    assert cv.candidate("kd:reg_aug_bal100").teacher == "teacher:reg_aug_bal100"
    medium = cv.candidate("teacher:medium_sep_bal100")  # round 5's scaled-up student network as the teacher
    assert medium.arch.params["stages"] == BUDGET_TIERS["mitbih"]["medium"].default_student.params["stages"]
    assert medium.arch.params["dropout"] == 0.3 and medium.recipe == teacher.recipe
    assert 90_000 < count_params(build_model(medium.arch, 4, 5)) <= BUDGET_TIERS["mitbih"]["medium"].max_params
    with pytest.raises(ValueError, match=r"unknown candidate 'teacher:nope'.*reg_aug_bal100"):
        cv.candidate("teacher:nope")
    with pytest.raises(ValueError, match="not trained"):
        cv.candidate("ensemble:reg_aug")


def fake_data(beats_per_record: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = beats_per_record * len(DS1)
    return {"x": rng.standard_normal((n, 4, 256)).astype(np.float32), "y": np.tile(np.arange(4), n // 4),
            "record": np.repeat(np.array(DS1), beats_per_record)}


def test_train_stores_held_out_logits_and_kd_distils_the_stored_teacher(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv, "OUT", tmp_path / "runs")
    data = fake_data()
    with pytest.raises(FileNotFoundError, match="train teacher:v1 on fold 2"):
        cv.train("kd:v1", 2, 0, data, tmp_path / "cache")
    path = cv.train("teacher:v1", 2, 0, data, tmp_path / "cache")
    run = cv.load_run(path)
    assert sorted(set(run["record"].tolist())) == sorted(cv.FOLDS[2]) and run["logits"].shape == (8 * 6, 5)
    assert run["meta"]["train_records"] == list(cv.training_records(2))
    assert cv.train_logits_path(tmp_path / "cache", "teacher:v1", 2, 0).exists()
    kd = cv.load_run(cv.train("kd:v1", 2, 0, data, tmp_path / "cache"))
    assert kd["meta"]["teacher"] == "teacher:v1" and not np.allclose(kd["logits"], run["logits"])
    assert cv.train("teacher:v1", 2, 0, data, tmp_path / "cache") == path  # stored: not trained again


def store_fake(name: str, seed: int, right_s: float) -> None:
    """Every DS1 beat of a fold: 40 N (right), 10 S of which ``right_s`` share are right, 10 V (right)."""
    rng = np.random.default_rng(seed)
    for fold, records in cv.FOLDS.items():
        y = np.tile(np.repeat([0, 1, 2], [40, 10, 10]), len(records))
        record = np.repeat(np.array(records), 60)
        pred = y.copy()
        s_rows = np.flatnonzero(y == 1)
        wrong = rng.random(len(s_rows)) >= right_s
        pred[s_rows[wrong]] = 0
        logits = np.eye(5)[pred] * 5.0
        cv.save_run(cv.run_path(name, fold, seed), logits, SplitArrays(np.zeros((len(y), 1)), y, record),
                    {"candidate": name})


def test_report_pools_the_folds_pairs_with_the_student_and_applies_the_rule(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv, "OUT", tmp_path / "runs")
    for seed in (0, 1):
        store_fake("student", seed, 0.3)
        store_fake("teacher:reg", seed, 0.9)
        store_fake("teacher:long", seed, 0.32)
        store_fake("teacher:v1", seed, 0.9)
    store_fake("kd:long", 0, 0.1)
    store_fake("kd:v1", 0, 0.1)  # a strong teacher whose KD student falls below the CE student
    results = {name: cv.confusions(name) for name in cv.candidate_names()}
    assert set(results) == {"student", "teacher:reg", "teacher:long", "teacher:v1", "kd:long", "kd:v1",
                            "ensemble:reg", "ensemble:long", "ensemble:v1"}
    seeds, conf = results["teacher:reg"]
    assert seeds == [0, 1] and conf.shape == (2, len(DS1), 5, 5) and conf[0].sum() == 60 * len(DS1)
    assert results["ensemble:reg"][0] == [None]
    lines = cv.rule(results)
    assert any("`teacher:reg`" in line and "**qualifies**" in line for line in lines)
    assert any("`teacher:long`" in line and "does not qualify" in line for line in lines)  # +2 points: not +3
    assert any("`teacher:v1`" in line and "below the CE student" in line and "does not qualify" in line
               for line in lines)
    assert lines[-1] == "Verdict: **`teacher:reg`** (largest margin among the qualifying)"
    early = cv.rule(results, cv.missing_runs())
    assert early[:-1] == lines[:-1] and early[-1].startswith("Early read, not the verdict (still to run: `student` "
                                                             "(seed 2); `teacher:reg_aug_bal100` (seeds 0, 1, 2);")
    text = cv.report()
    assert "| teacher:reg | 0, 1 |" in text and "| ensemble:reg | 2 members |" in text


def test_without_a_student_the_rule_waits() -> None:
    assert cv.rule({}) == ["Rule: not applicable yet (no complete `student` run)."]
