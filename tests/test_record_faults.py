"""Record faults: no result is lost to a failed rerun, stale records rerun (saying why), locked jobs are left alone."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmark.executors import InProcessExecutor, WorkerDied
from benchmark.joblock import JobLocks
from benchmark.protocol import PROTOCOL_VERSION
from benchmark.results import JobKey, RunResult, read_result, results_path, write_result
from benchmark.runner import Job, run_many
from methods.reference import StudentReference


def job(tmp_path: Path, seed: int = 0, **config: object) -> Job:
    key = JobKey("synthetic", "fixed", "small", "smoke", "student", seed)
    return Job(key, str(tmp_path / "data"), str(tmp_path / "cache"), device="cpu", method_config=dict(config))


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, Any]] = []

    def __call__(self, kind: str, job: Job, payload: Any) -> None:
        self.events.append((kind, job.key.seed, payload))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, Job, RunResult]:
    """A results folder holding one OK record."""
    results = tmp_path / "results"
    (ok,) = run_many([job(tmp_path)], InProcessExecutor(), results)
    assert ok.ok, ok.error
    return results, job(tmp_path), read_result(results_path(results, ok.key))


def _break_the_method(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: StudentReference, arch: Any, ctx: Any) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(StudentReference, "distill", broken)


def test_a_failed_rerun_never_replaces_an_ok_record(finished: tuple[Path, Job, RunResult],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    results, the_job, before = finished
    _break_the_method(monkeypatch)
    events = Recorder()
    with caplog.at_level(logging.WARNING, logger="benchmark.runner"):
        (outcome,) = run_many([the_job], InProcessExecutor(), results, resume=False, on_event=events)
    assert not outcome.ok and "injected failure" in (outcome.error or "")
    after = read_result(results_path(results, the_job.key))
    assert after.ok and after.metrics == before.metrics  # the OK result is still there
    assert [h["status"] for h in after.history] == ["failed"] and "injected failure" in after.history[0]["error"]
    assert events.kinds() == ["result", "kept"]
    assert any("earlier OK record is kept" in r.getMessage() for r in caplog.records)


def test_no_resume_replaces_an_ok_record_only_with_a_new_ok_one(finished: tuple[Path, Job, RunResult]) -> None:
    results, the_job, before = finished
    (outcome,) = run_many([the_job], InProcessExecutor(), results, resume=False)
    after = read_result(results_path(results, the_job.key))
    assert outcome.ok and after.ok
    assert after.provenance["finished_at"] == outcome.provenance["finished_at"]
    assert [h["status"] for h in after.history] == ["ok"]  # the superseded record is summarised, not lost
    assert after.history[0]["macro_f1"] == before.metrics["macro_f1"]


class DyingWorkers:
    """An executor whose worker dies on every job: the BrokenProcessPool case of issue 13."""

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        for item in items:
            yield item, WorkerDied("worker process 1234 died (killed by signal 9) while running this job")


def test_a_dead_worker_on_a_rerun_keeps_the_ok_records(tmp_path: Path) -> None:
    results = tmp_path / "results"
    jobs = [job(tmp_path, seed) for seed in (0, 1)]
    run_many(jobs, InProcessExecutor(), results)
    run_many(jobs, DyingWorkers(), results, resume=False)
    for j in jobs:
        record = read_result(results_path(results, j.key))
        assert record.ok and record.history[-1]["status"] == "failed"
        assert "WorkerDied" in record.history[-1]["error"]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda r: replace(r, data_checksum="0123456789abcdef"), "data changed (checksum 0123456789abcdef ->"),
    (lambda r: replace(r, split_hash="0123456789abcdef"), "split changed"),
    (lambda r: replace(r, protocol_version=0), f"protocol v0 -> v{PROTOCOL_VERSION}"),
    (lambda r: replace(r, config={**r.config, "method": {"label_smoothing": 0.3}}), "method config changed"),
    (lambda r: replace(r, config={**r.config, "protocol": with_setting(r.config["protocol"], "student_recipe",
                                                                       "epochs", 99)}),
     "protocol settings changed (profile.student_recipe.epochs)"),
    (lambda r: replace(r, config={k: v for k, v in r.config.items() if k != "protocol"}),
     "protocol settings not recorded"),
])
def test_a_stale_record_is_rerun_and_the_reason_said(finished: tuple[Path, Job, RunResult],
                                                     change: Callable[[RunResult], RunResult], reason: str) -> None:
    results, the_job, before = finished
    write_result(results, change(before))
    events = Recorder()
    run_many([the_job], InProcessExecutor(), results, on_event=events)
    assert events.kinds() == ["stale", "result"]
    assert reason in events.events[0][2]
    assert read_result(results_path(results, the_job.key)).data_checksum == before.data_checksum


def with_setting(protocol: dict[str, Any], recipe: str, field: str, value: object) -> dict[str, Any]:
    """A copy of a record's protocol settings with one recipe field of its profile changed."""
    profile = protocol["profile"]
    return {**protocol, "profile": {**profile, recipe: {**profile[recipe], field: value}}}


