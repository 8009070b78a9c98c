"""The selection-signal study behind protocol v2 on MIT-BIH (issue 9, part A).

Question: which validation signal, measured inside DS1, ranks architectures the way held-out *patients* rank them?

Design (inside DS1 only; DS2 is touched once, by ``confirm``):
- A pool of diverse budget-feasible architectures (``architecture_pool``): staged CNNs from MF-KD-NAS's grid,
  transformer sub-networks from MPKD-NAS's space and NAGO graphs from AutoKD's family, drawn with a fixed seed.
- ``develop``: DS1 is split by record into a validation pool (``V8``: the four records of protocol v1 plus four more,
  chosen for their S and V beats), two disjoint pseudo-test folds (``P1``, ``P2``: four records each, neither holding
  the S-rich 209 nor the F-rich 208) and training records (the rest). Each architecture is trained once per fold
  with the protocol's retraining recipe (one training loop: ``benchmark.engine``), and after every epoch the raw and
  the EMA weights are scored on every validation and pseudo-test record: per-record confusion matrices and per-class
  summed cross-entropy are stored, so any signal can be computed afterwards without retraining.
- ``analyse``: for every candidate signal (validation set x metric x weight rule) Kendall's tau between the signal and
  the pseudo-test macro-F1 of the same weights, per fold.
- ``confirm``: the chosen protocol (v2's validation records and rule) is trained on DS1 less its validation records
  and the same signal is compared with the DS2 macro-F1 - once.
- ``--seed k`` (k > 0) trains the pool again with another seed (stored as ``<name>.seed<k>.json``); ``analyse`` then
  also ranks each architecture's seed-mean signal against its seed-mean truth.
- ``ceiling``: how high a tau the confirmation's seed noise allows any signal, by seeds per architecture.

Run (from the repository root; 1 thread per process; any number of processes can run one phase together):
    python tools/selection_study.py develop --fold 1 --data-root ../shared/data
    python tools/selection_study.py develop --fold 2 --data-root ../shared/data
    python tools/selection_study.py analyse
    python tools/selection_study.py confirm --val V8 --data-root ../shared/data   [--seed 1, --seed 2]
    python tools/selection_study.py ceiling
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import chi2, kendalltau
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.engine import Batch, Engine, Objective, TensorSplit
from benchmark.metrics import count_params, metrics_from_confusion
from benchmark.nn.arch import ArchSpec, build_model
from benchmark.nn.staged import StagedCNNSpec
from benchmark.paths import resolve_cache_dir, resolve_data_root
from benchmark.protocol import BUDGET_TIERS, PROFILES, TrainRecipe
from benchmark.results import atomic_write_text
from datasets.base import SplitArrays
from datasets.mitbih import CLASSES, DS1, MITBIH, SCORED_CLASSES

OUT = Path(__file__).resolve().parents[1] / "docs" / "protocol-v2"
V4 = (124, 201, 205, 223)  # protocol v1's validation records
V8 = (*V4, 106, 114, 118, 215)  # + records with S (118: 96, 114: 12) and V beats (106: 520, 215: 164, 114: 43)
PSEUDO_TEST = {1: (101, 112, 119, 207), 2: (115, 116, 203, 220)}
VAL_SETS = {"V4": V4, "V8": V8}
EMA_DECAY = 0.998
MIN_ARCHS = 20  # the study reports tau for a phase once this many architectures are trained
STUDY_EPOCHS = PROFILES["quick"].student_recipe.epochs  # the retraining recipe, without early stopping


@dataclass(frozen=True)
class Split:
    """Train records, validation records (candidate signals) and held-out records (the truth), scored every epoch."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    @property
    def scored(self) -> tuple[int, ...]:
        return tuple(sorted((*self.val, *self.test)))


def develop_split(fold: int) -> Split:
    held = set(V8) | set(PSEUDO_TEST[fold])
    return Split(train=tuple(r for r in DS1 if r not in held), val=V8, test=PSEUDO_TEST[fold])


