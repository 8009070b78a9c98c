"""Command line: ``python -m benchmark {list,run,latency,leaderboard,export,show,evaluate,audit-search,data}``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from benchmark import workspace
from benchmark.catalog import variant_name
from benchmark.registry import RegistryError
from benchmark.validation import (
    UsageError,
    check_at_least_one,
    check_paths_given,
    check_writable_dir,
    parse_index_list,
    validate_run,
)
from benchmark.workspace import USER_BOARDS, USER_RUNS, board_paths

# Heavy modules (torch, scikit-learn, pandas, optuna, mne, matplotlib, wfdb) are imported inside the commands that
# need them, so `--help`, `list` and `show` start in well under a second (tests/test_startup.py).

console = Console(stderr=True, markup=False)  # no markup: labels such as dna[final_kd=true] print as they are
out = Console(markup=False)

if TYPE_CHECKING:
    from benchmark.runner import Job


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``0,1,2`` or an ascending range ``0-4`` (numbers >= 0)."""
    return parse_index_list(text, option)


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set vanilla_kd.alpha=0.5`` -> {"vanilla_kd": {"alpha": 0.5}} (values parsed as JSON when possible)."""
    from methods import METHODS

    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        method, dot, option = name.partition(".")
        if not sep or not dot:
            raise UsageError(f"--set: expected METHOD.OPTION=VALUE, got {item!r}")
        METHODS.get(method)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        overrides.setdefault(method, {})[option] = parsed
    return overrides


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark.listing import list_tables
    from benchmark.paths import resolve_data_root

    tables = list_tables(args.pattern, resolve_data_root(args.data_root))
    if not tables:
        console.print(f"nothing matches {args.pattern!r} (a substring, or wildcards like '*kd*')")
        return 1
    for table in tables:
        out.print(table)
    return 0


def build_jobs(args: argparse.Namespace, data_root: Path, cache_dir: Path) -> list[Job]:
    """The jobs a ``run`` command line asks for (one per fold x seed x method), its values checked."""
    from benchmark.protocol import get_budget, get_profile
    from benchmark.results import JobKey
    from benchmark.runner import Job
    from datasets.base import DATASETS
    from methods import METHODS

    dataset = DATASETS.get(args.dataset)()
    methods = METHODS.select(args.methods)
    get_profile(args.profile)
    budget = get_budget(args.dataset, args.budget).name
    seeds = parse_seeds(args.seeds)
    folds = parse_seeds(args.folds, "--folds") if args.folds else list(range(dataset.n_folds))
    bad = [f for f in folds if not 0 <= f < dataset.n_folds]
    if bad:
        raise UsageError(f"--folds: {args.dataset} has folds 0..{dataset.n_folds - 1}, got {bad}")
    overrides = parse_overrides(args.set or [])
    configs = {method: method_configs(method, overrides.get(method, {}), getattr(args, "ablations", False))
               for method in methods}
    return [
        Job(JobKey(args.dataset, dataset.split_name(fold), budget, args.profile, method, seed, variant_name(config)),
            str(data_root), str(cache_dir), fold=fold, device=args.device, method_config=config,
            models=model_sink(args))
        for fold in folds for seed in seeds for method in methods for config in configs[method]
    ]


def method_configs(method: str, options: dict[str, Any], ablations: bool) -> list[dict[str, Any]]:
    """The config options of ``method``'s jobs: ``options`` (from ``--set``), then with ``--ablations`` each of the
    method's ``ablations`` on top of them; a variant that repeats an earlier one is dropped."""
    from methods import METHODS

    variants = [options, *({**options, **ablation} for ablation in METHODS.get(method).ablations if ablations)]
    unique: dict[str, dict[str, Any]] = {}
    for config in variants:
        unique.setdefault(variant_name(config), config)
    return list(unique.values())


