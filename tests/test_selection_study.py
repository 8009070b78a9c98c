"""The selection-signal study's bookkeeping: splits never overlap, signals are read from the right weights."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets.mitbih import DS1

SPEC = importlib.util.spec_from_file_location("selection_study", Path(__file__).parents[1] / "tools" /
                                              "selection_study.py")
study = importlib.util.module_from_spec(SPEC)  # type: ignore[arg-type]
sys.modules["selection_study"] = study  # dataclasses look their module up while the file executes
SPEC.loader.exec_module(study)  # type: ignore[union-attr]


@pytest.mark.parametrize("fold", sorted(study.PSEUDO_TEST))
def test_develop_splits_stay_inside_ds1_and_never_overlap(fold: int) -> None:
    split = study.develop_split(fold)
    train, val, test = set(split.train), set(split.val), set(split.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(DS1)
    assert {208, 209} <= train  # the F-rich and S-rich records always train
    assert set(study.V4) <= val


def epoch(correct_s: int) -> dict[str, dict[str, object]]:
    """Scores of two records: 124 (validation) with ``correct_s`` of 10 S beats right, 101 (held out) likewise."""
    def record(right: int) -> dict[str, object]:
        conf = np.zeros((5, 5), dtype=int)
        conf[0, 0], conf[1, 1], conf[1, 0] = 50, right, 10 - right
        return {"confusion": conf.tolist(), "ce_sum": [5.0, float(10 - right), 0.0, 0.0, 0.0]}
    return {"124": record(correct_s), "101": record(correct_s)}


def test_best_epoch_rule_scores_the_epoch_its_signal_picks() -> None:
    run = {"epochs": [{"raw": epoch(2)}, {"raw": epoch(9)}, {"raw": epoch(5), "ema": epoch(7)}]}
    signal, truth = study.signal_and_truth(run, (124,), (101,), "macro_f1", "best_epoch")
    assert signal == truth == study.pooled_metrics(epoch(9), (101,))["macro_f1"]
    final = study.signal_and_truth(run, (124,), (101,), "balanced_acc", "final")
    ema = study.signal_and_truth(run, (124,), (101,), "balanced_acc", "ema_final")
    assert final[0] == pytest.approx((1.0 + 0.5) / 2) and ema[0] == pytest.approx((1.0 + 0.7) / 2)
    assert study.pooled_metrics(epoch(9), (124,))["neg_loss"] == pytest.approx(-(5.0 + 1.0) / 60)


def test_a_claimed_architecture_is_skipped_by_other_processes() -> None:
    import multiprocessing

    with study.claim("test-phase", "arch0") as mine:
        assert mine
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.apply(_try_claim, ("test-phase", "arch0")) is False
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_try_claim, ("test-phase", "arch0")) is True


def _try_claim(phase: str, name: str) -> bool:
    import importlib.util as util
    import sys as system

    spec = util.spec_from_file_location("selection_study", Path(__file__).parents[1] / "tools" / "selection_study.py")
    module = util.module_from_spec(spec)  # type: ignore[arg-type]
    system.modules["selection_study"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    with module.claim(phase, name) as mine:
        return mine


def test_the_studys_validation_pool_is_protocol_v2s() -> None:
    from datasets import mitbih

    assert set(study.V8) == set(mitbih.VAL_RECORDS) and set(study.V4) == set(mitbih.VAL_RECORDS_V1)


def test_the_tau_ceiling_matches_a_simulation_of_noisy_signal_and_truth() -> None:
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    between, signal_noise, truth_noise, seeds = 4.0, 2.0, 8.0, 3
    taus = []
    for _ in range(200):
        true = rng.normal(0, np.sqrt(between), 60)
        signal = true + rng.normal(0, np.sqrt(signal_noise / seeds), 60)  # a seed-mean of k noisy scores
        truth = 2 * true + rng.normal(0, np.sqrt(truth_noise * 4 / seeds), 60)  # another scale, same ranking
        taus.append(kendalltau(signal, truth).statistic)
    rs = study.reliability(between + signal_noise, signal_noise, seeds)
    rt = study.reliability(4 * (between + truth_noise), 4 * truth_noise, seeds)
    assert rs == pytest.approx(4 / (4 + 2 / 3)) and rt == pytest.approx(4 / (4 + 8 / 3))
    assert study.tau_ceiling(rs, rt) == pytest.approx(np.mean(taus), abs=0.02)
    assert study.reliability(3.0, 5.0, 1) == 0.0  # noise above the total: nothing left to rank


def fake_run(name: str, seed: int, val_right: int, test_right: int) -> dict[str, object]:
    """A single-epoch run: ``val_right`` of 10 S beats found on each V8 record, ``test_right`` on record 101."""
    scores = {str(record): epoch(val_right)["124"] for record in study.V8}
    scores["101"] = epoch(test_right)["101"]
    return {"name": name, "seed": seed, "split": {"train": [], "val": list(study.V8), "test": [101]},
            "epochs": [{"raw": scores, "ema": scores}]}


def test_analyse_ranks_seed_means_beside_the_first_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setattr(study, "OUT", tmp_path)
    monkeypatch.setattr(study, "MIN_ARCHS", 4)
    for i in range(4):  # seed 0's truth is reversed against the signal; the two-seed means agree with it
        runs = (fake_run(f"a{i}", 0, i, 3 - i), fake_run(f"a{i}", 1, i, 3 * i))
        for run in runs:
            path = study.run_path("confirm", run["name"], run["seed"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(run))
    assert study.run_path("confirm", "a0", 0).name == "a0.json" and study.run_path("confirm", "a0", 1).name == \
        "a0.seed1.json"
    rows = {row["phase"]: row for row in study.analyse(["confirm"])
            if (row["val"], row["metric"], row["rule"]) == ("V8", "macro_f1", "final")}
    assert rows["confirm"]["tau"] == pytest.approx(-1.0) and rows["confirm"]["n_archs"] == 4
    assert rows["confirm x2"]["tau"] == pytest.approx(1.0)
    assert rows["confirm x2"]["p"] == pytest.approx(2 / 24)  # exact two-sided: 1 of 24 orders is as concordant
    chosen = [row for row in study.analyse(["confirm"]) if (row["val"], row["metric"], row["rule"]) == study.CHOSEN]
    text = study.analysis_markdown(chosen)
    assert ("frozen signal (V8, macro_f1, best_epoch): confirm tau -1.000 (p 0.083, n = 4); confirm x2 tau +1.000 "
            "(p 0.083, n = 4)") in text


def test_all_seeds_variance_removes_the_seed_noise_left_in_architecture_means() -> None:
    scores = {"a": [(0.40, 0.50), (0.42, 0.46)], "b": [(0.44, 0.47), (0.46, 0.51)], "c": [(0.50, 0.52), (0.48, 0.48)]}
    phase = {name: {k: np.array(pair) * 100 for k, pair in enumerate(pairs)} for name, pairs in scores.items()}
    noise = {"signal": 2.0, "truth": 8.0}
    got = study.all_seeds_total_variance(phase, noise)
    for i, side in enumerate(("signal", "truth")):
        means = [100 * np.mean([pair[i] for pair in pairs]) for pairs in scores.values()]
        between = np.var(means, ddof=1) - noise[side] / 2  # each mean still carries half a run's seed noise
        assert got[side] == pytest.approx(max(between, 0.0) + noise[side])
    assert got["signal"] > noise["signal"] and got["truth"] == pytest.approx(noise["truth"])  # truth: all noise
    phase["d"] = {0: np.array([50.0, 50.0])}  # one architecture with a single seed
    assert study.all_seeds_total_variance(phase, noise) is None


def test_publish_writes_the_generated_report_and_prints_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path)
    (tmp_path / "r.md").write_text("old\n")
    assert study.publish("r.md", "# new\n") == 0
    assert (tmp_path / "r.md").read_text() == "# new\n" and capsys.readouterr().out == "# new\n\n"
    parser = argparse.ArgumentParser()
    study.add_data_options(parser)
    assert vars(parser.parse_args(["--data-root", "d"])) == {"data_root": "d", "cache_dir": None}
