"""Shared fixtures: the real data root comes from --data-root or KDNAS_DATA, never from a hard-coded path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--data-root", default=None, help="data root holding mitdb/ (default: $KDNAS_DATA)")


@pytest.fixture(scope="session")
def data_root(request: pytest.FixtureRequest) -> Path:
    """The real data root; tests that need it are marked ``data`` and skip when none is configured."""
    option = request.config.getoption("--data-root") or os.environ.get("KDNAS_DATA")
    if not option:
        pytest.skip("no data root: pass --data-root or set KDNAS_DATA (e.g. ../shared/data)")
    root = Path(option).expanduser().resolve()
    if not (root / "mitdb" / "RECORDS").exists():
        pytest.skip(f"{root} has no mitdb/RECORDS")
    return root


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by the tests of one session (preprocessed data, teachers)."""
    return tmp_path_factory.mktemp("kdnas-cache")
