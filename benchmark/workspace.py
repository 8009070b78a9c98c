"""Where a user's own runs go, apart from the committed release.

The release (``results/`` and the pages generated from it, ``leaderboards/`` and the README's headline) is data
committed with the code. A user's runs go to ``runs/`` (git-ignored), which ``run``, ``show``, ``leaderboard``,
``export`` and ``latency`` use by default; ``--release`` reads the committed records instead. A first run therefore
never mixes with, skips because of, or overwrites the release, and ``leaderboard`` rewrites the committed pages only
when asked (``--release``, ``--readme`` or ``--out leaderboards``).
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.validation import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
USER_RUNS = "runs"  # relative to the working directory, like every other path a user types
USER_BOARDS = f"{USER_RUNS}/leaderboards"
RELEASE_RESULTS = REPO_ROOT / "results"
RELEASE_BOARDS = REPO_ROOT / "leaderboards"


def shown(path: Path) -> str:
    """``path`` as a user would type it: relative to the working directory where it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def release_results() -> str:
    """The committed records (``--release``); a one-line error where this copy has none (an installed wheel)."""
    if not RELEASE_RESULTS.is_dir():
        raise UsageError(f"--release: no committed release at {RELEASE_RESULTS} (it ships with a source checkout)")
    return shown(RELEASE_RESULTS)


def results_dir(option: str | None, release: bool) -> str:
    """The records a reading command reads: ``--results-dir``, the release with ``--release``, else ``runs/``."""
    if release and option:
        raise UsageError("--release and --results-dir: give one (--release reads the committed results/)")
    if release:
        return release_results()
    return option or USER_RUNS


def board_paths(results: str | None, out: str | None, release: bool, readme: str | None) -> tuple[str, str]:
    """(records to read, folder to write) for ``leaderboard``. ``--release``, or ``--readme`` alone (the README's
    headline is the release's), reads results/ and writes the committed leaderboards/; otherwise the user's
    ``runs/`` -> ``runs/leaderboards/``."""
    if readme and not results and not out:
        release = True
    source = results_dir(results, release)
    if out:
        return source, out
    return source, shown(RELEASE_BOARDS) if release else USER_BOARDS


def is_release(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is the committed release's results folder."""
    return Path(folder).resolve() == RELEASE_RESULTS.resolve()


def leaderboard_hint(folder: str | os.PathLike[str]) -> str:
    """The ``leaderboard`` command that tables the records of ``folder`` (printed after a run)."""
    if is_release(folder):
        return "python -m benchmark leaderboard --release"
    if Path(folder) == Path(USER_RUNS):
        return "python -m benchmark leaderboard"
    return f"python -m benchmark leaderboard --results-dir {folder}"
