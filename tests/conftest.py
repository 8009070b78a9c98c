"""Shared fixtures: the real data root comes from --data-root or KDNAS_DATA, never from a hard-coded path."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread in the test process: its models are tiny, and on a busy 2-core machine a second OpenMP
    thread made a training step ~15x slower (the perf notes in tests/benchmarks/test_speed.py)."""
    import torch

    torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--data-root", default=None, help="data root holding mitdb/ (default: $KDNAS_DATA)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many real-data tests were skipped and slow tests left out, and how to run them."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "data" in getattr(r, "keywords", {})]
    slow = [item for item in terminalreporter.stats.get("deselected", []) if item.get_closest_marker("slow")]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} real-data test(s) (marker `data`) skipped: set KDNAS_DATA to a data root holding "
            "mitdb/ (e.g. KDNAS_DATA=../shared/data) or pass --data-root DIR; "
            "`python -m benchmark data fetch mitbih --data-root DIR` downloads it (about 94 MB).")
    if slow:
        terminalreporter.write_line(f"{len(slow)} slow test(s) not run by default: `python -m pytest -m slow` "
                                    "(CI runs them in a second step).")


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


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of a local HTTP server."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=partial(httpd.serve_forever, poll_interval=0.05), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="session")
def fake_sleepedf20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding all 39 Sleep-EDF-20 nights as short generated EDF files (plus their SHA256SUMS.txt)."""
    from sleepedf_fakes import write_dataset

    from datasets.sleepedf import SleepEDF20

    root = tmp_path_factory.mktemp("fake-sleepedf20")
    write_dataset(root, SleepEDF20())
    return root
