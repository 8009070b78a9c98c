"""Run contexts on the synthetic dataset with a chosen search budget (and student epochs), for search tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import torch

from benchmark.context import RunContext
from benchmark.engine import CostMeter
from benchmark.results import JobKey
from benchmark.runner import Job, build_context, load_bundle

ContextFactory = Callable[..., RunContext]


def synthetic_search_contexts(tmp_path_factory: pytest.TempPathFactory, method: str) -> ContextFactory:
    """``make(search_budget, epochs=None)``: a fresh smoke context for ``method`` on the synthetic data, whose profile
    has that search budget (and, when given, that many retraining epochs), sharing one teacher cache."""
    job = Job(JobKey("synthetic", "fixed", "small", "smoke", method, 0), str(tmp_path_factory.mktemp("r")),
              str(tmp_path_factory.mktemp("cache")), device="cpu")
    bundle = load_bundle(job)

    def make(search_budget: float, epochs: int | None = None) -> RunContext:
        ctx = build_context(job, bundle, torch.device("cpu"))
        profile = replace(ctx.protocol.profile, search_budget=search_budget)
        if epochs is not None:
            profile = replace(profile, student_recipe=replace(profile.student_recipe, epochs=epochs))
        ctx.protocol = replace(ctx.protocol, profile=profile)
        ctx.search_meter = CostMeter(ctx.search_meter.unit_macs, search_budget)
        return ctx

    return make
