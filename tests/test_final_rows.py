"""Issue 32: one search, two final trainings (as published, protocol retraining) and the search gain on the board.

Rewrite the golden file after an intended change with ``KDNAS_UPDATE_GOLDEN=1 pytest tests/test_final_rows.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_leaderboard import _check_golden

from benchmark.aggregate import aggregate
from benchmark.final_rows import BLOCK_PATHS, NETWORKS, expand, published_variant
from benchmark.leaderboard import render_dataset
from benchmark.metrics import classification_metrics, confusion_by_group
from benchmark.results import JobKey, RunResult, read_result, write_result
from benchmark.runner import Job, run_one
from methods import METHODS, Method
from methods.mf_kdnas import MFKDNAS

CLASSES = ("N", "S", "V")
PATIENTS = np.repeat(np.arange(6), 30)
Y = np.tile(np.array([0] * 20 + [1] * 5 + [2] * 5), 6)


def _final(error_rate: float, seed: int) -> dict[str, Any]:
    """Test metrics and per-patient confusions of a student that errs on ``error_rate`` of the beats."""
    rng = np.random.default_rng([seed, int(error_rate * 1000)])
    pred = np.where(rng.random(len(Y)) < error_rate, (Y + rng.integers(1, 3, len(Y))) % 3, Y)
    return {"metrics": classification_metrics(Y, pred, CLASSES, CLASSES),
            "test_confusion_by_group": confusion_by_group(Y, pred, PATIENTS, len(CLASSES))}


def _record(method: str, seed: int, error_rate: float, protocol_error: float | None = None,
            reported: dict[str, float] | None = None, variant: str = "") -> RunResult:
    final = _final(error_rate, seed)
    record = RunResult(key=JobKey("toy", "fixed", "small", "quick", method, seed, variant), status="ok",
                       metrics=final["metrics"], test_confusion_by_group=final["test_confusion_by_group"],
                       deployed_params=900, param_budget=1000, macs=9000, latency_ms=0.1, search_cost=0.0,
                       train_cost=1.0, provenance={"hardware": "cpu: test-cpu x4", "git_commit": "abc123",
                                                   "notes": {"reported": reported or {}}},
                       reference=method == "student")
    if protocol_error is not None:
        record.search_cost = 30.0
        record.search_trace = [{"candidate": {"i": i}, "fidelity": "toy", "score": 0.5, "cost": 1.0}
                               for i in range(4)]
        record.protocol_final = {"recipe": {"loss": "hinton_kd"}, **_final(protocol_error, seed + 100),
                                 "train_cost": 1.0, "train_wall_s": 5.0, "deployed_params": 900}
    return record


def final_records() -> list[RunResult]:
    """vanilla_kd and the CE student on the default student; ``blocky`` (a DNA-like search, CE as published) and
    ``netty`` (KD as published) each with a protocol retraining; an ablation of ``netty`` with one too."""
    blocky = {NETWORKS: 120.0, BLOCK_PATHS: 24.0}
    netty = {NETWORKS: 40.0, "policy entropy at the search's end (nats)": 9.5}
    return [*[_record("vanilla_kd", s, 0.20) for s in range(3)],
            *[_record("student", s, 0.25) for s in range(3)],
            *[_record("blocky", s, 0.26, protocol_error=0.12, reported=blocky) for s in range(3)],
            *[_record("netty", s, 0.18, protocol_error=0.21, reported=netty) for s in range(3)],
            *[_record("netty", s, 0.19, protocol_error=0.22, reported=netty, variant="heads=false")
              for s in range(3)]]


def test_the_board_shows_both_final_trainings_and_the_search_gain() -> None:
    records = final_records()
    page = render_dataset(records, "toy", ())
    _check_golden("leaderboard_final_rows.md", page)
    board = aggregate(records).set_index("method_label")
    for method in ("blocky", "netty", "netty[heads=false]"):
        protocol = board.loc[f"{method}[retrain=protocol]" if "[" not in method
                             else method.replace("]", ",retrain=protocol]")]
        gain = protocol["mean"] - board.loc["vanilla_kd", "mean"]
        assert protocol["vs_vanilla_kd_diff"] == pytest.approx(gain)  # the search gain is the paired Δ vs vanilla_kd
        assert protocol["ci_kind"] == "patients" and protocol["vs_vanilla_kd_test"].startswith("paired permutation")
    section = page.split("### Final training and search gain", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| blocky |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    scale = 100
    assert cells[1].startswith(f"{board.loc['blocky', 'mean'] * scale:.1f}")
    assert cells[2].startswith(f"{board.loc['blocky[retrain=protocol]', 'mean'] * scale:.1f}")
    assert cells[3].startswith(f"{board.loc['blocky[retrain=protocol]', 'vs_vanilla_kd_diff'] * scale:+.1f}")
    ranked = page.split("### Final training and search gain", 1)[0]
    assert "retrain=protocol" not in ranked  # the protocol rows have their own section only
    assert "blocky 120 (+ 24 block paths)" in page and "netty: policy entropy at the search's end (nats) 9.5" in page


def test_records_with_a_protocol_final_round_trip_and_expand(tmp_path: Path) -> None:
    record = final_records()[6]
    loaded = read_result(write_result(tmp_path, record))
    assert loaded.protocol_final == record.protocol_final
    blocky, protocol = expand([loaded])
    assert protocol.key.method_label == "blocky[retrain=protocol]" and published_variant(protocol.key.variant) == ""
    assert protocol.metrics == record.protocol_final["metrics"] and protocol.search_trace == blocky.search_trace
    assert protocol.config["method"]["retrain"] == "protocol" and not protocol.protocol_final


def test_one_search_feeds_both_final_trainings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_one calls the search once; the published and the protocol final trainings both get its pick, each from
    the run's seed; the record holds both, and a method without a search gets no protocol retraining."""
    calls: dict[str, list[Any]] = {"search": [], "published": [], "protocol": [], "seed": []}

    def search(self: Method, ctx: Any) -> Any:
        calls["search"].append(1)
        ctx.record_candidate({"arch": "default"}, "toy", 0.5, 0.0)
        return ctx.default_student

    published, protocol = MFKDNAS.distill, Method.protocol_retrain

    def distill(self: Method, arch: Any, ctx: Any) -> Any:
        calls["published"].append(arch)
        calls["seed"].append(torch.rand(1).item())
        return published(self, arch, ctx)

    def retrain(self: Method, arch: Any, ctx: Any) -> Any:
        calls["protocol"].append(arch)
        calls["seed"].append(torch.rand(1).item())
        return protocol(self, arch, ctx)

    monkeypatch.setattr(MFKDNAS, "search", search)
    monkeypatch.setattr(MFKDNAS, "distill", distill)
    monkeypatch.setattr(Method, "protocol_retrain", retrain)
    key = JobKey("synthetic", "fixed", "small", "smoke", "mf_kdnas", 0)
    result = run_one(Job(key, str(tmp_path), str(tmp_path / "cache"), device="cpu"))
    assert result.ok, result.error
    assert len(calls["search"]) == 1 and calls["published"] == calls["protocol"] == [calls["published"][0]]
    assert calls["seed"][0] == calls["seed"][1]  # both final trainings start from the same random state
    final = result.protocol_final
    assert final["recipe"] == {"loss": "hinton_kd", "alpha": 0.9, "temperature": 4.0, "kd_source": "teacher"}
    assert 0.0 <= final["metrics"]["macro_f1"] <= 1.0 and final["test_confusion_by_group"] and final["train_cost"] > 0
    assert result.provenance["notes"]["reported"][NETWORKS] == 1.0
    assert not any(METHODS.get(m)().searches() for m in ("teacher", "ensemble", "student"))
    assert not METHODS.get("vanilla_kd")().searches() and not METHODS.get("oracle_kd")(
        METHODS.get("oracle_kd").Config(search=False)).searches()
    assert all(METHODS.get(m)().searches() for m in ("mpkd_nas", "dna", "autokd", "oracle_kd", "mf_kdnas"))


def test_mf_kdnas_as_published_trains_without_distillation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its paper retrains the found architecture without KD; the protocol retraining is where KD comes in."""
    from benchmark.runner import build_context, load_bundle

    job = Job(JobKey("synthetic", "fixed", "small", "smoke", "mf_kdnas", 0), str(tmp_path), str(tmp_path / "c"))
    ctx = build_context(job, load_bundle(job), torch.device("cpu"))
    seen: list[Any] = []
    fit = ctx.fit
    monkeypatch.setattr(ctx, "fit", lambda model, objective, **kw: seen.append(kw) or fit(model, objective, **kw))
    MFKDNAS().distill(ctx.default_student, ctx)
    assert seen and not seen[0].get("extras")  # no teacher logits: cross-entropy only
