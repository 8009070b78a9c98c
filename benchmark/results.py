"""The versioned result record: one per (dataset, split, budget, profile, method, seed), one reader/writer."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from benchmark.atomic import atomic_write_text
from benchmark.record_check import location_problem, non_finite, record_problem

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# 2: protocol_version and history; 3: fold, cv, reference, main_metric, teacher_ids, test_confusion_by_group;
# 4: protocol_final (a searching method's second final training, from the same search).
# Older records are upgraded on reading (benchmark.record_upgrade): missing fields derived where possible.
SCHEMA_VERSION = 4
READABLE_SCHEMAS = (1, 2, 3, 4)
FIELDS_ADDED = {4: ("protocol_final",)}  # schema version -> the fields it added, for those after 3
__all__ = ["SCHEMA_VERSION", "CrossValidation", "InvalidRecord", "JobKey", "NewerSchemaError", "ResultError",
           "RunResult", "atomic_write_text", "load", "load_checked", "load_results", "load_runs", "read_result",
           "results_path", "set_aside", "write_result"]
# pydantic reads this from each record dataclass: the record's types are its schema, checked strictly (no coercion of
# "3" to 3), with no unknown fields and no NaN/inf in typed numbers (benchmark.record_check adds the value checks).
_STRICT = {"strict": True, "allow_inf_nan": False, "extra": "forbid"}


class ResultError(ValueError):
    """A result file that cannot be read; the message names the file."""


class NewerSchemaError(ResultError):
    """A record written by a newer KD-NAS Bench (an unknown, higher schema_version): never read, never overwritten."""


@dataclass(frozen=True)
class JobKey:
    """What identifies a run; the record's path is derived from it, so ``run`` can skip finished jobs."""

    dataset: str
    split: str
    budget: str
    profile: str
    method: str
    seed: int
    variant: str = ""  # non-default method options, e.g. "aux_heads=false" (ablations); "" for the defaults
    __pydantic_config__ = _STRICT

    @property
    def method_label(self) -> str:
        """The method's name, with its variant in brackets when it has one: ``mpkd_nas[aux_heads=false]``."""
        return f"{self.method}[{self.variant}]" if self.variant else self.method

    def label(self) -> str:
        return f"{self.dataset}/{self.split}/{self.budget}/{self.profile}/{self.method_label}/seed{self.seed}"


@dataclass(frozen=True)
class CrossValidation:
    """The fold set a cross-validated run belongs to (one fold of it is the record's ``fold``)."""

    n_folds: int
    folds_file: str = ""
    folds_sha256: str = ""
    scheme: str = ""
    __pydantic_config__ = _STRICT

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> CrossValidation | None:
        """From a dataset card's ``cv`` entry (``n_folds``, ``folds_file``, ``folds_sha256``, ``scheme``); None
        when the card has no ``cv`` entry with an integer ``n_folds``."""
        cv = card.get("cv") if isinstance(card, Mapping) else None
        if not isinstance(cv, Mapping) or not isinstance(cv.get("n_folds"), int):
            return None
        return cls(int(cv["n_folds"]), str(cv.get("folds_file", "")), str(cv.get("folds_sha256", "")),
                   str(cv.get("scheme", "")))


