"""A newcomer's first steps in a fresh clone, as the README gives them: a first run, `show`, `leaderboard`, `export`
and the main command's plan all use the user's own git-ignored runs/, and leave the committed release untouched
(`git status` clean but for ignored files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh repository holding this working tree's files as they would be committed (tracked and new files that
    git does not ignore), so the test checks the code under test, not only the last commit."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    root = tmp_path_factory.mktemp("fresh") / "kdnas-bench"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # deleted in the working tree: not part of the clone
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-q", "-m", "clone")
    return root


def benchmark(clone: Path, cache: Path, *argv: str) -> str:
    """``python -m benchmark ARGV`` in the clone (its packages, not the installed ones); the output."""
    env = {**{k: v for k, v in os.environ.items() if k != "KDNAS_DATA"}, "PYTHONPATH": str(clone),
           "KDNAS_CACHE": str(cache), "KDNAS_DATA": str(cache / "no-data"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmark", *argv], cwd=clone, env=env, capture_output=True,
                          text=True, check=False, timeout=600)
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return " ".join((proc.stdout + proc.stderr).split())


def test_first_steps_in_process_leave_the_release_untouched(clone: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The same steps through ``main`` in the clone's root (fast; the slow test below runs the clone's own code)."""
    from benchmark.cli import main

    shutil.rmtree(clone / "runs", ignore_errors=True)  # a first run: no earlier test's runs
    monkeypatch.chdir(clone)
    monkeypatch.setenv("KDNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDNAS_DATA", str(tmp_path / "no-data"))
    steps = [["run", "--methods", "student", "--dataset", "synthetic", "--profile", "smoke", "-q"], ["show"],
             ["leaderboard"], ["export", "--out", "runs/board.csv"],
             ["run", "--methods", "all", "--dataset", "mitbih", "--seeds", "0,1,2", "--dry-run"]]
    for argv in steps:
        assert main(argv) == 0, argv
    plan = capsys.readouterr().out
    assert "results: runs" in plan and "already done" not in plan  # the main command runs what it says
    assert (clone / "runs" / "leaderboards" / "synthetic.md").is_file() and (clone / "runs" / "board.csv").is_file()
    assert git(clone, "status", "--porcelain") == ""  # nothing but ignored files changed
    assert "!! runs/" in git(clone, "status", "--porcelain", "--ignored").splitlines()


@pytest.mark.slow  # five `python -m benchmark` processes: ~25 s on 2 idle cores, a minute under load
def test_a_first_run_uses_runs_and_leaves_the_release_untouched(clone: Path, tmp_path: Path) -> None:
    shutil.rmtree(clone / "runs", ignore_errors=True)  # a first run: no earlier test's runs
    released = sorted(p.relative_to(clone) for p in (clone / "results").rglob("seed*.json"))
    output = benchmark(clone, tmp_path, "run", "--methods", "student", "--dataset", "synthetic", "--profile", "smoke")
    assert "results: runs" in output and "1 ok, 0 failed" in output
    assert len(list((clone / "runs").rglob("seed*.json"))) == 1
    assert "confusion matrix" in benchmark(clone, tmp_path, "show")  # runs/ holds one record: shown in full
    assert "wrote runs/leaderboards/synthetic.md" in benchmark(clone, tmp_path, "leaderboard")
    benchmark(clone, tmp_path, "export", "--out", "runs/board.csv")
    plan = benchmark(clone, tmp_path, "run", "--methods", "all", "--dataset", "mitbih", "--seeds", "0,1,2",
                     "--dry-run")
    assert "results: runs" in plan and "already done" not in plan  # the main command runs what it says
    assert git(clone, "status", "--porcelain") == ""  # nothing but ignored files changed
    assert "!! runs/" in git(clone, "status", "--porcelain", "--ignored").splitlines()
    assert sorted(p.relative_to(clone) for p in (clone / "results").rglob("seed*.json")) == released


def first_run_commands() -> list[list[str]]:
    """The `python -m benchmark` lines of the README's first code block under "First run", as argument lists."""
    import re
    import shlex

    section = (REPO / "README.md").read_text(encoding="utf-8").split("## First run", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "no bash block under First run"
    return [shlex.split(line)[3:] for line in block.group(1).splitlines() if line.startswith("python -m benchmark ")]


@pytest.mark.slow  # the README's first run on the real MIT-BIH data: preprocessing and a smoke job, ~1 min
@pytest.mark.data
def test_the_readmes_first_run_as_written(clone: Path, data_root: Path, tmp_path: Path) -> None:
    """The README's First-run lines verbatim (`--data-root data --fetch`: the files are there, so nothing is
    downloaded), in the clone, then `git status` is clean but for ignored files."""
    shutil.rmtree(clone / "runs", ignore_errors=True)  # a first run: no earlier test's runs
    (clone / "data").mkdir(exist_ok=True)
    (clone / "data" / "mitdb").symlink_to(data_root / "mitdb", target_is_directory=True)
    commands = first_run_commands()
    assert [argv[0] for argv in commands] == ["run", "show"]
    for argv in commands:
        output = benchmark(clone, tmp_path, *argv)
    assert "mitbih/inter-patient/small/smoke/student/seed0" in output
    assert git(clone, "status", "--porcelain") == ""
    assert {"!! data/", "!! runs/"} <= set(git(clone, "status", "--porcelain", "--ignored").splitlines())
