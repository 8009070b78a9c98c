"""Two latency measurements of one model, taken one after the other in an idle process, agree within their stated
spread (issue 16). A timing claim, so it runs with the benchmarks (`-m benchmark`), not in the default suite."""

from __future__ import annotations

import pytest

from benchmark.metrics import measure_latency
from benchmark.nn.arch import build_model
from benchmark.protocol import get_budget

pytestmark = pytest.mark.benchmark


def test_two_latency_measurements_of_one_model_agree_within_their_spread() -> None:
    model = build_model(get_budget("mitbih", "small").default_student, 4, 5)
    first, second = (measure_latency(model, (4, 256), repeats=60, warmup=10) for _ in range(2))
    for lat in (first, second):
        assert lat.q1_ms <= lat.median_ms <= lat.q3_ms and lat.repeats == 60 and lat.threads == 1
    # each median lies inside the other's interquartile range widened by one IQR each side (Tukey-style fences)
    for a, b in ((first, second), (second, first)):
        assert b.q1_ms - b.iqr_ms <= a.median_ms <= b.q3_ms + b.iqr_ms, (first, second)
