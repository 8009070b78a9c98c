"""The parts of a recorded protocol (``Protocol.to_dict()`` as JSON data) and how two of them differ.

Resume and the leaderboard both need to know which settings make the shared teacher: resume ignores them for a
method that uses no teacher, and the leaderboard ranks only records of one teacher. They read it from here.
"""

from __future__ import annotations

from typing import Any

TEACHER_KEYS = ("teacher_arch", "ensemble_size", "kd_source")  # top-level keys; plus the profile's ``teacher_recipe``


def teacher_part(protocol: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``protocol`` that make its teacher: architecture, ensemble size, KD source and recipe."""
    profile = protocol.get("profile") if isinstance(protocol.get("profile"), dict) else {}
    return {**{k: protocol.get(k) for k in TEACHER_KEYS}, "teacher_recipe": profile.get("teacher_recipe")}


def without_teacher(protocol: dict[str, Any]) -> dict[str, Any]:
    """``protocol`` (in place) without the settings of ``teacher_part``."""
    for key in TEACHER_KEYS:
        protocol.pop(key, None)
    if isinstance(protocol.get("profile"), dict):
        protocol["profile"].pop("teacher_recipe", None)
    return protocol


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves that differ between two JSON values (a missing key counts as different)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [path for k in sorted(set(old) | set(new), key=str)
                for path in changed_paths(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".") or "(all)"]
