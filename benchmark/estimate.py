"""How long a sweep will take, from the wall times of finished records of the same dataset, budget and profile.

A job's estimate is the median ``provenance.wall_s`` of the OK records of its method (variant included); the
shared teacher (or the ensemble teacher: its members' sum), trained once per (seed, fold) before the jobs that use
it, adds the median teacher training time to the first such job. Records are read from the user's results folder
first, then from the records committed with the package; no measured record gives ``None`` ("unknown"). Figures
are one worker's wall time on the machine that wrote the records (its hardware is in each record).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMMITTED_RESULTS = Path(__file__).resolve().parent.parent / "results"


@dataclass
class MeasuredCosts:
    """Median wall seconds per method label and for the teacher, and how many records each came from."""

    method_s: dict[str, float] = field(default_factory=dict)
    teacher_s: float | None = None
    n_records: int = 0
    hardware: set[str] = field(default_factory=set)


def measured_costs(dataset: str, budget: str, profile: str, folders: Sequence[Path]) -> MeasuredCosts:
    """Median wall times of OK records under the first folder of ``folders`` that has any for this cell."""
    for folder in folders:
        walls: dict[str, list[float]] = defaultdict(list)
        teacher: list[float] = []
        costs = MeasuredCosts()
        for path in sorted(Path(folder).glob(f"{dataset}/*/{budget}/{profile}/*/seed*.json")):
            raw = _read(path)
            if raw is None or raw.get("status") != "ok":
                continue
            prov = raw.get("provenance", {})
            if isinstance(prov.get("wall_s"), (int, float)):
                walls[path.parent.name].append(float(prov["wall_s"]))
                costs.n_records += 1
                costs.hardware.add(str(prov.get("hardware", "?")))
            t_wall = teacher_train_wall_s(raw.get("teacher"))
            if t_wall is not None:
                teacher.append(t_wall)
        if walls:
            costs.method_s = {label: statistics.median(v) for label, v in walls.items()}
            costs.teacher_s = statistics.median(teacher) if teacher else None
            return costs
    return MeasuredCosts()


def teacher_train_wall_s(teacher: Any) -> float | None:
    """Seconds a record's teacher took to train: the shared teacher's, or the sum of an ensemble's ``members``;
    None when the record has no teacher or a member lacks a positive time (entries stored before it was kept)."""
    if not isinstance(teacher, dict):
        return None
    members = teacher.get("members") if isinstance(teacher.get("members"), list) else [teacher]
    walls = [m.get("train_wall_s") if isinstance(m, dict) else None for m in members]
    if not walls or not all(isinstance(w, (int, float)) and w > 0 for w in walls):
        return None
    return float(sum(walls))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def job_estimates(jobs: Iterable[Any], costs: MeasuredCosts, uses_teacher: dict[str, bool]) -> dict[str, float | None]:
    """Estimated seconds per job label; the teacher's time goes to the first teacher-using job of each seed/fold."""
    estimates: dict[str, float | None] = {}
    teachers_seen: set[tuple[str, int]] = set()
    for job in jobs:
        key = job.key
        est = costs.method_s.get(key.method_label)
        if est is not None and uses_teacher.get(key.method, True) and (key.split, key.seed) not in teachers_seen:
            teachers_seen.add((key.split, key.seed))
            est = est + costs.teacher_s if costs.teacher_s is not None else None
        estimates[key.label()] = est
    return estimates


def total_estimate(estimates: dict[str, float | None], workers: int) -> float | None:
    """Wall seconds for all jobs on ``workers`` workers (a lower bound when jobs differ in length); None if any is
    unknown."""
    if any(v is None for v in estimates.values()):
        return None
    return sum(v for v in estimates.values() if v is not None) / max(1, workers)
