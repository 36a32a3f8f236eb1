"""A study as one self-contained HTML page of plotly figures: what the search explored,
the front it kept, how the front grew, which ops won.

optuna-dashboard shows trials as Optuna sees them; this report reads our own evaluations
table (``nas.search.results``), which knows what Optuna does not: a trial Ray stopped early, a
diverged one, a network reused from another study, the confirmation's pooled scores, the
test accuracy and measured latency of the front. Gathered in ``study``, drawn in
``figures``, written as a page in ``document`` (plotly's JavaScript inline, written
atomically, so ``nas report --watch`` can rewrite it while a browser reloads it); this
module puts them together, also live while a search runs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas.core.errors import NasError, one_line
from nas.report.document import check_plotlyjs, page, plot_html, write_page
from nas.report.figures import family_table, figures, kept, members_table
from nas.report.study import StudyReport, gather, optuna_study, repeats
from nas.search.config import StudyConfig

__all__ = [
    "LiveReport",
    "check_plotlyjs",
    "render",
    "report_path",
    "to_dashboard",
    "trials_line",
    "write_report",
]


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
        sections += [f"<h2>The {kept(r)}</h2>", members_table(r)]
        sections += [plot_html(figs[k]) for k in ("nas-tradeoff", "nas-progress", "nas-ops")]
    if r.family:
        sections += ["<h2>The family (nas scale)</h2>", family_table(r.family)]
        sections.append(plot_html(figs["nas-family"]))
    counts = Counter(e.status for e in r.evaluations)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    summary = (
        f"mode {r.mode}; {trials_line(r)}; {len(r.evaluations)} evaluations ({statuses}); "
        f"{kept(r)}: {len(r.front)}"
        if r.evaluations
        else "no search evaluations"
    )
    body = "\n".join(sections)
    return page(f"nas study {r.study}", summary, body, refresh_s=refresh_s, plotlyjs=plotlyjs)


def trials_line(r: StudyReport) -> str:
    """How many trials ran and how many of them evaluated nothing new (``repeats``)."""
    rep = repeats(r)
    reused = f", {rep.reused} of them from other studies" if rep.reused else ""
    return f"{rep.trials} trials, {rep.repeats} of them repeats{reused}"


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
    o_study = optuna_study(optuna_storage(study.search.storage), name)
    if o_study is None:
        return False
    for graph_id, fig in figs.items():
        save_plotly_graph_object(o_study, fig, graph_object_id=graph_id)
    return bool(figs)


def report_path(study: StudyConfig) -> Path:
    """Where `nas search`, `nas scale` and `nas report` write the study's page."""
    return study.export_root / "report.html"


class LiveReport:
    """The study's page and dashboard figures kept current while its search runs: called
    after each trial, it rewrites them at most every ``every_s`` seconds (the page reloads
    itself as often), and never more often than 19 times as long as the last rewrite
    took: it runs in the search's driver and grows with the study, so it stays near 5%
    of a long search's time. Nothing to show yet is no error; a failure to write is said
    once (``note``) and never stops the search."""

    #: The wait after a rewrite, in multiples of its duration (as Ray Tune paces its
    #: experiment checkpoints): writing takes at most 1/20 of the time.
    PACE = 19.0

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
        self._wait = every_s
        self._broken = False

    def __call__(self) -> None:
        now = self.clock()
        if self._broken or (self._last is not None and now - self._last < self._wait):
            return
        try:
            write_report(self.study, refresh_s=max(1, round(self.every_s)))
        except NasError as err:
            if err.field == "study":  # no evaluation yet: try again after the next trial
                return
            self._fail(err)
        except Exception as err:  # a page is never worth a search
            self._fail(err)
        self._wait = max(self.every_s, self.PACE * (self.clock() - now))
        self._last = now

    def _fail(self, err: Exception) -> None:
        self._broken = True
        self.note(f"the live report stopped ({one_line(err)}); the search goes on")


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
