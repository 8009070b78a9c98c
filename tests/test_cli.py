import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.cli import main, parse_seeds
from methods import METHODS

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--dataset", "synthetic", "--methods", "vanila_kd"],
     "unknown method 'vanila_kd'; did you mean 'vanilla_kd'?"),
    (["run", "--dataset", "mitbh"], "unknown dataset 'mitbh'; did you mean 'mitbih'?"),
    (["run", "--dataset", "synthetic", "--budget", "smal"],
     "unknown budget 'smal' for dataset 'synthetic'; did you mean"),
    (["run", "--dataset", "synthetic", "--profile", "quik"], "unknown profile 'quik'; did you mean 'quick'?"),
    (["run", "--dataset", "synthetic", "--seeds", "a,b"], "--seeds: expected"),
    (["run", "--dataset", "synthetic", "--set", "vanilla_kd.alpha"], "--set: expected METHOD.OPTION=VALUE"),
    (["show", "nope.json"], "nope.json: cannot read"),
])
def test_bad_input_is_one_clear_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                argv: list[str], message: str) -> None:
    code, output = run_cli(capsys, *argv, *(["--results-dir", str(tmp_path)] if argv[0] == "run" else []))
    assert code == 2
    assert message in " ".join(output.split())
    assert "Traceback" not in output


