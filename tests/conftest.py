"""Shared fixtures: the real data root comes from --data-root or KDNAS_DATA, never from a hard-coded path."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
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
            f"{len(skipped)} real-data test(s) (marker `data`) skipped (reasons above): set KDNAS_DATA to a data root "
            "holding mitdb/ (e.g. KDNAS_DATA=data) or pass --data-root DIR; `python -m benchmark data fetch mitbih "
            "--data-root data` downloads it (about 94 MB).")
    if slow:
        terminalreporter.write_line(f"{len(slow)} slow test(s) not run by default: `python -m pytest -m slow` "
                                    "(CI runs them in a second step).")


def configured_root(config: pytest.Config) -> Path | None:
    """The real data root from --data-root or $KDNAS_DATA; None when neither is set."""
    option = config.getoption("--data-root") or os.environ.get("KDNAS_DATA")
    return Path(option).expanduser().resolve() if option else None


def require_files(config: pytest.Config, files: Sequence[str], what: str) -> Path:
    """The configured data root, or a one-line skip naming what is missing: no root, or the first of ``files`` (paths
    under the root) that it lacks. Each real-data fixture names the files its tests read."""
    root = configured_root(config)
    if root is None:
        pytest.skip(f"{what}: no data root (set KDNAS_DATA=DIR or pass --data-root DIR)")
    absent = [name for name in files if not (root / name).is_file()]
    if absent:
        pytest.skip(f"{what}: {root} has no {absent[0]}" + (f" (and {len(absent) - 1} more)" if len(absent) > 1
                                                               else ""))
    return root


@pytest.fixture(scope="session")
def data_root(request: pytest.FixtureRequest) -> Path:
    """The real data root holding all of MIT-BIH (``mitdb/``, what `data fetch mitbih` makes); tests that need it
    are marked ``data`` and skip, naming the missing file, without it."""
    from datasets.mitbih import DB, record_files

    return require_files(request.config, [f"{DB}/RECORDS", *(f"{DB}/{name}" for name in record_files())],
                         "MIT-BIH")


@pytest.fixture(scope="session")
def require_data(request: pytest.FixtureRequest) -> Callable[[Sequence[str], str], Path]:
    """For a real-data test with files of its own: ``require_data(["svdb/800.hea", ...], "SVDB")`` returns the data
    root, or skips with one line naming the first missing file."""
    return partial(require_files, request.config)


@pytest.fixture(scope="session")
def sleepedf_metadata_root(request: pytest.FixtureRequest) -> Path:
    """A data root holding PhysioNet's Sleep-EDF metadata (``sleep-edf/``: SHA256SUMS.txt, RECORDS, RECORDS-v1)."""
    from datasets.sleepedf import FOLDER

    return require_files(request.config, [f"{FOLDER}/{name}" for name in ("SHA256SUMS.txt", "RECORDS", "RECORDS-v1")],
                         "Sleep-EDF metadata")


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
