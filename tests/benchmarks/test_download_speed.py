"""Download speed: ``fetch_physionet`` with 4 files at a time vs one at a time, from a throttled local server.

PhysioNet sends each connection slowly (often 1-5 MB/s) whatever the client's own link, so several downloads at
once go several times faster. The local server emulates that: it sends each file in 64 KiB chunks with a pause
after each (about 8 MB/s per connection, no limit on the total). 12 files of 1 MB are fetched into a fresh folder
with jobs=1 and jobs=4 in alternation (jobs=1, jobs=4, jobs=1, …: drift in machine load cancels), and the asserted
figure is the median of the per-round ratios jobs=1 time / jobs=4 time. Run with::

    python -m pytest -m benchmark tests/benchmarks/test_download_speed.py -p no:cacheprovider
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from datasets.download import fetch_physionet

pytestmark = pytest.mark.benchmark

Report = Callable[..., None]

N_FILES, FILE_BYTES = 12, 1_000_000
SEND_CHUNK, SEND_PAUSE_S = 64 * 1024, 0.008  # ≈ 8 MB/s per connection
ROUNDS, WARMUP = 3, 1
JOBS = 4


class ThrottledHandler(SimpleHTTPRequestHandler):
    """Serves files as a slow link would: ``SEND_CHUNK`` bytes, then a ``SEND_PAUSE_S`` pause, per connection."""

    def copyfile(self, source: IO[bytes], outputfile: IO[bytes]) -> None:
        while chunk := source.read(SEND_CHUNK):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(SEND_PAUSE_S)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def throttled_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """(base URL, file names, sums) of a fake 'fakedb' 1.0.0 of ``N_FILES`` random files behind a throttled server."""
    served = tmp_path_factory.mktemp("throttled")
    folder = served / "fakedb" / "1.0.0"
    folder.mkdir(parents=True)
    files = [f"rec{i:02d}.dat" for i in range(N_FILES)]
    for name in files:
        (folder / name).write_bytes(os.urandom(FILE_BYTES))
    sums = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in files}
    (folder / "SHA256SUMS.txt").write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(ThrottledHandler, directory=str(served)))
    thread = threading.Thread(target=partial(httpd.serve_forever, poll_interval=0.05), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", files, sums
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_parallel_download_speedup(
    benchmark: BenchmarkFixture, report: Report, throttled_db: tuple[str, list[str], dict[str, str]], tmp_path: Path
) -> None:
    """jobs=4 vs jobs=1 over a per-connection-throttled link: target ≈ 4x, asserted ≥ 1.5x."""
    base_url, files, sums = throttled_db
    times: dict[int, list[float]] = {1: [], JOBS: []}
    runs = itertools.count()

    def fresh_dest() -> Path:
        """An empty folder for the next run (the earlier runs' folders are removed, outside the timings)."""
        for old in tmp_path.glob("run*"):
            shutil.rmtree(old)
        return tmp_path / f"run{next(runs)}"

    def fetch(jobs: int, dest: Path, record: bool = True) -> None:
        start = time.perf_counter()
        got = fetch_physionet("fakedb", "1.0.0", dest, files, sums, base_url, progress=False, jobs=jobs)
        elapsed = time.perf_counter() - start
        assert got == files
        if record:
            times[jobs].append(elapsed)

    for _ in range(WARMUP):
        fetch(1, fresh_dest(), record=False)
        fetch(JOBS, fresh_dest(), record=False)

    def setup() -> tuple[tuple[Path], dict[str, Any]]:
        fetch(1, fresh_dest())  # untimed by the fixture: the jobs=1 run of this round
        return (fresh_dest(),), {}

    benchmark.pedantic(lambda dest: fetch(JOBS, dest), setup=setup, rounds=ROUNDS, iterations=1)
    speedup = statistics.median(a / b for a, b in zip(times[1], times[JOBS], strict=True))
    of_medians = statistics.median(times[1]) / statistics.median(times[JOBS])
    report(
        speedup_jobs4_vs_jobs1=speedup,
        speedup_of_medians=of_medians,
        jobs1_s=statistics.median(times[1]),
        jobs4_s=statistics.median(times[JOBS]),
    )
    assert speedup >= 1.5
