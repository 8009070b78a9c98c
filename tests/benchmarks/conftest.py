"""Fixtures for the speed benchmarks: two torch threads per test, and a summary of the measured figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True)
def two_threads() -> Iterator[None]:
    """Run each benchmark with two torch threads (the reference machine's cores); restore the setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def report(request: pytest.FixtureRequest, benchmark: BenchmarkFixture) -> Callable[..., None]:
    """``report(**figures)``: store figures in ``benchmark.extra_info``, print them and list them in the summary."""

    def record(**figures: float) -> None:
        benchmark.extra_info.update(figures)
        line = f"{request.node.name}: " + ", ".join(f"{name}={value:.3f}" for name, value in figures.items())
        print(line)
        request.config.stash.setdefault(FIGURES, []).append(line)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Print every benchmark's figures (ratios, seconds) at the end of the run, even without ``-s``."""
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("speed figures")
        for line in lines:
            terminalreporter.write_line(line)
