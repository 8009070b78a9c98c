import json
from pathlib import Path

import pytest

from benchmark.results import (
    JobKey,
    ResultError,
    RunResult,
    atomic_write_text,
    load_results,
    read_result,
    results_path,
    write_result,
)

KEY = JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", 3)


def make_result(**changes: object) -> RunResult:
    fields = {"key": KEY, "status": "ok", "metrics": {"macro_f1": 0.5}, "deployed_params": 1234, **changes}
    return RunResult(**fields)  # type: ignore[arg-type]


def test_round_trip_preserves_every_field(tmp_path: Path) -> None:
    result = make_result(arch={"family": "staged_cnn", "params": {"stem_channels": 8}}, error=None)
    path = write_result(tmp_path, result)
    assert path == tmp_path / "synthetic/fixed/small/smoke/vanilla_kd/seed3.json"
    assert read_result(path) == result


def test_path_is_derived_from_the_key(tmp_path: Path) -> None:
    parts = results_path(tmp_path, KEY).parts[-6:]
    assert parts == ("synthetic", "fixed", "small", "smoke", "vanilla_kd", "seed3.json")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    write_result(tmp_path, make_result())
    write_result(tmp_path, make_result(status="failed", error="boom"))
    files = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert files == ["seed3.json"]
    assert read_result(results_path(tmp_path, KEY)).error == "boom"


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_text(target, "old")

    with pytest.raises(TypeError):
        atomic_write_text(target, object())  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    ("[]", "must be a JSON object"),
    (json.dumps({"schema_version": 99}), "schema_version 99"),
])
def test_bad_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "seed0.json"
    path.write_text(text)
    with pytest.raises(ResultError, match=message) as err:
        read_result(path)
    assert str(path) in str(err.value)


def test_unknown_fields_are_rejected(tmp_path: Path) -> None:
    raw = json.loads(make_result().to_json())
    raw["surprise"] = 1
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ResultError, match="unknown fields surprise"):
        read_result(path)


def test_load_results_reads_all_records(tmp_path: Path) -> None:
    for seed in range(3):
        write_result(tmp_path, make_result(key=JobKey("synthetic", "fixed", "small", "smoke", "student", seed)))
    assert [r.key.seed for r in load_results(tmp_path)] == [0, 1, 2]
