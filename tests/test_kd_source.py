"""The protocol's KD source: the seed's shared teacher, or (MIT-BIH, round 5's verdict) the M = 3 ensemble teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.context import RunContext
from benchmark.engine import Engine
from benchmark.executors import InProcessExecutor
from benchmark.nn.ensemble import ProbabilityEnsemble, mean_probability_logits
from benchmark.protocol import BUDGET_TIERS, DATASET_KD_SOURCE, TEACHERS, Protocol, make_protocol
from benchmark.protocol_parts import teacher_part
from benchmark.results import JobKey
from benchmark.runner import Job, build_context, load_bundle, run_many


def _job(tmp_path: Path, method: str, seed: int = 0) -> Job:
    key = JobKey("synthetic", "fixed", "small", "smoke", method, seed)
    return Job(key, str(tmp_path / "data"), str(tmp_path / "cache"), device="cpu")


def test_mean_probability_logits_is_the_log_of_the_mean_softmax() -> None:
    logits = [torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 3.0, 0.0]])]
    expected = ((logits[0].softmax(1) + logits[1].softmax(1)) / 2).log()
    assert torch.allclose(mean_probability_logits(logits), expected)
    assert torch.equal(mean_probability_logits(logits[:1]), logits[0])  # one model: its logits, unchanged
    members = [torch.nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4)
    assert torch.allclose(ProbabilityEnsemble(members)(x), mean_probability_logits([m(x) for m in members]))


def test_mitbih_distils_from_the_ensemble_of_separable_teachers() -> None:
    protocol = make_protocol("mitbih", "inter_patient", None, "quick")
    assert protocol.kd_source == "ensemble" and protocol.ensemble_size == 3
    assert protocol.teacher_arch == TEACHERS["ecg"]
    medium = BUDGET_TIERS["mitbih"]["medium"].default_student
    assert TEACHERS["ecg"].params == {**medium.params, "dropout": 0.3}  # round 5: medium_sep_bal100
    assert make_protocol("sleepedf20", "fold", None, "quick").kd_source == "teacher"  # not studied there


def test_an_unknown_kd_source_is_refused_by_name() -> None:
    protocol = make_protocol("synthetic", "fixed", None, "smoke")
    with pytest.raises(ValueError, match="kd_source must be one of teacher, ensemble, not 'mean'"):
        Protocol(protocol.dataset, protocol.split, protocol.budget, protocol.profile, protocol.teacher_arch,
                 kd_source="mean")


def test_the_kd_source_is_part_of_the_teacher_setting() -> None:
    """Changing it makes taught records stale and splits the leaderboard's teacher groups (protocol_parts)."""
    protocol = make_protocol("synthetic", "fixed", None, "smoke").to_dict()
    assert teacher_part(protocol)["kd_source"] == "teacher"
    assert teacher_part({**protocol, "kd_source": "ensemble"}) != teacher_part(protocol)


def test_kd_logits_follow_the_protocol_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(tmp_path, "vanilla_kd")
    single = build_context(job, load_bundle(job), Engine("cpu").device)
    assert torch.equal(single.kd_logits(), single.teacher().train_logits)
    assert [t.seed for t in single.kd_teachers()] == [0]

    monkeypatch.setitem(DATASET_KD_SOURCE, "synthetic", "ensemble")
    ensemble = build_context(job, load_bundle(job), Engine("cpu").device)
    members = ensemble.ensemble()
    assert [t.seed for t in ensemble.kd_teachers()] == [0, 1000, 2000]
    assert torch.allclose(ensemble.kd_logits(), mean_probability_logits([t.train_logits for t in members]))
    assert not torch.allclose(ensemble.kd_logits(), members[0].train_logits)


def test_vanilla_kd_trains_on_the_ensemble_and_records_its_members(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DATASET_KD_SOURCE, "synthetic", "ensemble")
    seen: list[torch.Tensor] = []
    original = RunContext.fit

    def spying(self: RunContext, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("extras"):
            seen.append(kwargs["extras"]["teacher_logits"])
            expected = mean_probability_logits([t.train_logits for t in self.ensemble()])
            assert torch.allclose(kwargs["extras"]["teacher_logits"], expected)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RunContext, "fit", spying)
    [result] = run_many([_job(tmp_path, "vanilla_kd")], InProcessExecutor(), tmp_path / "results")
    assert result.ok, result.error
    assert len(seen) == 1
    assert [m["seed"] for m in result.teacher["members"]] == [0, 1000, 2000]
    assert result.config["protocol"]["kd_source"] == "ensemble"