def test_a_new_teacher_recipe_reruns_a_distilled_student_but_not_the_ce_student(tmp_path: Path) -> None:
    results = tmp_path / "results"
    ce, kd = job(tmp_path), replace(job(tmp_path), key=replace(job(tmp_path).key, method="vanilla_kd"))
    run_many([ce, kd], InProcessExecutor(), results)
    for the_job in (ce, kd):
        record = read_result(results_path(results, the_job.key))
        write_result(results, replace(record, config={**record.config, "protocol": with_setting(
            record.config["protocol"], "teacher_recipe", "weight_decay", 0.5)}))
    events: list[tuple[str, str, Any]] = []
    run_many([ce, kd], InProcessExecutor(), results,
             on_event=lambda kind, j, payload: events.append((kind, j.key.method, payload)))
    assert ("skipped", "student") in {(kind, method) for kind, method, _ in events}
    (stale,) = [(method, payload) for kind, method, payload in events if kind == "stale"]
    assert stale[0] == "vanilla_kd" and "protocol settings changed (profile.teacher_recipe.weight_decay)" in stale[1]


def test_editing_the_profile_description_does_not_make_a_record_stale(finished: tuple[Path, Job, RunResult]) -> None:
    results, the_job, before = finished
    protocol = before.config["protocol"]
    write_result(results, replace(before, config={
        **before.config, "protocol": {**protocol, "profile": {**protocol["profile"], "description": "reworded"}}}))
    events = Recorder()
    run_many([the_job], InProcessExecutor(), results, on_event=events)
    assert events.kinds() == ["skipped"]


def test_a_current_record_is_skipped(finished: tuple[Path, Job, RunResult]) -> None:
    results, the_job, _ = finished
    events = Recorder()
    run_many([the_job], InProcessExecutor(), results, on_event=events)
    assert events.kinds() == ["skipped"]


def test_a_record_of_a_newer_schema_is_never_overwritten(tmp_path: Path) -> None:
    results = tmp_path / "results"
    the_job = job(tmp_path)
    path = results_path(results, the_job.key)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema_version": 99}))
    events = Recorder()
    assert run_many([the_job], InProcessExecutor(), results, resume=False, on_event=events) == []
    assert events.kinds() == ["refused"] and "newer KD-NAS Bench" in events.events[0][2]
    assert json.loads(path.read_text()) == {"schema_version": 99}


def test_a_job_another_run_holds_is_skipped(tmp_path: Path) -> None:
    results = tmp_path / "results"
    jobs = [job(tmp_path, seed) for seed in (0, 1)]
    other_run = JobLocks(results)  # another process's lock: a separate open file, so flock conflicts
    assert other_run.try_acquire(jobs[0].key)
    events = Recorder()
    done = run_many(jobs, InProcessExecutor(), results, on_event=events)
    assert [r.key.seed for r in done] == [1] and ("held", 0) in [(k, s) for k, s, _ in events.events]
    assert not results_path(results, jobs[0].key).exists()
    other_run.release_all()
    done = run_many(jobs, InProcessExecutor(), results)
    assert [r.key.seed for r in done] == [0]  # once released, the job runs (seed 1 is already done)


@pytest.mark.slow  # two CLI processes: ~20 s on an idle machine, minutes on a shared one
def test_two_identical_runs_at_once_run_each_job_once(tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "benchmark", "run", "--dataset", "synthetic", "--profile", "smoke", "--methods",
           "student", "--seeds", "0-3", "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "r" / ".locks").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    out_first, _ = first.communicate(timeout=300)
    outputs = (out_first, second.stdout + second.stderr)
    ran = [int(m) for out in outputs for m in re.findall(r"(\d+) ok, \d+ failed", out)]
    assert sum(ran) == 4, (out_first, second.stdout, second.stderr)  # every job ran exactly once between the two
    assert len(list((tmp_path / "r").rglob("seed*.json"))) == 4
