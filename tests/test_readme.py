"""The README's "Adding a method" snippet, as a user would paste it: ruff-clean, and through the same registry tests
as a built-in method once added as the README says (one file plus one import line, in a copy of the repository)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SOURCES = ("benchmark", "methods", "datasets", "tests", "pyproject.toml")
# The registry-parametrised tests a built-in method meets, selected for the new method (and the static catalog `list`
# reads, which must find it too): the same test modules, run in a copy of the repository with the method added.
REGISTRY_TESTS = ("tests/test_methods_smoke.py", "tests/test_cli.py", "tests/test_startup.py")
SELECTION = "my_method or test_static_catalog_agrees_with_the_registry"


def readme_snippet(heading: str = "## Adding a method") -> str:
    """The first ```python block after ``heading`` in README.md, dedented."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)^\s*```", section, flags=re.S | re.M)
    assert match, f"no python block under {heading!r} in README.md"
    return textwrap.dedent(match.group(1))


def add_method(repo: Path, source: str) -> None:
    """The README's two steps: ``methods/my_method.py`` holds the snippet; ``my_method`` joins the import line."""
    (repo / "methods" / "my_method.py").write_text(source, encoding="utf-8")
    init = repo / "methods" / "__init__.py"
    lines = init.read_text(encoding="utf-8").splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if line.startswith("from methods import "))
    names, sep, comment = lines[last].partition("  #")
    lines[last] = f"{names.rstrip()}, my_method{sep}{comment}" if sep else f"{names.rstrip()}, my_method\n"
    init.write_text("".join(lines), encoding="utf-8")


def repository_with(tmp: Path, source: str) -> Path:
    """A copy of this repository's code and tests with ``source`` added as the README says."""
    repo = tmp / "repo"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            repo.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, repo / name)
    add_method(repo, source)
    return repo


def registry_tests(repo: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    """The registry-parametrised tests of ``repo`` for the new method (its own packages shadow any installed ones)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-k",
                           " or ".join(selection) if selection else SELECTION, *REGISTRY_TESTS],
                          cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=900)


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


def test_readme_snippet_passes_the_registry_tests_a_method_meets(tmp_path: Path) -> None:
    proc = registry_tests(repository_with(tmp_path, readme_snippet()))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    for test in ("test_smoke_run[my_method]", "test_method_is_documented[my_method]",
                 "test_every_numeric_option_declares_its_range[my_method]",
                 "test_every_ablation_is_a_valid_non_default_config[my_method]"):
        assert test in proc.stdout, f"{test} did not run"
    assert " failed" not in proc.stdout


def test_the_registry_tests_catch_a_method_without_checks(tmp_path: Path) -> None:
    """The same tests fail the snippet without its `checks` line (the README's recipe before issue 33)."""
    source = "\n".join(line for line in readme_snippet().splitlines() if "checks:" not in line) + "\n"
    proc = registry_tests(repository_with(tmp_path, source), "test_every_numeric_option_declares_its_range")
    assert proc.returncode == 1
    assert "MyConfig: no range declared in `checks` for alpha" in proc.stdout