def model_sink(args: argparse.Namespace) -> Any:
    """Where ``--save-models`` puts the deployed students (``--models-dir``, default beside the records); None
    without it."""
    from benchmark.models import ModelSink

    if getattr(args, "models_dir", None) and not getattr(args, "save_models", False):
        raise UsageError("--models-dir: only with --save-models")
    if not getattr(args, "save_models", False):
        return None
    if args.models_dir:
        check_writable_dir(Path(args.models_dir), "--models-dir")
    return ModelSink(args.models_dir or args.results_dir, args.results_dir)


def plan_lines(args: argparse.Namespace, jobs: Sequence[Job], estimates: dict[str, float | None],
               done: int, stale: Sequence[str] = ()) -> list[str]:
    """What ``run`` will do, printed before it starts (and all that ``--dry-run`` prints)."""
    from benchmark.estimate import total_estimate
    from benchmark.progress import format_duration

    methods = list(dict.fromkeys(j.key.method_label for j in jobs))
    seeds = sorted({j.key.seed for j in jobs})
    folds = sorted({j.fold for j in jobs})
    total = total_estimate(estimates, args.workers)
    unknown = sum(1 for v in estimates.values() if v is None)
    lines = [
        f"plan: {len(jobs)} job(s) = {len(methods)} method(s) x {len(seeds)} seed(s)"
        + (f" x {len(folds)} fold(s)" if len(folds) > 1 else "")
        + f" on {args.dataset} · profile {args.profile} · budget {jobs[0].key.budget if jobs else '?'}",
        f"  methods: {', '.join(methods)}",
        f"  seeds: {', '.join(map(str, seeds))}" + (f" · folds: {', '.join(map(str, folds))}" if len(folds) > 1
                                                    else ""),
        f"  results: {args.results_dir}" + (f" ({done} already done, skipped)" if done else ""),
    ]
    if stale:
        lines.append(f"  rerun: {len(stale)} stale record(s), e.g. {stale[0]}")
    if total is not None:
        lines.append(f"  estimated time: ~{format_duration(total)} with {args.workers} worker(s) "
                     "(median wall times of finished records of the same dataset, budget and profile)")
    else:
        lines.append(f"  estimated time: unknown for {unknown} of {len(estimates)} job(s) (no finished "
                     f"record of the same dataset, budget and profile to measure from)")
    return lines


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.estimate import COMMITTED_RESULTS, job_estimates, measured_costs
    from benchmark.paths import resolve_cache_dir
    from benchmark.resume import planned_state
    from methods import METHODS

    data_root, cache_dir = located_root(args.dataset, args.data_root), resolve_cache_dir(args.cache_dir)
    jobs = build_jobs(args, data_root, cache_dir)
    validate_run(args, jobs, parse_overrides(args.set or []))  # before any data is read or file written
    results_dir = Path(args.results_dir)
    states = {j.key: planned_state(results_dir, j) for j in jobs} if not args.no_resume else {}
    finished = {key for key, state in states.items() if state.kind == "current"}
    stale = [f"{key.method_label}/seed{key.seed}: {state.reason}" for key, state in states.items()
             if state.kind == "stale"]
    todo = [j for j in jobs if j.key not in finished]
    costs = measured_costs(args.dataset, jobs[0].key.budget, args.profile, [results_dir, COMMITTED_RESULTS])
    uses_teacher = {name: cls.uses_teacher for name, cls in METHODS.items()}
    estimates = job_estimates(todo, costs, uses_teacher)
    if not args.quiet or args.dry_run:
        for line in plan_lines(args, jobs, estimates, len(finished), stale):
            (out if args.dry_run else console).print(line, highlight=False, markup=False, soft_wrap=True)
    if args.dry_run:
        return 0
    check_data(args, data_root, cache_dir)
    return execute(args, jobs, results_dir, estimates)


