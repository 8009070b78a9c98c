"""The README's headline block (benchmark.headline): generated from the records between two markers, never by hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_leaderboard import _record, synthetic_records

from benchmark.aggregate import aggregate
from benchmark.headline import END, START, HeadlineError, render_headline, with_headline, write_headline


def _records() -> list:  # type: ignore[type-arg]
    """synthetic_records plus a 3-seed beta (ranked) and an ablation variant (never in the headline)."""
    records = [*synthetic_records(), _record("beta", "small", 2, (0.74, 0.87, 0.66, 0.76, 0.75), 800)]
    ablation = _record("alpha", "small", 0, (0.99, 0.99, 0.99, 0.99, 0.99), 900)
    return [*records, replace(ablation, key=replace(ablation.key, variant="x=1"))]


def test_the_headline_lists_ranked_methods_and_references_best_first() -> None:
    text = render_headline(aggregate(_records()))
    small = text.split("budget `small`", 1)[1].split("**toy**", 1)[0]
    lines = [line for line in small.splitlines() if line.startswith("| ")][2:]
    assert [line.split(" | ")[1] for line in lines] == ["alpha", "beta", "*student*"]  # by mean, best first
    assert "alpha[x=1]" not in text  # ablations stay in the full tables
    assert "[full table](leaderboards/toy.md)" in text and "seeds 0, 1, 2" in small
    assert "seeds 0, 1, 2 · code: `abc123` (7 runs) ([full table]" in small  # its rows' runs: 3 + 3 + 1
    assert "Δ vs student (points)" in text


def test_the_block_between_the_markers_is_replaced_and_nothing_else(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{START}\nold numbers\n{END}\n\nafter\n", encoding="utf-8")
    board = aggregate(_records())
    write_headline(readme, board)
    once = readme.read_text(encoding="utf-8")
    assert "old numbers" not in once and once.startswith("# Title\n\nbefore\n") and once.endswith(f"{END}\n\nafter\n")
    assert render_headline(board) in once
    write_headline(readme, board)
    assert readme.read_text(encoding="utf-8") == once  # idempotent


@pytest.mark.parametrize("text", ["no markers at all\n", f"{END}\nreversed\n{START}\n"])
def test_a_readme_without_its_markers_is_refused_in_one_line_naming_it(tmp_path: Path, text: str) -> None:
    readme = tmp_path / "README.md"
    with pytest.raises(HeadlineError) as caught:
        with_headline(text, "numbers", readme)
    assert str(readme) in str(caught.value) and "\n" not in str(caught.value)
