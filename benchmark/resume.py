"""What an existing record means for a job: resume keys on what determines a result, not on the path alone.

A record is *current* for a job when it is OK and was made from the same data (``data_checksum``), the same split
(``split_hash``), the same protocol version, the same protocol settings (budget tier, teacher architecture and
recipe, student recipe, search budget, ensemble size: everything in ``Protocol`` except the profile's
prose description and, for a method that uses no teacher, the teacher's settings) and the same method config as the
job would use now; an OK record that differs in any of these is *stale* (rerun, with the reason said). A record of
a newer schema is *newer*: refused, never overwritten.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmark.joblock import JobLocks, lock_path
from benchmark.protocol import PROTOCOL_VERSION, make_protocol
from benchmark.protocol_parts import changed_paths, without_teacher
from benchmark.results import (
    JobKey,
    NewerSchemaError,
    ResultError,
    RunResult,
    attempt_summary,
    check_location,
    read_result,
    results_path,
    write_result,
)
from methods import METHODS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fingerprint:
    """What determines a job's result besides its key."""

    data_checksum: str
    split_hash: str
    protocol_version: int
    method_config: Any  # the full config (defaults filled in) as JSON data; None when the options are invalid
    protocol: Any  # protocol_settings() of the job's Protocol


@dataclass(frozen=True)
class RecordState:
    """``kind``: missing | current | stale | failed | unreadable | newer; ``reason`` says why for stale/newer."""

    kind: str
    record: RunResult | None = None
    reason: str = ""


def as_json_data(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so configs compare like for like."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def method_config_data(method: str, options: dict[str, Any]) -> Any:
    """The full config a job's method would run with, as JSON data; None when the options are invalid."""
    cls = METHODS.get(method)
    try:
        return as_json_data(cls.Config.from_dict(options).to_dict())
    except (TypeError, ValueError):
        return None


def uses_a_teacher(method: str) -> bool:
    """Whether ``method``'s result depends on the protocol's teacher (or ensemble); True for unknown methods."""
    cls = METHODS.get(method)
    return cls is None or cls.uses_teacher or cls.uses_ensemble


def protocol_settings(protocol: Any, uses_teacher: bool = True) -> Any:
    """A protocol (``Protocol.to_dict()`` or a record's ``config["protocol"]``) as JSON data without the profile's
    description, which is prose (editing it changes no result), and without the teacher's settings when the job
    uses no teacher (a new teacher recipe does not rerun the CE student)."""
    data = as_json_data(protocol)
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("profile"), dict):
        data["profile"].pop("description", None)
    return data if uses_teacher else without_teacher(data)


def staleness(record: RunResult, expected: Fingerprint) -> str:
    """Why an OK ``record`` is not a result of the job as it would run now; "" when it is."""
    reasons = []
    if record.data_checksum != expected.data_checksum:
        reasons.append(f"data changed (checksum {record.data_checksum or '?'} -> {expected.data_checksum})")
    if record.split_hash != expected.split_hash:
        reasons.append(f"split changed ({record.split_hash or '?'} -> {expected.split_hash})")
    if record.protocol_version != expected.protocol_version:
        reasons.append(f"protocol v{record.protocol_version} -> v{expected.protocol_version}")
    recorded_protocol = record.config.get("protocol")
    if recorded_protocol is None:
        reasons.append("protocol settings not recorded")
    else:
        changed = changed_paths(protocol_settings(recorded_protocol, uses_a_teacher(record.key.method)),
                                expected.protocol)
        if changed:
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            reasons.append(f"protocol settings changed ({', '.join(changed[:3])}{more})")
    recorded = record.config.get("method")
    if expected.method_config is None or as_json_data(recorded) != expected.method_config:
        reasons.append("method config changed")
    return "; ".join(reasons)


