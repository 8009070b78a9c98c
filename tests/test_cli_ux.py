"""What a user sees: the plan and --dry-run, list PATTERN, show on folders, the latency step, progress lines."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from benchmark.cli import main
from benchmark.progress import PlainDisplay, RichDisplay, result_line
from benchmark.results import JobKey, RunResult


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


@pytest.fixture(scope="module")
def one_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder holding one smoke record of the CE student on the synthetic dataset."""
    root = tmp_path_factory.mktemp("ux")
    code = main(["run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "student", "-q",
                 "--results-dir", str(root / "r"), "--cache-dir", str(root / "c"), "--latency-repeats", "20"])
    assert code == 0
    return root / "r"


def test_dry_run_prints_the_plan_and_runs_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, output = run_cli(capsys, "run", "--dataset", "synthetic", "--methods", "all", "--seeds", "0,1",
                           "--profile", "smoke", "--results-dir", str(tmp_path / "r"), "--dry-run")
    assert code == 0
    assert "plan:" in output and "x 2 seed(s)" in output and "profile smoke" in output and "estimated time" in output
    assert not (tmp_path / "r").exists()


def test_plan_tells_current_records_from_stale_ones(capsys: pytest.CaptureFixture[str], one_record: Path,
                                                  tmp_path: Path) -> None:
    import shutil

    results = tmp_path / "r"
    shutil.copytree(one_record, results)
    argv = ("run", "--dataset", "synthetic", "--methods", "student", "--profile", "smoke", "--results-dir",
            str(results), "--dry-run")
    code, output = run_cli(capsys, *argv)
    assert code == 0 and "(1 already done, skipped)" in output and "stale" not in output
    record = next(results.rglob("seed0.json"))
    data = json.loads(record.read_text())
    data["config"]["protocol"]["profile"]["student_recipe"]["epochs"] += 1  # made under another student recipe
    record.write_text(json.dumps(data))
    code, output = run_cli(capsys, *argv)
    assert code == 0 and "already done" not in output
    assert "rerun: 1 stale record(s), e.g. student/seed0: protocol settings changed " \
           "(profile.student_recipe.epochs)" in output


