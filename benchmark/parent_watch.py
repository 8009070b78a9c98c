"""Worker processes exit when their parent dies, so a killed run (even SIGKILL) leaves no worker behind.

On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Elsewhere (or if prctl fails) a daemon thread
polls the parent pid and exits the process when the parent is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1


def _set_pdeathsig() -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int, interval: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)


def exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Make this process exit when ``parent_pid`` (its parent) dies; exit now if it already has."""
    if not _set_pdeathsig():
        threading.Thread(target=_watch, args=(parent_pid, interval), daemon=True, name="parent-watch").start()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)


@contextmanager
def sigint_ignored_by_children() -> Iterator[None]:
    """Start child processes inside this block: they begin with SIGINT ignored (an ignored signal stays ignored
    across exec), so Ctrl-C, which reaches the whole process group, never prints a traceback from a child that is
    still starting; the parent, which handles it, keeps its own handler outside the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
