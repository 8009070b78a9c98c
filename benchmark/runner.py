"""Runs jobs: ``run_one(job)`` is a pure function from a job to a RunResult; ``run_many`` adds resume,
the teacher-first schedule and record writing. The runner never names a method."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from benchmark.context import RunContext, TeacherSet, member_seed
from benchmark.engine import CostMeter, Engine, seed_everything
from benchmark.joblock import JobLocks
from benchmark.metrics import classification_metrics, confusion_by_group, count_macs, count_params, summarise_model
from benchmark.models import ModelSink, save_student
from benchmark.nn.arch import ArchSpec, build_model
from benchmark.progress import emit, epoch_callback
from benchmark.protocol import PROTOCOL_VERSION, Protocol, make_protocol
from benchmark.provenance import provenance
from benchmark.record_upgrade import teacher_ids
from benchmark.results import CrossValidation, JobKey, RunResult, atomic_write_text, results_path, set_aside
from benchmark.resume import FingerprintCache, RecordState, record_outcome, select_jobs
from benchmark.teachers import Teacher, TeacherStore
from datasets.base import DATASETS, DatasetBundle, DataView
from methods import METHODS, Method

log = logging.getLogger(__name__)


class BudgetViolation(RuntimeError):
    """The deployed student has more parameters than the budget tier allows."""


@dataclass(frozen=True)
class Job:
    """One run: its key plus where to find data and caches. Picklable, so it can go to a worker."""

    key: JobKey
    data_root: str
    cache_dir: str
    fold: int = 0
    device: str = "auto"
    method_config: dict[str, Any] = field(default_factory=dict)
    progress: Any = None  # a queue for benchmark.progress.emit (phases, epochs); None: no reports
    models: ModelSink | None = None  # save the deployed student there (``run --save-models``); None: do not


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: the worker's pinned GPU (KDNAS_DEVICE), else CUDA if present, else CPU."""
    if name != "auto":
        return torch.device(name)
    if os.environ.get("KDNAS_DEVICE"):
        return torch.device(os.environ["KDNAS_DEVICE"])
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TeacherSource:
    """The runner's side of the teacher store: trains (or finds) each (dataset, split, seed) teacher once and puts it
    in the run context's ``TeacherSet``. Methods never see it (nor the store's folder, which sits in the cache beside
    the preprocessed arrays): the context gets the loaded teachers only."""

    def __init__(self, store: TeacherStore, view: DataView, data_checksum: str, protocol: Protocol) -> None:
        self.store, self.view, self.data_checksum, self.protocol = store, view, data_checksum, protocol

    def load(self, ctx: RunContext, seed: int) -> Teacher:
        return self.store.get(
            dataset=self.view.name, split=self.view.split, data_key=self.data_checksum,
            arch=self.protocol.teacher_arch, recipe=self.protocol.profile.teacher_recipe, seed=seed,
            train=ctx.train, val=ctx.val, engine=ctx.engine, val_metrics_fn=ctx.val_metrics,
            in_channels=self.view.input_shape[0], n_classes=self.view.n_classes)


def teacher_offsets(method_cls: type[Method], protocol: Protocol) -> range:
    """The ensemble offsets of the teachers a method's run needs (``RunContext.teacher``): none for a method without
    a teacher, all M members when it uses the ensemble or the protocol's KD source is the ensemble, else the seed's
    own teacher."""
    if not method_cls.uses_teacher:
        return range(0)
    return range(protocol.ensemble_size if method_cls.uses_ensemble or protocol.kd_source == "ensemble" else 1)


