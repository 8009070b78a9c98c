"""Start-up: `python -m benchmark --help` and `list` against `python -c "import torch"`, side by side.

A command that imported torch could not start faster than torch imports; the ratio (median of per-round ratios,
alternated rounds, CPU time of each child process so that other load on the machine counts less) shows the
commands import none of it. Target: `list` under a second on an idle machine; asserted: `--help` and `list`
each take under half the CPU time of importing torch alone. Run with::

    python -m pytest -m benchmark tests/benchmarks/test_startup_speed.py -p no:cacheprovider
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

pytestmark = pytest.mark.benchmark

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 5
COMMANDS = {
    "help": [sys.executable, "-m", "benchmark", "--help"],
    "list": [sys.executable, "-m", "benchmark", "list", "--data-root", os.devnull],
    "import_torch": [sys.executable, "-c", "import torch"],
}


def child_seconds(argv: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True, timeout=300)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def test_help_and_list_start_without_torch(benchmark: BenchmarkFixture, report: object) -> None:
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    wall: dict[str, list[float]] = {name: [] for name in COMMANDS}

    def one_round() -> None:
        for name, argv in COMMANDS.items():
            c, w = child_seconds(argv)
            cpu[name].append(c)
            wall[name].append(w)

    one_round()  # warm the file cache
    for values in (*cpu.values(), *wall.values()):
        values.clear()
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratios = {name: statistics.median(a / b for a, b in zip(cpu[name], cpu["import_torch"], strict=True))
              for name in ("help", "list")}
    report(help_vs_torch_cpu=ratios["help"], list_vs_torch_cpu=ratios["list"],  # type: ignore[operator]
           help_cpu_s=statistics.median(cpu["help"]), list_cpu_s=statistics.median(cpu["list"]),
           import_torch_cpu_s=statistics.median(cpu["import_torch"]),
           help_wall_s=statistics.median(wall["help"]), list_wall_s=statistics.median(wall["list"]))
    assert ratios["help"] < 0.5 and ratios["list"] < 0.5
