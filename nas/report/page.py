"""A study as one self-contained HTML page of plotly figures: what the search explored,
the front it kept, how the front grew, which ops won.

optuna-dashboard shows trials as Optuna sees them; this report reads our own evaluations
table (``nas.search.results``), which knows what Optuna does not: a trial Ray stopped early, a
diverged one, a network reused from another study, the confirmation's pooled scores, the
test accuracy and measured latency of the front. The page carries plotly's JavaScript
inline (no CDN: it opens on an offline cluster node), and is written atomically, so
``nas report --watch`` can rewrite it while a search runs and a browser reloads it.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.atomic import write_text
from nas.core.errors import NasError
from nas.core.objectives import ACCURACY_LATENCY, dominates, hypervolume_2d
from nas.model.arch import Architecture
from nas.search.config import StudyConfig
from nas.search.results import Evaluation, EvaluationStore

__all__ = [
    "LiveReport",
    "Progress",
    "StudyReport",
    "figures",
    "gather",
    "latency_figure",
    "latency_summary",
    "op_shares",
    "page",
    "progress",
    "render",
    "report_path",
    "to_dashboard",
    "write_page",
    "write_report",
]


@dataclass(frozen=True)
class StudyReport:
    """What the page shows, read from the storage at one moment."""

    study: str
    mode: str
    #: The study's own evaluations, oldest first.
    evaluations: tuple[Evaluation, ...]
    #: What the front is chosen from (confirmed candidates pooled, when confirmed).
    final: tuple[Evaluation, ...]
    #: Whether ``final`` holds pooled confirmations (else it is ``evaluations``).
    confirmed: bool
    #: The front (pareto mode) or the best evaluation (the others).
    front: tuple[Evaluation, ...]
    #: front.json's rows as stored on the Optuna study by ``nas search`` (test accuracy,
    #: measured latency, export); empty while the search runs.
    members: tuple[Mapping[str, Any], ...]
    latency_budget_ms: float | None
    #: What `nas scale` published for this study (family.json's content), if it ran.
    family: Mapping[str, Any] | None = None


def gather(study: StudyConfig) -> StudyReport:
    """Read the study's evaluations, front and published front members from its storage."""
    from nas.core.db import optuna_storage
    from nas.search.confirm import final_evaluations
    from nas.search.selection import sub_study, winners

    store = EvaluationStore(study.search.storage)
    own = store.of_study(study.name)
    storage = optuna_storage(study.search.storage)
    family = _published(storage, sub_study(study, "scale").name, "family")
    if not own and not family:
        raise NasError(
            f"study {study.name} has no evaluations in {study.search.storage}: run "
            "`nas search` (or `nas scale`) first",
            field="study",
            source=study.source,
        )
    final = final_evaluations(study, store)
    members = tuple(_published(storage, study.name, "front") or ())
    obj = study.objective
    return StudyReport(
        study=study.name,
        mode=obj.mode,
        evaluations=tuple(own),
        final=tuple(final),
        confirmed=final != own,
        front=tuple(winners(study, final)),
        members=members,
        latency_budget_ms=obj.latency_budget_ms if obj.mode == "budget" else None,
        family=family,
    )