def build_context(job: Job, bundle: DatasetBundle, device: torch.device) -> RunContext:
    """The run context for ``job``: data view without test, engine, meters (one unit = one default-student
    training epoch of compute), and the teachers its method needs, loaded (trained first if not in the store)."""
    protocol = make_protocol(job.key.dataset, bundle.split, job.key.budget, job.key.profile)
    cap = protocol.profile.max_train_per_class
    view = bundle.view(cap)
    data_key = bundle.data_checksum if cap is None else f"{bundle.data_checksum}-train{cap}perclass"
    student = build_model(protocol.budget.default_student, view.input_shape[0], view.n_classes)
    student_macs, n_train = count_macs(student, view.input_shape), len(view.train)
    teachers = TeacherSet()
    engine = Engine(device, progress=epoch_callback(job.progress, job.key.label()))
    ctx = RunContext(protocol=protocol, data=view, engine=engine, seed=job.key.seed, teacher_provider=teachers,
                     search_meter=CostMeter.for_student(student_macs, n_train, protocol.profile.search_budget),
                     train_meter=CostMeter.for_student(student_macs, n_train))
    source = TeacherSource(TeacherStore.in_cache(job.cache_dir), view, data_key, protocol)
    for offset in teacher_offsets(METHODS.get(job.key.method), protocol):
        seed = member_seed(job.key.seed, offset)
        teachers.add(seed, source.load(ctx, seed))
    return ctx


def load_bundle(job: Job) -> DatasetBundle:
    return DATASETS.get(job.key.dataset)().load(Path(job.data_root), Path(job.cache_dir), job.fold)


def prepare_teacher(job: Job) -> dict[str, Any]:
    """Train (or find) the shared teacher ``job`` will use — every ensemble member when its method uses the
    ensemble; returns its info (``teacher_info``)."""
    torch.manual_seed(job.key.seed)
    emit(job.progress, job.key.label(), "phase", name="teacher")
    device = resolve_device(job.device)
    ctx = build_context(job, load_bundle(job), device)
    ensemble = METHODS.get(job.key.method).uses_ensemble
    size = ctx.protocol.ensemble_size if ensemble or ctx.protocol.kd_source == "ensemble" else 1
    for offset in range(size if size > 1 else 0):  # one at a time, so the progress says which member trains
        emit(job.progress, job.key.label(), "phase", name="teacher", member=offset + 1, members=size)
        ctx.teacher(offset)
    return teacher_info(ctx, ensemble)


def teacher_info(ctx: RunContext, ensemble: bool) -> dict[str, Any]:
    """What the record says about the teacher: its info, or ``{"members": [info, ...]}`` when the method uses the
    ensemble or the protocol's KD source is the ensemble (every teacher-using method of such a protocol then needs,
    and names, all members)."""
    if ensemble or ctx.protocol.kd_source == "ensemble":
        return {"members": [t.info() for t in ctx.ensemble()]}
    return ctx.teacher().info()


def final_training(name: str, train: Callable[[ArchSpec, RunContext], Any], arch: ArchSpec, ctx: RunContext,
                   bundle: DatasetBundle, enforce_budget: bool, job: Job) -> dict[str, Any]:
    """One final training of the searched ``arch`` (``Method.final_trainings``), from the run's seed, checked against
    the parameter budget and evaluated once on validation and test: the model and the record fields it fills."""
    seed_everything(job.key.seed)  # every final training starts from the same random state, searched or not
    t0, units = time.perf_counter(), ctx.train_meter.units
    emit(job.progress, job.key.label(), "phase", name="final" if name == "published" else f"final ({name})")
    model = train(arch, ctx)
    out: dict[str, Any] = {"model": model, "train_wall_s": time.perf_counter() - t0,
                           "train_cost": ctx.train_meter.units - units, "deployed_params": count_params(model)}
    if enforce_budget and out["deployed_params"] > ctx.max_params:
        raise BudgetViolation(f"deployed student has {out['deployed_params']:,} parameters; the "
                              f"{ctx.protocol.budget.name!r} budget allows {ctx.max_params:,}")
    emit(job.progress, job.key.label(), "phase", name="evaluation")
    out["val_metrics"] = ctx.val_metrics(model)
    test_pred = ctx.engine.predict(model, torch.as_tensor(bundle.test.x)).numpy().argmax(axis=1)
    out["metrics"] = classification_metrics(bundle.test.y, test_pred, bundle.classes, bundle.scored_classes)
    out["test_confusion_by_group"] = confusion_by_group(bundle.test.y, test_pred, bundle.test.groups,
                                                        len(bundle.classes))
    return out