def located_root(dataset_name: str, option: str | None) -> Path:
    """The data root of ``--data-root`` / $KDNAS_DATA / the default; a database folder given for it (``.../mitdb``)
    is recognised and its parent used, with a note."""
    from benchmark.paths import resolve_data_root
    from datasets.base import DATASETS
    from datasets.data_root import locate

    root, note = locate(DATASETS.get(dataset_name)(), resolve_data_root(option))
    if note:
        console.print(note, highlight=False, soft_wrap=True)
    return root


def check_data(args: argparse.Namespace, data_root: Path, cache_dir: Path) -> None:
    """Fetch (``--fetch``) or complain about missing files, then build the caches before workers start."""
    from datasets.base import DATASETS, DataError
    from datasets.data_root import hint

    dataset = DATASETS.get(args.dataset)()
    missing = dataset.missing_files(data_root)
    if missing and args.fetch:
        dataset.fetch(data_root)
    elif missing:
        raise DataError(f"{args.dataset}: {len(missing)} file(s) missing under {data_root} (e.g. {missing[0]})"
                        f"{hint(dataset, data_root)}; run `python -m benchmark data fetch {args.dataset} --data-root "
                        f"{data_root}` or pass --fetch")
    dataset.prepare(data_root, cache_dir)  # fail fast on bad data; warm the caches before workers start


def teacher_line(seed: int, payload: Any) -> str:
    """The line that says a seed's teacher (or ensemble of teachers) is ready, with validation macro-F1."""
    if isinstance(payload, BaseException):
        return f"teacher for seed {seed} failed: {payload}"
    if "members" in payload:  # an ensemble teacher
        f1s = ", ".join(f"{m.get('val_macro_f1', float('nan')):.3f}" for m in payload["members"])
        return f"ensemble teacher seed {seed} ready ({len(payload['members'])} members, val macro-F1 {f1s})"
    return f"teacher seed {seed} ready (val macro-F1 {payload.get('val_macro_f1', float('nan')):.3f})"


def execute(args: argparse.Namespace, jobs: list[Job], results_dir: Path, estimates: dict[str, float | None]) -> int:
    """Run the jobs with progress, then the quiet latency step over the new records; print the summary."""
    import queue

    from benchmark.executors import make_executor
    from benchmark.progress import Listener, PlainDisplay, RichDisplay, progress_queue, result_line
    from benchmark.results import results_path
    from benchmark.runner import run_many

    executor = make_executor(args.executor, args.workers, args.ray_address)
    stack = contextlib.ExitStack()
    sink: Any = None
    if args.executor == "local":  # Ray tasks may run on other machines: no progress queue to them
        sink = queue.Queue() if args.workers <= 1 else progress_queue(stack)
        jobs = [dataclasses.replace(job, progress=sink) for job in jobs]
    fancy = console.is_terminal and not args.quiet
    display = (RichDisplay(console, f"{args.dataset} · {args.profile}", len(jobs), estimates, args.workers)
               if fancy else PlainDisplay(console, quiet=args.quiet))
    counts = {"skipped": 0, "ok": 0, "failed": 0}
    written: list[Path] = []

    def on_event(kind: str, job: Job, payload: Any) -> None:
        if kind == "skipped":
            counts["skipped"] += 1
            display.job_done(job.key.label(), f"skip {job.key.label()} (already done)", True)
        elif kind == "teacher":
            display.release(job.key.label())
            display.note(teacher_line(job.key.seed, payload))
        elif kind == "result":
            counts["ok" if payload.ok else "failed"] += 1
            if payload.ok:  # the latency step rewrites new OK records only (a failed write's folder is left alone)
                written.append(results_path(results_dir, payload.key))
            display.job_done(job.key.label(), result_line(payload, payload.provenance.get("wall_s")), payload.ok)

    with stack, Listener(display, sink) if sink is not None else _NoListener(display):
        run_many(jobs, executor, results_dir, resume=not args.no_resume, on_event=on_event)
    if counts["ok"] and not args.no_latency_step and args.profile != "smoke":  # smoke runs are checks, not results
        measure_latencies([p for p in written if p.exists()], args.latency_repeats, quiet=args.quiet)
    if counts["skipped"] == len(jobs):
        console.print(f"nothing to do: all {len(jobs)} job(s) already have results in {results_dir} "
                      "(--no-resume reruns them)")
    else:
        console.print(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} already done; "
                      f"records in {results_dir}. Regenerate tables with "
                      f"`{workspace.leaderboard_hint(results_dir)}`.")
    return 1 if counts["failed"] else 0


