"""The protocol every method runs under: budget tiers, default students, teacher, profiles, recipes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from benchmark.nn.arch import ArchSpec
from benchmark.nn.staged import StagedCNNSpec, StageSpec
from benchmark.registry import RegistryError


@dataclass(frozen=True)
class TrainRecipe:
    """How the engine trains: the same recipe for every method's final student at a given profile."""

    epochs: int
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int | None = None  # epochs without validation improvement before stopping; None: never
    label_smoothing: float = 0.0
    balance_power: float = 0.5  # sample class c with weight count_c**-power (0: plain shuffling)
    grad_clip: float | None = 5.0

    def with_epochs(self, epochs: int) -> TrainRecipe:
        return replace(self, epochs=epochs)


@dataclass(frozen=True)
class BudgetTier:
    """A named parameter budget (deployed student only) and the protocol's default student for it."""

    name: str
    max_params: int
    default_student: ArchSpec


@dataclass(frozen=True)
class Profile:
    """How much work: teacher and student recipes and the search budget in cost units.

    One cost unit is one epoch over the training split (``n_train`` sample passes, forward + backward) of
    whatever model is being trained, charged by the engine; teacher outputs read from the cache are free.
    """

    name: str
    teacher_recipe: TrainRecipe
    student_recipe: TrainRecipe
    search_budget: float
    description: str = ""


@dataclass(frozen=True)
class Protocol:
    """Everything fixed across methods for one (dataset, split, budget tier, profile)."""

    dataset: str
    split: str
    budget: BudgetTier
    profile: Profile
    teacher_arch: ArchSpec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _staged(stem: int, stages: list[tuple[int, int, int, int]], block: str, expand: float = 1.0,
            se: bool = False, stem_stride: int = 2) -> ArchSpec:
    """A ``staged_cnn`` spec from (channels, depth, stride, kernel) tuples."""
    spec = StagedCNNSpec(
        stem_channels=stem, stem_stride=stem_stride,
        stages=tuple(StageSpec(c, d, s, k, block=block, expand=expand, se=se) for c, d, s, k in stages),
    )
    return ArchSpec("staged_cnn", spec.to_dict())


# Teachers: residual CNNs whose early striding keeps MACs low (stem stride 2, then stride 2 per stage).
TEACHERS: dict[str, ArchSpec] = {
    "ecg": _staged(24, [(32, 1, 2, 7), (64, 2, 2, 5), (96, 2, 2, 5), (128, 1, 2, 3)], "res"),  # 364k params
    "tiny": _staged(16, [(16, 1, 2, 5), (24, 1, 2, 3), (32, 1, 2, 3)], "res"),
}

# Budget tiers per dataset (deployed-student parameters) with their default students.
_ECG_TIERS = {
    "tiny": BudgetTier("tiny", 8_000, _staged(8, [(16, 1, 2, 7), (24, 1, 2, 5), (32, 2, 2, 5), (48, 1, 2, 3)], "sep")),
    "small": BudgetTier(
        "small", 32_000, _staged(16, [(24, 1, 2, 7), (48, 2, 2, 5), (64, 2, 2, 5), (96, 1, 2, 3)], "sep")),
    "medium": BudgetTier(
        "medium", 128_000, _staged(24, [(32, 1, 2, 7), (64, 2, 2, 5), (128, 2, 2, 5), (192, 2, 2, 3)], "sep")),
}
_TOY_TIERS = {
    "tiny": BudgetTier("tiny", 2_000, _staged(8, [(8, 1, 2, 5), (12, 1, 2, 3), (16, 1, 2, 3)], "sep")),
    "small": BudgetTier("small", 8_000, _staged(8, [(12, 1, 2, 5), (16, 1, 2, 3), (32, 1, 2, 3)], "sep")),
}
BUDGET_TIERS: dict[str, dict[str, BudgetTier]] = {"mitbih": _ECG_TIERS, "synthetic": _TOY_TIERS}
DEFAULT_BUDGET = {"mitbih": "small", "synthetic": "small"}
DATASET_TEACHER = {"mitbih": "ecg", "synthetic": "tiny"}

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke", TrainRecipe(epochs=1, batch_size=64), TrainRecipe(epochs=1, batch_size=64), search_budget=2.0,
        description="seconds on the synthetic dataset; for tests, not for results",
    ),
    "quick": Profile(
        "quick", TrainRecipe(epochs=6, batch_size=128, patience=3), TrainRecipe(epochs=10, batch_size=128, patience=4),
        search_budget=10.0, description="all methods on mitbih in well under an hour per seed on 2 CPU cores",
    ),
    "full": Profile(
        "full", TrainRecipe(epochs=60, batch_size=256, patience=15),
        TrainRecipe(epochs=100, batch_size=256, patience=20), search_budget=300.0,
        description="paper-scale; meant for GPUs",
    ),
}


def budget_tiers(dataset: str) -> dict[str, BudgetTier]:
    try:
        return BUDGET_TIERS[dataset]
    except KeyError:
        raise RegistryError(f"no budget tiers defined for dataset {dataset!r}") from None


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        import difflib

        close = difflib.get_close_matches(name, list(PROFILES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose from {', '.join(PROFILES)}"
        raise RegistryError(f"unknown profile {name!r}{hint}")
    return PROFILES[name]


def get_budget(dataset: str, name: str | None) -> BudgetTier:
    tiers = budget_tiers(dataset)
    name = name or DEFAULT_BUDGET[dataset]
    if name not in tiers:
        import difflib

        close = difflib.get_close_matches(name, list(tiers), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose from {', '.join(tiers)}"
        raise RegistryError(f"unknown budget {name!r} for dataset {dataset!r}{hint}")
    return tiers[name]


def make_protocol(dataset: str, split: str, budget: str | None, profile: str) -> Protocol:
    return Protocol(
        dataset=dataset, split=split, budget=get_budget(dataset, budget), profile=get_profile(profile),
        teacher_arch=TEACHERS[DATASET_TEACHER[dataset]],
    )
