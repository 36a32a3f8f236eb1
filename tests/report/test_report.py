"""The study report (nas.report): its numbers against hand-computed ones, the page's
content against the stored evaluations, and the page rendered by a real Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from nas.cli.app import app
from nas.model.arch import Architecture
from nas.report.document import write_page
from nas.report.figures import family_figure, figures, tradeoff_figure
from nas.report.page import LiveReport, render, report_path, to_dashboard
from nas.report.study import gather, op_shares, progress, repeats
from nas.search.config import load_study
from nas.search.results import Evaluation, EvaluationStore
from nas.space.searchspace import load_space, sample_random

TINY = load_space("tiny")
ROOT_DIR = Path(__file__).resolve().parents[2]


def arch(seed: int) -> Architecture:
    return sample_random(TINY, seed)


def ev(study: str, seed: int, acc: float, ms: float, status: str = "complete", **kw) -> Evaluation:
    a = arch(seed)
    return Evaluation(
        study, a.id, "b", status, acc, 2, 1.0, ms, 1000 + seed, 5000 + seed,
        arch_json=a.to_json(), **kw,
    )  # fmt: skip


def test_progress_by_hand():
    evs = [
        ev("s", 0, 0.5, 2.0),
        ev("s", 1, 0.8, 4.0),
        ev("s", 2, 0.99, 0.1, status="diverged"),  # never counts
        ev("s", 3, 0.6, 1.0),
    ]
    p = progress(evs)
    assert p.accuracy == (0.5, 0.8, 0.6)
    assert p.best == (0.5, 0.8, 0.8)
    assert p.reference == (0.0, pytest.approx(4.4))  # 1.1x the slowest complete one
    # Areas dominated up to the reference (accuracy 0, 4.4 ms):
    # {A}: 0.5 * 2.4; {A, B}: 1.2 + 0.3 * 0.4; {D, B} (D dominates A): 0.6 * 3.4 + 0.2 * 0.4
    assert p.hypervolume == pytest.approx((1.2, 1.32, 2.12))


def test_progress_hypervolume_matches_the_area_of_every_point_so_far():
    """The running front is kept incrementally; the area of all points so far (the
    definition, via hypervolume_2d) is the oracle, ties and duplicates included."""
    import random

    from nas.core.pareto import hypervolume_2d

    rng = random.Random(3)
    evs = [
        Evaluation("s", str(i), "b", rng.choice(["complete"] * 3 + ["stopped"]),
                   rng.randint(0, 20) / 20, 1, 1.0, rng.randint(1, 30) / 10, 1, 1)
        for i in range(300)
    ]  # fmt: skip
    p = progress(evs)
    done = [(e.val_accuracy, e.latency_ms) for e in evs if e.status == "complete"]
    assert len(p.hypervolume) == len(done)
    for k in range(1, len(done) + 1):
        exact = hypervolume_2d(done[:k], p.reference, ["maximize", "minimize"])
        assert p.hypervolume[k - 1] == pytest.approx(exact, abs=1e-12)


def test_op_shares_count_blocks():
    a, b = arch(0), arch(1)
    ops = [blk.op for x in (a, b) for _, _, blk in x.blocks()]
    shares = op_shares([ev("s", 0, 0.5, 1.0), ev("s", 1, 0.5, 1.0)])
    assert shares == {op: pytest.approx(ops.count(op) / len(ops)) for op in sorted(set(ops))}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert op_shares([]) == {}
    # NAS-Bench-201: a cell block counts its six edges, a reduction block its op.
    from nas.model import nb201_cell

    net = sample_random(load_space("nasbench201"), 4)
    blocks = [blk for _, _, blk in net.blocks()]
    cells = [blk for blk in blocks if blk.cell]
    assert cells and len(cells) < len(blocks)
    used = [o for b in blocks for o in (nb201_cell.parse(b.cell) if b.cell else (b.op,))]
    assert len(used) == 6 * len(cells) + len(blocks) - len(cells)
    e = replace(ev("s", 0, 0.5, 1.0), arch_json=net.to_json())
    assert op_shares([e]) == {op: pytest.approx(used.count(op) / len(used)) for op in set(used)}


class _Tables(HTMLParser):
    """The rows of the page's front table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("class", "front") in attrs:
            self._in = True
        elif self._in and tag == "tr":
            self.rows.append([])
        elif self._in and tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in = False

    def handle_data(self, data):
        if self._in and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


