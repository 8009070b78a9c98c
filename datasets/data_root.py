"""A data root given as the database folder itself (``--data-root ~/data/mitdb``): recognised, or a one-line hint.

A data root is a folder in PhysioNet's layout that *holds* the database folders (``mitdb/``, ``sleep-edf/``). A user
with the files already often points at the database folder instead; its files then appear one level too high.
"""

from __future__ import annotations

from pathlib import Path

from datasets.base import Dataset


def _database_folder(missing: list[str]) -> str | None:
    """The database folder the missing files live under (``mitdb``), when they share one."""
    tops = {Path(name).parts[0] for name in missing if len(Path(name).parts) > 1}
    return next(iter(tops)) if len(tops) == 1 else None


def holds_database_files(dataset: Dataset, data_root: Path) -> bool:
    """Whether ``data_root`` holds the files of ``dataset``'s database folder directly (``100.hea``, not
    ``mitdb/100.hea``)."""
    missing = dataset.missing_files(data_root)
    folder = _database_folder(missing)
    if folder is None:
        return False
    return any((data_root / Path(*Path(name).parts[1:])).is_file() for name in missing[:200])


def locate(dataset: Dataset, data_root: Path) -> tuple[Path, str | None]:
    """(the data root to use, a note to print or None). A root named like the database folder that holds its files
    is replaced by its parent, which holds it as the layout expects."""
    data_root = Path(data_root)
    folder = _database_folder(dataset.missing_files(data_root))
    if folder and data_root.name == folder and holds_database_files(dataset, data_root):
        return data_root.parent, (f"note: --data-root {data_root} is the {folder}/ folder itself; "
                                  f"using its parent {data_root.parent} as the data root")
    return data_root, None


def hint(dataset: Dataset, data_root: Path) -> str:
    """A sentence to add to a "files missing" error when ``data_root`` looks like a database folder; else ""."""
    folder = _database_folder(dataset.missing_files(data_root))
    if folder and holds_database_files(dataset, data_root):
        return (f"; {data_root} holds {folder}'s files directly: the data root is the folder that holds "
                f"{folder}/ (move them into {data_root / folder}/ or pass the parent of a folder named {folder})")
    return ""
