"""Which records a leaderboard may compare: one data and protocol version per dataset, one split definition per
split. Records of other versions are left out (never pooled into a row with the current ones), and said so."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence

from benchmark.results import RunResult

Version = tuple[int, str]  # (protocol_version, data_checksum)


def _finished_at(record: RunResult) -> str:
    return str(record.provenance.get("finished_at") or "")


def _newest(records: Sequence[RunResult], key: Callable[[RunResult], Hashable],
            rank: Callable[[Hashable], tuple]) -> Hashable:
    """The value of ``key`` to keep: highest ``rank``, then the most recently finished record's, then the commonest."""
    latest: dict[Hashable, str] = {}
    for record in records:
        value = key(record)
        latest[value] = max(latest.get(value, ""), _finished_at(record))
    counts = Counter(key(r) for r in records)
    return max(counts, key=lambda v: (*rank(v), latest[v], counts[v], str(v)))


def _version(record: RunResult) -> Version:
    return record.protocol_version, record.data_checksum


def _checked(record: RunResult) -> bool:
    """Whether a record says which data it used (a job that failed before loading data does not)."""
    return bool(record.data_checksum) or record.ok


def current_records(results: Iterable[RunResult]) -> tuple[list[RunResult], list[str]]:
    """The records of each dataset's current version, and one note per dataset that had records left out.

    Per dataset the current version is the newest protocol version and, of its data checksums, the one of the most
    recently finished record; per (dataset, split) likewise one split hash. Records that name no data (failed before
    loading it) are kept.
    """
    records = list(results)
    kept: list[RunResult] = []
    notes: list[str] = []
    for dataset in sorted({r.key.dataset for r in records}):
        mine = [r for r in records if r.key.dataset == dataset]
        checked = [r for r in mine if _checked(r)]
        if not checked:
            kept.extend(mine)
            continue
        current = _newest(checked, _version, lambda v: (v[0],))  # type: ignore[index]
        same = [r for r in checked if _version(r) == current]
        splits = {split: _newest([r for r in same if r.key.split == split], lambda r: r.split_hash, lambda v: ())
                  for split in {r.key.split for r in same}}
        keep = [r for r in same if r.split_hash == splits[r.key.split]]
        left = [r for r in checked if not any(r is k for k in keep)]
        kept.extend([r for r in mine if not _checked(r)] + keep)
        if left:
            notes.append(_note(dataset, current, left, keep))
    return kept, notes


def _note(dataset: str, current: Version, left: Sequence[RunResult], keep: Sequence[RunResult]) -> str:
    """One line: how many records were left out, of which versions, and what the current one is."""
    parts = []
    for (protocol, checksum), n in sorted(Counter(_version(r) for r in left).items()):
        same_version = (protocol, checksum) == current
        what = "another split definition" if same_version else f"data {checksum or '?'}, protocol v{protocol}"
        parts.append(f"{n} of {what}")
    return (f"{dataset}: {len(left)} record(s) left out, made from other data, split or protocol versions "
            f"({'; '.join(parts)}); shown: data {current[1] or '?'}, protocol v{current[0]} ({len(keep)} records). "
            "Rerun them (`python -m benchmark run` reruns stale records) to include them.")
