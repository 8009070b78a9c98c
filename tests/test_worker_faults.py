"""Worker faults: a dead worker fails only its own job, and workers die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from benchmark.executors import ProcessExecutor, WorkerDied

REPO = Path(__file__).resolve().parents[1]


def square_or_die(x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker is killed while it runs this job
    return x * x


def test_a_killed_worker_fails_only_its_own_job_and_the_sweep_goes_on() -> None:
    out = dict(ProcessExecutor(workers=2, gpus=0).map_unordered(square_or_die, [1, 2, 3, 4, 5]))
    assert isinstance(out.pop(2), WorkerDied)
    assert out == {1: 1, 3: 9, 4: 16, 5: 25}  # the jobs in flight beside it and those queued after it all ran


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is dead too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def test_workers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from benchmark.executors import ProcessExecutor

        def sleeper(i):
            Path({str(tmp_path)!r}, f"worker{{i}}.pid").write_text(str(os.getpid()))
            time.sleep(300)

        if __name__ == "__main__":
            for _ in ProcessExecutor(workers=2, gpus=0).map_unordered(sleeper, [0, 1]):
                pass
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env)
    pid_files = [tmp_path / f"worker{i}.pid" for i in (0, 1)]
    deadline = time.monotonic() + 120
    while not all(p.exists() and p.read_text() for p in pid_files) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.read_text()) for p in pid_files]
    assert all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "workers outlived their killed parent"