def test_missing_data_root_names_the_fetch_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, output = run_cli(capsys, "run", "--dataset", "mitbih", "--data-root", str(tmp_path / "empty"),
                           "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert "python -m benchmark data fetch mitbih" in " ".join(output.split())


@pytest.mark.slow  # every method, two seeds, through the CLI (tests/test_cli_ux.py runs one job through it)
def test_run_then_resume_then_leaderboard_then_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    common = ["--dataset", "synthetic", "--profile", "smoke", "--seeds", "0,1", "--results-dir", str(tmp_path / "r"),
              "--cache-dir", str(tmp_path / "c")]
    code, output = run_cli(capsys, "run", "--methods", "all", *common)
    assert code == 0, output
    assert len(list((tmp_path / "r").rglob("seed*.json"))) == 2 * len(METHODS)
    code, output = run_cli(capsys, "run", "--methods", "all", *common)
    assert code == 0 and "nothing to do" in output
    code, output = run_cli(capsys, "leaderboard", "--results-dir", str(tmp_path / "r"), "--out", str(tmp_path / "lb"))
    assert code == 0 and (tmp_path / "lb" / "synthetic.md").exists() and (tmp_path / "lb" / "README.md").exists()
    record = next((tmp_path / "r").rglob("vanilla_kd/seed0.json"))
    code, output = run_cli(capsys, "show", str(record))
    assert code == 0 and "test macro-F1" in output


def test_parse_seeds() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("2-4") == [2, 3, 4]


@pytest.mark.slow  # a 10-job sweep in a subprocess, interrupted, then resumed
def test_ctrl_c_keeps_finished_records_and_the_run_resumes(tmp_path: Path) -> None:
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "benchmark", "run", "--dataset", "synthetic", "--profile", "smoke",
           "--methods", "student", "--seeds", "0-9", "--results-dir", str(results), "--cache-dir", str(tmp_path / "c")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A shell that starts a job in the background without job control (`nohup ... &`) makes it ignore SIGINT, and
    # Python then never installs its Ctrl-C handler; the run must see Ctrl-C as a terminal user's run would.
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(list(results.rglob("seed*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "run the same command again to resume" in output
    kept = sorted(results.rglob("seed*.json"))
    assert 2 <= len(kept) < 10
    assert not list(results.rglob("*.tmp"))
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(kept)} already done" in " ".join(again.stderr.split())
    assert len(list(results.rglob("seed*.json"))) == 10


@pytest.mark.slow  # worker processes started and stopped mid-sweep
def test_sigterm_stops_a_run_with_workers_and_exits_143(tmp_path: Path) -> None:
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "benchmark", "run", "--dataset", "synthetic", "--profile", "smoke",
           "--methods", "student", "--seeds", "0-59", "--workers", "2", "--results-dir", str(results),
           "--cache-dir", str(tmp_path / "c")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while len(list(results.rglob("seed*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # to the parent only, as `kill PID` or a scheduler would
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output  # 128 + SIGTERM, as shells report it (Ctrl-C: 130)
    assert "run the same command again to resume" in output
    assert 2 <= len(list(results.rglob("seed*.json"))) < 60
    assert not list(results.rglob("*.tmp"))


@pytest.mark.data
def test_truncated_dat_fails_fast_naming_the_file(capsys: pytest.CaptureFixture[str], data_root: Path,
                                                  tmp_path: Path) -> None:
    mitdb = tmp_path / "root" / "mitdb"
    mitdb.mkdir(parents=True)
    for source in (data_root / "mitdb").iterdir():
        (mitdb / source.name).symlink_to(source)
    (mitdb / "100.dat").unlink()
    (mitdb / "100.dat").write_bytes((data_root / "mitdb" / "100.dat").read_bytes()[:100_000])
    code, output = run_cli(capsys, "run", "--dataset", "mitbih", "--methods", "student", "--profile", "smoke",
                           "--data-root", str(tmp_path / "root"), "--cache-dir", str(tmp_path / "c"),
                           "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert "100.dat: checksum mismatch" in " ".join(output.split())
    assert not (tmp_path / "r").exists()  # nothing was run, nothing half-written


def test_set_options_are_recorded_as_a_separate_variant(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    common = ["run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "vanilla_kd",
              "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    assert run_cli(capsys, *common)[0] == 0
    code, output = run_cli(capsys, *common, "--set", "vanilla_kd.alpha=0.5")
    assert code == 0 and "vanilla_kd[alpha=0.5] seed 0: test macro-F1" in output
    folders = sorted(p.parent.name for p in (tmp_path / "r").rglob("seed0.json"))
    assert folders == ["vanilla_kd", "vanilla_kd[alpha=0.5]"]
    variant = next((tmp_path / "r").rglob("vanilla_kd[[]alpha=0.5[]]/seed0.json"))
    assert '"alpha": 0.5' in variant.read_text()


def test_show_takes_a_variant_folder_as_a_path_and_prints_its_label(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    from benchmark.results import JobKey, RunResult, write_result

    for seed in (0, 1):  # two records: the table form
        key = JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", seed, "alpha=0.5")
        path = write_result(tmp_path, RunResult(key, "ok", metrics={"macro_f1": 0.5}, deployed_params=10))
    assert path.parent.name == "vanilla_kd[alpha=0.5]"  # '[' would make it a glob matching nothing
    code, output = run_cli(capsys, "show", str(path.parent))
    assert code == 0, output
    first_column = "".join(line.split("│")[1].strip() for line in output.splitlines() if line.startswith("│"))
    assert "vanilla_kd[alpha=0.5]/seed0" in first_column and "vanilla_kd[alpha=0.5]/seed1" in first_column



def test_ablations_add_each_methods_variants_to_the_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    common = ["run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "vanilla_kd,oracle_kd,mpkd_nas",
              "--dry-run", "--results-dir", str(tmp_path / "r")]
    code, plain = run_cli(capsys, *common)
    assert code == 0 and "3 job(s)" in plain
    code, output = run_cli(capsys, *common, "--ablations", "--set", "mpkd_nas.search=false")
    assert code == 0
    methods = " ".join(output.split()).split("methods: ", 1)[1].split(" seeds:", 1)[0]
    # --set applies beneath every variant; the ablation that repeats it (search=false) is not run twice
    assert methods.split(", ") == [
        "vanilla_kd", "oracle_kd", "oracle_kd[search=false]", "mpkd_nas[search=false]",
        "mpkd_nas[aux_heads=false,search=false]", "mpkd_nas[search=false,weighted=false]",
        "mpkd_nas[sampling=epoch,search=false]"]


@pytest.mark.parametrize("name", sorted(name for name, _ in METHODS.items()))
def test_every_ablation_is_a_valid_non_default_config(name: str) -> None:
    cls = METHODS.get(name)
    default = cls.Config()
    for options in cls.ablations:
        config = cls.Config.from_dict(options)
        assert config != default, f"{name}: ablation {options} is the default config"