@pytest.fixture
def stored(tmp_path):
    """A pareto study's storage: an Optuna study with a published front, 6 evaluations of
    its own (one stopped early, one diverged) and a confirmation of two of them."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = load_study(
        "digits", {"search.storage": url, "export_dir": str(tmp_path / "x"), "confirm.seeds": 2}
    )
    store = EvaluationStore(url)
    own = [
        ev(study.name, 0, 0.90, 1.0),
        ev(study.name, 1, 0.80, 0.5),
        ev(study.name, 2, 0.85, 1.2),
        ev(study.name, 3, 0.70, 0.4, status="stopped"),
        ev(study.name, 4, 0.10, 0.3, status="diverged"),
        ev(study.name, 5, 0.95, 2.0),
    ]
    for e in own:
        store.record(e)
    o_study = optuna.create_study(
        study_name=study.name, storage=url, directions=["maximize", "minimize"]
    )
    return study, store, own, o_study


def test_the_page_shows_the_stored_study(stored):
    study, _, own, o_study = stored
    # Published by `nas search` at its end: test accuracy and measured latency of a member.
    o_study.set_user_attr(
        "front", [{"arch_id": own[0].arch_id, "test_accuracy": 0.875, "measured_ms": 1.125}]
    )
    r = gather(study)
    assert not r.confirmed and r.final == r.evaluations == tuple(own)
    front = {own[i].arch_id for i in (0, 1, 5)}  # 2 (0.85, 1.2) is dominated by 0
    assert {e.arch_id for e in r.front} == front
    fig = tradeoff_figure(r)
    traces = {t.name.split(" (")[0]: t for t in fig.data}
    assert list(traces["front"].x) == [0.5, 1.0, 2.0]  # by latency
    assert list(traces["front"].y) == [0.80, 0.90, 0.95]
    assert list(traces["explored"].x) == [1.2]  # complete and not on the front
    assert sorted(traces["stopped early or diverged"].y) == [0.10, 0.70]
    assert "confirmed, mean of trainings" not in traces
    page = render(r)
    assert page.count("Plotly.newPlot") == 3
    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly inline: opens offline
    tables = _Tables()
    tables.feed(page)
    header, *rows = tables.rows
    assert header[:5] == ["arch", "val acc", "test acc", "pred ms", "meas ms"]
    assert [row[0] for row in rows] == [own[i].arch_id[:12] for i in (1, 0, 5)]
    assert rows[1][1:5] == ["0.9000", "0.8750", "1.000", "1.125"]
    assert rows[0][2:5] == ["-", "0.500", "-"]  # not published: no test, no measurement
    assert rows[0][7] == arch(1).compact()


def test_a_budget_study_keeps_its_best_network_within_the_budget(stored):
    study, _, own, _ = stored
    budget = replace(study, objective=replace(study.objective, mode="budget",
                                              latency_budget_ms=1.1))  # fmt: skip
    r = gather(budget)
    assert [e.arch_id for e in r.front] == [own[0].arch_id]  # 0.90 at 1.0 ms; 0.95 is 2 ms
    fig = tradeoff_figure(r)
    assert [t.name for t in fig.data][-1] == "best network (1)"
    assert fig.layout.shapes[0].x0 == 1.1  # the budget line
    page = render(r)
    assert "<h2>The best network</h2>" in page and "best network: 1" in page


def test_a_confirmed_study_shows_its_pooled_candidates(stored):
    study, store, own, _ = stored
    for e in (own[0], own[1]):  # trained again: the mean decides
        store.record(replace(e, study=f"{study.name}-confirm1", val_accuracy=e.val_accuracy - 0.2))
    for j in (2,):
        store.record(replace(own[0], study=f"{study.name}-confirm{j}", val_accuracy=0.9))
    r = gather(study)
    assert r.confirmed
    pooled = {e.arch_id: e.val_accuracy for e in r.final}
    assert pooled == {
        own[0].arch_id: pytest.approx((0.9 + 0.7 + 0.9) / 3),
        own[1].arch_id: pytest.approx((0.8 + 0.6) / 2),
    }
    traces = {t.name.split(" (")[0]: t for t in tradeoff_figure(r).data}
    assert list(traces["front"].y) == pytest.approx([0.7, (0.9 + 0.7 + 0.9) / 3])
    assert "confirmed, mean of trainings" in traces  # every one is on the front here
    assert list(traces["confirmed, mean of trainings"].x) == []


def family_record(trained: bool) -> dict:
    """What `nas scale` publishes (nas.scale.family.family_record), two members, by hand."""
    members = []
    for phi, (ms, meas, acc) in enumerate([(1.0, 1.5, 0.9), (2.0, 2.5, 0.95)]):
        m = {"phi": phi, "resolution": 28 + 4 * phi, "depth": 1.1**phi, "width": 1.2**phi,
             "arch": arch(phi).compact(), "params": 100 * (phi + 1), "macs": 1000 * (phi + 1),
             "predicted_ms": ms, "measured_ms": meas if trained else None}  # fmt: skip
        if trained:
            m.update(val_accuracy=acc - 0.01, test_accuracy=acc)
        members.append(m)
    coefficients = {"alpha": 1.1, "beta": 1.2, "gamma": 1.15}
    return {"mode": "flops", "coefficients": coefficients, "members": members}


@pytest.mark.parametrize("trained", [True, False])
def test_the_family_from_nas_scale_is_shown(stored, trained):
    study = stored[0]
    scale = optuna.create_study(study_name=f"{study.name}-scale", storage=study.search.storage)
    scale.set_user_attr("family", family_record(trained))
    r = gather(study)
    assert r.family == family_record(trained)
    fig = family_figure(r.family)
    assert fig.layout.title.text == (
        "Compound-scaled family (alpha 1.10, beta 1.20, gamma 1.15; flops mode)"
    )
    if trained:  # accuracy against both latencies, each point named by its phi
        assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
            ("predicted latency", [1.0, 2.0], [0.9, 0.95]),
            ("measured latency", [1.5, 2.5], [0.9, 0.95]),
        ]
        assert list(fig.data[0].text) == ["phi=0", "phi=1"]
    else:  # sized only: its cost growth
        assert [(t.name, list(t.y)) for t in fig.data] == [
            ("predicted ms", [1.0, 2.0]),
            ("MACs", [1000, 2000]),
        ]
    tables = _Tables()
    tables.feed(render(r))
    family_rows = [row for row in tables.rows if row[0] in ("0", "1")]
    assert family_rows[1][:8] == ["1", "32", "1.10", "1.20", "200", "2,000", "2.000",
                                  "2.500" if trained else "-"]  # fmt: skip
    assert family_rows[1][8:10] == (["0.9400", "0.9500"] if trained else ["-", "-"])
    assert family_rows[1][10] == arch(1).compact()


def test_a_family_without_a_search_is_a_report_of_its_own(tmp_path):
    """`nas scale ARCH --study S` scales a network without searching: S's report is its
    family alone."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = load_study("digits", {"search.storage": url})
    scale = optuna.create_study(study_name=f"{study.name}-scale", storage=url)
    scale.set_user_attr("family", family_record(True))
    r = gather(study)
    assert r.evaluations == () and r.front == ()
    page = render(r)
    assert "no search evaluations" in page and "The front" not in page
    assert page.count("Plotly.newPlot") == 1
    # optuna-dashboard shows it on the scale study's page (where the family was published).
    assert to_dashboard(study, figures(r), searched=bool(r.evaluations))
    storage = optuna.storages.RDBStorage(url)
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name(f"{study.name}-scale"))
    assert any(k.startswith("dashboard:plot_data:nas-family:") for k in attrs)


