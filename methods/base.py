"""The Method interface: ``search(ctx) -> ArchSpec`` (optional), then ``distill(arch, ctx) -> nn.Module``."""

from __future__ import annotations

from abc import ABC, abstractmethod
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
        """Train the final student of architecture ``arch`` (phase "final") and return it."""

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
