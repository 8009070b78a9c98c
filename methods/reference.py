"""Reference rows: the shared teacher itself, the ensemble teacher (Oracle KD's), and the default student trained
with cross-entropy only."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from benchmark.context import RunContext
from benchmark.nn.arch import ArchSpec
from benchmark.nn.ensemble import ProbabilityEnsemble
from benchmark.teachers import cross_entropy_objective
from methods.base import Method, MethodConfig, register_method
from methods.config_checks import Check, between


@register_method("teacher")
class TeacherReference(Method):
    """The shared teacher of this (dataset, split, seed), evaluated like any student; exempt from the budget."""

    reference = True
    enforce_budget = False
    summary = "reference: the shared teacher (trained once, cached, reused by every method)"

    def search(self, ctx: RunContext) -> ArchSpec:
        return ctx.protocol.teacher_arch

    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        teacher = ctx.teacher()
        ctx.train_meter.units += ctx.train_meter.units_of(teacher.train_macs)
        return copy.deepcopy(teacher.model)


@register_method("ensemble")
class EnsembleReference(Method):
    """The ensemble teacher of this (dataset, split, seed): the protocol's ``ensemble_size`` shared teachers with
    their softmax probabilities averaged, evaluated like any student; exempt from the budget. Its deployed
    parameters, MACs and training cost are the sum of its members'."""

    uses_ensemble = True
    reference = True
    enforce_budget = False
    summary = "reference: the ensemble teacher (M shared teachers, averaged probabilities)"

    def search(self, ctx: RunContext) -> ArchSpec:
        return ArchSpec("prob_ensemble", {"member": ctx.protocol.teacher_arch.to_dict(),
                                          "size": ctx.protocol.ensemble_size})

    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        members = ctx.ensemble()
        ctx.train_meter.units += sum(ctx.train_meter.units_of(member.train_macs) for member in members)
        return ProbabilityEnsemble([copy.deepcopy(member.model) for member in members])


@dataclass(frozen=True)
class StudentConfig(MethodConfig):
    checks: ClassVar[dict[str, Check]] = {"label_smoothing": between(0, 1, high_open=True)}
    label_smoothing: float = 0.0


@register_method("student")
class StudentReference(Method):
    """The protocol's default student trained with cross-entropy only (no teacher, no search)."""

    Config = StudentConfig
    uses_teacher = False
    reference = True
    summary = "reference: the default student, cross-entropy only"

    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        model = ctx.build(arch)
        ctx.fit(model, cross_entropy_objective(self.config.label_smoothing), phase="final")
        return model
