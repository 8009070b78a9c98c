"""``benchmark show`` on one record lists its history: earlier failed reruns and superseded records."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from benchmark.cli import main
from benchmark.results import JobKey, RunResult, write_result
from benchmark.show import show


def rendered(path: Path) -> str:
    """What ``show`` prints for one record, on a console wide enough that no cell folds."""
    console = Console(file=io.StringIO(), width=250)
    for renderable in show([str(path)]):
        console.print(renderable)
    return " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]


def test_show_lists_the_records_earlier_attempts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = JobKey("synthetic", "fixed", "small", "smoke", "student", 0)
    history = [{"status": "ok", "finished_at": "2026-11-30T10:00:00+00:00", "git_commit": "abcdef1234567890",
                "data_checksum": "d1", "protocol_version": 1, "macro_f1": 0.61234},
               {"status": "failed", "finished_at": None, "git_commit": None, "data_checksum": "",
                "protocol_version": 2, "error": "WorkerDied: worker process exited"}]
    path = write_result(tmp_path, RunResult(key=key, status="ok", protocol_version=2, history=history,
                                            metrics={"macro_f1": 0.5}))
    assert main(["show", str(path)]) == 0 and "history" in capsys.readouterr().out
    text = rendered(path)
    assert "history: 2 earlier attempt(s)" in text
    assert "2026-11-30T10:00:00+00:00" in text and "abcdef123456" in text and "test macro-F1 0.6123" in text
    assert "WorkerDied: worker process exited" in text and "v1" in text and "v2" in text
    path = write_result(tmp_path, RunResult(key=key, status="ok", metrics={"macro_f1": 0.5}))
    assert "history" not in rendered(path)  # no earlier attempt: no table


def test_show_prints_the_records_protocol_fields(tmp_path: Path) -> None:
    """Schema-3 fields: protocol version and role, the fold of its cross-validation, the teacher ensemble's member
    ids, the patients its test confusions are kept for, and the size of its search trace."""
    from benchmark.results import CrossValidation

    key = JobKey("sleepedf20", "fold03", "small", "quick", "oracle_kd", 1)
    record = RunResult(key, "ok", {"macro_f1": 0.5}, protocol_version=2, fold=3,
                       cv=CrossValidation(20, "folds.json", "ab" * 32, "LOSO"),
                       teacher_ids=["a" * 20, "b" * 20, "c" * 20], main_metric="macro_f1",
                       test_confusion_by_group={"SC4031": [[1]], "SC4032": [[2]]},
                       search_trace=[{"candidate": {"i": i}, "fidelity": 1 + i % 2, "score": 0.5, "cost": 1.0}
                                     for i in range(31)])
    path = tmp_path / "seed1.json"
    write_result(path, record)
    text = rendered(path)
    assert "v2 · method · ranked by macro_f1" in text
    assert "│ fold │ 3 of 20 (LOSO" in text
    assert f"│ teacher │ ensemble of 3: {'a' * 12}, {'b' * 12}, {'c' * 12}" in text
    assert "│ test groups (patients) │ 2: SC4031, SC4032" in text
    assert "│ search trace │ 31 evaluations at fidelities 1, 2" in text
    write_result(path, RunResult(key, "ok", {"macro_f1": 0.5}, reference=True, teacher_ids=["d" * 20]))
    text = rendered(path)
    assert "v1 · reference row (not ranked with methods)" in text and f"single: {'d' * 12}" in text
