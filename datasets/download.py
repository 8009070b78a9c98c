"""Download PhysioNet database files, verified against PhysioNet's SHA256SUMS.txt and a committed copy of it.

The fetch uses the standard library (``urllib``), not ``wfdb.dl_database``/``wfdb.dl_files``: those always ask
``https://physionet.org/content/<db>`` for the latest version (``wfdb.io.download.get_version`` ignores
``set_db_index_url``), so they cannot be pointed at a mirror or a test server cleanly, and they write straight to the
final file name. ``wfdb`` is still what reads the records (``datasets/mitbih.py``).

Layout on the server: ``<base_url>/<db>/<version>/<file>`` (PhysioNet: ``https://physionet.org/files/mitdb/1.0.0/``).
Files land flat in ``dest`` under their PhysioNet names. A file already there whose sha256 matches is skipped, so an
interrupted fetch resumes where it stopped; each download goes to a temporary file that replaces the final name only
once its checksum is right, so no half or bad file is ever left under a final name. PhysioNet serves each
connection slowly (often 1-5 MB/s), so up to ``jobs`` files download at once, each in a thread of its own (urllib
releases the GIL while it waits on the network).
"""

from __future__ import annotations

import hashlib
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from rich import filesize
from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from datasets.base import DataError
from datasets.cache import atomic_open, parse_sha256sums, sha256_file

PHYSIONET_URL = "https://physionet.org/files/"
SUMS_NAME = "SHA256SUMS.txt"
CHUNK = 1 << 20
TIMEOUT_S = 60.0


def database_url(db: str, version: str, base_url: str | None = None) -> str:
    """``<base_url>/<db>/<version>/`` with exactly one slash between parts."""
    return f"{(base_url or PHYSIONET_URL).rstrip('/')}/{db}/{version}/"


def is_verified(path: Path, sha256: str) -> bool:
    """True when ``path`` exists and its sha256 is ``sha256``."""
    return path.is_file() and sha256_file(path) == sha256


def fetch_physionet(
    db: str,
    version: str,
    dest: Path,
    files: Sequence[str],
    expected: Mapping[str, str],
    base_url: str | None = None,
    progress: bool = True,
    jobs: int = 4,
) -> list[str]:
    """Download those of ``files`` that are missing or bad into ``dest``, ``jobs`` at a time; returns their names.

    ``expected`` is the committed ``{name: sha256}`` list. Each download must match it and PhysioNet's own
    SHA256SUMS.txt from the same server; a mismatch removes the file and raises DataError naming it. The names
    returned are in the order of ``files``. On the first failed download no further download starts, the ones in
    flight finish (and are kept once verified), and that first error is raised; an interrupt (Ctrl-C) stops the
    ones in flight at their next chunk instead. Either way no temporary file is left behind.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    dest = Path(dest)
    unknown = [name for name in files if name not in expected]
    if unknown:
        raise DataError(f"{db} {version}: no committed checksum for {', '.join(unknown)}")
    todo = [name for name in files if not is_verified(dest / name, expected[name])]
    if not todo:
        return []
    url = database_url(db, version, base_url)
    remote = _remote_sums(url, dest)
    for name in todo:
        if remote.get(name) != expected[name]:
            raise DataError(f"{url}{name}: the server's {SUMS_NAME} does not match the committed checksum")
    workers = min(jobs, len(todo))
    stop = threading.Event()  # set on an interrupt: downloads in flight give up at their next chunk
    with _progress_bar(progress) as progress_bar:
        bars = _Bars(progress_bar, f"{db} {version} ({workers} at a time)", len(todo))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
        try:
            futures = [
                pool.submit(_download_verified, url + name, dest / name, expected[name], bars, name, stop)
                for name in todo
            ]
            for future in as_completed(futures):
                future.result()  # the first error (in completion order) propagates from here
                bars.file_done()
        except BaseException as err:
            if not isinstance(err, DataError):  # Ctrl-C or a bug: do not wait for downloads in flight
                stop.set()
            raise
        finally:
            _drain(pool, stop)
    return todo


def _drain(pool: ThreadPoolExecutor, stop: threading.Event) -> None:
    """Cancel the downloads not yet started and wait for those in flight; an interrupt while waiting stops them."""
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise


def _remote_sums(url: str, dest: Path) -> dict[str, str]:
    """PhysioNet's SHA256SUMS.txt for the database at ``url``, parsed (and kept beside the data)."""
    blob = _read_url(url + SUMS_NAME)
    sums = parse_sha256sums(blob.decode("utf-8", errors="replace"))
    if not sums:
        raise DataError(f"{url}{SUMS_NAME}: empty or not a checksum list")
    with atomic_open(dest / SUMS_NAME) as handle:
        handle.write(blob)
    return sums