class _NoListener:
    """The display without a queue (Ray: no epoch progress, only finished jobs)."""

    def __init__(self, display: Any) -> None:
        self.display = display

    def __enter__(self) -> _NoListener:
        self.display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.display.stop()


def measure_latencies(paths: Sequence[Path], repeats: int, quiet: bool = False) -> None:
    """The quiet latency step: one model at a time, one thread, nothing else running in this command."""
    from benchmark.latency import remeasure

    if not quiet:
        console.print(f"measuring CPU latency of {len(paths)} record(s) ({repeats} repeats each, one thread)…")
    for _path, result in remeasure(paths, repeats=repeats):
        if not quiet:
            lat = result.latency
            console.print(f"  {result.key.method_label} seed {result.key.seed}: {lat['median_ms']:.3f} ms "
                          f"(IQR {lat['q1_ms']:.3f}–{lat['q3_ms']:.3f}, n={lat['repeats']})", highlight=False)


def cmd_latency(args: argparse.Namespace) -> int:
    from benchmark.show import expand_paths

    check_at_least_one(args.repeats, "--repeats")
    paths = expand_paths(args.paths or [args.results_dir])
    measure_latencies(paths, args.repeats, quiet=args.quiet)
    console.print(f"{len(paths)} record(s) measured; regenerate tables with `python -m benchmark leaderboard`")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark.aggregate import aggregate
    from benchmark.external import load_external_scores
    from benchmark.headline import HeadlineError, check_readme, write_headline
    from benchmark.leaderboard import write_leaderboards
    from benchmark.results import ResultError, load_checked
    from datasets.base import DATASETS

    results_dir, out_dir = board_paths(args.results_dir, args.out, args.release, args.readme)
    check_writable_dir(Path(out_dir), "--out")
    readme = Path(args.readme) if args.readme else None
    try:
        if readme is not None:
            check_readme(readme)  # before any work: a README without markers loses nothing
    except HeadlineError as err:
        raise UsageError(f"--readme {err}") from None
    check_has_records(results_dir)
    results, invalid = load_checked(Path(results_dir))
    for bad in invalid:  # left out of every table, listed under it
        console.print(f"warning: {Path(results_dir) / bad.path}: invalid record left out ({bad.reason})",
                      highlight=False, soft_wrap=True, markup=False)
    if not results and not invalid:
        raise ResultError(f"{results_dir}: no result records found (run `python -m benchmark run` first)")
    highlight = {name: tuple(getattr(cls, "highlight_classes", ())) for name, cls in DATASETS.items()}
    source = results_dir.rstrip("/") + "/"
    board = aggregate(results, load_external_scores(Path(results_dir)))
    paths = write_leaderboards(results, Path(out_dir), highlight=highlight, source=source, board=board,
                               invalid=invalid)
    if readme is not None:
        paths.append(write_headline(readme, board))
    for path in paths:
        out.print(f"wrote {path}")
    return 0


def check_has_records(folder: str) -> None:
    """A one-line error for the user's default folder before their first run (instead of "cannot read runs")."""
    from benchmark.results import ResultError

    if folder == USER_RUNS and not Path(folder).is_dir():
        raise ResultError(f"{USER_RUNS}/: no runs of yours yet (`python -m benchmark run` writes them here); "
                          "--release reads the committed release")


