"""The leaderboard never pools records of different data, split or protocol versions, and says what it left out."""

from __future__ import annotations

from dataclasses import replace

from test_leaderboard import _cv_record, _record

from benchmark.aggregate import runs_frame
from benchmark.leaderboard import render_dataset, render_index
from benchmark.record_versions import current_records
from benchmark.results import RunResult

SCORES = (0.80, 0.90, 0.70, 0.85, 0.80)


def made(record: RunResult, data: str, finished: str, protocol: int = 1, split_hash: str = "s1") -> RunResult:
    return replace(record, data_checksum=data, split_hash=split_hash, protocol_version=protocol,
                   provenance={**record.provenance, "finished_at": finished})


def test_records_of_older_data_are_left_out_and_said_so() -> None:
    records = [
        made(_record("alpha", "small", 0, SCORES, 900), "old", "2026-01-01T00:00:00+00:00"),
        made(_record("alpha", "small", 1, SCORES, 900), "new", "2026-02-01T00:00:00+00:00"),
        made(_record("beta", "small", 0, SCORES, 900), "new", "2026-02-02T00:00:00+00:00"),
    ]
    kept, notes = current_records(records)
    assert {(r.key.method, r.key.seed) for r in kept} == {("alpha", 1), ("beta", 0)}
    assert len(notes) == 1 and "toy: 1 record(s) left out" in notes[0] and "data old, protocol v1" in notes[0]
    frame = runs_frame(records)
    assert sorted(zip(frame["method"], frame["seed"], strict=True)) == [("alpha", 1), ("beta", 0)]
    page = render_dataset(records, "toy")
    assert notes[0] in page and "shown: data new" in page
    assert notes[0] in render_index(records)


def test_a_newer_protocol_wins_over_a_later_run_of_an_older_one() -> None:
    records = [
        made(_record("alpha", "small", 0, SCORES, 900), "d", "2026-01-01T00:00:00+00:00", protocol=2),
        made(_record("alpha", "small", 1, SCORES, 900), "d", "2026-03-01T00:00:00+00:00", protocol=1),
    ]
    kept, notes = current_records(records)
    assert [r.protocol_version for r in kept] == [2] and "protocol v1" in notes[0]


def test_cv_folds_of_different_data_are_never_pooled_together() -> None:
    folds = [made(_cv_record("alpha", 0, fold), "copy-a", f"2026-01-0{fold + 1}T00:00:00+00:00", split_hash=f"f{fold}")
             for fold in range(3)]
    folds[2] = made(folds[2], "copy-b", "2026-01-09T00:00:00+00:00", split_hash="f2")  # rebuilt from other data
    (pooled,) = runs_frame(folds)["folds"]
    assert pooled == (2,)  # only the current copy's fold
    assert "2 record(s) left out" in render_dataset(folds, "sleep")


def test_records_of_one_version_are_all_kept() -> None:
    records = [made(_record("alpha", "small", seed, SCORES, 900), "d", f"2026-01-0{seed + 1}") for seed in range(3)]
    kept, notes = current_records(records)
    assert len(kept) == 3 and notes == []


def test_failed_records_that_never_read_data_are_kept() -> None:
    failed = _record("beta", "small", 0, status="failed", error="ConfigError: bad")
    kept, notes = current_records([failed, made(_record("alpha", "small", 0, SCORES, 900), "d", "2026")])
    assert len(kept) == 2 and notes == []


def taught(record: RunResult, finished: str, balance_power: float, teacher_id: str = "t") -> RunResult:
    """``record`` distilled from (or being) a teacher trained with ``balance_power``, finished at ``finished``."""
    protocol = {"teacher_arch": {"family": "staged_cnn"}, "ensemble_size": 3,
                "profile": {"teacher_recipe": {"epochs": 20, "balance_power": balance_power}}}
    return replace(made(record, "d", finished, protocol=2), teacher_ids=[teacher_id],
                   config={**record.config, "protocol": protocol})


def test_records_distilled_from_an_older_teacher_are_never_ranked_beside_the_new_teachers() -> None:
    old = [taught(_record(m, "small", s, SCORES, 900), f"2026-01-0{s + 1}", 0.5, "old") for m in ("teacher", "alpha")
           for s in range(3)]
    new = [taught(_record("teacher", "small", s, SCORES, 900), f"2026-02-0{s + 1}", 1.0, "new") for s in range(3)]
    ce_student = [made(_record("student", "small", s, SCORES, 900), "d", "2026-01-01", protocol=2) for s in range(3)]
    kept, notes = current_records(old + new + ce_student)
    assert sorted((r.key.method, r.teacher_ids) for r in kept if r.teacher_ids) == [("teacher", ["new"])] * 3
    assert sum(r.key.method == "student" for r in kept) == 3  # the CE student used no teacher: kept
    assert len(notes) == 1 and "6 record(s) made with another teacher left out (alpha, teacher;" in notes[0]
    assert "teacher_recipe.balance_power" in notes[0]
    assert set(runs_frame(old + new + ce_student)["method"]) == {"teacher", "student"}


def test_records_of_one_teacher_setting_are_all_kept() -> None:
    records = [taught(_record(m, "small", 0, SCORES, 900), f"2026-01-0{i + 1}", 1.0) for i, m in enumerate("ab")]
    kept, notes = current_records(records)
    assert len(kept) == 2 and notes == []