def _optuna_study(storage: Any, name: str) -> Any:
    """Optuna study ``name`` in ``storage``; None when it is not there."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _published(storage: Any, name: str, key: str) -> Any:
    """User attribute ``key`` of Optuna study ``name`` (what ``nas.search.pipeline.publish``
    recorded); None when that study or attribute is not there."""
    o_study = _optuna_study(storage, name)
    return None if o_study is None else o_study.user_attrs.get(key)


@dataclass(frozen=True)
class Progress:
    """The search over time: per complete evaluation (oldest first), its accuracy, the best
    accuracy so far, and the hypervolume (accuracy up, latency down) of the front so far."""

    accuracy: tuple[float, ...]
    best: tuple[float, ...]
    hypervolume: tuple[float, ...]
    #: (accuracy, latency ms) the hypervolume is measured from: 0 and 1.1x the slowest.
    reference: tuple[float, float]


def progress(evaluations: Sequence[Evaluation]) -> Progress:
    done = [e for e in evaluations if e.status == "complete"]
    ref = (0.0, 1.1 * max((e.latency_ms for e in done), default=1.0))
    acc = tuple(e.val_accuracy for e in done)
    best = tuple(itertools.accumulate(acc, max))
    front: list[tuple[float, float]] = []  # kept small: the area needs only the front
    hv: list[float] = []
    for e in done:
        p = (e.val_accuracy, e.latency_ms)
        if hv and any(q == p or dominates(q, p, ACCURACY_LATENCY) for q in front):
            hv.append(hv[-1])
            continue
        front = [q for q in front if not dominates(p, q, ACCURACY_LATENCY)] + [p]
        hv.append(hypervolume_2d(front, ref, ACCURACY_LATENCY))
    return Progress(acc, best, tuple(hv), ref)


def op_shares(evaluations: Sequence[Evaluation]) -> dict[str, float]:
    """Share of all blocks (stems and heads aside) that use each op, over ``evaluations``;
    a cell's block counts its edges' ops (NAS-Bench-201: which of its 5 ops won)."""
    from nas.model import nb201_cell

    counts: Counter[str] = Counter()
    for e in evaluations:
        for _, _, b in e.arch.blocks():
            counts.update(nb201_cell.parse(b.cell) if b.cell else (b.op,))
    total = sum(counts.values())
    return {op: n / total for op, n in sorted(counts.items())} if total else {}


def _kept(r: StudyReport) -> str:
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
            name=f"{_kept(r)} ({len(front)})",
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


def _plot(fig: Any) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


#: Where a page gets plotly's JavaScript (``--plotlyjs``): inline (the default: the page
#: opens anywhere, offline, but carries ~4.8 MB), in ``plotly.min.js`` beside the page
#: (written once: small pages, still offline; for ``--watch``), or from plotly's CDN.
PLOTLYJS = ("inline", "directory", "cdn")
PLOTLYJS_FILE = "plotly.min.js"


def check_plotlyjs(plotlyjs: str) -> str:
    if plotlyjs not in PLOTLYJS:
        raise NasError(
            f"unknown choice {plotlyjs!r} (known: {', '.join(PLOTLYJS)})", field="--plotlyjs"
        )
    return plotlyjs


def _plotly_script(plotlyjs: str) -> str:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    if check_plotlyjs(plotlyjs) == "inline":
        return f'<script type="text/javascript">{get_plotlyjs()}</script>'
    if plotlyjs == "directory":
        return f'<script src="{PLOTLYJS_FILE}"></script>'
    cdn = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    return f'<script src="{cdn}" charset="utf-8"></script>'


def page(
    title: str,
    summary: str,
    body: str,
    *,
    refresh_s: int | None = None,
    plotlyjs: str = "inline",
) -> str:
    """A whole HTML page around ``body`` with plotly's JavaScript as ``plotlyjs`` says
    (``PLOTLYJS``); with ``refresh_s`` the browser reloads it that often."""
    meta = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    title = html.escape(title)
    written = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{meta}<title>{title}</title>
{_plotly_script(plotlyjs)}
<style>body {{ font-family: sans-serif; margin: 1.5em; }}
table.front {{ border-collapse: collapse; font-size: 0.9em; }}
table.front td, table.front th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
table.front td:nth-child(n+2):nth-child(-n+7) {{ text-align: right; }}
table.front td:last-child {{ font-family: monospace; }}</style></head>
<body><h1>{title}</h1>
<p>{html.escape(summary)}; written {written}</p>
{body}
</body></html>
"""


def figures(r: StudyReport) -> dict[str, Any]:
    """The page's figures, by the id each carries on the study's optuna-dashboard page."""
    out = {}
    if r.evaluations:
        out = {"nas-tradeoff": tradeoff_figure(r), "nas-progress": progress_figure(r),
               "nas-ops": ops_figure(r)}  # fmt: skip
    if r.family:
        out["nas-family"] = family_figure(r.family)
    return out


def render(
    r: StudyReport,
    *,
    refresh_s: int | None = None,
    figs: Mapping[str, Any] | None = None,
    plotlyjs: str = "inline",
) -> str:
    """The study's page (``figs``: ``figures(r)``, when the caller has them already);
    ``refresh_s`` makes the browser reload it that often; ``plotlyjs``: see ``page``."""
    figs = figures(r) if figs is None else figs
    sections = []
    if r.evaluations:
        sections += [f"<h2>The {_kept(r)}</h2>", members_table(r)]
        sections += [_plot(figs[k]) for k in ("nas-tradeoff", "nas-progress", "nas-ops")]
    if r.family:
        sections += ["<h2>The family (nas scale)</h2>", family_table(r.family)]
        sections.append(_plot(figs["nas-family"]))
    counts = Counter(e.status for e in r.evaluations)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    summary = (
        f"mode {r.mode}; {len(r.evaluations)} evaluations ({statuses}); {_kept(r)}: {len(r.front)}"
        if r.evaluations
        else "no search evaluations"
    )
    body = "\n".join(sections)
    return page(f"nas study {r.study}", summary, body, refresh_s=refresh_s, plotlyjs=plotlyjs)


