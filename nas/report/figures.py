"""The study page's plotly figures and tables, drawn from a ``StudyReport``.

The same figures go onto the page and, under the ids ``figures`` gives them, onto the
study's optuna-dashboard page; plotly is imported only when a figure is drawn.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from nas.report.study import StudyReport, op_shares, progress
from nas.search.results import Evaluation

__all__ = [
    "family_figure",
    "family_table",
    "figures",
    "inherited_figure",
    "inherited_table",
    "kept",
    "members_table",
    "ops_figure",
    "progress_figure",
    "tradeoff_figure",
]


def kept(r: StudyReport) -> str:
    """What the search keeps: a front (pareto mode) or its best network (the others)."""
    return "front" if r.mode == "pareto" else "best network"


def _hover(e: Evaluation) -> str:
    a = e.arch
    return (
        f"{a.short_id} {html.escape(a.compact())}<br>val {e.val_accuracy:.4f}, "
        f"{e.latency_ms:.3f} ms, {e.params:,} params, {e.macs:,} MACs<br>{e.status}"
        + (f": {html.escape(e.reason[:120])}" if e.reason else "")
    )


def tradeoff_figure(r: StudyReport) -> Any:
    """Validation accuracy against predicted latency: every evaluation, the front on top."""
    import plotly.graph_objects as go

    on_front = {e.arch_id for e in r.front}
    fig = go.Figure()
    groups = [
        (
            "explored",
            [e for e in r.evaluations if e.status == "complete" and e.arch_id not in on_front],
            "circle",
            "#9aa5b1",
        ),
        (
            "stopped early or diverged",
            [e for e in r.evaluations if e.status in ("stopped", "diverged")],
            "x",
            "#d08c60",
        ),
    ]
    if r.confirmed:
        confirmed = [e for e in r.final if e.arch_id not in on_front]
        groups.append(("confirmed, mean of trainings", confirmed, "diamond", "#5b8def"))
    for name, evs, symbol, color in groups:
        fig.add_trace(
            go.Scatter(
                x=[e.latency_ms for e in evs],
                y=[e.val_accuracy for e in evs],
                mode="markers",
                name=f"{name} ({len(evs)})",
                marker={"symbol": symbol, "color": color, "size": 7},
                hovertext=[_hover(e) for e in evs],
                hoverinfo="text",
            )
        )
    front = sorted(r.front, key=lambda e: e.latency_ms)
    fig.add_trace(
        go.Scatter(
            x=[e.latency_ms for e in front],
            y=[e.val_accuracy for e in front],
            mode="lines+markers",
            line={"shape": "hv", "color": "#c0392b"},
            marker={"size": 10, "color": "#c0392b"},
            name=f"{kept(r)} ({len(front)})",
            hovertext=[_hover(e) for e in front],
            hoverinfo="text",
        )
    )
    if r.latency_budget_ms is not None:
        fig.add_vline(x=r.latency_budget_ms, line_dash="dash", annotation_text="latency budget")
    fig.update_layout(
        title="Accuracy against predicted latency",
        xaxis_title="predicted latency (ms)",
        yaxis_title="validation accuracy",
    )
    return fig


def progress_figure(r: StudyReport) -> Any:
    """Each complete evaluation's accuracy in order, the best so far, and the front's
    hypervolume so far (right axis)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    p = progress(r.evaluations)
    n = list(range(1, len(p.accuracy) + 1))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(x=n, y=p.accuracy, mode="markers", name="accuracy", marker={"color": "#9aa5b1"})
    )
    fig.add_trace(go.Scatter(x=n, y=p.best, mode="lines", name="best accuracy so far"))
    fig.add_trace(
        go.Scatter(x=n, y=p.hypervolume, mode="lines", name="hypervolume of the front so far"),
        secondary_y=True,
    )
    fig.update_layout(title="Search progress", xaxis_title="complete evaluation")
    fig.update_yaxes(title_text="validation accuracy", secondary_y=False)
    fig.update_yaxes(
        title_text=f"hypervolume (from accuracy 0, {p.reference[1]:.3f} ms)", secondary_y=True
    )
    return fig


def ops_figure(r: StudyReport) -> Any:
    """Which ops the explored networks and the front's networks are made of."""
    import plotly.graph_objects as go

    explored = op_shares([e for e in r.evaluations if e.status == "complete"])
    front = op_shares(r.front)
    ops = sorted(set(explored) | set(front))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=ops, y=[explored.get(o, 0.0) for o in ops], name="explored"))
    fig.add_trace(go.Bar(x=ops, y=[front.get(o, 0.0) for o in ops], name="front"))
    fig.update_layout(
        title="Share of blocks per op", barmode="group", yaxis_tickformat=".0%", xaxis_title="op"
    )
    return fig


def members_table(r: StudyReport) -> str:
    """The front as an HTML table, with what ``nas search`` published at its end (test
    accuracy, measured latency, export) when it has."""
    published = {m["arch_id"]: m for m in r.members}
    header = ["arch", "val acc", "test acc", "pred ms", "meas ms", "params", "MACs", "network"]
    rows = []
    for e in sorted(r.front, key=lambda e: e.latency_ms):
        m = published.get(e.arch_id, {})
        rows.append(
            [
                e.arch_id[:12],
                f"{e.val_accuracy:.4f}",
                _num(m.get("test_accuracy"), ".4f"),
                f"{e.latency_ms:.3f}",
                _num(m.get("measured_ms"), ".3f"),
                f"{e.params:,}",
                f"{e.macs:,}",
                e.arch.compact(),
            ]
        )
    return _table(header, rows)


