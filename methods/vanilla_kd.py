"""Vanilla knowledge distillation (Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015).

Implements L = (1-α)·CE(s, y) + α·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) (batch mean) on the protocol's default
student, with the soft labels of the protocol's KD source read from the teacher store's cache (``ctx.kd_logits``: the
shared teacher's logits, or on MIT-BIH the M = 3 ensemble teacher's log mean probabilities; the inputs are not
augmented, so the cached logits equal what the teacher would output each step). No official code is
needed: the loss is fully specified in the paper. Defaults α=0.9, τ=4 follow common practice for Hinton
KD (e.g. the CRD benchmark, Tian et al. 2020); the paper leaves both as hyperparameters.

This recipe is the protocol's one KD recipe: every searching method's searched architecture is also retrained with it
(``Method.protocol_retrain``), and that row minus this one is the leaderboard's search gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from benchmark.context import RunContext
from benchmark.nn.arch import ArchSpec
from methods.base import Method, MethodConfig, register_method
from methods.config_checks import Check, between, positive
from methods.losses import hinton_kd_objective


@dataclass(frozen=True)
class VanillaKDConfig(MethodConfig):
    checks: ClassVar[dict[str, Check]] = {"alpha": between(0, 1), "temperature": positive()}
    alpha: float = 0.9
    temperature: float = 4.0


@register_method("vanilla_kd")
class VanillaKD(Method):
    """Hinton KD of the default student from the protocol's KD source (cached logits)."""

    Config = VanillaKDConfig
    summary = "Hinton et al. 2015: (1-α)·CE + α·τ²·KL on the default student"

    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        return distill_with_hinton_kd(arch, ctx, self.config.alpha, self.config.temperature)


def distill_with_hinton_kd(arch: ArchSpec, ctx: RunContext, alpha: float, temperature: float) -> nn.Module:
    """Train a fresh ``arch`` as the final student with Hinton KD from the KD source's cached logits (the
    retraining step of every method whose final loss is plain KD)."""
    model = ctx.build(arch)
    ctx.fit(model, hinton_kd_objective(alpha, temperature, ctx.recipe.label_smoothing), phase="final",
            extras={"teacher_logits": ctx.kd_logits()})
    return model
