"""Progress of a sweep: what runs where, in which phase and epoch, and how long is left.

Workers report through a queue (``queue.Queue`` in-process, a ``multiprocessing`` manager queue across worker
processes): ``emit`` puts ``(pid, key label, kind, data)`` messages on ``Job.progress``; the parent drains them
in a thread into one of two displays:

- ``RichDisplay`` (a terminal): a bar for the sweep (jobs, ETA from the measured costs of ``benchmark.estimate``),
  one row per worker (method, seed, phase teacher/search/final/evaluation, epoch bar), and one printed line per
  finished job with its score and wall time;
- ``PlainDisplay`` (not a terminal, or ``-q``): plain lines, one per started and finished job, no bars.

This module imports nothing heavy at import time: the runner calls ``emit`` in every job.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any, Protocol

from rich.markup import escape

PHASES = ("teacher", "search", "final", "evaluation")


class Sink(Protocol):
    def put(self, item: Any) -> None: ...


def emit(sink: Sink | None, label: str, kind: str, **data: Any) -> None:
    """Report ``kind`` (``phase`` with ``name``, and ``member``/``members`` while an ensemble teacher's members are
    prepared; ``epoch`` with ``epoch``/``epochs``) of the job ``label``."""
    if sink is None:
        return
    try:
        sink.put((os.getpid(), label, kind, data))
    except Exception:  # a closed manager queue (the parent is shutting down) must not fail the job
        pass


def epoch_callback(sink: Sink | None, label: str) -> Callable[[int, int, dict[str, float]], None] | None:
    """An ``Engine(progress=...)`` callback that reports each finished epoch of job ``label``."""
    if sink is None:
        return None

    def report(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        emit(sink, label, "epoch", epoch=epoch, epochs=epochs)

    return report


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``1h02m``, ``95`` -> ``1m35s``, ``None`` -> ``?``."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def result_line(result: Any, wall_s: float | None) -> str:
    """One line for a finished job: method, seed, fold, score (or error) and wall time."""
    where = f"{result.key.method_label} seed {result.key.seed}"
    if result.key.split.startswith("fold"):
        where += f" {result.key.split}"
    if not result.ok:
        return f"{where} failed: {result.error or ''}"
    main = result.config.get("main_metric", "macro_f1") if result.config else "macro_f1"
    name = {"macro_f1": "macro-F1", "accuracy": "accuracy", "kappa": "κ"}.get(main, main)
    return f"{where}: test {name} {result.metrics.get(main, float('nan')):.3f} ({format_duration(wall_s)})"


class Display(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def update(self, pid: int, label: str, kind: str, data: Mapping[str, Any]) -> None: ...
    def job_done(self, label: str, line: str, ok: bool) -> None: ...
    def release(self, label: str) -> None: ...
    def note(self, line: str) -> None: ...


class PlainDisplay:
    """Plain lines for logs and CI: a line when a job starts and when it ends; ``quiet`` keeps failures only."""

    def __init__(self, console: Any, quiet: bool = False) -> None:
        self.console, self.quiet = console, quiet
        self._started: set[tuple[str, bool]] = set()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def update(self, pid: int, label: str, kind: str, data: Mapping[str, Any]) -> None:
        teacher = data.get("name") == "teacher"
        if kind == "phase" and teacher and data.get("member") and not self.quiet:
            self.console.print(f"  ensemble teacher {_member(data)} for {_short(label)}", highlight=False,
                               soft_wrap=True, markup=False)
        elif kind == "phase" and (label, teacher) not in self._started and not self.quiet:
            self._started.add((label, teacher))
            text = (f"preparing the shared teacher for {label} (from the store, or trained once and stored)"
                    if teacher else f"start {label}")
            self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def release(self, label: str) -> None:
        pass

    def job_done(self, label: str, line: str, ok: bool) -> None:
        if ok and self.quiet:
            return
        self.console.print(line, highlight=False, soft_wrap=True, markup=False)

    def note(self, line: str) -> None:
        if not self.quiet:
            self.console.print(line, highlight=False, soft_wrap=True, markup=False)


class RichDisplay:
    """Nested rich progress: the sweep bar, then one row per worker busy with a job (its phase and epoch bar)."""

    def __init__(self, console: Any, title: str, n_jobs: int, estimates: Mapping[str, float | None],
                 workers: int = 1) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(bar_width=30),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                                 console=console,
                                 transient=False, refresh_per_second=4)
        self.workers = max(1, workers)
        self.sweep = self.progress.add_task(title, total=n_jobs, info="")
        self._rows: dict[str, tuple[int, Any]] = {}  # job label -> (worker slot, task id) while it runs
        self._phase: dict[str, str] = {}  # job label -> its row's description
        self._running: dict[str, float] = {}  # job label -> start time
        self._phase_start: dict[str, float] = {}  # job label -> start time of its current phase
        self._remaining = dict(estimates)  # job label -> estimated seconds, for jobs not yet finished
        self._lock = threading.Lock()

    def start(self) -> None:
        self.progress.start()
        self._refresh_eta()

    def stop(self) -> None:
        self.progress.stop()

    def _slot(self) -> int:
        busy = {slot for slot, _ in self._rows.values()}
        return next(i for i in range(1, len(busy) + 2) if i not in busy)

    def update(self, pid: int, label: str, kind: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            if kind == "phase":
                self._running.setdefault(label, time.monotonic())
                self._phase_start[label] = time.monotonic()
                slot = self._rows[label][0] if label in self._rows else self._slot()
                self._drop_row(label)
                member = f" {_member(data)}" if data.get("member") else ""
                self._phase[label] = f"  worker {slot}: {_short(label)} · {data.get('name')}{member}"
                self._rows[label] = (slot, self.progress.add_task(self._phase[label], total=None, info=""))
            elif kind == "epoch" and label in self._rows:
                elapsed = time.monotonic() - self._phase_start.get(label, time.monotonic())
                left = elapsed / data["epoch"] * (data["epochs"] - data["epoch"]) if data["epoch"] else None
                self.progress.update(self._rows[label][1], total=data["epochs"], completed=data["epoch"],
                                     info=f"epochs · ~{format_duration(left)} left in this phase")
            self._refresh_eta()

    def _drop_row(self, label: str) -> None:
        if label in self._rows:
            self.progress.remove_task(self._rows.pop(label)[1])

    def release(self, label: str) -> None:
        """The worker that reported ``label`` is free again (its shared teacher is ready)."""
        with self._lock:
            self._drop_row(label)

    def job_done(self, label: str, line: str, ok: bool) -> None:
        with self._lock:
            self._drop_row(label)
            self._running.pop(label, None)
            self._remaining.pop(label, None)
            self.progress.advance(self.sweep)
            self.progress.console.print(line if ok else f"[red]{escape(line)}[/]", highlight=False, soft_wrap=True,
                                        markup=not ok)
            self._refresh_eta()

    def note(self, line: str) -> None:
        self.progress.console.print(line, highlight=False, soft_wrap=True, markup=False)

    def _refresh_eta(self) -> None:
        """ETA = (estimated seconds of unfinished jobs, less what those running have done) / workers."""
        now = time.monotonic()
        left = sum(max(0.0, est - (now - self._running[label]) if label in self._running else est)
                   for label, est in self._remaining.items() if est is not None)
        unknown = sum(1 for v in self._remaining.values() if v is None)  # no measured cost (the plan said which)
        if not unknown:
            info = f"ETA ~{format_duration(left / self.workers)}"
        elif left:
            info = f"ETA > ~{format_duration(left / self.workers)} (+{unknown} unmeasured job(s))"
        else:
            info = f"ETA ? ({unknown} unmeasured job(s): see each phase's time left)"
        self.progress.update(self.sweep, info=info)


def _member(data: Mapping[str, Any]) -> str:
    """``member 2/3`` of an ensemble teacher's phase message."""
    return f"member {data['member']}/{data.get('members', '?')}"


