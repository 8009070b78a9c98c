"""Per-job locks, so that two identical runs sharing a results folder never run the same job at once.

A lock is an ``fcntl.flock`` on ``<results>/.locks/<job label>.lock`` (like the teacher store's lock); the kernel
releases it when its holder exits, however it exits, so a killed run never leaves a job locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from benchmark.results import JobKey

LOCK_DIR = ".locks"


def lock_path(results_dir: Path, key: JobKey) -> Path:
    """Where ``key``'s lock lives: one flat file per job label under ``<results>/.locks/``."""
    return Path(results_dir) / LOCK_DIR / (key.label().replace("/", "__") + ".lock")


class JobLocks:
    """Non-blocking per-job locks held by this process until released (or until it exits)."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = Path(results_dir)
        self._held: dict[JobKey, IO[str]] = {}

    def try_acquire(self, key: JobKey) -> bool:
        """Take ``key``'s lock; False when another process holds it."""
        if key in self._held:
            return True
        path = lock_path(self.results_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # who holds it, for a person looking
        handle.flush()
        self._held[key] = handle
        return True

    def release(self, key: JobKey) -> None:
        handle = self._held.pop(key, None)
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)
