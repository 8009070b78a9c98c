"""Command line: ``python -m benchmark {list,run,leaderboard,data,show}``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmark.executors import make_executor
from benchmark.leaderboard import write_leaderboards
from benchmark.paths import resolve_cache_dir, resolve_data_root
from benchmark.protocol import PROFILES, budget_tiers, get_budget, get_profile
from benchmark.registry import RegistryError
from benchmark.results import JobKey, ResultError, RunResult, load_results, read_result
from benchmark.runner import Job, run_many
from datasets.base import DATASETS, DataError
from methods import METHODS
from methods.base import ConfigError

console = Console(stderr=True)
out = Console()


class UsageError(ValueError):
    """A bad command-line value; the message names the option."""


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or a range ``0-4``."""
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(v) for v in text.split("-", 1))
            return list(range(lo, hi + 1))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--seeds: expected a list like 0,1,2 or a range like 0-4, got {text!r}") from None


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set vanilla_kd.alpha=0.5`` -> {"vanilla_kd": {"alpha": 0.5}} (values parsed as JSON when possible)."""
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
    methods = Table(title="methods (--methods)")
    for col in ("name", "kind", "teacher", "description"):
        methods.add_column(col)
    for name, cls in METHODS.items():
        methods.add_row(name, "reference" if cls.reference else "method", "yes" if cls.uses_teacher else "no",
                        cls.summary)
    out.print(methods)
    data = Table(title="datasets (--dataset) and budget tiers (--budget, deployed-student parameters)")
    for col in ("name", "classes", "folds", "budgets", "data present"):
        data.add_column(col)
    root = resolve_data_root(args.data_root)
    for name, cls in DATASETS.items():
        try:
            tiers = ", ".join(f"{t.name}≤{t.max_params:,}" for t in budget_tiers(name).values())
        except RegistryError:
            tiers = "—"
        missing = cls().missing_files(root)
        data.add_row(name, " ".join(cls.classes), str(cls.n_folds), tiers,
                     "yes" if not missing else f"no ({len(missing)} files missing)")
    out.print(data)
    profiles = Table(title="profiles (--profile)")
    for col in ("name", "teacher epochs", "student epochs", "search budget (units)", "description"):
        profiles.add_column(col)
    for p in PROFILES.values():
        profiles.add_row(p.name, str(p.teacher_recipe.epochs), str(p.student_recipe.epochs), f"{p.search_budget:g}",
                         p.description)
    out.print(profiles)
    return 0


def build_jobs(args: argparse.Namespace, data_root: Path, cache_dir: Path) -> list[Job]:
    dataset = DATASETS.get(args.dataset)()
    methods = METHODS.select(args.methods)
    get_profile(args.profile)
    budget = get_budget(args.dataset, args.budget).name
    seeds = parse_seeds(args.seeds)
    folds = parse_seeds(args.folds) if args.folds else list(range(dataset.n_folds))
    bad = [f for f in folds if not 0 <= f < dataset.n_folds]
    if bad:
        raise UsageError(f"--folds: {args.dataset} has folds 0..{dataset.n_folds - 1}, got {bad}")
    overrides = parse_overrides(args.set or [])
    return [
        Job(JobKey(args.dataset, dataset.split_name(fold), budget, args.profile, method, seed,
                   variant_name(overrides.get(method, {}))),
            str(data_root), str(cache_dir), fold=fold, device=args.device, method_config=overrides.get(method, {}))
        for fold in folds for seed in seeds for method in methods
    ]


def variant_name(options: dict[str, Any]) -> str:
    """``{"aux_heads": False}`` -> ``aux_heads=false``: a run with non-default options is recorded apart."""
    return ",".join(f"{name}={value if isinstance(value, str) else json.dumps(value)}"
                    for name, value in sorted(options.items()))


def cmd_run(args: argparse.Namespace) -> int:
    data_root, cache_dir = resolve_data_root(args.data_root), resolve_cache_dir(args.cache_dir)
    jobs = build_jobs(args, data_root, cache_dir)
    dataset = DATASETS.get(args.dataset)()
    missing = dataset.missing_files(data_root)
    if missing and args.fetch:
        dataset.fetch(data_root)
    elif missing:
        raise DataError(f"{args.dataset}: {len(missing)} file(s) missing under {data_root} (e.g. {missing[0]}); "
                        f"run `python -m benchmark data fetch {args.dataset} --data-root {data_root}` or pass --fetch")
    dataset.prepare(data_root, cache_dir)  # fail fast on bad data; warm the caches before workers start
    results_dir = Path(args.results_dir)
    executor = make_executor(args.executor, args.workers, args.ray_address)
    counts = {"skipped": 0, "ok": 0, "failed": 0}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(f"{args.dataset} · {args.profile}", total=len(jobs))

        def on_event(kind: str, job: Job, payload: Any) -> None:
            if kind == "skipped":
                counts["skipped"] += 1
                progress.advance(task)
            elif kind == "teacher":
                if isinstance(payload, BaseException):
                    progress.console.print(f"[red]teacher for seed {job.key.seed} failed:[/] {payload}")
                elif "members" in payload:  # an ensemble teacher
                    f1s = ", ".join(f"{m.get('val_macro_f1', float('nan')):.3f}" for m in payload["members"])
                    progress.console.print(f"ensemble teacher seed {job.key.seed} ready "
                                           f"({len(payload['members'])} members, val macro-F1 {f1s})")
                else:
                    progress.console.print(f"teacher seed {job.key.seed} ready (val macro-F1 "
                                           f"{payload.get('val_macro_f1', float('nan')):.3f})")
            elif kind == "result":
                counts["ok" if payload.ok else "failed"] += 1
                progress.advance(task)
                label = escape(payload.key.method_label)
                line = (f"{label} seed {payload.key.seed}: test macro-F1 "
                        f"{payload.metrics['macro_f1']:.3f}" if payload.ok else
                        f"[red]{label} seed {payload.key.seed} failed:[/] {escape(payload.error or '')}")
                progress.console.print(line)

        run_many(jobs, executor, results_dir, resume=not args.no_resume, on_event=on_event)
    if counts["skipped"] == len(jobs):
        console.print(f"nothing to do: all {len(jobs)} job(s) already have results in {results_dir} "
                      "(--no-resume reruns them)")
    else:
        console.print(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} already done; "
                      f"records in {results_dir}. Regenerate tables with `python -m benchmark leaderboard`.")
    return 1 if counts["failed"] else 0


def dataset_highlights() -> dict[str, tuple[str, ...]]:
    return {name: tuple(getattr(cls, "highlight_classes", ())) for name, cls in DATASETS.items()}


def cmd_leaderboard(args: argparse.Namespace) -> int:
    results = load_results(Path(args.results_dir))
    if not results:
        raise ResultError(f"{args.results_dir}: no result records found (run `python -m benchmark run` first)")
    paths = write_leaderboards(results, Path(args.out), highlight=dataset_highlights())
    for path in paths:
        out.print(f"wrote {path}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    for path in args.paths:
        out.print(result_table(read_result(Path(path)), path))
    return 0


def result_table(result: RunResult, source: str) -> Table:
    table = Table(title=f"{source} — {result.key.label()} [{result.status}]", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    if not result.ok:
        table.add_row("error", result.error or "")
    m = result.metrics
    if m:
        table.add_row("test macro-F1 / acc / κ", f"{m['macro_f1']:.4f} / {m['accuracy']:.4f} / {m['kappa']:.4f}")
        per_class = m.get("per_class", {})
        order = DATASETS.get(result.key.dataset).classes if result.key.dataset in DATASETS else sorted(per_class)
        for cls in [c for c in order if c in per_class]:
            pc = per_class[cls]
            table.add_row(f"  {cls}", f"F1 {pc['f1']:.3f}  Se {pc['sensitivity']:.3f}  +P {pc['ppv']:.3f}  "
                                      f"n={pc['support']}")
    if result.val_metrics:
        table.add_row("val macro-F1", f"{result.val_metrics['macro_f1']:.4f}")
    if result.deployed_params is not None:
        table.add_row("deployed params / budget", f"{result.deployed_params:,} / {result.param_budget:,}")
    if result.macs is not None:
        table.add_row("MACs · CPU latency", f"{result.macs:,} · {result.latency_ms:.3f} ms/sample")
    table.add_row("search cost", f"{result.search_cost:.2f} units, {result.search_wall_s:.1f} s")
    table.add_row("train cost", f"{result.train_cost:.2f} units, {result.train_wall_s:.1f} s")
    table.add_row("arch", str(result.arch))
    table.add_row("split hash / data checksum", f"{result.split_hash} / {result.data_checksum}")
    prov = result.provenance
    table.add_row("provenance", f"{prov.get('git_commit', '?')} · {prov.get('hardware', '?')} · "
                                f"{prov.get('created_at', '?')}")
    return table


def cmd_data_fetch(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError(f"--jobs: expected a number of parallel downloads >= 1, got {args.jobs}")
    root = resolve_data_root(args.data_root)
    fetched = DATASETS.get(args.dataset)().fetch(root, base_url=args.base_url, jobs=args.jobs)
    console.print(f"{args.dataset}: {len(fetched)} file(s) downloaded and verified under {root}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    root = resolve_data_root(args.data_root)
    missing = DATASETS.get(args.dataset)().missing_files(root)
    if missing:
        console.print(f"{args.dataset}: {len(missing)} file(s) missing under {root}; "
                      f"run `python -m benchmark data fetch {args.dataset} --data-root {root}`")
        return 1
    console.print(f"{args.dataset}: complete under {root}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=(
        "KD-NAS Bench: compare knowledge-distillation + NAS methods for small biosignal models under one protocol."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log per-epoch training progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-root", help="folder in PhysioNet's layout (mitdb/, sleep-edf/); "
                                           "default $KDNAS_DATA, else ~/.cache/kdnas-bench/data")

    p = sub.add_parser("list", help="list methods, datasets, budget tiers and profiles")
    data_options(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run methods on a dataset and write one result record per job")
    p.add_argument("--methods", default="all", help="'all', a comma list (teacher,vanilla_kd) or wildcards (kd_*)")
    p.add_argument("--dataset", required=True, help="dataset id, see `list`")
    p.add_argument("--budget", help="parameter-budget tier of the deployed student (default: the dataset's default)")
    p.add_argument("--profile", default="quick",
                   help="smoke (seconds; tests) | quick (CPU; ~80 core-min per seed on mitbih) | full")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0,1,2 or 0-4 (default 0)")
    p.add_argument("--folds", help="cross-validation folds to run, e.g. 0,3 (default: all the dataset has)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (1 thread each on CPU, "
                                                          "one per GPU on GPU machines); default 1: in-process")
    p.add_argument("--executor", default="local", choices=("local", "ray"), help="local processes or a Ray cluster")
    p.add_argument("--ray-address", help="Ray cluster address for --executor ray (default: start a local one)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present) | cpu | cuda | cuda:N")
    p.add_argument("--results-dir", default="results", help="where result records go (default results/)")
    p.add_argument("--cache-dir", help="preprocessed data and teachers (default $KDNAS_CACHE, else "
                                       "~/.cache/kdnas-bench/cache)")
    p.add_argument("--set", action="append", metavar="METHOD.OPTION=VALUE", help="override a method's config "
                                                                                   "option (repeatable)")
    p.add_argument("--fetch", action="store_true", help="download missing data from PhysioNet first")
    p.add_argument("--no-resume", action="store_true", help="rerun jobs that already have an OK record")
    data_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", help="regenerate leaderboard markdown from the result records")
    p.add_argument("--results-dir", default="results", help="records to read (default results/)")
    p.add_argument("--out", default="leaderboards", help="output folder (default leaderboards/)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("show", help="show result records as tables")
    p.add_argument("paths", nargs="+", help="result JSON files")
    p.set_defaults(func=cmd_show)

    data = sub.add_parser("data", help="download or check datasets").add_subparsers(dest="data_command",
                                                                                    required=True, metavar="ACTION")
    p = data.add_parser("fetch", help="download missing files from PhysioNet and verify their checksums")
    p.add_argument("dataset", help="dataset id, e.g. mitbih")
    p.add_argument("--base-url", help="mirror in PhysioNet's layout (default https://physionet.org/files/)")
    p.add_argument("--jobs", type=int, default=4, metavar="N",
                   help="files downloaded at once (default 4; PhysioNet serves each connection slowly)")
    data_options(p)
    p.set_defaults(func=cmd_data_fetch)
    p = data.add_parser("info", help="say whether a dataset's files are all present")
    p.add_argument("dataset", help="dataset id, e.g. mitbih")
    data_options(p)
    p.set_defaults(func=cmd_data_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    handler = RichHandler(console=console, show_path=False)
    level = logging.DEBUG if args.verbose else logging.WARNING
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s")
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # a scheduler's SIGTERM stops a run as Ctrl-C does: finished records kept, workers stopped
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except (RegistryError, DataError, ResultError, ConfigError, UsageError) as err:
        console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted: finished records are kept; run the same command again to resume")
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
