"""Round 6 of the teacher study: the ensemble teacher on all 22 DS1 records, its DS2 report and the rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tool_loader import load_tool

from benchmark.protocol import make_protocol
from benchmark.results import JobKey, RunResult, write_result
from datasets.base import SplitArrays
from datasets.mitbih import CLASSES, DS1, DS2

ds1 = load_tool("teacher_ds1")


def test_members_are_the_protocols_ensemble() -> None:
    protocol = make_protocol("mitbih", "inter-patient", None, "quick")
    assert ds1.MEMBERS == protocol.ensemble_size and protocol.kd_source == "ensemble"
    assert [ds1.member_seed(3, m) for m in range(ds1.MEMBERS)] == [3, 1003, 2003]  # RunContext: s + 1000 i


def test_train_fits_on_every_ds1_record_and_stores_ds2_logits(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds1, "OUT", tmp_path / "runs")
    real = ds1.teacher_cv.candidate
    monkeypatch.setattr(ds1.teacher_cv, "candidate", lambda name: replace(real(name), recipe=replace(
        real(name).recipe, epochs=1)))
    records = np.array(DS1 + DS2)
    rng = np.random.default_rng(0)
    data = {"x": rng.standard_normal((4 * len(records), 4, 256)).astype(np.float32),
            "y": np.tile(np.arange(4), len(records)), "record": np.repeat(records, 4)}
    path = ds1.train(2, 1, data)
    run = ds1.teacher_cv.load_run(path)
    assert path.name == "member.seed2.m1.npz" and run["logits"].shape == (4 * len(DS2), len(CLASSES))
    assert sorted(set(run["record"].tolist())) == sorted(DS2)
    assert run["meta"]["train_records"] == list(DS1) and run["meta"]["train_beats"] == 4 * len(DS1)
    assert run["meta"]["torch_seed"] == 1002 and run["meta"]["recipe"]["weights"] == "final"
    assert ds1.train(2, 1, data) == path  # stored: not trained again


def confusion(s_found: int, s_total: int = 10) -> list[list[int]]:
    """One patient: 40 N right, ``s_found`` of ``s_total`` S beats found (the rest called N), 10 V right."""
    rows = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    rows[0, 0], rows[1, 1], rows[1, 0], rows[2, 2] = 40, s_found, s_total - s_found, 10
    return rows.tolist()


def write_row(root: Path, method: str, s_found: int) -> None:
    """Five seeds of a release row whose every DS2 patient has ``s_found`` of 10 S beats found."""
    for seed in ds1.SEEDS:
        by_patient = {p: confusion(s_found) for p in ds1.PATIENTS}
        conf = ds1.row_confusions({0: RunResult(JobKey("mitbih", "inter-patient", "small", "quick", method, seed),
                                                "ok", test_confusion_by_group=by_patient)}, [0])
        f1 = float(ds1.per_seed_f1(conf)[0])
        write_result(root, RunResult(JobKey("mitbih", "inter-patient", "small", "quick", method, seed), "ok",
                                     metrics={"macro_f1": f1}, test_confusion_by_group=by_patient))


def store_members(s_found: int) -> None:
    """Every member of every seed: logits that find ``s_found`` of each DS2 patient's 10 S beats."""
    y = np.tile(np.repeat([0, 1, 2], [40, 10, 10]), len(DS2))
    record = np.repeat(np.array(DS2), 60)
    pred = y.copy()
    pred[np.flatnonzero(y == 1).reshape(len(DS2), 10)[:, s_found:].ravel()] = 0
    for seed in ds1.SEEDS:
        for member in range(ds1.MEMBERS):
            ds1.teacher_cv.save_run(ds1.run_path(seed, member), np.eye(len(CLASSES))[pred] * 5.0,
                                    SplitArrays(np.zeros((len(y), 1)), y, record), {"seed": seed})


@pytest.mark.parametrize(("teacher_s", "kd_s", "verdict"), [(9, 6, "met"), (3, 2, "not met"), (9, 10, "not met")])
def test_report_scores_the_ensembles_and_applies_round_6s_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               teacher_s: int, kd_s: int, verdict: str) -> None:
    monkeypatch.setattr(ds1, "OUT", tmp_path / "runs")
    release = tmp_path / "results"
    write_row(release, "student", 3)
    write_row(release, "ensemble", 5)
    write_row(release, "vanilla_kd", kd_s)
    cell = release / "mitbih" / "inter-patient" / "small" / "quick"
    assert ds1.rule(*ds1.ensemble_confusions(), ds1.release_rows(cell))[0].startswith("Rule: not applicable yet")
    store_members(teacher_s)
    seeds, conf = ds1.ensemble_confusions()
    assert seeds == list(ds1.SEEDS) and conf.shape == (5, len(DS2), len(CLASSES), len(CLASSES))
    assert conf[:, :, 1, 1].sum() == 5 * len(DS2) * teacher_s
    text = ds1.report(cell)
    assert f"part B's teacher condition is **{verdict}**" in text
    assert "| ensemble, 22 DS1 records (round 6) | 22 (DS1) | 0, 1, 2, 3, 4 |" in text
    assert "| record 232 S Se | V Se / +P |" in text
    assert f"| {10 * teacher_s:.1f} | 100.0 / 100.0 |" in text  # 232's S Se, then V Se / +P (every V beat right)
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("| ensemble, 22 DS1 records"))
    assert row.split(" | ")[-1].startswith("+")  # Δ vs the CE student: at least level in every case here
    margin = next(line for line in lines if line.startswith("- Over the CE student"))
    assert ("-> **met**" in margin) == (teacher_s == 9)
    assert any(line.startswith("- Over `vanilla_kd` (5 seeds") for line in lines)
    # the pre-registered comparison with the 14-record ensemble, and each patient's S Se and false alarms per seed
    paired = next(line for line in lines if line.startswith("Paired over DS2's patients, seeds 0, 1, 2, 3, 4:"))
    assert paired.split(": ")[1].startswith("+") == (teacher_s > 5)
    assert f"| 232 | 10 | {10 * teacher_s} % · 0 | 50 % · 0 | 30 % · 0 |" in lines
