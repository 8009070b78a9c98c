"""``<audits>/README.md``: every audit below a folder in one table, then each method's mean τ."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.audit_index import render_index, write_index


def _audit(root: Path, method: str, seed: int, tau_val: float | None, percentile: float | None,
           evaluated: int | None = 1234) -> None:
    label = f"mitbih/inter-patient/small/quick/{method}/seed{seed}"
    folder = root / label
    folder.mkdir(parents=True)
    summary = {"retrained": 11, "kendall_tau_val": tau_val, "kendall_p_val": 0.04 if tau_val else None,
               "kendall_tau_test": 0.1, "kendall_p_test": 0.7, "chosen_percentile_val": percentile,
               "chosen_percentile_test": 50.0}
    key = {"dataset": "mitbih", "split": "inter-patient", "budget": "small", "profile": "quick", "method": method,
           "seed": seed, "variant": ""}
    report = {"record_label": label, "key": key, "pool_size": 1234, "summary": summary}
    if evaluated is not None:  # audits written before the count was kept lack it
        report["evaluated"] = evaluated
    (folder / "audit.json").write_text(json.dumps(report))


def test_one_row_per_audit_and_a_mean_per_method(tmp_path: Path) -> None:
    _audit(tmp_path, "dna", 0, 0.5, 90.0, evaluated=168)  # block paths scored; their sums rank 1,234 networks
    _audit(tmp_path, "dna", 1, 0.3, 70.0, evaluated=None)
    _audit(tmp_path, "autokd", 0, None, None)  # constant scores: tau undefined; chosen not among the candidates
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "audit.json").write_text("{not json")  # a damaged file is left out, not fatal
    text = render_index(tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| mitbih/")]
    assert rows[:3] == [
        "| mitbih/inter-patient/small/quick | autokd | seed0 | 1,234 | 1,234 | 11 | n/a (n/a) | 0.100 (0.700) "
        "| n/a / 50 | [audit.md](mitbih/inter-patient/small/quick/autokd/seed0/audit.md) |",
        "| mitbih/inter-patient/small/quick | dna | seed0 | 168 | 1,234 | 11 | 0.500 (0.040) | 0.100 (0.700) | 90 / 50 "
        "| [audit.md](mitbih/inter-patient/small/quick/dna/seed0/audit.md) |",
        "| mitbih/inter-patient/small/quick | dna | seed1 | ? | 1,234 | 11 | 0.300 (0.040) | 0.100 (0.700) | 70 / 50 "
        "| [audit.md](mitbih/inter-patient/small/quick/dna/seed1/audit.md) |",
    ]
    assert rows[3:] == ["| mitbih/inter-patient/small/quick | autokd | 1 | n/a | 0.100 | n/a / 50 |",
                        "| mitbih/inter-patient/small/quick | dna | 2 | 0.400 | 0.100 | 80 / 50 |"]


def test_the_index_is_written_atomically_and_says_when_empty(tmp_path: Path) -> None:
    path = write_index(tmp_path)
    assert path == tmp_path / "README.md" and "No audits yet." in path.read_text()
    _audit(tmp_path, "dna", 0, 0.5, 90.0)
    assert "| dna | 1 | 0.500 |" in write_index(tmp_path).read_text()