def test_plan_estimates_from_the_committed_quick_records(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, output = run_cli(capsys, "run", "--dataset", "mitbih", "--methods", "student,vanilla_kd",
                           "--results-dir", str(tmp_path / "r"), "--dry-run")
    assert code == 0 and "estimated time: ~" in output and "unknown" not in output


def test_list_pattern_filters(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, output = run_cli(capsys, "list", "*kd*", "--data-root", str(tmp_path))
    assert code == 0 and "vanilla_kd" in output and "│ student │" not in output and "datasets" not in output
    code, output = run_cli(capsys, "list", "sleep", "--data-root", str(tmp_path))
    assert code == 0 and "sleepedf20" in output and "mitbih" not in output and "methods" not in output
    code, output = run_cli(capsys, "list", "zzz", "--data-root", str(tmp_path))
    assert code == 1 and "nothing matches 'zzz'" in output


def test_show_one_record_prints_confusion_matrix_and_config(capsys: pytest.CaptureFixture[str],
                                                           one_record: Path) -> None:
    record = next(one_record.rglob("seed0.json"))
    code, output = run_cli(capsys, "show", str(record))
    assert code == 0 and "confusion matrix" in output and '"label_smoothing"' in output
    assert json.loads(record.read_text())["latency_ms"] is None  # a smoke run measures no latency


def test_show_accepts_folders_and_globs(capsys: pytest.CaptureFixture[str], one_record: Path) -> None:
    code, output = run_cli(capsys, "show", str(one_record), str(one_record / "**" / "seed*.json"))
    assert code == 0 and output.count("confusion matrix") == 1  # folder and glob name one record: shown in full once
    committed = Path("results/mitbih/inter-patient/small/quick/student")
    code, output = run_cli(capsys, "show", str(one_record), str(committed))
    assert code == 0 and f"{1 + len(list(committed.glob('seed*.json')))} records" in output
    code, output = run_cli(capsys, "show", str(one_record / "nothing*.json"))
    assert code == 2 and "no file matches" in output


def test_latency_step_stores_median_spread_and_repeats(capsys: pytest.CaptureFixture[str], one_record: Path) -> None:
    record = next(one_record.rglob("seed0.json"))
    code, _ = run_cli(capsys, "latency", str(one_record), "--repeats", "30")
    assert code == 0
    latency = json.loads(record.read_text())["latency"]
    assert latency["repeats"] == 30 and latency["threads"] == 1 and latency["step"] == "latency step"
    assert latency["q1_ms"] <= latency["median_ms"] <= latency["q3_ms"]
    code, output = run_cli(capsys, "show", str(record))
    assert code == 0 and "IQR" in output


def test_leaderboard_header_names_the_results_folder(capsys: pytest.CaptureFixture[str], one_record: Path,
                                                     tmp_path: Path) -> None:
    code, _ = run_cli(capsys, "leaderboard", "--results-dir", str(one_record), "--out", str(tmp_path))
    assert code == 0 and f"from {one_record}/" in (tmp_path / "synthetic.md").read_text()


def test_offline_fetch_error_mentions_base_url(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets.base import DATASETS, DataError

    def offline(*args: object, **kwargs: object) -> list[str]:
        raise DataError("mitdb/RECORDS: download failed (Name or service not known)")

    monkeypatch.setattr(DATASETS.get("mitbih"), "fetch", offline)
    code, output = run_cli(capsys, "data", "fetch", "mitbih", "--data-root", str(tmp_path))
    assert code == 2 and "download failed" in output and "--base-url" in output


def _result(ok: bool = True) -> RunResult:
    key = JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", 0)
    if ok:
        return RunResult(key, "ok", metrics={"macro_f1": 0.8123}, config={"main_metric": "macro_f1"})
    return RunResult(key, "failed", error="RuntimeError: boom")


def test_plain_progress_is_one_line_per_start_and_finish() -> None:
    buffer = io.StringIO()
    display = PlainDisplay(Console(file=buffer, width=200))
    label = _result().key.label()
    for name in ("search", "final", "evaluation"):
        display.update(1, label, "phase", {"name": name})
    display.update(1, label, "epoch", {"epoch": 1, "epochs": 3})
    display.job_done(label, result_line(_result(), 95.0), True)
    assert buffer.getvalue().splitlines() == [f"start {label}", "vanilla_kd seed 0: test macro-F1 0.812 (1m35s)"]


def test_rich_progress_shows_worker_phase_epochs_and_eta() -> None:
    buffer = io.StringIO()
    label = _result().key.label()
    display = RichDisplay(Console(file=buffer, width=160, force_terminal=True), "synthetic · smoke", 2,
                          {label: 60.0, "other": 60.0}, workers=1)
    display.start()
    display.update(7, label, "phase", {"name": "final"})
    display.update(7, label, "epoch", {"epoch": 2, "epochs": 5})
    display.progress.refresh()
    display.job_done(label, result_line(_result(), 61.0), True)
    display.progress.refresh()
    display.stop()
    text = buffer.getvalue()
    assert "worker 1: vanilla_kd seed0 · final" in text and "2/5" in text and "ETA ~" in text
    assert "vanilla_kd seed 0: test macro-F1 0.812 (1m01s)" in text


def test_rich_progress_prints_a_variant_label_as_it_is() -> None:
    buffer = io.StringIO()
    key = JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", 0, "alpha=0.5")
    display = RichDisplay(Console(file=buffer, width=160, force_terminal=True), "synthetic · smoke", 1,
                          {key.label(): 60.0}, workers=1)
    display.start()
    display.update(7, key.label(), "phase", {"name": "final"})
    display.progress.refresh()
    display.stop()
    assert "vanilla_kd[alpha=0.5] seed0 · final" in buffer.getvalue()


def test_an_ensemble_teachers_training_time_is_its_members_sum() -> None:
    from benchmark.estimate import teacher_train_wall_s

    assert teacher_train_wall_s({"id": "a", "train_wall_s": 200.0}) == 200.0
    assert teacher_train_wall_s({"members": [{"train_wall_s": 200.0}, {"train_wall_s": 250.0}]}) == 450.0
    assert teacher_train_wall_s({"members": [{"train_wall_s": 200.0}, {"train_wall_s": 0.0}]}) is None  # unknown
    assert teacher_train_wall_s({}) is None and teacher_train_wall_s(None) is None


def test_leaderboard_readme_writes_the_headline_block(capsys: pytest.CaptureFixture[str], one_record: Path,
                                                      tmp_path: Path) -> None:
    from benchmark.headline import END, START

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\n{END}\n", encoding="utf-8")
    code, _ = run_cli(capsys, "leaderboard", "--results-dir", str(one_record), "--out", str(tmp_path / "lb"),
                      "--readme", str(readme))
    assert code == 0 and "| ref | *student* |" in readme.read_text(encoding="utf-8")


def test_leaderboard_readme_without_markers_fails_first_and_writes_nothing(capsys: pytest.CaptureFixture[str],
                                                                           one_record: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n", encoding="utf-8")
    code, output = run_cli(capsys, "leaderboard", "--results-dir", str(one_record), "--out", str(tmp_path / "lb"),
                           "--readme", str(readme))
    assert code == 2 and f"--readme {readme}: no headline block" in output
    assert readme.read_text(encoding="utf-8") == "no markers\n" and not (tmp_path / "lb").exists()


def test_progress_names_each_ensemble_member_and_the_time_left_in_a_phase() -> None:
    buffer = io.StringIO()
    label = _result().key.label()
    display = RichDisplay(Console(file=buffer, width=200, force_terminal=True), "synthetic · smoke", 2,
                          {label: None, "other": 60.0}, workers=1)
    display.start()
    display.update(7, label, "phase", {"name": "teacher", "member": 2, "members": 3})
    display.update(7, label, "epoch", {"epoch": 2, "epochs": 5})
    display.progress.refresh()
    display.stop()
    text = buffer.getvalue()
    assert "vanilla_kd seed0 · teacher member 2/3" in text and "left in this phase" in text
    assert "ETA > ~" in text and "(+1 unmeasured job(s))" in text  # the known part, not a bare "?"
    plain = io.StringIO()
    PlainDisplay(Console(file=plain, width=200)).update(1, label, "phase", {"name": "teacher", "member": 1,
                                                                             "members": 3})
    assert "ensemble teacher member 1/3 for vanilla_kd seed0" in plain.getvalue()


def test_preparing_an_ensemble_teacher_reports_each_member(tmp_path: Path) -> None:
    import queue

    from benchmark.runner import Job, prepare_teacher

    sink: queue.Queue = queue.Queue()
    key = JobKey("synthetic", "fixed", "small", "smoke", "oracle_kd", 0)
    info = prepare_teacher(Job(key, str(tmp_path), str(tmp_path), device="cpu", progress=sink))
    members = [data["member"] for _, _, kind, data in list(sink.queue) if kind == "phase" and "member" in data]
    assert members == list(range(1, len(info["members"]) + 1)) and len(members) > 1


def test_list_shows_each_profile_description_whole(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmark.protocol import PROFILES

    code, output = run_cli(capsys, "list", "quick")
    assert code == 0
    words = " ".join(output.replace("│", " ").split())
    for profile in PROFILES.values():
        assert not re.search(r"[~\d.]$", profile.description), f"{profile.name}: description cut off"
    assert all(word in words for word in PROFILES["quick"].description.split())