def architecture_pool(n_per_family: int = 7, seed: int = 0) -> list[dict[str, Any]]:
    """Diverse architectures under the ``small`` ECG budget: staged CNNs, transformer sub-networks, NAGO nets."""
    from methods.mf_kdnas import feasible_grid
    from methods.mf_kdnas import to_arch as staged_arch
    from methods.spaces import nago1d, transformer1d

    rng = random.Random(seed)
    tier = BUDGET_TIERS["mitbih"]["small"]
    in_channels, n_classes, budget = 4, len(CLASSES), tier.max_params
    base = StagedCNNSpec.from_dict(tier.default_student.params)
    pool: list[dict[str, Any]] = [{"name": "default_student", "arch": tier.default_student.to_dict()}]
    grid = feasible_grid(base, in_channels, n_classes, budget)
    for i, candidate in enumerate(rng.sample(grid, n_per_family)):
        pool.append({"name": f"staged{i}", "arch": staged_arch(base, candidate).to_dict()})
    space = transformer1d.SearchSpace.for_budget(budget, input_length=256)
    found = 0
    while found < n_per_family:
        choice = space.sample(rng)
        if transformer1d.standalone_params(space, choice, in_channels, n_classes) <= budget:
            pool.append({"name": f"transformer{found}", "arch": transformer1d.to_arch(space, choice).to_dict()})
            found += 1
    ranges, found, attempt = nago1d.GeneratorRanges(), 0, 0
    while found < n_per_family:
        attempt += 1
        params = nago1d.GeneratorParams(
            top_nodes=rng.randint(*ranges.top_nodes), top_k=rng.randint(*ranges.k), top_p=rng.uniform(*ranges.ws_p),
            mid_nodes=rng.randint(*ranges.mid_nodes), mid_p=rng.uniform(*ranges.er_p),
            bottom_nodes=rng.randint(*ranges.bottom_nodes), bottom_k=rng.randint(*ranges.k),
            bottom_p=rng.uniform(*ranges.ws_p))
        arch = nago1d.fit_width(nago1d.sample_structure(params, seed=attempt), 7, 2, in_channels, n_classes, budget)
        if arch is not None:
            pool.append({"name": f"nago{found}", "arch": arch.to_dict()})
            found += 1
    for entry in pool:
        entry["params"] = count_params(build_model(ArchSpec.from_dict(entry["arch"]), in_channels, n_classes))
    return pool


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--data-root`` and ``--cache-dir``, as every study's training command takes them."""
    parser.add_argument("--data-root")
    parser.add_argument("--cache-dir")


def publish(name: str, text: str) -> int:
    """Write a generated report to ``OUT / name`` (atomically) and print it; returns the command's exit code, 0."""
    atomic_write_text(OUT / name, text)
    print(text)
    return 0


