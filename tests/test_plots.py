"""The leaderboard plots at the release's size (16 rows: methods, reference rows, ablation variants) stay legible:
distinct styles, linear well-ticked axes, legends beside the panels, no blank gaps."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmark.plots import _families, _styles, pareto_figure, per_class_figure

METHODS = ("mpkd_nas", "mf_kdnas", "vanilla_kd", "autokd", "oracle_kd", "dna")
REFERENCES = {"ensemble": 300_000.0, "teacher": 100_000.0, "student": 20_557.0}
VARIANTS = ("mpkd_nas[aux_heads=false]", "mpkd_nas[sampling=epoch]", "mpkd_nas[search=false]",
            "mpkd_nas[weighted=false]", "mf_kdnas[low_loss=ce]", "oracle_kd[search=false]", "dna[final_kd=true]")
CLASSES = ("N", "S", "V", "F", "Q")


def board() -> pd.DataFrame:
    """A table shaped like release 1's MIT-BIH `small` one: 6 methods, 3 reference rows (two far costlier), 7
    ablation variants, close scores with wide CIs."""
    rows = []
    labels = [*METHODS, *REFERENCES, *VARIANTS]
    for i, label in enumerate(labels):
        mean = 0.47 + 0.004 * ((i * 7) % 11)
        params = REFERENCES.get(label, 20_000.0 + 800.0 * i)
        rows.append({"method_label": label, "reference": label in REFERENCES,
                     "table": "reference" if label in REFERENCES else "ablation" if "[" in label else "ranked",
                     "mean": mean, "std": 0.03, "ci_low": mean - 0.065, "ci_high": mean + 0.05,
                     "main_metric": "macro_f1",
                     "params": params, "macs": params * 19.0, "latency_ms": 0.7 + 0.15 * (i % 12),
                     "classes": CLASSES,
                     **{f"{kind}:{c}": 0.1 + 0.05 * ((i + k) % 9)
                        for k, c in enumerate(CLASSES) for kind in ("se", "ppv")}})
    return pd.DataFrame(rows)


def drawn(fig: Figure | None) -> Figure:
    assert fig is not None
    FigureCanvasAgg(fig).draw()
    return fig


def data_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.axison]


def test_every_row_has_its_own_style_and_a_variant_its_methods_colour() -> None:
    styles = _styles(board())
    assert len(set(styles.values())) == len(styles) == 16
    for variant in VARIANTS:
        assert styles[variant].colour == styles[variant.split("[")[0]].colour and not styles[variant].filled
    assert len({styles[m].colour for m in METHODS}) == len(METHODS)  # methods: all different colours
    assert _styles(board().iloc[::-1]) == styles  # fixed by the labels, not the order: every table of a page agrees


def test_families_put_variants_beside_their_methods() -> None:
    (_, main), (_, ablation) = _families(board())
    assert set(main["method_label"]) == {*METHODS, *REFERENCES}
    labels = list(ablation["method_label"])
    assert set(labels) == {*VARIANTS, "mpkd_nas", "mf_kdnas", "oracle_kd", "dna"}
    for variant in VARIANTS:  # each variant follows its method, with only its siblings between
        parent = variant.split("[")[0]
        assert all(label.startswith(parent) for label in labels[labels.index(parent):labels.index(variant) + 1])


def overlaps(a, b) -> bool:  # two display-space boxes
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("make", [pareto_figure, per_class_figure])
def test_legends_cover_no_panel_and_rows_leave_no_gap(make) -> None:
    table = board()
    fig = drawn(make(table, _styles(table), "toy · small · quick"))
    panels = data_axes(fig)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 2  # one per family row
    renderer = fig.canvas.get_renderer()
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not any(overlaps(box, ax.get_window_extent(renderer)) for ax in panels)
    tops = sorted({round(ax.get_position().y1, 3) for ax in panels}, reverse=True)
    bottoms = sorted({round(ax.get_position().y0, 3) for ax in panels}, reverse=True)
    assert len(tops) == 2
    assert bottoms[0] - tops[1] < 0.15, "blank gap between the panel rows"


def test_pareto_axes_are_linear_ticked_and_the_costly_references_do_not_squash_them() -> None:
    table = board()
    fig = drawn(pareto_figure(table, _styles(table), "toy"))
    params_axes = [ax for ax in data_axes(fig) if ax.get_xlabel() == "deployed parameters"]
    assert len(params_axes) == 2
    for ax in params_axes:
        assert ax.get_xscale() == "linear"
        assert ax.get_xlim()[1] < 100_000  # teacher and ensemble are dashed lines with their cost written, not points
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert len(labels) >= 4 and all(text.endswith("k") for text in labels)
    texts = [t.get_text() for ax in params_axes for t in ax.texts]
    assert "ensemble (300k) →" in texts and "teacher (100k) →" in texts
