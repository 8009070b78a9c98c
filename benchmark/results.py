"""The versioned result record: one per (dataset, split, budget, profile, method, seed), one reader/writer."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2  # 2: protocol_version and history fields (a version-1 record reads with their defaults)
READABLE_SCHEMAS = (1, 2)


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

    @property
    def method_label(self) -> str:
        """The method's name, with its variant in brackets when it has one: ``mpkd_nas[aux_heads=false]``."""
        return f"{self.method}[{self.variant}]" if self.variant else self.method

    def label(self) -> str:
        return f"{self.dataset}/{self.split}/{self.budget}/{self.profile}/{self.method_label}/seed{self.seed}"


@dataclass
class RunResult:
    """Everything a leaderboard or a reader needs about one run.

    ``metrics`` are test-split metrics computed by the runner (accuracy, macro_f1, kappa, per_class...);
    ``val_metrics`` are the validation metrics the method selected on. ``status`` is "ok" or "failed".
    """

    key: JobKey
    status: str
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
    schema_version: int = SCHEMA_VERSION

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
        raw["schema_version"] = SCHEMA_VERSION  # older records read with the newer fields' defaults
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ResultError(f"{source}: unknown fields {', '.join(unknown)}")
        try:
            raw["key"] = JobKey(**raw["key"])
            return cls(**raw)
        except (KeyError, TypeError) as err:
            raise ResultError(f"{source}: malformed record ({err})") from None


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


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def load_results(results_dir: Path) -> list[RunResult]:
    """Every record under ``results_dir`` (sorted by path); a malformed file raises ResultError naming it."""
    return [read_result(p) for p in sorted(Path(results_dir).rglob("seed*.json"))]
