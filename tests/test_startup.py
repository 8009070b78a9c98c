"""The CLI starts without heavy imports: `--help`, `list` and `show` never import torch and friends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "pandas", "optuna", "mne", "matplotlib", "wfdb", "scipy")

PROBE = """
import contextlib, io, json, sys
from benchmark.cli import main, make_parser
make_parser()
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["list"], ["list", "kd"], ["show", "results/mitbih"]])
def test_commands_import_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,), *argv, *(["--data-root", str(tmp_path)]
                                                                              if argv[0] == "list" else [])],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, proc.stderr


def test_parser_builds_without_torch() -> None:
    code = "import sys; from benchmark.cli import make_parser; make_parser(); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=True)
    assert proc.stdout.strip() == "False"


def test_verbose_and_quiet_accepted_after_the_subcommand() -> None:
    from benchmark.cli import make_parser

    parser = make_parser()
    assert parser.parse_args(["run", "--dataset", "synthetic", "-v"]).verbose
    assert parser.parse_args(["-v", "run", "--dataset", "synthetic"]).verbose
    assert parser.parse_args(["list", "-q"]).quiet
    assert not parser.parse_args(["list"]).verbose


def test_static_catalog_agrees_with_the_registry() -> None:
    from benchmark.catalog import method_catalog
    from methods import METHODS

    catalog = [(m.name, m.summary, m.uses_teacher, m.reference, m.ablations) for m in method_catalog()]
    registry = [(name, cls.summary, cls.uses_teacher, cls.reference, cls.ablations) for name, cls in METHODS.items()]
    assert catalog == registry