def cmd_export(args: argparse.Namespace) -> int:
    from benchmark.export import export_format, write_table
    from benchmark.results import ResultError, load, load_runs

    fmt = export_format(Path(args.out), args.format)
    results_dir = workspace.results_dir(args.results_dir, args.release)
    check_has_records(results_dir)
    if not Path(results_dir).is_dir():
        raise ResultError(f"{results_dir}: no such results folder (--results-dir)")
    frame = load_runs(results_dir) if args.runs else load(results_dir)
    out.print(f"wrote {write_table(frame, Path(args.out), fmt)} ({len(frame)} rows, {fmt})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from benchmark.results import ResultError
    from benchmark.show import show

    if args.paths and args.release:
        raise UsageError("--release: shows the whole committed release; name its records as paths instead "
                         "(e.g. results/mitbih)")
    paths = args.paths or [workspace.results_dir(None, args.release)]
    if not args.paths:
        check_has_records(paths[0])
    try:
        for renderable in show(paths, by_patient=args.by_patient, influence=args.influence):
            out.print(renderable)
    except (TypeError, ValueError, KeyError, AttributeError) as err:  # a field of an unexpected type or shape
        if isinstance(err, ResultError):
            raise
        raise ResultError(f"{', '.join(paths)}: cannot show this record ({type(err).__name__}: {err})") from None
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from benchmark.external import score_student, write_score
    from benchmark.models import load_student
    from benchmark.paths import resolve_cache_dir, resolve_data_root
    from benchmark.provenance import git_commit
    from benchmark.results import ResultError, read_result
    from benchmark.show import expand_paths
    from datasets.base import EXTERNAL_SETS

    external = EXTERNAL_SETS.get(args.external)()
    records = [(path, read_result(path)) for path in expand_paths(args.paths)]
    usable = [(p, r) for p, r in records if r.ok and r.key.dataset == external.for_dataset and r.model]
    for path, record in records:
        if (path, record) not in usable:
            why = ("a failed record" if not record.ok else f"dataset {record.key.dataset}, not "
                   f"{external.for_dataset}" if record.key.dataset != external.for_dataset else
                   "no saved student (rerun it with `benchmark run --save-models`)")
            console.print(f"skip {path} ({why})", highlight=False)
    if not usable:
        raise ResultError(f"{', '.join(args.paths)}: no OK {external.for_dataset} record with a saved student; "
                          "rerun with `benchmark run --save-models`")
    arrays, checksum = external.load(resolve_data_root(args.data_root), resolve_cache_dir(args.cache_dir))
    card, commit = external.card(tuple(sorted({int(g) for g in arrays.groups}))), git_commit()
    for path, record in usable:
        score = score_student(record, load_student(path), external.name, arrays, checksum, card, commit)
        written = write_score(path, score)
        out.print(f"{record.key.label()}: {external.name} macro-F1 {100 * score.metrics['macro_f1']:.1f} "
                  f"({len(score.confusion_by_group)} patients, {len(arrays)} beats) -> {written}", highlight=False)
    return 0


def cmd_audit_search(args: argparse.Namespace) -> int:
    from benchmark.audit_index import write_index
    from benchmark.paths import resolve_cache_dir, resolve_data_root
    from benchmark.results import ResultError, read_result
    from benchmark.search_audit import AuditPlan, audit_dir, audit_record, auditable
    from benchmark.show import expand_paths

    if args.k < 1:
        raise UsageError(f"--k: expected a number of candidates >= 1, got {args.k}")
    check_writable_dir(Path(args.out), "--out")
    paths = expand_paths(args.paths)
    if len(paths) > 1:  # a folder or glob: audit the records that searched, say which were left out
        skipped = [p for p in paths if not auditable(read_result(p))]
        for path in skipped:
            console.print(f"skip {path} (no search trace, or a failed record)", highlight=False)
        paths = [p for p in paths if p not in skipped]
        if not paths:
            raise ResultError(f"{', '.join(args.paths)}: no record with a search trace")
    plan = AuditPlan(args.k, args.seed, Path(args.out), str(resolve_data_root(args.data_root)),
                     str(resolve_cache_dir(args.cache_dir)), args.device)
    for path in paths:
        report = audit_record(path, plan, say=lambda line: None if args.quiet else console.print(line, highlight=False))
        summary, folder = report["summary"], audit_dir(Path(args.out), read_result(path).key)
        out.print(f"{report['record_label']}: {summary['retrained']} retrained, Kendall tau (val) "
                  f"{_fmt(summary['kendall_tau_val'])}, chosen percentile (val) "
                  f"{_fmt(summary['chosen_percentile_val'], 1)} -> {folder / 'audit.md'}", highlight=False)
        index = write_index(Path(args.out))  # after each audit, so an interrupted batch still has its index
    out.print(f"index of every audit under {args.out}: {index}", highlight=False)
    return 0


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from datasets.base import DATASETS, DataError

    if args.jobs < 1:
        raise UsageError(f"--jobs: expected a number of parallel downloads >= 1, got {args.jobs}")
    root = located_root(args.dataset, args.data_root)
    try:
        fetched = DATASETS.get(args.dataset)().fetch(root, base_url=args.base_url, jobs=args.jobs)
    except DataError as err:
        if args.base_url:
            raise
        raise DataError(f"{err} (no network? `--base-url URL` fetches from a mirror in PhysioNet's layout, "
                        "e.g. a local copy served over http)") from None
    console.print(f"{args.dataset}: {len(fetched)} file(s) downloaded and verified under {root}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from datasets.base import DATASETS, DataError
    from datasets.data_root import hint

    root = located_root(args.dataset, args.data_root)
    dataset = DATASETS.get(args.dataset)()
    missing = dataset.missing_files(root)
    if missing:
        console.print(f"{args.dataset}: {len(missing)} file(s) missing under {root}{hint(dataset, root)}; "
                      f"run `python -m benchmark data fetch {args.dataset} --data-root {root}`")
        return 1
    try:
        dataset.verify(root)  # the checks `run` makes: a truncated file is not "complete"
    except DataError as err:
        console.print(f"{args.dataset}: {err}", highlight=False, soft_wrap=True)
        return 1
    console.print(f"{args.dataset}: complete and verified under {root}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=(
        "KD-NAS Bench: compare knowledge-distillation + NAS methods for small biosignal models under one protocol."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log per-epoch training progress")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors and the final summary")
    # the same flags after the subcommand (`run -v`); SUPPRESS keeps a flag given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log per-epoch training progress")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print only errors and the final summary")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], **kwargs)

    def release_option(p: argparse.ArgumentParser, also: str = "") -> None:
        p.add_argument("--release", action="store_true",
                       help=f"read the committed release (results/) instead of your runs{also}")

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-root", help="folder in PhysioNet's layout (mitdb/, sleep-edf/); "
                                           "default $KDNAS_DATA, else ~/.cache/kdnas-bench/data")

    p = command("list", "list methods, datasets, budget tiers and profiles")
    p.add_argument("pattern", nargs="?", help="only names containing this text, or matching wildcards ('*kd*')")
    data_options(p)
    p.set_defaults(func=cmd_list)

    p = command("run", "run methods on a dataset and write one result record per job")
    p.add_argument("--methods", default="all", help="'all' (default), a comma list (teacher,vanilla_kd) or "
                                                    "wildcards ('*kd*')")
    p.add_argument("--dataset", required=True, help="dataset id, see `list`")
    p.add_argument("--budget", help="parameter-budget tier of the deployed student (default: the dataset's default)")
    p.add_argument("--profile", default="quick",
                   help="smoke (seconds; tests) | quick (default; CPU, ~80 core-min per seed on mitbih) | full")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0,1,2 or 0-4 (default 0)")
    p.add_argument("--folds", help="cross-validation folds to run, e.g. 0,3 (default: all the dataset has)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (1 thread each on CPU, "
                                                          "one per GPU on GPU machines); default 1: in-process")
    p.add_argument("--executor", default="local", choices=("local", "ray"), help="local processes or a Ray cluster")
    p.add_argument("--ray-address", help="Ray cluster address for --executor ray (default: start a local one)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present) | cpu | cuda | cuda:N")
    p.add_argument("--results-dir", default=USER_RUNS, help=f"where result records go (default {USER_RUNS}/, "
                   "git-ignored; the committed release is results/)")
    p.add_argument("--cache-dir", help="preprocessed data and teachers (default $KDNAS_CACHE, else "
                                       "~/.cache/kdnas-bench/cache)")
    p.add_argument("--set", action="append", metavar="METHOD.OPTION=VALUE", help="override a method's config "
                                                                                   "option (repeatable)")
    p.add_argument("--ablations", action="store_true", help="also run each method's ablation variants (`list` "
                                                             "shows them; recorded as method[option=value], never "
                                                             "ranked with the methods)")
    p.add_argument("--fetch", action="store_true", help="download missing data from PhysioNet first")
    p.add_argument("--no-resume", action="store_true", help="rerun jobs that already have an OK record")
    p.add_argument("--save-models", action="store_true",
                   help="save each run's deployed student (weights + ArchSpec) and name it in the record; "
                        "`benchmark.models.load_student(record)` rebuilds it")
    p.add_argument("--models-dir", help="where --save-models writes (same layout as the records, seed<N>.pt; "
                                        "default: beside each record in --results-dir)")
    p.add_argument("--dry-run", action="store_true", help="print what would run (jobs, estimated time) and stop")
    p.add_argument("--no-latency-step", action="store_true",
                   help="skip the quiet CPU-latency remeasurement of the new records at the end (never done for "
                        "the smoke profile)")
    p.add_argument("--latency-repeats", type=int, default=200, metavar="N",
                   help="timed batch-1 calls per model in the latency step (default 200)")
    data_options(p)
    p.set_defaults(func=cmd_run)

    p = command("latency", "remeasure CPU latency of finished records, quietly (one model at a time, one thread)")
    p.add_argument("paths", nargs="*", help="records, folders or globs (default: --results-dir)")
    p.add_argument("--results-dir", default=USER_RUNS, help=f"records to measure when no path is given (default "
                                                          f"{USER_RUNS}/)")
    p.add_argument("--repeats", type=int, default=200, metavar="N", help="timed batch-1 calls per model (200)")
    p.set_defaults(func=cmd_latency)

    p = command("leaderboard", "regenerate leaderboard markdown from the result records")
    p.add_argument("--results-dir", help=f"records to read (default {USER_RUNS}/, your runs)")
    p.add_argument("--out", help=f"output folder (default {USER_BOARDS}/; with --release the committed "
                                 "leaderboards/)")
    release_option(p, " and rewrite the committed leaderboards/ (maintainers)")
    p.add_argument("--readme", metavar="PATH", help="also rewrite the headline results between the markers in this "
                   "file (the project's README.md; benchmark.headline); alone it implies --release")
    p.set_defaults(func=cmd_leaderboard)

    p = command("export", "write the leaderboard table (benchmark.results.load) as CSV or Parquet")
    p.add_argument("--results-dir", help=f"records to read (default {USER_RUNS}/, your runs)")
    release_option(p)
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--format", choices=("csv", "parquet"), help="default: from --out's suffix (.parquet), else csv; "
                                                                 "parquet needs pyarrow")
    p.add_argument("--runs", action="store_true", help="one row per run (benchmark.results.load_runs) instead")
    p.set_defaults(func=cmd_export)

    p = command("show", "show result records: one record in full, several as a table")
    p.add_argument("paths", nargs="*", help=f"result JSON files, folders (searched recursively) or globs (default "
                                            f"{USER_RUNS}/, your runs)")
    release_option(p)
    p.add_argument("--by-patient", metavar="CLASS", help="per test patient (MIT-BIH record, Sleep-EDF subject): the "
                                                         "class's beats, and each method's Se / +P of it, seeds pooled")
    p.add_argument("--influence", action="store_true", help="per method: the test patients whose leaving out moves "
                                                            "its main metric most (points, mean over seeds)")
    p.set_defaults(func=cmd_show)

    p = command("evaluate", "score the saved students of records on an external test database (e.g. svdb) and "
                            "write the per-patient confusions beside each record (external-<name>-seed<N>.json)")
    p.add_argument("paths", nargs="+", help="result records, folders or globs (records with a saved student: "
                                            "`run --save-models`)")
    p.add_argument("--external", required=True, help="external test set, e.g. svdb (MIT-BIH models)")
    data_options(p)
    p.add_argument("--cache-dir", help="preprocessed data (default $KDNAS_CACHE, else ~/.cache/kdnas-bench/cache)")
    p.set_defaults(func=cmd_evaluate)

    p = command("audit-search", "retrain a NAS search's top-k and k random candidates from its record's trace; report "
                                "Kendall tau (search score vs retrained) and the chosen architecture's percentile")
    p.add_argument("paths", nargs="+", help="records of NAS methods, folders or globs (records without a search "
                                            "trace are skipped)")
    p.add_argument("--k", type=int, default=5, help="top-k candidates by search score, plus k at random (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw (retraining uses the record's seed)")
    p.add_argument("--out", default=f"{USER_RUNS}/audits", help="output folder: <out>/<record label>/audit.{md,json} "
                                                              f"(default {USER_RUNS}/audits/; the committed ones: "
                                                              "--out audits)")
    p.add_argument("--cache-dir", help="preprocessed data and teachers (default $KDNAS_CACHE, else "
                                       "~/.cache/kdnas-bench/cache)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present) | cpu | cuda | cuda:N")
    data_options(p)
    p.set_defaults(func=cmd_audit_search)

    data = command("data", "download or check datasets").add_subparsers(dest="data_command", required=True,
                                                                         metavar="ACTION")
    p = data.add_parser("fetch", help="download missing files from PhysioNet and verify their checksums",
                        parents=[common])
    p.add_argument("dataset", help="dataset id, e.g. mitbih")
    p.add_argument("--base-url", help="mirror in PhysioNet's layout (default https://physionet.org/files/)")
    p.add_argument("--jobs", type=int, default=4, metavar="N",
                   help="files downloaded at once (default 4; PhysioNet serves each connection slowly)")
    data_options(p)
    p.set_defaults(func=cmd_data_fetch)
    p = data.add_parser("info", help="say whether a dataset's files are all present", parents=[common])
    p.add_argument("dataset", help="dataset id, e.g. mitbih")
    data_options(p)
    p.set_defaults(func=cmd_data_info)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input: printed as one line, exit 2. Looked up in the modules already imported (an
    error class whose module was never imported cannot have been raised), so no heavy module is imported here."""
    found: list[type[BaseException]] = [RegistryError, UsageError]
    for module, name in (("datasets.base", "DataError"), ("benchmark.results", "ResultError"),
                         ("methods.base", "ConfigError")):
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None:
            found.append(cls)
    return tuple(found)


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_path=False)
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s")
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # a scheduler's SIGTERM stops a run as Ctrl-C does: finished records kept, workers stopped
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        check_paths_given(args)
        return args.func(args)
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True, markup=True)
        return 2
    except KeyboardInterrupt as err:
        console.print("interrupted: finished records are kept; run the same command again to resume")
        return 128 + getattr(err, "signum", signal.SIGINT)  # 130 for Ctrl-C, 143 for SIGTERM (the shell's codes)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """A SIGTERM, stopping the run as Ctrl-C does; ``signum`` gives the exit code (128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise Terminated(signum)


if __name__ == "__main__":
    sys.exit(main())
