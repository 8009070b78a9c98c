"""Reads older result records as the current schema: each missing field derived from what the record holds.

Schema 1 and 2 records lack the typed fields of schema 3; they are derived here, once, on reading:

- ``fold`` and ``cv``: from ``config["dataset_card"]["cv"]``; a failed fold record written before its dataset card
  (no card) gets its fold from its ``foldNN`` split name, its ``cv`` stays None;
- ``reference``: from the method catalog (``Method.reference``, read without importing the methods);
- ``main_metric``: ``config["main_metric"]`` (every runner stored it), else ``macro_f1`` (the Dataset default);
- ``teacher_ids``: the ``teacher`` info's ``id``, or its ``members``' ids;
- ``metrics["classes"]``/``["scored_classes"]`` when missing: from the dataset card's class lists;
- ``test_confusion_by_group``: unknown ({}), so statistics fall back to seed-level intervals for such runs.

Schema 3 records lack ``protocol_final`` (schema 4): none was trained ({}).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_FOLD_SPLIT = re.compile(r"fold(\d+)")


@lru_cache(maxsize=1)
def _reference_methods() -> frozenset[str]:
    """Names of the registered reference methods (``Method.reference``), from the static catalog."""
    from benchmark.catalog import method_catalog

    return frozenset(info.name for info in method_catalog() if info.reference)


def _card(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    config = raw.get("config")
    card = config.get("dataset_card") if isinstance(config, Mapping) else None
    return card if isinstance(card, Mapping) else {}


def _fold_and_cv(raw: Mapping[str, Any]) -> tuple[int | None, dict[str, Any] | None]:
    """(fold, cv block as a dict) of an older record; (None, None) for a fixed split."""
    cv = _card(raw).get("cv")
    if isinstance(cv, Mapping) and isinstance(cv.get("n_folds"), int):
        block = {"n_folds": cv["n_folds"], "folds_file": str(cv.get("folds_file", "")),
                 "folds_sha256": str(cv.get("folds_sha256", "")), "scheme": str(cv.get("scheme", ""))}
        return (int(cv["fold"]) if isinstance(cv.get("fold"), int) else None), block
    match = _FOLD_SPLIT.fullmatch(str(raw.get("key", {}).get("split", "")))
    return (int(match.group(1)) if match else None), None


def teacher_ids(teacher: Mapping[str, Any]) -> list[str]:
    """The teacher info's ``id``, or the ids of its ensemble ``members``; [] without a teacher."""
    if not isinstance(teacher, Mapping):
        return []
    if isinstance(teacher.get("members"), list):
        return [str(m.get("id")) for m in teacher["members"] if isinstance(m, Mapping) and m.get("id")]
    return [str(teacher["id"])] if teacher.get("id") else []


def _with_classes(metrics: dict[str, Any], card: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics`` with ``classes``/``scored_classes`` filled from the card when the record lacks them."""
    if metrics and "classes" not in metrics and isinstance(card.get("classes"), list):
        metrics = {**metrics, "classes": list(card["classes"])}
        if "scored_classes" not in metrics and isinstance(card.get("scored_classes"), list):
            metrics["scored_classes"] = list(card["scored_classes"])
    return metrics


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """A schema 1/2/3 record (parsed JSON) as a current one: the newer fields derived, ``schema_version`` current."""
    from benchmark.results import SCHEMA_VERSION

    out = dict(raw)
    fold, cv = _fold_and_cv(raw)
    config = raw.get("config") if isinstance(raw.get("config"), Mapping) else {}
    main = config.get("main_metric")
    out.setdefault("fold", fold)
    out.setdefault("cv", cv)
    out.setdefault("reference", str(raw["key"]["method"]) in _reference_methods())
    out.setdefault("main_metric", main if isinstance(main, str) and main else "macro_f1")
    out.setdefault("teacher_ids", teacher_ids(raw.get("teacher") or {}))
    out.setdefault("test_confusion_by_group", {})
    out.setdefault("protocol_final", {})
    out["metrics"] = _with_classes(dict(raw.get("metrics") or {}), _card(raw))
    out["schema_version"] = SCHEMA_VERSION
    return out
