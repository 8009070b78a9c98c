"""Issue 32, part E: a method's docstring says what the method does; what a run measured lives in its record.

Measured search numbers (candidates, epochs, evaluations of some run) went stale in docstrings as the code changed,
so they are read from records instead (``provenance.notes``, the leaderboard's search and method notes). Each
searching method's docstring states the final-training rule: as published, and the protocol retraining.
"""

from __future__ import annotations

import importlib
import re

import pytest

from methods import METHODS

MEASURED = re.compile(
    r"\bmeasured\b[^.]*\b(seed|run|release)\b"  # "Measured (seed 0, ...)", "measured at release ..."
    r"|\bseed \d+ at [0-9a-f]{7}\b"  # a run pinned to a commit
    r"|\b\d+(\.\d+)? of \d+ units\b"  # budget spent by some run
    r"|\bat release [0-9a-f]{7}\b",
    re.IGNORECASE)


def _docs(method: str) -> str:
    cls = METHODS.get(method)
    return f"{importlib.import_module(cls.__module__).__doc__ or ''}\n{cls.__doc__ or ''}"


@pytest.mark.parametrize("method", METHODS.names())
def test_docstrings_leave_measured_search_numbers_to_the_records(method: str) -> None:
    found = [m.group(0) for m in MEASURED.finditer(_docs(method))]
    assert not found, f"{method}'s docstring quotes measurements of a run (read them from records): {found}"


@pytest.mark.parametrize("method", [m for m in METHODS.names() if METHODS.get(m)().searches()])
def test_searching_methods_state_the_final_training_rule(method: str) -> None:
    text = " ".join(_docs(method).split())
    assert '"as published"' in text and "protocol_retrain" in text, method


def test_the_measurement_pattern_catches_what_it_should() -> None:
    assert MEASURED.search("Measured (seed 0, `run --methods autokd --seeds 0`): 38 trials")
    assert MEASURED.search("release seed 0 at 131e5e5 with round 5's teacher")
    assert MEASURED.search("29.7 of 30 units spent")
    assert not MEASURED.search("``controller_samples`` = 30 children rewarded after each supernet epoch")
