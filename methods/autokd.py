"""AutoKD: Bayesian optimisation over a student architecture family and the KD hyperparameters.

Paper: Eyono, Carlucci, Esperança, Ru & Torr, "AutoKD: Automatic Knowledge Distillation Into A Student
Architecture Family", arXiv:2111.03555 (2021; first as "Students in the right family can learn from good
teachers", ICLR 2021 submission). No official code is public; the student family is NAGO's generator (Ru et
al. NeurIPS 2020, code github.com/rubinxin/vega_NAGO), implemented in 1-D in ``methods/spaces/nago1d.py``.

What AutoKD does, and what is implemented here:

1. The search space is a *family* of students — the hyperparameters of NAGO's hierarchical graph generator
   (top WS(N_t, K_t, P_t), middle ER(N_m, P_m), bottom WS(N_b, K_b, P_b)) — joined with the KD loss's
   hyperparameters, temperature τ and weight α. The loss is the standard Hinton KD loss
   (1-α)·CE + α·τ²·KL (the paper keeps "the traditional KD loss"), from the protocol's KD source's cached logits
   (``ctx.kd_logits``: the ensemble teacher on MIT-BIH).
2. The optimiser is multi-fidelity Bayesian optimisation, BOHB (Falkner et al. 2018), as in NAGO: here Optuna's
   TPE sampler with its Hyperband pruner, the combination Optuna documents as its BOHB equivalent. A trial draws
   one network from the proposed generator, scales its width to the parameter budget and distils it; its
   fidelity (Hyperband's resource) is the number of epochs over a fixed ``trial_subset`` (10%) sample of the
   training split, 1 to ``max_resource`` (3). It reports its validation macro-F1 after every such epoch and the
   pruner stops unpromising trials at Hyperband's rungs (successive halving with rate ``eta`` = 2, brackets of
   minimum resource 1 and 2).
3. Trials continue until the search budget is spent (every training pass and validation pass is charged).
   The first ``n_startup_trials`` (10, Optuna's default) are TPE's random start-up; every later trial is
   proposed by TPE's model of the finished (complete and pruned) trials. How many of each ran is in the
   record's notes (``search.random_trials``, ``search.model_based_trials``).

How many candidates: the trials the search budget pays for (``max_trials`` caps them), every one in the record's
search trace; a trial costs a few subset epochs plus a scoring pass, depending on where Hyperband stops it. What
each run measured (trials, random and model-based, complete and pruned) is in its notes; the leaderboard's search
notes count them.

Final trainings: the row "as published" is the best trial's network retrained with Hinton KD at the trial's own τ
and α (the paper's); the runner also retrains it with the protocol's one KD recipe (``vanilla_kd``'s τ and α,
``Method.protocol_retrain``), so the leaderboard separates what the searched network and the searched τ, α bring.

Deviations, each with its reason:
- 1-D NAGO with narrower node ranges and depthwise-separable 1-D ops (see ``nago1d``): the paper's 2-D
  images and budgets of millions of parameters have no counterpart here.
- Fidelity is epochs over a training subset, within the shared search budget, instead of the paper's GPU-days
  of full-data epochs; the number of trials is whatever the budget pays for. The subset is the same for every
  trial (drawn once from the run's seed), so Hyperband compares trials on the same data.
- The final student is the network the best trial evaluated, not a fresh draw from its generator: the
  paper samples from the learnt family; under a fixed search budget a fresh draw would be unvalidated.
- τ ∈ [1, 20] (log scale) and α ∈ [0, 1]: the ranges are not given in the paper's text available here;
  these cover the values used across the KD literature (τ 1-20, α from pure CE to pure KD).
- Selection uses validation macro-F1 only (the protocol's single selection signal), scored during the search on a
  fixed class-stratified half of the validation split (``val_subset`` 0.5, the same rows for every trial): a
  validation pass of a NAGO net costs several subset epochs, and with whole-split scoring release 1's budget paid
  for fewer than the 30 trials the benchmark asks of a search. The final student is retrained and its epoch chosen
  on the whole validation split, as for every method.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import optuna
import torch
from torch import Tensor, nn

from benchmark.candidates import AuditUnsupported, UnbuildableCandidate
from benchmark.context import RunContext
from benchmark.nn.arch import ArchSpec
from benchmark.protocol import TrainRecipe
from methods.base import Method, MethodConfig, register_method
from methods.config_checks import Check, at_least, between, positive
from methods.losses import hinton_kd_objective
from methods.spaces.nago1d import GeneratorParams, GeneratorRanges, describe, fit_width, sample_structure
from methods.vanilla_kd import distill_with_hinton_kd


@dataclass(frozen=True)
class AutoKDConfig(MethodConfig):
    checks: ClassVar[dict[str, Check]] = {
        "trial_subset": between(0, 1, low_open=True),
        "val_subset": between(0, 1, low_open=True),
        "max_resource": at_least(1),
        "eta": at_least(2),
        "n_startup_trials": at_least(0),
        "max_trials": at_least(1),
        "temperature": positive(),
        "alpha": between(0, 1),
    }
    trial_subset: float = 0.1  # a trial trains on this fraction of the training split (the same rows for all)
    val_subset: float = 0.5  # ... and is scored on this class-stratified share of validation (``RunContext.val_rows``)
    max_resource: int = 3  # a trial's maximum fidelity: epochs over that subset (Hyperband's max_resource)
    eta: int = 2  # successive-halving rate of the Hyperband pruner (NAGO's BOHB setting in ``nago.yml``)
    n_startup_trials: int = 10  # random trials before TPE models the results (Optuna's default)
    max_trials: int = 200  # a cap; the search budget is what normally ends the search
    temperature: float = 4.0  # τ and α used without search (``search=false``)
    alpha: float = 0.9
    search: bool = True  # False: the default student with the default τ, α (vanilla KD)


@register_method("autokd")
class AutoKD(Method):
    """BOHB (TPE + Hyperband) over NAGO-1D generator hyperparameters and KD τ, α; then retrain the best."""

    Config = AutoKDConfig
    summary = "Eyono et al. 2021: BOHB over a NAGO student family + KD τ, α, then Hinton KD retraining"

    def __init__(self, config: MethodConfig | None = None) -> None:
        super().__init__(config)
        self.kd = {"temperature": self.config.temperature, "alpha": self.config.alpha}

    def search(self, ctx: RunContext) -> ArchSpec:
        cfg = self.config
        if not cfg.search:
            return ctx.default_student
        if not 0 < cfg.trial_subset <= 1:
            raise ValueError(f"autokd trial_subset must be in (0, 1], got {cfg.trial_subset}")
        teacher_logits = {"teacher_logits": ctx.kd_logits()}
        stem = ctx.default_student.params
        max_epochs = max(1, cfg.max_resource)
        recipe = ctx.search_recipe(max_epochs)
        n_train = len(ctx.train)
        generator = torch.Generator().manual_seed(ctx.seed)
        subset = torch.randperm(n_train, generator=generator)[:max(1, round(cfg.trial_subset * n_train))]
        with _quiet_optuna():
            return self._search(ctx, teacher_logits, stem, max_epochs, recipe, subset)

    def _search(self, ctx: RunContext, teacher_logits: dict[str, Tensor], stem: dict[str, Any], max_epochs: int,
                recipe: TrainRecipe, subset: Tensor) -> ArchSpec:
        cfg = self.config
        fraction = len(subset) / len(ctx.train)
        val_rows = ctx.val_rows(cfg.val_subset)
        in_channels, n_classes = ctx.data.input_shape[0], ctx.data.n_classes
        study = optuna.create_study(
            study_name=f"autokd-seed{ctx.seed}",  # Hyperband assigns brackets by a hash of this name: keep it fixed
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=cfg.n_startup_trials),
            pruner=make_pruner(max_epochs, cfg.eta),
        )
        archs: dict[int, ArchSpec] = {}
        trace: list[dict[str, Any]] = []
        while not ctx.search_meter.exhausted and len(study.trials) < cfg.max_trials:
            trial = study.ask()
            generator, kd = suggest(trial, GeneratorRanges())
            structure = sample_structure(generator, seed=ctx.seed * 100_003 + trial.number)
            arch = fit_width(structure, int(stem.get("stem_kernel", 7)), int(stem.get("stem_stride", 2)),
                             in_channels, n_classes, ctx.max_params)
            entry: dict[str, Any] = {"trial": trial.number, "generator": generator.to_dict(), **kd,
                                     "sampler": "random" if trial.number < cfg.n_startup_trials else "tpe"}
            trace.append(entry)
            candidate = {"trial": trial.number, "generator": generator.to_dict(), **kd}  # trial: its structure's seed
            if arch is None:  # even base width 4 is over the budget: the worst score, no training
                study.tell(trial, 0.0)
                entry.update(state="over budget", score=0.0, epochs=0)
                ctx.record_candidate(candidate, "not trained: over the parameter budget", 0.0, 0.0)
                continue
            archs[trial.number] = arch
            entry["arch"] = describe(arch)
            scores: list[float] = []

            def scorer(model: nn.Module, trial: optuna.Trial = trial, scores: list[float] = scores) -> float:
                score = ctx.search_val_score(model, val_rows)
                scores.append(score)
                trial.report(score, len(scores))
                if not ctx.search_meter.exhausted and trial.should_prune():
                    raise optuna.TrialPruned()
                return score

            with torch.random.fork_rng(devices=[]):  # every trial starts from the same seeded initialisation
                torch.manual_seed(ctx.seed)
                model = ctx.build(arch)
            units_before = ctx.search_meter.units
            try:
                ctx.fit(model, hinton_kd_objective(kd["alpha"], kd["temperature"], ctx.recipe.label_smoothing),
                        phase="search", recipe=recipe, extras=teacher_logits, scorer=scorer, subset=subset)
                study.tell(trial, max(scores))
                state = "complete" if len(scores) == max_epochs else "stopped by budget"
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                state = "pruned"
            entry.update(state=state, score=max(scores), epochs=len(scores))
            ctx.record_candidate({**candidate, "arch": entry["arch"]},
                                 f"{len(scores)} epoch(s) on {fraction:.0%} of train, KD, scored on "
                                 f"{cfg.val_subset:.0%} of val ({state})", max(scores),
                                 ctx.search_meter.units - units_before)
            ctx.log.info("autokd trial %d (%s, τ=%.2f, α=%.2f): val macro-F1 %.3f after %d epoch(s), %s",
                         trial.number, entry["arch"], kd["temperature"], kd["alpha"], entry["score"],
                         entry["epochs"], entry["state"])
        best = pick_best(trace, max_epochs)
        samplers = [t["sampler"] for t in trace]
        ctx.notes["search"] = {"trials": trace, "max_trial_epochs": max_epochs, "trial_subset": fraction,
                               "val_subset": cfg.val_subset,
                               "best_trial": best, "random_trials": samplers.count("random"),
                               "model_based_trials": samplers.count("tpe")}
        if best is None:  # the budget paid for no trained trial: fall back to the default student
            ctx.log.warning("autokd: no trial trained within the search budget; using the default student")
            return ctx.default_student
        chosen = trace[best]
        self.kd = {"temperature": chosen["temperature"], "alpha": chosen["alpha"]}
        return archs[chosen["trial"]]

    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        ctx.notes["kd"] = dict(self.kd)
        return distill_with_hinton_kd(arch, ctx, self.kd["alpha"], self.kd["temperature"])

    def candidate_arch(self, candidate: dict[str, Any], ctx: RunContext) -> ArchSpec:
        """A traced trial's network: its generator's structure (seeded by the run's seed and the trial number), width
        fitted to the budget, exactly as the search built it."""
        if "trial" not in candidate:
            raise AuditUnsupported("this autokd record predates trial numbers in its search trace; rerun it")
        stem = ctx.default_student.params
        structure = sample_structure(GeneratorParams(**candidate["generator"]),
                                     seed=ctx.seed * 100_003 + int(candidate["trial"]))
        arch = fit_width(structure, int(stem.get("stem_kernel", 7)), int(stem.get("stem_stride", 2)),
                         ctx.data.input_shape[0], ctx.data.n_classes, ctx.max_params)
        if arch is None:
            raise UnbuildableCandidate(f"trial {candidate['trial']} is over the parameter budget at every width")
        return arch

    def retrain_candidate(self, candidate: dict[str, Any], ctx: RunContext) -> nn.Module:
        """A trial retrained as the final student would be: Hinton KD with the trial's own τ and α."""
        arch = self.candidate_arch(candidate, ctx)
        return distill_with_hinton_kd(arch, ctx, float(candidate["alpha"]), float(candidate["temperature"]))


def make_pruner(max_epochs: int, eta: int) -> optuna.pruners.BasePruner:
    """BOHB's multi-fidelity half: Hyperband over 1..``max_epochs`` epochs with halving rate ``eta``."""
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=eta)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence Optuna's per-trial INFO lines while this search runs (the trace goes to the record's notes)."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def suggest(trial: optuna.Trial, ranges: GeneratorRanges) -> tuple[GeneratorParams, dict[str, float]]:
    """The trial's generator hyperparameters and KD τ, α."""
    generator = GeneratorParams(
        top_nodes=trial.suggest_int("top_nodes", *ranges.top_nodes),
        top_k=trial.suggest_int("top_k", *ranges.k),
        top_p=trial.suggest_float("top_p", *ranges.ws_p),
        mid_nodes=trial.suggest_int("mid_nodes", *ranges.mid_nodes),
        mid_p=trial.suggest_float("mid_p", *ranges.er_p),
        bottom_nodes=trial.suggest_int("bottom_nodes", *ranges.bottom_nodes),
        bottom_k=trial.suggest_int("bottom_k", *ranges.k),
        bottom_p=trial.suggest_float("bottom_p", *ranges.ws_p),
    )
    kd = {"temperature": trial.suggest_float("temperature", 1.0, 20.0, log=True),
          "alpha": trial.suggest_float("alpha", 0.0, 1.0)}
    return generator, kd


def pick_best(trace: list[dict[str, Any]], max_epochs: int) -> int | None:
    """Index of the best trained trial: the best score among full-fidelity trials, else among all trained."""
    trained = [i for i, t in enumerate(trace) if t.get("epochs", 0) > 0]
    full = [i for i in trained if trace[i]["epochs"] == max_epochs]
    pool = full or trained
    return max(pool, key=lambda i: trace[i]["score"]) if pool else None