def _short(label: str) -> str:
    """``mitbih/inter-patient/small/quick/vanilla_kd/seed0`` -> ``vanilla_kd seed0`` (+ the fold, if any)."""
    parts = label.split("/")
    if len(parts) < 6:
        return label
    fold = f" {parts[1]}" if parts[1].startswith("fold") else ""
    return f"{parts[4]} {parts[5]}{fold}"


def progress_queue(stack: ExitStack) -> Any:
    """A queue worker processes can report to, served by a manager process that exits with this one (even on
    SIGKILL: ``exit_with_parent``) and is shut down when ``stack`` closes. The manager is spawned, not forked: a
    small process, not a copy of this one."""
    import multiprocessing as mp
    from multiprocessing.managers import SyncManager

    from benchmark.parent_watch import exit_with_parent, sigint_ignored_by_children

    manager = SyncManager(ctx=mp.get_context("spawn"))
    with sigint_ignored_by_children():
        manager.start(initializer=exit_with_parent, initargs=(os.getpid(),))
    stack.enter_context(manager)
    return manager.Queue()


class Listener:
    """Drains the workers' queue into a display on a background thread, while the sweep runs."""

    def __init__(self, display: Display, sink: Any) -> None:
        self.display, self.sink = display, sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True, name="progress")

    def __enter__(self) -> Listener:
        self.display.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.display.stop()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                pid, label, kind, data = self.sink.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError, BrokenPipeError):  # the manager went away
                return
            self.display.update(pid, label, kind, data)
