"""The search audit's numbers and table: Kendall τ between search-time and retrained scores, the chosen
architecture's percentile among the retrained candidates, and the markdown a reader sees. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scipy import stats

VAL = "retrained_val_macro_f1"  # the protocol's selection signal, on the validation split
TEST = "test_macro_f1"  # the audit's ground truth: post hoc, never used to select anything


def finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def kendall(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None]:
    """(τ-b, p-value) of scipy.stats.kendalltau; (None, None) with fewer than two pairs or when either side is
    constant (τ is undefined there: scipy returns NaN)."""
    if len(x) < 2:
        return None, None
    result = stats.kendalltau(x, y)
    return finite_or_none(result.statistic), finite_or_none(result.pvalue)


def percentile(others: Sequence[float], chosen: float) -> float | None:
    """Where ``chosen`` falls among ``others``: scipy.stats.percentileofscore, kind="mean" (100: above all of them,
    0: below all, a tie counts half); None without others."""
    return float(stats.percentileofscore(list(others), chosen, kind="mean")) if others else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """τ of the search-time score against the retrained validation score (and against test macro-F1), and the
    chosen candidate's percentile among the other retrained ones on both."""
    search = [r["search_score"] for r in rows]
    out: dict[str, Any] = {"retrained": len(rows)}
    for column, name in ((VAL, "val"), (TEST, "test")):
        tau, p = kendall(search, [r[column] for r in rows])
        out[f"kendall_tau_{name}"], out[f"kendall_p_{name}"] = tau, p
    chosen = [r for r in rows if "chosen" in r["roles"]]
    others = [r for r in rows if "chosen" not in r["roles"]]
    for column, name in ((VAL, "val"), (TEST, "test")):
        out[f"chosen_percentile_{name}"] = (percentile([r[column] for r in others], chosen[0][column])
                                            if chosen else None)
    return out


def format_number(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; "n/a" for None or a non-finite number (an undefined τ or mean)."""
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def pool_sentence(header: dict[str, Any]) -> str:
    """How many candidates the search scored and how many the audit's ranking held (more for DNA, whose block scores
    rank whole networks); an audit written before ``evaluated`` was kept gives the pool only."""
    pool, evaluated = header["pool_size"], header.get("evaluated")
    if evaluated is None or evaluated == pool:
        return f"{pool:,} distinct candidates in the search."
    return f"The search scored {evaluated:,} distinct candidates; its scores rank a pool of {pool:,}."


def markdown(header: dict[str, Any], rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """The audit of one record as markdown: what was audited, the summary numbers, one row per candidate."""
    lines = [
        f"# Search audit: {header['record_label']}",
        "",
        f"Record `{header['record']}`; {summary['retrained']} candidate(s) retrained from scratch with the method's "
        f"final training and the protocol's retraining recipe, seed {header['seed']}: the top {header['k']} by "
        f"search-time score, {header['k']} others drawn at random (seed {header['audit_seed']}) and the chosen one. "
        f"{pool_sentence(header)}",
        "",
        "Retrained val macro-F1 is the protocol's selection signal (validation split). Test macro-F1 is the audit's "
        "ground truth, measured post hoc; nothing was selected on it.",
        "",
        "| | validation (selection signal) | test (ground truth, post hoc) |",
        "| --- | ---: | ---: |",
        f"| Kendall τ (search score vs retrained) | {format_number(summary['kendall_tau_val'], 3)} "
        f"(p {format_number(summary['kendall_p_val'], 3)}) | {format_number(summary['kendall_tau_test'], 3)} "
        f"(p {format_number(summary['kendall_p_test'], 3)}) |",
        f"| chosen architecture's percentile | {format_number(summary['chosen_percentile_val'], 1)} "
        f"| {format_number(summary['chosen_percentile_test'], 1)} |",
        "",
        "τ is n/a when fewer than two candidates were retrained or either score is constant; the percentile is n/a "
        "when the chosen architecture is not among the trace's candidates.",
        "",
        "| role | candidate | search score | fidelity | params | retrained val macro-F1 "
        "| test macro-F1 (ground truth) |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: -r["search_score"]):
        lines.append(f"| {', '.join(r['roles'])} | `{r['id']}` | {r['search_score']:.4f} | {r['fidelity']} "
                     f"| {r['params']:,} | {r[VAL]:.4f} | {r[TEST]:.4f} |")
    return "\n".join(lines) + "\n"
