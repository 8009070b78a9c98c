"""Where data, caches and results live: command-line option, then environment variable, then a user cache folder."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "KDNAS_DATA"
CACHE_ENV = "KDNAS_CACHE"


def user_cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kdnas-bench"


def resolve_data_root(option: str | os.PathLike[str] | None = None) -> Path:
    """The data root (a folder in PhysioNet's layout: ``mitdb/``, ``sleep-edf/``)."""
    return _resolve(option, DATA_ENV, "data")


def resolve_cache_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """Folder for preprocessed data and trained teachers (safe to delete; rebuilt on demand)."""
    return _resolve(option, CACHE_ENV, "cache")


def _resolve(option: str | os.PathLike[str] | None, env: str, default: str) -> Path:
    if option:
        return Path(option).expanduser()
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    return user_cache_home() / default
