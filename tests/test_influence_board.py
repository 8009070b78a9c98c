"""Patient influence on the leaderboard (issue 31, part A): the aggregate's columns, the table's section, the README
headline's column and ``show --influence``, on hand-made records where one patient carries a difference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.aggregate import aggregate
from benchmark.cli import main
from benchmark.headline import render_headline
from benchmark.influence import influence
from benchmark.leaderboard import render_dataset
from benchmark.metrics import metrics_from_confusion
from benchmark.results import JobKey, RunResult

CLASSES = ["N", "S"]


def _patients(s_right_on_big: int, seed: int) -> dict[str, list[list[int]]]:
    """Three test patients: ``big`` holds 90 S beats (``s_right_on_big`` of them found), ``p2`` and ``p3`` 10 each."""
    return {"big": [[200, 0], [90 - s_right_on_big, s_right_on_big]],
            "p2": [[200, seed], [3, 7]], "p3": [[200, 1], [4, 6]]}


def _record(method: str, seed: int, s_right_on_big: int) -> RunResult:
    groups = _patients(s_right_on_big, seed)
    total = np.sum([np.asarray(m) for m in groups.values()], axis=0)
    return RunResult(key=JobKey("toy", "fixed", "small", "quick", method, seed), status="ok",
                     metrics=metrics_from_confusion(total, CLASSES), test_confusion_by_group=groups,
                     deployed_params=100, param_budget=1000, reference=method == "student",
                     provenance={"hardware": "cpu: test", "git_commit": "abc123"})


def _records() -> list[RunResult]:
    """``alpha`` finds 80 of the big patient's S beats, the CE ``student`` 10; both are alike on p2 and p3."""
    return [_record(m, seed, right) for m, right in (("alpha", 80), ("student", 10)) for seed in (0, 1, 2)]


def _row(board, label: str) -> dict:  # type: ignore[no-untyped-def]
    return board[board["method_label"] == label].iloc[0].to_dict()


def test_the_most_influential_patient_and_the_difference_without_it() -> None:
    board = aggregate(_records())
    alpha = _row(board, "alpha")
    assert alpha["influence_patient"] == "big"
    # the same numbers as benchmark.influence on the row's own confusions
    conf = np.array([[np.asarray(r.test_confusion_by_group[p], dtype=float) for p in ("big", "p2", "p3")]
                     for r in _records()[:3]])
    expected = influence(conf, ["big", "p2", "p3"], "macro_f1", [0, 1])
    assert alpha["influence_change"] == pytest.approx(expected.changes[0])
    assert alpha["influence_second"] == expected.patients[1]
    # alpha beats the student only on the big patient: without it the paired difference is exactly 0
    assert alpha["vs_student_diff"] > 0.2
    assert alpha["vs_student_diff_wo"] == pytest.approx(0.0)
    assert alpha["vs_student_low_wo"] == pytest.approx(0.0) and alpha["vs_student_high_wo"] == pytest.approx(0.0)
    assert np.isnan(_row(board, "student")["vs_student_diff_wo"])  # the baseline itself


def test_each_table_shows_its_patient_influence_section() -> None:
    records = _records()
    page = render_dataset(records, "toy")
    section = page.split("### Patient influence", 1)[1]
    alpha_line = next(line for line in section.splitlines() if line.startswith("| alpha |"))
    change = _row(aggregate(records), "alpha")["influence_change"]
    assert f"| big ({100 * change:+.1f}) |" in alpha_line
    assert alpha_line.rstrip().endswith("+0.0 [+0.0, +0.0] p=1 |")  # Δ vs student without the big patient


def test_the_headline_names_each_rows_most_influential_patient() -> None:
    text = render_headline(aggregate(_records()))
    assert "one test patient (Δ left out)" in text
    assert "| big (" in text


def test_show_influence_lists_the_top_patients(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for record in _records():
        path = tmp_path / record.key.method_label / f"seed{record.key.seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(record.to_json(), encoding="utf-8")
    assert main(["show", str(tmp_path), "--influence"]) == 0
    out = capsys.readouterr().out
    assert "left out" in out and "alpha" in out and "student" in out
    assert out.index("alpha") < out.index("student")  # best first
    assert "big (" in out
    json.loads((tmp_path / "alpha" / "seed0.json").read_text())  # records untouched and readable
