"""``benchmark audit-search``: candidates from a stored trace, retrained for real; tau and percentile from them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from benchmark.aggregate import distinct_candidates
from benchmark.audit_report import TEST, VAL, pool_sentence, summarise
from benchmark.candidates import AuditUnsupported, TraceEntry, TracePool, UnbuildableCandidate
from benchmark.cli import main
from benchmark.nn.arch import ArchSpec
from benchmark.results import JobKey, results_path
from benchmark.search_audit import audit_dir, select
from methods import METHODS
from methods.mpkd_nas import MPKDNAS


def test_audit_retrains_top_k_random_k_and_the_chosen_one_then_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    results, where = tmp_path / "results", ["--data-root", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c"),
                                            "--device", "cpu"]
    assert main(["-q", "run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "student,mpkd_nas",
                 "--results-dir", str(results), *where]) == 0
    audit = ["audit-search", str(results), "--k", "2", "--out", str(tmp_path / "audits"), *where]
    assert main(["-q", *audit]) == 0
    output = capsys.readouterr()
    assert "student" in output.err and "skip" in output.err  # the reference row has no search trace
    key = JobKey("synthetic", "fixed", "small", "smoke", "mpkd_nas", 0)
    record = json.loads(results_path(results, key).read_text())
    folder = audit_dir(tmp_path / "audits", key)
    report = json.loads((folder / "audit.json").read_text())
    rows = report["candidates"]
    roles = [role for row in rows for role in row["roles"]]
    assert roles.count("top") == 2 and roles.count("random") == 2 and roles.count("chosen") == 1
    assert len(rows) == report["summary"]["retrained"] == len(list((folder / "candidates").glob("*.json")))
    chosen = next(r for r in rows if "chosen" in r["roles"])
    assert chosen["arch"] == record["arch"]
    top = sorted(record["search_trace"], key=lambda t: -t["score"])[0]
    assert max(r["search_score"] for r in rows) == pytest.approx(top["score"])
    for row in rows:  # really retrained: scores of a trained network, params of the built one
        assert 0.0 <= row[VAL] <= 1.0 and 0.0 <= row[TEST] <= 1.0 and row["params"] > 0
    search, val = [r["search_score"] for r in rows], [r[VAL] for r in rows]
    tau = stats.kendalltau(search, val).statistic
    assert report["summary"]["kendall_tau_val"] == (None if np.isnan(tau) else pytest.approx(tau))
    others = [r[VAL] for r in rows if "chosen" not in r["roles"]]
    assert report["summary"]["chosen_percentile_val"] == pytest.approx(
        stats.percentileofscore(others, chosen[VAL], kind="mean"))
    distinct = {json.dumps(t["candidate"], sort_keys=True) for t in record["search_trace"]}
    assert report["evaluated"] == len(distinct) == report["pool_size"]  # MPKD-NAS's pool is its scored candidates
    assert "ground truth" in (folder / "audit.md").read_text()
    assert f"{len(distinct):,} distinct candidates in the search." in (folder / "audit.md").read_text()
    index = (tmp_path / "audits" / "README.md").read_text()  # every audit under --out in one table
    assert "| synthetic/fixed/small/smoke | mpkd_nas | seed0 |" in index and "(mpkd_nas/seed0/audit.md)" not in index
    assert "(synthetic/fixed/small/smoke/mpkd_nas/seed0/audit.md)" in index and "## Per method" in index

    def no_retraining(*args: object) -> None:
        raise AssertionError("a finished candidate was retrained")

    monkeypatch.setattr(MPKDNAS, "retrain_candidate", no_retraining)
    assert main(["-q", *audit]) == 0  # resumed: every candidate read back
    assert json.loads((folder / "audit.json").read_text())["summary"] == report["summary"]


class FakePool:
    def __init__(self, scores: list[float]) -> None:
        self.entries = [TraceEntry({"n": i}, s, "f") for i, s in enumerate(scores)]

    def __len__(self) -> int:
        return len(self.entries)

    def by_score(self) -> Iterator[TraceEntry]:
        return iter(sorted(self.entries, key=lambda e: -e.score))

    def at_random(self, rng: np.random.Generator) -> Iterator[TraceEntry]:
        return (self.entries[i] for i in rng.permutation(len(self.entries)))


def arch_of(entry: TraceEntry) -> ArchSpec:
    if entry.candidate["n"] == 5:
        raise UnbuildableCandidate("over budget")
    return ArchSpec("toy", {"n": entry.candidate["n"]})


def test_select_skips_unbuildable_candidates_and_draws_distinct_random_ones() -> None:
    pool = FakePool([0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.6, 0.7])  # n=5 has the best score but cannot be built
    chosen = ArchSpec("toy", {"n": 0}).digest()
    picked = select(pool, arch_of, 2, seed=0, chosen_digest=chosen)
    by_n = {item.entry.candidate["n"]: item.roles for item in picked}
    assert [n for n, r in by_n.items() if "top" in r] == [7, 6]
    assert sum("random" in r for r in by_n.values()) == 2 and 5 not in by_n
    assert "chosen" in by_n[0]
    assert select(pool, arch_of, 2, seed=0, chosen_digest=chosen) == picked  # the draw is seeded
    assert not any("chosen" in i.roles for i in select(pool, arch_of, 1, 0, ArchSpec("toy", {"n": 99}).digest()))


def test_trace_pool_keeps_the_latest_evaluation_and_drops_non_finite_scores() -> None:
    trace = [{"candidate": {"a": 1}, "score": 0.2, "fidelity": "low"},
             {"candidate": {"a": 2}, "score": float("nan"), "fidelity": "low"},
             {"candidate": {"a": 1}, "score": 0.5, "fidelity": "high"}]
    pool = TracePool(trace)
    assert len(pool) == 1 and next(pool.by_score()).fidelity == "high"
    with pytest.raises(AuditUnsupported, match="lacks a candidate"):
        TracePool([{"score": 1.0}])


def test_tied_retrained_scores_give_no_tau_and_a_half_percentile() -> None:
    rows = [{"search_score": s, VAL: 1.0, TEST: 1.0, "roles": r} for s, r in
            ((0.9, ["top", "chosen"]), (0.5, ["top"]), (0.1, ["random"]))]
    summary = summarise(rows)
    assert summary["kendall_tau_val"] is None and summary["chosen_percentile_val"] == 50.0
    rows[1][VAL], rows[2][VAL] = 0.8, 0.7
    assert summarise(rows)["kendall_tau_val"] == pytest.approx(1.0)
    assert summarise(rows)["chosen_percentile_val"] == 100.0


def test_a_method_without_the_hook_says_so() -> None:
    method = METHODS.get("vanilla_kd")()
    with pytest.raises(AuditUnsupported, match="candidate_arch"):
        method.candidate_arch({}, None)  # type: ignore[arg-type]


def test_evaluated_counts_distinct_scored_candidates_and_says_when_the_pool_is_larger() -> None:
    trace = [{"candidate": {"ops": ["a"], "block": 0}, "score": 0.1, "fidelity": "1"},
             {"candidate": {"block": 0, "ops": ["a"]}, "score": 0.2, "fidelity": "2"},  # the same one, rescored
             {"candidate": {"ops": ["b"], "block": 0}, "score": 0.3, "fidelity": "1"}]
    assert distinct_candidates(SimpleNamespace(search_trace=trace)) == 2  # type: ignore[arg-type]
    assert pool_sentence({"pool_size": 2, "evaluated": 2}) == "2 distinct candidates in the search."
    assert pool_sentence({"pool_size": 110004}) == "110,004 distinct candidates in the search."  # an older audit
    assert pool_sentence({"pool_size": 110004, "evaluated": 168}) == (
        "The search scored 168 distinct candidates; its scores rank a pool of 110,004.")
