"""Issue 34, finding 3: a NaN/inf training loss stops the job; the record's error names the epoch and the term."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.cli import main
from benchmark.engine import Batch, Engine, NonFiniteLoss, TensorSplit
from benchmark.protocol import TrainRecipe
from benchmark.results import read_result


def test_the_engine_stops_at_the_epoch_whose_loss_is_not_finite() -> None:
    g = torch.Generator().manual_seed(0)
    train = TensorSplit(torch.randn(64, 1, 8, generator=g), torch.randint(0, 2, (64,), generator=g))
    calls = {"n": 0}

    def objective(model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        calls["n"] += 1
        ce = nn.functional.cross_entropy(model(batch.x), batch.y)
        kd = ce * (float("nan") if calls["n"] > 4 else 0.0)  # 2 steps an epoch: NaN from epoch 3 on
        return {"ce": ce, "kd": kd}

    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(NonFiniteLoss, match=r"'kd' became nan in epoch 3 of 6"):
        Engine("cpu").fit(model, objective, train, TrainRecipe(epochs=6, batch_size=32), scorer=lambda m: 0.0,
                          seed=0)
    assert calls["n"] == 5  # stopped at the first NaN step, in epoch 3


def test_run_reports_a_nan_training_as_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r"
    code = main(["run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "vanilla_kd", "--seeds", "0",
                 "--set", "vanilla_kd.temperature=1e-300", "-q", "--results-dir", str(results),
                 "--cache-dir", str(tmp_path / "c")])
    assert code == 1
    record = read_result(results / "synthetic" / "fixed" / "small" / "smoke" / "vanilla_kd[temperature=1e-300]"
                         / "seed0.json")
    assert record.status == "failed" and record.error is not None
    assert record.error.startswith("NonFiniteLoss: training loss term") and "in epoch 1 of" in record.error
    assert "seed 0 failed: NonFiniteLoss" in capsys.readouterr().err