def test_report_cli_and_its_bad_input(stored, tmp_path):
    study, *_ = stored
    study_file = tmp_path / "study.toml"
    study_file.write_text(
        f'name = "{study.name}"\nspace = "tiny"\n[search]\nstorage = "{study.search.storage}"\n'
    )
    runner = CliRunner()
    out = tmp_path / "r" / "report.html"
    result = runner.invoke(app, ["report", str(study_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"study {study.name}: 0 trials, 0 of them repeats, 6 evaluations, front of 3 -> {out}"
    )
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert not list(out.parent.glob("*.tmp"))
    empty = tmp_path / "empty.toml"
    empty.write_text(f'name = "nobody"\n[search]\nstorage = "{study.search.storage}"\n')
    result = runner.invoke(app, ["report", str(empty), "--out", str(tmp_path / "n.html")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {empty}: study: study nobody has no evaluations in {study.search.storage}: "
        "run `nas search` (or `nas scale`) first"
    ]
    assert not (tmp_path / "n.html").exists()
    result = runner.invoke(app, ["report", str(study_file), "--watch", "-1"])
    assert result.exit_code == 2 and "--watch: must be >= 0" in result.stderr


def test_plotlyjs_beside_the_page_or_from_the_cdn(stored, tmp_path):
    """`--plotlyjs directory` writes plotly's bundle once beside small pages; `cdn` links
    the bundle of the installed plotly; a bad choice is one line and writes nothing."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    study, *_ = stored
    study_file = tmp_path / "study.toml"
    study_file.write_text(f'name = "{study.name}"\n[search]\nstorage = "{study.search.storage}"\n')
    runner = CliRunner()
    out, js = tmp_path / "d" / "report.html", tmp_path / "d" / "plotly.min.js"
    args = ["report", str(study_file), "--out", str(out), "--plotlyjs", "directory"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    first = js.stat().st_mtime_ns
    assert runner.invoke(app, args).exit_code == 0
    assert js.read_text() == get_plotlyjs() and js.stat().st_mtime_ns == first  # written once
    text = out.read_text()
    assert '<script src="plotly.min.js"></script>' in text and len(text) < 200_000
    assert get_plotlyjs()[:2000] not in text
    cdn = tmp_path / "c.html"
    result = runner.invoke(app, ["report", str(study_file), "--out", str(cdn), "--plotlyjs", "cdn"])
    assert result.exit_code == 0, result.output
    assert f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" in cdn.read_text()
    bad = tmp_path / "b.html"
    result = runner.invoke(app, ["report", str(study_file), "--out", str(bad), "--plotlyjs", "web"])
    assert result.exit_code == 2 and not bad.exists()
    assert result.stderr.strip() == (
        "error: --plotlyjs: unknown choice 'web' (known: inline, directory, cdn)"
    )


def test_the_live_report_is_rewritten_at_most_every_n_seconds(stored, tmp_path):
    """During a search: the first finished trial writes the page (reloading itself) and the
    dashboard's figures; later ones rewrite them only once ``every_s`` has passed."""
    study, store, _, o_study = stored
    now = [0.0]
    live = LiveReport(study, every_s=30, clock=lambda: now[0])
    path = report_path(study)
    live()
    assert '<meta http-equiv="refresh" content="30">' in path.read_text()
    assert "6 evaluations" in path.read_text()
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    attrs = o_study._storage.get_study_system_attrs(o_study._study_id)
    assert set(get_plotly_graph_objects(attrs)) == {"nas-tradeoff", "nas-progress", "nas-ops"}
    store.record(ev(study.name, 6, 0.99, 0.2))
    now[0] = 29.0
    live()
    assert "6 evaluations" in path.read_text()  # too soon: not rewritten
    now[0] = 30.5
    live()
    assert "7 evaluations" in path.read_text()


def test_the_live_report_waits_for_evaluations_and_never_stops_a_search(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = load_study("digits", {"search.storage": url, "export_dir": str(tmp_path / "x")})
    notes: list[str] = []
    # A clock that stands still: every call rewrites (no pacing after a slow write).
    live = LiveReport(study, every_s=0, note=notes.append, clock=lambda: 0.0)
    live()  # no evaluation yet: nothing to show, nothing said
    assert not report_path(study).exists() and notes == []
    EvaluationStore(url).record(ev(study.name, 0, 0.9, 1.0))
    live()
    assert report_path(study).exists()
    (tmp_path / "x").rename(tmp_path / "gone")
    (tmp_path / "x").write_text("a file where the export directory was")
    live()  # cannot write: said once, no exception
    live()
    assert len(notes) == 1 and notes[0].startswith("the live report stopped (")
    assert notes[0].endswith("); the search goes on")


def test_report_watch_rewrites_the_page_until_interrupted(stored, tmp_path):
    """`--watch 1` writes a self-reloading page, rewrites it as evaluations arrive, and
    ends cleanly on Ctrl-C."""
    import signal
    import sys
    import time

    study, store, *_ = stored
    study_file = tmp_path / "study.toml"
    study_file.write_text(f'name = "{study.name}"\n[search]\nstorage = "{study.search.storage}"\n')
    out = tmp_path / "watch.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas", "report", str(study_file), "--out", str(out), "--watch", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The whole test, first page, rewrite and exit, took up to 55 s with both cores
        # busy with other work: 300 s for the pages (and as much for the exit) is 5x that.
        deadline = time.monotonic() + 300
        while not out.exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        assert '<meta http-equiv="refresh" content="1">' in out.read_text()
        store.record(ev(study.name, 6, 0.99, 0.2))  # a new evaluation: the new front
        while "7 evaluations" not in out.read_text():
            assert time.monotonic() < deadline, out.read_text()[:300]
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert stdout.splitlines()[0].endswith(f"6 evaluations, front of 3 -> {out}")
    assert "7 evaluations" in out.read_text()  # whole, wherever Ctrl-C landed
    assert not list(tmp_path.glob("*.tmp"))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
@pytest.mark.parametrize("plotlyjs", ["inline", "directory"])
def test_chromium_draws_every_evaluation(stored, tmp_path, plotlyjs):
    """The page opened offline in headless Chromium: plotly's script (inline, or the file
    beside the page) runs and draws one marker per evaluation in the trade-off and
    progress plots, and the op bars."""
    study, _, own, _ = stored
    r = gather(study)
    page = tmp_path / "report.html"
    write_page(page, render(r, plotlyjs=plotlyjs), plotlyjs=plotlyjs)
    dom = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
        ],
        # Chromium renders the page in seconds (10 s of virtual time, which it skips
        # through); 300 s leaves a busy machine room many times over.
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    assert dom.count('class="main-svg"') == 3 * 3  # plotly's 3 layers per figure
    scatter = len(own)  # each evaluation once in the trade-off plot...
    complete = sum(e.status == "complete" for e in own)  # ...and the complete in progress
    bars = 2 * len(op_shares(list(r.evaluations)))
    assert len(re.findall(r'class="point"', dom)) == scatter + complete + bars


def test_latency_page_numbers_by_hand():
    from scipy.stats import kendalltau

    from nas.report.latency import latency_figure, latency_summary

    a = arch(0)
    pred = [1.0, 1.04, 1.2, 0.5, 2.0]
    meas = [1.0, 1.10, 1.0, 0.6, 1.9]
    pts = [(a, p, m) for p, m in zip(pred, meas, strict=True)]
    # |p - m| / m: 0, 5.45%, 20%, 16.67%, 5.26%
    tau = kendalltau(pred, meas).statistic
    assert latency_summary(pts) == (
        f"5 validation models: within +-5% 20.0%, within +-10% 60.0%, MAPE 9.48%, "
        f"Kendall tau {tau:.3f}"
    )
    assert latency_summary(pts[:1]).startswith("1 validation model(s): too few")
    fig = latency_figure({"calibration": pts[:2], "validation": pts})
    lines = {t.name: (list(t.x), list(t.y)) for t in fig.data if t.mode == "lines"}
    assert lines == {
        "measured = predicted": ([0.5, 2.0], [0.5, 2.0]),
        "+10%": ([0.5, 2.0], [pytest.approx(0.55), pytest.approx(2.2)]),
        "-10%": ([0.5, 2.0], [pytest.approx(0.45), pytest.approx(1.8)]),
    }
    dots = {t.name: (list(t.x), list(t.y)) for t in fig.data if t.mode == "markers"}
    assert dots == {"calibration models (2)": (pred[:2], meas[:2]),
                    "validation models (5)": (pred, meas)}  # fmt: skip


NB201 = ROOT_DIR.parent / "shared" / "data" / "nasbench201"


@pytest.mark.skipif(not NB201.is_dir(), reason=f"NAS-Bench-201 tables not found at {NB201}")
def test_repeats_are_the_trials_that_evaluated_nothing_new(tmp_path):
    """Fixed networks through the real trial path (tabular lookups, SQLite): study
    "other" evaluates A; the study then runs A, B, B, C, B. A is reused from "other",
    B's second and third trials add nothing: 3 repeats of 5 trials, 3 networks, 1 reused.
    The page and `nas report` say so."""
    from nas.search.plan import Candidate
    from nas.search.runner import run_inprocess
    from nas.search.setup import prepare

    url = f"sqlite:///{tmp_path / 'r.db'}"
    common = {"tabular.path": str(NB201), "search.storage": url, "search.executor": "inprocess"}
    other = load_study(
        "nb201_pixel3", {**common, "name": "other", "export_dir": str(tmp_path / "o")}
    )
    study = load_study("nb201_pixel3", {**common, "export_dir": str(tmp_path / "s")})
    setup = prepare(study)
    space = load_space("nasbench201")
    a, b, c = (setup.predictor.representative(sample_random(space, s)) for s in (1, 2, 3))
    assert len({a.id, b.id, c.id}) == 3
    run_inprocess(prepare(other), candidates=[Candidate(a)])
    run_inprocess(setup, candidates=[Candidate(x) for x in (a, b, b, c, b)])
    r = gather(study)
    rep = repeats(r)
    assert (rep.trials, rep.networks, rep.reused, rep.fresh, rep.repeats) == (5, 3, 1, 2, 3)
    assert "5 trials, 3 of them repeats, 1 of them from other studies; 3 evaluations" in render(r)
    out = tmp_path / "page.html"
    result = CliRunner().invoke(
        app, ["report", "nb201_pixel3", "--storage", url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "study nb201_pixel3: 5 trials, 3 of them repeats, 1 of them from other studies, "
        "3 evaluations, front of "
    )


def test_repeats_of_a_seeded_search_match_the_trials_network_ids(tmp_path):
    """A second count as oracle: walk the finished Optuna trials in order and count those
    whose network (the arch_id the plan noted on the trial) an earlier trial had."""
    if not NB201.is_dir():
        pytest.skip(f"NAS-Bench-201 tables not found at {NB201}")
    from nas.core.db import optuna_storage
    from nas.search.runner import run_inprocess
    from nas.search.setup import prepare

    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = load_study(
        "nb201_pixel3",
        {
            "tabular.path": str(NB201), "search.storage": url, "search.executor": "inprocess",
            "search.sampler": "random", "search.trials": 300, "search.seed": 5,
            "export_dir": str(tmp_path / "s"),
        },
    )  # fmt: skip
    run_inprocess(prepare(study))
    seen, expected = set(), 0
    o_study = optuna.load_study(study_name=study.name, storage=optuna_storage(url))
    for t in sorted(o_study.get_trials(states=[optuna.trial.TrialState.COMPLETE]),
                    key=lambda t: t.number):  # fmt: skip
        expected += t.user_attrs["arch_id"] in seen
        seen.add(t.user_attrs["arch_id"])
    rep = repeats(gather(study))
    assert rep.trials == 300 and rep.reused == 0
    assert expected > 0 and rep.repeats == expected


def test_the_live_report_waits_longer_when_writing_it_takes_long(stored):
    """A large study makes each rewrite slower; the live report then waits 19 times as
    long as the last rewrite took (so writing stays near 5% of the search), never less
    than ``every_s``. The clock says a rewrite took 10 s: the next waits 190 s."""
    study, store, _, _ = stored
    ticks = iter([0.0, 10.0, 100.0, 189.0, 195.0, 196.0])  # each call of the clock
    live = LiveReport(study, every_s=30, clock=lambda: next(ticks))
    path = report_path(study)
    live()  # starts at 0, done at 10
    assert "6 evaluations" in path.read_text()
    store.record(ev(study.name, 6, 0.99, 0.2))
    live()  # 100: past every_s, but within 19 x 10 s
    live()  # 189: still within
    assert "6 evaluations" in path.read_text()
    live()  # 195: rewritten (took 1 s: the next wait is every_s again)
    assert "7 evaluations" in path.read_text()
    assert live._wait == 30
