import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from benchmark.executors import InProcessExecutor, ProcessExecutor, make_executor
from benchmark.results import JobKey
from benchmark.runner import Job, run_many


def square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


def log_twice(item: str) -> None:
    log = logging.getLogger("benchmark.worker_test")
    log.warning("skipped %s", item)
    log.info("progress %s", item)
    log.debug("details %s", item)


def test_in_process_executor_reports_errors_without_stopping() -> None:
    out = dict(InProcessExecutor().map_unordered(square, [1, 2, 3, 4]))
    assert out[1] == 1 and out[4] == 16 and isinstance(out[3], ValueError)


def test_process_executor_runs_jobs_in_worker_processes(tmp_path: Path) -> None:
    out = dict(ProcessExecutor(workers=2, gpus=0).map_unordered(square, [1, 2, 3]))
    assert out[1] == 1 and out[2] == 4 and isinstance(out[3], ValueError)


def test_workers_log_at_the_parents_level(capfd: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        out = dict(ProcessExecutor(workers=1, gpus=0).map_unordered(log_twice, ["night 7"]))
    finally:
        root.setLevel(level)
    assert out == {"night 7": None}
    err = capfd.readouterr().err
    assert "WARNING benchmark.worker_test: skipped night 7" in err  # the worker's records reach stderr
    assert "INFO benchmark.worker_test: progress night 7" in err
    assert "DEBUG" not in err  # at the parent's level, not below


def sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_an_interrupt_stops_the_jobs_in_flight_instead_of_waiting_for_them() -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        for _item, outcome in ProcessExecutor(workers=2, gpus=0).map_unordered(sleep_then_pid, [0.0, 300.0]):
            assert isinstance(outcome, int)
            raise KeyboardInterrupt  # Ctrl-C while the 300-s job still runs in the other worker
    assert time.monotonic() - started < 120  # returned without waiting out the long job
    deadline = time.monotonic() + 30
    while mp.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not mp.active_children()  # no worker left behind


def test_make_executor_rejects_unknown_kinds() -> None:
    assert isinstance(make_executor("local", 1), InProcessExecutor)
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("slurm", 2)


@pytest.mark.slow  # starts a Ray instance: about a minute
def test_ray_executor_runs_a_sweep(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is an extra: pip install -e '.[ray]'")
    import ray

    from benchmark.executors import RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        jobs = [Job(JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", seed), str(tmp_path),
                    str(tmp_path / "cache"), device="cpu") for seed in (0, 1)]
        results = run_many(jobs, RayExecutor(), tmp_path / "results")
        assert sorted(r.key.seed for r in results) == [0, 1] and all(r.ok for r in results)
    finally:
        ray.shutdown()
