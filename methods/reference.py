"""Reference rows: the shared teacher itself, and the default student trained with cross-entropy only."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from benchmark.context import RunContext
from benchmark.nn.arch import ArchSpec
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
