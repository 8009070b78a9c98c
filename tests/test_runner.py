from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from benchmark.engine import Engine
from benchmark.executors import InProcessExecutor
from benchmark.protocol import BUDGET_TIERS, BudgetTier
from benchmark.results import JobKey, load_results, results_path
from benchmark.runner import Job, build_context, load_bundle, run_many, run_one
from benchmark.teachers import TeacherStore
from datasets.base import DataView


def job(tmp_path: Path, method: str, seed: int = 0, budget: str = "small", **config: object) -> Job:
    key = JobKey("synthetic", "fixed", budget, "smoke", method, seed)
    return Job(key, str(tmp_path / "data"), str(tmp_path / "cache"), device="cpu", method_config=dict(config))


def test_methods_never_see_the_test_split(tmp_path: Path) -> None:
    assert "test" not in {f.name for f in fields(DataView)}
    ctx = build_context(job(tmp_path, "student"), load_bundle(job(tmp_path, "student")), Engine("cpu").device)
    assert not hasattr(ctx.data, "test")


def test_failed_job_becomes_a_failed_record_and_the_sweep_goes_on(tmp_path: Path) -> None:
    jobs = [job(tmp_path, "student", no_such_option=1), job(tmp_path, "student", seed=1)]
    results = run_many(jobs, InProcessExecutor(), tmp_path / "results")
    by_seed = {r.key.seed: r for r in results}
    assert by_seed[0].status == "failed" and "no_such_option" in (by_seed[0].error or "")
    assert by_seed[1].ok
    assert len(load_results(tmp_path / "results")) == 2


def test_resume_skips_finished_jobs_and_reruns_failed_ones(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    jobs = [job(tmp_path, "student", seed=s) for s in (0, 1)] + [job(tmp_path, "student", seed=2, bad=1)]
    run_many(jobs, InProcessExecutor(), results_dir)
    events: list[tuple[str, int]] = []
    run_many(jobs, InProcessExecutor(), results_dir, on_event=lambda kind, j, _: events.append((kind, j.key.seed)))
    assert ("skipped", 0) in events and ("skipped", 1) in events
    assert ("result", 2) in events  # the failed one is retried
    results_path(results_dir, jobs[1].key).unlink()
    events.clear()
    run_many(jobs[:2], InProcessExecutor(), results_dir, on_event=lambda kind, j, _: events.append((kind, j.key.seed)))
    assert events == [("skipped", 0), ("result", 1)]


def test_student_over_budget_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiers = dict(BUDGET_TIERS["synthetic"])
    tiers["small"] = BudgetTier("small", 10, tiers["small"].default_student)
    monkeypatch.setitem(BUDGET_TIERS, "synthetic", tiers)
    result = run_one(job(tmp_path, "student"))
    assert result.status == "failed"
    assert result.error is not None and "BudgetViolation" in result.error and "allows 10" in result.error


def test_teacher_is_trained_once_and_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = TeacherStore._train_and_store
    def counting(self: TeacherStore, *args: object, **kwargs: object) -> None:
        calls.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(TeacherStore, "_train_and_store", counting)
    first = run_one(job(tmp_path, "vanilla_kd"))
    second = run_one(job(tmp_path, "teacher"))
    assert first.ok and second.ok and len(calls) == 1
    assert first.teacher["id"] == second.teacher["id"]
    assert second.deployed_params is not None and second.deployed_params > first.deployed_params  # type: ignore[operator]


def test_record_carries_protocol_and_provenance(tmp_path: Path) -> None:
    result = run_one(job(tmp_path, "vanilla_kd"))
    assert result.ok, result.error
    assert result.split_hash and result.data_checksum
    assert result.config["protocol"]["profile"]["name"] == "smoke"
    assert result.config["method"] == {"alpha": 0.9, "temperature": 4.0}
    for key in ("git_commit", "packages", "hardware", "created_at"):
        assert key in result.provenance
    assert set(result.metrics["per_class"]) == {"A", "B", "C", "D", "E"}


def test_record_carries_the_typed_leaderboard_fields(tmp_path: Path) -> None:
    result = run_one(job(tmp_path, "vanilla_kd"))
    assert result.ok, result.error
    assert (result.fold, result.cv, result.reference, result.main_metric) == (None, None, False, "macro_f1")
    assert result.teacher_ids == [result.teacher["id"]]
    groups = result.test_confusion_by_group
    assert len(groups) > 1  # one matrix per test patient (group)
    assert np.sum([np.asarray(m) for m in groups.values()], axis=0).tolist() == result.metrics["confusion"]
    student = run_one(job(tmp_path, "student"))
    assert student.reference and student.teacher_ids == []


def test_a_run_depends_on_its_seed_only_not_on_earlier_jobs_or_the_teacher_store(tmp_path: Path) -> None:
    import torch

    outcomes = []
    for prior_state in (1, 2):  # first with the teacher trained inside the job, then loaded from the store
        torch.manual_seed(prior_state)
        torch.rand(prior_state * 7)  # some earlier job in this worker used the global random state
        result = run_one(job(tmp_path / "shared", "vanilla_kd"))
        assert result.ok, result.error
        outcomes.append((result.metrics["confusion"], result.val_metrics["macro_f1"]))
    assert outcomes[0] == outcomes[1]
