"""The quiet latency step: remeasure finished records' CPU latency, one model at a time, on one thread.

Latency taken at the end of a training job runs beside whatever else the machine is doing (other workers, the
next job's data loading); ``python -m benchmark latency`` (and ``run`` once its jobs are done) rebuilds each
record's deployed architecture from its ``arch`` and measures it alone. Weights do not change the work of a
forward pass, so a freshly initialised model of the same architecture is timed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from benchmark.atomic import atomic_write_text
from benchmark.results import RunResult, read_result


def record_input_shape(result: RunResult) -> tuple[int, int]:
    """(channels, length) of one input, from the record's dataset card."""
    card = result.config.get("dataset_card", {})
    if "input_shape" in card:
        channels, length = card["input_shape"]
        return int(channels), int(length)
    channels = card.get("channels", 1 if "channel" in card else None)
    channels = len(channels) if isinstance(channels, list) else channels
    if channels is None or "window_samples" not in card:
        raise ValueError(f"{result.key.label()}: the record's dataset card has no input shape")
    return int(channels), int(card["window_samples"])


def build_deployed_model(result: RunResult) -> Any:
    """The record's deployed architecture, freshly initialised (the method modules register every family)."""
    import methods  # noqa: F401  (registers the search spaces' architecture families)
    from benchmark.nn.arch import ArchSpec, build_model

    n_classes = len(result.config.get("dataset_card", {}).get("classes") or result.metrics["classes"])
    return build_model(ArchSpec.from_dict(result.arch), record_input_shape(result)[0], n_classes)


def remeasure(paths: Iterable[Path], repeats: int = 200, warmup: int = 20) -> Iterator[tuple[Path, RunResult]]:
    """Measure and rewrite (atomically) the latency of every OK record in ``paths``; yields what it rewrote."""
    from benchmark.metrics import measure_latency

    for path in paths:
        result = read_result(path)
        if not result.ok or not result.arch:
            continue
        latency = measure_latency(build_deployed_model(result), record_input_shape(result), repeats, warmup)
        result.latency_ms = latency.median_ms
        result.latency = {**latency.to_dict(), "step": "latency step",
                          "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(path, result.to_json() + "\n")
        yield path, result