def record_state(results_dir: Path, key: JobKey, expected: Callable[[RunResult], Fingerprint]) -> RecordState:
    """The state of ``key``'s record; ``expected`` (called with the record, only for an OK one) gives the job's
    fingerprint."""
    path = results_path(results_dir, key)
    if not path.exists():
        return RecordState("missing")
    try:
        record = check_location(path, results_dir, read_result(path))
    except NewerSchemaError as err:
        return RecordState("newer", reason=str(err))
    except ResultError as err:
        return RecordState("unreadable", reason=str(err))
    if not record.ok:
        return RecordState("failed", record)
    try:
        reason = staleness(record, expected(record))
    except Exception as err:  # the data cannot be loaded now: the job reruns (and fails), the OK record stays
        reason = f"cannot check it against the data ({type(err).__name__}: {err})".splitlines()[0]
    return RecordState("stale" if reason else "current", record, reason)


def job_fingerprint(job: Any, data_checksum: str, split_hash: str) -> Fingerprint:
    """``job``'s fingerprint, given the data checksum and split hash of the data it runs on."""
    protocol = make_protocol(job.key.dataset, job.key.split, job.key.budget, job.key.profile)
    return Fingerprint(data_checksum, split_hash, PROTOCOL_VERSION,
                       method_config_data(job.key.method, job.method_config),
                       protocol_settings(protocol.to_dict(), uses_a_teacher(job.key.method)))


def planned_state(results_dir: Path, job: Any) -> RecordState:
    """``record_state`` for a plan, without loading data: the record's own data checksum and split hash stand in
    for the data's (so a plan cannot see a data change; the run checks it), everything else is checked."""
    return record_state(results_dir, job.key,
                        lambda record: job_fingerprint(job, record.data_checksum, record.split_hash))


class FingerprintCache:
    """Fingerprints of jobs, loading each (dataset, fold) once for its data checksum and split hash."""

    def __init__(self, load_bundle: Callable[[Any], Any]) -> None:
        self._load = load_bundle
        self._data: dict[tuple[Any, ...], tuple[str, str]] = {}

    def __call__(self, job: Any) -> Fingerprint:
        where = (job.key.dataset, job.data_root, job.cache_dir, job.fold)
        if where not in self._data:
            bundle = self._load(job)
            self._data[where] = (bundle.data_checksum, bundle.split_hash)
        return job_fingerprint(job, *self._data[where])


def record_outcome(results_dir: Path, outcome: RunResult, previous: RunResult | None) -> RunResult:
    """Write ``outcome`` over ``previous`` (the record found before the job ran) without losing a result: a failure
    never replaces an OK record (it goes into that record's ``history``), and a replaced record's summary moves
    into the new one's history. Returns the record now on disk."""
    if previous is not None and previous.ok and not outcome.ok:
        kept = replace(previous, history=[*previous.history, attempt_summary(outcome)])
        write_result(results_dir, kept)
        return kept
    if previous is not None:
        outcome.history = [*previous.history, attempt_summary(previous)]
    write_result(results_dir, outcome)
    return outcome


def select_jobs(jobs: Iterable[Any], results_dir: Path, resume: bool, locks: JobLocks,
                notify: Callable[[str, Any, Any], None],
                fingerprint: Callable[[Any], Fingerprint]) -> tuple[list[Any], dict[JobKey, RecordState]]:
    """The jobs to run, each locked by this process (a job another run holds is skipped; one with a current OK
    record too, when ``resume``), and the state of each one's existing record."""
    todo: list[Any] = []
    states: dict[JobKey, RecordState] = {}
    for job in jobs:
        if not locks.try_acquire(job.key):
            log.warning("%s: another run holds this job (%s); skipped", job.key.label(),
                        lock_path(results_dir, job.key))
            notify("held", job, lock_path(results_dir, job.key))
            continue
        state = record_state(results_dir, job.key, lambda _record, job=job: fingerprint(job))
        if state.kind == "newer" or (resume and state.kind == "current"):
            locks.release(job.key)
            notify("refused" if state.kind == "newer" else "skipped", job,
                   state.reason or results_path(results_dir, job.key))
            continue
        if state.kind == "unreadable":
            log.warning("%s: its record is invalid and is rerun (the file is kept as *.invalid): %s",
                        job.key.label(), state.reason)
        if state.kind == "stale" and resume:
            log.warning("%s: rerun, its record is stale: %s", job.key.label(), state.reason)
            notify("stale", job, state.reason)
        states[job.key] = state
        todo.append(job)
    return todo, states
