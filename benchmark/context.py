"""The run context: everything a method may use (train/val data, teachers, budget meters, engine, recipe).

The test split is not here: the runner keeps it and evaluates the returned model once. Isolation is by
construction: the context holds data, trained teachers and meters, never a store, a cache or a path, so nothing
reachable from it leads to test arrays, test logits, test paths or test indices (``tests/test_isolation.py`` walks
every object reachable from a method's context and checks it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.engine import (
    FORWARD_PASSES,
    CostMeter,
    Engine,
    EpochHook,
    FitResult,
    MacsPerSample,
    Objective,
    Scorer,
    StepHook,
    TensorSplit,
)
from benchmark.metrics import classification_metrics, count_macs
from benchmark.nn.arch import ArchSpec, build_model
from benchmark.nn.ensemble import mean_probability_logits
from benchmark.protocol import Protocol, TrainRecipe
from benchmark.teachers import Teacher
from datasets.base import DataView

TeacherProvider = Callable[[int], Teacher]  # teacher seed -> trained teacher from the shared store


class TeacherSet:
    """The teachers a run may use, loaded by the runner before the method starts: a callable ``seed -> Teacher``
    that holds the trained teachers only (weights and cached train/validation logits), never the store they came
    from or its folder. Asking for a seed the runner did not prepare is an error, not a load."""

    def __init__(self, teachers: dict[int, Teacher] | None = None) -> None:
        self._teachers: dict[int, Teacher] = dict(teachers or {})

    def add(self, seed: int, teacher: Teacher) -> None:
        self._teachers[seed] = teacher

    def seeds(self) -> list[int]:
        return sorted(self._teachers)

    def __call__(self, seed: int) -> Teacher:
        if seed not in self._teachers:
            raise KeyError(f"teacher of seed {seed} was not prepared for this run (prepared: {self.seeds()}); a "
                           "method declares the teachers it needs with Method.uses_teacher / uses_ensemble")
        return self._teachers[seed]



def member_seed(seed: int, offset: int) -> int:
    """The store seed of ensemble member ``offset`` of a run's ``seed`` (member 0 is the seed's own teacher)."""
    return seed + 1000 * offset


@dataclass
class RunContext:
    """Passed to ``Method.search`` and ``Method.distill``: everything a method may use. It holds no store, cache or
    path (its teachers are a ``TeacherSet`` of loaded teachers), so the test split is out of a method's reach."""

    protocol: Protocol
    data: DataView
    engine: Engine
    seed: int
    teacher_provider: TeacherProvider
    search_meter: CostMeter
    train_meter: CostMeter
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("benchmark.method"))
    notes: dict[str, Any] = field(default_factory=dict)  # free-form method diagnostics kept in the record
    search_trace: list[dict[str, Any]] = field(default_factory=list)  # see ``record_candidate``
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)  # derived data computed once (``val_rows``)

    @cached_property
    def train(self) -> TensorSplit:
        return TensorSplit.from_numpy(self.data.train.x, self.data.train.y, self.engine.device)

    @cached_property
    def val(self) -> TensorSplit:
        return TensorSplit.from_numpy(self.data.val.x, self.data.val.y, self.engine.device)

    @property
    def recipe(self) -> TrainRecipe:
        """The protocol's retraining recipe for final students (the same for every method)."""
        return self.protocol.profile.student_recipe

    def search_recipe(self, epochs: int) -> TrainRecipe:
        """The retraining recipe shortened to ``epochs`` for a search's training (a supernet, a trial, a fidelity
        step): no early stop, every epoch scored and the best epoch's weights kept, whatever weight rule the final
        recipe uses (a schedule-length EMA means nothing over a few epochs, and Hyperband reports every epoch)."""
        return replace(self.recipe, epochs=epochs, patience=None, weights="best")

    @property
    def default_student(self) -> ArchSpec:
        return self.protocol.budget.default_student

    @property
    def max_params(self) -> int:
        return self.protocol.budget.max_params

    def teacher(self, offset: int = 0) -> Teacher:
        """The shared teacher for this run's seed (``offset`` > 0: further ensemble members)."""
        return self.teacher_provider(member_seed(self.seed, offset))

    def ensemble(self) -> list[Teacher]:
        """The ``protocol.ensemble_size`` members of the ensemble teacher (offsets 0..M-1 of ``teacher``); like the
        single teacher they are the protocol's, charged to nobody's budget."""
        return [self.teacher(offset) for offset in range(self.protocol.ensemble_size)]

    def kd_teachers(self) -> list[Teacher]:
        """The teachers the protocol's KD source consists of: the ensemble's members when ``protocol.kd_source`` is
        "ensemble", else the seed's shared teacher alone."""
        return self.ensemble() if self.protocol.kd_source == "ensemble" else [self.teacher()]

    def kd_logits(self) -> torch.Tensor:
        """Soft-label logits of the protocol's KD source on the training split, read from the teacher store's cache:
        the shared teacher's logits, or for the ensemble the log of its members' mean probabilities (exactly what the
        ``ensemble`` reference row outputs, so the soft labels are the ensemble the leaderboard shows)."""
        return mean_probability_logits([t.train_logits for t in self.kd_teachers()])

    def build(self, arch: ArchSpec) -> nn.Module:
        in_channels = self.data.input_shape[0]
        return build_model(arch, in_channels, self.data.n_classes).to(self.engine.device)

    def val_metrics(self, model: nn.Module, forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
                    rows: np.ndarray | None = None) -> dict[str, Any]:
        """Metrics on the validation split, or on its ``rows`` (``val_rows``) only."""
        x, y = self.val.x, self.data.val.y
        if rows is not None:
            x, y = x[torch.as_tensor(rows, device=x.device)], y[rows]
        logits = self.engine.predict(model, x, forward)
        return metrics_from_logits(y, logits.numpy(), self.data.classes, self.data.scored_classes)

    def val_score(self, model: nn.Module, rows: np.ndarray | None = None) -> float:
        """Validation macro-F1 over the scored classes: the only thing methods select on (``rows``: on that part of
        the validation split only, a cheaper fidelity for a search's many evaluations)."""
        return float(self.val_metrics(model, rows=rows)["macro_f1"])

    def val_rows(self, fraction: float) -> np.ndarray | None:
        """A fixed, class-stratified share of the validation split for a search's evaluations: every class keeps
        ``fraction`` of its samples (rounded up, so none disappears), drawn from the run's seed, sorted; None for the
        whole split (``fraction`` >= 1). The same rows on every call, so candidates are compared on the same data."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"a validation share must be in (0, 1], got {fraction}")
        if fraction >= 1.0:
            return None
        key = f"val_rows:{fraction}"
        if key not in self._cache:
            rng = np.random.default_rng(self.seed)
            y = np.asarray(self.data.val.y)
            picked = [rng.permutation(np.flatnonzero(y == c))[:math.ceil(fraction * np.sum(y == c))]
                      for c in np.unique(y)]
            self._cache[key] = np.sort(np.concatenate(picked))
        return self._cache[key]

    def macs(self, model: nn.Module) -> int:
        """Forward MACs of ``model`` for one input sample (its active path, for a supernet)."""
        return count_macs(model, self.data.input_shape)

    def charge_forward(self, n_samples: int, macs_per_sample: float, phase: str = "search") -> float:
        """Charge ``n_samples`` forward-only passes of a ``macs_per_sample`` network (an evaluation, a frozen teacher
        run live) to the search (or, ``phase="final"``, the training) meter; returns the units charged."""
        meter = self.search_meter if phase == "search" else self.train_meter
        return meter.charge(n_samples, macs_per_sample, passes=FORWARD_PASSES)

    def val_size(self, rows: np.ndarray | None = None) -> int:
        """Samples one validation pass scores: the whole split, or its ``rows`` (``val_rows``)."""
        return len(self.val) if rows is None else len(rows)

    def val_pass_cost(self, model: nn.Module, rows: np.ndarray | None = None) -> float:
        """Search-budget units one forward pass of ``model`` over the validation split (or its ``rows``) costs."""
        return self.search_meter.units_of(FORWARD_PASSES * self.macs(model) * self.val_size(rows))

    def search_val_score(self, model: nn.Module, rows: np.ndarray | None = None) -> float:
        """``val_score`` during a search: its forward pass over the validation split (or its ``rows``, see
        ``val_rows``) is charged to the budget."""
        self.charge_forward(self.val_size(rows), self.macs(model))
        return self.val_score(model, rows)

    def report(self, name: str, value: float) -> None:
        """A number the leaderboard's method notes show (mean over seeds), kept in the record as
        ``provenance.notes.reported[name]``: what a run measured about its method, named with its unit."""
        self.notes.setdefault("reported", {})[name] = float(value)

    def record_candidate(self, candidate: dict[str, Any], fidelity: str, score: float, cost: float) -> None:
        """Append one evaluated candidate to the search trace stored in the record: what was evaluated (an arch or
        hyperparameters, as data), at which fidelity (e.g. ``"2 epochs on 10% of train"``), its selection score and
        the cost units it took."""
        self.search_trace.append({"candidate": candidate, "fidelity": fidelity, "score": float(score),
                                  "cost": float(cost)})

    def fit(self, model: nn.Module, objective: Objective, *, phase: str, recipe: TrainRecipe | None = None,
            extras: dict[str, torch.Tensor] | None = None, step_hook: StepHook | None = None,
            epoch_hook: EpochHook | None = None, scorer: Scorer | None = None,
            parameters: list[nn.Parameter] | None = None, macs_per_sample: MacsPerSample | None = None,
            subset: torch.Tensor | None = None) -> FitResult:
        """Train with the engine. ``phase="search"`` charges the search budget (and stops when it is spent);
        ``phase="final"`` trains the deployed student with the protocol's retraining recipe on the whole
        training split. ``subset`` (search only): train on these rows of the training split (extras are given
        for the whole split and sliced alike); the budget is charged per sample, so a subset epoch costs its
        share of a full one. Compute is charged by MACs (see ``Engine.fit``'s ``macs_per_sample``)."""
        if phase not in ("search", "final"):
            raise ValueError(f"phase must be 'search' or 'final', not {phase!r}")
        if phase == "final" and recipe is not None and recipe != self.recipe:
            raise ValueError("the final student must be trained with the protocol's retraining recipe")
        if phase == "final" and subset is not None:
            raise ValueError("the final student trains on the whole training split")
        meter = self.search_meter if phase == "search" else self.train_meter
        train = self.train.with_extras(**extras) if extras else self.train
        if subset is not None:
            train = train.rows(subset)
        if recipe is None:
            recipe = self.recipe if phase == "final" else self.search_recipe(self.recipe.epochs)
        return self.engine.fit(model, objective, train, recipe, scorer=scorer or self.val_score,
                               seed=self.seed, meter=meter, step_hook=step_hook, epoch_hook=epoch_hook,
                               parameters=parameters, macs_per_sample=macs_per_sample)


def metrics_from_logits(y_true: np.ndarray, logits: np.ndarray, classes: tuple[str, ...],
                        scored_classes: tuple[str, ...]) -> dict[str, Any]:
    return classification_metrics(y_true, logits.argmax(axis=1), classes, scored_classes)
