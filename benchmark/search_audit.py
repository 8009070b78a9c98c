"""``benchmark audit-search``: how well a NAS method's search signal ranks architectures, from a stored record.

From the record's ``search_trace`` (via the method's ``candidate_pool`` / ``candidate_arch`` hooks) it takes the top-k
candidates by search-time score, k others at random (fixed seed) and the chosen architecture (the trace candidate whose
ArchSpec is the record's ``arch``), retrains each from scratch as the method trains its final student (``Method.
retrain_candidate``: its loss, the protocol's retraining recipe, the run's seed, the same train/validation data) and
scores it on validation (the protocol's selection signal) and, post hoc and only as ground truth, on test. Each
retrained candidate is written at once (atomically) under ``<out>/<record label>/candidates/``, so an interrupted
audit resumes where it stopped; ``audit.json`` and ``audit.md`` are written at the end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.aggregate import distinct_candidates
from benchmark.audit_report import TEST, VAL, markdown, summarise
from benchmark.candidates import AuditUnsupported, CandidatePool, TraceEntry, UnbuildableCandidate
from benchmark.context import RunContext, metrics_from_logits
from benchmark.engine import seed_everything
from benchmark.metrics import count_params
from benchmark.nn.arch import ArchSpec
from benchmark.results import JobKey, ResultError, RunResult, atomic_write_text, read_result
from benchmark.runner import Job, build_context, load_bundle, resolve_device
from datasets.base import DATASETS, DatasetBundle, stable_hash
from methods import METHODS, Method

log = logging.getLogger(__name__)
CHOSEN_SCAN = 100_000  # candidates scanned (best score first) for the chosen architecture


@dataclass(frozen=True)
class AuditPlan:
    """Where the audit reads from and writes to, and how many candidates it retrains."""

    k: int
    seed: int  # the random draw's seed (retraining uses the record's own seed)
    out_dir: Path
    data_root: str
    cache_dir: str
    device: str = "auto"


@dataclass
class Selected:
    entry: TraceEntry
    arch: ArchSpec
    roles: list[str]


def audit_dir(out_dir: Path, key: JobKey) -> Path:
    """``<out>/<dataset>/<split>/<budget>/<profile>/<method>/seed<N>/``: one audit per record."""
    return Path(out_dir) / key.dataset / key.split / key.budget / key.profile / key.method_label / f"seed{key.seed}"


def auditable(record: RunResult) -> bool:
    return record.ok and bool(record.search_trace)


def audit_record(path: Path, plan: AuditPlan, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Audit the search of the record at ``path``; returns what ``audit.json`` holds."""
    record = read_result(path)
    if not record.ok:
        raise ResultError(f"{path}: a failed record has nothing to audit")
    if not record.search_trace:
        raise ResultError(f"{path}: no search trace ({record.key.method_label} did not search)")
    if plan.k < 1:
        raise ValueError(f"--k: expected a number of candidates >= 1, got {plan.k}")
    method, job = _method_and_job(path, record, plan)
    bundle = load_bundle(job)
    if (bundle.data_checksum, bundle.split_hash) != (record.data_checksum, record.split_hash):
        raise ResultError(f"{path}: the data under {plan.data_root} is not the record's (data checksum "
                          f"{bundle.data_checksum} vs {record.data_checksum}, split {bundle.split_hash} vs "
                          f"{record.split_hash})")
    ctx = build_context(job, bundle, resolve_device(plan.device))
    try:
        pool = method.candidate_pool(record.search_trace, ctx)
        selected = select(pool, lambda e: method.candidate_arch(e.candidate, ctx), plan.k, plan.seed,
                          ArchSpec.from_dict(record.arch).digest())
    except AuditUnsupported as err:
        raise AuditUnsupported(f"{path}: {err}") from None
    folder = audit_dir(plan.out_dir, record.key)
    base = {"record": record.key.label(), "method_config": record.config.get("method"),
            "protocol": record.config.get("protocol"), "data_checksum": record.data_checksum,
            "split_hash": record.split_hash, "seed": record.key.seed}
    rows = []
    for i, item in enumerate(selected, 1):
        say(f"{record.key.method_label}: candidate {i}/{len(selected)} ({', '.join(item.roles)}, "
            f"search score {item.entry.score:.4f})")
        row = retrained(folder / "candidates", base, item, method, ctx, bundle)
        rows.append({**row, "roles": item.roles, "search_score": item.entry.score, "fidelity": item.entry.fidelity})
    summary = summarise(rows)
    header = {"record": str(path), "record_label": record.key.label(), "key": asdict(record.key), "k": plan.k,
              "audit_seed": plan.seed,
              "seed": record.key.seed, "pool_size": len(pool), "evaluated": distinct_candidates(record),
              "chosen_found": any("chosen" in r["roles"] for r in rows),
              "record_val_macro_f1": record.val_metrics.get("macro_f1"),
              "record_test_macro_f1": record.metrics.get("macro_f1")}
    report = {**header, "summary": summary, "candidates": rows,
              "columns": {VAL: "retrained, validation split: the protocol's selection signal",
                          TEST: "retrained, test split: the audit's ground truth, post hoc, never selected on"}}
    atomic_write_text(folder / "audit.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    atomic_write_text(folder / "audit.md", markdown(header, rows, summary))
    return report


def _method_and_job(path: Path, record: RunResult, plan: AuditPlan) -> tuple[Method, Job]:
    key = record.key
    cls = METHODS.get(key.method)
    options = record.config.get("method") or {}
    try:
        method = cls(cls.Config.from_dict(options))
    except (TypeError, ValueError) as err:
        raise ResultError(f"{path}: its method config no longer loads ({err})") from None
    dataset = DATASETS.get(key.dataset)()
    folds = [f for f in range(dataset.n_folds) if dataset.split_name(f) == key.split]
    if not folds:
        raise ResultError(f"{path}: split {key.split!r} is not one of {key.dataset}'s")
    return method, Job(key, plan.data_root, plan.cache_dir, fold=folds[0], device=plan.device,
                       method_config=dict(options))


def select(pool: CandidatePool, arch_of: Callable[[TraceEntry], ArchSpec], k: int, seed: int, chosen_digest: str
           ) -> list[Selected]:
    """The top ``k`` buildable candidates by search-time score, ``k`` other buildable ones at random (``seed``) and
    the chosen one (whose ArchSpec digest is ``chosen_digest``), each once with all its roles."""
    picked: dict[str, Selected] = {}

    def buildable(entries: Iterator[TraceEntry]) -> Iterator[Selected]:
        for entry in entries:
            if entry.id in picked:
                yield picked[entry.id]
                continue
            try:
                yield Selected(entry, arch_of(entry), [])
            except UnbuildableCandidate:
                continue

    for _, item in zip(range(k), buildable(pool.by_score()), strict=False):
        item.roles.append("top")
        picked[item.entry.id] = item
    drawn = 0
    for item in buildable(pool.at_random(np.random.default_rng(seed))):
        if drawn == k:
            break
        if item.entry.id not in picked:
            item.roles.append("random")
            picked[item.entry.id] = item
            drawn += 1
    for scanned, item in enumerate(buildable(pool.by_score())):
        if scanned >= CHOSEN_SCAN:
            break
        if item.arch.digest() == chosen_digest:
            item.roles.append("chosen")
            picked[item.entry.id] = item
            break
    return list(picked.values())


def retrained(folder: Path, base: dict[str, Any], item: Selected, method: Method, ctx: RunContext,
              bundle: DatasetBundle) -> dict[str, Any]:
    """The candidate's retraining result: read back when an earlier audit of the same run already wrote it."""
    fingerprint = stable_hash({**base, "candidate": item.entry.candidate, "arch": item.arch.to_dict()})
    path = folder / f"{item.entry.id}.json"
    if path.exists():
        try:
            done = json.loads(path.read_text(encoding="utf-8"))
            if done.get("fingerprint") == fingerprint:
                return done
        except (OSError, json.JSONDecodeError):
            pass  # a damaged file: retrain
    seed_everything(base["seed"])  # every candidate starts from the run's seed, whatever was retrained before
    model = method.retrain_candidate(item.entry.candidate, ctx)
    val = ctx.val_score(model)
    logits = ctx.engine.predict(model, torch.as_tensor(bundle.test.x))
    test = metrics_from_logits(bundle.test.y, logits.numpy(), bundle.classes, bundle.scored_classes)["macro_f1"]
    row = {"id": item.entry.id, "fingerprint": fingerprint, "candidate": item.entry.candidate,
           "arch": item.arch.to_dict(), "params": count_params(model), VAL: val, TEST: float(test)}
    atomic_write_text(path, json.dumps(row, indent=2, sort_keys=True) + "\n")
    return row


__all__ = ["AuditPlan", "AuditUnsupported", "audit_dir", "audit_record", "auditable", "select"]
