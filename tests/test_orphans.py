"""Issue 34, finding 5 (and 6's signals): killing `run` leaves no process behind; SIGINT and SIGTERM stop it quietly
with the shell's exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _start_sweep(tmp_path: Path) -> tuple[subprocess.Popen[str], set[int]]:
    """`run --workers 2` over enough jobs to still be running; returns it once its manager and 2 workers are up."""
    argv = [sys.executable, "-m", "benchmark", "run", "--dataset", "synthetic", "--profile", "smoke", "--methods",
            "student,vanilla_kd", "--seeds", "0-9", "--workers", "2", "-q", "--no-latency-step",
            "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 90
    children: set[int] = set()
    while len(children) < 3 and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
        children = {pid for pid in _children(parent.pid) if _alive(pid)}
    assert len(children) >= 3, f"the sweep did not start its manager and workers: {parent.communicate()}"
    return parent, children


def test_sigkill_of_run_leaves_no_process_behind(tmp_path: Path) -> None:
    parent, children = _start_sweep(tmp_path)
    parent.kill()
    parent.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in children if _alive(pid)]
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not left, "processes outlived their SIGKILLed `benchmark run`"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_stops_quietly_with_the_shells_exit_code(tmp_path: Path, sig: int, code: int) -> None:
    parent, children = _start_sweep(tmp_path)
    time.sleep(1.0)
    if sig == signal.SIGINT:
        os.killpg(parent.pid, sig)  # Ctrl-C in a terminal reaches the whole process group
    else:
        parent.send_signal(sig)  # a scheduler signals the run itself
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted: finished records are kept" in out + err
    time.sleep(1.0)
    assert not [pid for pid in children if _alive(pid)]


def test_ctrl_c_prints_no_traceback_from_an_idle_worker(tmp_path: Path) -> None:
    """One worker idle (its job done), one busy: Ctrl-C reaches both; only the parent handles it."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from benchmark.executors import ProcessExecutor

        def job(i):
            if i == 1:
                time.sleep(300)
            return i

        if __name__ == "__main__":
            try:
                for item, _ in ProcessExecutor(workers=2, gpus=0).map_unordered(job, [0, 1]):
                    Path({str(tmp_path)!r}, f"done{{item}}").write_text("")
            except KeyboardInterrupt:
                sys.exit(130)
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    deadline = time.monotonic() + 90
    while not (tmp_path / "done0").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # worker 0 is back in its idle wait for the next job
    os.killpg(parent.pid, signal.SIGINT)
    _, err = parent.communicate(timeout=60)
    assert parent.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