@dataclass
class RunResult:
    """Everything a leaderboard or a reader needs about one run.

    ``metrics`` are test-split metrics computed by the runner (accuracy, macro_f1, kappa, per_class...);
    ``val_metrics`` are the validation metrics the method selected on. ``status`` is "ok" or "failed".
    """

    key: JobKey
    status: Literal["ok", "failed"]
    metrics: dict[str, Any] = field(default_factory=dict)
    val_metrics: dict[str, Any] = field(default_factory=dict)
    deployed_params: int | None = None
    param_budget: int | None = None
    macs: int | None = None
    latency_ms: float | None = None  # CPU latency per sample, batch 1 (median)
    latency: dict[str, Any] = field(default_factory=dict)  # its spread: metrics.Latency.to_dict() (+ "step")
    search_cost: float = 0.0  # cost units spent searching (one unit: the MACs of one default-student training epoch)
    train_cost: float = 0.0  # cost units spent on the final training
    search_wall_s: float = 0.0
    train_wall_s: float = 0.0
    arch: dict[str, Any] = field(default_factory=dict)
    search_trace: list[dict[str, Any]] = field(default_factory=list)  # candidate, fidelity, score, cost per evaluation
    model: dict[str, Any] = field(default_factory=dict)  # saved student (--save-models): path, sha256; benchmark.models
    config: dict[str, Any] = field(default_factory=dict)  # method config + protocol, as data
    split_hash: str = ""
    data_checksum: str = ""
    teacher: dict[str, Any] = field(default_factory=dict)  # teacher id and its validation metrics
    provenance: dict[str, Any] = field(default_factory=dict)  # git commit, package versions, hardware, time
    error: str | None = None
    protocol_version: int = 1  # benchmark.protocol.PROTOCOL_VERSION of the run (1 for records that predate the field)
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier attempts: failed reruns, superseded records
    fold: int | None = None  # the cross-validation fold tested; None for a fixed split
    cv: CrossValidation | None = None  # the fold set of a cross-validated run; None for a fixed split
    reference: bool = False  # the method's ``Method.reference``: a reference row (teacher, student), not a method
    main_metric: str = "macro_f1"  # the dataset's ``Dataset.main_metric``: what its leaderboard ranks by
    teacher_ids: list[str] = field(default_factory=list)  # the teacher's id, or the ensemble members' ids
    # {test group: confusion matrix}: per patient (MIT-BIH record, Sleep-EDF subject), rows true classes and columns
    # predicted ones in ``metrics["classes"]`` order; their sum is ``metrics["confusion"]``. Lets statistics resample
    # patients. Empty for records that predate it.
    test_confusion_by_group: dict[str, list[list[int]]] = field(default_factory=dict)
    # A searching method's searched architecture retrained by the protocol's one KD recipe (``Method.protocol_retrain``)
    # in the same job, from the same search, seeds and epochs: its recipe, test/validation metrics, per-patient
    # confusions and costs (``benchmark.final_rows``); the record's own fields are the method's final training as
    # published. Empty for a method without a search and for records that predate it.
    protocol_final: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    __pydantic_config__ = _STRICT

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_jsonable)

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> RunResult:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ResultError(f"{source}: not valid JSON ({err.msg} at line {err.lineno})") from None
        if not isinstance(raw, dict):
            raise ResultError(f"{source}: a result record must be a JSON object")
        version = raw.get("schema_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise NewerSchemaError(f"{source}: schema_version {version} was written by a newer KD-NAS Bench (this "
                                   f"one reads up to {SCHEMA_VERSION}); upgrade, or use another --results-dir")
        if version not in READABLE_SCHEMAS:
            raise ResultError(f"{source}: schema_version {version!r} is not a supported one "
                              f"({', '.join(map(str, READABLE_SCHEMAS))})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ResultError(f"{source}: unknown fields {', '.join(unknown)}")
        # a record of schema 3 or later is written whole: a field its version has, missing, means a damaged file
        later = {name for added, names in FIELDS_ADDED.items() if added > version for name in names}
        missing = sorted(known - set(raw) - later) if version >= 3 else []
        if missing:
            raise ResultError(f"{source}: missing fields {', '.join(missing)}")
        bad_number = non_finite(raw)
        if bad_number:
            raise ResultError(f"{source}: {bad_number}")
        try:
            if version < SCHEMA_VERSION:
                from benchmark.record_upgrade import upgrade

                raw = upgrade(raw)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise ResultError(f"{source}: malformed record ({err})") from None
        record = _typed(raw, source)
        problem = record_problem(record)
        if problem:
            raise ResultError(f"{source}: {problem}")
        return record


def _typed(raw: dict[str, Any], source: str) -> RunResult:
    """``raw`` checked against the record's types (pydantic, strict) and built; ResultError naming the first error."""
    from pydantic import ValidationError

    try:
        return _validator().validate_json(json.dumps(raw))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise ResultError(f"{source}: {where}: {first['msg']} (got {first.get('input')!r:.60})") from None


@lru_cache(maxsize=1)
def _validator() -> Any:
    """The record schema, generated by pydantic from the ``RunResult`` dataclass (built once, on first read)."""
    from pydantic import TypeAdapter

    return TypeAdapter(RunResult)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def results_path(results_dir: Path, key: JobKey) -> Path:
    """``results/<dataset>/<split>/<budget>/<profile>/<method>[<variant>]/seed<N>.json``."""
    folder = Path(results_dir) / key.dataset / key.split / key.budget / key.profile / key.method_label
    return folder / f"seed{key.seed}.json"


def attempt_summary(result: RunResult) -> dict[str, Any]:
    """One ``history`` entry: what an attempt was, when and where it ran, and how it ended."""
    prov = result.provenance
    entry: dict[str, Any] = {"status": result.status, "finished_at": prov.get("finished_at"),
                             "git_commit": prov.get("git_commit"), "data_checksum": result.data_checksum,
                             "protocol_version": result.protocol_version}
    if result.ok:
        entry["macro_f1"] = result.metrics.get("macro_f1")
    else:
        entry["error"] = result.error
    return entry


def write_result(results_dir: Path, result: RunResult) -> Path:
    path = results_path(results_dir, result.key)
    atomic_write_text(path, result.to_json() + "\n")
    return path


def read_result(path: Path) -> RunResult:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ResultError(f"{path}: cannot read ({err.strerror})") from None
    return RunResult.from_json(text, source=str(path))


@dataclass(frozen=True)
class InvalidRecord:
    """A record file left out of the tables: its path, relative to the results folder, and why."""

    path: Path
    reason: str

    @property
    def parts(self) -> tuple[str, ...]:
        """dataset, split, budget, profile, method label, file name (from the path, as far as it goes)."""
        return self.path.parts


def check_location(path: Path, results_dir: Path, record: RunResult) -> RunResult:
    """``record`` when ``path`` is where its key belongs under ``results_dir``; ResultError naming the file if not."""
    problem = location_problem(path, results_dir, record)
    if problem:
        raise ResultError(f"{path}: {problem}")
    return record


def load_checked(results_dir: Path) -> tuple[list[RunResult], list[InvalidRecord]]:
    """Every valid record under ``results_dir`` (sorted by path) and every invalid one (path and reason); a record
    of a newer schema raises NewerSchemaError (this version cannot judge it)."""
    results_dir = Path(results_dir)
    good: list[RunResult] = []
    bad: list[InvalidRecord] = []
    for path in sorted(results_dir.rglob("seed*.json")):
        try:
            good.append(check_location(path, results_dir, read_result(path)))
        except NewerSchemaError:
            raise
        except ResultError as err:
            bad.append(InvalidRecord(path.relative_to(results_dir), str(err).removeprefix(f"{path}: ")))
    return good, bad


def load_results(results_dir: Path) -> list[RunResult]:
    """Every valid record under ``results_dir`` (sorted by path); each invalid one is left out with a warning naming
    it and why (``load_checked`` returns them)."""
    good, bad = load_checked(Path(results_dir))
    for invalid in bad:
        log.warning("%s: invalid record left out (%s)", Path(results_dir) / invalid.path, invalid.reason)
    return good


def set_aside(path: Path) -> Path:
    """Rename an invalid record to ``<name>.invalid`` (``.invalid.1``, ... when taken) and return the new path; the
    file is kept, never deleted, and no longer read as a record."""
    path = Path(path)
    target = path.with_name(path.name + ".invalid")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.invalid.{n}")
    path.rename(target)
    return target


def load_runs(results_dir: Path | str = "results") -> pd.DataFrame:
    """One row per OK run (cross-validation folds pooled into their run), as ``benchmark.aggregate.runs_frame``."""
    from benchmark.aggregate import runs_frame

    return runs_frame(load_results(Path(results_dir)))


def load(results_dir: Path | str = "results") -> pd.DataFrame:
    """The leaderboard as a table: ``benchmark.aggregate.aggregate`` of every record under ``results_dir``.

    One row per (dataset, split, budget, profile, protocol version, method label) with mean, std, 95 % CI, paired
    comparisons and rank; ``from benchmark import results; df = results.load("results/")``. Units are the records':
    scores, their CI and paired differences are fractions (``mean`` 0.507 is the tables' 50.7 %, ``vs_student_diff``
    0.017 their +1.7 points; κ stays κ): multiply by 100 for the tables' percent and points.
    """
    from benchmark.aggregate import aggregate
    from benchmark.external import load_external_scores

    return aggregate(load_results(Path(results_dir)), load_external_scores(Path(results_dir)))
