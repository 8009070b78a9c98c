"""RunContext.val_rows: a fixed, class-stratified share of validation, a cheaper fidelity for searches' evaluations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.engine import Engine
from benchmark.results import JobKey
from benchmark.runner import Job, build_context, load_bundle
from methods.autokd import AutoKDConfig
from methods.base import ConfigError
from methods.mpkd_nas import MPKDNASConfig


def _ctx(tmp_path: Path, seed: int = 0):  # type: ignore[no-untyped-def]
    job = Job(JobKey("synthetic", "fixed", "small", "smoke", "student", seed), str(tmp_path / "data"),
              str(tmp_path / "cache"), device="cpu")
    return build_context(job, load_bundle(job), Engine("cpu").device)


def test_every_class_keeps_its_share_and_the_rows_stay_fixed(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    y = np.asarray(ctx.data.val.y)
    rows = ctx.val_rows(0.5)
    assert rows is not None and np.all(np.diff(rows) > 0)
    for c in np.unique(y):
        assert np.sum(y[rows] == c) == math.ceil(0.5 * np.sum(y == c))  # no class disappears
    assert ctx.val_rows(0.5) is rows  # computed once: every candidate is scored on the same rows
    assert not np.array_equal(_ctx(tmp_path, seed=1).val_rows(0.5), rows)  # drawn from the run's seed
    assert ctx.val_rows(1.0) is None
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        ctx.val_rows(0.0)


def test_a_search_evaluation_on_half_the_rows_costs_half(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    model = ctx.build(ctx.default_student)
    rows = ctx.val_rows(0.5)
    assert rows is not None
    ctx.search_val_score(model)
    full = ctx.search_meter.units
    score = ctx.search_val_score(model, rows)
    assert ctx.search_meter.units - full == pytest.approx(full * len(rows) / len(ctx.val))
    assert ctx.val_pass_cost(model, rows) == pytest.approx(full * len(rows) / len(ctx.val))
    logits = ctx.engine.predict(model, ctx.val.x[torch.as_tensor(rows)]).numpy()
    from benchmark.context import metrics_from_logits

    expected = metrics_from_logits(ctx.data.val.y[rows], logits, ctx.data.classes, ctx.data.scored_classes)
    assert score == pytest.approx(expected["macro_f1"])


@pytest.mark.parametrize("config", [AutoKDConfig, MPKDNASConfig])
def test_the_searches_score_on_half_of_validation_and_refuse_an_empty_share(config: type) -> None:
    assert config().val_subset == 0.5
    with pytest.raises(ConfigError, match="val_subset"):
        config.from_dict({"val_subset": 0.0})
