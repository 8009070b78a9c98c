"""``benchmark show --by-patient CLASS``: per test patient, a class's support and each method's Se / +P, seeds
pooled."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from benchmark.cli import main
from benchmark.results import JobKey, ResultError, RunResult, write_result
from benchmark.show import show

CLASSES = ["N", "S", "V"]


def _write(root: Path, method: str, seed: int, by_patient: dict[str, list[list[int]]], **key: str) -> Path:
    cell = {"dataset": "mitbih", "split": "inter-patient", "budget": "small", "profile": "quick", **key}
    record = RunResult(JobKey(cell["dataset"], cell["split"], cell["budget"], cell["profile"], method, seed), "ok",
                       metrics={"classes": CLASSES, "macro_f1": 0.5}, test_confusion_by_group=by_patient)
    return write_result(root, record)


def rows(paths: list[Path], class_name: str) -> dict[str, list[str]]:
    """The table's rows by patient, cells split on the column rule, on a console wide enough that nothing folds."""
    console = Console(file=io.StringIO(), width=250)
    for renderable in show([str(p) for p in paths], by_patient=class_name):
        console.print(renderable)
    out = {}
    for line in console.file.getvalue().splitlines():  # type: ignore[attr-defined]
        cells = [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        if cells:
            out[cells[0]] = cells[1:]
    return out


@pytest.fixture
def records(tmp_path: Path) -> list[Path]:
    # patient "a": 10 S beats; "b": 2 S beats; "c": no S beat. Rows: true class; columns: predicted.
    return [
        _write(tmp_path, "student", 0, {"a": [[50, 0, 0], [6, 4, 0], [0, 0, 5]], "b": [[40, 2, 0], [0, 2, 0], [0] * 3],
                                        "c": [[30, 4, 0], [0, 0, 0], [0, 0, 1]]}),
        _write(tmp_path, "student", 1, {"a": [[50, 0, 0], [4, 6, 0], [0, 0, 5]], "b": [[42, 0, 0], [2, 0, 0], [0] * 3],
                                        "c": [[34, 0, 0], [0, 0, 0], [0, 0, 1]]}),
        _write(tmp_path, "teacher", 0, {"a": [[49, 1, 0], [9, 1, 0], [0, 0, 5]], "b": [[42, 0, 0], [0, 2, 0], [0] * 3],
                                        "c": [[34, 0, 0], [0, 0, 0], [0, 0, 1]]}),
    ]


def test_it_pools_each_methods_seeds_per_patient(records: list[Path]) -> None:
    table = rows(records, "S")
    # student, a: 10 of 20 S beats found over two seeds, no false alarm -> Se 50 / +P 100
    assert table["a"] == ["10", "83 %", "50 / 100 · 0 FA", "10 / 50 · 1 FA"]
    # b: the student found 2 of 4 and raised 2 false alarms over two seeds (1 per seed)
    assert table["b"] == ["2", "17 %", "50 / 50 · 1 FA", "100 / 100 · 0 FA"]
    # c has no S beats but the student's false alarms: Se undefined, +P 0
    assert table["c"] == ["0", "0 %", "– / 0 · 2 FA", "– / – · 0 FA"]
    # all patients: student 12 of 24 found, 6 false alarms over 2 seeds
    assert table["all"] == ["12", "100 %", "50 / 67 · 3 FA", "25 / 75 · 1 FA"]


def test_patients_are_ordered_by_support_and_headers_count_seeds(records: list[Path]) -> None:
    table = rows(records, "S")
    assert list(table)[1:] == ["a", "b", "c", "all"]  # the first row is the header
    assert table["patient"][2:] == ["student (2 seeds)", "teacher (1 seed)"]


def test_a_patient_without_the_class_or_false_alarms_is_left_out(records: list[Path]) -> None:
    assert list(rows(records, "V"))[1:] == ["a", "c", "all"]  # b has no V beat and no V alarm
    table = rows(records[2:], "S")  # the teacher raised no S alarm on c and c has no S beat
    assert "c" not in table and table["all"][0] == "12"


def test_bad_input_is_one_line_naming_it(records: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ResultError, match=r"'Q' is not a class of these records \(N, S, V\)"):
        rows(records, "Q")
    other = _write(tmp_path, "student", 0, {"a": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}, budget="tiny")
    with pytest.raises(ResultError, match="span several datasets, splits, budgets or profiles"):
        rows([*records, other], "S")
    old = write_result(tmp_path / "old", RunResult(JobKey("mitbih", "inter-patient", "small", "quick", "dna", 0),
                                                        "ok", metrics={"classes": CLASSES, "macro_f1": 0.5}))
    with pytest.raises(ResultError, match=r"old/mitbih/.*/dna/seed0\.json: no per-patient test confusions"):
        rows([*records, old], "S")


def test_the_cli_option_prints_the_table(records: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", *map(str, records), "--by-patient", "S"]) == 0
    assert "class S by test patient" in capsys.readouterr().out
