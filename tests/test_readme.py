"""The README's "Adding a method" snippet, as a user would paste it: ruff-clean and runnable through the registry."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMOKE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("my_method", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))  # registers it, as the import line in methods/ would
from benchmark.results import JobKey
from benchmark.runner import Job, run_one
from methods import METHODS
assert "my_method" in METHODS
result = run_one(Job(JobKey("synthetic", "fixed", "small", "smoke", "my_method", 0), sys.argv[2], sys.argv[2],
                     device="cpu"))
assert result.ok, result.error
print("macro_f1", result.metrics["macro_f1"])
"""


def readme_snippet(heading: str = "## Adding a method") -> str:
    """The first ```python block after ``heading`` in README.md, dedented."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)^\s*```", section, flags=re.S | re.M)
    assert match, f"no python block under {heading!r} in README.md"
    return textwrap.dedent(match.group(1))


@pytest.fixture(scope="module")
def method_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("user_methods") / "user_methods"
    package.mkdir()
    (package / "__init__.py").write_text("")
    path = package / "my_method.py"
    path.write_text(readme_snippet(), encoding="utf-8")
    return path


def test_readme_snippet_passes_ruff(method_file: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(REPO / "pyproject.toml"), str(method_file)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_snippet_smoke_runs_through_the_registry(method_file: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SMOKE, str(method_file), str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "macro_f1" in proc.stdout
