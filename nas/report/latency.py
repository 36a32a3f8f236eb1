"""The latency predictor's page (``nas latency report``): measured against predicted.

Drawn from the stored calibration and validation models; the figures of merit are
recomputed from the plotted points, so the page and its summary cannot disagree.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from nas.model.arch import Architecture

__all__ = ["latency_figure", "latency_summary"]


def latency_figure(points: Mapping[str, Sequence[tuple[Architecture, float, float]]]) -> Any:
    """Measured against predicted latency per stored model (calibration and validation
    models), with the diagonal and the +-10% band accuracy goals are stated in."""
    import plotly.graph_objects as go

    fig = go.Figure()
    every = [ms for pts in points.values() for _, p, m in pts for ms in (p, m)]
    lo, hi = (min(every), max(every)) if every else (0.0, 1.0)
    for factor, name in ((1.0, "measured = predicted"), (1.1, "+10%"), (0.9, "-10%")):
        fig.add_trace(
            go.Scatter(
                x=[lo, hi], y=[lo * factor, hi * factor], mode="lines", name=name,
                line={"dash": "solid" if factor == 1.0 else "dot", "color": "#888"},
                hoverinfo="skip",
            )
        )  # fmt: skip
    colors = {"calibration": "#9aa5b1", "validation": "#5b8def"}
    for purpose, pts in points.items():
        fig.add_trace(
            go.Scatter(
                x=[p for _, p, _ in pts],
                y=[m for _, _, m in pts],
                mode="markers",
                name=f"{purpose} models ({len(pts)})",
                marker={"color": colors.get(purpose, "#c0392b"), "size": 6},
                hovertext=[
                    f"{a.short_id} {html.escape(a.compact())}<br>predicted {p:.3f} ms, "
                    f"measured {m:.3f} ms ({100 * (p - m) / m:+.1f}%)"
                    for a, p, m in pts
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title="Measured against predicted latency",
        xaxis_title="predicted (ms)",
        yaxis_title="measured in isolation (ms)",
        xaxis_type="log",
        yaxis_type="log",
    )
    return fig


def latency_summary(points: Sequence[tuple[Architecture, float, float]]) -> str:
    """Validation's figures of merit, recomputed from the plotted points."""
    from nas.core.stats import kendall_tau

    if len(points) < 2:
        return f"{len(points)} validation model(s): too few to judge (`nas latency validate`)"
    pred = [p for _, p, _ in points]
    meas = [m for _, _, m in points]
    err = [abs(p - m) / m for p, m in zip(pred, meas, strict=True)]
    return (
        f"{len(points)} validation models: within +-5% {100 * sum(e <= 0.05 for e in err) / len(err):.1f}%, "
        f"within +-10% {100 * sum(e <= 0.10 for e in err) / len(err):.1f}%, "
        f"MAPE {100 * sum(err) / len(err):.2f}%, Kendall tau {kendall_tau(pred, meas):.3f}"
    )
