"""Small file helpers shared by the datasets: sha256 of files, an npz cache that rebuilds itself (atomic writes come
from ``benchmark.atomic``, re-exported here)."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_open, atomic_path

__all__ = ["Arrays", "atomic_open", "atomic_path", "load_or_build", "parse_sha256sums", "read_npz",
           "read_sha256sums", "save_npz", "sha256_file"]

Arrays = dict[str, np.ndarray]

# What a damaged or half-written .npz raises when read (zip CRC errors are BadZipFile, short reads EOFError/ValueError).
_CORRUPT = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_sha256sums(text: str) -> dict[str, str]:
    """Parse a ``sha256sum`` listing (``<hex> <name>`` or ``<hex> *<name>`` a line) into ``{name: hex}``."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def read_sha256sums(path: Path) -> dict[str, str]:
    """The ``{name: hex}`` of a ``sha256sum`` listing file."""
    return parse_sha256sums(Path(path).read_text(encoding="utf-8"))


def save_npz(path: Path, arrays: Arrays) -> None:
    """Write ``arrays`` to ``path`` (uncompressed npz) atomically."""
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


def read_npz(path: Path) -> Arrays | None:
    """Every array of an npz file, or None when the file is missing or cannot be read whole."""
    if not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except _CORRUPT:
        return None


def load_or_build(path: Path, build_fn: Callable[[], Arrays], required: tuple[str, ...] = ()) -> Arrays:
    """The arrays cached at ``path``; when missing, corrupt or lacking a ``required`` key, rebuilt and re-cached."""
    cached = read_npz(path)
    if cached is not None and all(name in cached for name in required):
        return cached
    arrays = build_fn()
    save_npz(path, arrays)
    return arrays
