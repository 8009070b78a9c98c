"""``python -m benchmark list [PATTERN]``: methods, datasets with their budget tiers, and profiles, as tables.

Reads the static method catalog and the torch-free protocol, so it runs without importing torch.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from benchmark.catalog import matches, method_catalog, variant_name


def methods_table(pattern: str | None) -> Table | None:
    rows = [m for m in method_catalog() if matches(m.name, pattern)]
    if not rows:
        return None
    table = Table(title="methods (--methods)")
    for col in ("name", "kind", "teacher", "description", "ablations (--ablations)"):
        table.add_column(col)
    for info in rows:
        ablations = ", ".join(f"[{variant_name(options)}]" for options in info.ablations)
        table.add_row(info.name, info.kind, "yes" if info.uses_teacher else "no", info.summary, ablations)
    return table


def datasets_table(pattern: str | None, data_root: Path) -> Table | None:
    from benchmark.protocol import budget_tiers
    from benchmark.registry import RegistryError
    from datasets.base import DATASETS

    rows = [(name, cls) for name, cls in DATASETS.items() if matches(name, pattern)]
    if not rows:
        return None
    table = Table(title="datasets (--dataset) and budget tiers (--budget, deployed-student parameters)")
    for col in ("name", "classes", "folds", "budgets", "data present"):
        table.add_column(col)
    for name, cls in rows:
        try:
            tiers = ", ".join(f"{t.name}≤{t.max_params:,}" for t in budget_tiers(name).values())
        except RegistryError:
            tiers = "—"
        missing = cls().missing_files(data_root)
        table.add_row(name, " ".join(cls.classes), str(cls.n_folds), tiers,
                      "yes" if not missing else f"no ({len(missing)} files missing)")
    return table


def profiles_table(pattern: str | None) -> Table | None:
    from benchmark.protocol import PROFILES

    rows = [p for p in PROFILES.values() if matches(p.name, pattern)]
    if not rows:
        return None
    table = Table(title="profiles (--profile)")
    for col in ("name", "teacher epochs", "student epochs", "search budget (units)", "description"):
        table.add_column(col)
    for p in rows:
        table.add_row(p.name, str(p.teacher_recipe.epochs), str(p.student_recipe.epochs), f"{p.search_budget:g}",
                      p.description)
    return table


def list_tables(pattern: str | None, data_root: Path) -> list[Table]:
    """The tables with at least one row matching ``pattern`` (all rows without one)."""
    tables = [methods_table(pattern), datasets_table(pattern, data_root), profiles_table(pattern)]
    return [t for t in tables if t is not None]
