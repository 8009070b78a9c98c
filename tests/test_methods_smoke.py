"""Every registered method gets a smoke run on the synthetic dataset the moment it is registered."""

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.metrics import classification_metrics
from benchmark.nn.arch import ArchSpec
from benchmark.protocol import PROFILES
from benchmark.results import JobKey
from benchmark.runner import Job, build_context, load_bundle, run_one
from benchmark.search_audit import select
from datasets.synthetic import Synthetic
from methods import METHODS


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def majority_macro_f1() -> float:
    """Test macro-F1 of always predicting the most frequent training class: what a method that learns nothing gets."""
    bundle = Synthetic().load()
    majority = int(np.bincount(bundle.train.y).argmax())
    predicted = np.full_like(bundle.test.y, majority)
    return classification_metrics(bundle.test.y, predicted, bundle.classes)["macro_f1"]


@pytest.mark.parametrize("method", METHODS.names())
def test_smoke_run(method: str, cache: Path, tmp_path: Path, majority_macro_f1: float) -> None:
    key = JobKey("synthetic", "fixed", "small", "smoke", method, 0)
    result = run_one(Job(key, str(tmp_path), str(cache), device="cpu"))
    assert result.ok, result.error
    assert 0.0 <= result.metrics["macro_f1"] <= 1.0
    assert result.metrics["n"] == len(Synthetic().load().test)
    assert result.metrics["macro_f1"] > majority_macro_f1 + 0.05, "the smoke student learned nothing"
    assert result.deployed_params and result.macs
    assert result.latency_ms is None and not result.latency  # smoke runs measure no latency (README: Latency)
    if METHODS.get(method).enforce_budget:
        assert result.deployed_params <= result.param_budget  # type: ignore[operator]
    # a search stops at the first step past its budget, then validates once: on the 600-sample synthetic split one
    # batch of a large supernet is ~4 units, so allow half the budget of overrun (cost units are MACs, not epochs)
    assert result.search_cost <= 1.5 * PROFILES["smoke"].search_budget
    assert result.train_cost > 0
    if METHODS.get(method)().searches():  # issue 32: the same pick retrained by the protocol's KD recipe, tested
        final = result.protocol_final
        assert final["recipe"]["loss"] == "hinton_kd" and final["deployed_params"] <= result.param_budget
        assert 0.0 <= final["metrics"]["macro_f1"] <= 1.0 and final["test_confusion_by_group"]
    else:
        assert result.protocol_final == {}
    if result.search_trace:  # a NAS method: `audit-search` can rebuild its traced candidates, the chosen one among them
        job = Job(key, str(tmp_path), str(cache), device="cpu")
        ctx = build_context(job, load_bundle(job), torch.device("cpu"))
        instance = METHODS.get(method)()
        pool = instance.candidate_pool(result.search_trace, ctx)
        picked = select(pool, lambda e: instance.candidate_arch(e.candidate, ctx), 1, 0,
                        ArchSpec.from_dict(result.arch).digest())
        assert len(pool) >= 2 and any("chosen" in item.roles for item in picked), "chosen arch not in the trace"


@pytest.mark.parametrize("method", METHODS.names())
def test_method_is_documented(method: str) -> None:
    cls = METHODS.get(method)
    assert cls.summary, f"{method} needs a one-line summary for `list`"
    assert cls.__doc__ and len(cls.__doc__.strip()) > 20


@pytest.mark.parametrize("method", METHODS.names())
def test_every_numeric_option_declares_its_range(method: str) -> None:
    """`--set` checks ranges before any compute only for options whose Config declares one: every int/float has."""
    import typing
    from dataclasses import fields

    config = METHODS.get(method).Config
    hints = typing.get_type_hints(config)
    numeric = [f.name for f in fields(config) if hints[f.name] in (int, float)]
    missing = [name for name in numeric if name not in getattr(config, "checks", {})]
    assert not missing, f"{config.__qualname__}: no range declared in `checks` for {', '.join(missing)}"