def _read_url(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        raise DataError(f"{url}: download failed ({err})") from err


def _download_verified(url: str, path: Path, sha256: str, bars: _Bars, name: str, stop: threading.Event) -> None:
    """Stream ``url`` to ``path`` atomically, checking its sha256; on mismatch delete ``path`` and raise."""
    digest = hashlib.sha256()
    task: TaskID | None = None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, atomic_open(path) as handle:
            size = response.headers.get("Content-Length")
            task = bars.start(name, int(size) if size else None)
            while chunk := response.read(CHUNK):
                if stop.is_set():
                    raise _Stopped  # leaving atomic_open by an exception removes the temporary file
                digest.update(chunk)
                handle.write(chunk)
                bars.advance(task, len(chunk))
            if digest.hexdigest() != sha256:
                raise _Mismatch
    except _Stopped:
        return
    except _Mismatch:
        path.unlink(missing_ok=True)
        raise DataError(f"{path}: checksum mismatch after download from {url}; the file was removed") from None
    except (urllib.error.URLError, OSError) as err:
        raise DataError(f"{url}: download failed ({err})") from err
    finally:
        if task is not None:
            bars.stop(task)


class _Mismatch(Exception):
    """Internal: the downloaded bytes do not hash to the expected sha256 (aborts the atomic write)."""


class _Stopped(Exception):
    """Internal: the fetch was interrupted; abandon this download (aborts the atomic write)."""


class _Bars:
    """The overall bar (files done out of N, bytes received) above one bar per file in flight; thread-safe."""

    def __init__(self, progress: Progress, label: str, n_files: int) -> None:
        self.progress = progress
        self.lock = threading.Lock()
        self.received = 0
        self.overall = progress.add_task(label, total=n_files, overall=True, received=0)

    def start(self, name: str, size: int | None) -> TaskID:
        return self.progress.add_task(f"  {name}", total=size)

    def advance(self, task: TaskID, n_bytes: int) -> None:
        self.progress.advance(task, n_bytes)
        with self.lock:
            self.received += n_bytes
            self.progress.update(self.overall, received=self.received)

    def stop(self, task: TaskID) -> None:
        self.progress.remove_task(task)

    def file_done(self) -> None:
        self.progress.advance(self.overall, 1)


class _PerRow(ProgressColumn):
    """One column rendered by ``overall`` on the overall bar and by ``per_file`` on the file bars."""

    def __init__(self, per_file: ProgressColumn, overall: ProgressColumn) -> None:
        super().__init__()
        self.per_file, self.overall = per_file, overall

    def render(self, task: Task) -> RenderableType:
        return (self.overall if task.fields.get("overall") else self.per_file).render(task)


class _Received(ProgressColumn):
    """Bytes received so far by all downloads, and their mean rate."""

    def render(self, task: Task) -> RenderableType:
        received = task.fields.get("received", 0)
        rate = f" @ {filesize.decimal(int(received / task.elapsed))}/s" if task.elapsed else ""
        return Text(f"{filesize.decimal(received)}{rate}", style="progress.data.speed")


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        _PerRow(DownloadColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} files", style="progress.download")),
        _PerRow(TransferSpeedColumn(), _Received()),
        TimeRemainingColumn(),
        disable=not enabled,
    )
