"""The Method interface: ``search(ctx) -> ArchSpec`` (optional), then ``distill(arch, ctx) -> nn.Module``."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from torch import nn

from benchmark.candidates import AuditUnsupported, CandidatePool, TracePool
from benchmark.context import RunContext
from benchmark.nn.arch import ArchSpec
from benchmark.registry import Registry
from methods.config_checks import Check, ConfigError, validate

__all__ = ["METHODS", "ConfigError", "Method", "MethodConfig", "register_method"]


@dataclass(frozen=True)
class MethodConfig:
    """Base of every method's frozen config dataclass; configs are data, never code. Field types are checked
    against the annotations and values against ``checks`` (ranges, choices) on construction: ConfigError."""

    checks: ClassVar[dict[str, Check]] = {}

    def __post_init__(self) -> None:
        validate(self, self.checks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MethodConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"{cls.__qualname__}: unknown option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(known) or 'none'}")
        return cls(**raw)


class Method(ABC):
    """A KD / KD-NAS method. Subclasses set ``Config`` and implement ``distill`` (and ``search`` for NAS).

    Class attributes tell the runner what the method needs without the runner naming methods:
    ``uses_teacher`` (prepare the shared teacher first), ``reference`` (a reference row, not a method),
    ``enforce_budget`` (reject a deployed student over the parameter budget), ``uses_ensemble`` (prepare all
    ``protocol.ensemble_size`` members of the ensemble teacher first; the record names every member).
    ``ablations`` lists the variants worth running beside the method (each a literal dict of config options):
    ``run --ablations`` adds a job per variant, recorded as ``method[option=value]`` and never ranked with methods.
    """

    Config: ClassVar[type[MethodConfig]] = MethodConfig
    uses_teacher: ClassVar[bool] = True
    reference: ClassVar[bool] = False
    enforce_budget: ClassVar[bool] = True
    uses_ensemble: ClassVar[bool] = False
    summary: ClassVar[str] = ""
    ablations: ClassVar[tuple[dict[str, Any], ...]] = ()

    def __init__(self, config: MethodConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    def search(self, ctx: RunContext) -> ArchSpec:
        """Choose the student architecture; the default is the protocol's default student (no search)."""
        return ctx.default_student

    @abstractmethod
    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        """Train the final student of architecture ``arch`` (phase "final") as the method's paper does, and return
        it: the row "as published"."""

    # -- the one final-training rule (issue 32) -------------------------------------------------------------------
    def searches(self) -> bool:
        """Whether this instance searches an architecture: a method (not a reference row, whose ``search`` names a
        fixed teacher) whose class overrides ``search`` and whose config does not turn the search off (a ``search``
        option set to False)."""
        return (not self.reference and type(self).search is not Method.search
                and bool(getattr(self.config, "search", True)))

    def final_trainings(self) -> dict[str, Callable[[ArchSpec, RunContext], nn.Module]]:
        """The final trainings of the searched architecture, each a fresh student from the same seed: "published"
        (``distill``, the method's own) and, for a searching method, "protocol" (``protocol_retrain``), so that a row
        shows what the search contributes apart from the method's final loss. The runner trains and tests each."""
        finals: dict[str, Callable[[ArchSpec, RunContext], nn.Module]] = {"published": self.distill}
        if self.searches():
            finals["protocol"] = self.protocol_retrain
        return finals

    def protocol_retrain(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        """The protocol's one KD recipe on ``arch``: ``vanilla_kd``'s (Hinton KD with its default α, τ, from the
        protocol's KD source's cached logits) under the protocol's retraining recipe; records its settings."""
        from methods.vanilla_kd import VanillaKDConfig, distill_with_hinton_kd

        kd = VanillaKDConfig()
        ctx.notes["protocol_final"] = {"loss": "hinton_kd", "alpha": kd.alpha, "temperature": kd.temperature,
                                       "kd_source": ctx.protocol.kd_source}
        return distill_with_hinton_kd(arch, ctx, kd.alpha, kd.temperature)

    def search_size(self, ctx: RunContext) -> dict[str, int]:
        """How much the search evaluated, for the leaderboard's "Search size" line: networks evaluated at any
        fidelity (default: the distinct candidates of the search trace); a method whose trace holds parts of networks
        (DNA's block paths) overrides it and counts those apart."""
        return {"networks": len({json.dumps(t["candidate"], sort_keys=True, default=str) for t in ctx.search_trace})}

    # -- search audit (``benchmark audit-search``): rebuilding the candidates of a stored search trace --------------
    def candidate_pool(self, trace: list[dict[str, Any]], ctx: RunContext) -> CandidatePool:
        """The distinct candidates of a stored ``search_trace``; default: one per distinct candidate dict."""
        return TracePool(trace)

    def candidate_arch(self, candidate: dict[str, Any], ctx: RunContext) -> ArchSpec:
        """The architecture of one traced candidate (raise ``UnbuildableCandidate`` for one that is no network)."""
        raise AuditUnsupported(f"{type(self).__name__} cannot rebuild its search candidates as architectures "
                               "(it implements no Method.candidate_arch)")

    def retrain_candidate(self, candidate: dict[str, Any], ctx: RunContext) -> nn.Module:
        """Train a traced candidate from scratch as the method trains its final student; default: ``distill`` of
        ``candidate_arch`` (a method whose candidates carry training options too, e.g. KD τ and α, overrides it)."""
        return self.distill(self.candidate_arch(candidate, ctx), ctx)


METHODS: Registry[type[Method]] = Registry("method")
register_method = METHODS.register
