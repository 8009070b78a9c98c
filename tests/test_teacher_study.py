"""The teacher-recipe study: recipes build and differ as documented; the report compares with the student pool."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tool_loader import load_tool

from benchmark.engine import Batch
from benchmark.nn.arch import build_model

study = load_tool("selection_study")
teacher = load_tool("teacher_study")


def test_recipes_regularise_and_augment_as_named() -> None:
    recipes = teacher.RECIPES
    assert recipes["v1"].recipe.epochs == 6 and recipes["v1"].recipe.patience is None
    assert recipes["reg"].dropout > 0 and recipes["reg"].recipe.label_smoothing > 0
    assert recipes["reg_aug"].augment is not None and recipes["reg"].augment is None
    x, y = torch.randn(4, 4, 256), torch.randint(0, 5, (4,))
    model = build_model(recipes["reg_aug"].arch(), 4, 5).eval()  # eval: dropout off, only the input varies
    batch = Batch(x, y, torch.arange(4), {})
    torch.manual_seed(0)
    augmented = recipes["reg_aug"].objective()(model, batch)["ce"]
    plain = recipes["reg"].objective()(model, batch)["ce"]
    assert not torch.isclose(augmented, plain)


def fake_run(split: dict, right_s: int) -> dict:
    """A run whose every scored record has ``right_s`` of 10 S beats right (and 50 N right)."""
    conf = np.zeros((5, 5), dtype=int)
    conf[0, 0], conf[1, 1], conf[1, 0] = 50, right_s, 10 - right_s
    scores = {str(r): {"confusion": conf.tolist(), "ce_sum": [0.0] * 5} for r in (*split["val"], *split["test"])}
    return {"split": split, "epochs": [{"raw": scores, "ema": scores}]}


def test_report_sets_each_recipe_beside_the_student_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path)
    split = study.develop_split(1)
    split = {"train": split.train, "val": split.val, "test": split.test}
    for folder, name, right in (("teacher-develop1", "long", 9), ("develop1", "a", 5), ("develop1", "b", 7)):
        (tmp_path / "runs" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / folder / f"{name}.json").write_text(json.dumps(fake_run(split, right)))
    text = teacher.report()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "long" in rows and "students (n=2): mean" in rows and "students (n=2): best" in rows
    header = next(line for line in text.splitlines() if line.startswith("| "))
    column = [c.strip() for c in header.split("|")].index("final S Se")
    assert float(rows["long"].split("|")[column]) == pytest.approx(90.0)
    assert float(rows["students (n=2): best"].split("|")[column]) == pytest.approx(70.0)


def test_a_candidate_is_adopted_only_if_it_beats_the_frozen_recipe_and_clears_the_students(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path)
    for fold, runs in ((1, (("teacher-develop1", "reg_aug", 6), ("teacher-develop1", "reg_aug_bal75", 9),
                            ("teacher-develop1", "reg_aug_bal100", 9), ("develop1", "a", 3))),
                       (2, (("teacher-develop2", "reg_aug", 6), ("teacher-develop2", "reg_aug_bal75", 8),
                            ("teacher-develop2", "reg_aug_bal100", 5), ("develop2", "a", 3)))):
        split = study.develop_split(fold)
        split = {"train": split.train, "val": split.val, "test": split.test}
        for folder, name, right in runs:
            (tmp_path / "runs" / folder).mkdir(parents=True, exist_ok=True)
            (tmp_path / "runs" / folder / f"{name}.json").write_text(json.dumps(fake_run(split, right)))
    decision = teacher.adoption_decision()
    lines = dict(zip(teacher.CANDIDATES, decision, strict=False))
    assert lines["reg_aug_bal75"].endswith("**adopt**")
    assert "every fold: no" in lines["reg_aug_bal100"] and lines["reg_aug_bal100"].endswith("**keep `reg_aug`**")
    assert decision[-1].startswith("Verdict: **adopt `reg_aug_bal75`**")


def test_of_several_qualifying_candidates_the_largest_margin_is_adopted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path)
    split = study.develop_split(2)
    split = {"train": split.train, "val": split.val, "test": split.test}
    for folder, name, right in (("teacher-develop2", "reg_aug", 4), ("teacher-develop2", "reg_aug_bal100", 8),
                                ("teacher-develop2", "reg_aug_bal100_moddrop", 9), ("develop2", "a", 2)):
        (tmp_path / "runs" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / folder / f"{name}.json").write_text(json.dumps(fake_run(split, right)))
    decision = teacher.adoption_decision()
    assert sum(line.endswith("**adopt**") for line in decision) == 2
    assert decision[-1].startswith("Verdict: **adopt `reg_aug_bal100_moddrop`**")
    for path in (tmp_path / "runs" / "teacher-develop2").glob("reg_aug_bal*.json"):
        path.unlink()
    assert teacher.adoption_decision()[-1] == "Verdict: **keep `reg_aug`** (no candidate qualifies)"


def test_with_several_seeds_a_fold_scores_the_mean_over_the_seeds_both_recipes_ran(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path)
    split = study.develop_split(1)
    split = {"train": split.train, "val": split.val, "test": split.test}
    runs = (("teacher-develop1", "reg_aug", 0, 6), ("teacher-develop1", "reg_aug", 1, 6),
            ("teacher-develop1", "reg_aug_moddrop", 0, 5), ("teacher-develop1", "reg_aug_moddrop", 1, 9),
            ("teacher-develop1", "reg_aug_moddrop", 2, 0),  # a seed reg_aug lacks: not compared
            ("teacher-develop1", "reg_aug_bal100", 1, 9), ("develop1", "a", 0, 3))
    for folder, name, seed, right in runs:
        path = study.run_path(folder, name, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fake_run(split, right)))
    lines = dict(zip(teacher.CANDIDATES, teacher.adoption_decision(), strict=False))
    assert "fold 1 (mean of seeds 0, 1)" in lines["reg_aug_moddrop"] and lines["reg_aug_moddrop"].endswith("**adopt**")
    assert "fold 1 (seed 1)" in lines["reg_aug_bal100"]


def test_the_best_rule_scores_the_epoch_with_the_best_validation_macro_f1() -> None:
    split = study.develop_split(1)
    split = {"train": split.train, "val": split.val, "test": split.test}
    good, poor = fake_run(split, 9)["epochs"][0], fake_run(split, 3)["epochs"][0]
    scores = teacher.held_out_scores({"split": split, "epochs": [poor, good, poor]})
    assert scores["best S Se"] == pytest.approx(0.9) and scores["final S Se"] == pytest.approx(0.3)


def test_protocol_v2_teacher_is_the_adopted_recipe_with_final_weights() -> None:
    """What PROFILES and TEACHERS freeze is exactly what the study trained as ``ADOPTED`` (docs/protocol-v2.md)."""
    from dataclasses import replace

    from benchmark.protocol import PROFILES, TEACHERS

    chosen = teacher.RECIPES[teacher.ADOPTED]
    assert teacher.ADOPTED == "medium_sep_bal100"  # round 5's verdict (its M = 3 ensemble is the KD source)
    assert PROFILES["quick"].teacher_recipe == replace(chosen.recipe, augment=chosen.augment, weights="final")
    assert TEACHERS["ecg"] == chosen.arch()
    assert teacher.RECIPES["v1"].recipe.epochs == 6 and teacher.RECIPES["v1"].recipe.weight_decay == 1e-4