def run_one(job: Job) -> RunResult:
    """Run one method on one dataset/split/budget/profile/seed and evaluate it once on the test split."""
    key = job.key
    device = resolve_device(job.device)
    started = time.perf_counter()
    origin = provenance(device)  # taken first: the commit of the code that runs, not of the tree at the end
    result = RunResult(key=key, status="failed", protocol_version=PROTOCOL_VERSION)
    try:
        method_cls, dataset_cls = METHODS.get(key.method), DATASETS.get(key.dataset)
        result.reference, result.main_metric = method_cls.reference, dataset_cls.main_metric
        result.fold = job.fold if dataset_cls.n_folds > 1 else None
        method = method_cls(method_cls.Config.from_dict(job.method_config))
        bundle = load_bundle(job)
        ctx = build_context(job, bundle, device)
        result.split_hash, result.data_checksum = bundle.split_hash, bundle.data_checksum
        result.cv = CrossValidation.from_card(bundle.card)
        result.param_budget = ctx.max_params
        result.config = {"method": method.config.to_dict(), "protocol": ctx.protocol.to_dict(),
                         "dataset_card": bundle.card, "main_metric": result.main_metric}

        seed_everything(key.seed)  # the method's random state depends on the seed only, not on earlier jobs
        t0 = time.perf_counter()
        emit(job.progress, key.label(), "phase", name="search")
        arch = method.search(ctx)
        result.search_wall_s = time.perf_counter() - t0
        result.arch = arch.to_dict()

        result.search_cost = ctx.search_meter.units
        if ctx.search_trace:
            for name, count in method.search_size(ctx).items():
                ctx.report(f"search: {name.replace('_', ' ')} evaluated", count)
        for final, train in method.final_trainings().items():
            outcome = final_training(final, train, arch, ctx, bundle, method.enforce_budget, job)
            if final == "published":
                model = outcome.pop("model")
                for name, value in outcome.items():
                    setattr(result, name, value)
            else:
                outcome.pop("model")
                result.protocol_final = {"recipe": ctx.notes.pop(f"{final}_final", {}), **outcome}
        # search-phase work a method did lazily inside distill counts too
        result.search_cost = ctx.search_meter.units
        # smoke runs are checks, not results: no latency (the README says so; `benchmark latency` measures on request)
        summary = summarise_model(model, bundle.input_shape, timed=key.profile != "smoke")
        result.macs, result.latency_ms = summary["macs"], summary["latency_ms"]
        if summary["latency"]:
            result.latency = {**summary["latency"], "step": "end of job"}  # `benchmark latency` remeasures quietly
        if method.uses_teacher:
            result.teacher = teacher_info(ctx, method.uses_ensemble)
            result.teacher_ids = teacher_ids(result.teacher)
        result.search_trace = ctx.search_trace
        if job.models is not None:
            result.model = save_student(model, arch, bundle.input_shape[0], bundle.n_classes, job.models, key)
        result.status = "ok"
        result.provenance = {**origin, "notes": ctx.notes}
    except Exception as err:  # a failing job becomes a failed record; the sweep goes on
        result.status = "failed"
        result.error = f"{type(err).__name__}: {err}".splitlines()[0]
        result.provenance = {**origin, "traceback": traceback.format_exc(limit=8)}
    result.provenance["wall_s"] = time.perf_counter() - started
    result.provenance["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result


Event = Callable[[str, Any, Any], None]  # (kind, job, payload)


def run_many(jobs: Iterable[Job], executor: Any, results_dir: Path, resume: bool = True,
             on_event: Event | None = None) -> list[RunResult]:
    """Run ``jobs`` (skipping those with a current OK record when ``resume``, and those another run holds), teachers
    first, writing each record atomically; a failure never replaces an OK record."""
    notify = on_event or (lambda kind, job, payload: None)
    locks = JobLocks(results_dir)
    results = []
    try:
        todo, states = select_jobs(jobs, results_dir, resume, locks, notify, FingerprintCache(load_bundle))
        teacher_jobs = _teacher_jobs(todo)
        for job, info in executor.map_unordered(prepare_teacher, teacher_jobs):
            notify("teacher", job, info)
        for job, outcome in executor.map_unordered(run_one, todo):
            if isinstance(outcome, BaseException):  # the worker itself died
                outcome = RunResult(key=job.key, status="failed", error=f"{type(outcome).__name__}: {outcome}",
                                    protocol_version=PROTOCOL_VERSION)
            outcome, on_disk = save_outcome(results_dir, outcome, states[job.key])
            locks.release(job.key)
            results.append(outcome)
            notify("result", job, outcome)
            if on_disk is not None and on_disk is not outcome:
                log.warning("%s failed; its earlier OK record is kept (the failure is in its history): %s",
                            job.key.label(), results_path(results_dir, job.key))
                notify("kept", job, on_disk)
    finally:
        locks.release_all()
    return results


def save_outcome(results_dir: Path, outcome: RunResult, state: RecordState) -> tuple[RunResult, RunResult | None]:
    """Write ``outcome`` over the job's earlier record (``record_outcome``); an invalid earlier record is set aside
    first (``*.invalid``, its history carried over). Returns (what to report, the record now on disk). A write that
    fails (a read-only folder, a full disk) fails this job only: the record goes to a fallback file when it can, the
    reported outcome is failed and names both, and the sweep goes on."""
    path = results_path(results_dir, outcome.key)
    try:
        if state.kind == "unreadable" and path.exists():
            outcome.history = [*salvaged_history(path), {"status": "invalid", "error": state.reason}]
            moved = set_aside(path)
            outcome.history[-1]["error"] += f" (kept as {moved.name})"
            log.warning("%s: invalid record set aside as %s: %s", outcome.key.label(), moved, state.reason)
        return outcome, record_outcome(results_dir, outcome, state.record)
    except OSError as err:
        problem = f"record not written to {path} ({type(err).__name__}: {err.strerror or err})"
        fallback = _fallback_write(outcome)
        log.error("%s: %s; %s", outcome.key.label(), problem, f"saved to {fallback}" if fallback else "not saved")
        failed = replace(outcome, status="failed", error=f"{problem}; " + (
            f"the {outcome.status} record was saved to {fallback}" if fallback else "no fallback copy either"))
        return failed, None


def salvaged_history(path: Path) -> list[dict[str, Any]]:
    """The ``history`` entries of an invalid record, when its JSON still holds a list of them; [] otherwise."""
    try:
        history = json.loads(path.read_text(encoding="utf-8")).get("history")
    except (OSError, ValueError, AttributeError):
        return []
    return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []


def _fallback_write(outcome: RunResult) -> Path | None:
    """Write ``outcome`` under the temp folder (``kdnas-unsaved/``, by its job label); None when that fails too."""
    target = Path(tempfile.gettempdir()) / "kdnas-unsaved" / (outcome.key.label().replace("/", "__") + ".json")
    try:
        atomic_write_text(target, outcome.to_json() + "\n")
    except OSError:
        return None
    return target


def _teacher_jobs(jobs: list[Job]) -> list[Job]:
    """One teacher-preparation job per (dataset, fold, profile, seed) among jobs whose method uses a teacher; a job
    whose method uses the ensemble is preferred, so that all members are prepared."""
    seen: dict[tuple[Any, ...], Job] = {}
    for job in jobs:
        method = METHODS.get(job.key.method)
        if method.uses_teacher:
            group = (job.key.dataset, job.fold, job.key.profile, job.key.seed)
            if method.uses_ensemble and not METHODS.get(seen.get(group, job).key.method).uses_ensemble:
                seen[group] = job
            seen.setdefault(group, job)
    return list(seen.values())
