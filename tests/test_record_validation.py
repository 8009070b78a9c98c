"""Issue 34, finding 1: records that parse but lie (NaN, missing or wrong-typed values, out-of-range scores, the
wrong folder) are named, left out of every table and rerun; a fuzzing test over copies of committed records."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmark.aggregate import aggregate
from benchmark.cli import main
from benchmark.results import ResultError, check_location, load_checked, read_result

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "results" / "mitbih" / "inter-patient" / "small" / "quick"
METHODS = ("vanilla_kd", "student")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results folder holding copies of the committed vanilla_kd and student records (5 seeds each)."""
    root = tmp_path / "results"
    for method in METHODS:
        shutil.copytree(TABLE / method, root / "mitbih" / "inter-patient" / "small" / "quick" / method)
    return root


def record_path(root: Path, method: str = "vanilla_kd", seed: int = 2) -> Path:
    return root / "mitbih" / "inter-patient" / "small" / "quick" / method / f"seed{seed}.json"


def edit(path: Path, change: Any) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw, indent=2))


def n_seeds(root: Path, method: str = "vanilla_kd") -> int:
    good, _ = load_checked(root)
    board = aggregate(good)
    return int(board.loc[board["method_label"] == method, "n_seeds"].iloc[0])


BAD_EDITS = {
    "nan macro_f1": lambda r: r["metrics"].__setitem__("macro_f1", math.nan),
    "metrics deleted": lambda r: r.pop("metrics"),
    "macro_f1 7.5": lambda r: r["metrics"].__setitem__("macro_f1", 7.5),
    "string seed": lambda r: r["key"].__setitem__("seed", "2"),
    "nan confusion cell": lambda r: r["test_confusion_by_group"]["100"][0].__setitem__(0, math.nan),
    "confusion shape": lambda r: r["metrics"]["confusion"].pop(),
    "status OK": lambda r: r.__setitem__("status", "OK"),
    "another method's record": lambda r: r["key"].__setitem__("method", "dna"),
    "inf latency": lambda r: r.__setitem__("latency_ms", math.inf),
}


@pytest.mark.parametrize("name", sorted(BAD_EDITS))
def test_a_lying_record_is_named_and_not_counted(results: Path, name: str) -> None:
    assert n_seeds(results) == 5
    bad = record_path(results)
    edit(bad, BAD_EDITS[name])
    with pytest.raises(ResultError, match=r"seed2\.json"):
        check_location(bad, results, read_result(bad))
    _, invalid = load_checked(results)
    assert [b.path for b in invalid] == [bad.relative_to(results)] and invalid[0].reason
    assert n_seeds(results) == 4  # the row is the mean of the 4 valid seeds, and says so


def test_leaderboard_lists_the_bad_file_under_its_table(results: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    edit(record_path(results), BAD_EDITS["nan macro_f1"])
    edit(record_path(results, "student", 0), BAD_EDITS["string seed"])
    out = tmp_path / "boards"
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(out)]) == 0
    page = (out / "mitbih.md").read_text()
    assert "Left out, invalid records" in page
    assert "`mitbih/inter-patient/small/quick/vanilla_kd/seed2.json`: metrics.macro_f1 is nan" in page
    assert "`mitbih/inter-patient/small/quick/student/seed0.json`: key.seed" in page
    assert "seed2.json: invalid record left out" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------------
# Fuzzing: random deletions, NaNs and wrong types over copies of committed records


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, dict):
        return [1, 2]
    return ["was", "null"]


def _numeric_leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [leaf for k, v in items for leaf in _numeric_leaves(v, (*path, k))]


def mutate(raw: dict[str, Any], rng: random.Random) -> str:
    """One random damage to ``raw`` that no valid record has; returns what was done."""
    kind = rng.choice(["delete", "nan", "type", "metric"])
    if kind == "delete":
        name = rng.choice(sorted(raw))
        raw.pop(name)
        return f"deleted {name}"
    if kind == "nan":
        leaves = [p for p in _numeric_leaves(raw) if p[0] not in ("schema_version",)]
        path = rng.choice(leaves)
        holder = raw
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = rng.choice([math.nan, math.inf, -math.inf])
        return f"non-finite {'.'.join(map(str, path))}"
    if kind == "type":
        name = rng.choice(sorted(set(raw) - {"schema_version"}))
        raw[name] = _wrong_type(raw[name])
        return f"wrong type {name}"
    name = rng.choice(["macro_f1", "accuracy", "kappa"])
    value = rng.choice(["delete", None, "0.5", 7.5, -3.0, [0.5]])
    if value == "delete":  # an ok record must hold its main metric (macro_f1); the others need only be in range
        name = "macro_f1"
        raw["metrics"].pop(name)
    else:
        raw["metrics"][name] = value
    return f"bad metrics.{name}"


def test_fuzzed_records_are_never_counted_and_never_crash_the_leaderboard(results: Path, tmp_path: Path) -> None:
    rng = random.Random(34)
    target = record_path(results)
    original = target.read_text()
    for trial in range(60):
        raw = json.loads(original)
        what = mutate(raw, rng)
        target.write_text(json.dumps(raw))
        good, invalid = load_checked(results)
        assert [b.path.name for b in invalid] == ["seed2.json"], f"trial {trial}: {what} was accepted"
        assert len(good) == 9
    # the whole command over a folder with damaged files: exit 0, n = 4, the file listed
    out = tmp_path / "boards"
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(out)]) == 0
    assert n_seeds(results) == 4
    assert "vanilla_kd/seed2.json" in (out / "mitbih.md").read_text()


# ---------------------------------------------------------------------------------------------------------------------
# run: an invalid record is not done; it reruns, the bad file kept aside as *.invalid


def test_run_sets_an_invalid_record_aside_and_reruns_it(tmp_path: Path) -> None:
    from benchmark.executors import InProcessExecutor
    from benchmark.results import JobKey, results_path
    from benchmark.runner import Job, run_many

    key = JobKey("synthetic", "fixed", "small", "smoke", "student", 0)
    job = Job(key, str(tmp_path / "data"), str(tmp_path / "cache"), device="cpu")
    root = tmp_path / "results"
    (first,) = run_many([job], InProcessExecutor(), root)
    path = results_path(root, key)
    edit(path, lambda r: r["metrics"].__setitem__("macro_f1", math.nan))
    damaged = path.read_text()
    (again,) = run_many([job], InProcessExecutor(), root)  # resume: the invalid record does not count as done
    assert again.ok and again.provenance["finished_at"] >= first.provenance["finished_at"]
    assert (path.parent / "seed0.json.invalid").read_text() == damaged  # kept aside, never deleted
    record = read_result(path)
    assert record.ok and record.history[-1]["status"] == "invalid"
    assert "seed0.json.invalid" in record.history[-1]["error"]


def test_the_python_api_and_export_leave_an_invalid_record_out(results: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    from benchmark.results import load

    edit(record_path(results), BAD_EDITS["macro_f1 7.5"])
    with caplog.at_level("WARNING", logger="benchmark.results"):
        board = load(results)
    assert int(board.loc[board["method_label"] == "vanilla_kd", "n_seeds"].iloc[0]) == 4
    assert any("vanilla_kd/seed2.json: invalid record left out" in r.getMessage() for r in caplog.records)
    assert main(["export", "--results-dir", str(results), "--out", str(tmp_path / "board.csv")]) == 0
