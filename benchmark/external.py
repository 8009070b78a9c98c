"""External test scores: a record's saved student scored on another database (issue 31, part C).

``python -m benchmark evaluate RECORDS --external svdb`` loads each record's saved student (``run --save-models``),
predicts every beat of the external test set (``datasets.base.EXTERNAL_SETS``; read through the record's dataset's
own preprocessing) and writes what it found to a sidecar beside the record, ``external-<name>-seed<N>.json``: the
per-patient confusion matrices, the pooled metrics, the sha256 of the student it scored and of the data. The record
itself is never rewritten, so its provenance stays what its run wrote. A sidecar counts for its record only while the
record still names a student with that sha256 (a rerun that replaces the student orphans the old score).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.atomic import atomic_write_text
from benchmark.engine import Engine
from benchmark.metrics import confusion_by_group, metrics_from_confusion
from benchmark.results import JobKey, ResultError, RunResult

SIDECAR_VERSION = 1
PREFIX = "external-"


@dataclass(frozen=True)
class ExternalScore:
    """One record's student scored on one external test set."""

    external: str  # the external test set's registry name
    key: JobKey  # the record's key
    model_sha256: str  # the saved student that was scored
    data_checksum: str  # the external set's sources + preprocessing
    classes: list[str]
    scored_classes: list[str]
    metrics: dict[str, Any]  # pooled over the external set's patients (benchmark.metrics)
    confusion_by_group: dict[str, list[list[int]]]  # per patient, rows true classes
    card: dict[str, Any] = field(default_factory=dict)  # what was read and how
    provenance: dict[str, Any] = field(default_factory=dict)  # git commit and time of the evaluation
    schema_version: int = SIDECAR_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> ExternalScore:
        try:
            raw = json.loads(text)
            if raw.get("schema_version") != SIDECAR_VERSION:
                raise ValueError(f"schema_version {raw.get('schema_version')!r}, this version reads {SIDECAR_VERSION}")
            raw["key"] = JobKey(**raw["key"])
            score = cls(**raw)
            if not isinstance(score.confusion_by_group, dict) or not score.confusion_by_group:
                raise ValueError("no per-patient confusions")
            for matrix in score.confusion_by_group.values():
                if np.asarray(matrix).shape != (len(score.classes), len(score.classes)):
                    raise ValueError("a confusion matrix does not match the classes")
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise ResultError(f"{source}: not an external score ({err})") from None
        return score


def sidecar_path(record_path: Path, external: str) -> Path:
    """``<record folder>/external-<name>-seed<N>.json`` (not ``seed*.json``, so record globs skip it)."""
    return Path(record_path).with_name(f"{PREFIX}{external}-{Path(record_path).stem}.json")


def load_external_scores(results_dir: Path) -> list[ExternalScore]:
    """Every sidecar under ``results_dir``; a malformed one raises ResultError naming it."""
    return [ExternalScore.from_json(p.read_text(encoding="utf-8"), str(p))
            for p in sorted(Path(results_dir).rglob(f"{PREFIX}*.json"))]


def score_student(record: RunResult, model: torch.nn.Module, external: str, arrays: Any, data_checksum: str,
                  card: dict[str, Any], git_commit: str = "") -> ExternalScore:
    """``model`` (the record's student) scored on ``arrays`` (the external set's SplitArrays)."""
    classes = list(record.metrics.get("classes") or [])
    scored = list(record.metrics.get("scored_classes") or classes)
    pred = Engine("cpu").predict(model, torch.as_tensor(arrays.x)).numpy().argmax(axis=1)  # as the runner predicts
    groups = confusion_by_group(arrays.y, pred, arrays.groups, len(classes))
    total = np.sum([np.asarray(m) for m in groups.values()], axis=0)
    metrics = metrics_from_confusion(total, classes, scored)
    metrics.pop("confusion", None)  # the per-patient matrices sum to it
    return ExternalScore(external=external, key=record.key, model_sha256=str(record.model.get("sha256", "")),
                         data_checksum=data_checksum, classes=classes, scored_classes=scored, metrics=metrics,
                         confusion_by_group=groups, card=card,
                         provenance={"git_commit": git_commit,
                                     "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def write_score(record_path: Path, score: ExternalScore) -> Path:
    """Write ``score`` beside its record, atomically; returns the sidecar's path."""
    path = sidecar_path(record_path, score.external)
    atomic_write_text(path, score.to_json())
    return path