def latency_figure(points: Mapping[str, Sequence[tuple[Architecture, float, float]]]) -> Any:
    """Measured against predicted latency per stored model (calibration and validation
    models), with the diagonal and the +-10% band the issue's goal is stated in."""
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
    from nas.latency.predictor import kendall_tau

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


def to_dashboard(study: StudyConfig, figs: Mapping[str, Any], *, searched: bool) -> bool:
    """Save the page's figures (``figures``) into the study for optuna-dashboard (shown on
    the study's page, each overwritten in place by the next call; a family scaled without
    a search, ``searched`` False, on its ``<study>-scale`` study's page); False when
    optuna-dashboard is not installed or that study is not there."""
    try:
        from optuna_dashboard import save_plotly_graph_object
    except ImportError:
        return False
    from nas.core.db import optuna_storage
    from nas.search.selection import sub_study

    name = study.name if searched else sub_study(study, "scale").name
    o_study = _optuna_study(optuna_storage(study.search.storage), name)
    if o_study is None:
        return False
    for graph_id, fig in figs.items():
        save_plotly_graph_object(o_study, fig, graph_object_id=graph_id)
    return bool(figs)


def write_page(path: Path, text: str, *, plotlyjs: str = "inline") -> None:
    """Write ``text`` to ``path`` atomically: a reader (a browser reloading it) never sees
    half a page, and an interrupted write leaves no partial file beside it. A page made
    with ``plotlyjs="directory"`` gets ``plotly.min.js`` beside it (written when missing
    or from another plotly version)."""
    if check_plotlyjs(plotlyjs) == "directory":
        from plotly.offline import get_plotlyjs

        bundle, js = get_plotlyjs(), path.parent / PLOTLYJS_FILE
        if not js.exists() or js.stat().st_size != len(bundle.encode("utf-8")):
            write_text(js, bundle)
    write_text(path, text)


def report_path(study: StudyConfig) -> Path:
    """Where `nas search`, `nas scale` and `nas report` write the study's page."""
    return study.export_root / "report.html"


class LiveReport:
    """The study's page and dashboard figures kept current while its search runs: called
    after each trial, it rewrites them at most every ``every_s`` seconds (the page reloads
    itself as often). Nothing to show yet is no error; a failure to write is said once
    (``note``) and never stops the search."""

    def __init__(
        self,
        study: StudyConfig,
        *,
        every_s: float = 30.0,
        note: Callable[[str], None] = lambda _: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.study, self.every_s, self.note, self.clock = study, every_s, note, clock
        self._last: float | None = None
        self._broken = False

    def __call__(self) -> None:
        now = self.clock()
        if self._broken or (self._last is not None and now - self._last < self.every_s):
            return
        try:
            write_report(self.study, refresh_s=max(1, round(self.every_s)))
        except NasError as err:
            if err.field == "study":  # no evaluation yet: try again after the next trial
                return
            self._fail(err)
        except Exception as err:  # a page is never worth a search
            self._fail(err)
        self._last = now

    def _fail(self, err: Exception) -> None:
        self._broken = True
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        self.note(f"the live report stopped ({reason}); the search goes on")


def write_report(
    study: StudyConfig,
    path: Path | None = None,
    *,
    refresh_s: int | None = None,
    plotlyjs: str = "inline",
) -> StudyReport:
    """Gather and write the study's page to ``path`` (default ``report_path``; atomically,
    ``write_page``), and its figures into the study for optuna-dashboard (``to_dashboard``)."""
    r = gather(study)
    figs = figures(r)
    text = render(r, refresh_s=refresh_s, figs=figs, plotlyjs=plotlyjs)
    write_page(path or report_path(study), text, plotlyjs=plotlyjs)
    to_dashboard(study, figs, searched=bool(r.evaluations))
    return r