def load_records(data_root: Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """Every DS1 and DS2 beat (inputs, labels, records) from the dataset's own cache."""
    bundle = MITBIH().load(data_root, cache_dir)
    parts = [bundle.train, bundle.val, bundle.test]
    return {"x": np.concatenate([p.x for p in parts]), "y": np.concatenate([p.y for p in parts]),
            "record": np.concatenate([p.groups for p in parts])}


def subset(data: dict[str, np.ndarray], records: tuple[int, ...]) -> SplitArrays:
    mask = np.isin(data["record"], records)
    return SplitArrays(data["x"][mask], data["y"][mask], data["record"][mask])


def per_record_scores(engine: Engine, model: nn.Module, split: SplitArrays) -> dict[str, Any]:
    """Per record: confusion matrix (rows true) and per-true-class summed cross-entropy."""
    logits = engine.predict(model, torch.as_tensor(split.x))
    y = torch.as_tensor(split.y)
    ce = F.cross_entropy(logits, y, reduction="none").numpy()
    pred = logits.argmax(1).numpy()
    out = {}
    for record in np.unique(split.groups):
        m = split.groups == record
        conf = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
        np.add.at(conf, (split.y[m], pred[m]), 1)
        ce_sum = np.bincount(split.y[m], weights=ce[m], minlength=len(CLASSES))
        out[str(int(record))] = {"confusion": conf.tolist(), "ce_sum": ce_sum.round(4).tolist()}
    return out


def cross_entropy(m: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
    return {"ce": F.cross_entropy(m(batch.x), batch.y)}


def train_and_score(arch: ArchSpec, train: SplitArrays, scored: SplitArrays, epochs: int, seed: int,
                    recipe: TrainRecipe | None = None, objective: Objective = cross_entropy) -> dict[str, Any]:
    """Train ``arch`` for ``epochs`` (no early stop) with ``recipe`` (default: the quick retraining recipe) and
    ``objective``, scoring raw weights on every scored record after each epoch and EMA weights after the last."""
    engine = Engine("cpu")
    torch.manual_seed(seed)
    model = build_model(arch, train.x.shape[1], len(CLASSES))
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(EMA_DECAY), use_buffers=True)
    recipe = replace(recipe or PROFILES["quick"].student_recipe, epochs=epochs, patience=None,
                     weights="best")  # scored every epoch; the increasing score keeps the last
    epochs_log: list[dict[str, Any]] = []

    def scorer(m: nn.Module) -> float:
        entry = {"raw": per_record_scores(engine, m, scored)}
        if len(epochs_log) == epochs - 1:  # the EMA weights are only ever used at the end
            entry["ema"] = per_record_scores(engine, ema.module, scored)
        epochs_log.append(entry)
        return float(len(epochs_log))  # latest epoch "best": the model keeps its final weights

    def step_hook(_step: int, m: nn.Module) -> None:
        ema.update_parameters(m)

    start = time.perf_counter()
    engine.fit(model, objective, TensorSplit.from_numpy(train.x, train.y, engine.device), recipe, scorer=scorer,
               seed=seed, step_hook=step_hook)
    return {"epochs": epochs_log, "wall_s": time.perf_counter() - start}


def run_pool(phase: str, split: Split, data: dict[str, np.ndarray], epochs: int, seed: int,
             only: str | None) -> None:
    """Train every architecture of the pool not yet stored for ``phase``. Several processes can share a phase: each
    takes the next architecture no other process holds (an ``fcntl`` lock the kernel drops when its holder exits)."""
    train, scored = subset(data, split.train), subset(data, split.scored)
    for entry in architecture_pool():
        if only and entry["name"] != only:
            continue
        path = run_path(phase, entry["name"], seed)
        with claim(phase, path.stem) as mine:
            if not mine or path.exists():
                continue
            result = train_and_score(ArchSpec.from_dict(entry["arch"]), train, scored, epochs, seed)
            record = {"phase": phase, "split": {"train": split.train, "val": split.val, "test": split.test},
                      "seed": seed, "epochs_planned": epochs, "ema_decay": EMA_DECAY, **entry, **result}
            atomic_write_text(path, json.dumps(record) + "\n")
        print(f"{phase} {entry['name']}: {result['wall_s']:.0f} s", flush=True)


def run_path(phase: str, name: str, seed: int) -> Path:
    """Where one architecture's run is stored: ``<name>.json`` for seed 0 (the study's first pass), else
    ``<name>.seed<k>.json``."""
    return OUT / "runs" / phase / (f"{name}.json" if seed == 0 else f"{name}.seed{seed}.json")


def stored_seeds(phase: str, name: str) -> set[int]:
    """The seeds of ``name`` stored for ``phase``, read from the file names ``run_path`` gives."""
    folder = OUT / "runs" / phase
    suffixes = (p.name[len(f"{name}.seed"):-len(".json")] for p in folder.glob(f"{name}.seed*.json"))
    seeds = {int(k) for k in suffixes if k.isdigit()}
    return seeds | ({0} if (folder / f"{name}.json").exists() else set())


def load_phase(phase: str) -> dict[str, dict[int, dict[str, Any]]]:
    """A phase's stored runs: architecture name -> seed -> run."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted((OUT / "runs" / phase).glob("*.json")):
        run = json.loads(path.read_text())
        runs.setdefault(run["name"], {})[int(run["seed"])] = run
    return runs


@contextlib.contextmanager
def claim(phase: str, name: str) -> Iterator[bool]:
    """Hold ``phase/name``'s lock while training it; yields False when another process holds it."""
    folder = Path(tempfile.gettempdir()) / "kdnas-selection-study"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{phase}-{name}.lock", "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- analysis -------------------------------------------------------------------------------------------------------
def pooled_metrics(epoch: dict[str, Any], records: tuple[int, ...]) -> dict[str, float]:
    conf = sum(np.array(epoch[str(r)]["confusion"]) for r in records)
    ce = sum(np.array(epoch[str(r)]["ce_sum"]) for r in records)
    metrics = metrics_from_confusion(conf, CLASSES, SCORED_CLASSES)
    support = conf.sum(1)
    scored = [CLASSES.index(c) for c in SCORED_CLASSES if support[CLASSES.index(c)] > 0]
    per = metrics["per_class"]
    return {
        "macro_f1": metrics["macro_f1"],
        "balanced_acc": float(np.mean([per[CLASSES[i]]["sensitivity"] for i in scored])),
        "sv_f1": float(np.mean([per["S"]["f1"], per["V"]["f1"]])),
        "neg_loss": -float(ce.sum() / support.sum()),
        "neg_balanced_loss": -float(np.mean([ce[i] / support[i] for i in scored])),
    }


METRICS = ("macro_f1", "balanced_acc", "sv_f1", "neg_loss", "neg_balanced_loss")
RULES = ("best_epoch", "final", "ema_final")


def signal_and_truth(run: dict[str, Any], val: tuple[int, ...], test: tuple[int, ...], metric: str,
                     rule: str) -> tuple[float, float]:
    """(validation signal, held-out macro-F1) of the weights ``rule`` keeps."""
    epochs = run["epochs"]
    if rule == "best_epoch":  # the engine's checkpoint picking, on this signal
        scores = [pooled_metrics(e["raw"], val)[metric] for e in epochs]
        best = int(np.argmax(scores))
        return scores[best], pooled_metrics(epochs[best]["raw"], test)["macro_f1"]
    weights = "ema" if rule == "ema_final" else "raw"
    last = epochs[-1][weights]
    return pooled_metrics(last, val)[metric], pooled_metrics(last, test)["macro_f1"]


def analyse(phases: list[str]) -> list[dict[str, Any]]:
    """Kendall tau of every candidate signal per phase: over the seed-0 runs (one seed per architecture, the
    study's first pass) and, where at least ``MIN_ARCHS`` architectures have several seeds, over each architecture's
    seed-mean signal and seed-mean truth (column ``<phase> xk``: k seeds each)."""
    rows = []
    for phase in phases:
        by_name = load_phase(phase)
        one_seed = [seeds[0] for seeds in by_name.values() if 0 in seeds]
        common = sorted(set.intersection(*(set(s) for s in by_name.values()))) if by_name else []
        groups = [(phase, [[run] for run in one_seed])]
        if len(common) > 1:
            groups.append((f"{phase} x{len(common)}", [[seeds[k] for k in common] for seeds in by_name.values()]))
        for column, archs in groups:
            if len(archs) < MIN_ARCHS:  # a tau over a few architectures of one family says nothing about the pool
                continue
            split = archs[0][0]["split"]
            test = tuple(split["test"])
            for (val_name, val), metric, rule in itertools.product(VAL_SETS.items(), METRICS, RULES):
                if not set(val) <= set(split["val"]):  # confirm: only the validation set protocol v2 kept
                    continue
                pairs = [np.mean([signal_and_truth(run, val, test, metric, rule) for run in runs], axis=0)
                         for runs in archs]
                signal, truth = zip(*pairs, strict=True)
                test_result = kendalltau(signal, truth)
                rows.append({"phase": column, "val": val_name, "metric": metric, "rule": rule,
                             "n_archs": len(archs), "tau": float(test_result.statistic),
                             "p": float(test_result.pvalue), "truth_mean": float(np.mean(truth)),
                             "truth_sd": float(np.std(truth))})
    return rows


# -- noise ceiling --------------------------------------------------------------------------------------------------
CHOSEN = ("V8", "macro_f1", "best_epoch")  # protocol v2's frozen signal (docs/protocol-v2.md section 4)


def reliability(total_var: float, seed_var: float, seeds: int) -> float:
    """Share of the across-architecture variance of a ``seeds``-seed mean score that the architectures cause.

    ``total_var``: variance across architectures of one-seed scores; ``seed_var``: variance across seeds of one
    architecture (assumed the same for all)."""
    between = max(total_var - seed_var, 0.0)
    return between / (between + seed_var / seeds) if between > 0 else 0.0


def tau_ceiling(signal_reliability: float, truth_reliability: float) -> float:
    """The expected Kendall tau of a signal whose noise-free part ranks architectures exactly as the truth's does,
    when both carry independent noise of these reliabilities (bivariate normal: tau = 2/pi * asin(r))."""
    return float(2 / np.pi * np.arcsin(np.sqrt(signal_reliability * truth_reliability)))


FrozenScores = dict[str, dict[int, np.ndarray]]  # architecture name -> seed -> [signal, truth] in %


def frozen_scores(phase: str) -> FrozenScores:
    """The frozen signal and the truth (held-out macro-F1 of the same weights), in %, of every stored run of
    ``phase``: architecture name -> seed -> [signal, truth]."""
    val, metric, rule = CHOSEN
    return {name: {seed: np.array(signal_and_truth(run, VAL_SETS[val], tuple(run["split"]["test"]), metric, rule)) * 100
                   for seed, run in seeds.items()} for name, seeds in load_phase(phase).items()}


def seed_variances(scores: FrozenScores, phase: str = "confirm") -> tuple[dict[str, float], str, int]:
    """Pooled across-seed variance (in %^2) of the frozen signal and of the truth over the phase's replicate seeds
    (``scores``, from ``frozen_scores``), where it came from and its degrees of freedom. (The first ceiling, before
    the replicates ran, took the seed noise from the CE student's five records; those were rerun in release 1, so that
    estimate is documented in docs/protocol-v2.md, not reproduced here.)"""
    replicated = [np.array(list(seeds.values())) for seeds in scores.values() if len(seeds) > 1]
    if not replicated:
        raise SystemExit(f"{OUT / 'runs' / phase}: no architecture has two seeds; run `confirm --seed 1` first")
    dof = sum(len(runs) - 1 for runs in replicated)
    pooled = sum(np.var(runs, axis=0, ddof=1) * (len(runs) - 1) for runs in replicated) / dof
    source = f"{phase}'s replicate seeds ({len(replicated)} architectures)"
    return {"signal": float(pooled[0]), "truth": float(pooled[1])}, source, dof


def ceiling_for(total: dict[str, float], noise: dict[str, float], seeds: int) -> tuple[float, float, float]:
    """(signal reliability, truth reliability, tau ceiling) of ``seeds``-seed means, from one-run variances across
    architectures (``total``) and across seeds (``noise``), each keyed "signal" and "truth"."""
    rs, rt = (reliability(total[side], noise[side], seeds) for side in ("signal", "truth"))
    return rs, rt, tau_ceiling(rs, rt)


def all_seeds_total_variance(scores: FrozenScores, noise: dict[str, float]) -> dict[str, float] | None:
    """The across-architecture variance of a one-run score estimated from every stored seed (``scores``, from
    ``frozen_scores``): the variance of the architectures' seed means less the seed noise they still carry, plus one
    run's seed noise. None unless every architecture has at least two seeds."""
    if not scores or min(len(seeds) for seeds in scores.values()) < 2:
        return None
    means = np.array([np.mean(list(seeds.values()), axis=0) for seeds in scores.values()])
    harmonic = len(scores) / sum(1 / len(seeds) for seeds in scores.values())
    spread = np.var(means, axis=0, ddof=1)
    return {side: max(float(spread[i]) - noise[side] / harmonic, 0.0) + noise[side]
            for i, side in enumerate(("signal", "truth"))}


def ceiling_markdown(phase: str = "confirm", seeds: tuple[int, ...] = (1, 2, 3, 5, 10)) -> str:
    """How high a tau the phase's noise allows, by the number of seeds averaged per architecture on both sides."""
    scores = frozen_scores(phase)
    val, metric, rule = CHOSEN
    pairs = np.array([s[0] for s in scores.values() if 0 in s])
    total = {"signal": float(np.var(pairs[:, 0], ddof=1)), "truth": float(np.var(pairs[:, 1], ddof=1))}
    noise, source, dof = seed_variances(scores, phase)
    lines = [f"# Noise ceiling of the selection study's `{phase}` phase", "",
             "Generated by `python tools/selection_study.py ceiling`; do not edit.", "",
             f"Signal: {val} {metric.replace('_', '-')}, {rule.replace('_', ' ')}; truth: held-out macro-F1 of the "
             f"same weights; {len(pairs)} architectures, one seed each. Seed noise from {source}.", "",
             "| | across architectures (one seed), var %^2 | across seeds, var %^2 | architecture share |",
             "|---|---:|---:|---:|"]
    for side in ("signal", "truth"):
        lines.append(f"| {side} | {total[side]:.2f} | {noise[side]:.2f} | "
                     f"{reliability(total[side], noise[side], 1):.2f} |")
    lines += ["", "Highest expected Kendall tau of a signal whose noise-free part ranks the architectures exactly as "
              "the truth's does, with k seeds averaged per architecture on both sides (tau = 2/pi asin r, "
              "r^2 = product of the two reliabilities):", "", "| seeds per architecture | signal reliability | "
              "truth reliability | tau ceiling |", "|---:|---:|---:|---:|"]
    for k in seeds:
        rs, rt, tau = ceiling_for(total, noise, k)
        lines.append(f"| {k} | {rs:.2f} | {rt:.2f} | {tau:+.2f} |")
    pooled_total = all_seeds_total_variance(scores, noise)
    if pooled_total:
        shares = [reliability(pooled_total[side], noise[side], 1) for side in ("signal", "truth")]
        ceilings = ", ".join(f"{ceiling_for(pooled_total, noise, k)[2]:+.2f} at {k}" for k in seeds)
        lines += ["", "With every stored seed (architecture means, one-way ANOVA) instead of seed 0 alone, the "
                  f"one-run variance across architectures is {pooled_total['signal']:.2f} (signal) and "
                  f"{pooled_total['truth']:.2f} %^2 (truth), architecture shares {shares[0]:.2f} and {shares[1]:.2f}; "
                  f"tau ceiling {ceilings} seeds."]
    low, high = (dof / chi2.ppf(q, dof) for q in (0.975, 0.025))  # 95 % interval of a variance with dof
    one_seed = [tau_ceiling(reliability(total["signal"], noise["signal"] * f, 1),
                            reliability(total["truth"], noise["truth"] * f, 1)) for f in (high, low)]
    lines += ["", f"The seed variances rest on {dof} degrees of freedom: their 95 % chi-square interval is "
              f"{low:.2f}-{high:.2f} times the estimate, which moves the one-seed ceiling to "
              f"{one_seed[0]:+.2f} ... {one_seed[1]:+.2f}."]
    return "\n".join(lines) + "\n"


def analysis_markdown(rows: list[dict[str, Any]]) -> str:
    """The Kendall-tau table, one row per candidate signal, best mean tau over the develop folds first."""
    import pandas as pd

    if not rows:
        counts = {p.name: len(list(p.glob("*.json"))) for p in sorted((OUT / "runs").glob("*")) if p.is_dir()}
        done = ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"
        return (f"# Selection-signal study: no phase has {MIN_ARCHS} trained architectures yet (trained so far: "
                f"{done})\n")
    table = pd.DataFrame(rows).pivot_table(index=["val", "metric", "rule"], columns="phase", values="tau")
    n = pd.DataFrame(rows).groupby("phase")["n_archs"].max().to_dict()
    develop = [c for c in table.columns if str(c).startswith("develop") and " " not in str(c)]  # one seed each
    table["develop mean"] = table[develop].mean(axis=1)
    table = table.sort_values("develop mean", ascending=False)
    columns = ["develop mean", *develop, *sorted(c for c in table.columns if c not in develop and c != "develop mean")]
    frozen = [row for row in rows if (row["val"], row["metric"], row["rule"]) == CHOSEN]
    lines = ["# Selection-signal study: Kendall tau between each validation signal and held-out macro-F1", "",
             "Generated by `python tools/selection_study.py analyse` from `docs/protocol-v2/runs/`; do not edit.",
             "Architectures per phase: " + ", ".join(f"{k} {v}" for k, v in sorted(n.items())) + ".", "",
             f"Protocol v2's frozen signal ({', '.join(CHOSEN)}): " + "; ".join(
                 f"{row['phase']} tau {row['tau']:+.3f} (p {row['p']:.3f}, n = {row['n_archs']})"
                 for row in sorted(frozen, key=lambda r: str(r["phase"]))) + ". A `<phase> xk` column averages k "
             "seeds per architecture on both sides.", "",
             "| validation records | metric | weights | " + " | ".join(f"tau {c}" for c in columns) + " |",
             "|---|---|---|" + "---:|" * len(columns)]
    for (val, metric, rule), row in table.iterrows():
        cells = " | ".join("" if pd.isna(row[c]) else f"{row[c]:+.3f}" for c in columns)
        lines.append(f"| {val} | {metric} | {rule} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("develop", "confirm"):
        p = sub.add_parser(name)
        add_data_options(p)
        p.add_argument("--epochs", type=int, default=STUDY_EPOCHS)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--only", help="one architecture of the pool by name")
        if name == "develop":
            p.add_argument("--fold", type=int, choices=sorted(PSEUDO_TEST), required=True)
        else:
            p.add_argument("--val", choices=sorted(VAL_SETS), required=True)
    sub.add_parser("analyse")
    sub.add_parser("pool")
    sub.add_parser("ceiling", help="how high a tau the confirmation's seed noise allows")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "pool":
        for entry in architecture_pool():
            print(entry["name"], entry["params"])
        return 0
    if args.command == "ceiling":
        return publish("ceiling.md", ceiling_markdown())
    if args.command == "analyse":
        rows = analyse(["develop1", "develop2", "confirm"])
        atomic_write_text(OUT / "analysis.json", json.dumps(rows, indent=1) + "\n")
        atomic_write_text(OUT / "analysis.md", analysis_markdown(rows))
        print(analysis_markdown(rows))
        return 0
    data = load_records(resolve_data_root(args.data_root), resolve_cache_dir(args.cache_dir))
    if args.command == "develop":
        run_pool(f"develop{args.fold}", develop_split(args.fold), data, args.epochs, args.seed, args.only)
    else:
        from datasets.mitbih import DS2

        val = VAL_SETS[args.val]
        run_pool("confirm", Split(train=tuple(r for r in DS1 if r not in val), val=val, test=DS2), data, args.epochs,
                 args.seed, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