def _tested(r: StudyReport) -> dict[str, Any]:
    """Test accuracy by arch id, as ``nas search`` published it for the front."""
    return {m["arch_id"]: m.get("test_accuracy") for m in r.members}


def inherited_table(r: StudyReport) -> str:
    """A one-shot search's trained candidates: the accuracy each inherited from the
    supernet beside what it reached once trained (and its test accuracy when it made
    the front)."""
    tested = _tested(r)
    header = ["arch", "inherited val acc", "trained val acc", "change", "test acc", "status",
              "how"]  # fmt: skip
    rows = [
        [
            e.arch_id[:12], f"{e.val_accuracy:.4f}", f"{t.val_accuracy:.4f}",
            f"{t.val_accuracy - e.val_accuracy:+.4f}", _num(tested.get(t.arch_id), ".4f"),
            t.status, t.reason,
        ]
        for e, t in r.inherited
    ]  # fmt: skip
    return _table(header, rows)


def inherited_figure(r: StudyReport) -> Any:
    """Trained against inherited validation accuracy, one point per trained candidate:
    above the diagonal, training after the search helped."""
    import plotly.graph_objects as go

    xs = [e.val_accuracy for e, _ in r.inherited]
    ys = [t.val_accuracy for _, t in r.inherited]
    lo, hi = min(xs + ys, default=0.0), max(xs + ys, default=1.0)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="no change",
                             line={"dash": "dot", "color": "gray"}))  # fmt: skip
    fig.add_trace(
        go.Scatter(x=xs, y=ys, mode="markers", name="trained candidates",
                   text=[_hover(t) for _, t in r.inherited], hoverinfo="text")
    )  # fmt: skip
    fig.update_layout(
        title="One-shot: accuracy inherited from the supernet against after training",
        xaxis_title="inherited validation accuracy",
        yaxis_title="trained validation accuracy",
    )
    return fig


def family_figure(family: Mapping[str, Any]) -> Any:
    """The compound-scaled family: accuracy against latency per phi when it was trained
    (measured latency where there is one, else predicted), else its cost growth."""
    import plotly.graph_objects as go

    rows = family["members"]
    labels = [f"phi={m['phi']}" for m in rows]
    fig = go.Figure()
    if all(m.get("val_accuracy") is not None for m in rows):
        acc = [m["test_accuracy"] if m.get("test_accuracy") is not None else m["val_accuracy"]
               for m in rows]  # fmt: skip
        which = "test" if all(m.get("test_accuracy") is not None for m in rows) else "val"
        for kind in ("predicted", "measured"):
            xs = [m.get(f"{kind}_ms") for m in rows]
            if any(x is None for x in xs):
                continue
            fig.add_trace(
                go.Scatter(x=xs, y=acc, mode="lines+markers+text", text=labels,
                           textposition="top left", name=f"{kind} latency")
            )  # fmt: skip
        fig.update_layout(xaxis_title="latency (ms)", yaxis_title=f"{which} accuracy")
    else:
        phis = [m["phi"] for m in rows]
        fig.add_trace(go.Scatter(x=phis, y=[m["predicted_ms"] for m in rows], name="predicted ms"))
        fig.add_trace(go.Bar(x=phis, y=[m["macs"] for m in rows], name="MACs", yaxis="y2"))
        fig.update_layout(
            xaxis_title="phi",
            yaxis_title="predicted latency (ms)",
            yaxis2={"title": "MACs", "overlaying": "y", "side": "right"},
        )
    c = family["coefficients"]
    fig.update_layout(
        title=f"Compound-scaled family (alpha {c['alpha']:.2f}, beta {c['beta']:.2f}, "
        f"gamma {c['gamma']:.2f}; {family['mode']} mode)"
    )
    return fig


def family_table(family: Mapping[str, Any]) -> str:
    """The family's members as an HTML table."""
    header = ["phi", "resolution", "depth", "width", "params", "MACs", "pred ms", "meas ms",
              "val acc", "test acc", "network"]  # fmt: skip
    rows = [
        [
            str(m["phi"]), str(m["resolution"]), f"{m['depth']:.2f}", f"{m['width']:.2f}",
            f"{m['params']:,}", f"{m['macs']:,}", _num(m["predicted_ms"], ".3f"),
            _num(m.get("measured_ms"), ".3f"), _num(m.get("val_accuracy"), ".4f"),
            _num(m.get("test_accuracy"), ".4f"), m["arch"],
        ]
        for m in family["members"]
    ]  # fmt: skip
    return _table(header, rows)


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="front"><tr>{head}</tr>{body}</table>'


def figures(r: StudyReport) -> dict[str, Any]:
    """The page's figures, by the id each carries on the study's optuna-dashboard page."""
    out = {}
    if r.evaluations:
        out = {"nas-tradeoff": tradeoff_figure(r), "nas-progress": progress_figure(r),
               "nas-ops": ops_figure(r)}  # fmt: skip
    if r.inherited:
        out["nas-inherited"] = inherited_figure(r)
    if r.family:
        out["nas-family"] = family_figure(r.family)
    return out
