"""Download PhysioNet database files, verified against PhysioNet's SHA256SUMS.txt and a committed copy of it.

The fetch uses the standard library (``urllib``), not ``wfdb.dl_database``/``wfdb.dl_files``: those always ask
``https://physionet.org/content/<db>`` for the latest version (``wfdb.io.download.get_version`` ignores
``set_db_index_url``), so they cannot be pointed at a mirror or a test server cleanly, and they write straight to the
final file name. ``wfdb`` is still what reads the records (``datasets/mitbih.py``).

Layout on the server: ``<base_url>/<db>/<version>/<file>`` (PhysioNet: ``https://physionet.org/files/mitdb/1.0.0/``).
Files land flat in ``dest`` under their PhysioNet names. A file already there whose sha256 matches is skipped, so an
interrupted fetch resumes where it stopped; each download goes to a temporary file that replaces the final name only
once its checksum is right, so no half or bad file is ever left under a final name.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

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
) -> list[str]:
    """Download those of ``files`` that are missing or bad into ``dest``; returns the names it downloaded.

    ``expected`` is the committed ``{name: sha256}`` list. Each download must match it and PhysioNet's own
    SHA256SUMS.txt from the same server; a mismatch removes the file and raises DataError naming it.
    """
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
    with _progress_bar(progress) as bar:
        for i, name in enumerate(todo, 1):
            label = f"[{i}/{len(todo)}] {db}/{name}"
            _download_verified(url + name, dest / name, expected[name], bar, label)
    return todo


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


def _download_verified(url: str, path: Path, sha256: str, bar: Progress, label: str) -> None:
    """Stream ``url`` to ``path`` atomically, checking its sha256; on mismatch delete ``path`` and raise."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, atomic_open(path) as handle:
            size = response.headers.get("Content-Length")
            task = bar.add_task(label, total=int(size) if size else None)
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                handle.write(chunk)
                bar.advance(task, len(chunk))
            bar.remove_task(task)
            if digest.hexdigest() != sha256:
                raise _Mismatch
    except _Mismatch:
        path.unlink(missing_ok=True)
        raise DataError(f"{path}: checksum mismatch after download from {url}; the file was removed") from None
    except (urllib.error.URLError, OSError) as err:
        raise DataError(f"{url}: download failed ({err})") from err


class _Mismatch(Exception):
    """Internal: the downloaded bytes do not hash to the expected sha256 (aborts the atomic write)."""


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )
